//! GPT-2's blocks: five kernels each up to batch 8 (QKV with ln_1 folded in and K and V
//! into the cache, attention, the output projection with the residual, fc with ln_2
//! folded in and GELU, the MLP projection with the residual), seven from batch 9 (a
//! layernorm of unit scale before each folded GEMV).

use super::{DecodeStep, DeviceModel, DeviceParameters};
use crate::cuda::{CudaError, Gpu, GpuBuffer};
use crate::model::DeviceWeights;
use gpu_kernels::abi::{
    AttentionParams, Epilogue, FoldedNormGemvParams, GemvParams, KvCacheLayer, LayerNormParams,
};

/// GPT-2's weights of a model the step was told is GPT-2.
fn gpt2(weights: &DeviceParameters) -> &DeviceWeights {
    match weights {
        DeviceParameters::Gpt2(w) => w,
        DeviceParameters::Llama(_) => unreachable!("a GPT-2 step over Llama weights"),
    }
}

impl DecodeStep {
    /// The embedding, each block, ln_f into h.
    pub(super) fn enqueue_gpt2(&self, gpu: &Gpu, m: &mut DeviceModel) -> Result<(), CudaError> {
        let weights = gpt2(&m.weights);
        let (wte, wpe) = (weights.wte.as_ptr(), weights.wpe.as_ptr());
        gpu.launch(self.embedding(m, wte, wpe))?;
        for l in 0..m.weights.layers() {
            let block = self.block(m, l);
            self.launch_normed(gpu, block.unit_norm, block.qkv)?; // ln_1, QKV, K and V cached
            gpu.launch(block.attention)?;
            gpu.launch(block.attn_proj)?; // + residual
            self.launch_normed(gpu, block.unit_norm, block.fc)?; // ln_2, fc, GELU
            gpu.launch(block.mlp_proj)?; // + residual
        }
        gpu.launch(self.final_norm(m))
    }

    /// A GEMV whose input is the layernorm of the residual stream, the layernorm folded
    /// into its weights: one launch where the kernel normalizes x itself, else the
    /// layernorm with unit scale (writing h) and the GEMV reading h.
    fn launch_normed(
        &self,
        gpu: &Gpu,
        unit_norm: LayerNormParams,
        gemv: FoldedNormGemvParams,
    ) -> Result<(), CudaError> {
        if FoldedNormGemvParams::supports_batch(self.batch as u32) {
            return gpu.launch(gemv);
        }
        gpu.launch(unit_norm)?;
        gpu.launch(GemvParams {
            x: unit_norm.out,
            ..gemv.gemv
        })
    }

    /// The layernorm of the residual stream x into h.
    fn layernorm(
        &self,
        m: &mut DeviceModel,
        gamma: *const f16,
        beta: *const f16,
    ) -> LayerNormParams {
        LayerNormParams {
            x: m.work.x.as_mut_ptr(),
            gamma,
            beta,
            out: m.work.h.as_mut_ptr(),
            d_model: m.config.d_model as u32,
            batch: self.batch as u32,
            eps: m.config.layer_norm_eps,
        }
    }

    fn final_norm(&self, m: &mut DeviceModel) -> LayerNormParams {
        let ln_f = &gpt2(&m.weights).ln_f;
        let (gamma, beta) = (ln_f.0.as_ptr(), ln_f.1.as_ptr());
        self.layernorm(m, gamma, beta)
    }

    /// The parameters of block `l`'s launches.
    fn block(&self, m: &mut DeviceModel, l: usize) -> Block {
        let attention = self.attention(m, l);
        let unit_norm = {
            let (ones, zeros) = &gpt2(&m.weights).unit_norm;
            let (gamma, beta) = (ones.as_ptr(), zeros.as_ptr());
            self.layernorm(m, gamma, beta)
        };
        let (c, w, batch) = (&m.config, &mut m.work, self.batch as u32);
        let d = c.d_model as u32;
        let (x, q, attn, hidden) = (
            w.x.as_mut_ptr(),
            w.q.as_mut_ptr(),
            w.attn.as_mut_ptr(),
            w.hidden.as_mut_ptr(),
        );
        let layer = &gpt2(&m.weights).layers[l];
        let (k, v) = (m.cache.k(l), m.cache.v(l));
        let gemv = |weight: &GpuBuffer<half::f16>,
                    bias: &GpuBuffer<half::f16>,
                    input: *mut f16,
                    out: *mut f16,
                    n_in: u32,
                    epilogue: Epilogue| GemvParams {
            x: input,
            w: weight.as_ptr(),
            bias: bias.as_ptr(),
            out,
            residual: out,
            cache: KvCacheLayer::NONE,
            in_features: n_in,
            out_features: (weight.len() / n_in as usize) as u32,
            batch,
            epilogue: epilogue as u32,
        };
        // The folded GEMVs read the residual stream x and normalize it themselves.
        let normed = |gemv: GemvParams, row_sums: &GpuBuffer<f32>| FoldedNormGemvParams {
            gemv,
            row_sums: row_sums.as_ptr(),
            eps: c.layer_norm_eps,
        };
        let (qkv, fc) = (&layer.qkv, &layer.fc);
        Block {
            unit_norm,
            attention,
            qkv: normed(
                GemvParams {
                    cache: KvCacheLayer {
                        k,
                        v,
                        positions: w.positions.as_ptr(),
                        capacity: m.cache.capacity as u32,
                    },
                    ..gemv(&qkv.weight, &qkv.bias, x, q, d, Epilogue::QkvToCache)
                },
                &qkv.row_sums,
            ),
            attn_proj: gemv(
                &layer.attn_proj.0,
                &layer.attn_proj.1,
                attn,
                x,
                d,
                Epilogue::Residual,
            ),
            fc: normed(
                gemv(&fc.weight, &fc.bias, x, hidden, d, Epilogue::Gelu),
                &fc.row_sums,
            ),
            mlp_proj: gemv(
                &layer.mlp_proj.0,
                &layer.mlp_proj.1,
                hidden,
                x,
                4 * d,
                Epilogue::Residual,
            ),
        }
    }
}

/// The launches of one transformer block.
struct Block {
    /// A layernorm with unit scale from x into h: ln_1 and ln_2 where the GEMV after them
    /// cannot normalize its input itself (their scales are folded into its weights).
    unit_norm: LayerNormParams,
    /// ln_1, the QKV projection, K and V into the cache.
    qkv: FoldedNormGemvParams,
    /// Attention over the cache.
    attention: AttentionParams,
    /// The output projection, added to x.
    attn_proj: GemvParams,
    /// ln_2, c_fc, GELU.
    fc: FoldedNormGemvParams,
    /// The MLP's projection, added to x.
    mlp_proj: GemvParams,
}
