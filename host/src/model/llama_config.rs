//! The shape of a Llama-family model (Llama 3.x, Qwen2.5, SmolLM2): presets with the
//! published shapes, and transformers' config.json for LlamaForCausalLM and
//! Qwen2ForCausalLM, every field that changes the math honored or refused by name.

use super::config_json::Fields;
use super::error::ModelError;
use super::rope::{Rope, RopeScaling};
use gpu_kernels::abi::{AttentionParams, HalfType};
use serde_json::{Map, Value};
use std::path::Path;

/// Which of the two layer layouts: Qwen2 is Llama with biases on q, k and v.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlamaFamily {
    /// LlamaForCausalLM (Llama 3.0-3.2, SmolLM2).
    Llama,
    /// Qwen2ForCausalLM (Qwen2.5).
    Qwen2,
}

/// Hyperparameters of a Llama-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Layer layout.
    pub family: LlamaFamily,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key and value heads (grouped-query attention).
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Width of the MLP's hidden activation.
    pub intermediate: usize,
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// The longest context the model was trained for.
    pub n_positions: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Rotary embedding.
    pub rope: Rope,
    /// The LM head is the token embedding.
    pub tie_word_embeddings: bool,
    /// q, k and v projections carry biases (Qwen2 always; Llama's `attention_bias`).
    pub qkv_bias: bool,
    /// The weights' type on the GPU (bf16 for bf16 and f32 checkpoints).
    pub half: HalfType,
    /// The token a prompt starts with, if the model has one.
    pub bos_token_id: Option<u32>,
    /// Tokens that end a sequence.
    pub eos_token_ids: Vec<u32>,
}

impl LlamaConfig {
    /// The presets by their Hugging Face names.
    pub const PRESETS: [&'static str; 6] = [
        "llama-3.2-1b",
        "llama-3.2-3b",
        "llama-3.1-8b",
        "qwen2.5-0.5b",
        "qwen2.5-1.5b",
        "qwen2.5-7b",
    ];

    /// A preset with the published shape (random weights are made for it elsewhere).
    pub fn preset(name: &str) -> Option<LlamaConfig> {
        let llama = |n_layer, d_model, n_head, head_dim, intermediate, tied, factor| LlamaConfig {
            family: LlamaFamily::Llama,
            n_layer,
            d_model,
            n_head,
            n_kv_head: 8,
            head_dim,
            intermediate,
            vocab: 128_256,
            n_positions: 131_072,
            rms_norm_eps: 1e-5,
            rope: Rope {
                scaling: RopeScaling::Llama3 {
                    factor,
                    low_freq_factor: 1.0,
                    high_freq_factor: 4.0,
                    original_max_position_embeddings: 8192.0,
                },
                ..Rope::LLAMA_3_1
            },
            tie_word_embeddings: tied,
            qkv_bias: false,
            half: HalfType::Bf16,
            bos_token_id: Some(128_000),
            eos_token_ids: vec![128_001, 128_008, 128_009],
        };
        let qwen = |n_layer, d_model, n_head, n_kv_head, intermediate, vocab, tied| LlamaConfig {
            family: LlamaFamily::Qwen2,
            n_layer,
            d_model,
            n_head,
            n_kv_head,
            head_dim: d_model / n_head,
            intermediate,
            vocab,
            n_positions: 32_768,
            rms_norm_eps: 1e-6,
            rope: Rope {
                theta: 1_000_000.0,
                scaling: RopeScaling::Default,
            },
            tie_word_embeddings: tied,
            qkv_bias: true,
            half: HalfType::Bf16,
            bos_token_id: None,
            eos_token_ids: vec![151_643],
        };
        Some(match name {
            "llama-3.2-1b" => llama(16, 2048, 32, 64, 8192, true, 32.0),
            "llama-3.2-3b" => llama(28, 3072, 24, 128, 8192, true, 32.0),
            "llama-3.1-8b" => llama(32, 4096, 32, 128, 14_336, false, 8.0),
            "qwen2.5-0.5b" => qwen(24, 896, 14, 2, 4864, 151_936, true),
            "qwen2.5-1.5b" => qwen(28, 1536, 12, 2, 8960, 151_936, true),
            "qwen2.5-7b" => qwen(28, 3584, 28, 4, 18_944, 152_064, false),
            _ => return None,
        })
    }

