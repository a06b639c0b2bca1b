//! Global-norm gradient clipping (PyTorch's `clip_grad_norm_`, what TRL's `max_grad_norm`
//! does): one L2 norm over **all** parameters together and one scale factor for every gradient.
//! burn's `GradientClippingConfig::Norm` clips each tensor on its own, which is not the same.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sq = g.cast(burn::tensor::DType::F32).powi_scalar(2).sum();
            self.sum = Some(match self.sum.take() {
                Some(s) => s + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f64,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The L2 norm of all gradients of `module` taken together: `sqrt(Σ_p ‖g_p‖²)`, summed in f32
/// on the device and read back once.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut v = SquaredNorm::<B> { grads, sum: None };
    module.visit(&mut v);
    match v.sum {
        Some(s) => {
            let sq: f32 = s.into_scalar().elem();
            (sq as f64).sqrt()
        }
        None => 0.0,
    }
}

/// Clips the gradients of `module` to global L2 norm `max_norm`, as PyTorch does:
/// `coef = max_norm / (norm + 1e-6)`, applied only when `coef < 1`. Returns the norm
/// **before** clipping (what TRL logs as `grad_norm`).
///
/// # Panics
/// If `max_norm` is not positive.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    assert!(max_norm > 0.0, "max_norm must be > 0");
    let norm = global_grad_norm::<B, M>(module, grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let mut v = Scale::<B> {
            grads,
            factor: coef,
            _b: std::marker::PhantomData,
        };
        module.visit(&mut v);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};

    type Ad = Autodiff<Flex>;

    fn setup() -> (Linear<Ad>, GradientsParams) {
        let lin: Linear<Ad> = LinearConfig::new(2, 3).init(&FlexDevice);
        let mut grads = GradientsParams::new();
        // weight [2, 3] all 1 (‖·‖² = 6), bias [3] all 2 (‖·‖² = 12): global norm sqrt(18).
        grads.register(lin.weight.id, Tensor::<Flex, 2>::ones([2, 3], &FlexDevice));
        grads.register(
            lin.bias.as_ref().unwrap().id,
            Tensor::<Flex, 1>::full([3], 2.0, &FlexDevice),
        );
        (lin, grads)
    }

    #[test]
    fn norm_is_global_and_one_factor_scales_everything() {
        let (lin, mut grads) = setup();
        let norm = clip_grad_norm::<Ad, _>(&lin, &mut grads, 1.0);
        assert!((norm - 18f64.sqrt()).abs() < 1e-6, "{norm}");
        let coef = (1.0 / (18f64.sqrt() + 1e-6)) as f32;
        let w = grads.get::<Flex, 2>(lin.weight.id).unwrap();
        let b = grads.get::<Flex, 1>(lin.bias.as_ref().unwrap().id).unwrap();
        for x in w.into_data().to_vec::<f32>().unwrap() {
            assert!((x - coef).abs() < 1e-6);
        }
        for x in b.into_data().to_vec::<f32>().unwrap() {
            assert!((x - 2.0 * coef).abs() < 1e-6);
        }
        // After clipping, the global norm is max_norm (per-tensor clipping would give
        // sqrt(2) instead).
        let after = global_grad_norm::<Ad, _>(&lin, &grads);
        assert!((after - 1.0).abs() < 1e-5, "{after}");
    }

    #[test]
    fn small_gradients_are_left_alone() {
        let (lin, mut grads) = setup();
        let norm = clip_grad_norm::<Ad, _>(&lin, &mut grads, 10.0);
        assert!((norm - 18f64.sqrt()).abs() < 1e-6);
        let b = grads.get::<Flex, 1>(lin.bias.as_ref().unwrap().id).unwrap();
        assert_eq!(b.into_data().to_vec::<f32>().unwrap(), vec![2.0; 3]);
    }
}
