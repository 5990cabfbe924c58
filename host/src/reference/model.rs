//! GPT-2 on the CPU from the kernel twins (embedding, layernorm, linear layers, attention,
//! LM head): f32 weights and activations, f64 sums. The engine's logits are checked
//! against it; it is checked against itself, incremental decoding with a cache against a
//! full causal forward pass.

use super::{KvShape, attention, embedding, gelu_tanh, layernorm, linear, lm_head};
use crate::model::{Config, Weights};

/// One block's parameters in f32, shapes as in [`crate::model::LayerWeights`].
struct Layer {
    ln_1: (Vec<f32>, Vec<f32>),
    qkv: (Vec<f32>, Vec<f32>),
    attn_proj: (Vec<f32>, Vec<f32>),
    ln_2: (Vec<f32>, Vec<f32>),
    fc: (Vec<f32>, Vec<f32>),
    mlp_proj: (Vec<f32>, Vec<f32>),
}

/// The reference model: the weights widened to f32 once.
pub struct ReferenceModel {
    config: Config,
    wte: Vec<f32>,
    wpe: Vec<f32>,
    layers: Vec<Layer>,
    ln_f: (Vec<f32>, Vec<f32>),
}

/// One sequence's keys and values so far: per layer, (positions, d_model) each.
#[derive(Default)]
pub struct SequenceCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl SequenceCache {
    /// Tokens seen so far: the position of the next one.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token was seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `n_layer` layers' rows.
    pub(super) fn ensure_layers(&mut self, n_layer: usize) {
        if self.k.is_empty() {
            self.k = vec![Vec::new(); n_layer];
            self.v = vec![Vec::new(); n_layer];
        }
    }

    /// Layer `l`'s keys and values.
    pub(super) fn layer_mut(&mut self, l: usize) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.k[l], &mut self.v[l])
    }

    /// One more token seen.
    pub(super) fn advance(&mut self) {
        self.len += 1;
    }
}

