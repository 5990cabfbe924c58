//! CPU twin of the GEMV with the layernorm before it folded into its weights: what the
//! kernel computes from the folded layer ([`crate::model::fold_layernorm`]), the input's
//! mean and variance taken in one pass over the raw row.

use super::dot;

/// `inv_std * (x W'^T - mean * row_sums) + bias'` for each row of `x` (batch, in), with
/// `W'` (out, in), `bias'` and `row_sums` (out) a folded layer and `mean`, `inv_std` the
/// row's layernorm statistics: (batch, out) outputs before the epilogue.
pub fn gemv_folded_norm(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    row_sums: &[f32],
    in_features: usize,
    eps: f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() / in_features * bias.len());
    for row in x.chunks_exact(in_features) {
        let n = in_features as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let squares = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>();
        let inv_std = 1.0 / (squares / n - mean * mean + f64::from(eps)).sqrt();
        let rows = weight.chunks_exact(in_features).zip(bias).zip(row_sums);
        out.extend(rows.map(|((w, &b), &s)| {
            (inv_std * (dot(row, w) - mean * f64::from(s)) + f64::from(b)) as f32
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{layernorm, linear};

    /// With gamma 1 and beta 0 the fold changes nothing: the twin is layernorm, then the
    /// layer, up to the one-pass moments.
    #[test]
    fn an_unscaled_fold_is_layernorm_then_the_layer() {
        let (n_in, n_out) = (64, 5);
        let x: Vec<f32> = (0..2 * n_in)
            .map(|i| ((i * 37) % 23) as f32 - 9.0)
            .collect();
        let w: Vec<f32> = (0..n_out * n_in)
            .map(|i| ((i * 11) % 7) as f32 / 7.0)
            .collect();
        let bias = [0.5, -1.0, 0.0, 2.0, 0.25];
        let row_sums: Vec<f32> = w.chunks(n_in).map(|r| r.iter().sum()).collect();
        let got = gemv_folded_norm(&x, &w, &bias, &row_sums, n_in, 1e-5);
        let normed = layernorm(&x, &[1.0; 64], &[0.0; 64], n_in, 1e-5);
        let want = linear(&normed, &w, Some(&bias), n_in, n_out);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} against {w}");
        }
    }
}
