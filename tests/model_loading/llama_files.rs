//! CPU tests of loading Llama-family directories: one file or shards through
//! model.safetensors.index.json (the round trip, and every way an index can lie), f32
//! checkpoints converted to bf16, a stored tied head accepted as transformers accepts it,
//! and tensors the model does not have refused by name.

use host::halves::HalfType;
use host::model::{LlamaWeights, load_llama_dir, tiny_llama, write_llama_files};
use integration_tests::model_dir::{Tensor, read_tensors, temp_dir, write_tensors};
use safetensors::Dtype;
use serde_json::json;
use std::path::Path;
use tempfile::TempDir;

/// A tiny Qwen-shaped model exported, its tensors edited by `edit`.
fn exported(tag: &str, edit: impl FnOnce(&mut Vec<Tensor>)) -> (LlamaWeights, TempDir) {
    let weights = LlamaWeights::random(&tiny_llama(HalfType::Bf16), 8);
    let dir = temp_dir(tag);
    write_llama_files(&weights, dir.path()).unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = read_tensors(&path);
    edit(&mut tensors);
    write_tensors(&path, &tensors);
    (weights, dir)
}

/// Splits `dir`'s model.safetensors into two shards and an index naming them.
fn shard(dir: &Path) {
    let path = dir.join("model.safetensors");
    let mut tensors = read_tensors(&path);
    tensors.sort();
    let second = tensors.split_off(tensors.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut map = serde_json::Map::new();
    for (file, part) in names.iter().zip([&tensors, &second]) {
        write_tensors(&dir.join(file), part);
        for t in part {
            map.insert(t.0.clone(), json!(file));
        }
    }
    std::fs::remove_file(&path).unwrap();
    write_index(dir, map);
}

fn write_index(dir: &Path, map: serde_json::Map<String, serde_json::Value>) {
    let index = json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

fn edit_index(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("model.safetensors.index.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(json["weight_map"].as_object_mut().unwrap());
    std::fs::write(&path, json.to_string()).unwrap();
}

fn load_error(dir: &Path) -> String {
    let message = match load_llama_dir(dir, |_| {}) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    };
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[test]
fn sharded_checkpoints_load_as_one_file_does() {
    let (weights, dir) = exported("shards", |_| {});
    shard(dir.path());
    let loaded = load_llama_dir(dir.path(), |_| {}).unwrap();
    assert_eq!(loaded.embed, weights.embed);
    assert_eq!(loaded.layers[1].qkv, weights.layers[1].qkv);
    assert_eq!(loaded.layers[0].gate_up, weights.layers[0].gate_up);
}

/// A way to make an index lie: its name, the edit of the sharded directory, and what the
/// refusal says.
type IndexLie = (&'static str, fn(&Path), &'static str);

#[test]
fn an_index_that_lies_is_refused_in_one_line() {
    let cases: [IndexLie; 4] = [
        (
            "absent shard",
            |dir| std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap(),
            "model-00002-of-00002.safetensors not found",
        ),
        (
            "outside",
            |dir| {
                edit_index(dir, |map| {
                    map.insert("model.norm.weight".into(), json!("../model.safetensors"));
                })
            },
            "shard \"../model.safetensors\" is not a file name inside the model directory",
        ),
        (
            "wrong shard",
            |dir| {
                edit_index(dir, |map| {
                    let first = map["model.embed_tokens.weight"].clone();
                    let other = if first == "model-00001-of-00002.safetensors" {
                        "model-00002-of-00002.safetensors"
                    } else {
                        "model-00001-of-00002.safetensors"
                    };
                    map.insert("model.embed_tokens.weight".into(), json!(other));
                })
            },
            "lists model.embed_tokens.weight in",
        ),
        (
            "unlisted",
            |dir| {
                edit_index(dir, |map| {
                    map.remove("model.norm.weight");
                })
            },
            "holds model.norm.weight, which the index does not list there",
        ),
    ];
    for (tag, edit, expected) in cases {
        let (_, dir) = exported(tag, |_| {});
        shard(dir.path());
        edit(dir.path());
        let message = load_error(dir.path());
        assert!(message.contains(expected), "{tag}: {message}");
    }
}

#[test]
fn f32_tensors_and_a_stored_tied_head_load() {
    let (weights, dir) = exported("f32", |tensors| {
        let embed = tensors
            .iter()
            .find(|t| t.0 == "model.embed_tokens.weight")
            .unwrap()
            .clone();
        tensors.push((
            "lm_head.weight".into(),
            embed.1,
            embed.2.clone(),
            embed.3.clone(),
        ));
        for t in tensors.iter_mut().filter(|t| t.0 == "model.norm.weight") {
            // bf16 widened to f32 exactly: it must load back to the same bits.
            t.3 =
                t.3.chunks_exact(2)
                    .flat_map(|b| {
                        (f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                            .to_le_bytes()
                    })
                    .collect();
            t.1 = Dtype::F32;
        }
    });
    let loaded = load_llama_dir(dir.path(), |_| {}).unwrap();
    assert_eq!(loaded.final_norm, weights.final_norm);
    assert!(loaded.lm_head.is_none());
}

#[test]
fn tensors_a_qwen2_model_does_not_have_are_refused() {
    let (_, dir) = exported("extra", |tensors| {
        tensors.push(("score.weight".into(), Dtype::BF16, vec![2], vec![0; 4]));
    });
    assert!(
        load_error(dir.path())
            .ends_with("holds tensor score.weight, which a Qwen2ForCausalLM model does not have"),
    );
    let (_, dir) = exported("bias", |tensors| {
        tensors.retain(|t| t.0 != "model.layers.1.self_attn.k_proj.bias");
    });
    assert!(
        load_error(dir.path()).ends_with("missing tensor model.layers.1.self_attn.k_proj.bias")
    );
}
