//! The parameters, as the kernels want them: fp16, matrices (out, in) row-major.

use super::config::Config;
use half::f16;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// One transformer block. Shapes beside each field; d = d_model.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// (d) ln_1 scale.
    pub ln_1_gamma: Vec<f16>,
    /// (d) ln_1 shift.
    pub ln_1_beta: Vec<f16>,
    /// (3d, d) c_attn, q k v stacked.
    pub qkv_w: Vec<f16>,
    /// (3d) c_attn bias.
    pub qkv_b: Vec<f16>,
    /// (d, d) attention output projection.
    pub attn_proj_w: Vec<f16>,
    /// (d) its bias.
    pub attn_proj_b: Vec<f16>,
    /// (d) ln_2 scale.
    pub ln_2_gamma: Vec<f16>,
    /// (d) ln_2 shift.
    pub ln_2_beta: Vec<f16>,
    /// (4d, d) mlp c_fc.
    pub fc_w: Vec<f16>,
    /// (4d) its bias.
    pub fc_b: Vec<f16>,
    /// (d, 4d) mlp c_proj.
    pub mlp_proj_w: Vec<f16>,
    /// (d) its bias.
    pub mlp_proj_b: Vec<f16>,
}

/// A whole model's parameters; the LM head is `wte` (tied).
#[derive(Clone, Debug)]
pub struct Weights {
    /// The shape.
    pub config: Config,
    /// (vocab, d) token embeddings, also the LM head.
    pub wte: Vec<f16>,
    /// (n_positions, d) position embeddings.
    pub wpe: Vec<f16>,
    /// The blocks, in order.
    pub layers: Vec<LayerWeights>,
    /// (d) final layernorm scale.
    pub ln_f_gamma: Vec<f16>,
    /// (d) final layernorm shift.
    pub ln_f_beta: Vec<f16>,
}

impl Weights {
    /// GPT-2's initialization, deterministic in `seed`: matrices and embeddings normal
    /// with std 0.02, biases 0, layernorm scale 1 and shift 0. Each tensor has its own
    /// generator (seeded from `seed` and its index), so layers are made in parallel and
    /// the result does not depend on the thread count.
    pub fn random(config: &Config, seed: u64) -> Weights {
        let d = config.d_model;
        let normal = |len: usize, stream: u64| -> Vec<f16> {
            let mut rng = StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let dist = Normal::new(0.0f32, 0.02).unwrap();
            (0..len)
                .map(|_| f16::from_f32(dist.sample(&mut rng)))
                .collect()
        };
        let constant = |len: usize, v: f32| vec![f16::from_f32(v); len];
        let layer = |i: usize| {
            let stream = 16 * (i as u64 + 1);
            LayerWeights {
                ln_1_gamma: constant(d, 1.0),
                ln_1_beta: constant(d, 0.0),
                qkv_w: normal(3 * d * d, stream),
                qkv_b: constant(3 * d, 0.0),
                attn_proj_w: normal(d * d, stream + 1),
                attn_proj_b: constant(d, 0.0),
                ln_2_gamma: constant(d, 1.0),
                ln_2_beta: constant(d, 0.0),
                fc_w: normal(4 * d * d, stream + 2),
                fc_b: constant(4 * d, 0.0),
                mlp_proj_w: normal(4 * d * d, stream + 3),
                mlp_proj_b: constant(d, 0.0),
            }
        };
        let layers = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..config.n_layer)
                .map(|i| scope.spawn(move || layer(i)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        Weights {
            config: config.clone(),
            wte: normal(config.vocab * d, 1),
            wpe: normal(config.n_positions * d, 2),
            layers,
            ln_f_gamma: constant(d, 1.0),
            ln_f_beta: constant(d, 0.0),
        }
    }

    /// Bytes of all parameters in fp16 (the tied embedding once).
    pub fn bytes(&self) -> usize {
        2 * self.config.parameters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tiny;

    #[test]
    fn random_weights_are_deterministic_and_shaped() {
        let config = tiny();
        let a = Weights::random(&config, 7);
        let b = Weights::random(&config, 7);
        let c = Weights::random(&config, 8);
        assert_eq!(a.wte, b.wte);
        assert_eq!(a.layers[1].fc_w, b.layers[1].fc_w);
        assert_ne!(a.wte, c.wte);
        assert_ne!(
            a.layers[0].qkv_w, a.layers[1].qkv_w,
            "layers share a stream"
        );
        assert_eq!(a.layers[0].qkv_w.len(), 3 * 128 * 128);
        assert_eq!(a.layers[0].mlp_proj_w.len(), 4 * 128 * 128);
        let std =
            (a.wte.iter().map(|x| x.to_f32().powi(2)).sum::<f32>() / a.wte.len() as f32).sqrt();
        assert!((std - 0.02).abs() < 0.001, "std {std}");
    }
}
