//! `--device` and `--dtype` flags, and the one place a backend is chosen.

use anyhow::bail;
use burn::tensor::DType;
use rlhf_core::backend::DeviceSpec;

/// Parses `--dtype`.
pub(crate) fn parse_dtype(s: &str) -> Result<DType, String> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(format!(
            "invalid dtype `{other}`: expected f32, bf16 or f16"
        )),
    }
}

/// Runs `$body` with `B` bound to the backend of `$spec` and `dev` to its device.
macro_rules! with_backend {
    ($spec:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $spec {
            rlhf_core::backend::DeviceSpec::Cpu => {
                type $B = rlhf_core::backend::Cpu;
                let $dev = rlhf_core::backend::FlexDevice;
                $body
            }
            #[cfg(feature = "cuda")]
            rlhf_core::backend::DeviceSpec::Cuda(n) => {
                type $B = rlhf_core::backend::Gpu;
                let $dev = rlhf_core::backend::CudaDevice::new(n);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            rlhf_core::backend::DeviceSpec::Cuda(_) => crate::device::no_cuda(),
        }
    }};
}
pub(crate) use with_backend;

/// The error for `--device cuda` in a CPU-only build.
#[cfg_attr(feature = "cuda", allow(dead_code))]
pub(crate) fn no_cuda<T>() -> anyhow::Result<T> {
    bail!(
        "this binary was built without CUDA support: rebuild with `--features cuda` (cargo xtask does this when --device cuda is given)"
    )
}

/// Parses `--device`.
pub(crate) fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse()
}

/// Prints `plan` on stderr before a trainer allocates, and refuses a plan whose peak exceeds
/// the device's memory (the CPU's `MemTotal`; a GPU's when `RLHF_DEVICE_MEMORY_GIB` states it).
///
/// # Errors
/// The plan does not fit, with both figures.
pub(crate) fn show_plan(plan: &rlhf_train::MemoryPlan, device: &DeviceSpec) -> anyhow::Result<()> {
    eprint!("{}", plan.to_table());
    let is_cpu = matches!(device, DeviceSpec::Cpu);
    plan.check_fits(rlhf_train::device_memory_bytes(is_cpu), &device.to_string())
        .map_err(anyhow::Error::msg)
}

/// The model config a trainer starts from, without allocating it: `--model DIR`'s
/// `config.json`, or the random start of `--init` / `--shape` (see [`crate::shape::random_init`]).
///
/// # Errors
/// The config's errors; neither flag given.
pub(crate) fn start_config(
    model: Option<&std::path::Path>,
    init: Option<crate::reward::InitPreset>,
    shape: Option<&str>,
    vocab: usize,
) -> anyhow::Result<rlhf_core::ModelConfig> {
    if let Some(dir) = model {
        return Ok(rlhf_core::checkpoint::read_config(dir)?.1);
    }
    crate::shape::random_init(init, shape, vocab)?
        .ok_or_else(|| anyhow::anyhow!("give --model DIR, --init PRESET or --shape NAME"))
}
