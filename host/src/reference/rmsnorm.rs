//! CPU twin of the RMSNorm kernel.

/// RMSNorm of each row of `x` (batch, d_model): `x / sqrt(mean(x^2) + eps) * gamma`
/// (gamma `None`: 1).
pub fn rmsnorm(x: &[f32], gamma: Option<&[f32]>, d_model: usize, eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d_model) {
        let mean_square = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / d_model as f64;
        let inv_rms = 1.0 / (mean_square + f64::from(eps)).sqrt();
        out.extend(row.iter().enumerate().map(|(i, &v)| {
            let g = gamma.map_or(1.0, |g| f64::from(g[i]));
            (f64::from(v) * inv_rms * g) as f32
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmsnorm_rows_have_unit_mean_square_times_gamma() {
        let x = [3.0, -4.0, 0.0, 0.0];
        let out = rmsnorm(&x, Some(&[1.0, 2.0, 1.0, 1.0]), 4, 0.0);
        // mean square 25 / 4: rms 2.5.
        assert_eq!(out, [1.2, -3.2, 0.0, 0.0]);
    }
}
