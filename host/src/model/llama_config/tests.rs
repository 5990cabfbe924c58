use super::*;
use serde_json::json;

/// Published parameter counts (the models' safetensors headers).
#[test]
fn presets_have_the_published_parameter_counts() {
    let counts: Vec<usize> = LlamaConfig::PRESETS
        .iter()
        .map(|p| LlamaConfig::preset(p).unwrap().parameters().unwrap())
        .collect();
    assert_eq!(
        counts,
        [
            1_235_814_400,
            3_212_749_824,
            8_030_261_248,
            494_032_768,
            1_543_714_304,
            7_615_616_512
        ]
    );
    for p in LlamaConfig::PRESETS {
        LlamaConfig::preset(p).unwrap().check().unwrap();
    }
}

/// Llama-3.2-1B's config.json as transformers 4 writes it.
fn llama_3_2_1b() -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
        "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
        "max_position_embeddings": 131072, "mlp_bias": false, "num_attention_heads": 32,
        "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "use_cache": true, "vocab_size": 128256
    })
}

fn parse(value: &Value) -> Result<LlamaConfig, ModelError> {
    let Value::Object(map) = value else {
        unreachable!()
    };
    LlamaConfig::from_hf_json(map, Path::new("config.json"))
}

#[test]
fn llama_and_qwen_configs_read_as_their_presets() {
    assert_eq!(
        parse(&llama_3_2_1b()).unwrap(),
        LlamaConfig::preset("llama-3.2-1b").unwrap()
    );
    // Transformers 5 writes theta and scaling together as rope_parameters, and `dtype`.
    let mut v5 = llama_3_2_1b();
    let map = v5.as_object_mut().unwrap();
    let mut parameters = map.remove("rope_scaling").unwrap();
    parameters["rope_theta"] = map.remove("rope_theta").unwrap();
    map.insert("rope_parameters".into(), parameters);
    map.insert("dtype".into(), map["torch_dtype"].clone());
    map.remove("torch_dtype");
    assert_eq!(parse(&v5).unwrap(), parse(&llama_3_2_1b()).unwrap());
    let qwen = json!({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896,
        "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
        "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
        "vocab_size": 151936
    });
    let parsed = parse(&qwen).unwrap();
    assert_eq!(
        parsed,
        LlamaConfig {
            bos_token_id: Some(151_643),
            ..LlamaConfig::preset("qwen2.5-0.5b").unwrap()
        }
    );
}

#[test]
fn fields_that_change_the_math_are_refused_by_name() {
    let cases: [(&str, Value, &str); 8] = [
        (
            "rope_scaling",
            json!({"rope_type": "yarn", "factor": 4.0}),
            "rope type \"yarn\"",
        ),
        ("head_dim", json!(96), "head_dim 96"),
        ("hidden_act", json!("gelu"), "hidden_act \"gelu\""),
        ("mlp_bias", json!(true), "mlp_bias true"),
        ("torch_dtype", json!("int8"), "dtype \"int8\""),
        (
            "eos_token_id",
            json!([128001, 999999]),
            "eos_token_id 999999",
        ),
        ("num_key_value_heads", json!(5), "no multiple of 5"),
        (
            "quantization_config",
            json!({"bits": 4}),
            "quantization_config",
        ),
    ];
    for (field, value, expected) in cases {
        let mut config = llama_3_2_1b();
        config[field] = value;
        let message = parse(&config).unwrap_err().to_string();
        assert!(
            message.contains(expected) && !message.contains('\n'),
            "{field}: {message}"
        );
    }
    let mut config = llama_3_2_1b();
    config["rope_scaling"]
        .as_object_mut()
        .unwrap()
        .remove("factor");
    let message = parse(&config).unwrap_err().to_string();
    assert!(message.contains("without factor"), "{message}");
}
