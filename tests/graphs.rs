//! GPU tests of the CUDA graph path: the same tokens as eager launches, bit for bit, in
//! every batch bucket and across context buckets, with chained steps, node-API graphs,
//! lazily made graphs, graphs updated in place after the weights moved, and eager fallback.

use host::engine::{Engine, Generated};
use host::graphs::{BucketTable, Construction, GraphOptions};
use host::model::{Config, Weights};
use integration_tests::{fresh_rng, gpu};
use rand::Rng;
use rand::rngs::StdRng;

const MAX_BATCH: usize = 8;
const CAPACITY: usize = 128;
const NEW_TOKENS: usize = 64;

/// Small context buckets so that 64 tokens cross several of them.
fn table() -> BucketTable {
    BucketTable::new(&[1, 2, 4, 8], &[16, 32, 64, 128], MAX_BATCH, CAPACITY).unwrap()
}

/// Two layers of gpt2 width with random weights.
fn weights(rng: &mut StdRng) -> Weights {
    let config = Config {
        n_layer: 2,
        ..Config::preset("gpt2").unwrap()
    };
    Weights::random(&config, rng.random())
}

fn engine(weights: &Weights) -> Engine {
    Engine::new(gpu(), weights, MAX_BATCH, CAPACITY, |_| {}).unwrap()
}

fn graphed(weights: &Weights, options: GraphOptions) -> Engine {
    let mut e = engine(weights);
    e.capture_graphs(options).unwrap();
    e
}

/// `batch` prompts of different lengths (1 to 12 tokens).
fn prompts(rng: &mut StdRng, batch: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| {
            (0..1 + (5 * b) % 12)
                .map(|_| rng.random_range(0..50256))
                .collect()
        })
        .collect()
}

