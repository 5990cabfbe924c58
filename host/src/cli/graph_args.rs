//! The command-line options that choose between eager launches and CUDA graphs, and
//! which graphs.

use crate::graphs::{BucketTable, Construction, GraphOptions};
use anyhow::{Result, anyhow};

/// CUDA graph options shared by the commands that decode.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Launch every kernel from the host instead of replaying CUDA graphs.
    #[arg(long)]
    pub eager: bool,
    /// Batch buckets, comma-separated [default: 1,2,4,8,16,32 cut to --batch, and it];
    /// 4 is added when larger ones are given (the tensor-core boundary).
    #[arg(long, value_delimiter = ',')]
    pub batch_buckets: Option<Vec<usize>>,
    /// Context buckets, comma-separated [default: 128,256,512,1024 cut to the context,
    /// and it].
    #[arg(long, value_delimiter = ',')]
    pub context_buckets: Option<Vec<usize>>,
    /// Decode steps chained on the device per graph launch (1 to 16).
    #[arg(long, default_value_t = 1)]
    pub steps_per_graph: usize,
    /// How graphs are made.
    #[arg(long, value_enum, default_value_t = ConstructionArg::Capture)]
    pub construction: ConstructionArg,
    /// Make each graph on first use instead of all at start.
    #[arg(long)]
    pub lazy_graphs: bool,
    /// Run steps no graph bucket holds eagerly instead of refusing them.
    #[arg(long)]
    pub allow_eager_fallback: bool,
    /// NVTX ranges around graph making, replays and eager steps, for Nsight Systems.
    #[arg(long)]
    pub nvtx: bool,
}

impl GraphArgs {
    /// The graphs to make for an engine of `max_batch` x `capacity`, or `None` for
    /// eager launches; an error names a bucket or option that cannot work.
    pub fn options(&self, max_batch: usize, capacity: usize) -> Result<Option<GraphOptions>> {
        if self.eager {
            return Ok(None);
        }
        let defaults = BucketTable::default_for(max_batch, capacity);
        let table = match (&self.batch_buckets, &self.context_buckets) {
            (None, None) => defaults,
            (batches, contexts) => BucketTable::new(
                batches.as_deref().unwrap_or(&defaults.batches()),
                contexts.as_deref().unwrap_or(&defaults.contexts()),
                max_batch,
                capacity,
            )
            .map_err(|e| anyhow!(e))?,
        };
        let options = GraphOptions {
            table,
            steps_per_graph: self.steps_per_graph,
            construction: self.construction.into(),
            lazy: self.lazy_graphs,
        };
        options.check().map_err(|e| anyhow!(e))?;
        Ok(Some(options))
    }
}

/// `--construction`: how graphs are made ([`Construction`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConstructionArg {
    /// Stream capture of the code that runs eagerly (the default).
    Capture,
    /// The node API.
    Nodes,
}

impl From<ConstructionArg> for Construction {
    fn from(arg: ConstructionArg) -> Self {
        match arg {
            ConstructionArg::Capture => Construction::Capture,
            ConstructionArg::Nodes => Construction::Nodes,
        }
    }
}
