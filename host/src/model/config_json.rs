//! Reading a Hugging Face config.json: GPT-2's here, Llama's and Qwen2's in
//! [`super::llama_config`]. Every field of transformers' GPT2Config that
//! changes what the model computes is either honored or refused by name, so that another
//! model cannot run as GPT-2 and print plausible text; fields that only matter for
//! training (dropout, initialization, summary heads) are ignored, as transformers ignores
//! them at inference.

use super::config::Config;
use super::error::ModelError;
use super::files::read_text;
use super::llama_config::LlamaConfig;
use serde_json::{Map, Value};
use std::path::Path;

/// Real config.json files are a few kilobytes; this bounds what a hostile one can make
/// the parser hold.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// GPT-2's `<|endoftext|>`, transformers' default `eos_token_id` for GPT-2.
const GPT2_EOS: u32 = 50256;

/// The activation functions that are GELU's tanh approximation, which the kernels compute.
const TANH_GELUS: [&str; 3] = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

impl Config {
    /// Reads `dir/config.json` and, where the directory has one, the end-of-sequence
    /// ids of `dir/generation_config.json`: generation stops at every id either names.
    pub fn from_hf_dir(dir: &Path) -> Result<Config, ModelError> {
        let mut config = Config::from_hf_json(&dir.join("config.json"))?;
        let path = dir.join("generation_config.json");
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(config);
        }
        let text = read_text(&path, MAX_CONFIG_BYTES)?;
        let json: Value = serde_json::from_str(&text).map_err(|e| ModelError::BadConfig {
            path: path.clone(),
            reason: format!("not valid JSON: {e}"),
        })?;
        let Value::Object(map) = json else {
            return Err(ModelError::BadConfig {
                path,
                reason: "not a JSON object".into(),
            });
        };
        if map.contains_key("eos_token_id") {
            let fields = Fields {
                map: &map,
                path: &path,
            };
            for id in fields.eos_token_ids(config.vocab)? {
                if !config.eos_token_ids.contains(&id) {
                    config.eos_token_ids.push(id);
                }
            }
        }
        Ok(config)
    }

    /// Reads a Hugging Face GPT-2 config.json and checks the kernels support it.
    pub fn from_hf_json(path: &Path) -> Result<Config, ModelError> {
        let text = read_text(path, MAX_CONFIG_BYTES)?;
        let bad = |reason: String| ModelError::BadConfig {
            path: path.to_owned(),
            reason,
        };
        let json: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = json else {
            return Err(bad("not a JSON object".into()));
        };
        let fields = Fields { map: &map, path };
        if fields.check_architecture()? == Family::Llama {
            let config = Config::from_llama(LlamaConfig::from_hf_json(&map, path)?);
            config.check()?;
            return Ok(config);
        }
        let d_model = fields.positive_int(&["n_embd", "hidden_size"])?;
        let n_positions = fields.positive_int(&["n_positions", "max_position_embeddings"])?;
        if let Some(n_ctx) = fields.optional_int("n_ctx")?
            && n_ctx != n_positions
        {
            return Err(bad(format!(
                "n_ctx {n_ctx} disagrees with n_positions {n_positions}"
            )));
        }
        let vocab = fields.positive_int(&["vocab_size"])?;
        fields.check_math(d_model)?;
        let config = Config {
            n_layer: fields.positive_int(&["n_layer", "num_hidden_layers"])?,
            n_head: fields.positive_int(&["n_head", "num_attention_heads"])?,
            d_model,
            vocab,
            n_positions,
            layer_norm_eps: fields.layer_norm_eps()?,
            eos_token_ids: fields.eos_token_ids(vocab)?,
            llama: None,
        };
        config.check()?;
        Ok(config)
    }
}

/// Which reader a config.json takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Gpt2,
    Llama,
}

/// The fields of one config.json, read with messages that name the field.
pub(super) struct Fields<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: &'a Path,
}

