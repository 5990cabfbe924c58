//! The engine: a model resident on the GPU, greedy generation one [`DecodeStep`] per
//! token, stop criteria checked on the host after each step.

use crate::cuda::{CudaError, Gpu, GraphExec, PinnedBuffer};
use crate::graphs::{Bucket, BucketTable};
use crate::model::{DeviceWeights, Weights};
use crate::step::{DecodeStep, DeviceModel};
use gpu_kernels::abi::MAX_BATCH;
use std::collections::HashMap;
use std::time::Instant;

/// Why a request cannot run, or the GPU failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request does not fit the engine; nothing ran.
    #[error("{0}")]
    Request(String),
    /// A CUDA call failed.
    #[error(transparent)]
    Cuda(#[from] CudaError),
}

/// A model on the GPU, ready to decode up to `max_batch` sequences of `capacity` tokens.
///
/// Field order is drop order: the graphs go before the GPU context they live in.
pub struct Engine {
    graphs: Option<Graphs>,
    model: DeviceModel,
    max_batch: usize,
    capacity: usize,
    gpu: Gpu,
}

/// The graphs of an engine and the pinned host ends of their copies.
struct Graphs {
    execs: HashMap<Bucket, GraphExec>,
    /// (max_batch) each: tokens, positions, lengths.
    inputs: [PinnedBuffer<u32>; 3],
    /// (max_batch) next tokens.
    outputs: PinnedBuffer<u32>,
    table: BucketTable,
}

/// Writes the step's inputs for `tokens` at `position` into `[tokens, positions,
/// lengths]`, each as long as the rows to fill. A padding row is token 0 at position 0
/// of its own unused slot, attending to that one position, so a bucket's padded rows do
/// valid work. Writes in place: on the graph path this runs every token.
fn fill_inputs(tokens: &[u32], position: usize, [ids, positions, lengths]: [&mut [u32]; 3]) {
    ids.fill(0);
    positions.fill(0);
    lengths.fill(1);
    ids[..tokens.len()].copy_from_slice(tokens);
    positions[..tokens.len()].fill(position as u32);
    lengths[..tokens.len()].fill(position as u32 + 1);
}

/// One captured bucket.
#[derive(Clone, Debug)]
pub struct CaptureReport {
    /// Its shape.
    pub bucket: Bucket,
    /// Nodes in its graph.
    pub nodes: usize,
    /// Capture, instantiation and upload, milliseconds.
    pub capture_ms: f64,
    /// Whether its kernels overlap through programmatic dependent launch.
    pub programmatic: bool,
}

/// What [`Engine::generate`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens of each sequence, up to and including EOS.
    pub tokens: Vec<Vec<u32>>,
    /// Decode steps run (prompt and generation).
    pub steps: usize,
}

