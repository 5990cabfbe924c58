//! The engine: a model resident on the GPU, greedy generation one [`DecodeStep`] per
//! token (or a chain of them per graph launch), stop criteria checked on the host after
//! each launch.

use crate::cuda::{CudaError, Gpu};
use crate::graph_set::{GraphKey, GraphOptions, GraphReport, GraphSet};
use crate::model::{DeviceWeights, Weights};
use crate::nvtx::Range;
use crate::step::{DecodeStep, DeviceModel};
use gpu_kernels::abi::MAX_BATCH;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a request cannot run, or the GPU failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request does not fit the engine; nothing ran.
    #[error("{0}")]
    Request(String),
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

/// What [`Engine::generate`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens of each sequence, up to and including EOS.
    pub tokens: Vec<Vec<u32>>,
    /// Decode steps run (prompt and generation).
    pub steps: usize,
    /// Launches: one per eager step, one per graph replay.
    pub launches: usize,
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

    /// Makes the CUDA graphs `options` ask for (at once, or each on first use when
    /// `lazy`): per bucket and steps per graph, the input copies from pinned host memory,
    /// the steps' kernels, the copy of the next tokens back. Call it before generating:
    /// made at once, each bucket is first warmed up eagerly, which writes position 0 of
    /// the cache slots. Returns how each graph was made.
    pub fn capture_graphs(
        &mut self,
        options: GraphOptions,
    ) -> Result<Vec<GraphReport>, EngineError> {
        options.check().map_err(EngineError::Request)?;
        self.graphs = None;
        let mut set = GraphSet::new(&self.gpu, self.max_batch, options)?;
        if !set.options.lazy {
            for bucket in set.options.table.all() {
                self.warm_up(bucket.batch, bucket.context)?;
            }
            for key in set.keys() {
                let _range = Range::new(self.nvtx, format_args!("make graph {key}"));
                set.make(&self.gpu, &mut self.model, key)
                    .map_err(graph_error(key))?;
            }
        }
        let reports = set.reports.clone();
        self.graphs = Some(set);
        Ok(reports)
    }

    /// One eager step of padding rows in `bucket`: loads what the first launch of its
    /// kernels loads, outside the timed capture.
    fn warm_up(&mut self, batch: usize, context: usize) -> Result<(), EngineError> {
        let w = &mut self.model.work;
        w.tokens.write(&vec![0; self.max_batch])?;
        w.positions.write(&vec![0; self.max_batch])?;
        w.lengths.write(&vec![1; self.max_batch])?;
        let step = DecodeStep {
            batch,
            context_bucket: context,
            write_logits: false,
            chain_row: None,
        };
        step.enqueue(&self.gpu, &mut self.model)?;
        Ok(self.gpu.synchronize()?)
    }

    /// How every graph made so far was made.
    pub fn graph_reports(&self) -> &[GraphReport] {
        self.graphs.as_ref().map_or(&[], |g| &g.reports)
    }

    /// Writes the graph of `key` (made first if lazy) as Graphviz dot.
    pub fn write_graph_dot(&mut self, key: GraphKey, path: &Path) -> Result<(), EngineError> {
        self.graph(key)?;
        let set = self.graphs.as_ref().expect("graph() made it");
        let exec = set.get(&key).expect("graph() made it");
        exec.graph().write_dot(path).map_err(graph_error(key))
    }

    /// Uploads `weights` (same shape) into new buffers, points every graph at them in
    /// place (cuGraphExecUpdate, no new instantiation), then frees the old ones. Returns
    /// how many graphs were updated. If an update fails the graphs are dropped: the
    /// engine still runs eagerly.
    pub fn replace_weights(
        &mut self,
        weights: &Weights,
        progress: impl FnMut(usize),
    ) -> Result<usize, EngineError> {
        if weights.config != self.model.config {
            return Err(EngineError::Request(
                "the new weights have another shape than the engine's model".into(),
            ));
        }
        let new = DeviceWeights::upload(&self.gpu, weights, progress)?;
        self.gpu.synchronize()?;
        let old = std::mem::replace(&mut self.model.weights, new);
        let updated = match &mut self.graphs {
            Some(set) => match set.update_all(&self.gpu, &mut self.model) {
                Ok(n) => n,
                Err(e) => {
                    self.graphs = None;
                    return Err(e.into());
                }
            },
            None => 0,
        };
        drop(old);
        Ok(updated)
    }

    /// The graph of `key`, made now if it was not yet.
    fn graph(&mut self, key: GraphKey) -> Result<(), EngineError> {
        let set = self
            .graphs
            .as_mut()
            .ok_or_else(|| EngineError::Request("no graphs were captured".into()))?;
        if set.get(&key).is_none() {
            let _range = Range::new(self.nvtx, format_args!("make graph {key}"));
            set.make(&self.gpu, &mut self.model, key)
                .map_err(graph_error(key))?;
        }
        Ok(())
    }

    /// The graph for `steps` steps of `batch` sequences from `position`, if graphs are
    /// on and one holds it; an error naming the limit if none does and the engine may
    /// not fall back to eager steps.
    fn graph_for(
        &self,
        batch: usize,
        position: usize,
        steps: usize,
    ) -> Result<Option<GraphKey>, EngineError> {
        let Some(set) = &self.graphs else {
            return Ok(None);
        };
        match set.key_for(batch, position, steps) {
            Ok(key) => Ok(Some(key)),
            Err(_) if self.allow_eager_fallback => Ok(None),
            Err(why) => Err(EngineError::Request(format!(
                "{why} (--allow-eager-fallback runs such steps without graphs)"
            ))),
        }
    }

    /// Runs `steps` chained steps in one graph launch: `tokens` at `position`, then each
    /// step's greedy tokens as the next one's input. Returns each step's next tokens.
    fn replay(
        &mut self,
        key: GraphKey,
        tokens: &[u32],
        position: usize,
    ) -> Result<Vec<Vec<u32>>, EngineError> {
        self.graph(key)?;
        let _range = Range::new(self.nvtx, format_args!("replay {key}"));
        let set = self.graphs.as_mut().expect("graph() made it");
        let (rows, issue) = set
            .replay(&self.gpu, key, tokens, position)
            .map_err(graph_error(key))?;
        self.host_time += issue;
        Ok(rows)
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
        let w = &mut self.model.work;
        w.tokens.write(tokens)?;
        w.positions.write(&vec![position as u32; batch])?;
        w.lengths.write(&vec![position as u32 + 1; batch])?;
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

    /// Greedy generation for a batch of prompts (lengths may differ): every sequence
    /// advances one position per step, reading its prompt until it runs out and its own
    /// last token after; `on_token(sequence, token)` sees each new token as it comes.
    /// A sequence stops at `eos` or after `max_new_tokens`; tokens after that are dropped.
    /// Once every prompt is read, graphs with several steps per graph run that many steps
    /// per launch while some unfinished sequence wants at least that many more tokens.
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
        if max_new_tokens > 0 {
            // Fails before the first step if no graph holds the last one.
            self.graph_for(prompts.len(), longest + max_new_tokens - 2, 1)?;
        }
        let chain = self
            .graphs
            .as_ref()
            .map_or(1, |g| g.options.steps_per_graph);
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut done = vec![max_new_tokens == 0; prompts.len()];
        let (mut steps, mut launches, mut position) = (0, 0, 0);
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
            let wanted = (0..prompts.len())
                .filter(|&b| !done[b])
                .map(|b| max_new_tokens - generated[b].len())
                .max()
                .unwrap_or(0);
            let every_prompt_read = position + 1 >= longest;
            let chained = chain > 1
                && every_prompt_read
                && wanted >= chain
                && matches!(self.graph_for(prompts.len(), position, chain), Ok(Some(_)));
            let rows = if chained {
                self.step_chain(&inputs, position, chain)?
            } else {
                vec![self.step(&inputs, position, false)?.0]
            };
            launches += 1;
            for next in &rows {
                for (b, &token) in next.iter().enumerate() {
                    if done[b] || position + 1 < prompts[b].len() {
                        continue;
                    }
                    generated[b].push(token);
                    on_token(b, token);
                    done[b] = Some(token) == eos || generated[b].len() == max_new_tokens;
                }
                position += 1;
                steps += 1;
            }
        }
        Ok(Generated {
            tokens: generated,
            steps,
            launches,
        })
    }
}

/// Wraps a CUDA error with the graph it happened in.
fn graph_error(key: GraphKey) -> impl FnOnce(CudaError) -> EngineError {
    move |e| EngineError::Graph {
        key,
        source: Box::new(e),
    }
}
