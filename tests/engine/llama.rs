//! GPU tests of the engine on Llama-family models (rotary positions, grouped-query
//! attention, RMSNorm folded, SwiGLU; Qwen's q/k/v biases): logits against the CPU
//! reference, teacher-forced, in bf16 and fp16, at batch 1 (CUDA cores) and batches that
//! run the tensor cores, with and without the folded norm entries; graphs against eager.

use host::engine::Engine;
use host::graphs::{BucketTable, GraphOptions};
use host::halves::HalfType;
use host::model::{Config, LlamaConfig, LlamaWeights, tiny_llama};
use host::reference::model::SequenceCache;
use host::reference::{LlamaReference, argmax, top2_gap};
use integration_tests::{fresh_rng, gpu_for, relative_l2};
use rand::Rng;

/// Relative logit error allowed: bf16 activations keep 8 significant bits (the residual
/// stream, q, k, v and the MLP's activations are all rounded to them).
fn tolerance(half: HalfType) -> f64 {
    match half {
        HalfType::F16 => 1e-2,
        HalfType::Bf16 => 4e-2,
    }
}

/// `config` with `n_layer` layers.
fn layers(config: Config, n_layer: usize) -> Config {
    let mut llama = config.llama.expect("a Llama config");
    llama.n_layer = n_layer;
    Config::from_llama(llama)
}

/// Feeds the same random tokens to the engine (batch `batch`, every row the same
/// sequence) and the reference for `steps` positions.
fn check_against_reference(config: Config, batch: usize, steps: usize) {
    let half = config.half_type();
    let mut rng = fresh_rng();
    let weights = LlamaWeights::random(&config, rng.random());
    let tokens: Vec<u32> = (0..steps)
        .map(|_| rng.random_range(0..config.vocab as u32))
        .collect();
    let reference = LlamaReference::new(&weights);
    let mut engine = Engine::new(gpu_for(half), &weights, batch, steps, |_| {}).unwrap();
    let mut cache = SequenceCache::default();
    let what = format!("{} {half:?} batch {batch}", config.model_type());
    for (position, &token) in tokens.iter().enumerate() {
        let expected = reference.step(&mut cache, token);
        let (next, logits) = engine.step(&vec![token; batch], position, true).unwrap();
        let logits = logits.unwrap();
        for b in 0..batch {
            let row = &logits[b * config.vocab..][..config.vocab];
            let error = relative_l2(row, &expected);
            assert!(
                error < tolerance(half),
                "{what}, row {b}, position {position}: relative logit error {error:e}"
            );
            assert_eq!(next[b] as usize, argmax(row), "{what}: fused argmax");
            if top2_gap(&expected) > 0.1 {
                assert_eq!(argmax(row), argmax(&expected), "{what}: greedy token");
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tiny_llama_matches_the_reference_in_both_types_and_batches() {
    for half in HalfType::ALL {
        for batch in [1, 3, 9] {
            check_against_reference(tiny_llama(half), batch, 24);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn two_layers_of_each_preset_match_the_reference() {
    for preset in LlamaConfig::PRESETS {
        let config = layers(Config::preset(preset).unwrap(), 2);
        check_against_reference(config, 1, 12);
    }
    let config = layers(Config::preset("llama-3.2-1b").unwrap(), 2);
    check_against_reference(config, 8, 12);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn llama_graphs_replay_bit_identical_to_eager() {
    let config = layers(Config::preset("qwen2.5-0.5b").unwrap(), 3);
    let weights = LlamaWeights::random(&config, 9);
    let prompts: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![40_000, 5], vec![7]];
    let mut eager = Engine::new(gpu_for(HalfType::Bf16), &weights, 4, 128, |_| {}).unwrap();
    let expected = eager.generate(&prompts, 20, &[], |_, _| {}).unwrap();
    for steps in [1, 4] {
        let mut graphed = Engine::new(gpu_for(HalfType::Bf16), &weights, 4, 128, |_| {}).unwrap();
        let options = GraphOptions::new(BucketTable::default_for(4, 128)).with_steps(steps);
        graphed.capture_graphs(options).unwrap();
        let got = graphed.generate(&prompts, 20, &[], |_, _| {}).unwrap();
        assert_eq!(got.tokens, expected.tokens, "graphs of {steps} steps");
        assert!(!graphed.graph_reports().is_empty(), "graphs were captured");
    }
}
