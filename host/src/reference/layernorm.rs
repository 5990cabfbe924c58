//! CPU twin of the layernorm kernel.

/// LayerNorm of each row of `x` (batch, d_model), biased variance as GPT-2.
pub fn layernorm(x: &[f32], gamma: &[f32], beta: &[f32], d_model: usize, eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d_model) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d_model as f64;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / d_model as f64;
        let inv_std = 1.0 / (var + f64::from(eps)).sqrt();
        out.extend(row.iter().zip(gamma).zip(beta).map(|((&v, &g), &b)| {
            ((f64::from(v) - mean) * inv_std * f64::from(g) + f64::from(b)) as f32
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layernorm_rows_have_zero_mean_and_unit_variance() {
        let x = [1.0, 2.0, 3.0, 4.0, -10.0, 0.0, 10.0, 20.0];
        let out = layernorm(&x, &[1.0; 4], &[0.0; 4], 4, 0.0);
        for row in out.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{row:?}");
        }
    }
}
