//! Rotary position embeddings: the HF `rotate_half` layout and GLM's partial interleaved one,
//! with position ids per row (so left-padded batches rotate by their real positions).

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

/// Precomputed cos/sin tables for positions `0..max_len` (constants of the module, not
/// parameters).
#[derive(Module, Debug)]
pub struct RopeTables<B: Backend> {
    /// `[max_len, rot/2]`.
    cos: Tensor<B, 2>,
    /// `[max_len, rot/2]`.
    sin: Tensor<B, 2>,
    rotary_dim: usize,
    interleaved: bool,
    max_len: usize,
}

impl<B: Backend> RopeTables<B> {
    /// Builds the tables on `device` in `dtype`.
    pub fn new(rope: &RopeConfig, max_len: usize, dtype: DType, device: &B::Device) -> Self {
        let inv = inv_freqs(rope);
        let half = inv.len();
        let mut cos = Vec::with_capacity(max_len * half);
        let mut sin = Vec::with_capacity(max_len * half);
        for p in 0..max_len {
            for &f in &inv {
                // f32 product as transformers computes it, then an exact cos/sin.
                let angle = (p as f32 * f) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let mk = |v: Vec<f32>| {
            Tensor::<B, 2>::from_data(TensorData::new(v, [max_len, half]), device).cast(dtype)
        };
        RopeTables {
            cos: mk(cos),
            sin: mk(sin),
            rotary_dim: rope.rotary_dim,
            interleaved: rope.style == RopeStyle::Interleaved,
            max_len,
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

    /// Number of positions covered.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Gathers the tables for `positions` (`[batch, seq]`), shaped `[batch, 1, seq, rot/2]`.
    pub fn gather(&self, positions: Tensor<B, 2, Int>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, t] = positions.dims();
        let flat = positions.reshape([b * t]);
        let half = self.rotary_dim / 2;
        let cos = self
            .cos
            .clone()
            .select(0, flat.clone())
            .reshape([b, 1, t, half]);
        let sin = self.sin.clone().select(0, flat).reshape([b, 1, t, half]);
        (cos, sin)
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
