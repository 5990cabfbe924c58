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
    let batched = engine.generate(&prompts, 20, &[], |_, _| {}).unwrap();
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
    let alone = engine.generate(&prompts[..1], 20, &[], |_, _| {}).unwrap();
    let eos = alone.tokens[0][2];
    let stopped = engine
        .generate(&prompts[..1], 20, &[eos], |_, _| {})
        .unwrap();
    let first = alone.tokens[0].iter().position(|&t| t == eos).unwrap();
    assert_eq!(stopped.tokens[0], alone.tokens[0][..=first]);
}

mod llama;