impl Fields<'_> {
    pub(super) fn bad(&self, reason: String) -> ModelError {
        ModelError::BadConfig {
            path: self.path.to_owned(),
            reason,
        }
    }

    /// A refusal of a value the file states correctly but the engine does not run.
    pub(super) fn unsupported(&self, reason: String) -> ModelError {
        ModelError::Unsupported(format!("{}: {reason}", self.path.display()))
    }

    /// A field that is absent or null reads as `None`.
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// model_type gpt2, llama or qwen2 and, where architectures is given, its causal LM
    /// class among them (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM).
    fn check_architecture(&self) -> Result<Family, ModelError> {
        let (family, class) = match self.get("model_type") {
            Some(Value::String(t)) if t == "gpt2" => (Family::Gpt2, "GPT2LMHeadModel"),
            Some(Value::String(t)) if t == "llama" => (Family::Llama, "LlamaForCausalLM"),
            Some(Value::String(t)) if t == "qwen2" => (Family::Llama, "Qwen2ForCausalLM"),
            Some(Value::String(t)) => {
                return Err(self.unsupported(format!(
                    "model_type {t:?} is not supported; this engine runs gpt2, llama and qwen2 \
                     (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM)"
                )));
            }
            Some(other) => return Err(self.bad(format!("model_type {other} is not a string"))),
            None => return Err(self.bad("no field model_type".into())),
        };
        if let Some(value) = self.get("architectures") {
            let names: Option<Vec<&str>> = value
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect());
            let Some(names) = names else {
                return Err(self.bad(format!("architectures {value} is not a list of names")));
            };
            if !names.contains(&class) {
                return Err(self.unsupported(format!(
                    "architectures {names:?} has no {class}, the class this engine runs for \
                     its model_type"
                )));
            }
        }
        Ok(family)
    }

    /// The fields that change the computation: honored where the kernels compute that,
    /// refused by name where they do not.
    fn check_math(&self, d_model: usize) -> Result<(), ModelError> {
        match self.get("activation_function") {
            None => {}
            Some(Value::String(f)) if TANH_GELUS.contains(&f.as_str()) => {}
            Some(Value::String(f)) => {
                return Err(self.unsupported(format!(
                    "activation_function {f:?} is not supported; the kernels compute GELU's tanh approximation ({})",
                    TANH_GELUS.join(", ")
                )));
            }
            Some(other) => {
                return Err(self.bad(format!("activation_function {other} is not a string")));
            }
        }
        if let Some(n_inner) = self.optional_int("n_inner")? {
            let four_d = 4 * d_model as u128;
            if n_inner as u128 != four_d {
                return Err(self.unsupported(format!(
                    "n_inner {n_inner} is not supported; the kernels use 4 * n_embd = {four_d}"
                )));
            }
        }
        for (name, supported, why) in [
            (
                "scale_attn_weights",
                true,
                "the kernels scale attention scores by 1/sqrt(head size)",
            ),
            (
                "scale_attn_by_inverse_layer_idx",
                false,
                "the kernels do not scale attention by layer",
            ),
            (
                "add_cross_attention",
                false,
                "a decoder-only engine has no encoder to attend to",
            ),
            (
                "tie_word_embeddings",
                true,
                "the LM head is the token embedding (wte)",
            ),
        ] {
            let value = self.optional_bool(name)?;
            if value.is_some_and(|v| v != supported) {
                return Err(
                    self.unsupported(format!("{name} {} is not supported: {why}", !supported))
                );
            }
        }
        // Upcasting attention to f32 changes only precision, and the kernels attend in f32.
        self.optional_bool("reorder_and_upcast_attn")?;
        if self.get("quantization_config").is_some() {
            return Err(self.unsupported(
                "quantization_config: quantized checkpoints are not supported".into(),
            ));
        }
        match self.get("pruned_heads") {
            None => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(_) => {
                return Err(self.unsupported(
                    "pruned_heads: models with pruned attention heads are not supported".into(),
                ));
            }
        }
        Ok(())
    }

    /// The first of `names` present (they are aliases and must agree), a positive integer.
    pub(super) fn positive_int(&self, names: &[&str]) -> Result<usize, ModelError> {
        let mut found: Option<(&str, usize)> = None;
        for &name in names {
            let Some(value) = self.optional_int(name)? else {
                continue;
            };
            if value == 0 {
                return Err(self.bad(format!("{name} must be a positive integer (found 0)")));
            }
            match found {
                Some((first, v)) if v != value => {
                    return Err(self.bad(format!("{name} {value} disagrees with {first} {v}")));
                }
                Some(_) => {}
                None => found = Some((name, value)),
            }
        }
        found
            .map(|(_, v)| v)
            .ok_or_else(|| self.bad(format!("no field {}", names[0])))
    }

    /// A non-negative integer field, if present.
    pub(super) fn optional_int(&self, name: &str) -> Result<Option<usize>, ModelError> {
        self.get(name)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        self.bad(format!("{name} must be a positive integer (found {v})"))
                    })
            })
            .transpose()
    }

    /// A boolean field, if present.
    pub(super) fn optional_bool(&self, name: &str) -> Result<Option<bool>, ModelError> {
        self.get(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.bad(format!("{name} must be true or false (found {v})")))
            })
            .transpose()
    }

    /// layer_norm_epsilon: a number that f32 holds as a positive normal value, at most 1
    /// (transformers' default 1e-5 when absent).
    fn layer_norm_eps(&self) -> Result<f32, ModelError> {
        let Some(value) = self.get("layer_norm_epsilon") else {
            return Ok(1e-5);
        };
        let eps = value.as_f64().map(|e| e as f32);
        match eps {
            Some(e) if (f32::MIN_POSITIVE..=1.0).contains(&e) => Ok(e),
            _ => Err(self.bad(format!(
                "layer_norm_epsilon must be a number in {:e}..=1 (found {value})",
                f32::MIN_POSITIVE
            ))),
        }
    }

    /// The tokens that end generation: eos_token_id as one id or a list, each inside the
    /// vocabulary; null means none, absent means GPT-2's `<|endoftext|>`.
    fn eos_token_ids(&self, vocab: usize) -> Result<Vec<u32>, ModelError> {
        if !self.map.contains_key("eos_token_id") {
            let default = (GPT2_EOS as usize) < vocab;
            return Ok(if default { vec![GPT2_EOS] } else { vec![] });
        }
        self.token_ids("eos_token_id", vocab)
    }

    /// A token id field: one id or a list, each inside the vocabulary; absent or null:
    /// none.
    pub(super) fn token_ids(&self, name: &str, vocab: usize) -> Result<Vec<u32>, ModelError> {
        let items: Vec<&Value> = match self.get(name) {
            None => vec![],
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        items
            .into_iter()
            .map(|v| {
                v.as_u64()
                    .filter(|&id| id < vocab as u64)
                    .map(|id| id as u32)
                    .ok_or_else(|| {
                        self.bad(format!(
                            "{name} {v} is not a token id inside the vocabulary of {vocab}"
                        ))
                    })
            })
            .collect()
    }
}
