//! Choosing weights from the command line: `--model DIR` or `--random SEED --preset P`.

use crate::model::{Config, Weights, check_model_dir, load_hf_dir_with_progress};
use anyhow::{Result, bail};
use std::path::PathBuf;

/// Where the weights come from.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A Hugging Face GPT-2 directory (config.json + model.safetensors).
    #[arg(long, conflicts_with_all = ["random", "preset"])]
    pub model: Option<PathBuf>,
    /// Random weights (GPT-2's initialization) from this seed; needs --preset.
    #[arg(long, requires = "preset")]
    pub random: Option<u64>,
    /// gpt2, gpt2-medium, gpt2-large or gpt2-xl, for --random.
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
        match &self.model {
            Some(dir) => vec![dir.join("config.json"), dir.join("model.safetensors")],
            None => Vec::new(),
        }
    }

    /// Loads (and validates) or makes the weights; touches no GPU.
    pub fn weights(&self) -> Result<Weights> {
        match (&self.model, self.random, &self.preset) {
            (Some(dir), None, None) => {
                let total = 2 * self.config()?.parameters();
                let bar = indicatif::ProgressBar::new(total as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "converting weights {bar:40} {bytes}/{total_bytes}",
                    )
                    .expect("a valid template"),
                );
                let weights = load_hf_dir_with_progress(dir, |bytes| bar.inc(bytes as u64));
                bar.finish_and_clear();
                Ok(weights?)
            }
            (None, Some(seed), Some(preset)) => Ok(Weights::random(&Config::preset(preset)?, seed)),
            _ => bail!("choose the weights: --model DIR, or --random SEED --preset NAME"),
        }
    }
}
