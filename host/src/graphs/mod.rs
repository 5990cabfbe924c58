//! The engine's CUDA graphs: one per (bucket, steps per graph), each holding the input
//! copies from pinned host memory, `steps` decode steps chained on the device, and the
//! copy of their next tokens back. [`buckets`] holds the (batch, context) shapes, `set`
//! the graphs themselves, [`dot`] their readable Graphviz dumps; this file, which graphs
//! an engine makes and how.

pub mod buckets;
pub mod dot;
mod set;

pub use buckets::{Bucket, BucketTable};
pub(crate) use set::GraphSet;

use crate::step::MAX_STEPS_PER_GRAPH;

/// How a graph is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
