//! Float-slice comparisons that cannot pass on NaN.
//!
//! Every function here refuses a length mismatch, an empty pair of slices (nothing compared
//! proves nothing) and any non-finite value on either side, naming the side, the index and the
//! value. The tolerance is strict: [`assert_close`] passes when every difference is `< tol`,
//! the bound the tests used before (`assert!(d < tol)`).

use std::fmt::{Debug, Display, LowerExp};

/// The largest difference between two slices and where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diff<F> {
    /// The largest difference (absolute, or relative for [`max_rel_diff`]).
    pub max: F,
    /// Its index.
    pub index: usize,
    /// `got[index]`.
    pub got: F,
    /// `want[index]`.
    pub want: F,
}

trait Float: Copy + PartialOrd + Display + Debug + LowerExp {
    const ZERO: Self;
    const ONE: Self;
    fn finite(self) -> bool;
    fn abs(self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn add(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
}

macro_rules! float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn finite(self) -> bool {
                self.is_finite()
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
        }
    };
}
float!(f32);
float!(f64);

/// Checks both slices are comparable: same non-zero length, every value finite.
fn comparable<F: Float>(got: &[F], want: &[F]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "lengths differ: got has {} values, want has {}",
            got.len(),
            want.len()
        ));
    }
    if got.is_empty() {
        return Err("both slices are empty: nothing was compared".into());
    }
    for (side, v) in [("got", got), ("want", want)] {
        if let Some(i) = v.iter().position(|x| !x.finite()) {
            let n = v.iter().filter(|x| !x.finite()).count();
            return Err(format!(
                "{side}[{i}] = {} is not finite ({n} of {} values of {side} are NaN or infinite)",
                v[i],
                v.len()
            ));
        }
    }
    Ok(())
}

/// The worst `metric(got, want)` over both slices, after [`comparable`].
fn worst<F: Float>(got: &[F], want: &[F], metric: impl Fn(F, F) -> F) -> Result<Diff<F>, String> {
    comparable(got, want)?;
    let mut d = Diff {
        max: F::ZERO,
        index: 0,
        got: got[0],
        want: want[0],
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let m = metric(g, w);
        if m > d.max {
            d = Diff {
                max: m,
                index: i,
                got: g,
                want: w,
            };
        }
    }
    Ok(d)
}

fn abs_diff<F: Float>(g: F, w: F) -> F {
    g.sub(w).abs()
}

fn rel_diff<F: Float>(g: F, w: F) -> F {
    g.sub(w).abs().div(F::ONE.add(w.abs()))
}

/// The largest `|got − want|` and where it is.
///
/// # Errors
/// A message when the lengths differ, both slices are empty, or any value is NaN or infinite.
pub fn worst_abs_diff(got: &[f32], want: &[f32]) -> Result<Diff<f32>, String> {
    worst(got, want, abs_diff)
}

/// The largest `|a − b|`.
///
/// # Errors
/// As [`worst_abs_diff`].
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> Result<f32, String> {
    worst(a, b, abs_diff).map(|d| d.max)
}

/// The largest `|a − b|` in f64.
///
/// # Errors
/// As [`worst_abs_diff`].
pub fn max_abs_diff_f64(a: &[f64], b: &[f64]) -> Result<f64, String> {
    worst(a, b, abs_diff).map(|d| d.max)
}

/// The largest `|a − b| / (1 + |b|)`: absolute near zero, relative for large values.
///
/// # Errors
/// As [`worst_abs_diff`].
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> Result<f32, String> {
    worst(a, b, rel_diff).map(|d| d.max)
}

fn check_close<F: Float>(
    what: &str,
    kind: &str,
    got: &[F],
    want: &[F],
    tol: F,
    metric: impl Fn(F, F) -> F + Copy,
) -> F {
    assert!(
        tol.finite() && tol > F::ZERO,
        "{what}: the tolerance must be finite and positive, got {tol}"
    );
    let d = worst(got, want, metric).unwrap_or_else(|e| panic!("{what}: {e}"));
    if d.max >= tol {
        let over = got
            .iter()
            .zip(want)
            .filter(|(g, w)| metric(**g, **w) >= tol)
            .count();
        panic!(
            "{what}: max {kind} = {:e} at index {} (got {}, want {}); {over} of {} values at or \
             above the tolerance {tol:e}",
            d.max,
            d.index,
            d.got,
            d.want,
            got.len()
        );
    }
    d.max
}

/// Asserts `got` and `want` have the same length, hold only finite values, and differ by less
/// than `tol` everywhere; returns the largest `|got − want|` (for a report line).
///
/// # Panics
/// Otherwise, with `what`, the largest difference, its index and both values.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    check_close(what, "|got − want|", got, want, tol, abs_diff)
}

/// [`assert_close`] in f64.
///
/// # Panics
/// As [`assert_close`].
#[track_caller]
pub fn assert_close_f64(what: &str, got: &[f64], want: &[f64], tol: f64) -> f64 {
    check_close(what, "|got − want|", got, want, tol, abs_diff)
}

/// [`assert_close`] on `|got − want| / (1 + |want|)`.
///
/// # Panics
/// As [`assert_close`].
#[track_caller]
pub fn assert_close_rel(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    check_close(
        what,
        "|got − want| / (1 + |want|)",
        got,
        want,
        tol,
        rel_diff,
    )
}

/// Asserts `a` and `b` have the same length, hold only finite values, and differ somewhere by
/// more than `at_least` (something changed); returns the largest `|a − b|`.
///
/// # Panics
/// Otherwise, with `what`.
#[track_caller]
pub fn assert_differ(what: &str, a: &[f32], b: &[f32], at_least: f32) -> f32 {
    let d = worst(a, b, abs_diff).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        d.max > at_least,
        "{what}: max |a − b| = {:e} is not above {at_least:e}",
        d.max
    );
    d.max
}

