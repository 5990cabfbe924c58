//! `host bench decode`: ms/token of the whole engine, eager and with CUDA graphs, for the
//! four GPT-2 sizes at batch 1 and 8, against the floor of reading the weights and the KV
//! cache once per token at the copy bandwidth.

use super::copy_bandwidth_gbps;
use crate::cuda::Gpu;
use crate::engine::Engine;
use crate::graphs::BucketTable;
use crate::model::{Config, Weights};
use anyhow::Result;
use std::time::Instant;

/// Steps before timing (module loads, first touches), then steps timed.
const WARMUP_STEPS: usize = 16;
const TIMED_STEPS: usize = 128;
const BATCHES: [usize; 2] = [1, 8];

/// One (model, batch) measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DecodeRow {
    /// gpt2 .. gpt2-xl.
    pub preset: String,
    /// Sequences.
    pub batch: usize,
    /// Weights plus the average KV bytes read per token over the timed steps.
    pub bytes_per_token: u64,
    /// `bytes_per_token` at the copy bandwidth, ms.
    pub floor_ms: f64,
    /// Eager: one host launch per kernel, ms per step.
    pub eager_ms: f64,
    /// One graph replay per step, ms.
    pub graph_ms: f64,
    /// graph / floor.
    pub graph_over_floor: f64,
    /// eager / graph.
    pub speedup: f64,
    /// Capturing every bucket, ms.
    pub capture_ms: f64,
}

/// What `host bench decode` measured.
#[derive(Debug, serde::Serialize)]
pub struct DecodeBench {
    /// The GPU.
    pub device: String,
    /// Device-to-device copy bandwidth, GB/s (read + write).
    pub copy_gbps: f64,
    /// One row per preset and batch.
    pub rows: Vec<DecodeRow>,
}

/// Runs every case and prints the table.
pub fn run(device: u32) -> Result<DecodeBench> {
    let probe = Gpu::open(device)?;
    let copy_gbps = copy_bandwidth_gbps(&probe)?;
    let name = probe.info().name.clone();
    drop(probe);
    println!("{name}: device-to-device copy {copy_gbps:.0} GB/s (read + write)");
    let mut rows = Vec::new();
    for preset in Config::PRESETS {
        let weights = Weights::random(&Config::preset(preset)?, 1);
        for batch in BATCHES {
            rows.push(measure(device, &weights, preset, batch, copy_gbps)?);
        }
    }
    println!(
        "model       | batch | floor ms | eager ms | graph ms | graph/floor | eager/graph | capture ms"
    );
    for r in &rows {
        println!(
            "{:<11} | {:>5} | {:>8.3} | {:>8.3} | {:>8.3} | {:>11.2} | {:>11.2} | {:>10.0}",
            r.preset,
            r.batch,
            r.floor_ms,
            r.eager_ms,
            r.graph_ms,
            r.graph_over_floor,
            r.speedup,
            r.capture_ms
        );
    }
    Ok(DecodeBench {
        device: name,
        copy_gbps,
        rows,
    })
}

fn measure(
    device: u32,
    weights: &Weights,
    preset: &str,
    batch: usize,
    copy_gbps: f64,
) -> Result<DecodeRow> {
    let config = &weights.config;
    let steps = WARMUP_STEPS + TIMED_STEPS;
    let mut engine = Engine::new(
        Gpu::open(device)?,
        weights,
        batch,
        config.n_positions,
        |_| {},
    )?;
    let tokens: Vec<u32> = (0..batch as u32).map(|b| 464 + b).collect();
    let eager_ms = time_steps(&mut engine, &tokens, steps)?;
    let start = Instant::now();
    engine.capture_graphs(BucketTable::default_for(batch, config.n_positions))?;
    let capture_ms = start.elapsed().as_secs_f64() * 1e3;
    let graph_ms = time_steps(&mut engine, &tokens, steps)?;

    // Each timed step reads every weight once and, per sequence and layer, K and V of
    // the positions so far (position + 1 of them, on average mid-way through).
    let mean_positions = (WARMUP_STEPS + 1 + steps) as f64 / 2.0;
    let kv = mean_positions * (batch * config.n_layer * 2 * config.d_model * 2) as f64;
    let bytes_per_token = weights.bytes() as u64 + kv as u64;
    let floor_ms = bytes_per_token as f64 / (copy_gbps * 1e6);
    Ok(DecodeRow {
        preset: preset.to_owned(),
        batch,
        bytes_per_token,
        floor_ms,
        eager_ms,
        graph_ms,
        graph_over_floor: graph_ms / floor_ms,
        speedup: eager_ms / graph_ms,
        capture_ms,
    })
}

/// Runs `steps` steps from position 0, feeding back the greedy tokens; returns the mean
/// wall time of the steps after the warm-up, in ms (each step ends with a sync).
fn time_steps(engine: &mut Engine, first: &[u32], steps: usize) -> Result<f64> {
    let mut tokens = first.to_vec();
    let mut start = Instant::now();
    for position in 0..steps {
        if position == WARMUP_STEPS {
            start = Instant::now();
        }
        tokens = engine.step(&tokens, position, false)?.0;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / (steps - WARMUP_STEPS) as f64)
}
