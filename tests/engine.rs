//! GPU tests of the whole engine: logits against the CPU reference model, teacher-forced,
//! and batched generation against each sequence alone (greedy choices, up to near ties).

use host::engine::Engine;
use host::model::{Config, Weights};
use host::reference::model::{ReferenceModel, SequenceCache};
use host::reference::{argmax, top2_gap};
use integration_tests::{fresh_rng, gpu, random_f16, relative_l2};
use rand::Rng;
use rand::rngs::StdRng;

/// Two logits closer than this are a tie that rounding may break either way (fp16
/// activations; logits of these models are O(1) to O(10)).
const NEAR_TIE: f32 = 2e-2;

/// GPT-2's random initialization, then every bias and layernorm parameter made non-zero
/// (the initialization leaves them 0 and 1, which would hide a bias that is not added).
fn weights_with_biases(config: &Config, rng: &mut StdRng) -> Weights {
    let mut w = Weights::random(config, rng.random());
    for l in &mut w.layers {
        for v in [
            &mut l.qkv_b,
            &mut l.attn_proj_b,
            &mut l.fc_b,
            &mut l.mlp_proj_b,
            &mut l.ln_1_beta,
            &mut l.ln_2_beta,
        ] {
            *v = random_f16(rng, v.len(), 0.1);
        }
        for v in [&mut l.ln_1_gamma, &mut l.ln_2_gamma] {
            *v = random_f16(rng, v.len(), 0.5)
                .iter()
                .map(|x| half::f16::from_f32(1.0 + x.to_f32()))
                .collect();
        }
    }
    w.ln_f_beta = random_f16(rng, w.ln_f_beta.len(), 0.1);
    w
}

