//! CPU twin of the GEMV and its epilogues: the linear layer and GPT-2's GELU (the residual
//! add and the KV-cache write are plain additions and copies at the call).

use super::dot;

/// `y[b] = x[b] W^T + bias` with W (out_features, in_features): (batch, out_features).
///
/// Output features are split across threads when W is large (the gpt2-xl reference would
/// take seconds per token on one core); each output is the same f64 sum either way.
pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    in_features: usize,
    out_features: usize,
) -> Vec<f32> {
    let batch = x.len() / in_features;
    let mut out = vec![0.0f32; batch * out_features];
    let threads = if out_features * in_features < 1 << 20 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let per_thread = out_features.div_ceil(threads);
    // out is (batch, out_features); each thread fills the columns [first, first + n) of
    // every row, so it takes those columns of every row's slice.
    let mut columns: Vec<Vec<&mut [f32]>> = (0..threads).map(|_| Vec::new()).collect();
    for row in out.chunks_exact_mut(out_features) {
        for (t, part) in row.chunks_mut(per_thread).enumerate() {
            columns[t].push(part);
        }
    }
    std::thread::scope(|scope| {
        for (t, parts) in columns.into_iter().enumerate() {
            scope.spawn(move || {
                let first = t * per_thread;
                for (x_row, part) in x.chunks_exact(in_features).zip(parts) {
                    for (j, y) in part.iter_mut().enumerate() {
                        let o = first + j;
                        let b = bias.map_or(0.0, |b| f64::from(b[o]));
                        *y = (dot(x_row, &w[o * in_features..][..in_features]) + b) as f32;
                    }
                }
            });
        }
    });
    out
}

/// GPT-2's GELU, tanh form.
pub fn gelu_tanh(x: f32) -> f32 {
    let x = f64::from(x);
    let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
    (0.5 * x * (1.0 + u.tanh())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::dot;

    #[test]
    fn threaded_linear_equals_one_thread() {
        // Large enough to be split: 2 rows x (2048 out, 1024 in).
        let (n_in, n_out) = (1024, 2048);
        let x: Vec<f32> = (0..2 * n_in)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..n_out * n_in)
            .map(|i| ((i * 104729) % 997) as f32 / 500.0 - 1.0)
            .collect();
        let bias: Vec<f32> = (0..n_out).map(|i| i as f32 / 1000.0).collect();
        let y = linear(&x, &w, Some(&bias), n_in, n_out);
        for (r, x_row) in x.chunks(n_in).enumerate() {
            for o in [0, 1, n_out / 2, n_out - 1] {
                let expected = (dot(x_row, &w[o * n_in..][..n_in]) + f64::from(bias[o])) as f32;
                assert_eq!(y[r * n_out + o], expected, "row {r} out {o}");
            }
        }
    }

    #[test]
    fn linear_is_x_times_w_transposed_plus_bias() {
        // x (1, 2), W (3, 2).
        let y = linear(
            &[1.0, 2.0],
            &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            Some(&[0.5; 3]),
            2,
            3,
        );
        assert_eq!(y, [1.5, 2.5, 3.5]);
    }

    #[test]
    fn gelu_matches_known_values() {
        assert_eq!(gelu_tanh(0.0), 0.0);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
        assert!((gelu_tanh(-3.0) + 0.003_637_4).abs() < 1e-6);
    }
}
