//! A Llama-family model (Llama 3, Qwen2.5) on the CPU from the kernel twins (RMSNorm,
//! linear layers, rotary embedding, grouped-query attention, SwiGLU, LM head): f32
//! weights and activations, f64 sums. The engine's logits are checked against it; it is
//! checked against itself, incremental decoding against a full causal forward pass.

use super::model::{SequenceCache, head_major};
use super::{KvShape, QkvHeads, attention, linear, lm_head, rmsnorm, rope_row, swiglu};
use crate::halves::{self, HalfBits};
use crate::model::{Config, LlamaConfig, LlamaWeights};

/// One block's parameters in f32, shapes as in [`crate::model::LlamaLayer`].
struct Layer {
    attn_norm: Vec<f32>,
    qkv: Vec<f32>,
    qkv_bias: Option<Vec<f32>>,
    o_proj: Vec<f32>,
    mlp_norm: Vec<f32>,
    gate_up: Vec<f32>,
    down: Vec<f32>,
}

/// The reference model: the weights widened to f32 once.
pub struct LlamaReference {
    config: Config,
    embed: Vec<f32>,
    layers: Vec<Layer>,
    final_norm: Vec<f32>,
    head: Vec<f32>,
}

impl LlamaReference {
    /// Widens `weights` to f32.
    pub fn new(weights: &LlamaWeights) -> Self {
        let half = weights.half_type();
        let widen = |v: &[HalfBits]| halves::to_f32(v, half);
        LlamaReference {
            config: weights.config.clone(),
            embed: widen(&weights.embed),
            layers: weights
                .layers
                .iter()
                .map(|l| Layer {
                    attn_norm: widen(&l.attn_norm),
                    qkv: widen(&l.qkv),
                    qkv_bias: l.qkv_bias.as_deref().map(widen),
                    o_proj: widen(&l.o_proj),
                    mlp_norm: widen(&l.mlp_norm),
                    gate_up: widen(&l.gate_up),
                    down: widen(&l.down),
                })
                .collect(),
            final_norm: widen(&weights.final_norm),
            head: widen(weights.head()),
        }
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn llama(&self) -> &LlamaConfig {
        self.config.llama.as_ref().expect("a Llama config")
    }

    fn heads(&self) -> QkvHeads {
        let l = self.llama();
        QkvHeads {
            n_head: l.n_head,
            n_kv_head: l.n_kv_head,
            head_dim: l.head_dim,
        }
    }

    /// Feeds `token` at the cache's next position; returns the logits (vocab) there.
    pub fn step(&self, cache: &mut SequenceCache, token: u32) -> Vec<f32> {
        let (c, d) = (&self.config, self.config.d_model);
        let position = cache.len();
        assert!((token as usize) < c.vocab && position < c.n_positions);
        cache.ensure_layers(c.n_layer);
        let mut x = self.embed[token as usize * d..][..d].to_vec();
        let angles = self.angles(position);
        for (l, layer) in self.layers.iter().enumerate() {
            let (q, k, v) = self.rotated_qkv(layer, &x, &angles);
            let (keys, values) = cache.layer_mut(l);
            keys.extend_from_slice(&k);
            values.extend_from_slice(&v);
            let a = self.attend(&q, keys, values, position + 1);
            self.mlp_and_residuals(layer, &mut x, &a);
        }
        cache.advance();
        self.logits(&x)
    }

    /// The logits at every position of `tokens`, computed without a cache: each layer
    /// runs over all positions, position t attending to 0..=t.
    pub fn forward_full(&self, tokens: &[u32]) -> Vec<Vec<f32>> {
        let d = self.config.d_model;
        let mut xs: Vec<Vec<f32>> = tokens
            .iter()
            .map(|&t| self.embed[t as usize * d..][..d].to_vec())
            .collect();
        let angles: Vec<Vec<f32>> = (0..tokens.len()).map(|t| self.angles(t)).collect();
        for layer in &self.layers {
            let rows: Vec<_> = xs
                .iter()
                .zip(&angles)
                .map(|(x, angles)| self.rotated_qkv(layer, x, angles))
                .collect();
            let k: Vec<f32> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
            let v: Vec<f32> = rows.iter().flat_map(|r| r.2.iter().copied()).collect();
            for (t, x) in xs.iter_mut().enumerate() {
                let a = self.attend(&rows[t].0, &k, &v, t + 1);
                self.mlp_and_residuals(layer, x, &a);
            }
        }
        xs.iter().map(|x| self.logits(x)).collect()
    }

    /// The rotary (cos, sin) pairs of `position`: a one-row table.
    fn angles(&self, position: usize) -> Vec<f32> {
        self.llama().rope.row(self.heads().head_dim, position)
    }

    /// RMSNorm, the QKV projection with its bias, q and k rotated by `angles` (the
    /// position's row of the rotary table).
    fn rotated_qkv(
        &self,
        layer: &Layer,
        x: &[f32],
        angles: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (d, heads) = (self.config.d_model, self.heads());
        let h = rmsnorm(x, Some(&layer.attn_norm), d, self.config.layer_norm_eps);
        let qkv = linear(&h, &layer.qkv, layer.qkv_bias.as_deref(), d, heads.width());
        rope_row(&qkv, heads, angles, 0)
    }

    /// Grouped-query attention of one query over the first `len` rows of k and v
    /// (positions, n_kv_head * head_dim), laid out as the KV cache holds them.
    fn attend(&self, q: &[f32], k: &[f32], v: &[f32], len: usize) -> Vec<f32> {
        let heads = self.heads();
        let shape = KvShape {
            n_head: heads.n_head,
            n_kv_head: heads.n_kv_head,
            head_dim: heads.head_dim,
            capacity: len,
        };
        let (k, v) = (head_major(k, len, shape), head_major(v, len, shape));
        let scale = 1.0 / (heads.head_dim as f32).sqrt();
        attention(q, &k, &v, &[len as u32], shape, scale)
    }

    /// x += o_proj(a); x += down(swiglu(gate_up(rmsnorm(x)))).
    fn mlp_and_residuals(&self, layer: &Layer, x: &mut [f32], a: &[f32]) {
        let (d, l) = (self.config.d_model, self.llama());
        let proj = linear(a, &layer.o_proj, None, l.n_head * l.head_dim, d);
        x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);
        let h = rmsnorm(x, Some(&layer.mlp_norm), d, self.config.layer_norm_eps);
        let gate_up = linear(&h, &layer.gate_up, None, d, 2 * l.intermediate);
        let m = linear(
            &swiglu(&gate_up, l.intermediate),
            &layer.down,
            None,
            l.intermediate,
            d,
        );
        x.iter_mut().zip(&m).for_each(|(x, p)| *x += p);
    }

    fn logits(&self, x: &[f32]) -> Vec<f32> {
        let c = &self.config;
        let h = rmsnorm(x, Some(&self.final_norm), c.d_model, c.layer_norm_eps);
        lm_head(&h, &self.head, c.d_model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::halves::HalfType;
    use crate::model::tiny_llama;

    #[test]
    fn incremental_decoding_equals_a_full_causal_forward() {
        let weights = LlamaWeights::random(&tiny_llama(HalfType::Bf16), 11);
        let model = LlamaReference::new(&weights);
        let tokens = [5, 999, 0, 17, 17, 300];
        let full = model.forward_full(&tokens);
        let mut cache = SequenceCache::default();
        for (t, &token) in tokens.iter().enumerate() {
            let logits = model.step(&mut cache, token);
            let error = super::super::relative_l2(&logits, &full[t]);
            assert!(error < 1e-5, "position {t}: {error}");
        }
    }
}
