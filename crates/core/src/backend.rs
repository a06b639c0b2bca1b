//! Backends and devices: `Flex` (pure-Rust CPU) always, `Cuda` behind the `cuda` feature, and the
//! `--device cpu|cuda[:N]` parser the binaries dispatch on.

use std::fmt;
use std::str::FromStr;

pub use burn::backend::Autodiff;
pub use burn::backend::Flex;
pub use burn::backend::flex::FlexDevice;

/// The CPU backend.
pub type Cpu = Flex;
/// The CPU backend with autodiff, for training.
pub type CpuTrain = Autodiff<Flex>;

/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
/// The CUDA backend with autodiff.
#[cfg(feature = "cuda")]
pub type GpuTrain = Autodiff<burn::backend::Cuda>;
#[cfg(feature = "cuda")]
pub use burn::backend::cuda::CudaDevice;

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (Flex backend).
    Cpu,
    /// CUDA GPU number `n`.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" | "flex" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| format!("invalid device `{s}`: expected cpu, cuda or cuda:N")),
                None => Err(format!(
                    "invalid device `{s}`: expected cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Whether this build can run on the device (CUDA needs the `cuda` feature).
    pub fn is_available_in_build(&self) -> bool {
        match self {
            DeviceSpec::Cpu => true,
            DeviceSpec::Cuda(_) => cfg!(feature = "cuda"),
        }
    }
}

/// Keeps freed tensor buffers in the process instead of returning them to the OS.
///
/// glibc's `malloc` serves large blocks (tensors of a few MiB) with `mmap` and unmaps them on
/// `free`, so every training step page-faults its activations back in: about 10 % of a CPU
/// reward step went to page faults and page clearing. This raises the `mmap` threshold to
/// glibc's maximum (32 MiB) and the trim threshold to 1 GiB, so buffers are reused from the
/// heap. Call once, early in `main`; a no-op on targets other than Linux/glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before other threads
    // allocate, and an out-of-range value is refused (returns 0) rather than applied.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(3)));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }
}
