//! The weights in device memory, uploaded once; buffers never move afterwards.

use super::fold::{FoldedLayer, FoldedLinear};
use super::weights::Weights;
use crate::cuda::{CudaError, Gpu, GpuBuffer};
use half::f16;

/// A linear layer with the layernorm before it folded in (see [`super::fold_layers`]).
pub struct FoldedDeviceLinear {
    /// (out, in) `W diag(gamma)`.
    pub weight: GpuBuffer<f16>,
    /// (out) `b + W beta`.
    pub bias: GpuBuffer<f16>,
    /// (out) sum of each row of `weight`.
    pub row_sums: GpuBuffer<f32>,
}

/// One block's parameters on the GPU; shapes as in [`super::LayerWeights`]. ln_1 and
/// ln_2 live folded in `qkv` and `fc`.
pub struct DeviceLayer {
    /// (3d, d) with ln_1 folded in.
    pub qkv: FoldedDeviceLinear,
    /// (d, d) and (d).
    pub attn_proj: (GpuBuffer<f16>, GpuBuffer<f16>),
    /// (4d, d) with ln_2 folded in.
    pub fc: FoldedDeviceLinear,
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
    /// (d) ones and (d) zeros: the layernorm that precedes the folded layers where the
    /// GEMV reads a normalized copy of x instead of normalizing x itself (batches past
    /// 8).
    pub unit_norm: (GpuBuffer<f16>, GpuBuffer<f16>),
}

impl DeviceWeights {
    /// Uploads every tensor, the blocks' QKV and fc layers as `folded` (one per block,
    /// from [`super::fold_layers`] of the same weights); `progress` is told the bytes
    /// after each one.
    pub fn upload(
        gpu: &Gpu,
        weights: &Weights,
        folded: &[FoldedLayer],
        mut progress: impl FnMut(usize),
    ) -> Result<Self, CudaError> {
        assert_eq!(
            folded.len(),
            weights.layers.len(),
            "one folded layer per block"
        );
        let mut up = |host: &[f16]| {
            let buffer = gpu.upload(host)?;
            progress(2 * host.len());
            Ok::<_, CudaError>(buffer)
        };
        let wte = up(&weights.wte)?;
        let wpe = up(&weights.wpe)?;
        let mut layers = Vec::with_capacity(weights.layers.len());
        for (l, f) in weights.layers.iter().zip(folded) {
            let mut up_folded = |linear: &FoldedLinear| {
                Ok::<_, CudaError>(FoldedDeviceLinear {
                    weight: up(&linear.weight)?,
                    bias: up(&linear.bias)?,
                    row_sums: gpu.upload(&linear.row_sums)?,
                })
            };
            let (qkv, fc) = (up_folded(&f.qkv)?, up_folded(&f.fc)?);
            layers.push(DeviceLayer {
                qkv,
                attn_proj: (up(&l.attn_proj_w)?, up(&l.attn_proj_b)?),
                fc,
                mlp_proj: (up(&l.mlp_proj_w)?, up(&l.mlp_proj_b)?),
            });
        }
        let ln_f = (up(&weights.ln_f_gamma)?, up(&weights.ln_f_beta)?);
        let d = weights.config.d_model;
        let unit_norm = (
            gpu.upload(&vec![f16::ONE; d])?,
            gpu.upload(&vec![f16::ZERO; d])?,
        );
        Ok(DeviceWeights {
            wte,
            wpe,
            layers,
            ln_f,
            unit_norm,
        })
    }
}
