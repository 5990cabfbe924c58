//! The engine's CUDA graphs: one per (bucket, steps per graph), each holding the input
//! copies from pinned host memory, `steps` decode steps chained on the device, and the
//! copy of their next tokens back; made at engine start or on first use, replayed once
//! per launch, updated in place when the buffers they point at move.

use crate::cuda::{CudaError, Gpu, Graph, GraphExec, PinnedBuffer};
use crate::graphs::{Bucket, BucketTable};
use crate::step::{DecodeStep, DeviceModel, MAX_STEPS_PER_GRAPH};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a graph is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Construction {
    /// Stream capture of the same code that runs eagerly; keeps programmatic dependent
    /// launch edges. The default.
    Capture,
    /// The node API: kernel and memcpy nodes added one by one with explicit dependencies.
    Nodes,
}

/// Which graphs an engine makes, and how.
#[derive(Clone, Debug)]
pub struct GraphOptions {
    /// The (batch, context) buckets.
    pub table: BucketTable,
    /// Decode steps per graph launch: 1, or more to chain steps on the device (up to
    /// [`MAX_STEPS_PER_GRAPH`]); single-step graphs are always made too, for prompts.
    pub steps_per_graph: usize,
    /// Capture or node API.
    pub construction: Construction,
    /// Make each graph on first use instead of all at start.
    pub lazy: bool,
}

impl GraphOptions {
    /// Every bucket of `table`, one step per graph, captured at start.
    pub fn new(table: BucketTable) -> Self {
        GraphOptions {
            table,
            steps_per_graph: 1,
            construction: Construction::Capture,
            lazy: false,
        }
    }

    /// The same with `steps` steps per graph.
    pub fn with_steps(self, steps: usize) -> Self {
        GraphOptions {
            steps_per_graph: steps,
            ..self
        }
    }

    /// The graph a chain of `steps` steps of `batch` sequences from `position` runs in:
    /// its last step attends to `position + steps` positions. Or why none fits.
    pub fn key_for(&self, batch: usize, position: usize, steps: usize) -> Result<GraphKey, String> {
        let bucket = self.table.choose(batch, position + steps)?;
        Ok(GraphKey { bucket, steps })
    }

    /// Why these options cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_STEPS_PER_GRAPH).contains(&self.steps_per_graph) {
            return Err(format!(
                "{} steps per graph is outside 1..={MAX_STEPS_PER_GRAPH}",
                self.steps_per_graph
            ));
        }
        Ok(())
    }
}

/// Identifies one graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GraphKey {
    /// Its shape.
    pub bucket: Bucket,
    /// Decode steps it chains.
    pub steps: usize,
}

impl std::fmt::Display for GraphKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Bucket { batch, context } = self.bucket;
        write!(f, "batch {batch} x context {context}, {} steps", self.steps)
    }
}

/// How one graph was made.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphReport {
    /// Batch bucket.
    pub batch: usize,
    /// Context bucket.
    pub context: usize,
    /// Decode steps it chains.
    pub steps: usize,
    /// Nodes (kernels and copies).
    pub nodes: usize,
    /// Recording it (capture or node API), ms.
    pub record_ms: f64,
    /// Instantiating and uploading it, ms.
    pub instantiate_ms: f64,
    /// Device memory the instantiated graph took (free memory before minus after).
    pub device_bytes: i64,
    /// Whether its kernels overlap through programmatic dependent launch.
    pub programmatic: bool,
}

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

/// Writes the step's inputs for `tokens` at `position` into `[tokens, positions,
/// lengths]`, each as long as the rows to fill. A padding row is token 0 at position 0
/// of its own unused slot, attending to that one position, so a bucket's padded rows do
/// valid work. Writes in place: on the graph path this runs every launch.
pub(crate) fn fill_inputs(
    tokens: &[u32],
    position: usize,
    [ids, positions, lengths]: [&mut [u32]; 3],
) {
    ids.fill(0);
    positions.fill(0);
    lengths.fill(1);
    ids[..tokens.len()].copy_from_slice(tokens);
    positions[..tokens.len()].fill(position as u32);
    lengths[..tokens.len()].fill(position as u32 + 1);
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

    #[test]
    fn a_chain_takes_the_bucket_of_its_last_step() {
        let table = BucketTable::new(&[1, 2, 4, 8], &[16, 32, 64, 128], 8, 128).unwrap();
        let options = GraphOptions::new(table).with_steps(16);
        let key = |batch, position, steps| {
            let k = options.key_for(batch, position, steps).unwrap();
            (k.bucket.batch, k.bucket.context, k.steps)
        };
        assert_eq!(key(3, 10, 1), (4, 16, 1));
        // Steps at positions 10..=25 attend to up to 26 positions.
        assert_eq!(key(3, 10, 16), (4, 32, 16));
        assert_eq!(key(1, 112, 16), (1, 128, 16));
        assert_eq!(
            options.key_for(1, 113, 16).unwrap_err(),
            "129 positions are more than the largest context bucket, 128"
        );
    }

    #[test]
    fn steps_per_graph_is_checked() {
        let table = BucketTable::default_for(1, 128);
        assert!(
            GraphOptions::new(table.clone())
                .with_steps(16)
                .check()
                .is_ok()
        );
        assert_eq!(
            GraphOptions::new(table).with_steps(17).check().unwrap_err(),
            "17 steps per graph is outside 1..=16"
        );
    }
}
