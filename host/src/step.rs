//! One decode step: every kernel of one token for a batch, enqueued on the GPU's stream.
//!
//! Graph-safe by construction: everything it touches is allocated in [`DeviceModel::new`]
//! and never moves, inputs are read from and outputs written to fixed device buffers, and
//! no host code branches on device data. The same `enqueue` runs eagerly and under capture.

use crate::cuda::{CudaError, Gpu, GpuBuffer};
use crate::model::{Config, DeviceWeights, KvCache};
use gpu_kernels::abi::{
    ArgmaxFinalizeParams, AttentionParams, EmbeddingParams, Epilogue, Feedback,
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
}

impl Workspace {
    /// Writes the inputs of a step for `tokens` at `position` into the first `rows` rows
    /// (the rest of the batch padding, see [`fill_inputs`]), synchronously: for eager
    /// steps and the warm-up, where no graph copies them in.
    pub fn write_inputs(
        &mut self,
        tokens: &[u32],
        position: usize,
        rows: usize,
    ) -> Result<(), CudaError> {
        let (mut ids, mut positions, mut lengths) = (vec![0; rows], vec![0; rows], vec![0; rows]);
        fill_inputs(tokens, position, [&mut ids, &mut positions, &mut lengths]);
        self.tokens.write(&ids)?;
        self.positions.write(&positions)?;
        self.lengths.write(&lengths)
    }
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
        };
        Ok(DeviceModel {
            config: config.clone(),
            weights,
            cache: KvCache::new(gpu, config, max_batch, capacity)?,
            work,
        })
    }
}

/// Writes a step's inputs for `tokens` at `position` into `[tokens, positions, lengths]`,
/// each as long as the rows to fill: the one way inputs are made, for eager steps, the
/// warm-up and graph replays alike. A padding row is token 0 at position 0 of its own
/// unused slot, attending to that one position, so a bucket's padded rows do valid work.
/// Writes in place: on the graph path this runs every launch.
pub fn fill_inputs(tokens: &[u32], position: usize, [ids, positions, lengths]: [&mut [u32]; 3]) {
    ids.fill(0);
    positions.fill(0);
    lengths.fill(1);
    ids[..tokens.len()].copy_from_slice(tokens);
    positions[..tokens.len()].fill(position as u32);
    lengths[..tokens.len()].fill(position as u32 + 1);
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
    /// Enqueues the step: the embedding, each block, ln_f, the LM head with argmax. Reads
    /// `tokens`, `positions` and `lengths`; writes `next_tokens` (or a row of `history`)
    /// and, if asked, `logits`. ln_1 and ln_2 are folded into the QKV and fc weights: up
    /// to batch 8 those GEMVs normalize their own input (five kernels a block), from 9 on
    /// a layernorm with unit scale runs before each (seven).
    pub fn enqueue(&self, gpu: &Gpu, m: &mut DeviceModel) -> Result<(), CudaError> {
        gpu.launch(self.embedding(m))?;
        for l in 0..m.weights.layers.len() {
            let block = self.block(m, l);
            self.launch_normed(gpu, block.unit_norm, block.qkv)?; // ln_1, QKV, K and V cached
            gpu.launch(block.attention)?;
            gpu.launch(block.attn_proj)?; // + residual
            self.launch_normed(gpu, block.unit_norm, block.fc)?; // ln_2, fc, GELU
            gpu.launch(block.mlp_proj)?; // + residual
        }
        gpu.launch(self.final_norm(m))?;
        gpu.launch(self.lm_head(m))?;
        gpu.launch(self.argmax(m))
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

    fn embedding(&self, m: &mut DeviceModel) -> EmbeddingParams {
        let (c, w) = (&m.config, &mut m.work);
        EmbeddingParams {
            wte: m.weights.wte.as_ptr(),
            wpe: m.weights.wpe.as_ptr(),
            tokens: w.tokens.as_ptr(),
            positions: w.positions.as_ptr(),
            out: w.x.as_mut_ptr(),
            d_model: c.d_model as u32,
            vocab: c.vocab as u32,
            n_positions: c.n_positions as u32,
            batch: self.batch as u32,
        }
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
        let (gamma, beta) = (m.weights.ln_f.0.as_ptr(), m.weights.ln_f.1.as_ptr());
        self.layernorm(m, gamma, beta)
    }

    /// The parameters of block `l`'s launches.
    fn block(&self, m: &mut DeviceModel, l: usize) -> Block {
        let unit_norm = {
            let (ones, zeros) = &m.weights.unit_norm;
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
        let layer = &m.weights.layers[l];
        let (k, v) = (m.cache.k(l), m.cache.v(l));
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
        // The folded GEMVs read the residual stream x and normalize it themselves.
        let normed = |gemv: GemvParams, row_sums: &GpuBuffer<f32>| FoldedNormGemvParams {
            gemv,
            row_sums: row_sums.as_ptr(),
            eps: c.layer_norm_eps,
        };
        let (qkv, fc) = (&layer.qkv, &layer.fc);
        Block {
            unit_norm,
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
                n_kv_head: c.n_head as u32,
                head_dim: c.head_dim() as u32,
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

    fn lm_head(&self, m: &mut DeviceModel) -> LmHeadParams {
        let w = &mut m.work;
        LmHeadParams {
            x: w.h.as_mut_ptr(),
            wte: m.weights.wte.as_ptr(),
            best: w.best.as_mut_ptr(),
            logits: if self.write_logits {
                w.logits.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            },
            d_model: m.config.d_model as u32,
            vocab: m.config.vocab as u32,
            batch: self.batch as u32,
        }
    }

    /// The argmax's finalize: into `next_tokens`, or for a step of a chain into its row
    /// of `history` and the next step's inputs.
    fn argmax(&self, m: &mut DeviceModel) -> ArgmaxFinalizeParams {
        let w = &mut m.work;
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
        ArgmaxFinalizeParams {
            best: w.best.as_mut_ptr(),
            tokens,
            feedback,
            batch: self.batch as u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rows_are_valid_work_in_unused_slots() {
        let (mut tokens, mut positions, mut lengths) = ([9; 4], [9; 4], [9; 4]);
        fill_inputs(&[7, 9], 5, [&mut tokens, &mut positions, &mut lengths]);
        assert_eq!(tokens, [7, 9, 0, 0]);
        assert_eq!(positions, [5, 5, 0, 0]);
        assert_eq!(lengths, [6, 6, 1, 1]);
    }
}
