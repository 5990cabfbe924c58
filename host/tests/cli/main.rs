//! The `host` binary on bad input: one line on stderr, a non-zero exit, no panic, and no
//! GPU needed to say so.

mod common;
mod hostile_input;
mod llama_dirs;

use common::assert_one_line_error;

/// `host generate` on random gpt2 weights with `prompt`, then `extra`: as
/// [`assert_one_line_error`].
fn assert_generate_error(prompt: &str, extra: &[&str], expected: &str) {
    let generate = [
        "generate", "--random", "1", "--preset", "gpt2", "--prompt", prompt,
    ];
    assert_one_line_error(&[&generate[..], extra].concat(), expected);
}

#[test]
fn generate_with_a_missing_model_directory_fails_cleanly() {
    assert_one_line_error(
        &["generate", "--model", "/nonexistent", "--prompt", "Hello"],
        "error: model directory /nonexistent does not exist",
    );
}

#[test]
fn an_unknown_preset_is_named() {
    assert_one_line_error(
        &["check", "--random", "1", "--preset", "gpt5"],
        "no preset \"gpt5\"; choose one of gpt2, gpt2-medium, gpt2-large, gpt2-xl",
    );
}

#[test]
fn a_batch_over_the_largest_is_refused() {
    assert_generate_error("Hi", &["--batch", "33"], "--batch 33 is outside 1..=32");
}

#[test]
fn a_request_longer_than_the_context_is_refused() {
    assert_generate_error(
        "Hello there",
        &["--max-new-tokens", "1100"],
        "more than the model's context of 1024",
    );
}

#[test]
fn weights_must_be_chosen() {
    assert_one_line_error(
        &["generate", "--prompt", "Hi"],
        "choose the weights: --model DIR, or --random SEED --preset NAME",
    );
}

#[test]
fn graph_buckets_past_the_engine_are_refused() {
    assert_generate_error(
        "Hi",
        &["--batch", "4", "--batch-buckets", "1,8"],
        "batch bucket 8 is outside 1..=4 (the engine's batch)",
    );
    assert_generate_error(
        "Hi",
        &["--context-buckets", "128,2048"],
        "context bucket 2048 is outside 1..=1024 (the engine's context)",
    );
    assert_generate_error(
        "Hi",
        &["--steps-per-graph", "17"],
        "17 steps per graph is outside 1..=16",
    );
}

#[test]
fn a_request_past_the_largest_context_bucket_names_the_limit() {
    assert_generate_error(
        "Hi",
        &["--max-new-tokens", "300", "--context-buckets", "128,256"],
        "300 positions are more than the largest context bucket, 256 (--allow-eager-fallback runs such steps without graphs)",
    );
}

#[test]
fn benchmark_and_graph_options_are_checked_before_the_gpu() {
    assert_one_line_error(
        &["bench", "decode", "--presets", "gpt2", "--contexts", "5"],
        "context 5 is outside 40..=1000",
    );
    assert_one_line_error(
        &[
            "bench",
            "compare",
            "--presets",
            "gpt2",
            "--peers-dir",
            "/nonexistent",
        ],
        "/nonexistent/torch_decode.py does not exist (see --peers-dir)",
    );
    assert_one_line_error(
        &[
            "graphs", "--random", "1", "--preset", "gpt2", "--layers", "13",
        ],
        "--layers 13 is outside 1..=12",
    );
    assert_one_line_error(
        &["graphs", "--random", "1", "--preset", "gpt2", "--eager"],
        "--eager makes no graphs to show",
    );
}
