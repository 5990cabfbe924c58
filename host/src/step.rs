//! One decode step: every kernel of one token for a batch, enqueued on the GPU's stream.
//!
//! Graph-safe by construction: everything it touches is allocated in [`DeviceModel::new`]
//! and never moves, inputs are read from and outputs written to fixed device buffers, and
//! no host code branches on device data. The same `enqueue` runs eagerly and under capture.

use crate::cuda::{CudaError, Gpu, GpuBuffer};
use crate::model::{Config, DeviceWeights, KvCache};
use gpu_kernels::abi::{
    ArgmaxFinalizeParams, AttentionParams, DecoderLayerParams, EmbeddingParams, Epilogue, Feedback,
    FoldedNormGemvParams, GemvParams, KvCacheLayer, LayerNormParams, LmHeadParams,
};
use half::f16 as Half;

/// Activations, scratch and step I/O for up to `max_batch` sequences; d = d_model.
pub struct Workspace {
    /// (max_batch) input token of each sequence.
    pub tokens: GpuBuffer<u32>,
    /// (max_batch) its position.
    pub positions: GpuBuffer<u32>,
    /// (max_batch) positions attended to: position + 1.
    pub lengths: GpuBuffer<u32>,
    /// (max_batch) cache rows complete before a graph of chained steps began: its first
    /// step's positions, copied in with the inputs beside `positions`, which the chain
    /// advances ([`AttentionParams::settled`]: attention takes each length as these plus
    /// the step's index in its chain + 1, so they must agree with `lengths`). A step of
    /// its own reads `positions` instead.
    pub settled: GpuBuffer<u32>,
    /// (max_batch) the greedy next token of each sequence.
    pub next_tokens: GpuBuffer<u32>,
    /// (MAX_STEPS_PER_GRAPH, max_batch) next tokens of the steps of one graph, row i
    /// written by step i of a chain (see [`DecodeStep::chain_row`]).
    pub history: GpuBuffer<u32>,
    /// (max_batch, vocab) logits, written when a step asks for them.
    pub logits: GpuBuffer<f32>,
    x: GpuBuffer<Half>,
    h: GpuBuffer<Half>,
    q: GpuBuffer<Half>,
    attn: GpuBuffer<Half>,
    hidden: GpuBuffer<Half>,
    partial_out: GpuBuffer<f32>,
    partial_stats: GpuBuffer<f32>,
    counters: GpuBuffer<u32>,
    best: GpuBuffer<u64>,
    /// The fused layer kernel's grid-barrier counter (its barriers leave it as found).
    barrier: GpuBuffer<u32>,
}

/// Everything one model needs on the GPU, allocated once.
pub struct DeviceModel {
    /// The shape.
    pub config: Config,
    /// The parameters.
    pub weights: DeviceWeights,
    /// The KV pool.
    pub cache: KvCache,
    /// Activations and I/O.
    pub work: Workspace,
    /// Run each transformer block as one fused kernel where the batch allows it
    /// ([`DecoderLayerParams`], batch 1), or as separate kernels (the default: the
    /// faster, as measured). The separate kernels fold the layernorms into the GEMVs,
    /// which agrees to rounding. Graphs record whichever was set when they were made.
    pub fuse_layers: bool,
}

impl DeviceModel {
    /// Allocates the cache and workspace for `max_batch` sequences of up to `capacity`
    /// positions next to already uploaded weights.
    pub fn new(
        gpu: &Gpu,
        config: &Config,
        weights: DeviceWeights,
        max_batch: usize,
        capacity: usize,
    ) -> Result<Self, CudaError> {
        let d = config.d_model;
        let splits = AttentionParams::splits(capacity as u32) as usize;
        let partials = max_batch * config.n_head * splits;
        let work = Workspace {
            tokens: gpu.alloc_zeroed(max_batch)?,
            positions: gpu.alloc_zeroed(max_batch)?,
            lengths: gpu.alloc_zeroed(max_batch)?,
            settled: gpu.alloc_zeroed(max_batch)?,
            next_tokens: gpu.alloc_poisoned(max_batch)?,
            history: gpu.alloc_poisoned(MAX_STEPS_PER_GRAPH * max_batch)?,
            logits: gpu.alloc_poisoned(max_batch * config.vocab)?,
            x: gpu.alloc_poisoned(max_batch * d)?,
            h: gpu.alloc_poisoned(max_batch * d)?,
            q: gpu.alloc_poisoned(max_batch * d)?,
            attn: gpu.alloc_poisoned(max_batch * d)?,
            hidden: gpu.alloc_poisoned(max_batch * 4 * d)?,
            partial_out: gpu.alloc_poisoned(partials * config.head_dim())?,
            partial_stats: gpu.alloc_poisoned(partials * 2)?,
            // Kernels leave these zero after every launch.
            counters: gpu.alloc_zeroed(max_batch * config.n_head)?,
            best: gpu.alloc_zeroed(max_batch)?,
            barrier: gpu.alloc_zeroed(1)?,
        };
        Ok(DeviceModel {
            config: config.clone(),
            weights,
            cache: KvCache::new(gpu, config, max_batch, capacity)?,
            work,
            fuse_layers: false,
        })
    }
}

