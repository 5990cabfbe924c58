//! Writing a Llama-family model as a Hugging Face directory (`host export`): config.json
//! and model.safetensors in the model's half type, q/k/v and gate/up stored apart under
//! transformers' names, so LlamaForCausalLM / Qwen2ForCausalLM load exactly these weights.

use super::error::ModelError;
use super::export::write_safetensors;
use super::llama_config::{LlamaConfig, LlamaFamily};
use super::llama_load::llama_tensor_names;
use super::llama_weights::LlamaWeights;
use super::rope::RopeScaling;
use crate::halves::{HalfBits, HalfType};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;
use std::path::Path;

impl LlamaConfig {
    /// The config as transformers writes it (rope_theta and rope_scaling at the top
    /// level, which transformers 5 reads too).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (model_type, class) = match self.family {
            LlamaFamily::Llama => ("llama", "LlamaForCausalLM"),
            LlamaFamily::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
        };
        let rope_scaling = match self.rope.scaling {
            RopeScaling::Default => serde_json::Value::Null,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings as u64,
            }),
        };
        let mut config = json!({
            "architectures": [class],
            "model_type": model_type,
            "hidden_act": "silu",
            "hidden_size": self.d_model,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.n_layer,
            "num_attention_heads": self.n_head,
            "num_key_value_heads": self.n_kv_head,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.n_positions,
            // The f32's shortest decimal, not its binary value widened (1e-6, not
            // 9.99999997e-7).
            "rms_norm_eps": self.rms_norm_eps.to_string().parse::<f64>().unwrap_or(1e-6),
            "rope_theta": self.rope.theta,
            "rope_scaling": rope_scaling,
            "vocab_size": self.vocab,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": match self.eos_token_ids[..] {
                [] => serde_json::Value::Null,
                [one] => one.into(),
                ref many => many.into(),
            },
            "torch_dtype": self.half.torch_name(),
        });
        match self.family {
            LlamaFamily::Llama => {
                config["attention_bias"] = self.qkv_bias.into();
                config["mlp_bias"] = false.into();
            }
            LlamaFamily::Qwen2 => config["use_sliding_window"] = false.into(),
        }
        config
    }
}

/// Writes `dir/config.json` and `dir/model.safetensors` into an existing directory.
pub fn write_llama_files(weights: &LlamaWeights, dir: &Path) -> Result<(), ModelError> {
    let unwritable = |path: &Path, e: &dyn std::fmt::Display| ModelError::Unwritable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let llama = weights.llama();
    let config_path = dir.join("config.json");
    let config = serde_json::to_string_pretty(&llama.to_hf_json()).expect("plain JSON");
    std::fs::write(&config_path, config).map_err(|e| unwritable(&config_path, &e))?;

    let (d, hd, inter) = (llama.d_model, llama.head_dim, llama.intermediate);
    let (q, kv) = (llama.n_head * hd, llama.n_kv_head * hd);
    let mut parameters: Vec<&[HalfBits]> = vec![&weights.embed];
    for l in &weights.layers {
        let (q_rows, kv_rows) = l.qkv.split_at(q * d);
        let (k_rows, v_rows) = kv_rows.split_at(kv * d);
        parameters.extend([&l.attn_norm[..], q_rows, k_rows, v_rows]);
        if let Some(bias) = &l.qkv_bias {
            let (q_bias, kv_bias) = bias.split_at(q);
            let (k_bias, v_bias) = kv_bias.split_at(kv);
            parameters.extend([q_bias, k_bias, v_bias]);
        }
        let (gate, up) = l.gate_up.split_at(inter * d);
        parameters.extend([&l.o_proj[..], &l.mlp_norm, gate, up, &l.down]);
    }
    parameters.push(&weights.final_norm);
    if let Some(head) = &weights.lm_head {
        parameters.push(head);
    }
    let dtype = match llama.half {
        HalfType::F16 => Dtype::F16,
        HalfType::Bf16 => Dtype::BF16,
    };
    let stored: Vec<(String, Vec<usize>, Vec<u8>)> = llama_tensor_names(&weights.config)
        .zip(parameters)
        .map(|((name, shape), values)| {
            let bytes = values.iter().flat_map(|v| v.0.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views = stored
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(dtype, shape.clone(), bytes).expect("sizes agree");
            (name.as_str(), view)
        })
        .collect::<Vec<_>>();
    write_safetensors(views, &dir.join("model.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{load_llama_dir, tiny_llama};

    /// Export then load gives back the same weights and config, for both families'
    /// layouts (Qwen's biases, Llama's untied head).
    #[test]
    fn exported_weights_load_back_unchanged() {
        let qwen = tiny_llama(HalfType::Bf16);
        let mut untied = qwen.llama.clone().unwrap();
        untied.family = LlamaFamily::Llama;
        untied.qkv_bias = false;
        untied.tie_word_embeddings = false;
        untied.bos_token_id = Some(1);
        untied.eos_token_ids = vec![2, 3];
        untied.rope = crate::model::Rope::LLAMA_3_1;
        for config in [qwen, crate::model::Config::from_llama(untied)] {
            let weights = LlamaWeights::random(&config, 4);
            let dir = tempfile::tempdir().unwrap();
            write_llama_files(&weights, dir.path()).unwrap();
            let loaded = load_llama_dir(dir.path(), |_| {}).unwrap();
            assert_eq!(loaded.config, weights.config);
            let mode = |name: &str| {
                let path = dir.path().join(name);
                std::fs::metadata(path).unwrap().permissions()
            };
            assert_eq!(mode("model.safetensors"), mode("config.json"));
            assert_eq!(loaded.embed, weights.embed);
            assert_eq!(loaded.lm_head, weights.lm_head);
            assert_eq!(loaded.final_norm, weights.final_norm);
            for (a, b) in loaded.layers.iter().zip(&weights.layers) {
                assert_eq!(a.qkv, b.qkv);
                assert_eq!(a.qkv_bias, b.qkv_bias);
                assert_eq!(a.gate_up, b.gate_up);
                assert_eq!(a.down, b.down);
                assert_eq!(a.o_proj, b.o_proj);
                assert_eq!((&a.attn_norm, &a.mlp_norm), (&b.attn_norm, &b.mlp_norm));
            }
        }
    }
}
