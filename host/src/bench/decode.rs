//! `host bench decode`: ms/token of the whole engine (eager, one graph per step, and
//! several steps chained per graph) against the floor of reading the weights and the
//! KV cache once per token at the copy bandwidth.

use super::copy_bandwidth_gbps;
use crate::cuda::Gpu;
use crate::engine::{AnyWeights, Engine, ModelWeights};
use crate::graphs::{BucketTable, GraphOptions};
use crate::model::Config;
use anyhow::{Result, bail};
use std::time::Instant;

/// Steps before timing, then steps timed (multiples of every steps-per-graph choice).
const WARMUP_STEPS: usize = 16;
const TIMED_STEPS: usize = 48;

/// What to measure.
#[derive(Clone, Debug)]
pub struct DecodeCases {
    /// gpt2 .. gpt2-xl.
    pub presets: Vec<String>,
    /// Sequences per step.
    pub batches: Vec<usize>,
    /// Mean positions attended to over the timed steps.
    pub contexts: Vec<usize>,
    /// Steps per launch of the chained rows.
    pub steps_per_graph: usize,
}

impl DecodeCases {
    /// Refuses cases that cannot run, before the GPU; returns each preset's config.
    pub fn check(&self) -> Result<Vec<(&String, Config)>> {
        if self.presets.is_empty() || self.batches.is_empty() || self.contexts.is_empty() {
            bail!("no cases: give at least one preset, batch and context");
        }
        let max_batch = gpu_kernels::abi::MAX_BATCH as usize;
        if let Some(batch) = self.batches.iter().find(|&&b| b == 0 || b > max_batch) {
            bail!("batch {batch} is outside 1..={max_batch}");
        }
        for &context in &self.contexts {
            // Every preset holds 1024 positions (GPT-2's context).
            let (low, high) = (WARMUP_STEPS + TIMED_STEPS / 2, 1024 - TIMED_STEPS / 2);
            if !(low..=high).contains(&context) {
                bail!("context {context} is outside {low}..={high}");
            }
        }
        let k = self.steps_per_graph;
        if k == 0 || !TIMED_STEPS.is_multiple_of(k) || !WARMUP_STEPS.is_multiple_of(k) {
            bail!("--steps-per-graph {k} does not divide {WARMUP_STEPS}");
        }
        self.presets
            .iter()
            .map(|p| Ok((p, Config::preset(p)?)))
            .collect()
    }
}

impl Default for DecodeCases {
    fn default() -> Self {
        DecodeCases {
            presets: Config::PRESETS.iter().map(|p| p.to_string()).collect(),
            batches: vec![1, 8],
            contexts: vec![128],
            steps_per_graph: 16,
        }
    }
}

/// One (model, batch, context) measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DecodeRow {
    /// gpt2 .. gpt2-xl.
    pub preset: String,
    /// Sequences.
    pub batch: usize,
    /// Mean positions attended to.
    pub context: usize,
    /// Weights plus the mean KV bytes read per step.
    pub bytes_per_token: u64,
    /// `bytes_per_token` at the copy bandwidth, ms.
    pub floor_ms: f64,
    /// Eager: one host launch per kernel, ms per step.
    pub eager_ms: f64,
    /// One graph replay per step, ms.
    pub graph_ms: f64,
    /// `steps_per_graph` steps per replay, ms per step.
    pub chained_ms: f64,
    /// Host time issuing work (not waiting), microseconds per step: eager, graph, chained.
    pub host_us: [f64; 3],
    /// graph / floor.
    pub graph_over_floor: f64,
    /// chained / floor.
    pub chained_over_floor: f64,
    /// eager / graph.
    pub eager_over_graph: f64,
    /// Making every graph of the engine (both steps-per-graph choices), ms.
    pub capture_ms: f64,
}

/// What `host bench decode` measured.
#[derive(Debug, serde::Serialize)]
pub struct DecodeBench {
    /// The GPU.
    pub device: String,
    /// Device-to-device copy bandwidth, GB/s (read + write).
    pub copy_gbps: f64,
    /// Steps per launch of the chained rows.
    pub steps_per_graph: usize,
    /// One row per preset, batch and context.
    pub rows: Vec<DecodeRow>,
}

/// Runs every case and prints the table.
pub fn run(device: u32, cases: &DecodeCases) -> Result<DecodeBench> {
    let configs = cases.check()?;
    let probe = Gpu::open(device)?;
    let copy_gbps = copy_bandwidth_gbps(&probe)?;
    let name = probe.info().name.clone();
    drop(probe);
    println!("{name}: device-to-device copy {copy_gbps:.0} GB/s (read + write)");
    let mut rows = Vec::new();
    for (preset, config) in configs {
        let weights = AnyWeights::random(&config, 1);
        for &batch in &cases.batches {
            rows.extend(measure(device, &weights, preset, batch, cases, copy_gbps)?);
        }
    }
    print_table(&rows, cases.steps_per_graph);
    Ok(DecodeBench {
        device: name,
        copy_gbps,
        steps_per_graph: cases.steps_per_graph,
        rows,
    })
}