impl Engine {
    /// Checks the limits, then uploads `weights` (reporting bytes to `progress`) and
    /// allocates the KV pool and workspace once.
    pub fn new(
        gpu: Gpu,
        weights: &Weights,
        max_batch: usize,
        capacity: usize,
        progress: impl FnMut(usize),
    ) -> Result<Self, EngineError> {
        let config = &weights.config;
        if max_batch == 0 || max_batch > MAX_BATCH as usize {
            return Err(EngineError::Request(format!(
                "batch {max_batch} is outside 1..={MAX_BATCH}"
            )));
        }
        if capacity == 0 || capacity > config.n_positions {
            return Err(EngineError::Request(format!(
                "context {capacity} is outside 1..={} (the model's n_positions)",
                config.n_positions
            )));
        }
        let device_weights = DeviceWeights::upload(&gpu, weights, progress)?;
        let model = DeviceModel::new(&gpu, config, device_weights, max_batch, capacity)?;
        gpu.synchronize()?;
        Ok(Engine {
            graphs: None,
            model,
            max_batch,
            capacity,
            gpu,
        })
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Bytes of the KV pool.
    pub fn kv_cache_bytes(&self) -> usize {
        self.model.cache.bytes()
    }

    /// Positions each sequence can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Captures one CUDA graph per bucket of `table`: the step's input copies from pinned
    /// host memory, every kernel, the output copy back. Call it before generating: each
    /// bucket is warmed up eagerly first, which writes position 0 of the cache slots.
    pub fn capture_graphs(
        &mut self,
        table: BucketTable,
    ) -> Result<Vec<CaptureReport>, EngineError> {
        let mb = self.max_batch;
        let mut graphs = Graphs {
            execs: HashMap::new(),
            inputs: [
                self.gpu.alloc_pinned(mb)?,
                self.gpu.alloc_pinned(mb)?,
                self.gpu.alloc_pinned(mb)?,
            ],
            outputs: self.gpu.alloc_pinned(mb)?,
            table,
        };
        let mut reports = Vec::new();
        for bucket in graphs.table.all() {
            let step = DecodeStep {
                batch: bucket.batch,
                context_bucket: bucket.context,
                write_logits: false,
            };
            let (mut tokens, mut positions, mut lengths) = (vec![0; mb], vec![0; mb], vec![0; mb]);
            fill_inputs(&[], 0, [&mut tokens, &mut positions, &mut lengths]);
            let w = &mut self.model.work;
            w.tokens.write(&tokens)?;
            w.positions.write(&positions)?;
            w.lengths.write(&lengths)?;
            step.enqueue(&self.gpu, &mut self.model)?;
            self.gpu.synchronize()?;

            let start = Instant::now();
            let (gpu, model) = (&self.gpu, &mut self.model);
            let (inputs, outputs) = (&graphs.inputs, &mut graphs.outputs);
            let mut capture = || {
                gpu.capture(|gpu| {
                    let w = &mut model.work;
                    gpu.upload_async(&mut w.tokens, &inputs[0])?;
                    gpu.upload_async(&mut w.positions, &inputs[1])?;
                    gpu.upload_async(&mut w.lengths, &inputs[2])?;
                    step.enqueue(gpu, model)?;
                    gpu.download_async(outputs, &model.work.next_tokens)
                })
            };
            // Programmatic dependent launch is captured into graphs by CUDA 12.3 and
            // newer drivers; an older one refuses, and the graph is captured without it.
            let exec = match capture() {
                Ok(exec) => exec,
                Err(with_pdl) if gpu.programmatic_launch() => {
                    eprintln!("capturing without programmatic dependent launch: {with_pdl}");
                    gpu.set_programmatic_launch(false);
                    capture()?
                }
                Err(e) => return Err(e.into()),
            };
            reports.push(CaptureReport {
                bucket,
                nodes: exec.nodes(),
                capture_ms: start.elapsed().as_secs_f64() * 1e3,
                programmatic: gpu.programmatic_launch(),
            });
            graphs.execs.insert(bucket, exec);
        }
        self.graphs = Some(graphs);
        Ok(reports)
    }

    /// One step for `tokens.len()` sequences, all at `position`: returns each one's
    /// greedy next token, and with `logits`, the (batch, vocab) logits. With graphs
    /// captured and no logits asked for, it is one graph launch and one sync.
    pub fn step(
        &mut self,
        tokens: &[u32],
        position: usize,
        logits: bool,
    ) -> Result<(Vec<u32>, Option<Vec<f32>>), EngineError> {
        let batch = tokens.len();
        self.check_step(tokens, position)?;
        if let (Some(graphs), false) = (&mut self.graphs, logits) {
            let bucket = graphs
                .table
                .choose(batch, position + 1)
                .map_err(EngineError::Request)?;
            let [ids, positions, lengths] = &mut graphs.inputs;
            fill_inputs(
                tokens,
                position,
                [
                    ids.as_mut_slice(),
                    positions.as_mut_slice(),
                    lengths.as_mut_slice(),
                ],
            );
            self.gpu.replay(&graphs.execs[&bucket]).map_err(|e| {
                EngineError::Request(format!("replaying the graph of bucket {bucket:?}: {e}"))
            })?;
            self.gpu.synchronize().map_err(|e| {
                EngineError::Request(format!("the graph of bucket {bucket:?} failed: {e}"))
            })?;
            return Ok((graphs.outputs.as_slice()[..batch].to_vec(), None));
        }
        let w = &mut self.model.work;
        w.tokens.write(tokens)?;
        w.positions.write(&vec![position as u32; batch])?;
        w.lengths.write(&vec![position as u32 + 1; batch])?;
        let step = DecodeStep {
            batch,
            context_bucket: position + 1,
            write_logits: logits,
        };
        step.enqueue(&self.gpu, &mut self.model)?;
        let next = self.model.work.next_tokens.read_front(batch)?;
        let logits = if logits {
            Some(
                self.model
                    .work
                    .logits
                    .read_front(batch * self.model.config.vocab)?,
            )
        } else {
            None
        };
        Ok((next, logits))
    }

    fn check_step(&self, tokens: &[u32], position: usize) -> Result<(), EngineError> {
        let vocab = self.model.config.vocab;
        if tokens.is_empty() || tokens.len() > self.max_batch {
            return Err(EngineError::Request(format!(
                "batch {} is outside 1..={}",
                tokens.len(),
                self.max_batch
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::Request(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        if position >= self.capacity {
            return Err(EngineError::Request(format!(
                "position {position} is past the context of {}",
                self.capacity
            )));
        }
        Ok(())
    }

    /// Greedy generation for a batch of prompts (lengths may differ): every sequence
    /// advances one position per step, reading its prompt until it runs out and its own
    /// last token after; `on_token(sequence, token)` sees each new token as it comes.
    /// A sequence stops at `eos` or after `max_new_tokens`; tokens after that are dropped.
    pub fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
        eos: Option<u32>,
        mut on_token: impl FnMut(usize, u32),
    ) -> Result<Generated, EngineError> {
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        if prompts.iter().any(Vec::is_empty) {
            return Err(EngineError::Request("a prompt is empty".into()));
        }
        if longest + max_new_tokens > self.capacity + 1 {
            return Err(EngineError::Request(format!(
                "a prompt of {longest} tokens plus {max_new_tokens} new tokens needs {} positions; the context is {}",
                longest + max_new_tokens - 1,
                self.capacity
            )));
        }
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut done = vec![max_new_tokens == 0; prompts.len()];
        let mut steps = 0;
        let mut position = 0;
        while !done.iter().all(|&d| d) {
            let inputs: Vec<u32> = prompts
                .iter()
                .zip(&generated)
                .map(|(p, g)| match p.get(position) {
                    Some(&t) => t,
                    None => *g
                        .last()
                        .expect("past the prompt there is a generated token"),
                })
                .collect();
            let (next, _) = self.step(&inputs, position, false)?;
            steps += 1;
            for (b, &token) in next.iter().enumerate() {
                if done[b] || position + 1 < prompts[b].len() {
                    continue;
                }
                generated[b].push(token);
                on_token(b, token);
                done[b] = Some(token) == eos || generated[b].len() == max_new_tokens;
            }
            position += 1;
        }
        Ok(Generated {
            tokens: generated,
            steps,
        })
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