fn widen(v: &[half::f16]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

impl ReferenceModel {
    /// Widens `weights` to f32.
    pub fn new(weights: &Weights) -> Self {
        let pair = |a: &[half::f16], b: &[half::f16]| (widen(a), widen(b));
        ReferenceModel {
            config: weights.config.clone(),
            wte: widen(&weights.wte),
            wpe: widen(&weights.wpe),
            layers: weights
                .layers
                .iter()
                .map(|l| Layer {
                    ln_1: pair(&l.ln_1_gamma, &l.ln_1_beta),
                    qkv: pair(&l.qkv_w, &l.qkv_b),
                    attn_proj: pair(&l.attn_proj_w, &l.attn_proj_b),
                    ln_2: pair(&l.ln_2_gamma, &l.ln_2_beta),
                    fc: pair(&l.fc_w, &l.fc_b),
                    mlp_proj: pair(&l.mlp_proj_w, &l.mlp_proj_b),
                })
                .collect(),
            ln_f: pair(&weights.ln_f_gamma, &weights.ln_f_beta),
        }
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds `token` at the cache's next position; returns the logits (vocab) there.
    pub fn step(&self, cache: &mut SequenceCache, token: u32) -> Vec<f32> {
        let c = &self.config;
        let d = c.d_model;
        assert!((token as usize) < c.vocab && cache.len < c.n_positions);
        if cache.k.is_empty() {
            cache.k = vec![Vec::new(); c.n_layer];
            cache.v = vec![Vec::new(); c.n_layer];
        }
        let position = cache.len;
        let mut x = embedding(&self.wte, &self.wpe, &[token], &[position as u32], d);
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layernorm(&x, &layer.ln_1.0, &layer.ln_1.1, d, c.layer_norm_eps);
            let qkv = linear(&h, &layer.qkv.0, Some(&layer.qkv.1), d, 3 * d);
            cache.k[l].extend_from_slice(&qkv[d..2 * d]);
            cache.v[l].extend_from_slice(&qkv[2 * d..]);
            let a = self.attend(&qkv[..d], &cache.k[l], &cache.v[l], position + 1);
            self.mlp_and_residuals(layer, &mut x, &a);
        }
        cache.len += 1;
        self.logits(&x)
    }

    /// The logits at every position of `tokens`, computed without a cache: each layer
    /// runs over all positions at once, position t attending to 0..=t.
    pub fn forward_full(&self, tokens: &[u32]) -> Vec<Vec<f32>> {
        let c = &self.config;
        let d = c.d_model;
        let n = tokens.len();
        let positions: Vec<u32> = (0..n as u32).collect();
        let mut xs: Vec<Vec<f32>> = embedding(&self.wte, &self.wpe, tokens, &positions, d)
            .chunks_exact(d)
            .map(<[f32]>::to_vec)
            .collect();
        for layer in &self.layers {
            let all: Vec<f32> = xs.concat();
            let h = layernorm(&all, &layer.ln_1.0, &layer.ln_1.1, d, c.layer_norm_eps);
            let qkv = linear(&h, &layer.qkv.0, Some(&layer.qkv.1), d, 3 * d);
            let rows: Vec<&[f32]> = qkv.chunks_exact(3 * d).collect();
            let k: Vec<f32> = rows
                .iter()
                .flat_map(|r| r[d..2 * d].iter().copied())
                .collect();
            let v: Vec<f32> = rows
                .iter()
                .flat_map(|r| r[2 * d..].iter().copied())
                .collect();
            for t in 0..n {
                let a = self.attend(&rows[t][..d], &k, &v, t + 1);
                self.mlp_and_residuals(layer, &mut xs[t], &a);
            }
        }
        xs.iter().map(|x| self.logits(x)).collect()
    }

    /// Multi-head attention of one query over the first `len` positions of k and v
    /// (positions, d_model), through the attention kernel's twin: the rows laid out as
    /// the KV cache holds them, (n_head, len, head_dim).
    fn attend(&self, q: &[f32], k: &[f32], v: &[f32], len: usize) -> Vec<f32> {
        let c = &self.config;
        let shape = KvShape {
            n_head: c.n_head,
            n_kv_head: c.n_head,
            head_dim: c.head_dim(),
            capacity: len,
        };
        let (k, v) = (head_major(k, len, shape), head_major(v, len, shape));
        let scale = 1.0 / (c.head_dim() as f32).sqrt();
        attention(q, &k, &v, &[len as u32], shape, scale)
    }

    /// x += attn_proj(a); x += mlp(ln_2(x)).
    fn mlp_and_residuals(&self, layer: &Layer, x: &mut [f32], a: &[f32]) {
        let c = &self.config;
        let d = c.d_model;
        let proj = linear(a, &layer.attn_proj.0, Some(&layer.attn_proj.1), d, d);
        x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);
        let h = layernorm(x, &layer.ln_2.0, &layer.ln_2.1, d, c.layer_norm_eps);
        let f: Vec<f32> = linear(&h, &layer.fc.0, Some(&layer.fc.1), d, 4 * d)
            .into_iter()
            .map(gelu_tanh)
            .collect();
        let m = linear(&f, &layer.mlp_proj.0, Some(&layer.mlp_proj.1), 4 * d, d);
        x.iter_mut().zip(&m).for_each(|(x, p)| *x += p);
    }

    fn logits(&self, x: &[f32]) -> Vec<f32> {
        let c = &self.config;
        let h = layernorm(x, &self.ln_f.0, &self.ln_f.1, c.d_model, c.layer_norm_eps);
        lm_head(&h, &self.wte, c.d_model)
    }
}

/// The first `len` rows of `rows` (positions, n_kv_head * head_dim) as one sequence of
/// the KV cache: (n_kv_head, len, head_dim).
pub(super) fn head_major(rows: &[f32], len: usize, shape: KvShape) -> Vec<f32> {
    let (n_head, hd) = (shape.n_kv_head, shape.head_dim);
    let mut out = Vec::with_capacity(n_head * len * hd);
    for h in 0..n_head {
        for t in 0..len {
            out.extend_from_slice(&rows[(t * n_head + h) * hd..][..hd]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_decoding_equals_a_full_causal_forward() {
        let config = Config {
            n_layer: 2,
            n_head: 2,
            d_model: 128,
            vocab: 200,
            n_positions: 32,
            layer_norm_eps: 1e-5,
            eos_token_ids: vec![],
            llama: None,
        };
        // Random weights with non-zero biases and norms, so every parameter matters.
        let mut weights = Weights::random(&config, 5);
        let bumped = Weights::random(&config, 6);
        for (l, b) in weights.layers.iter_mut().zip(&bumped.layers) {
            l.qkv_b = b.qkv_w[..l.qkv_b.len()].to_vec();
            l.fc_b = b.fc_w[..l.fc_b.len()].to_vec();
            l.ln_2_beta = b.attn_proj_w[..l.ln_2_beta.len()].to_vec();
        }
        let model = ReferenceModel::new(&weights);
        let tokens = [3, 199, 0, 42, 42, 17, 150, 8, 9, 100];
        let full = model.forward_full(&tokens);
        let mut cache = SequenceCache::default();
        for (t, &token) in tokens.iter().enumerate() {
            let step = model.step(&mut cache, token);
            let diff = step
                .iter()
                .zip(&full[t])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "position {t}: largest difference {diff}");
        }
        assert_eq!(cache.len(), tokens.len());
    }
}
