//! A Llama-family model's parameters on the host, in its half type ([`HalfBits`]),
//! matrices (out, in) row-major, laid out as the kernels read them: q, k and v stacked
//! into one projection, gate and up into another.

use super::config::Config;
use super::llama_config::LlamaConfig;
use crate::halves::{HalfBits, HalfType};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// One transformer block; d = d_model, hd = head_dim, I = intermediate.
#[derive(Clone, Debug)]
pub struct LlamaLayer {
    /// (d) input_layernorm, the RMSNorm before attention.
    pub attn_norm: Vec<HalfBits>,
    /// ((n_head + 2 n_kv_head) hd, d): q_proj, k_proj, v_proj rows stacked.
    pub qkv: Vec<HalfBits>,
    /// ((n_head + 2 n_kv_head) hd) their biases (Qwen2), stacked alike.
    pub qkv_bias: Option<Vec<HalfBits>>,
    /// (d, n_head hd) o_proj.
    pub o_proj: Vec<HalfBits>,
    /// (d) post_attention_layernorm, the RMSNorm before the MLP.
    pub mlp_norm: Vec<HalfBits>,
    /// (2 I, d): gate_proj rows, then up_proj rows.
    pub gate_up: Vec<HalfBits>,
    /// (d, I) down_proj.
    pub down: Vec<HalfBits>,
}

/// A whole Llama-family model's parameters.
#[derive(Clone, Debug)]
pub struct LlamaWeights {
    /// The shape (`config.llama` is set).
    pub config: Config,
    /// (vocab, d) embed_tokens, also the LM head when tied.
    pub embed: Vec<HalfBits>,
    /// The blocks, in order.
    pub layers: Vec<LlamaLayer>,
    /// (d) the final RMSNorm.
    pub final_norm: Vec<HalfBits>,
    /// (vocab, d) lm_head when not tied to the embedding.
    pub lm_head: Option<Vec<HalfBits>>,
}

impl LlamaWeights {
    /// The Llama family's hyperparameters.
    pub fn llama(&self) -> &LlamaConfig {
        self.config
            .llama
            .as_ref()
            .expect("LlamaWeights hold a Llama config")
    }

    /// Random weights deterministic in `seed`: matrices, embeddings and biases normal
    /// with std 0.02 (transformers' initializer_range), RMSNorm scales normal around 1
    /// with std 0.1 (not all ones, so that a norm's scale that went missing shows). Each
    /// tensor has its own generator, so layers are made in parallel and the result does
    /// not depend on the thread count.
    pub fn random(config: &Config, seed: u64) -> LlamaWeights {
        let llama = config.llama.as_ref().expect("a Llama-family config");
        let half = llama.half;
        let (d, hd, inter) = (llama.d_model, llama.head_dim, llama.intermediate);
        let qkv_rows = (llama.n_head + 2 * llama.n_kv_head) * hd;
        let tensor = |len: usize, stream: u64, mean: f32, std: f32| -> Vec<HalfBits> {
            let mut rng = StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let dist = Normal::new(mean, std).expect("a positive std");
            (0..len)
                .map(|_| HalfBits::from_f32(dist.sample(&mut rng), half))
                .collect()
        };
        let layer = |i: usize| {
            let stream = 16 * (i as u64 + 1);
            LlamaLayer {
                attn_norm: tensor(d, stream, 1.0, 0.1),
                qkv: tensor(qkv_rows * d, stream + 1, 0.0, 0.02),
                qkv_bias: llama
                    .qkv_bias
                    .then(|| tensor(qkv_rows, stream + 2, 0.0, 0.02)),
                o_proj: tensor(d * llama.n_head * hd, stream + 3, 0.0, 0.02),
                mlp_norm: tensor(d, stream + 4, 1.0, 0.1),
                gate_up: tensor(2 * inter * d, stream + 5, 0.0, 0.02),
                down: tensor(d * inter, stream + 6, 0.0, 0.02),
            }
        };
        let (embed, layers, lm_head) = std::thread::scope(|scope| {
            let layers: Vec<_> = (0..llama.n_layer)
                .map(|i| scope.spawn(move || layer(i)))
                .collect();
            let embed = scope.spawn(|| tensor(llama.vocab * d, 1, 0.0, 0.02));
            let lm_head = (!llama.tie_word_embeddings)
                .then(|| scope.spawn(|| tensor(llama.vocab * d, 2, 0.0, 0.02)));
            (
                embed.join().expect("no panic"),
                layers
                    .into_iter()
                    .map(|h| h.join().expect("no panic"))
                    .collect(),
                lm_head.map(|h| h.join().expect("no panic")),
            )
        });
        LlamaWeights {
            config: config.clone(),
            embed,
            layers,
            final_norm: tensor(d, 3, 1.0, 0.1),
            lm_head,
        }
    }

    /// The weights' type.
    pub fn half_type(&self) -> HalfType {
        self.llama().half
    }

    /// Bytes of all parameters (a tied head once).
    pub fn bytes(&self) -> usize {
        2 * self.config.parameters()
    }

    /// The LM head: `lm_head`, or the embedding when tied.
    pub fn head(&self) -> &[HalfBits] {
        self.lm_head.as_deref().unwrap_or(&self.embed)
    }
}

/// A Llama-shaped model of width 256 with two query heads per KV head of 64 and q/k/v
/// biases, for the CPU unit tests and the engine's GPU tests.
pub fn tiny_llama(half: HalfType) -> Config {
    let mut llama = LlamaConfig::preset("qwen2.5-0.5b").expect("a preset");
    llama.n_layer = 2;
    llama.d_model = 256;
    llama.n_head = 4;
    llama.n_kv_head = 2;
    llama.head_dim = 64;
    llama.intermediate = 512;
    llama.vocab = 1000;
    llama.n_positions = 2048;
    llama.half = half;
    llama.eos_token_ids = vec![];
    Config::from_llama(llama)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_are_deterministic_and_shaped() {
        let config = tiny_llama(HalfType::Bf16);
        let (a, b) = (
            LlamaWeights::random(&config, 7),
            LlamaWeights::random(&config, 7),
        );
        assert_eq!(a.layers[1].gate_up, b.layers[1].gate_up);
        assert_ne!(a.layers[0].qkv, a.layers[1].qkv);
        assert_eq!(a.layers[0].qkv.len(), (4 + 2 * 2) * 64 * 256);
        assert_eq!(a.layers[0].qkv_bias.as_ref().unwrap().len(), 8 * 64);
        assert!(a.lm_head.is_none(), "Qwen2.5 0.5B ties its head");
        let values: Vec<f32> = a.embed.iter().map(|h| h.to_f32(HalfType::Bf16)).collect();
        let std = (values.iter().map(|x| x * x).sum::<f32>() / values.len() as f32).sqrt();
        assert!((std - 0.02).abs() < 0.001, "std {std}");
    }
}
