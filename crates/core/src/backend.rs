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
