//! The shape of a GPT-2-family model: presets and Hugging Face config.json.

use super::error::ModelError;
use gpu_kernels::abi::{HEAD_DIM, LayerNormParams};
use std::path::Path;

/// Hyperparameters of a GPT-2-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Tokens in the vocabulary (rows of wte).
    pub vocab: usize,
    /// Positions the model was trained for (rows of wpe): the longest context.
    pub n_positions: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
}

/// GPT-2's BPE vocabulary size.
pub const GPT2_VOCAB: usize = 50257;

impl Config {
    /// The four GPT-2 sizes, by their Hugging Face names.
    pub const PRESETS: [&'static str; 4] = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"];

    /// A preset by name: gpt2, gpt2-medium, gpt2-large or gpt2-xl.
    pub fn preset(name: &str) -> Result<Config, ModelError> {
        let (n_layer, n_head, d_model) = match name {
            "gpt2" => (12, 12, 768),
            "gpt2-medium" => (24, 16, 1024),
            "gpt2-large" => (36, 20, 1280),
            "gpt2-xl" => (48, 25, 1600),
            _ => {
                return Err(ModelError::Unsupported(format!(
                    "no preset {name:?}; choose one of {}",
                    Self::PRESETS.join(", ")
                )));
            }
        };
        Ok(Config {
            n_layer,
            n_head,
            d_model,
            vocab: GPT2_VOCAB,
            n_positions: 1024,
            layer_norm_eps: 1e-5,
        })
    }

    /// Reads a Hugging Face GPT-2 config.json and checks the kernels support it.
    pub fn from_hf_json(path: &Path) -> Result<Config, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile(path.to_owned()),
            _ => ModelError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        })?;
        let bad = |reason: String| ModelError::BadConfig {
            path: path.to_owned(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let field = |names: &[&str]| -> Result<usize, ModelError> {
            names
                .iter()
                .find_map(|n| json.get(*n))
                .map(|v| {
                    v.as_u64()
                        .filter(|&n| n > 0)
                        .map(|n| n as usize)
                        .ok_or_else(|| bad(format!("{} must be a positive integer", names[0])))
                })
                .unwrap_or_else(|| Err(bad(format!("no field {}", names[0]))))
        };
        let config = Config {
            n_layer: field(&["n_layer", "num_hidden_layers"])?,
            n_head: field(&["n_head", "num_attention_heads"])?,
            d_model: field(&["n_embd", "hidden_size"])?,
            vocab: field(&["vocab_size"])?,
            n_positions: field(&["n_positions", "n_ctx", "max_position_embeddings"])?,
            layer_norm_eps: json
                .get("layer_norm_epsilon")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-5) as f32,
        };
        config.check()?;
        Ok(config)
    }

    /// The same config as Hugging Face writes it, for `host export`.
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "activation_function": "gelu_new",
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.d_model,
            "n_inner": null,
            "vocab_size": self.vocab,
            "n_positions": self.n_positions,
            "n_ctx": self.n_positions,
            "layer_norm_epsilon": self.layer_norm_eps,
            "bos_token_id": 50256,
            "eos_token_id": 50256,
            "tie_word_embeddings": true,
            "scale_attn_weights": true,
            "torch_dtype": "float16",
        })
    }

    /// Refuses shapes the kernels cannot run, naming the limit.
    pub fn check(&self) -> Result<(), ModelError> {
        let unsupported = |s: String| Err(ModelError::Unsupported(s));
        let head_dim = HEAD_DIM as usize;
        if self.d_model != self.n_head * head_dim {
            return unsupported(format!(
                "n_embd {} with n_head {} gives head size {}; the kernels need {head_dim}",
                self.d_model,
                self.n_head,
                self.d_model as f64 / self.n_head as f64
            ));
        }
        if self.d_model > LayerNormParams::MAX_D_MODEL as usize {
            return unsupported(format!(
                "n_embd {} is wider than the {} the layernorm kernel holds",
                self.d_model,
                LayerNormParams::MAX_D_MODEL
            ));
        }
        if self.vocab > u32::MAX as usize || self.n_positions > u32::MAX as usize {
            return unsupported("vocabulary or context beyond 32-bit indices".into());
        }
        Ok(())
    }

    /// Dimensions per head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters, counting the tied embedding once.
    pub fn parameters(&self) -> usize {
        let d = self.d_model;
        let per_layer = 2 * d
            + (3 * d * d + 3 * d)
            + (d * d + d)
            + 2 * d
            + (4 * d * d + 4 * d)
            + (4 * d * d + d);
        self.vocab * d + self.n_positions * d + self.n_layer * per_layer + 2 * d
    }
}

/// A two-layer model of width 128 for the CPU unit tests.
#[cfg(test)]
pub(super) fn tiny() -> Config {
    Config {
        n_layer: 2,
        n_head: 2,
        d_model: 128,
        vocab: 300,
        n_positions: 64,
        layer_norm_eps: 1e-5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_gpt2_parameter_counts() {
        // Hugging Face's published sizes: 124M, 355M, 774M, 1558M.
        let millions: Vec<usize> = Config::PRESETS
            .iter()
            .map(|p| Config::preset(p).unwrap().parameters() / 1_000_000)
            .collect();
        assert_eq!(millions, [124, 354, 774, 1557]);
        assert!(
            Config::preset("gpt3")
                .unwrap_err()
                .to_string()
                .contains("gpt2-xl")
        );
    }

    #[test]
    fn reads_hugging_face_config_json() {
        let dir = std::env::temp_dir().join(format!("config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let gpt2 = Config::preset("gpt2").unwrap();
        std::fs::write(&path, gpt2.to_hf_json().to_string()).unwrap();
        assert_eq!(Config::from_hf_json(&path).unwrap(), gpt2);

        std::fs::write(&path, r#"{"n_layer": 2, "n_head": 12, "n_embd": 768}"#).unwrap();
        let e = Config::from_hf_json(&path).unwrap_err().to_string();
        assert!(e.ends_with("no field vocab_size"), "{e}");

        std::fs::write(&path, "{ not json").unwrap();
        let e = Config::from_hf_json(&path).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");

        let odd = Config {
            n_head: 10,
            ..gpt2.clone()
        };
        std::fs::write(&path, odd.to_hf_json().to_string()).unwrap();
        let e = Config::from_hf_json(&path).unwrap_err().to_string();
        assert!(e.contains("head size 76.8; the kernels need 64"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
