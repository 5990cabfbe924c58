//! CPU twin of decode attention over the KV cache.

use super::dot;

/// The shape of one layer of the KV cache, (batch, n_kv_head, capacity, head_dim), and
/// the query heads that read it.
#[derive(Clone, Copy, Debug)]
pub struct KvShape {
    /// Query heads.
    pub n_head: usize,
    /// Key and value heads; query head h reads KV head `h / (n_head / n_kv_head)`.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Positions per sequence.
    pub capacity: usize,
}

/// Decode attention for each sequence and query head: `softmax(q K^T * scale) V` over
/// cache positions `0..lengths[b]` of its KV head. q is (batch, n_head * head_dim), the
/// caches `shape`; the result is (batch, n_head * head_dim).
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
        n_kv_head,
        head_dim,
        capacity,
    } = shape;
    let group = n_head / n_kv_head;
    let mut out = vec![0.0; q.len()];
    for (b, &len) in lengths.iter().enumerate() {
        for h in 0..n_head {
            let at = (b * n_head + h) * head_dim;
            let q_row = &q[at..][..head_dim];
            let cache = (b * n_kv_head + h / group) * capacity * head_dim;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_heads_of_a_group_read_their_kv_head() {
        // Two query heads on one KV head of dim 1, one position: both return its value.
        let shape = KvShape {
            n_head: 2,
            n_kv_head: 1,
            head_dim: 1,
            capacity: 1,
        };
        let out = attention(&[1.0, -1.0], &[2.0], &[7.0], &[1], shape, 1.0);
        assert_eq!(out, [7.0, 7.0]);
    }

    #[test]
    fn attention_over_one_position_returns_its_value() {
        // One sequence, one head of dim 2, capacity 3: only position 0 is attended to.
        let v = [0.5, -1.5, 9.0, 9.0, 9.0, 9.0];
        let shape = KvShape {
            n_head: 1,
            n_kv_head: 1,
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
            n_kv_head: 1,
            head_dim: 2,
            capacity: 2,
        };
        let out = attention(&[1.0, 1.0], &k, &v, &[2], shape, 1.0);
        assert_eq!(out, [3.0, 1.0]);
    }
}
