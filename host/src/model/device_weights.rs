//! The weights in device memory, uploaded once; buffers never move afterwards.

use super::weights::Weights;
use crate::cuda::{CudaError, Gpu, GpuBuffer};
use half::f16;

/// One block's parameters on the GPU; shapes as in [`super::LayerWeights`].
pub struct DeviceLayer {
    /// (d) and (d).
    pub ln_1: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (3d, d) and (3d).
    pub qkv: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (d, d) and (d).
    pub attn_proj: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (d) and (d).
    pub ln_2: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (4d, d) and (4d).
    pub fc: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (d, 4d) and (d).
    pub mlp_proj: (GpuBuffer<f16>, GpuBuffer<f16>),
}

/// A model's parameters on the GPU.
pub struct DeviceWeights {
    /// (vocab, d): embedding and LM head.
    pub wte: GpuBuffer<f16>,
    /// (n_positions, d).
    pub wpe: GpuBuffer<f16>,
    /// The blocks.
    pub layers: Vec<DeviceLayer>,
    /// (d) and (d).
    pub ln_f: (GpuBuffer<f16>, GpuBuffer<f16>),
}

impl DeviceWeights {
    /// Uploads every tensor; `progress` is told the bytes after each one.
    pub fn upload(
        gpu: &Gpu,
        weights: &Weights,
        mut progress: impl FnMut(usize),
    ) -> Result<Self, CudaError> {
        let mut up = |host: &[f16]| {
            let buffer = gpu.upload(host)?;
            progress(2 * host.len());
            Ok::<_, CudaError>(buffer)
        };
        let wte = up(&weights.wte)?;
        let wpe = up(&weights.wpe)?;
        let mut layers = Vec::with_capacity(weights.layers.len());
        for l in &weights.layers {
            layers.push(DeviceLayer {
                ln_1: (up(&l.ln_1_gamma)?, up(&l.ln_1_beta)?),
                qkv: (up(&l.qkv_w)?, up(&l.qkv_b)?),
                attn_proj: (up(&l.attn_proj_w)?, up(&l.attn_proj_b)?),
                ln_2: (up(&l.ln_2_gamma)?, up(&l.ln_2_beta)?),
                fc: (up(&l.fc_w)?, up(&l.fc_b)?),
                mlp_proj: (up(&l.mlp_proj_w)?, up(&l.mlp_proj_b)?),
            });
        }
        let ln_f = (up(&weights.ln_f_gamma)?, up(&weights.ln_f_beta)?);
        Ok(DeviceWeights {
            wte,
            wpe,
            layers,
            ln_f,
        })
    }
}