/// Asserts `v` is not empty and holds only finite values.
///
/// # Panics
/// Otherwise, naming the first bad index.
#[track_caller]
pub fn assert_finite(what: &str, v: &[f32]) {
    assert!(!v.is_empty(), "{what}: no values");
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        let n = v.iter().filter(|x| !x.is_finite()).count();
        panic!(
            "{what}: value {i} = {} is not finite ({n} of {} are NaN or infinite)",
            v[i],
            v.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("should have panicked");
        err.downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn nan_on_either_side_fails_where_a_fold_with_max_passes() {
        let want = [1.0f32, 2.0, 3.0];
        let all_nan = [f32::NAN; 3];
        // The pattern this crate replaces: NaN differences vanish in `f32::max`.
        let folded = all_nan
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert_eq!(folded, 0.0);
        let err = max_abs_diff(&all_nan, &want).unwrap_err();
        assert!(err.contains("got[0] = NaN is not finite (3 of 3"), "{err}");
        let err = max_abs_diff(&want, &[1.0, f32::NAN, 3.0]).unwrap_err();
        assert!(err.contains("want[1] = NaN"), "{err}");
        let msg = panic_message(|| {
            assert_close("logits", &[1.0, 2.0, f32::NAN], &want, 1e-4);
        });
        assert!(msg.starts_with("logits: got[2] = NaN"), "{msg}");
        let msg = panic_message(|| {
            assert_close_f64("sums", &[1.0], &[f64::NAN], 1e-4);
        });
        assert!(msg.contains("want[0] = NaN"), "{msg}");
        let msg = panic_message(|| {
            assert_close_rel("grads", &[f32::NAN], &[0.0], 1.0);
        });
        assert!(msg.contains("got[0] = NaN"), "{msg}");
    }

    #[test]
    fn infinities_fail_even_when_equal() {
        let inf = [f32::INFINITY, 0.0];
        assert!(
            max_abs_diff(&inf, &inf)
                .unwrap_err()
                .contains("got[0] = inf")
        );
        let neg = [0.0, f32::NEG_INFINITY];
        assert!(
            max_rel_diff(&[0.0, 0.0], &neg)
                .unwrap_err()
                .contains("want[1] = -inf")
        );
        let msg = panic_message(|| assert_finite("rewards", &[0.0, f32::INFINITY]));
        assert!(msg.contains("rewards: value 1 = inf"), "{msg}");
        let msg = panic_message(|| assert_finite("rewards", &[]));
        assert!(msg.contains("no values"), "{msg}");
    }

    #[test]
    fn length_mismatch_and_empty_slices_fail() {
        let err = max_abs_diff(&[1.0, 2.0], &[1.0]).unwrap_err();
        assert!(err.contains("got has 2 values, want has 1"), "{err}");
        assert!(max_abs_diff_f64(&[], &[]).unwrap_err().contains("empty"));
        let msg = panic_message(|| {
            assert_close("x", &[1.0], &[1.0, 2.0], 1.0);
        });
        assert!(msg.contains("lengths differ"), "{msg}");
    }

    #[test]
    fn differences_are_reported_with_their_place() {
        let got = [0.0f32, 1.0, 2.5, 3.0];
        let want = [0.0f32, 1.0, 2.0, 3.00001];
        let d = worst_abs_diff(&got, &want).unwrap();
        assert_eq!((d.max, d.index, d.got, d.want), (0.5, 2, 2.5, 2.0));
        let msg = panic_message(|| {
            assert_close("row 3", &got, &want, 1e-3);
        });
        assert!(
            msg.contains("row 3: max |got − want| = 5e-1 at index 2 (got 2.5, want 2)")
                && msg.contains("1 of 4 values at or above the tolerance 1e-3"),
            "{msg}"
        );
        // Within tolerance: returns the worst difference.
        let d = assert_close("ok", &[1.0, 2.0], &[1.0, 2.0 + 1e-6], 1e-4);
        assert!(d > 0.0 && d < 1e-5, "{d}");
        // The bound is strict, as `assert!(d < tol)` was.
        let msg = panic_message(|| {
            assert_close("edge", &[1.5], &[1.0], 0.5);
        });
        assert!(msg.contains("edge"), "{msg}");
        assert_eq!(max_rel_diff(&[3.0], &[1.0]).unwrap(), 1.0);
        assert_eq!(max_abs_diff_f64(&[1.0, -2.0], &[1.0, 2.0]).unwrap(), 4.0);
    }

    #[test]
    fn a_bad_tolerance_is_refused() {
        let msg = panic_message(|| {
            assert_close("t", &[1.0], &[1.0], f32::NAN);
        });
        assert!(
            msg.contains("tolerance must be finite and positive"),
            "{msg}"
        );
        let msg = panic_message(|| {
            assert_close("t", &[1.0], &[1.0], 0.0);
        });
        assert!(msg.contains("tolerance"), "{msg}");
    }

    #[test]
    fn assert_differ_needs_a_change_and_finite_values() {
        assert_eq!(assert_differ("moved", &[1.0, 2.0], &[1.0, 2.5], 0.0), 0.5);
        let msg = panic_message(|| {
            assert_differ("moved", &[1.0], &[1.0], 0.0);
        });
        assert!(
            msg.contains("moved: max |a − b| = 0e0 is not above 0e0"),
            "{msg}"
        );
        let msg = panic_message(|| {
            assert_differ("moved", &[f32::NAN], &[1.0], 0.0);
        });
        assert!(msg.contains("not finite"), "{msg}");
    }
}
