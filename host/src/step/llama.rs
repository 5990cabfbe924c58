//! The Llama family's blocks (Llama 3, Qwen2.5): up to batch 8, seven kernels each: QKV
//! with the input RMSNorm folded in (and Qwen's biases), the rotary embedding with K and
//! V into the cache, attention over the KV head of each query head, o_proj with the
//! residual, gate and up with the RMSNorm folded in, SwiGLU, down with the residual.
//! Where no folded GEMV entry takes the shape (batches past 8) an RMSNorm of unit scale
//! writes h first and the plain GEMV reads it.

use super::{DecodeStep, DeviceModel, DeviceParameters};
use crate::cuda::{CudaError, Gpu, GpuBuffer, HalfBits};
use crate::model::LlamaDeviceWeights;
use gpu_kernels::abi::{
    Epilogue, FoldedNormGemvParams, GemvParams, Kernel, KvCacheLayer, RmsNormParams, RopeKvParams,
    SwigluParams,
};

/// The Llama family's weights of a model the step was told is one.
fn llama(weights: &DeviceParameters) -> &LlamaDeviceWeights {
    match weights {
        DeviceParameters::Llama(w) => w,
        DeviceParameters::Gpt2(_) => unreachable!("a Llama step over GPT-2 weights"),
    }
}

/// Width of the MLP's hidden activation.
fn intermediate(m: &DeviceModel) -> usize {
    m.config
        .llama
        .as_ref()
        .expect("a Llama model has its config")
        .intermediate
}

impl DecodeStep {
    /// The embedding, each block, the final RMSNorm into h.
    pub(super) fn enqueue_llama(&self, gpu: &Gpu, m: &mut DeviceModel) -> Result<(), CudaError> {
        let embed = llama(&m.weights).embed.as_ptr();
        gpu.launch(self.embedding(m, embed, std::ptr::null()))?;
        for l in 0..m.weights.layers() {
            let (qkv, gate_up) = self.normed_gemvs(m, l);
            self.launch_rms_normed(gpu, m, qkv)?;
            gpu.launch(self.rope_kv(m, l))?;
            gpu.launch(self.attention(m, l))?;
            gpu.launch(self.o_proj(m, l))?; // + residual
            self.launch_rms_normed(gpu, m, gate_up)?;
            gpu.launch(self.swiglu(m))?;
            gpu.launch(self.down(m, l))?; // + residual
        }
        let gamma = llama(&m.weights).final_norm.as_ptr();
        gpu.launch(self.rms_norm(m, gamma))
    }

    /// A GEMV reading the RMSNorm of x, the norm's scale folded into its weights: one
    /// launch where a folded entry takes the shape, else the norm of unit scale into h
    /// and the plain GEMV over h.
    fn launch_rms_normed(
        &self,
        gpu: &Gpu,
        m: &mut DeviceModel,
        folded: FoldedNormGemvParams,
    ) -> Result<(), CudaError> {
        if folded.check().is_ok() {
            return gpu.launch(folded);
        }
        let norm = self.rms_norm(m, std::ptr::null());
        gpu.launch(norm)?;
        gpu.launch(GemvParams {
            x: norm.out,
            ..folded.gemv
        })
    }

    /// The RMSNorm of x into h with scale `gamma` (null: 1).
    fn rms_norm(&self, m: &mut DeviceModel, gamma: *const f16) -> RmsNormParams {
        RmsNormParams {
            x: m.work.x.as_ptr(),
            gamma,
            out: m.work.h.as_mut_ptr(),
            d_model: m.config.d_model as u32,
            batch: self.batch as u32,
            eps: m.config.layer_norm_eps,
        }
    }

    /// A GEMV of `weight` over `n_in` inputs from `x` to `out`.
    fn gemv(
        &self,
        weight: &GpuBuffer<HalfBits>,
        bias: Option<&GpuBuffer<HalfBits>>,
        (x, out): (*const f16, *mut f16),
        n_in: usize,
        epilogue: Epilogue,
    ) -> GemvParams {
        GemvParams {
            x,
            w: weight.as_ptr(),
            bias: bias.map_or(std::ptr::null(), |b| b.as_ptr()),
            out,
            residual: out,
            cache: KvCacheLayer::NONE,
            in_features: n_in as u32,
            out_features: (weight.len() / n_in) as u32,
            batch: self.batch as u32,
            epilogue: epilogue as u32,
        }
    }

    /// Block `l`'s QKV and gate-up GEMVs over the RMSNorm of x (folded).
    fn normed_gemvs(
        &self,
        m: &mut DeviceModel,
        l: usize,
    ) -> (FoldedNormGemvParams, FoldedNormGemvParams) {
        let (d, eps) = (m.config.d_model, m.config.layer_norm_eps);
        let w = &mut m.work;
        let layer = &llama(&m.weights).layers[l];
        let x = w.x.as_ptr();
        let folded = |gemv| FoldedNormGemvParams {
            gemv,
            row_sums: std::ptr::null(),
            eps,
        };
        let qkv = self.gemv(
            &layer.qkv,
            layer.qkv_bias.as_ref(),
            (x, w.qkv.as_mut_ptr()),
            d,
            Epilogue::Store,
        );
        let gate_up = self.gemv(
            &layer.gate_up,
            None,
            (x, w.hidden.as_mut_ptr()),
            d,
            Epilogue::Store,
        );
        (folded(qkv), folded(gate_up))
    }

    fn rope_kv(&self, m: &mut DeviceModel, l: usize) -> RopeKvParams {
        let c = &m.config;
        let (n_head, n_kv_head, head_dim) = (c.n_head, c.n_kv_head(), c.head_dim());
        let w = &mut m.work;
        RopeKvParams {
            qkv: w.qkv.as_ptr(),
            rope: m
                .rope
                .as_ref()
                .expect("a Llama model has its rotary table")
                .as_ptr(),
            positions: w.positions.as_ptr(),
            q: w.q.as_mut_ptr(),
            k: m.cache.k(l),
            v: m.cache.v(l),
            n_head: n_head as u32,
            n_kv_head: n_kv_head as u32,
            head_dim: head_dim as u32,
            capacity: m.cache.capacity as u32,
            batch: self.batch as u32,
        }
    }

    fn o_proj(&self, m: &mut DeviceModel, l: usize) -> GemvParams {
        let n_in = m.config.n_head * m.config.head_dim();
        let w = &mut m.work;
        let io = (w.attn.as_ptr(), w.x.as_mut_ptr());
        let weight = &llama(&m.weights).layers[l].o_proj;
        self.gemv(weight, None, io, n_in, Epilogue::Residual)
    }

    fn swiglu(&self, m: &mut DeviceModel) -> SwigluParams {
        let intermediate = intermediate(m);
        SwigluParams {
            gate_up: m.work.hidden.as_ptr(),
            out: m.work.act.as_mut_ptr(),
            intermediate: intermediate as u32,
            batch: self.batch as u32,
        }
    }

    fn down(&self, m: &mut DeviceModel, l: usize) -> GemvParams {
        let intermediate = intermediate(m);
        let w = &mut m.work;
        let io = (w.act.as_ptr(), w.x.as_mut_ptr());
        let weight = &llama(&m.weights).layers[l].down;
        self.gemv(weight, None, io, intermediate, Epilogue::Residual)
    }
}
