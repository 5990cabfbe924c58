//! The engine: a model resident on the GPU, greedy generation one [`DecodeStep`] per
//! token, stop criteria checked on the host after each step.

use crate::cuda::{CudaError, Gpu};
use crate::model::{DeviceWeights, Weights};
use crate::step::{DecodeStep, DeviceModel};
use gpu_kernels::abi::MAX_BATCH;

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
pub struct Engine {
    model: DeviceModel,
    max_batch: usize,
    capacity: usize,
    gpu: Gpu,
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

    /// One step for `tokens.len()` sequences, all at `position`: returns each one's
    /// greedy next token, and with `logits`, the (batch, vocab) logits.
    pub fn step(
        &mut self,
        tokens: &[u32],
        position: usize,
        logits: bool,
    ) -> Result<(Vec<u32>, Option<Vec<f32>>), EngineError> {
        let batch = tokens.len();
        self.check_step(tokens, position)?;
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
