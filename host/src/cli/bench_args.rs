//! The command-line options shared by the whole-engine benchmarks (`host bench decode`
//! and `host bench compare`), which differ only in their default batches and contexts.

use crate::bench::decode::DecodeCases;

/// Which models, batches and contexts to time.
#[derive(clap::Args, Debug, Clone)]
pub struct CaseArgs {
    /// Models, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gpt2,gpt2-medium,gpt2-large,gpt2-xl"
    )]
    pub presets: Vec<String>,
    /// Batches, comma-separated [default: decode 1,8; compare 1,8,32].
    #[arg(long, value_delimiter = ',')]
    pub batches: Option<Vec<usize>>,
    /// Mean positions attended to, comma-separated [default: decode 128; compare
    /// 128,1000].
    #[arg(long, value_delimiter = ',')]
    pub contexts: Option<Vec<usize>>,
    /// Steps per graph launch of the chained rows.
    #[arg(long, default_value_t = 16)]
    pub steps_per_graph: usize,
}

impl CaseArgs {
    /// The cases, with these batches and contexts where none were given.
    pub fn cases(self, batches: &[usize], contexts: &[usize]) -> DecodeCases {
        DecodeCases {
            presets: self.presets,
            batches: self.batches.unwrap_or_else(|| batches.to_vec()),
            contexts: self.contexts.unwrap_or_else(|| contexts.to_vec()),
            steps_per_graph: self.steps_per_graph,
        }
    }
}
