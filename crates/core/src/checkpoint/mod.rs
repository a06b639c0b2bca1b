//! Weight files: HF safetensors checkpoints (single or sharded) in and out.

mod hf;
mod safetensors_io;

pub use hf::{
    LoadOptions, load_causal_lm, load_scalar_model, read_config, save_causal_lm, save_lora_adapter,
    save_scalar_model,
};
pub use safetensors_io::{SaveDtype, TensorFiles, open_file, write_safetensors};
