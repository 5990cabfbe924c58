//! Folding each block's input layernorms (ln_1, ln_2) into the linear layers that read
//! them (QKV, fc), so that decode at small batches runs no layernorm kernel there.
//!
//! `LN(x) = (x - mean) * inv_std * gamma + beta`, so for a linear layer `W x + b`:
//! `W LN(x) + b = inv_std * (W' x - mean * s) + b'` with `W' = W diag(gamma)`,
//! `b' = b + W beta` and `s[j] = sum_k W'[j][k]`. The GEMV kernel
//! (`FoldedNormGemvParams`) takes `mean` and `inv_std` of x from the same loads as its dot
//! products, at batches 1 to 8; its CPU twin is [`crate::reference::gemv_folded_norm`].
//! From batch 9 the engine runs a layernorm with unit scale and zero shift and a plain
//! GEMV over the same `W'` and `b'`.

use super::error::ModelError;
use super::weights::{LayerWeights, Weights};
use half::f16;
use half::slice::HalfFloatSliceExt;

/// A linear layer with the layernorm before it folded in.
pub struct FoldedLinear {
    /// (out, in) `W diag(gamma)`, each product rounded to fp16 once.
    pub weight: Vec<f16>,
    /// (out) `b + W beta`, summed in f64, rounded to fp16.
    pub bias: Vec<f16>,
    /// (out) sum of each row of `weight` (as stored), f64 rounded to f32.
    pub row_sums: Vec<f32>,
}

/// One block's folded layers.
pub struct FoldedLayer {
    /// ln_1 into the QKV projection.
    pub qkv: FoldedLinear,
    /// ln_2 into the MLP's first layer.
    pub fc: FoldedLinear,
}

