//! The engine: a model resident on the GPU, greedy generation one [`DecodeStep`] per
//! token (or a chain of them per graph launch), stop criteria checked on the host after
//! each launch.

mod generate;
mod replay;
mod upload;

pub use generate::Generated;
pub use upload::{AnyWeights, ModelWeights};

use crate::cuda::{CudaError, Gpu};
use crate::graphs::{GraphKey, GraphSet};
use crate::model::ModelError;
use crate::nvtx::Range;
use crate::step::{DecodeStep, DeviceModel};
use gpu_kernels::abi::MAX_BATCH;
use std::time::{Duration, Instant};

/// Why a request cannot run, or the GPU failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request does not fit the engine; nothing ran.
    #[error("{0}")]
    Request(String),
    /// The weights cannot be prepared for the kernels.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A CUDA call failed.
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// A CUDA call failed while making or replaying one graph.
    #[error("the graph of {key}: {source}")]
    Graph {
        /// The graph.
        key: GraphKey,
        /// The failed call.
        source: Box<CudaError>,
    },
}

/// A model on the GPU, ready to decode up to `max_batch` sequences of `capacity` tokens.
///
/// Field order is drop order: the graphs go before the buffers they point at and the GPU
/// context they live in.
pub struct Engine {
    graphs: Option<GraphSet>,
    model: DeviceModel,
    max_batch: usize,
    capacity: usize,
    allow_eager_fallback: bool,
    /// See [`Engine::take_host_time`].
    host_time: Duration,
    /// Whether to open NVTX ranges.
    nvtx: bool,
    gpu: Gpu,
}

impl Engine {
    /// Checks the limits, then uploads `weights` (reporting bytes to `progress`) and
    /// allocates the KV pool and workspace once.
    pub fn new<W: ModelWeights + ?Sized>(
        gpu: Gpu,
        weights: &W,
        max_batch: usize,
        capacity: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Self, EngineError> {
        let config = weights.config();
        if gpu.half_type() != config.half_type() {
            return Err(EngineError::Request(format!(
                "the GPU context loaded the {} kernels; this model's weights are {}",
                gpu.half_type().torch_name(),
                config.half_type().torch_name()
            )));
        }
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
        let device_weights = weights.upload(&gpu, &mut progress)?;
        let model = DeviceModel::new(&gpu, config, device_weights, max_batch, capacity)?;
        gpu.synchronize()?;
        Ok(Engine {
            graphs: None,
            model,
            max_batch,
            capacity,
            allow_eager_fallback: false,
            host_time: Duration::ZERO,
            nvtx: false,
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

    /// Fills the KV pool with random values (see [`crate::model::KvCache::randomize`]):
    /// for benchmarks that start decoding deep into the context without a prefill.
    pub fn randomize_kv_cache(&mut self, seed: u64) -> Result<(), EngineError> {
        Ok(self.model.cache.randomize(&self.gpu, seed)?)
    }

    /// Host time spent issuing work (filling inputs, launching kernels or graphs, not
    /// waiting for the GPU) since the last call.
    pub fn take_host_time(&mut self) -> Duration {
        std::mem::take(&mut self.host_time)
    }

    /// Opens NVTX ranges around graph making, graph replays and eager steps.
    pub fn set_nvtx(&mut self, on: bool) {
        self.nvtx = on;
    }

    /// With graphs, run a step no graph bucket holds eagerly instead of refusing it.
    pub fn set_allow_eager_fallback(&mut self, allow: bool) {
        self.allow_eager_fallback = allow;
    }

    /// One step for `tokens.len()` sequences, all at `position`: returns each one's
    /// greedy next token, and with `logits`, the (batch, vocab) logits. With graphs
    /// and no logits asked for, it is one graph launch and one sync.
    pub fn step(
        &mut self,
        tokens: &[u32],
        position: usize,
        logits: bool,
    ) -> Result<(Vec<u32>, Option<Vec<f32>>), EngineError> {
        let batch = tokens.len();
        self.check_step(tokens, position, 1)?;
        if !logits && let Some(key) = self.graph_for(batch, position, 1)? {
            let mut rows = self.replay(key, tokens, position)?;
            return Ok((rows.swap_remove(0), None));
        }
        let _range = Range::new(self.nvtx, format_args!("eager step, batch {batch}"));
        let issued = Instant::now();
        self.model.work.write_inputs(tokens, position, batch)?;
        let step = DecodeStep {
            batch,
            context_bucket: position + 1,
            write_logits: logits,
            chain_row: None,
        };
        step.enqueue(&self.gpu, &mut self.model)?;
        self.host_time += issued.elapsed();
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

    /// `steps` steps in one graph launch, each fed the greedy tokens of the one before
    /// on the device: returns the next tokens of every step. Needs graphs made with
    /// `steps_per_graph == steps` (or `steps == 1`).
    pub fn step_chain(
        &mut self,
        tokens: &[u32],
        position: usize,
        steps: usize,
    ) -> Result<Vec<Vec<u32>>, EngineError> {
        self.check_step(tokens, position, steps)?;
        let allowed = self.graphs.as_ref().map(|g| g.options.steps_per_graph);
        if steps != 1 && allowed != Some(steps) {
            return Err(EngineError::Request(format!(
                "chains of {steps} steps need graphs made with {steps} steps per graph"
            )));
        }
        match self.graph_for(tokens.len(), position, steps)? {
            Some(key) => self.replay(key, tokens, position),
            None if steps == 1 => Ok(vec![self.step(tokens, position, false)?.0]),
            None => Err(EngineError::Request(format!(
                "no graph holds {steps} steps from position {position}"
            ))),
        }
    }

    fn check_step(&self, tokens: &[u32], position: usize, steps: usize) -> Result<(), EngineError> {
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
        if position + steps > self.capacity {
            return Err(EngineError::Request(format!(
                "position {} is past the context of {}",
                position + steps - 1,
                self.capacity
            )));
        }
        Ok(())
    }
}
