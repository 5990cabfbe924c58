//! CPU tests of loading Hugging Face GPT-2 directories: a round trip through `export`,
//! one test per kind of bad input, each checking its one-line message, and (in the
//! modules) every config.json field that changes the math and files that are not what
//! they claim.

mod config_fields;
mod hostile_files;
mod llama_files;

use half::f16;
use host::model::{Config, Weights, export_hf_dir, load_hf_dir};
use integration_tests::model_dir::{exported_then, temp_dir, tiny};
use safetensors::Dtype;
use std::path::Path;

fn load_error(dir: &Path) -> String {
    let message = load_hf_dir(dir).unwrap_err().to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[test]
fn export_then_load_gives_the_same_weights() {
    let weights = Weights::random(&tiny(), 11);
    let dir = temp_dir("roundtrip");
    export_hf_dir(&weights, dir.path()).unwrap();
    let loaded = load_hf_dir(dir.path()).unwrap();
    assert_eq!(loaded.config, weights.config);
    assert_eq!(loaded.wte, weights.wte);
    for (a, b) in loaded.layers.iter().zip(&weights.layers) {
        assert_eq!(a.qkv_w, b.qkv_w, "Conv1D weights are transposed both ways");
        assert_eq!(a.mlp_proj_w, b.mlp_proj_w);
        assert_eq!(a.fc_b, b.fc_b);
    }
    assert_eq!(loaded.ln_f_gamma, weights.ln_f_gamma);
}

#[test]
fn names_without_prefix_and_f32_or_bf16_tensors_load() {
    let reference = load_hf_dir(exported_then("ref", |_| {}).path()).unwrap();
    // wte in F32 (exact), every other tensor in BF16 (rounded), no `transformer.` prefix.
    let dir = exported_then("dtypes", |tensors| {
        for (name, dtype, _, bytes) in tensors.iter_mut() {
            *name = name.trim_start_matches("transformer.").to_owned();
            let values: Vec<f32> = bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            if name == "wte.weight" {
                *dtype = Dtype::F32;
                *bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            } else {
                *dtype = Dtype::BF16;
                *bytes = values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect();
            }
        }
    });
    let loaded = load_hf_dir(dir.path()).unwrap();
    assert!(loaded.wte == reference.wte, "F32 wte differs");
    let bf16_rounded: Vec<f16> = reference
        .wpe
        .iter()
        .map(|v| f16::from_f32(half::bf16::from_f32(v.to_f32()).to_f32()))
        .collect();
    assert!(loaded.wpe == bf16_rounded, "BF16 wpe differs");
}

#[test]
fn a_missing_directory_is_named() {
    let message = load_error(Path::new("/nonexistent/model"));
    assert_eq!(message, "model directory /nonexistent/model does not exist");
}

#[test]
fn missing_files_are_named() {
    let dir = exported_then("files", |_| {});
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(load_error(dir.path()).ends_with("model.safetensors not found"));
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(load_error(dir.path()).ends_with("config.json not found"));
}

#[test]
fn a_truncated_file_is_reported_as_corrupt() {
    let dir = exported_then("truncated", |_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("truncated or corrupt safetensors file"),
        "{message}"
    );
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert!(load_error(dir.path()).contains("truncated or corrupt"));
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = exported_then("missing", |t| {
        t.retain(|(n, ..)| n != "transformer.h.1.mlp.c_fc.bias")
    });
    assert!(load_error(dir.path()).ends_with("missing tensor h.1.mlp.c_fc.bias"));
}

#[test]
fn a_wrong_shape_gives_expected_and_found() {
    let dir = exported_then("shape", |tensors| {
        let t = tensors
            .iter_mut()
            .find(|(n, ..)| n == "transformer.h.0.attn.c_proj.weight")
            .unwrap();
        // Same bytes, other shape: (d, d) read as (d / 2, 2 d).
        t.2 = vec![64, 256];
    });
    assert!(load_error(dir.path()).ends_with(
        "tensor h.0.attn.c_proj.weight has shape [64, 256], but config.json implies [128, 128]"
    ));
}

#[test]
fn an_unsupported_dtype_is_named() {
    let dir = exported_then("dtype", |tensors| {
        let t = tensors
            .iter_mut()
            .find(|(n, ..)| n == "transformer.ln_f.bias")
            .unwrap();
        t.1 = Dtype::I16;
    });
    assert!(
        load_error(dir.path())
            .ends_with("tensor ln_f.bias has dtype I16; supported: F32, F16, BF16")
    );
}

#[test]
fn a_config_that_disagrees_with_the_tensors_is_reported() {
    let dir = exported_then("config", |_| {});
    let wider = Config {
        n_head: 4,
        d_model: 256,
        ..tiny()
    };
    std::fs::write(
        dir.path().join("config.json"),
        wider.to_hf_json().to_string(),
    )
    .unwrap();
    let message = load_error(dir.path());
    assert!(
        message.ends_with(
            "tensor wte.weight has shape [100, 128], but config.json implies [100, 256]"
        ),
        "{message}"
    );
    let fewer_layers = Config {
        n_layer: 1,
        ..tiny()
    };
    std::fs::write(
        dir.path().join("config.json"),
        fewer_layers.to_hf_json().to_string(),
    )
    .unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("but config.json says n_layer = 1"),
        "{message}"
    );
}

#[test]
fn a_value_fp16_cannot_hold_is_refused() {
    let dir = exported_then("overflow", |tensors| {
        let t = tensors
            .iter_mut()
            .find(|(n, ..)| n == "transformer.h.0.ln_1.weight")
            .unwrap();
        let mut values = vec![1.0f32; 128];
        values[5] = 1e6;
        t.1 = Dtype::F32;
        t.3 = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    });
    assert!(
        load_error(dir.path())
            .ends_with("tensor h.0.ln_1.weight holds 1000000, which fp16 cannot represent")
    );
}
