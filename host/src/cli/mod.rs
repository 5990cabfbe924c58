//! The bodies of the `host` commands; `main.rs` parses the command line and calls them.

pub mod bench_args;
pub mod check;
pub mod generate;
pub mod graph_args;
pub mod graphs;
pub mod info;
pub mod model_args;

use crate::cuda::Gpu;
use crate::engine::{AnyWeights, Engine, ModelWeights};
use crate::model::Config;
use crate::tokenizer::Tokenizer;
use anyhow::{Result, bail};

/// The prompt's tokens (with the special tokens the tokenizer adds around a text unless
/// `rendered` by a chat template, which holds them); refused when there are none or one
/// is outside the model's vocabulary (the embedding would read past its table).
pub fn prompt_tokens(
    tokenizer: &Tokenizer,
    prompt: &str,
    rendered: bool,
    config: &Config,
) -> Result<Vec<u32>> {
    let tokens = tokenizer.encode(prompt, !rendered)?;
    if tokens.is_empty() {
        bail!("the prompt is empty");
    }
    if let Some((i, id)) = tokens
        .iter()
        .enumerate()
        .find(|&(_, &id)| id as usize >= config.vocab)
    {
        bail!(
            "token {i} of the prompt (id {id}) is outside the model's vocabulary of {}",
            config.vocab
        );
    }
    Ok(tokens)
}

/// Opens the GPU and uploads the weights with a progress bar; prints the KV pool size.
pub fn start_engine(
    weights: &AnyWeights,
    device: u32,
    batch: usize,
    capacity: usize,
) -> Result<Engine> {
    let config = weights.config();
    let gpu = Gpu::open_for(device, config.half_type())?;
    let bar = indicatif::ProgressBar::new(2 * config.parameters() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("uploading weights {bar:40} {bytes}/{total_bytes}")
            .expect("a valid template"),
    );
    let engine = Engine::new(gpu, weights, batch, capacity, |bytes| bar.inc(bytes as u64))?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} parameters, KV cache {:.1} MiB for {batch} x {capacity} positions",
        engine.gpu().info().name,
        config.parameters(),
        engine.kv_cache_bytes() as f64 / (1 << 20) as f64
    );
    Ok(engine)
}
