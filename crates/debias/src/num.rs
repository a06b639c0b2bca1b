//! A sealed float trait so the numeric functions accept both `f32` and `f64` slices.

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// `f32` or `f64`. Every computation in this crate accumulates in `f64`; outputs are converted
/// back to the input type.
///
/// This trait is sealed: it cannot be implemented outside this crate.
pub trait Real: Copy + PartialOrd + std::fmt::Debug + sealed::Sealed {
    /// Widens to `f64` (exact for both implementors).
    fn to_f64(self) -> f64;
    /// Narrows from `f64` (rounds to nearest for `f32`).
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Returns an error naming `what` and the first index whose value is NaN or infinite.
pub(crate) fn check_finite<T: Real>(what: &'static str, xs: &[T]) -> crate::Result<()> {
    match xs.iter().position(|x| !x.to_f64().is_finite()) {
        Some(index) => Err(crate::Error::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Returns [`crate::Error::LengthMismatch`] unless `left == right`.
pub(crate) fn check_same_len(what: &'static str, left: usize, right: usize) -> crate::Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(crate::Error::LengthMismatch { what, left, right })
    }
}
