//! The engine's CUDA graph side: making the graphs, choosing one per step, replaying it,
//! updating them when the weights move, writing one as dot.

use super::ModelWeights;
use super::{Engine, EngineError};
use crate::cuda::CudaError;
use crate::graphs::{GraphKey, GraphOptions, GraphReport, GraphSet};
use crate::nvtx::Range;
use crate::step::DecodeStep;
use std::path::Path;

impl Engine {
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
        self.model.work.write_inputs(&[], 0, self.max_batch)?;
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
    pub fn replace_weights<W: ModelWeights + ?Sized>(
        &mut self,
        weights: &W,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, EngineError> {
        if *weights.config() != self.model.config {
            return Err(EngineError::Request(
                "the new weights have another shape than the engine's model".into(),
            ));
        }
        let new = weights.upload(&self.gpu, &mut progress)?;
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
    pub(super) fn graph(&mut self, key: GraphKey) -> Result<(), EngineError> {
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
    pub(super) fn graph_for(
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
    pub(super) fn replay(
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
}

/// Wraps a CUDA error with the graph it happened in.
fn graph_error(key: GraphKey) -> impl FnOnce(CudaError) -> EngineError {
    move |e| EngineError::Graph {
        key,
        source: Box::new(e),
    }
}