    /// Parameters: embeddings, blocks, final norm, and the LM head when untied.
    pub fn parameters(&self) -> Option<usize> {
        let (d, hd) = (self.d_model, self.head_dim);
        let q = self.n_head.checked_mul(hd)?;
        let kv = self.n_kv_head.checked_mul(hd)?.checked_mul(2)?;
        let attention = d
            .checked_mul(q.checked_add(kv)?)?
            .checked_add(q.checked_mul(d)?)?;
        let biases = if self.qkv_bias { q + kv } else { 0 };
        let mlp = d.checked_mul(self.intermediate)?.checked_mul(3)?;
        let block = attention
            .checked_add(biases)?
            .checked_add(mlp)?
            .checked_add(2 * d)?;
        let embeddings = self.vocab.checked_mul(d)?;
        let head = if self.tie_word_embeddings {
            0
        } else {
            embeddings
        };
        self.n_layer
            .checked_mul(block)?
            .checked_add(embeddings)?
            .checked_add(head)?
            .checked_add(d)
    }

    /// Refuses shapes the kernels cannot run, naming the limit.
    pub fn check(&self) -> Result<(), ModelError> {
        let unsupported = |s: String| Err(ModelError::Unsupported(s));
        if !AttentionParams::HEAD_DIMS.contains(&(self.head_dim as u32)) {
            return unsupported(format!(
                "head_dim {} (the attention kernels take {:?})",
                self.head_dim,
                AttentionParams::HEAD_DIMS
            ));
        }
        if self.n_kv_head == 0 || !self.n_head.is_multiple_of(self.n_kv_head) {
            return unsupported(format!(
                "{} attention heads are no multiple of {} key-value heads",
                self.n_head, self.n_kv_head
            ));
        }
        if !self.d_model.is_multiple_of(8) || !self.intermediate.is_multiple_of(8) {
            return unsupported(format!(
                "hidden_size {} and intermediate_size {} must be multiples of 8",
                self.d_model, self.intermediate
            ));
        }
        if self.vocab > u32::MAX as usize || self.n_positions > u32::MAX as usize {
            return unsupported("vocabulary or context beyond 32-bit indices".into());
        }
        if self.parameters().is_none() {
            return unsupported("more parameters than 64 bits count".into());
        }
        Ok(())
    }

    /// Reads a Llama or Qwen2 config.json (already known to name one of them).
    pub fn from_hf_json(map: &Map<String, Value>, path: &Path) -> Result<Self, ModelError> {
        let fields = Fields { map, path };
        let family = match map.get("model_type").and_then(Value::as_str) {
            Some("llama") => LlamaFamily::Llama,
            Some("qwen2") => LlamaFamily::Qwen2,
            other => {
                return Err(
                    fields.unsupported(format!("model_type {other:?} is not llama or qwen2"))
                );
            }
        };
        refuse_changed_math(&fields, family)?;
        let d_model = fields.positive_int(&["hidden_size"])?;
        let n_head = fields.positive_int(&["num_attention_heads"])?;
        let n_kv_head = match fields.optional_int("num_key_value_heads")? {
            Some(n) => n,
            None => n_head,
        };
        let head_dim = match fields.optional_int("head_dim")? {
            Some(hd) => hd,
            None => d_model / n_head,
        };
        let vocab = fields.positive_int(&["vocab_size"])?;
        let config = LlamaConfig {
            family,
            n_layer: fields.positive_int(&["num_hidden_layers"])?,
            d_model,
            n_head,
            n_kv_head,
            head_dim,
            intermediate: fields.positive_int(&["intermediate_size"])?,
            vocab,
            n_positions: fields.positive_int(&["max_position_embeddings"])?,
            rms_norm_eps: positive_small_number(&fields, "rms_norm_eps", 1e-6)?,
            rope: rope(&fields)?,
            tie_word_embeddings: fields
                .optional_bool("tie_word_embeddings")?
                .unwrap_or(false),
            qkv_bias: family == LlamaFamily::Qwen2
                || fields.optional_bool("attention_bias")?.unwrap_or(false),
            half: weight_type(&fields)?,
            bos_token_id: fields.token_ids("bos_token_id", vocab)?.first().copied(),
            eos_token_ids: fields.token_ids("eos_token_id", vocab)?,
        };
        config.check()?;
        Ok(config)
    }
}

