//! CPU tests of config.json: every GPT-2 field that changes the computation is honored
//! or refused by name, malformed values are refused naming the field, and sizes that
//! would overflow or exhaust memory are refused before anything is allocated.

use host::model::load_hf_dir;
use integration_tests::model_dir::{TempDir, edit_config, exported_then};
use serde_json::{Map, Value, json};

/// The error of loading the tiny model with config.json edited by `edit`: one line.
fn error_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let dir = edited(edit);
    let message = load_hf_dir(dir.path()).unwrap_err().to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

fn edited(edit: impl FnOnce(&mut Map<String, Value>)) -> TempDir {
    let dir = exported_then("config", |_| {});
    edit_config(dir.path(), edit);
    dir
}

fn set(field: &str, value: Value) -> impl FnOnce(&mut Map<String, Value>) {
    let field = field.to_owned();
    move |c| {
        c.insert(field, value);
    }
}

fn assert_refused(field: &str, value: Value, expected: &str) {
    let message = error_with(set(field, value.clone()));
    assert!(message.contains(expected), "{field} = {value}: {message}");
}

fn assert_loads(field: &str, value: Value) -> host::model::Config {
    let dir = edited(set(field, value.clone()));
    load_hf_dir(dir.path())
        .unwrap_or_else(|e| panic!("{field} = {value}: {e}"))
        .config
}

#[test]
fn another_architecture_is_refused_by_name() {
    assert_refused(
        "model_type",
        json!("mistral"),
        "model_type \"mistral\" is not supported; this engine runs gpt2, llama and qwen2",
    );
    assert_refused(
        "architectures",
        json!(["GPT2ForSequenceClassification"]),
        "architectures [\"GPT2ForSequenceClassification\"] has no GPT2LMHeadModel",
    );
    assert_refused(
        "architectures",
        json!("GPT2LMHeadModel"),
        "is not a list of names",
    );
    let message = error_with(|c| {
        c.remove("model_type");
    });
    assert!(message.ends_with("no field model_type"), "{message}");
}

#[test]
fn the_activation_is_the_tanh_gelu_or_refused() {
    assert_refused(
        "activation_function",
        json!("relu"),
        "activation_function \"relu\" is not supported; the kernels compute GELU's tanh approximation",
    );
    assert_refused(
        "activation_function",
        json!("gelu"),
        "\"gelu\" is not supported",
    );
    assert_refused(
        "activation_function",
        json!(3),
        "activation_function 3 is not a string",
    );
    for same_function in ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"] {
        assert_loads("activation_function", json!(same_function));
    }
}

#[test]
fn fields_that_change_the_math_are_honored_or_refused() {
    assert_refused(
        "n_inner",
        json!(100),
        "n_inner 100 is not supported; the kernels use 4 * n_embd = 512",
    );
    assert_loads("n_inner", json!(512));
    assert_loads("n_inner", Value::Null);
    assert_refused(
        "scale_attn_weights",
        json!(false),
        "scale_attn_weights false is not supported",
    );
    assert_refused(
        "scale_attn_weights",
        json!("yes"),
        "scale_attn_weights must be true or false (found \"yes\")",
    );
    assert_refused(
        "scale_attn_by_inverse_layer_idx",
        json!(true),
        "scale_attn_by_inverse_layer_idx true is not supported",
    );
    assert_refused(
        "add_cross_attention",
        json!(true),
        "add_cross_attention true is not supported",
    );
    assert_refused(
        "tie_word_embeddings",
        json!(false),
        "tie_word_embeddings false is not supported",
    );
    assert_refused(
        "quantization_config",
        json!({"quant_method": "gptq", "bits": 4}),
        "quantized checkpoints are not supported",
    );
    assert_refused(
        "pruned_heads",
        json!({"0": [1]}),
        "models with pruned attention heads are not supported",
    );
    assert_loads("reorder_and_upcast_attn", json!(true));
}

#[test]
fn layer_norm_epsilon_is_a_number_in_range() {
    for bad in [
        json!("x"),
        json!(true),
        json!(-1),
        json!(0),
        json!(1e300),
        json!(2),
    ] {
        assert_refused(
            "layer_norm_epsilon",
            bad,
            "layer_norm_epsilon must be a number in 1.1754944e-38..=1",
        );
    }
    assert_eq!(
        assert_loads("layer_norm_epsilon", json!(1e-6)).layer_norm_eps,
        1e-6
    );
}

