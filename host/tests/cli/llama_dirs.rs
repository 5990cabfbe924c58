//! The `host` binary on Llama-family directories that must be refused before the GPU: a
//! config field that changes the math, a shard the index names that is absent.

use crate::common::assert_one_line_error;
use host::halves::HalfType;
use host::model::{LlamaWeights, tiny_llama, write_llama_files};
use tempfile::TempDir;

/// A tiny Qwen-shaped model written as a Hugging Face directory.
fn tiny_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("llama-cli-")
        .tempdir()
        .unwrap();
    write_llama_files(
        &LlamaWeights::random(&tiny_llama(HalfType::Bf16), 2),
        dir.path(),
    )
    .unwrap();
    dir
}

fn generate_refused(dir: &TempDir, expected: &str) {
    let model = dir.path().display().to_string();
    // "a" is GPT-2 token 64, inside the tiny vocabulary: only the directory is wrong.
    assert_one_line_error(&["generate", "--model", &model, "--prompt", "a"], expected);
}

#[test]
fn a_rope_type_the_kernels_do_not_compute_is_named() {
    let dir = tiny_dir();
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
    std::fs::write(&path, config.to_string()).unwrap();
    generate_refused(
        &dir,
        "rope type \"yarn\" (default and llama3 are supported)",
    );
}

#[test]
fn an_index_naming_an_absent_shard_is_refused() {
    let dir = tiny_dir();
    let weights = dir.path().join("model.safetensors");
    std::fs::rename(
        &weights,
        dir.path().join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    let bytes = std::fs::read(dir.path().join("model-00001-of-00002.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let mut map = serde_json::Map::new();
    for name in header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
    {
        map.insert(name.clone(), "model-00001-of-00002.safetensors".into());
    }
    map.insert(
        "model.norm.weight".into(),
        "model-00002-of-00002.safetensors".into(),
    );
    let index = serde_json::json!({ "weight_map": map });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    generate_refused(&dir, "model-00002-of-00002.safetensors not found");
}
