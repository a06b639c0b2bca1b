//! Where importers send the comparisons they produce.

use crate::error::Result;
use crate::schema::Comparison;

/// Receives comparisons one at a time, so an import never has to hold the whole data set.
///
/// Implemented for `Vec<Comparison>` (collect in memory), for
/// [`ComparisonWriter`](crate::ComparisonWriter) (stream to Parquet), and for any
/// `FnMut(Comparison) -> Result<()>` closure (transform, count, fan out).
pub trait ComparisonSink {
    /// Takes one comparison.
    ///
    /// # Errors
    /// Whatever the sink's storage reports; the import stops at the first error.
    fn accept(&mut self, c: Comparison) -> Result<()>;
}

impl ComparisonSink for Vec<Comparison> {
    fn accept(&mut self, c: Comparison) -> Result<()> {
        self.push(c);
        Ok(())
    }
}

impl<F: FnMut(Comparison) -> Result<()>> ComparisonSink for F {
    fn accept(&mut self, c: Comparison) -> Result<()> {
        self(c)
    }
}
