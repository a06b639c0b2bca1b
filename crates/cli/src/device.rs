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
