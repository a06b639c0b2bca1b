//! Frozen models (the reference policy and the reward model): inference-only modules that can be
//! offloaded to host memory between the phases that use them, and a content fingerprint that
//! identifies their weights (for the reference-reward cache).
//!
//! Offloading copies every parameter to a host `TensorData` and replaces it on the device by a
//! one-element placeholder (same parameter id), so the device memory is released; restoring
//! uploads the host copies again, in the same order. On the CPU backend this only moves bytes
//! around; it is meant for GPU runs where four models do not fit at once.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

struct Offload {
    host: Vec<TensorData>,
}

impl<B: Backend> ModuleMapper<B> for Offload {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let dtype = tensor.dtype();
        self.host.push(tensor.into_data());
        let placeholder = Tensor::<B, D>::zeros([1; D], (&device, dtype));
        Param::from_mapped_value(id, placeholder, mapper)
    }
}

struct Restore<'a, B: Backend> {
    host: VecDeque<TensorData>,
    device: &'a B::Device,
}

impl<B: Backend> ModuleMapper<B> for Restore<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, _, mapper) = param.consume();
        let data = self
            .host
            .pop_front()
            .expect("one host tensor per parameter");
        let dtype = data.dtype;
        Param::from_mapped_value(id, Tensor::from_data(data, (self.device, dtype)), mapper)
    }
}

/// A frozen module, resident on its device or offloaded to host memory.
#[derive(Debug)]
pub struct Frozen<B: Backend, M: Module<B>> {
    module: M,
    host: Option<Vec<TensorData>>,
    offload: bool,
    _b: std::marker::PhantomData<B>,
}

impl<B: Backend, M: Module<B>> Frozen<B, M> {
    /// Wraps `module`. With `offload`, it is moved to host memory now and after every
    /// [`with`](Self::with).
    pub fn new(module: M, offload: bool) -> Self {
        let mut f = Frozen {
            module,
            host: None,
            offload,
            _b: std::marker::PhantomData,
        };
        if offload {
            f.offload_now();
        }
        f
    }

    /// Whether the parameters are in host memory right now.
    pub fn is_offloaded(&self) -> bool {
        self.host.is_some()
    }

    /// Moves the parameters to host memory (no-op when already there).
    pub fn offload_now(&mut self) {
        if self.host.is_none() {
            let mut m = Offload { host: Vec::new() };
            self.module = self.module.clone().map(&mut m);
            self.host = Some(m.host);
        }
    }

    /// Moves the parameters back to `device` (no-op when resident).
    pub fn restore(&mut self, device: &B::Device) {
        if let Some(host) = self.host.take() {
            let mut m = Restore::<B> {
                host: host.into(),
                device,
            };
            self.module = self.module.clone().map(&mut m);
        }
    }

    /// Runs `f` on the resident module, offloading it again afterwards when offloading is on.
    pub fn with<T>(&mut self, device: &B::Device, f: impl FnOnce(&M) -> T) -> T {
        self.restore(device);
        let out = f(&self.module);
        if self.offload {
            self.offload_now();
        }
        out
    }

    /// The module, restored onto `device` (and left there until the next [`with`](Self::with)).
    pub fn into_inner(mut self, device: &B::Device) -> M {
        self.restore(device);
        self.module
    }
}

struct Hasher(rlhf_util::Fnv1a);

impl Hasher {
    fn bytes(&mut self, b: &[u8]) {
        self.0.write(b);
    }
}

impl<B: Backend> ModuleVisitor<B> for Hasher {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        for d in t.dims() {
            self.bytes(&(d as u64).to_le_bytes());
        }
        let v: Vec<f32> = t
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("float parameter");
        for x in v {
            self.bytes(&x.to_bits().to_le_bytes());
        }
    }
}

/// FNV-1a (64-bit, hex) over every float parameter's shape and f32 values, in visiting order:
/// equal weights give equal fingerprints on every backend that computes in f32.
pub fn module_fingerprint<B: Backend, M: Module<B>>(module: &M) -> String {
    let mut h = Hasher(rlhf_util::Fnv1a::new());
    module.visit(&mut h);
    format!("{:016x}", h.0.finish())
}

/// FNV-1a (64-bit) of token ids, hex: the prompt hash of the reference-reward cache.
pub fn ids_hash(ids: &[u32]) -> String {
    let mut h = rlhf_util::Fnv1a::new();
    for &i in ids {
        h.write(&i.to_le_bytes());
    }
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;
    use rlhf_core::{CausalLm, ModelConfig, PadSide, TokenBatch};

    #[test]
    fn offload_and_restore_keep_the_outputs() {
        let cfg = ModelConfig::tiny_llama(40);
        let model = CausalLm::<Flex>::init(&cfg, 0.02, 1, &FlexDevice);
        let print = module_fingerprint(&model);
        let batch = TokenBatch::from_rows(&[vec![3, 4, 5]], 0, PadSide::Right);
        let before = model.forward(&batch, &FlexDevice).into_data();
        let mut f = Frozen::new(model, true);
        assert!(f.is_offloaded());
        let after = f.with(&FlexDevice, |m| m.forward(&batch, &FlexDevice).into_data());
        assert!(f.is_offloaded());
        before.assert_eq(&after, true);
        let m = f.into_inner(&FlexDevice);
        assert_eq!(module_fingerprint(&m), print);
        let other = CausalLm::<Flex>::init(&cfg, 0.02, 2, &FlexDevice);
        assert_ne!(module_fingerprint(&other), print);
        assert_eq!(ids_hash(&[1, 2]), ids_hash(&[1, 2]));
        assert_ne!(ids_hash(&[1, 2]), ids_hash(&[2, 1]));
    }
}