/// Refuses, by name, the fields whose values would make the model compute something the
/// kernels do not.
fn refuse_changed_math(fields: &Fields, family: LlamaFamily) -> Result<(), ModelError> {
    if let Some(act) = fields.get("hidden_act")
        && act.as_str() != Some("silu")
    {
        return Err(fields.unsupported(format!("hidden_act {act} (the MLP computes silu)")));
    }
    if fields.optional_bool("mlp_bias")? == Some(true) {
        return Err(fields.unsupported("mlp_bias true (the MLP has no biases here)".into()));
    }
    if family == LlamaFamily::Qwen2 && fields.optional_bool("use_sliding_window")? == Some(true) {
        return Err(fields.unsupported("use_sliding_window true (attention is full)".into()));
    }
    if fields.get("quantization_config").is_some() {
        return Err(fields.unsupported("quantization_config (quantized weights)".into()));
    }
    Ok(())
}

/// A number in (0, 1] that f32 holds as a normal value; `default` when absent.
fn positive_small_number(fields: &Fields, name: &str, default: f32) -> Result<f32, ModelError> {
    let Some(value) = fields.get(name) else {
        return Ok(default);
    };
    match value.as_f64().map(|e| e as f32) {
        Some(e) if (f32::MIN_POSITIVE..=1.0).contains(&e) => Ok(e),
        _ => Err(fields.bad(format!(
            "{name} must be a number in {:e}..=1 (found {value})",
            f32::MIN_POSITIVE
        ))),
    }
}

/// rope_theta (top level, transformers 4) and rope_scaling, or rope_parameters
/// (transformers 5: theta inside); types default and llama3.
fn rope(fields: &Fields) -> Result<Rope, ModelError> {
    let parameters = match fields.get("rope_parameters").or(fields.get("rope_scaling")) {
        None => None,
        Some(Value::Object(p)) => Some(p),
        Some(other) => return Err(fields.bad(format!("rope parameters {other} are no object"))),
    };
    let number = |map: &Map<String, Value>, name: &str| -> Result<Option<f32>, ModelError> {
        map.get(name)
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_f64()
                    .map(|x| x as f32)
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| fields.bad(format!("{name} must be a positive number ({v})")))
            })
            .transpose()
    };
    let theta = match parameters
        .map(|p| number(p, "rope_theta"))
        .transpose()?
        .flatten()
    {
        Some(theta) => theta,
        None => number(fields.map, "rope_theta")?.unwrap_or(10_000.0),
    };
    let Some(p) = parameters else {
        return Ok(Rope {
            theta,
            scaling: RopeScaling::Default,
        });
    };
    let kind = p.get("rope_type").or(p.get("type")).and_then(Value::as_str);
    let scaling = match kind {
        None | Some("default") => RopeScaling::Default,
        Some("llama3") => {
            let required = |name: &str| {
                number(p, name)?
                    .ok_or_else(|| fields.bad(format!("llama3 rope scaling without {name}")))
            };
            let (low, high) = (required("low_freq_factor")?, required("high_freq_factor")?);
            if high <= low {
                return Err(fields.bad(format!(
                    "high_freq_factor {high} must exceed low_freq_factor {low}"
                )));
            }
            RopeScaling::Llama3 {
                factor: required("factor")?,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: required("original_max_position_embeddings")?,
            }
        }
        Some(other) => {
            return Err(fields.unsupported(format!(
                "rope type {other:?} (default and llama3 are supported)"
            )));
        }
    };
    Ok(Rope { theta, scaling })
}

/// The GPU's weight type from `torch_dtype` (transformers 4) or `dtype` (5): bf16 and
/// f32 checkpoints run in bf16, fp16 ones in fp16.
fn weight_type(fields: &Fields) -> Result<HalfType, ModelError> {
    let value = fields.get("dtype").or(fields.get("torch_dtype"));
    match value.map(|v| v.as_str()) {
        None | Some(Some("bfloat16" | "float32")) => Ok(HalfType::Bf16),
        Some(Some("float16")) => Ok(HalfType::F16),
        _ => Err(fields.unsupported(format!(
            "dtype {} (bfloat16, float16 and float32 load)",
            value.map_or(Value::Null, Clone::clone)
        ))),
    }
}

#[cfg(test)]
mod tests;