/// Feeds the same random tokens to the engine and the reference for `steps` positions.
fn check_against_reference(config: Config, steps: usize) {
    let mut rng = fresh_rng();
    let weights = weights_with_biases(&config, &mut rng);
    let tokens: Vec<u32> = (0..steps)
        .map(|_| rng.random_range(0..config.vocab as u32))
        .collect();
    let reference = ReferenceModel::new(&weights);
    let mut engine = Engine::new(gpu(), &weights, 1, steps, |_| {}).unwrap();
    let mut cache = SequenceCache::default();
    for (position, &token) in tokens.iter().enumerate() {
        let expected = reference.step(&mut cache, token);
        let (next, logits) = engine.step(&[token], position, true).unwrap();
        let logits = logits.unwrap();
        let error = relative_l2(&logits, &expected);
        assert!(
            error < 1e-2,
            "position {position}: relative logit error {error:e}"
        );
        assert_eq!(
            next[0] as usize,
            argmax(&logits),
            "position {position}: fused argmax"
        );
        if top2_gap(&expected) > 1e-2 {
            assert_eq!(
                argmax(&logits),
                argmax(&expected),
                "position {position}: greedy token"
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gpt2_logits_match_the_reference_for_32_steps() {
    check_against_reference(Config::preset("gpt2").unwrap(), 32);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn two_layers_of_gpt2_xl_width_match_the_reference_for_32_steps() {
    let config = Config {
        n_layer: 2,
        ..Config::preset("gpt2-xl").unwrap()
    };
    check_against_reference(config, 32);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn batched_generation_equals_each_sequence_alone() {
    let mut rng = fresh_rng();
    let config = Config {
        n_layer: 2,
        ..Config::preset("gpt2").unwrap()
    };
    let weights = weights_with_biases(&config, &mut rng);
    let prompts: Vec<Vec<u32>> = [3, 7, 1, 12, 5]
        .iter()
        .map(|&n| (0..n).map(|_| rng.random_range(0..50256)).collect())
        .collect();
    let mut engine = Engine::new(gpu(), &weights, prompts.len(), 64, |_| {}).unwrap();
    let batched = engine.generate(&prompts, 20, None, |_, _| {}).unwrap();
    assert_eq!(batched.steps, 12 + 20 - 1);
    // Batch 5 runs the tensor-core GEMVs, batch 1 the CUDA-core ones: the same sums in
    // another order, so equal up to rounding, not bit for bit. Each sequence alone,
    // teacher-forced along its batched tokens, must pick every one of them greedily,
    // except where its two best logits are within rounding of each other.
    let mut decisive = 0;
    for (b, prompt) in prompts.iter().enumerate() {
        assert_eq!(batched.tokens[b].len(), 20, "sequence {b}");
        let sequence: Vec<u32> = prompt.iter().chain(&batched.tokens[b]).copied().collect();
        for position in 0..sequence.len() - 1 {
            let (_, logits) = engine.step(&[sequence[position]], position, true).unwrap();
            if position + 1 < prompt.len() {
                continue; // still reading the prompt
            }
            let logits = logits.unwrap();
            let chosen = sequence[position + 1] as usize;
            let what = format!("sequence {b}, position {position}");
            if top2_gap(&logits) > NEAR_TIE {
                decisive += 1;
                assert_eq!(argmax(&logits), chosen, "{what}");
            } else {
                let best = logits[argmax(&logits)];
                assert!(best - logits[chosen] <= NEAR_TIE, "{what}: not a near tie");
            }
        }
    }
    // Most choices are decisive, so the check above is not vacuous.
    println!("{decisive} of 100 greedy choices decisive");
    assert!(decisive >= 50, "only {decisive} of 100 choices decisive");
    // EOS stops a sequence: make its third token the end of text (both runs batch 1).
    let alone = engine.generate(&prompts[..1], 20, None, |_, _| {}).unwrap();
    let eos = alone.tokens[0][2];
    let stopped = engine
        .generate(&prompts[..1], 20, Some(eos), |_, _| {})
        .unwrap();
    let first = alone.tokens[0].iter().position(|&t| t == eos).unwrap();
    assert_eq!(stopped.tokens[0], alone.tokens[0][..=first]);
}

/// Steps `tokens` (one per sequence) at `position` with fused blocks, then again with
/// separate kernels per block (which rewrites the same cache rows). At batch 1 the
/// separate path normalizes inside the QKV and fc GEMVs (one-pass moments, no fp16 copy
/// of the normalized row) where the fused kernel runs a layernorm: close, not equal.
/// From batch 2 on both run the separate kernels (the fused kernel takes batch 1): equal.
fn assert_fused_equals_separate(engine: &mut Engine, tokens: &[u32], position: usize) {
    engine.set_fuse_layers(true);
    let (fused_next, fused) = engine.step(tokens, position, true).unwrap();
    engine.set_fuse_layers(false);
    let (separate_next, separate) = engine.step(tokens, position, true).unwrap();
    let (fused, separate) = (fused.unwrap(), separate.unwrap());
    assert!(
        fused.iter().all(|l| l.is_finite()),
        "position {position}: fused logits not finite"
    );
    let batch = tokens.len();
    if batch == 1 {
        let error = relative_l2(&fused, &separate);
        assert!(
            error < 5e-3,
            "position {position}: fused and folded logits differ by {error:e}"
        );
        if top2_gap(&separate) > NEAR_TIE {
            assert_eq!(fused_next, separate_next, "position {position}");
        }
        return;
    }
    let first_difference = fused
        .iter()
        .zip(&separate)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "batch {batch}, position {position}: fused and separate logits differ"
    );
    assert_eq!(fused_next, separate_next, "position {position}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn fused_blocks_equal_separate_kernels() {
    let mut rng = fresh_rng();
    // Both ends of the family's widths: 768 (12 heads) and 1600 (25 heads).
    for preset in ["gpt2", "gpt2-xl"] {
        let config = Config {
            n_layer: 2,
            ..Config::preset(preset).unwrap()
        };
        let weights = weights_with_biases(&config, &mut rng);
        // Batch 1, the fused kernel's; 2 runs separate kernels either way (on the tensor
        // cores), so there the two agree to the bit.
        for batch in 1..=2 {
            let mut engine = Engine::new(gpu(), &weights, batch, 1024, |_| {}).unwrap();
            let tokens = |rng: &mut StdRng| -> Vec<u32> {
                (0..batch).map(|_| rng.random_range(0..50257)).collect()
            };
            // Short contexts: 1 to 40 positions (one and two attention splits).
            for position in 0..40 {
                assert_fused_equals_separate(&mut engine, &tokens(&mut rng), position);
            }
            // Long ones, up to the whole context: random cache rows below.
            engine.randomize_kv_cache(rng.random()).unwrap();
            for position in [127, 999, 1000, 1022, 1023] {
                assert_fused_equals_separate(&mut engine, &tokens(&mut rng), position);
            }
        }
    }
}