/// Folds every block, layers in parallel.
pub fn fold_layers(weights: &Weights) -> Result<Vec<FoldedLayer>, ModelError> {
    let fold_one = |(i, l): (usize, &LayerWeights)| -> Result<FoldedLayer, ModelError> {
        Ok(FoldedLayer {
            qkv: fold_layernorm(&l.qkv_w, &l.qkv_b, &l.ln_1_gamma, &l.ln_1_beta)
                .map_err(|value| overflow(i, "attn.c_attn", value))?,
            fc: fold_layernorm(&l.fc_w, &l.fc_b, &l.ln_2_gamma, &l.ln_2_beta)
                .map_err(|value| overflow(i, "mlp.c_fc", value))?,
        })
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = weights.layers.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = weights
            .layers
            .chunks(per_thread)
            .enumerate()
            .map(|(c, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, l)| fold_one((c * per_thread + i, l)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut layers = Vec::with_capacity(weights.layers.len());
        for handle in handles {
            layers.extend(handle.join().expect("folding does not panic")?);
        }
        Ok(layers)
    })
}

fn overflow(layer: usize, name: &str, value: f32) -> ModelError {
    ModelError::FoldOverflow {
        norm: "layernorm",
        name: format!("h.{layer}.{name}"),
        value,
    }
}

/// Folds the layernorm `(gamma, beta)` into the linear layer `(weight (out, in), bias)`.
/// Fails with the first folded value fp16 cannot hold.
pub fn fold_layernorm(
    weight: &[f16],
    bias: &[f16],
    gamma: &[f16],
    beta: &[f16],
) -> Result<FoldedLinear, f32> {
    let n_in = gamma.len();
    assert_eq!(beta.len(), n_in, "gamma and beta differ in length");
    assert_eq!(
        weight.len(),
        bias.len() * n_in,
        "weight is not (bias, gamma)"
    );
    let gamma: Vec<f32> = gamma.iter().map(|g| g.to_f32()).collect();
    let beta: Vec<f32> = beta.iter().map(|b| b.to_f32()).collect();
    let mut folded = FoldedLinear {
        weight: vec![f16::ZERO; weight.len()],
        bias: Vec::with_capacity(bias.len()),
        row_sums: Vec::with_capacity(bias.len()),
    };
    // gpt2-xl's 48 layers take about 10 core-seconds (fold_layers runs layers in
    // parallel): the f64 sums, kept for the row sums' accuracy, dominate.
    let (mut row_f32, mut stored_f32) = (vec![0.0f32; n_in], vec![0.0f32; n_in]);
    let rows = weight.chunks_exact(n_in).zip(bias);
    for ((row, b), out) in rows.zip(folded.weight.chunks_exact_mut(n_in)) {
        row.convert_to_f32_slice(&mut row_f32);
        // Exact in f32 (11 x 11 significant bits), rounded once to fp16.
        let products: Vec<f32> = row_f32.iter().zip(&gamma).map(|(w, g)| w * g).collect();
        out.convert_from_f32_slice(&products);
        if let Some(at) = out.iter().position(|v| !v.is_finite()) {
            return Err(products[at]);
        }
        out.convert_to_f32_slice(&mut stored_f32);
        folded
            .row_sums
            .push(stored_f32.iter().map(|&v| f64::from(v)).sum::<f64>() as f32);
        let shifted = f64::from(b.to_f32())
            + row_f32
                .iter()
                .zip(&beta)
                .map(|(&w, &beta)| f64::from(w) * f64::from(beta))
                .sum::<f64>();
        let stored_bias = f16::from_f64(shifted);
        if !stored_bias.is_finite() {
            return Err(shifted as f32);
        }
        folded.bias.push(stored_bias);
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, len: usize, scale: f32) -> Vec<f16> {
        (0..len)
            .map(|_| f16::from_f32(rng.random_range(-scale..scale)))
            .collect()
    }

    #[test]
    fn folded_layer_computes_layernorm_then_the_layer() {
        let mut rng = StdRng::seed_from_u64(rand::random());
        let (n_in, n_out, eps) = (256, 96, 1e-5);
        let weight = random(&mut rng, n_in * n_out, 0.1);
        let bias = random(&mut rng, n_out, 0.5);
        let gamma = random(&mut rng, n_in, 2.0);
        let beta = random(&mut rng, n_in, 0.5);
        // A residual stream with GPT-2's shape: a non-zero mean and one large outlier.
        let mut x: Vec<f32> = (0..n_in)
            .map(|_| rng.random_range(-3.0..3.0) + 0.7)
            .collect();
        x[17] = 300.0;
        let folded = fold_layernorm(&weight, &bias, &gamma, &beta).unwrap();
        let f32s = |v: &[f16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
        // The folded GEMV's twin over the folded layer, against the CPU reference over
        // the unfolded parameters: layernorm, then the layer.
        let got = reference::gemv_folded_norm(
            &x,
            &f32s(&folded.weight),
            &f32s(&folded.bias),
            &folded.row_sums,
            n_in,
            eps,
        );
        let normed = reference::layernorm(&x, &f32s(&gamma), &f32s(&beta), n_in, eps);
        let want = reference::linear(&normed, &f32s(&weight), Some(&f32s(&bias)), n_in, n_out);
        let error = reference::relative_l2(&got, &want);
        // Only the fp16 roundings of W diag(gamma) and of the folded bias differ.
        assert!(error < 1e-3, "relative L2 error {error}");
    }

    #[test]
    fn an_overflowing_layer_is_named_in_one_line() {
        let mut weights = Weights::random(&super::super::config::tiny(), 3);
        weights.layers[1].ln_2_gamma[5] = f16::from_f32(60_000.0);
        weights.layers[1].fc_w[5] = f16::from_f32(2.0);
        let message = fold_layers(&weights).err().unwrap().to_string();
        assert!(
            message.starts_with("h.1.mlp.c_fc: folding the layernorm") && !message.contains('\n'),
            "{message}"
        );
    }

    #[test]
    fn a_fold_that_overflows_fp16_is_an_error() {
        let weight = vec![f16::from_f32(1000.0); 4];
        let (bias, beta) = (vec![f16::ZERO; 1], vec![f16::ZERO; 4]);
        let gamma = vec![f16::from_f32(100.0); 4];
        assert_eq!(
            fold_layernorm(&weight, &bias, &gamma, &beta).err(),
            Some(100_000.0)
        );
    }
}
