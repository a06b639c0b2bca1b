//! Rotary position embeddings: the HF `rotate_half` layout and GLM's partial interleaved one,
//! with position ids per row (so left-padded batches rotate by their real positions).

use std::marker::PhantomData;
use std::sync::{Arc, PoisonError, RwLock};

use burn::prelude::*;
use burn::tensor::DType;

use crate::config::{RopeConfig, RopeScaling, RopeStyle};

/// Inverse frequencies `1/θ^(2j/rot)` with HF's scaling rules, rounded to f32 as transformers
/// computes them.
pub(crate) fn inv_freqs(rope: &RopeConfig) -> Vec<f32> {
    let rot = rope.rotary_dim;
    let base: Vec<f64> = (0..rot / 2)
        .map(|j| 1.0 / rope.theta.powf((2 * j) as f64 / rot as f64))
        .collect();
    let scaled: Vec<f64> = match rope.scaling {
        RopeScaling::Default => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old = original_max_position_embeddings as f64;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

/// The cos/sin tables of positions `0..max_len` (constants of the module, not parameters).
///
/// Rows are computed on first use, for the positions a batch actually reaches (grown to the
/// next power of two, never past `max_len`), and kept on the host: a config with
/// `max_position_embeddings: 2000000000` costs nothing until a sequence that long is run. A
/// row's values do not depend on when it was computed, so forward passes are bit-identical to
/// precomputing the whole table.
#[derive(Module, Debug)]
pub struct RopeTables<B: Backend> {
    rotary_dim: usize,
    interleaved: bool,
    max_len: usize,
    /// The dtype the gathered tables are cast to.
    dtype: DType,
    /// The rows computed so far, shared by clones of the module (they never change).
    rows: Arc<RwLock<Rows>>,
    _backend: PhantomData<B>,
}

/// Host copies of the first `len` rows of the tables, `[len, rot/2]` each.
#[derive(Debug)]
struct Rows {
    inv: Vec<f32>,
    len: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rows {
    /// Computes rows `self.len..len`.
    fn grow_to(&mut self, len: usize) {
        let half = self.inv.len();
        self.cos.reserve((len - self.len) * half);
        self.sin.reserve((len - self.len) * half);
        for p in self.len..len {
            for &f in &self.inv {
                // f32 product as transformers computes it, then an exact cos/sin.
                let angle = (p as f32 * f) as f64;
                self.cos.push(angle.cos() as f32);
                self.sin.push(angle.sin() as f32);
            }
        }
        self.len = len;
    }
}

impl<B: Backend> RopeTables<B> {
    /// Tables for positions `0..max_len`, gathered in `dtype`. Nothing is computed or
    /// allocated yet (see the type's documentation); `_device` is kept for the signature's
    /// sake: the gathered tables go to the device [`Self::gather`] is given.
    pub fn new(rope: &RopeConfig, max_len: usize, dtype: DType, _device: &B::Device) -> Self {
        RopeTables {
            rotary_dim: rope.rotary_dim,
            interleaved: rope.style == RopeStyle::Interleaved,
            max_len,
            dtype,
            rows: Arc::new(RwLock::new(Rows {
                inv: inv_freqs(rope),
                len: 0,
                cos: Vec::new(),
                sin: Vec::new(),
            })),
            _backend: PhantomData,
        }
    }

    /// Leading dims of each head that are rotated.
    pub(crate) fn rotary_dim(&self) -> usize {
        self.rotary_dim
    }

    /// Whether pairs are `(2i, 2i+1)` (GLM) rather than `(i, i + rot/2)`.
    pub(crate) fn interleaved(&self) -> bool {
        self.interleaved
    }

    /// Number of positions covered (`max_position_embeddings`).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Number of rows computed so far (at most [`Self::max_len`]).
    pub fn computed_len(&self) -> usize {
        self.rows.read().unwrap_or_else(PoisonError::into_inner).len
    }

    /// Gathers the tables for `positions` (`[batch, seq]`), shaped `[batch, 1, seq, rot/2]`,
    /// on the device of `positions` (read back to the host: the model itself uses
    /// [`Self::gather_positions`] with the ids it computed there).
    ///
    /// # Panics
    /// As [`Self::gather_positions`].
    pub fn gather(&self, positions: Tensor<B, 2, Int>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, t] = positions.dims();
        let device = positions.device();
        let ids: Vec<i64> = positions
            .into_data()
            .convert::<i64>()
            .into_vec()
            .expect("int tensor data");
        self.gather_positions(&ids, b, t, &device)
    }

    /// Gathers the tables for `positions` (`batch × seq` position ids, row-major), shaped
    /// `[batch, 1, seq, rot/2]`, on `device`.
    ///
    /// # Panics
    /// If `positions` does not hold `batch × seq` ids, or one is outside `0..max_len` (the
    /// model's entry points check lengths first: [`crate::Trunk::check_batch`]).
    pub fn gather_positions(
        &self,
        positions: &[i64],
        batch: usize,
        seq: usize,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        assert_eq!(
            positions.len(),
            batch * seq,
            "positions for a {batch}×{seq} batch"
        );
        let needed = match positions.iter().copied().max() {
            Some(p) => {
                let min = positions.iter().copied().min().unwrap_or(0);
                assert!(
                    min >= 0 && (p as u64) < self.max_len as u64,
                    "position {} outside the model's {} positions (max_position_embeddings)",
                    if min < 0 { min } else { p },
                    self.max_len
                );
                p as usize + 1
            }
            None => 0,
        };
        if self.computed_len() < needed {
            let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
            if rows.len < needed {
                let target = needed.next_power_of_two().max(64).min(self.max_len);
                rows.grow_to(target);
            }
        }
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        let half = rows.inv.len();
        let pick = |table: &[f32]| {
            let mut out = Vec::with_capacity(positions.len() * half);
            for &p in positions {
                let p = p as usize;
                out.extend_from_slice(&table[p * half..(p + 1) * half]);
            }
            Tensor::<B, 4>::from_data(TensorData::new(out, [batch, 1, seq, half]), device)
                .cast(self.dtype)
        };
        (pick(&rows.cos), pick(&rows.sin))
    }

    /// Rotates the first `rotary_dim` dims of every head of `x` (`[batch, heads, seq, head_dim]`).
    pub fn apply(&self, x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, h, t, d] = x.dims();
        let rot = self.rotary_dim;
        if rot == 0 {
            return x;
        }
        let half = rot / 2;
        let (x_rot, x_pass) = if rot < d {
            (
                x.clone().slice([0..b, 0..h, 0..t, 0..rot]),
                Some(x.slice([0..b, 0..h, 0..t, rot..d])),
            )
        } else {
            (x, None)
        };
        let rotated = match self.interleaved {
            false => {
                let x1 = x_rot.clone().slice([0..b, 0..h, 0..t, 0..half]);
                let x2 = x_rot.slice([0..b, 0..h, 0..t, half..rot]);
                let o1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
                let o2 = x2 * cos.clone() + x1 * sin.clone();
                Tensor::cat(vec![o1, o2], 3)
            }
            true => {
                let pairs = x_rot.reshape([b, h, t, half, 2]);
                let xe = pairs.clone().slice([0..b, 0..h, 0..t, 0..half, 0..1]);
                let xo = pairs.slice([0..b, 0..h, 0..t, 0..half, 1..2]);
                let c = cos.clone().unsqueeze_dim::<5>(4);
                let s = sin.clone().unsqueeze_dim::<5>(4);
                let oe = xe.clone() * c.clone() - xo.clone() * s.clone();
                let oo = xo * c + xe * s;
                Tensor::cat(vec![oe, oo], 4).reshape([b, h, t, rot])
            }
        };
        match x_pass {
            Some(p) => Tensor::cat(vec![rotated, p], 3),
            None => rotated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let rope = RopeConfig {
            theta: 500_000.0,
            rotary_dim: 64,
            style: RopeStyle::Half,
            scaling: RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192,
            },
        };
        let plain = inv_freqs(&RopeConfig {
            scaling: RopeScaling::Default,
            ..rope
        });
        let scaled = inv_freqs(&rope);
        assert_eq!(scaled[0], plain[0], "highest frequency unchanged");
        let last = plain.len() - 1;
        assert!((scaled[last] - plain[last] / 8.0).abs() < 1e-12);
    }
}
