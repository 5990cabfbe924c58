//! `host graphs`: makes an engine's CUDA graphs and prints how each was made; optionally
//! writes one as Graphviz dot and checks that updating the graphs in place works.

use super::graph_args::GraphArgs;
use super::model_args::ModelArgs;
use super::start_engine;
use crate::graphs::{GraphKey, GraphReport};
use crate::output::OutputFile;
use anyhow::{Result, anyhow, bail};
use std::path::PathBuf;
use std::time::Instant;

/// What `host graphs` shows.
pub struct Show {
    /// Largest batch of the engine.
    pub batch: usize,
    /// Keep only the first this many layers (a one-layer graph reads well as dot).
    pub layers: Option<usize>,
    /// Write the graph of the smallest bucket (and the largest steps per graph) here.
    pub dot: Option<PathBuf>,
    /// Keep every node parameter in the dot file (the driver's own dump).
    pub dot_verbose: bool,
    /// Upload the weights again into new buffers and update every graph in place.
    pub update: bool,
}

/// Makes the graphs `graphs` describes and prints one row per graph.
pub fn graphs(model: &ModelArgs, show: Show, graphs: &GraphArgs, device: u32) -> Result<()> {
    let config = model.config()?;
    let max_batch = gpu_kernels::abi::MAX_BATCH as usize;
    if show.batch == 0 || show.batch > max_batch {
        bail!("--batch {} is outside 1..={max_batch}", show.batch);
    }
    if let Some(layers) = show.layers
        && (layers == 0 || layers > config.n_layer)
    {
        bail!("--layers {layers} is outside 1..={}", config.n_layer);
    }
    let capacity = config.n_positions;
    let Some(options) = graphs.options(show.batch, capacity)? else {
        bail!("--eager makes no graphs to show");
    };
    let dot = show
        .dot
        .as_ref()
        .map(|path| OutputFile::create(path, &model.input_files()))
        .transpose()?;
    let mut weights = model.weights()?;
    if let Some(layers) = show.layers {
        weights.truncate_layers(layers);
    }
    let mut engine = start_engine(&weights, device, show.batch, capacity)?;
    engine.set_nvtx(graphs.nvtx);
    let start = Instant::now();
    let lazy = options.lazy;
    let steps = options.steps_per_graph;
    let smallest = options.table.all()[0];
    engine.capture_graphs(options)?;
    if lazy {
        eprintln!("--lazy-graphs: making only the graph of the smallest bucket");
    }
    let key = GraphKey {
        bucket: smallest,
        steps,
    };
    if let Some(dot) = dot {
        engine.write_graph_dot(key, dot.temp_path())?;
        if !show.dot_verbose {
            let verbose = std::fs::read_to_string(dot.temp_path())?;
            let compact = crate::graphs::dot::compact(&verbose)
                .ok_or_else(|| anyhow!("the driver's dot dump has an unknown form"))?;
            dot.write(compact.as_bytes())?;
        }
        let path = dot.target().to_owned();
        dot.commit()?;
        eprintln!("wrote the graph of {key} to {}", path.display());
    }
    let total_ms = start.elapsed().as_secs_f64() * 1e3;
    print_table(engine.graph_reports());
    println!("all graphs made in {total_ms:.0} ms (including eager warm-up per bucket)");
    if show.update {
        let start = Instant::now();
        let updated = engine
            .replace_weights(&weights, |_| {})
            .map_err(|e| anyhow!("updating the graphs: {e}"))?;
        println!(
            "uploaded the weights again and updated {updated} graphs in place in {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// One row per graph: bucket, steps, nodes, record and instantiate times, memory.
pub fn print_table(reports: &[GraphReport]) {
    println!("batch | context | steps | nodes | record ms | instantiate ms | device MiB | PDL");
    for r in reports {
        println!(
            "{:>5} | {:>7} | {:>5} | {:>5} | {:>9.2} | {:>14.2} | {:>10.1} | {}",
            r.batch,
            r.context,
            r.steps,
            r.nodes,
            r.record_ms,
            r.instantiate_ms,
            r.device_bytes as f64 / (1 << 20) as f64,
            if r.programmatic { "yes" } else { "no" }
        );
    }
}
