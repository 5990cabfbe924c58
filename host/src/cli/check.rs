//! `host check`: the GPU engine against the CPU reference, teacher-forced.

use super::model_args::ModelArgs;
use super::{prompt_tokens, start_engine};
use crate::engine::AnyWeights;
use crate::halves::HalfType;
use crate::reference::model::{ReferenceModel, SequenceCache};
use crate::reference::{LlamaReference, argmax, relative_l2};
use crate::tokenizer::Tokenizer;
use anyhow::{Result, bail};

/// Runs both models over `prompt`'s tokens (then the reference's greedy tokens) for
/// `steps` steps; prints the relative logit error per step; fails above `threshold`.
pub fn check(
    model: &ModelArgs,
    steps: usize,
    prompt: &str,
    threshold: Option<f64>,
    device: u32,
) -> Result<()> {
    let config = model.config()?;
    // bf16 keeps 8 significant bits: transformers' own bf16 logits differ from its f32
    // ones by 2-4e-2 on these models.
    let threshold = threshold.unwrap_or(match config.half_type() {
        HalfType::F16 => 1e-2,
        HalfType::Bf16 => 5e-2,
    });
    let tokenizer = Tokenizer::for_model(model.model.as_deref())?;
    let mut tokens = prompt_tokens(&tokenizer, prompt, false, &config)?;
    let n_positions = config.n_positions;
    if steps == 0 || steps > n_positions {
        bail!("--steps {steps} is outside 1..={n_positions}");
    }
    if !(threshold.is_finite() && threshold > 0.0) {
        bail!("--threshold {threshold} is not a positive number");
    }
    let weights = model.weights()?;
    let reference = Reference::new(&weights);
    let mut engine = start_engine(&weights, device, 1, steps)?;
    let mut cache = SequenceCache::default();
    let mut worst: f64 = 0.0;
    println!("step | token | relative L2 error | gpu argmax | cpu argmax");
    for position in 0..steps {
        let expected = reference.step(&mut cache, tokens[position]);
        let (_, logits) = engine.step(&tokens[position..=position], position, true)?;
        let logits = logits.expect("asked for logits");
        let error = relative_l2(&logits, &expected);
        worst = worst.max(error);
        let (gpu_top, cpu_top) = (argmax(&logits), argmax(&expected));
        println!(
            "{position:4} | {:5} | {error:17.3e} | {gpu_top:10} | {cpu_top:10}",
            tokens[position]
        );
        if tokens.len() == position + 1 {
            tokens.push(cpu_top as u32);
        }
    }
    if worst > threshold {
        bail!("largest relative logit error {worst:.3e} is above the threshold {threshold:.0e}");
    }
    println!("largest relative logit error {worst:.3e} (threshold {threshold:.0e}): ok");
    Ok(())
}

/// The CPU model of the weights' architecture.
enum Reference {
    Gpt2(ReferenceModel),
    Llama(LlamaReference),
}

impl Reference {
    fn new(weights: &AnyWeights) -> Self {
        match weights {
            AnyWeights::Gpt2(w) => Reference::Gpt2(ReferenceModel::new(w)),
            AnyWeights::Llama(w) => Reference::Llama(LlamaReference::new(w)),
        }
    }

    fn step(&self, cache: &mut SequenceCache, token: u32) -> Vec<f32> {
        match self {
            Reference::Gpt2(m) => m.step(cache, token),
            Reference::Llama(m) => m.step(cache, token),
        }
    }
}
