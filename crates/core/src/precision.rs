//! Training precision: f32, or bf16 mixed precision with f32 master weights.
//!
//! [`cast_params`] casts every float parameter (keeping its id and, on an autodiff backend, its
//! place in the graph): a bf16 compute copy of an f32 master model whose gradients flow back to
//! the f32 parameters. The trainers call [`Precision::compute`] on the model before every
//! forward pass; the optimizer state and the updates stay in f32, and log-probs, softmaxes and
//! losses are computed in f32 (the heads cast their outputs).

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

/// The dtype of the forward and backward passes during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 compute on f32 master weights (the usual choice on GPUs with bf16 tensor cores).
    Bf16,
}

impl Precision {
    /// The compute dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// The copy of `module` the forward pass runs on: `module` itself in f32, a bf16 cast (in
    /// the autodiff graph) for mixed precision.
    pub fn compute<B: Backend, M: Module<B>>(self, module: M) -> M {
        match self {
            Precision::F32 => module,
            p => cast_params(module, p.dtype()),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(format!("invalid precision `{other}`: expected f32 or bf16")),
        }
    }
}

struct CastParams(DType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dt = self.0;
        param.map(|t| if t.dtype() == dt { t } else { t.cast(dt) })
    }
}

/// Casts every float parameter of `module` to `dtype` (parameters already in it are left
/// alone). Ids are kept, and on an autodiff backend the cast is part of the graph: gradients of
/// a loss computed with the cast copy reach the original parameters in their own dtype. This is
/// how the trainers run bf16 mixed precision: f32 master weights and optimizer state, a bf16
/// copy for the forward and backward passes, log-probs and losses in f32.
pub fn cast_params<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    module.map(&mut CastParams(dtype))
}
