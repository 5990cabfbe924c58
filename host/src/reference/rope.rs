//! CPU twin of the rotary embedding and cache write (`rope_kv`).

/// The heads of one QKV projection row: (n_head + 2 n_kv_head) heads of `head_dim`, q
/// heads first, then k, then v.
#[derive(Clone, Copy, Debug)]
pub struct QkvHeads {
    /// Query heads.
    pub n_head: usize,
    /// Key and value heads.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
}

impl QkvHeads {
    /// Width of a projection row.
    pub fn width(&self) -> usize {
        (self.n_head + 2 * self.n_kv_head) * self.head_dim
    }
}

/// One row of a QKV projection rotated: q and k by `position` (rotate-half pairing, the
/// (cos, sin) pairs of `table` row `position`, see `model::RopeTable`), v as it is.
/// Returns (q, k, v), each its heads side by side.
pub fn rope_row(
    row: &[f32],
    heads: QkvHeads,
    table: &[f32],
    position: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let half = heads.head_dim / 2;
    let angles = &table[position * half * 2..][..half * 2];
    let rotate = |head: &[f32]| -> Vec<f32> {
        let mut out = head.to_vec();
        for i in 0..half {
            let (cos, sin) = (f64::from(angles[2 * i]), f64::from(angles[2 * i + 1]));
            let (y0, y1) = (f64::from(head[i]), f64::from(head[i + half]));
            out[i] = (y0 * cos - y1 * sin) as f32;
            out[i + half] = (y1 * cos + y0 * sin) as f32;
        }
        out
    };
    let (q_part, kv) = row.split_at(heads.n_head * heads.head_dim);
    let (k_part, v_part) = kv.split_at(heads.n_kv_head * heads.head_dim);
    let q = q_part
        .chunks_exact(heads.head_dim)
        .flat_map(rotate)
        .collect();
    let k = k_part
        .chunks_exact(heads.head_dim)
        .flat_map(rotate)
        .collect();
    (q, k, v_part.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_turn_rotates_each_pair() {
        // One q head of 4 at a position whose angles are 90 degrees and 0.
        let table = [0.0, 1.0, 1.0, 0.0];
        let heads = QkvHeads {
            n_head: 1,
            n_kv_head: 1,
            head_dim: 4,
        };
        let row = [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let (q, k, v) = rope_row(&row, heads, &table, 0);
        // Pair (0, 2) turns by 90 degrees: (1, 3) -> (-3, 1); pair (1, 3) stays.
        assert_eq!(q, [-3.0, 2.0, 1.0, 4.0]);
        assert_eq!(k, q);
        assert_eq!(v, [5.0, 6.0, 7.0, 8.0]);
    }
}