/// Prints one line per row.
pub fn print_table(rows: &[DecodeRow], steps_per_graph: usize) {
    println!(
        "model       | batch | context | floor ms | eager ms | graph ms | x{steps_per_graph:<2} graph ms | host us eager/graph/x{steps_per_graph} | graph/floor | x{steps_per_graph} /floor | eager/graph | capture ms"
    );
    for r in rows {
        println!(
            "{:<11} | {:>5} | {:>7} | {:>8.3} | {:>8.3} | {:>8.3} | {:>11.3} | {:>20} | {:>11.2} | {:>10.2} | {:>11.2} | {:>10.0}",
            r.preset,
            r.batch,
            r.context,
            r.floor_ms,
            r.eager_ms,
            r.graph_ms,
            r.chained_ms,
            format!(
                "{:.0}/{:.1}/{:.1}",
                r.host_us[0], r.host_us[1], r.host_us[2]
            ),
            r.graph_over_floor,
            r.chained_over_floor,
            r.eager_over_graph,
            r.capture_ms
        );
    }
}

/// How a timed step runs.
#[derive(Clone, Copy)]
enum Mode {
    /// Engine::step, eager or one graph per step, whichever the engine does.
    Step,
    /// Engine::step_chain with this many steps.
    Chain(usize),
}

/// Times one engine of `batch` sequences on `weights` at every context of `cases`: eager
/// first, then with graphs (made in between, timed as `capture_ms`).
pub(super) fn measure<W: ModelWeights + ?Sized>(
    device: u32,
    weights: &W,
    preset: &str,
    batch: usize,
    cases: &DecodeCases,
    copy_gbps: f64,
) -> Result<Vec<DecodeRow>> {
    let config = weights.config();
    let capacity = bench_capacity(config, &cases.contexts);
    let gpu = Gpu::open_for(device, config.half_type())?;
    let mut engine = Engine::new(gpu, weights, batch, capacity, |_| {})?;
    engine.randomize_kv_cache(7)?;
    let mut eager = Vec::new();
    for &context in &cases.contexts {
        eager.push(time_steps(&mut engine, batch, context, Mode::Step)?);
    }
    let start = Instant::now();
    let contexts = BucketTable::default_for(batch, capacity).contexts();
    let table =
        BucketTable::new(&[batch], &contexts, batch, capacity).map_err(anyhow::Error::msg)?;
    engine.capture_graphs(GraphOptions::new(table).with_steps(cases.steps_per_graph))?;
    let capture_ms = start.elapsed().as_secs_f64() * 1e3;

    let mut rows = Vec::new();
    for (&context, (eager_ms, eager_host_us)) in cases.contexts.iter().zip(eager) {
        let (graph_ms, graph_host_us) = time_steps(&mut engine, batch, context, Mode::Step)?;
        let chain = Mode::Chain(cases.steps_per_graph);
        let (chained_ms, chained_host_us) = time_steps(&mut engine, batch, context, chain)?;
        let bytes_per_token = bytes_per_step(config, batch, context) as u64;
        let floor_ms = bytes_per_token as f64 / (copy_gbps * 1e6);
        rows.push(DecodeRow {
            preset: preset.to_owned(),
            batch,
            context,
            bytes_per_token,
            floor_ms,
            eager_ms,
            graph_ms,
            chained_ms,
            host_us: [eager_host_us, graph_host_us, chained_host_us],
            graph_over_floor: graph_ms / floor_ms,
            chained_over_floor: chained_ms / floor_ms,
            eager_over_graph: eager_ms / graph_ms,
            capture_ms,
        });
    }
    Ok(rows)
}

/// Runs WARMUP_STEPS then TIMED_STEPS steps placed so that the timed ones attend to
/// `context` positions on average, feeding back the greedy tokens; returns the mean wall
/// ms per timed step (each launch ends with a sync) and the host issue time per step, us.
fn time_steps(engine: &mut Engine, batch: usize, context: usize, mode: Mode) -> Result<(f64, f64)> {
    let first = context - TIMED_STEPS / 2 - WARMUP_STEPS;
    let mut tokens: Vec<u32> = (0..batch as u32).map(|b| 464 + b).collect();
    let mut position = first;
    let mut start = Instant::now();
    while position < first + WARMUP_STEPS + TIMED_STEPS {
        if position == first + WARMUP_STEPS {
            engine.take_host_time();
            start = Instant::now();
        }
        let rows = match mode {
            Mode::Step => vec![engine.step(&tokens, position, false)?.0],
            Mode::Chain(steps) => engine.step_chain(&tokens, position, steps)?,
        };
        position += rows.len();
        tokens = rows.last().expect("at least one step").clone();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / TIMED_STEPS as f64;
    let host_us = engine.take_host_time().as_secs_f64() * 1e6 / TIMED_STEPS as f64;
    Ok((ms, host_us))
}

/// The cache the benchmark allocates: the smallest context bucket that holds every timed
/// context with its warm-up (past 1024 positions no preset is timed).
pub(super) fn bench_capacity(config: &Config, contexts: &[usize]) -> usize {
    let longest = contexts.iter().max().copied().unwrap_or(1) + TIMED_STEPS;
    longest
        .next_power_of_two()
        .clamp(128, 1024)
        .min(config.n_positions)
}

/// Bytes one decode step must read: every weight once, but of the embedding tables only
/// the rows of its tokens and positions (a head tied to the token table reads it whole),
/// and per sequence and layer K and V of `context` positions on average.
pub(super) fn bytes_per_step(config: &Config, batch: usize, context: usize) -> usize {
    let d = config.d_model;
    let kv_row = config.n_kv_head() * config.head_dim();
    let kv = batch * config.n_layer * 2 * context * kv_row * 2;
    let unread = match &config.llama {
        None => (config.n_positions - batch) * d * 2,
        Some(l) if l.tie_word_embeddings => 0,
        Some(l) => (l.vocab - batch) * d * 2,
    };
    2 * config.parameters() - unread + kv
}
