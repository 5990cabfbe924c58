//! The `host` binary against hostile input: oversized flags, paths that are not what
//! they should be, and outputs that cannot be written. Each is refused with one line and
//! exit code 1 before the GPU (on a machine without one the refusal, not "no CUDA
//! driver", is what prints), within seconds, and a refused output leaves nothing behind.
//! `HOST_BIN` overrides the binary (the GPU bundle sets it).

use crate::common::assert_one_line_error as assert_refused;
use host::model::{Config, Weights, export_hf_dir};
use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

/// A fresh directory, removed when dropped.
fn scratch_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hostile-{tag}-"))
        .tempdir()
        .unwrap()
}

/// `dir/name` as a string for the command line.
fn inside(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

/// The names in `dir`, sorted.
fn entries(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A one-layer model of width 64 with `vocab` tokens and GPT-2's context, exported
/// into `scratch/name`.
fn model(scratch: &TempDir, name: &str, vocab: usize) -> String {
    let config = Config {
        n_layer: 1,
        n_head: 1,
        d_model: 64,
        vocab,
        n_positions: 1024,
        layer_norm_eps: 1e-5,
        eos_token_ids: vec![],
        llama: None,
    };
    let dir = scratch.path().join(name);
    export_hf_dir(&Weights::random(&config, 1), &dir).unwrap();
    dir.display().to_string()
}

/// `args` then `--random 1 --preset gpt2`.
fn on_random_gpt2(args: &[&str]) -> Vec<String> {
    let random = ["--random", "1", "--preset", "gpt2"];
    args.iter().chain(&random).map(|s| s.to_string()).collect()
}

fn refused(args: Vec<String>, expected: &str) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_refused(&args, expected);
}

#[test]
fn lengths_that_would_wrap_or_overrun_the_context_are_refused() {
    refused(
        on_random_gpt2(&[
            "generate",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "18446744073709551615",
        ]),
        "with --max-new-tokens 18446744073709551615 it needs 18446744073709551615 positions, more than the model's context of 1024",
    );
    refused(
        on_random_gpt2(&["generate", "--prompt", "Hi", "--max-new-tokens", "0"]),
        "--max-new-tokens 0 generates nothing; give 1 or more",
    );
    // 1025 tokens: one more than the context even with a single new token.
    let long = " a".repeat(1025);
    refused(
        on_random_gpt2(&["generate", "--prompt", &long, "--max-new-tokens", "1"]),
        "the prompt has 1025 tokens; with --max-new-tokens 1 it needs 1025 positions",
    );
    refused(
        on_random_gpt2(&["generate", "--prompt", "Hi", "--max-new-tokens", "1e3"]),
        "invalid value '1e3' for '--max-new-tokens",
    );
}

#[test]
fn flags_outside_their_range_are_refused() {
    for batch in ["0", "33", "18446744073709551615"] {
        refused(
            on_random_gpt2(&["graphs", "--batch", batch]),
            &format!("--batch {batch} is outside 1..=32"),
        );
    }
    refused(
        on_random_gpt2(&["check", "--threshold", "nan"]),
        "--threshold NaN is not a positive number",
    );
    refused(
        on_random_gpt2(&["check", "--prompt", ""]),
        "the prompt is empty",
    );
    assert_refused(
        &["bench", "decode", "--batches", "0"],
        "batch 0 is outside 1..=32",
    );
    assert_refused(
        &["bench", "compare", "--peers", "vllm"],
        "--peers vllm: choose from hf, graph, compile or none",
    );
    assert_refused(
        &["bench", "compare", "--python", "/nonexistent/python"],
        "--python /nonexistent/python does not run",
    );
}

#[test]
fn chat_needs_a_model_with_a_chat_template() {
    refused(
        on_random_gpt2(&["generate", "--prompt", "Hi", "--chat"]),
        "--chat needs --model DIR, whose tokenizer_config.json has the template",
    );
    let scratch = scratch_dir("chat");
    let dir = model(&scratch, "m", 50257);
    assert_refused(
        &["generate", "--model", &dir, "--prompt", "Hi", "--chat"],
        "tokenizer_config.json not found",
    );
}

#[test]
fn a_prompt_token_outside_the_vocabulary_is_refused() {
    let scratch = scratch_dir("vocab");
    let dir = model(&scratch, "small-vocab", 100);
    assert_refused(
        &["generate", "--model", &dir, "--prompt", "Hello"],
        "token 0 of the prompt (id 15496) is outside the model's vocabulary of 100",
    );
}

#[test]
fn a_model_path_that_is_not_a_directory_or_holds_a_fifo_is_named() {
    let scratch = scratch_dir("paths");
    let dir = model(&scratch, "m", 50257);
    let config = format!("{dir}/config.json");
    assert_refused(
        &["generate", "--model", &config, "--prompt", "Hi"],
        &format!("model path {config} is a regular file; give the directory"),
    );
    let (a, b) = (inside(&scratch, "loop-a"), inside(&scratch, "loop-b"));
    std::os::unix::fs::symlink(&a, &b).unwrap();
    std::os::unix::fs::symlink(&b, &a).unwrap();
    assert_refused(
        &["export", "--model", &a, "--out", &inside(&scratch, "out")],
        &format!("cannot read {a}: Too many levels of symbolic links"),
    );
    std::fs::remove_file(&config).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&config)
            .status()
            .unwrap()
            .success()
    );
    assert_refused(
        &["check", "--model", &dir],
        &format!("{config} is a FIFO, not a regular file"),
    );
}

