//! The KV cache: one pool for every layer, sequence slot and position, allocated once so
//! its addresses stay fixed for the engine's life (graphs capture them).

use super::config::Config;
use crate::cuda::{CudaError, Gpu, GpuBuffer, HalfBits};

/// Keys and values of (n_layer, max_batch, n_kv_head, capacity, head_dim) each, in the
/// model's half type.
pub struct KvCache {
    k: GpuBuffer<HalfBits>,
    v: GpuBuffer<HalfBits>,
    layer_stride: usize,
    /// Sequence slots.
    pub max_batch: usize,
    /// Positions per sequence.
    pub capacity: usize,
}

impl KvCache {
    /// Allocates the pool (poisoned: a position read before it is written shows as NaN).
    pub fn new(
        gpu: &Gpu,
        config: &Config,
        max_batch: usize,
        capacity: usize,
    ) -> Result<Self, CudaError> {
        let sizes = [max_batch, config.n_kv_head(), capacity, config.head_dim()];
        let layer_stride = sizes.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let len = layer_stride.and_then(|s| s.checked_mul(config.n_layer));
        let (Some(layer_stride), Some(len)) = (layer_stride, len) else {
            return Err(CudaError::Driver {
                call: "cuMemAlloc",
                reason: format!(
                    "a KV cache of {} layers x {max_batch} sequences x {capacity} positions is more bytes than 64 bits count",
                    config.n_layer
                ),
            });
        };
        Ok(KvCache {
            k: gpu.alloc_poisoned(len)?,
            v: gpu.alloc_poisoned(len)?,
            layer_stride,
            max_batch,
            capacity,
        })
    }

    /// Fills every key and value with uniform random values in (-1, 1), on the GPU: a
    /// benchmark can then decode at any position without a prefill, over a cache that
    /// holds no zeros and no poison.
    pub fn randomize(&mut self, gpu: &Gpu, seed: u64) -> Result<(), CudaError> {
        gpu.fill_uniform(&mut self.k, seed, 1.0)?;
        gpu.fill_uniform(&mut self.v, seed ^ 0x5555, 1.0)?;
        gpu.synchronize()
    }

    /// Bytes of device memory the pool holds.
    pub fn bytes(&self) -> usize {
        2 * 2 * self.k.len()
    }

    /// Layer `l`'s keys, (max_batch, n_kv_head, capacity, head_dim).
    pub fn k(&mut self, layer: usize) -> *mut f16 {
        self.k.as_mut_ptr().wrapping_add(layer * self.layer_stride)
    }

    /// Layer `l`'s values, (max_batch, n_kv_head, capacity, head_dim).
    pub fn v(&mut self, layer: usize) -> *mut f16 {
        self.v.as_mut_ptr().wrapping_add(layer * self.layer_stride)
    }
}
