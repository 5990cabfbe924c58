//! The bodies of the `host` commands; `main.rs` parses the command line and calls them.

pub mod bench_args;
pub mod check;
pub mod generate;
pub mod graph_args;
pub mod graphs;
pub mod info;
pub mod model_args;

use crate::cuda::Gpu;
use crate::engine::Engine;
use crate::model::Weights;
use anyhow::Result;

/// Opens the GPU and uploads the weights with a progress bar; prints the KV pool size.
pub fn start_engine(
    weights: &Weights,
    device: u32,
    batch: usize,
    capacity: usize,
) -> Result<Engine> {
    let gpu = Gpu::open(device)?;
    let bar = indicatif::ProgressBar::new(weights.bytes() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("uploading weights {bar:40} {bytes}/{total_bytes}")
            .expect("a valid template"),
    );
    let engine = Engine::new(gpu, weights, batch, capacity, |bytes| bar.inc(bytes as u64))?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} parameters, KV cache {:.1} MiB for {batch} x {capacity} positions",
        engine.gpu().info().name,
        weights.config.parameters(),
        engine.kv_cache_bytes() as f64 / (1 << 20) as f64
    );
    Ok(engine)
}
