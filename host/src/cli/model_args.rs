//! Choosing weights from the command line: `--model DIR` or `--random SEED --preset P`.

use crate::engine::AnyWeights;
use crate::model::{Config, check_model_dir, load_hf_dir_with_progress, load_llama_dir};
use anyhow::{Result, bail};
use std::path::PathBuf;

/// Where the weights come from.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A Hugging Face directory of a GPT-2, Llama 3.x or Qwen2.5 model (config.json, and
    /// model.safetensors or shards with model.safetensors.index.json).
    #[arg(long, conflicts_with_all = ["random", "preset"])]
    pub model: Option<PathBuf>,
    /// Random weights from this seed; needs --preset.
    #[arg(long, requires = "preset")]
    pub random: Option<u64>,
    /// The shape for --random: gpt2, gpt2-medium, gpt2-large, gpt2-xl, llama-3.2-1b,
    /// llama-3.2-3b, llama-3.1-8b, qwen2.5-0.5b, qwen2.5-1.5b or qwen2.5-7b.
    #[arg(long, requires = "random")]
    pub preset: Option<String>,
}

impl ModelArgs {
    /// The model's shape alone (reads config.json, not the weights): enough to check a
    /// request before the slow part.
    pub fn config(&self) -> Result<Config> {
        match (&self.model, self.random, &self.preset) {
            (Some(dir), None, None) => {
                check_model_dir(dir)?;
                Ok(Config::from_hf_dir(dir)?)
            }
            (None, Some(_), Some(preset)) => Ok(Config::preset(preset)?),
            _ => bail!("choose the weights: --model DIR, or --random SEED --preset NAME"),
        }
    }

    /// The files the weights are read from (none for random weights): an output must
    /// not be one of them.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.model else {
            return Vec::new();
        };
        let mut files = vec![dir.join("config.json"), dir.join("model.safetensors")];
        // The shards of a sharded checkpoint, by the names they have.
        if let Ok(entries) = std::fs::read_dir(dir) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "safetensors" || e == "json")
            }));
        }
        files
    }

    /// Loads (and validates) or makes the weights; touches no GPU.
    pub fn weights(&self) -> Result<AnyWeights> {
        match (&self.model, self.random, &self.preset) {
            (Some(dir), None, None) => {
                let config = self.config()?;
                let total = 2 * config.parameters();
                let bar = indicatif::ProgressBar::new(total as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "reading weights {bar:40} {bytes}/{total_bytes}",
                    )
                    .expect("a valid template"),
                );
                let progress = |bytes: usize| bar.inc(bytes as u64);
                let weights = match config.llama {
                    None => load_hf_dir_with_progress(dir, progress).map(AnyWeights::Gpt2),
                    Some(_) => load_llama_dir(dir, progress).map(AnyWeights::Llama),
                };
                bar.finish_and_clear();
                Ok(weights?)
            }
            (None, Some(seed), Some(preset)) => {
                Ok(AnyWeights::random(&Config::preset(preset)?, seed))
            }
            _ => bail!("choose the weights: --model DIR, or --random SEED --preset NAME"),
        }
    }
}
