//! One decode step: every kernel of one token for a batch, enqueued on the GPU's stream.
//!
//! Graph-safe by construction: everything it touches is allocated in [`DeviceModel::new`]
//! and never moves, inputs are read from and outputs written to fixed device buffers, and
//! no host code branches on device data. The same `enqueue` runs eagerly and under capture.
//! What runs per block depends on the architecture: [`gpt2`] and [`llama`].

mod gpt2;
mod llama;

use crate::cuda::{CudaError, Gpu, GpuBuffer, HalfBits};
use crate::model::{Config, DeviceWeights, KvCache, LlamaDeviceWeights};
use gpu_kernels::abi::{
    ArgmaxFinalizeParams, AttentionParams, EmbeddingParams, Feedback, LmHeadParams,
};

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
    /// (max_batch, d) the residual stream.
    x: GpuBuffer<HalfBits>,
    /// (max_batch, d) its normalized copy where a norm runs as a kernel of its own.
    h: GpuBuffer<HalfBits>,
    /// (max_batch, n_head head_dim) queries.
    q: GpuBuffer<HalfBits>,
    /// (max_batch, n_head head_dim) attention's output.
    attn: GpuBuffer<HalfBits>,
    /// (max_batch, 4 d) GPT-2's MLP activation; (max_batch, 2 intermediate) the Llama
    /// family's gate and up outputs.
    hidden: GpuBuffer<HalfBits>,
    /// (max_batch, (n_head + 2 n_kv_head) head_dim) the Llama family's QKV projection,
    /// before the rotary embedding (empty for GPT-2, whose QKV GEMV writes the cache).
    qkv: GpuBuffer<HalfBits>,
    /// (max_batch, intermediate) the Llama family's SwiGLU output (empty for GPT-2).
    act: GpuBuffer<HalfBits>,
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

/// A model's parameters on the GPU, by architecture.
pub enum DeviceParameters {
    /// GPT-2: layernorms folded into QKV and fc, learned positions.
    Gpt2(DeviceWeights),
    /// Llama 3, Qwen2.5: RMSNorms folded into QKV and gate-up, rotary positions.
    Llama(LlamaDeviceWeights),
}

impl DeviceParameters {
    /// Transformer blocks.
    pub fn layers(&self) -> usize {
        match self {
            DeviceParameters::Gpt2(w) => w.layers.len(),
            DeviceParameters::Llama(w) => w.layers.len(),
        }
    }
}

/// Everything one model needs on the GPU, allocated once.
pub struct DeviceModel {
    /// The shape.
    pub config: Config,
    /// The parameters.
    pub weights: DeviceParameters,
    /// The KV pool.
    pub cache: KvCache,
    /// Activations and I/O.
    pub work: Workspace,
    /// (capacity, head_dim / 2, 2) the rotary (cos, sin) table of the Llama family.
    rope: Option<GpuBuffer<f32>>,
}

impl DeviceModel {
    /// Allocates the cache and workspace for `max_batch` sequences of up to `capacity`
    /// positions next to already uploaded weights.
    pub fn new(
        gpu: &Gpu,
        config: &Config,
        weights: DeviceParameters,
        max_batch: usize,
        capacity: usize,
    ) -> Result<Self, CudaError> {
        let d = config.d_model;
        let splits = AttentionParams::splits(capacity as u32) as usize;
        let partials = max_batch * config.n_head * splits;
        let heads = config.n_head * config.head_dim();
        let (qkv, hidden, act) = match &config.llama {
            None => (0, 4 * d, 0),
            Some(l) => (
                heads + 2 * l.n_kv_head * l.head_dim,
                2 * l.intermediate,
                l.intermediate,
            ),
        };
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
            q: gpu.alloc_poisoned(max_batch * heads)?,
            attn: gpu.alloc_poisoned(max_batch * heads)?,
            hidden: gpu.alloc_poisoned(max_batch * hidden)?,
            qkv: gpu.alloc_poisoned((max_batch * qkv).max(1))?,
            act: gpu.alloc_poisoned((max_batch * act).max(1))?,
            partial_out: gpu.alloc_poisoned(partials * config.head_dim())?,
            partial_stats: gpu.alloc_poisoned(partials * 2)?,
            // Kernels leave these zero after every launch.
            counters: gpu.alloc_zeroed(max_batch * config.n_head)?,
            best: gpu.alloc_zeroed(max_batch)?,
        };
        let rope = match &config.llama {
            None => None,
            Some(l) => Some(gpu.upload(&l.rope.table(l.head_dim, capacity))?),
        };
        Ok(DeviceModel {
            config: config.clone(),
            weights,
            cache: KvCache::new(gpu, config, max_batch, capacity)?,
            work,
            rope,
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
    /// Enqueues the step: the embedding, each block, the final norm, the LM head with
    /// argmax (the blocks as [`gpt2`] or [`llama`] describe them). Reads `tokens`,
    /// `positions` and `lengths`; writes `next_tokens` (or a row of `history`) and, if
    /// asked, `logits`.
    pub fn enqueue(&self, gpu: &Gpu, m: &mut DeviceModel) -> Result<(), CudaError> {
        match m.weights {
            DeviceParameters::Gpt2(_) => self.enqueue_gpt2(gpu, m)?,
            DeviceParameters::Llama(_) => self.enqueue_llama(gpu, m)?,
        }
        gpu.launch(self.lm_head(m))?;
        gpu.launch(self.argmax(m))
    }

    /// Each sequence's token row of `wte` (plus, where `wpe` is not null, its position's
    /// row of `wpe`) into the residual stream x.
    fn embedding(&self, m: &mut DeviceModel, wte: *const f16, wpe: *const f16) -> EmbeddingParams {
        let (c, w) = (&m.config, &mut m.work);
        EmbeddingParams {
            wte,
            wpe,
            tokens: w.tokens.as_ptr(),
            positions: w.positions.as_ptr(),
            out: w.x.as_mut_ptr(),
            d_model: c.d_model as u32,
            vocab: c.vocab as u32,
            n_positions: c.n_positions as u32,
            batch: self.batch as u32,
        }
    }

    /// Attention of layer `l` over the cache into `attn`, from `q`.
    fn attention(&self, m: &mut DeviceModel, l: usize) -> AttentionParams {
        let (c, w, batch) = (&m.config, &mut m.work, self.batch as u32);
        AttentionParams {
            q: w.q.as_ptr(),
            k: m.cache.k(l),
            v: m.cache.v(l),
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
            out: w.attn.as_mut_ptr(),
            partial_out: w.partial_out.as_mut_ptr(),
            partial_stats: w.partial_stats.as_mut_ptr(),
            counters: w.counters.as_mut_ptr(),
            n_head: c.n_head as u32,
            n_kv_head: c.n_kv_head() as u32,
            head_dim: c.head_dim() as u32,
            batch,
            capacity: m.cache.capacity as u32,
            context_bucket: self.context_bucket as u32,
            scale: 1.0 / (c.head_dim() as f32).sqrt(),
        }
    }

    /// The LM head over h, the final norm's output.
    fn lm_head(&self, m: &mut DeviceModel) -> LmHeadParams {
        let w = &mut m.work;
        LmHeadParams {
            x: w.h.as_mut_ptr(),
            wte: match &m.weights {
                DeviceParameters::Gpt2(weights) => weights.wte.as_ptr(),
                DeviceParameters::Llama(weights) => weights.head().as_ptr(),
            },
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