/// The most decode steps one graph chains on the device.
pub const MAX_STEPS_PER_GRAPH: usize = 16;

/// The shape of one step: how many sequences, which context bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeStep {
    /// Sequences (rows of the I/O buffers), up to the model's max_batch.
    pub batch: usize,
    /// No sequence attends to more positions than this (the cache capacity at most).
    pub context_bucket: usize,
    /// Also write the logits (for checks and `--dump-logits`).
    pub write_logits: bool,
    /// `Some(i)`: step i of a chain of steps in one graph: the next tokens go to row i of
    /// `history` and also become the next step's input, positions and lengths advance,
    /// all on the device. `None`: the next tokens go to `next_tokens`, the inputs stay.
    pub chain_row: Option<usize>,
}

impl DecodeStep {
    /// Enqueues the step: embedding, each block (ln_1, QKV into the cache, attention,
    /// projection + residual, ln_2, fc + GELU, projection + residual), ln_f, LM head with
    /// argmax. Reads `tokens`, `positions`, `lengths`; writes `next_tokens` (and `logits`).
    /// ln_1 and ln_2 are folded into the QKV and fc weights: up to batch 8 those GEMVs
    /// normalize their own input (five kernels per block), from 9 on a layernorm with unit
    /// scale runs before them (seven).
    pub fn enqueue(&self, gpu: &Gpu, m: &mut DeviceModel) -> Result<(), CudaError> {
        let c = &m.config;
        let (d, batch) = (c.d_model as u32, self.batch as u32);
        let w = &mut m.work;
        let (x, h, q) = (w.x.as_mut_ptr(), w.h.as_mut_ptr(), w.q.as_mut_ptr());
        let (attn, hidden) = (w.attn.as_mut_ptr(), w.hidden.as_mut_ptr());
        gpu.launch(EmbeddingParams {
            wte: m.weights.wte.as_ptr(),
            wpe: m.weights.wpe.as_ptr(),
            tokens: w.tokens.as_ptr(),
            positions: w.positions.as_ptr(),
            out: x,
            d_model: d,
            vocab: c.vocab as u32,
            n_positions: c.n_positions as u32,
            batch,
        })?;
        let layernorm = |gamma: &GpuBuffer<Half>, beta: &GpuBuffer<Half>| LayerNormParams {
            x,
            gamma: gamma.as_ptr(),
            beta: beta.as_ptr(),
            out: h,
            d_model: d,
            batch,
            eps: c.layer_norm_eps,
        };
        let gemv = |weight: &GpuBuffer<Half>,
                    bias: &GpuBuffer<Half>,
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
        // The GEMV reads x itself and normalizes its sums (ln_1 and ln_2 are folded into
        // the weights); else a layernorm with unit scale writes h for it to read.
        let with_norm =
            |after_unit_norm: GemvParams, row_sums: &GpuBuffer<f32>| FoldedNormGemvParams {
                gemv: GemvParams {
                    x,
                    ..after_unit_norm
                },
                row_sums: row_sums.as_ptr(),
                eps: c.layer_norm_eps,
            };
        let fuse = m.fuse_layers && DecoderLayerParams::supports_batch(batch);
        let fold_norms = !fuse && FoldedNormGemvParams::supports_batch(batch);
        let unit_norm = layernorm(&m.weights.unit_norm.0, &m.weights.unit_norm.1);
        for (l, layer) in m.weights.layers.iter().enumerate() {
            let (k, v) = (m.cache.k(l), m.cache.v(l));
            let (qkv, fc) = (&layer.qkv, &layer.fc);
            let block = DecoderLayerParams {
                ln_1: unit_norm,
                qkv: GemvParams {
                    cache: KvCacheLayer {
                        k,
                        v,
                        positions: w.positions.as_ptr(),
                        capacity: m.cache.capacity as u32,
                    },
                    ..gemv(&qkv.weight, &qkv.bias, h, q, d, Epilogue::QkvToCache)
                },
                attention: AttentionParams {
                    q,
                    k,
                    v,
                    lengths: w.lengths.as_ptr(),
                    settled: if batch > AttentionParams::SETTLED_ROWS_MAX_BATCH {
                        std::ptr::null()
                    } else if self.chain_row.is_none() {
                        // A step of its own does not advance its positions: they are the
                        // settled rows, and nothing more needs writing.
                        w.positions.as_ptr()
                    } else {
                        w.settled.as_ptr()
                    },
                    // Positions advance by one a step, from the settled ones.
                    fresh_rows: self.chain_row.map_or(1, |row| row as u32 + 1),
                    out: attn,
                    partial_out: w.partial_out.as_mut_ptr(),
                    partial_stats: w.partial_stats.as_mut_ptr(),
                    counters: w.counters.as_mut_ptr(),
                    n_head: c.n_head as u32,
                    batch,
                    capacity: m.cache.capacity as u32,
                    context_bucket: self.context_bucket as u32,
                    scale: 1.0 / (c.head_dim() as f32).sqrt(),
                },
                attn_proj: gemv(
                    &layer.attn_proj.0,
                    &layer.attn_proj.1,
                    attn,
                    x,
                    d,
                    Epilogue::Residual,
                ),
                ln_2: unit_norm,
                fc: gemv(&fc.weight, &fc.bias, h, hidden, d, Epilogue::Gelu),
                mlp_proj: gemv(
                    &layer.mlp_proj.0,
                    &layer.mlp_proj.1,
                    hidden,
                    x,
                    4 * d,
                    Epilogue::Residual,
                ),
                barrier: w.barrier.as_mut_ptr(),
            };
            if fuse {
                gpu.launch(block)?;
            } else if fold_norms {
                gpu.launch(with_norm(block.qkv, &qkv.row_sums))?;
                gpu.launch(block.attention)?;
                gpu.launch(block.attn_proj)?;
                gpu.launch(with_norm(block.fc, &fc.row_sums))?;
                gpu.launch(block.mlp_proj)?;
            } else {
                gpu.launch(block.ln_1)?;
                gpu.launch(block.qkv)?;
                gpu.launch(block.attention)?;
                gpu.launch(block.attn_proj)?;
                gpu.launch(block.ln_2)?;
                gpu.launch(block.fc)?;
                gpu.launch(block.mlp_proj)?;
            }
        }
        gpu.launch(layernorm(&m.weights.ln_f.0, &m.weights.ln_f.1))?;
        gpu.launch(LmHeadParams {
            x: h,
            wte: m.weights.wte.as_ptr(),
            best: w.best.as_mut_ptr(),
            logits: if self.write_logits {
                w.logits.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
            d_model: d,
            vocab: c.vocab as u32,
            batch,
        })?;
        let (tokens, feedback) = match self.chain_row {
            None => (w.next_tokens.as_mut_ptr(), Feedback::NONE),
            Some(row) => {
                assert!(
                    row < MAX_STEPS_PER_GRAPH,
                    "chain row {row} past the history"
                );
                let max_batch = w.next_tokens.len();
                (
                    // In bounds: row < MAX_STEPS_PER_GRAPH rows of max_batch.
                    w.history.as_mut_ptr().wrapping_add(row * max_batch),
                    Feedback {
                        tokens: w.tokens.as_mut_ptr(),
                        positions: w.positions.as_mut_ptr(),
                        lengths: w.lengths.as_mut_ptr(),
                    },
                )
            }
        };
        gpu.launch(ArgmaxFinalizeParams {
            best: w.best.as_mut_ptr(),
            tokens,
            feedback,
            batch,
        })
    }
}
