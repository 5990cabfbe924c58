//! CPU reference of every kernel, in f32 data with f64 accumulation: the twin each GPU
//! kernel is tested against. Argument order and shapes follow the kernels' abi structs.
//! [`model`] builds the whole GPT-2 forward pass from them.

pub mod model;

/// Accumulates in f64: the reference must be more precise than what it checks.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// `out[b] = wte[tokens[b]] + wpe[positions[b]]`, (batch, d_model).
pub fn embedding(
    wte: &[f32],
    wpe: &[f32],
    tokens: &[u32],
    positions: &[u32],
    d_model: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(tokens.len() * d_model);
    for (&token, &position) in tokens.iter().zip(positions) {
        let t = &wte[token as usize * d_model..][..d_model];
        let p = &wpe[position as usize * d_model..][..d_model];
        out.extend(t.iter().zip(p).map(|(a, b)| a + b));
    }
    out
}

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

/// The shape of one layer of the KV cache: (batch, n_head, capacity, head_dim).
#[derive(Clone, Copy, Debug)]
pub struct KvShape {
    /// Heads.
    pub n_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Positions per sequence.
    pub capacity: usize,
}

/// Decode attention for each sequence and head: `softmax(q K^T * scale) V` over cache
/// positions `0..lengths[b]`. q is (batch, n_head * head_dim), the caches `shape`; the
/// result is (batch, n_head * head_dim).
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    lengths: &[u32],
    shape: KvShape,
    scale: f32,
) -> Vec<f32> {
    let KvShape {
        n_head,
        head_dim,
        capacity,
    } = shape;
    let mut out = vec![0.0; q.len()];
    for (b, &len) in lengths.iter().enumerate() {
        for h in 0..n_head {
            let at = (b * n_head + h) * head_dim;
            let q_row = &q[at..][..head_dim];
            let cache = (b * n_head + h) * capacity * head_dim;
            let scores: Vec<f64> = (0..len as usize)
                .map(|t| dot(q_row, &k[cache + t * head_dim..][..head_dim]) * f64::from(scale))
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = weights.iter().sum();
            for d in 0..head_dim {
                let acc: f64 = weights
                    .iter()
                    .enumerate()
                    .map(|(t, w)| w * f64::from(v[cache + t * head_dim + d]))
                    .sum();
                out[at + d] = (acc / sum) as f32;
            }
        }
    }
    out
}

/// Logits over the tied embedding: `x[b] wte^T`, (batch, vocab).
pub fn lm_head(x: &[f32], wte: &[f32], d_model: usize) -> Vec<f32> {
    linear(x, wte, None, d_model, wte.len() / d_model)
}

/// ||out - reference|| / ||reference|| in f64; infinite if `out` holds a NaN (an element
/// nothing wrote) or the lengths differ.
pub fn relative_l2(out: &[f32], reference: &[f32]) -> f64 {
    if out.len() != reference.len() || out.iter().any(|x| x.is_nan()) {
        return f64::INFINITY;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&o, &r) in out.iter().zip(reference) {
        diff += (f64::from(o) - f64::from(r)).powi(2);
        norm += f64::from(r).powi(2);
    }
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// Index of the largest value, the lowest index among equals.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Largest minus second largest value: where it is small, rounding may pick either.
pub fn top2_gap(row: &[f32]) -> f32 {
    let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in row {
        if v > first {
            second = first;
            first = v;
        } else if v > second {
            second = v;
        }
    }
    first - second
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

    #[test]
    fn attention_over_one_position_returns_its_value() {
        // One sequence, one head of dim 2, capacity 3: only position 0 is attended to.
        let v = [0.5, -1.5, 9.0, 9.0, 9.0, 9.0];
        let shape = KvShape {
            n_head: 1,
            head_dim: 2,
            capacity: 3,
        };
        let out = attention(&[1.0, 2.0], &[3.0; 6], &v, &[1], shape, 0.5);
        assert_eq!(out, [0.5, -1.5]);
    }

    #[test]
    fn attention_weights_equal_scores_equally() {
        let k = [1.0, 0.0, 1.0, 0.0];
        let v = [2.0, 0.0, 4.0, 2.0];
        let shape = KvShape {
            n_head: 1,
            head_dim: 2,
            capacity: 2,
        };
        let out = attention(&[1.0, 1.0], &k, &v, &[2], shape, 1.0);
        assert_eq!(out, [3.0, 1.0]);
    }

    #[test]
    fn gelu_matches_known_values() {
        assert_eq!(gelu_tanh(0.0), 0.0);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
        assert!((gelu_tanh(-3.0) + 0.003_637_4).abs() < 1e-6);
    }

    #[test]
    fn argmax_prefers_the_lowest_index_among_equals() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(top2_gap(&[1.0, 3.0, 2.5]), 0.5);
    }

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
}