#[test]
fn end_of_sequence_ids_are_honored_inside_the_vocabulary() {
    assert_eq!(
        assert_loads("eos_token_id", json!([7, 9])).eos_token_ids,
        [7, 9]
    );
    assert_eq!(assert_loads("eos_token_id", json!(42)).eos_token_ids, [42]);
    assert!(
        assert_loads("eos_token_id", Value::Null)
            .eos_token_ids
            .is_empty()
    );
    assert_refused(
        "eos_token_id",
        json!(100),
        "eos_token_id 100 is not a token id inside the vocabulary of 100",
    );
    assert_refused(
        "eos_token_id",
        json!("x"),
        "eos_token_id \"x\" is not a token id",
    );
    assert_refused(
        "eos_token_id",
        json!([1, -1]),
        "eos_token_id -1 is not a token id",
    );
}

#[test]
fn aliases_that_disagree_are_refused() {
    let message = error_with(|c| {
        c.insert("num_hidden_layers".into(), json!(3));
    });
    assert!(
        message.ends_with("num_hidden_layers 3 disagrees with n_layer 2"),
        "{message}"
    );
    assert_refused("n_ctx", json!(8), "n_ctx 8 disagrees with n_positions 16");
}

#[test]
fn sizes_are_integers() {
    assert_refused(
        "n_layer",
        json!(2.5),
        "n_layer must be a positive integer (found 2.5)",
    );
    assert_refused(
        "n_head",
        json!(-2),
        "n_head must be a positive integer (found -2)",
    );
    assert_refused(
        "vocab_size",
        json!(0),
        "vocab_size must be a positive integer (found 0)",
    );
    assert_refused("n_embd", json!("128"), "n_embd must be a positive integer");
}

#[test]
fn huge_sizes_are_refused_before_any_allocation() {
    // Each would need terabytes or wrap 64-bit arithmetic if used before it is checked;
    // the tiny file holds 2 layers, so the loader stops at the first missing tensor.
    assert_refused(
        "n_layer",
        json!(100_000_000u64),
        "missing tensor h.2.ln_1.weight",
    );
    assert_refused(
        "n_layer",
        json!(1u64 << 63),
        "n_layer 9223372036854775808 of width 128 is more parameters than 64 bits count",
    );
    assert_refused(
        "n_head",
        json!(1u64 << 58),
        "gives head size 0.000000000000000444",
    );
    assert_refused(
        "vocab_size",
        json!(u64::MAX),
        "vocabulary or context beyond 32-bit indices",
    );
    let message = error_with(|c| {
        c.insert("n_positions".into(), json!(1u64 << 40));
        c.insert("n_ctx".into(), json!(1u64 << 40));
    });
    assert!(
        message.ends_with("vocabulary or context beyond 32-bit indices"),
        "{message}"
    );
}

#[test]
fn a_config_that_is_not_an_object_or_too_large_is_refused() {
    let dir = exported_then("shape", |_| {});
    let path = dir.path().join("config.json");
    std::fs::write(&path, "[1, 2]").unwrap();
    let message = load_hf_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.ends_with("config.json: not a JSON object"),
        "{message}"
    );
    std::fs::write(&path, vec![b' '; (16 << 20) + 1]).unwrap();
    let message = load_hf_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.ends_with(
            "config.json is 16777217 bytes; more than 16777216 is not a plausible file of its kind"
        ),
        "{message}"
    );
}

#[test]
fn generation_config_adds_its_end_of_sequence_ids() {
    let dir = edited(set("eos_token_id", json!(7)));
    let generation = dir.path().join("generation_config.json");
    std::fs::write(
        &generation,
        r#"{"eos_token_id": [7, 9], "do_sample": true}"#,
    )
    .unwrap();
    assert_eq!(
        load_hf_dir(dir.path()).unwrap().config.eos_token_ids,
        [7, 9]
    );
    std::fs::write(&generation, r#"{"eos_token_id": 100}"#).unwrap();
    let message = load_hf_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.ends_with(
            "generation_config.json: eos_token_id 100 is not a token id inside the vocabulary of 100"
        ),
        "{message}"
    );
}
