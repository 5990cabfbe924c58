//! The graphs of an engine: recorded (captured or built node by node), instantiated and
//! reported, replayed once per launch from the pinned input and output buffers they copy
//! from and to, and updated in place when the buffers they point at move.

use super::{Construction, GraphKey, GraphOptions, GraphReport};
use crate::cuda::{CudaError, Gpu, Graph, GraphExec, PinnedBuffer};
use crate::step::{DecodeStep, DeviceModel, MAX_STEPS_PER_GRAPH, fill_inputs};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The graphs of an engine and the pinned host ends of their copies.
pub(crate) struct GraphSet {
    execs: HashMap<GraphKey, GraphExec>,
    /// (max_batch) each: tokens, positions, lengths.
    inputs: [PinnedBuffer<u32>; 3],
    /// (MAX_STEPS_PER_GRAPH, max_batch) next tokens of each step.
    outputs: PinnedBuffer<u32>,
    max_batch: usize,
    pub options: GraphOptions,
    pub reports: Vec<GraphReport>,
}

impl GraphSet {
    pub fn new(gpu: &Gpu, max_batch: usize, options: GraphOptions) -> Result<Self, CudaError> {
        Ok(GraphSet {
            execs: HashMap::new(),
            inputs: [
                gpu.alloc_pinned(max_batch)?,
                gpu.alloc_pinned(max_batch)?,
                gpu.alloc_pinned(max_batch)?,
            ],
            outputs: gpu.alloc_pinned(MAX_STEPS_PER_GRAPH * max_batch)?,
            max_batch,
            options,
            reports: Vec::new(),
        })
    }

    /// Every graph the options ask for, smallest first.
    pub fn keys(&self) -> Vec<GraphKey> {
        let mut steps = vec![1, self.options.steps_per_graph];
        steps.dedup();
        let buckets = self.options.table.all();
        steps
            .iter()
            .flat_map(|&steps| {
                buckets
                    .iter()
                    .map(move |&bucket| GraphKey { bucket, steps })
            })
            .collect()
    }

    /// The graph of `key` as the options say to make it, not instantiated.
    pub fn record(
        &mut self,
        gpu: &Gpu,
        model: &mut DeviceModel,
        key: GraphKey,
    ) -> Result<Graph, CudaError> {
        let (inputs, outputs, rows) = (&self.inputs, &mut self.outputs, self.max_batch);
        let enqueue = |gpu: &Gpu| {
            // A decode step is a chain (each kernel reads what the one before wrote);
            // only the input copies are independent: lengths and settled rows arrive on
            // a branch.
            let w = &mut model.work;
            // The settled rows are the positions again, a copy the chain does not advance
            // (rows the graph's own steps write are not settled).
            let lengths = gpu.branch(|gpu| {
                gpu.upload_async(&mut w.lengths, &inputs[2])?;
                gpu.upload_async(&mut w.settled, &inputs[1])
            })?;
            gpu.upload_async(&mut w.tokens, &inputs[0])?;
            gpu.upload_async(&mut w.positions, &inputs[1])?;
            gpu.join(lengths)?;
            for row in 0..key.steps {
                let step = DecodeStep {
                    batch: key.bucket.batch,
                    context_bucket: key.bucket.context,
                    write_logits: false,
                    chain_row: Some(row),
                };
                step.enqueue(gpu, model)?;
            }
            gpu.download_async(outputs, &model.work.history, key.steps * rows)
        };
        match self.options.construction {
            Construction::Capture => gpu.capture(enqueue),
            Construction::Nodes => gpu.build(enqueue),
        }
    }

    /// Records, instantiates and uploads the graph of `key`, and reports how.
    pub fn make(
        &mut self,
        gpu: &Gpu,
        model: &mut DeviceModel,
        key: GraphKey,
    ) -> Result<(), CudaError> {
        let start = Instant::now();
        // Programmatic dependent launch is captured into graphs by CUDA 12.3 and newer
        // drivers; an older one refuses, and the graph is captured without it. Only a
        // capture that succeeds without it turns it off (for this GPU, eager launches
        // included); any other failure leaves it on and reports the first error.
        let capturing = self.options.construction == Construction::Capture;
        let graph = match self.record(gpu, model, key) {
            Err(with_pdl) if capturing && gpu.programmatic_launch() => {
                gpu.set_programmatic_launch(false);
                match self.record(gpu, model, key) {
                    Ok(graph) => {
                        eprintln!("capturing without programmatic dependent launch: {with_pdl}");
                        graph
                    }
                    Err(_) => {
                        gpu.set_programmatic_launch(true);
                        return Err(with_pdl);
                    }
                }
            }
            other => other?,
        };
        let record_ms = start.elapsed().as_secs_f64() * 1e3;
        let nodes = graph.nodes()?;
        gpu.synchronize()?;
        let free_before = gpu.free_memory()?;
        let start = Instant::now();
        let exec = gpu.instantiate(graph)?;
        gpu.synchronize()?;
        let instantiate_ms = start.elapsed().as_secs_f64() * 1e3;
        let device_bytes = free_before as i64 - gpu.free_memory()? as i64;
        self.reports.push(GraphReport {
            batch: key.bucket.batch,
            context: key.bucket.context,
            steps: key.steps,
            nodes,
            record_ms,
            instantiate_ms,
            device_bytes,
            programmatic: gpu.programmatic_launch()
                && self.options.construction == Construction::Capture,
        });
        self.execs.insert(key, exec);
        Ok(())
    }

    /// Records every graph again against the model's current buffers and updates the
    /// instantiated ones in place; returns how many.
    pub fn update_all(&mut self, gpu: &Gpu, model: &mut DeviceModel) -> Result<usize, CudaError> {
        let mut keys: Vec<GraphKey> = self.execs.keys().copied().collect();
        keys.sort_unstable();
        for &key in &keys {
            let graph = self.record(gpu, model, key)?;
            self.execs
                .get_mut(&key)
                .expect("a key of the map")
                .update(graph)?;
        }
        Ok(keys.len())
    }

    /// The graph a chain of `steps` steps of `batch` sequences from `position` runs in,
    /// or why none fits.
    pub fn key_for(&self, batch: usize, position: usize, steps: usize) -> Result<GraphKey, String> {
        self.options.key_for(batch, position, steps)
    }

    /// The graph of `key`, if made.
    pub fn get(&self, key: &GraphKey) -> Option<&GraphExec> {
        self.execs.get(key)
    }

    /// Replays the graph of `key` for `tokens` at `position` (the graph must be made) and
    /// returns the next tokens of each of its steps, and the host time spent before
    /// waiting for the GPU. One graph launch, one sync.
    pub fn replay(
        &mut self,
        gpu: &Gpu,
        key: GraphKey,
        tokens: &[u32],
        position: usize,
    ) -> Result<(Vec<Vec<u32>>, Duration), CudaError> {
        let issued = Instant::now();
        let [ids, positions, lengths] = &mut self.inputs;
        fill_inputs(
            tokens,
            position,
            [
                ids.as_mut_slice(),
                positions.as_mut_slice(),
                lengths.as_mut_slice(),
            ],
        );
        gpu.replay(&self.execs[&key])?;
        let issue = issued.elapsed();
        gpu.synchronize()?;
        let rows = self.outputs.as_slice().chunks(self.max_batch);
        let rows = rows
            .take(key.steps)
            .map(|row| row[..tokens.len()].to_vec())
            .collect();
        Ok((rows, issue))
    }
}