#[test]
fn outputs_are_checked_before_the_work() {
    let scratch = scratch_dir("outputs");
    let missing = inside(&scratch, "no-such-dir/out");
    let cannot = format!("cannot write {missing}:");
    refused(
        on_random_gpt2(&["generate", "--prompt", "Hi", "--dump-logits", &missing]),
        &cannot,
    );
    assert_refused(&["bench", "kernels", "--json", &missing], &cannot);
    let graphs: Vec<String> = on_random_gpt2(&["graphs", "--dot", &missing]);
    refused(graphs, &cannot);
    let export: Vec<String> = on_random_gpt2(&["export", "--out", &missing]);
    refused(export, &cannot);
    assert_refused(
        &["bench", "kernels", "--json", &inside(&scratch, "")],
        "it is a directory, not a regular file",
    );
    assert_refused(
        &["bench", "kernels", "--json", "/dev/null"],
        "cannot write /dev/null: it is a character device, not a regular file",
    );
}

#[test]
fn an_output_may_not_overwrite_the_model_it_reads() {
    let scratch = scratch_dir("own");
    let dir = model(&scratch, "m", 50257);
    let weights = format!("{dir}/model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    assert_refused(
        &[
            "generate",
            "--model",
            &dir,
            "--prompt",
            "Hi",
            "--dump-logits",
            &weights,
        ],
        &format!("cannot write {weights}: it is {weights}, which this command reads"),
    );
    // Through another name for the same file.
    let alias = inside(&scratch, "alias.safetensors");
    std::os::unix::fs::symlink(&weights, &alias).unwrap();
    assert_refused(
        &["graphs", "--model", &dir, "--dot", &alias],
        "which this command reads",
    );
    assert_eq!(std::fs::read(&weights).unwrap(), before);
}

#[test]
fn a_failed_export_leaves_nothing_behind() {
    let scratch = scratch_dir("export");
    let dir = model(&scratch, "m", 50257);
    // A model whose weights fail to load after the output was prepared.
    let weights = Path::new(&dir).join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 1]).unwrap();
    let before = entries(&scratch);
    assert_refused(
        &["export", "--model", &dir, "--out", &inside(&scratch, "out")],
        "truncated or corrupt safetensors file",
    );
    assert_eq!(entries(&scratch), before, "a failed export left files");
    // A directory that holds something is not overwritten.
    assert_refused(
        &["export", "--model", &dir, "--out", &dir],
        &format!("cannot write {dir}: the directory exists and is not empty"),
    );
}

#[test]
fn a_config_with_absurd_sizes_is_refused_at_once() {
    let scratch = scratch_dir("sizes");
    let dir = model(&scratch, "m", 50257);
    let config = Path::new(&dir).join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let huge = text.replace("\"n_layer\": 1", "\"n_layer\": 100000000");
    assert_ne!(huge, text);
    std::fs::write(&config, huge).unwrap();
    assert_refused(
        &["generate", "--model", &dir, "--prompt", "Hi"],
        "missing tensor h.1.ln_1.weight",
    );
}
