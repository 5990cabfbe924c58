//! The shape of a model (GPT-2, or the Llama family through [`LlamaConfig`]): presets and
//! Hugging Face config.json.

use super::error::ModelError;
use super::llama_config::LlamaConfig;
use gpu_kernels::abi::{HEAD_DIM, HalfType, LayerNormParams};

/// Hyperparameters of a model: the fields every architecture has, and the Llama family's
/// own in `llama`.
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
    /// LayerNorm epsilon (for the Llama family, RMSNorm's).
    pub layer_norm_eps: f32,
    /// Tokens that end a sequence (none: generation stops only at its length).
    pub eos_token_ids: Vec<u32>,
    /// The Llama family's hyperparameters (Llama 3, Qwen2.5); `None` for GPT-2.
    pub llama: Option<LlamaConfig>,
}

/// GPT-2's BPE vocabulary size.
pub const GPT2_VOCAB: usize = 50257;

/// GPT-2's `<|endoftext|>`, its end-of-sequence token.
pub const GPT2_EOS: u32 = 50256;

impl Config {
    /// The four GPT-2 sizes, by their Hugging Face names.
    pub const PRESETS: [&'static str; 4] = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"];

    /// A preset by name: a GPT-2 size ([`Self::PRESETS`]) or a Llama-family one
    /// ([`LlamaConfig::PRESETS`]).
    pub fn preset(name: &str) -> Result<Config, ModelError> {
        if let Some(llama) = LlamaConfig::preset(name) {
            return Ok(Config::from_llama(llama));
        }
        let (n_layer, n_head, d_model) = match name {
            "gpt2" => (12, 12, 768),
            "gpt2-medium" => (24, 16, 1024),
            "gpt2-large" => (36, 20, 1280),
            "gpt2-xl" => (48, 25, 1600),
            _ => {
                return Err(ModelError::Unsupported(format!(
                    "no preset {name:?}; choose one of {}, {}",
                    Self::PRESETS.join(", "),
                    LlamaConfig::PRESETS.join(", ")
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
            eos_token_ids: vec![GPT2_EOS],
            llama: None,
        })
    }

    /// The config of a Llama-family model: its common fields from `llama`.
    pub fn from_llama(llama: LlamaConfig) -> Config {
        Config {
            n_layer: llama.n_layer,
            n_head: llama.n_head,
            d_model: llama.d_model,
            vocab: llama.vocab,
            n_positions: llama.n_positions,
            layer_norm_eps: llama.rms_norm_eps,
            eos_token_ids: llama.eos_token_ids.clone(),
            llama: Some(llama),
        }
    }

    /// Key and value heads (GPT-2: one per query head).
    pub fn n_kv_head(&self) -> usize {
        self.llama.as_ref().map_or(self.n_head, |l| l.n_kv_head)
    }

    /// The type the weights, activations and KV cache have on the GPU.
    pub fn half_type(&self) -> HalfType {
        self.llama.as_ref().map_or(HalfType::F16, |l| l.half)
    }

    /// The architecture's name, as config.json's model_type says it.
    pub fn model_type(&self) -> &'static str {
        match &self.llama {
            None => "gpt2",
            Some(l) if l.family == super::LlamaFamily::Qwen2 => "qwen2",
            Some(_) => "llama",
        }
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
            "bos_token_id": self.eos_token_ids.first(),
            "eos_token_id": match self.eos_token_ids[..] {
                [] => serde_json::Value::Null,
                [one] => one.into(),
                ref many => many.into(),
            },
            "tie_word_embeddings": true,
            "scale_attn_weights": true,
            "torch_dtype": "float16",
        })
    }

    /// Refuses shapes the kernels cannot run, naming the limit, and sizes whose
    /// parameter count does not fit in 64 bits (nothing sized by them is allocated
    /// before this check).
    pub fn check(&self) -> Result<(), ModelError> {
        if let Some(llama) = &self.llama {
            return llama.check();
        }
        let unsupported = |s: String| Err(ModelError::Unsupported(s));
        let head_dim = HEAD_DIM as usize;
        if self.n_head.checked_mul(head_dim) != Some(self.d_model) {
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
        if self.checked_parameters().is_none() {
            return unsupported(format!(
                "n_layer {} of width {} is more parameters than 64 bits count",
                self.n_layer, self.d_model
            ));
        }
        Ok(())
    }

    /// Dimensions per head.
    pub fn head_dim(&self) -> usize {
        self.llama
            .as_ref()
            .map_or(self.d_model / self.n_head, |l| l.head_dim)
    }

    /// Parameters, counting the tied embedding once (a config that passed
    /// [`Config::check`] has a count that fits).
    pub fn parameters(&self) -> usize {
        self.checked_parameters()
            .expect("Config::check refuses counts that overflow")
    }

    /// Parameters, or `None` where the count overflows.
    fn checked_parameters(&self) -> Option<usize> {
        if let Some(llama) = &self.llama {
            return llama.parameters();
        }
        let d = self.d_model;
        let dd = d.checked_mul(d)?;
        // ln_1 and ln_2, c_attn, attention c_proj, c_fc, mlp c_proj, each with its bias.
        let per_layer = dd.checked_mul(12)?.checked_add(d.checked_mul(13)?)?;
        let embeddings = self.vocab.checked_add(self.n_positions)?.checked_mul(d)?;
        self.n_layer
            .checked_mul(per_layer)?
            .checked_add(embeddings)?
            .checked_add(2 * d)
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
        eos_token_ids: vec![],
        llama: None,
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
}
