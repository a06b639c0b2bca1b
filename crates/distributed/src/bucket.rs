//! Gradient bucketing: every gradient of a module, in the module's visiting order, flattened
//! into one f32 vector (with a few extra scalars at its end), and back.
//!
//! One all-reduce per step instead of one per parameter tensor (PyTorch DDP's buckets): every
//! all-reduce is a rendezvous of the replica threads and, across nodes, a round trip through
//! node 0, so their count matters more than their size for small models. The order is the module's structure, not
//! `ParamId`s: replicas built independently (one per process) have different random ids, and
//! burn's `GradientsParams::all_reduce` sorts by id, which would pair different tensors there.
//! A parameter without a gradient (unused in this rank's shard) contributes zeros, so every
//! rank sends a bucket of the same length. Frozen parameters (`require_grad` off, e.g. the base
//! weights under LoRA) are skipped: they are identical on every rank and get no update.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::Device;

struct Flatten<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    parts: Vec<Tensor<B::InnerBackend, 1>>,
    device: &'a Device<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.val().is_require_grad() {
            return;
        }
        let shape = param.shape();
        let n = shape.num_elements();
        let flat = match self.grads.remove::<B::InnerBackend, D>(param.id) {
            Some(g) => g.cast(DType::F32).reshape([n]),
            None => Tensor::zeros([n], self.device),
        };
        self.parts.push(flat);
    }
}

struct Unflatten<'a, B: AutodiffBackend> {
    flat: Tensor<B::InnerBackend, 1>,
    offset: usize,
    out: &'a mut GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.val().is_require_grad() {
            return;
        }
        let shape = param.shape();
        let n = shape.num_elements();
        let dtype = param.val().dtype();
        let g = self
            .flat
            .clone()
            .narrow(0, self.offset, n)
            .reshape(shape)
            .cast(dtype);
        self.offset += n;
        self.out.register::<B::InnerBackend, D>(param.id, g);
    }
}

/// Flattens the gradients of `module` (taking them out of `grads`) followed by `extras` into
/// one `[n_params + extras.len()]` f32 tensor on `device`.
pub(crate) fn flatten<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    extras: &[f32],
    device: &Device<B::InnerBackend>,
) -> Tensor<B::InnerBackend, 1> {
    let mut v = Flatten::<B> {
        grads: &mut grads,
        parts: Vec::new(),
        device,
    };
    module.visit(&mut v);
    let mut parts = v.parts;
    if !extras.is_empty() {
        parts.push(Tensor::from_data(
            TensorData::new(extras.to_vec(), [extras.len()]),
            device,
        ));
    }
    Tensor::cat(parts, 0)
}

/// The inverse of [`flatten`]: the gradients of `module` (in each parameter's dtype) and the
/// `n_extras` trailing scalars.
pub(crate) fn unflatten<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    flat: Tensor<B::InnerBackend, 1>,
    n_extras: usize,
) -> (GradientsParams, Vec<f32>) {
    let total = flat.dims()[0];
    let mut out = GradientsParams::new();
    let mut v = Unflatten::<B> {
        flat: flat.clone(),
        offset: 0,
        out: &mut out,
    };
    module.visit(&mut v);
    let used = v.offset;
    assert_eq!(
        used + n_extras,
        total,
        "bucket of {total} values for {used} gradient values and {n_extras} extras"
    );
    let extras = if n_extras == 0 {
        Vec::new()
    } else {
        flat.narrow(0, used, n_extras)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 data")
    };
    (out, extras)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};

    type Ad = Autodiff<Flex>;

    #[test]
    fn round_trip_fills_missing_gradients_with_zeros() {
        let lin: Linear<Ad> = LinearConfig::new(2, 3).init(&FlexDevice);
        let mut grads = GradientsParams::new();
        let w = Tensor::<Flex, 2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &FlexDevice);
        grads.register(lin.weight.id, w.clone());
        let flat = flatten::<Ad, _>(&lin, grads, &[7.0, 8.0], &FlexDevice);
        assert_eq!(
            flat.clone().into_data().to_vec::<f32>().unwrap(),
            vec![1., 2., 3., 4., 5., 6., 0., 0., 0., 7., 8.]
        );
        let (g, extras) = unflatten::<Ad, _>(&lin, flat, 2);
        assert_eq!(extras, vec![7.0, 8.0]);
        let gw = g.get::<Flex, 2>(lin.weight.id).unwrap();
        assert_eq!(gw.into_data(), w.into_data());
        let gb = g.get::<Flex, 1>(lin.bias.as_ref().unwrap().id).unwrap();
        assert_eq!(gb.into_data().to_vec::<f32>().unwrap(), vec![0.0; 3]);
    }
}