fn run(engine: &mut Engine, prompts: &[Vec<u32>], eos: &[u32]) -> Generated {
    engine
        .generate(prompts, NEW_TOKENS, eos, |_, _| {})
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn graph_generation_is_bit_identical_to_eager_in_every_bucket() {
    let mut rng = fresh_rng();
    let weights = weights(&mut rng);
    let mut eager = engine(&weights);
    let mut graphed = engine(&weights);
    let reports = graphed.capture_graphs(GraphOptions::new(table())).unwrap();
    assert_eq!(
        reports.len(),
        4 * 4,
        "batches 1 2 4 8 x contexts 16 32 64 128"
    );
    // Two blocks of five kernels (up to batch 8 the layernorms are folded into the
    // GEMVs), the embedding, ln_f, the LM head and the finalize, and the copies.
    for r in &reports {
        assert!(r.nodes > 2 * 5 + 4, "{} nodes: {r:?}", r.nodes);
    }

    // Batches of every bucket size and one that pads (3 -> 4); prompts of different
    // lengths; 64 new tokens reach position 75 through context buckets 16, 32, 64, 128.
    for batch in [1, 2, 3, 4, 8] {
        let prompts = prompts(&mut rng, batch);
        let expected = run(&mut eager, &prompts, &[]);
        let got = run(&mut graphed, &prompts, &[]);
        assert_eq!(got.tokens, expected.tokens, "batch {batch}");
        assert_eq!(got.launches, got.steps, "one launch per step");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn chained_steps_equal_single_steps_and_stop_at_eos() {
    let mut rng = fresh_rng();
    let weights = weights(&mut rng);
    let mut eager = engine(&weights);
    for steps in [4, 16] {
        let mut chained = graphed(&weights, GraphOptions::new(table()).with_steps(steps));
        for batch in [1, 3, 8] {
            let prompts = prompts(&mut rng, batch);
            let expected = run(&mut eager, &prompts, &[]);
            let got = run(&mut chained, &prompts, &[]);
            assert_eq!(got.tokens, expected.tokens, "{steps} steps, batch {batch}");
            assert!(
                got.launches < got.steps,
                "{steps} steps per launch: {} launches for {} steps",
                got.launches,
                got.steps
            );

            // EOS in the middle of a chain: the tokens after it are dropped.
            let eos = expected.tokens[0][NEW_TOKENS / 2 + 1];
            let expected = run(&mut eager, &prompts, &[eos]);
            let got = run(&mut chained, &prompts, &[eos]);
            assert_eq!(
                got.tokens, expected.tokens,
                "{steps} steps, batch {batch}, eos"
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn node_api_and_lazy_graphs_equal_eager() {
    let mut rng = fresh_rng();
    let weights = weights(&mut rng);
    let mut eager = engine(&weights);
    let nodes = GraphOptions {
        construction: Construction::Nodes,
        ..GraphOptions::new(table()).with_steps(4)
    };
    let lazy = GraphOptions {
        lazy: true,
        ..GraphOptions::new(table())
    };
    for options in [nodes, lazy] {
        let mut graphs = graphed(&weights, options.clone());
        for batch in [1, 5] {
            let prompts = prompts(&mut rng, batch);
            let expected = run(&mut eager, &prompts, &[]);
            assert_eq!(
                run(&mut graphs, &prompts, &[]).tokens,
                expected.tokens,
                "{options:?}, batch {batch}"
            );
        }
        if options.lazy {
            let made = graphs.graph_reports().len();
            assert!(made > 0 && made < 16, "{made} graphs made on first use");
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn graphs_updated_for_new_weights_equal_a_fresh_capture() {
    let mut rng = fresh_rng();
    let (first, second) = (weights(&mut rng), weights(&mut rng));
    let mut updated = graphed(&first, GraphOptions::new(table()).with_steps(4));
    let mut fresh = graphed(&second, GraphOptions::new(table()).with_steps(4));
    let prompts = prompts(&mut rng, 3);
    let before = run(&mut updated, &prompts, &[]);
    assert_eq!(updated.replace_weights(&second, |_| {}).unwrap(), 2 * 16);
    let after = run(&mut updated, &prompts, &[]);
    let expected = run(&mut fresh, &prompts, &[]);
    assert_eq!(after.tokens, expected.tokens);
    assert_ne!(after.tokens, before.tokens, "the new weights were used");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_step_past_the_largest_bucket_is_refused_or_runs_eagerly() {
    let mut rng = fresh_rng();
    let weights = weights(&mut rng);
    let small = BucketTable::new(&[1, 2], &[16, 32], MAX_BATCH, CAPACITY).unwrap();
    let prompts = prompts(&mut rng, 2);
    let mut strict = graphed(&weights, GraphOptions::new(small.clone()));
    let e = strict
        .generate(&prompts, 40, &[], |_, _| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "45 positions are more than the largest context bucket, 32 (--allow-eager-fallback runs such steps without graphs)"
    );
    let e = strict.step(&[1, 2, 3], 0, false).unwrap_err().to_string();
    assert_eq!(
        e,
        "batch 3 is larger than the largest bucket, 2 (--allow-eager-fallback runs such steps without graphs)"
    );

    let mut fallback = graphed(&weights, GraphOptions::new(small).with_steps(4));
    fallback.set_allow_eager_fallback(true);
    let expected = engine(&weights).generate(&prompts, 40, &[], |_, _| {});
    let got = fallback.generate(&prompts, 40, &[], |_, _| {});
    assert_eq!(got.unwrap().tokens, expected.unwrap().tokens);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_request_past_the_context_names_the_limit() {
    let mut rng = fresh_rng();
    let mut engine = graphed(&weights(&mut rng), GraphOptions::new(table()));
    let too_long = vec![vec![1u32; 120]];
    let e = engine
        .generate(&too_long, 10, &[], |_, _| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "a prompt of 120 tokens plus 10 new tokens needs 129 positions; the context is 128"
    );
    let e = engine.step(&[1; 9], 0, false).unwrap_err().to_string();
    assert_eq!(e, "batch 9 is outside 1..=8");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_graph_is_written_as_dot() {
    let mut rng = fresh_rng();
    let mut engine = graphed(&weights(&mut rng), GraphOptions::new(table()));
    let path = std::env::temp_dir().join(format!("graph-{}.dot", std::process::id()));
    let key = host::graphs::GraphKey {
        bucket: host::graphs::Bucket {
            batch: 1,
            context: 16,
        },
        steps: 1,
    };
    engine.write_graph_dot(key, &path).unwrap();
    let dot = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(dot.starts_with("digraph"), "{}", &dot[..dot.len().min(200)]);
    for kernel in ["embedding", "decode_attention", "argmax_finalize"] {
        assert!(dot.contains(kernel), "{kernel} not in the dot dump");
    }
}
