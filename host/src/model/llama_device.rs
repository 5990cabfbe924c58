//! A Llama-family model's weights in device memory, uploaded once, the RMSNorm scales
//! folded into the GEMVs that read the normalized stream (`W diag(gamma)`, each product
//! rounded once to the model's half type): the folded GEMV then normalizes x itself
//! (`FoldedNormGemvParams` with no row sums), and where it cannot, an RMSNorm of unit
//! scale runs before the plain GEMV over the same folded weights.

use super::error::ModelError;
use super::llama_weights::LlamaWeights;
use crate::cuda::{CudaError, Gpu, GpuBuffer};
use crate::halves::{HalfBits, HalfType};

/// One block on the GPU; shapes as in [`super::LlamaLayer`].
pub struct LlamaDeviceLayer {
    /// q, k and v stacked, input_layernorm folded in.
    pub qkv: GpuBuffer<HalfBits>,
    /// Their biases (Qwen2).
    pub qkv_bias: Option<GpuBuffer<HalfBits>>,
    /// o_proj.
    pub o_proj: GpuBuffer<HalfBits>,
    /// gate and up stacked, post_attention_layernorm folded in.
    pub gate_up: GpuBuffer<HalfBits>,
    /// down_proj.
    pub down: GpuBuffer<HalfBits>,
}

/// A Llama-family model's parameters on the GPU.
pub struct LlamaDeviceWeights {
    /// (vocab, d) the token embedding.
    pub embed: GpuBuffer<HalfBits>,
    /// The blocks.
    pub layers: Vec<LlamaDeviceLayer>,
    /// (d) the final RMSNorm's scale.
    pub final_norm: GpuBuffer<HalfBits>,
    /// (vocab, d) the LM head when untied.
    pub lm_head: Option<GpuBuffer<HalfBits>>,
}

impl LlamaDeviceWeights {
    /// The LM head: its own weights, or the embedding when tied.
    pub fn head(&self) -> &GpuBuffer<HalfBits> {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Uploads every tensor, the norms folded (check them first with
    /// [`check_llama_folds`]); `progress` is told the bytes after each one.
    pub fn upload(
        gpu: &Gpu,
        weights: &LlamaWeights,
        mut progress: impl FnMut(usize),
    ) -> Result<Self, CudaError> {
        let half = weights.half_type();
        let mut up = |host: &[HalfBits]| {
            let buffer = gpu.upload(host)?;
            progress(2 * host.len());
            Ok::<_, CudaError>(buffer)
        };
        let embed = up(&weights.embed)?;
        let mut layers = Vec::with_capacity(weights.layers.len());
        for l in &weights.layers {
            layers.push(LlamaDeviceLayer {
                qkv: up(&fold_rms(&l.qkv, &l.attn_norm, half))?,
                qkv_bias: l.qkv_bias.as_deref().map(&mut up).transpose()?,
                o_proj: up(&l.o_proj)?,
                gate_up: up(&fold_rms(&l.gate_up, &l.mlp_norm, half))?,
                down: up(&l.down)?,
            });
        }
        let final_norm = up(&weights.final_norm)?;
        let lm_head = weights.lm_head.as_deref().map(&mut up).transpose()?;
        Ok(LlamaDeviceWeights {
            embed,
            layers,
            final_norm,
            lm_head,
        })
    }
}

/// `weight (out, in) diag(gamma)`, each product of the two halves exact in f32 and
/// rounded once to `half`.
pub fn fold_rms(weight: &[HalfBits], gamma: &[HalfBits], half: HalfType) -> Vec<HalfBits> {
    let gamma: Vec<f32> = gamma.iter().map(|g| g.to_f32(half)).collect();
    weight
        .chunks_exact(gamma.len())
        .flat_map(|row| {
            row.iter()
                .zip(&gamma)
                .map(|(w, g)| HalfBits::from_f32(w.to_f32(half) * g, half))
        })
        .collect()
}

/// Refuses, naming the layer, weights whose folded products the half type cannot hold
/// (fp16 models; bf16 has f32's range): checked before anything is uploaded. A layer is
/// scanned product by product only where the largest weight times the largest scale
/// could overflow; real checkpoints never come near, so loading folds each weight once.
pub fn check_llama_folds(weights: &LlamaWeights) -> Result<(), ModelError> {
    let half = weights.half_type();
    let largest = |values: &[HalfBits]| {
        values
            .iter()
            .map(|v| v.to_f32(half).abs())
            .fold(0.0f32, f32::max)
    };
    let limit = match half {
        HalfType::F16 => 65504.0,
        HalfType::Bf16 => f32::MAX,
    };
    for (i, l) in weights.layers.iter().enumerate() {
        for (name, weight, gamma) in [
            ("self_attn.qkv", &l.qkv, &l.attn_norm),
            ("mlp.gate_up", &l.gate_up, &l.mlp_norm),
        ] {
            // Within the limit by a margin that the rounding of the bound cannot cross.
            if largest(weight) * largest(gamma) < limit * 0.99 {
                continue;
            }
            let gamma: Vec<f32> = gamma.iter().map(|g| g.to_f32(half)).collect();
            for row in weight.chunks_exact(gamma.len()) {
                for (w, g) in row.iter().zip(&gamma) {
                    let value = w.to_f32(half) * g;
                    if !HalfBits::from_f32(value, half).to_f32(half).is_finite() {
                        return Err(ModelError::FoldOverflow {
                            norm: "RMSNorm",
                            name: format!("model.layers.{i}.{name}"),
                            value,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tiny_llama;

    #[test]
    fn an_fp16_fold_that_overflows_is_named_and_bf16_holds_it() {
        for (half, overflows) in [(HalfType::F16, true), (HalfType::Bf16, false)] {
            let mut weights = LlamaWeights::random(&tiny_llama(half), 5);
            weights.layers[1].mlp_norm[7] = HalfBits::from_f32(30_000.0, half);
            weights.layers[1].gate_up[7] = HalfBits::from_f32(4.0, half);
            let result = check_llama_folds(&weights);
            assert_eq!(result.is_err(), overflows, "{half:?}");
            if let Err(e) = result {
                let message = e.to_string();
                assert!(
                    message.starts_with("model.layers.1.mlp.gate_up: folding the RMSNorm"),
                    "{message}"
                );
            }
        }
    }
}
