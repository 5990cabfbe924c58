//! CPU twin of the LM head and its greedy argmax.

use super::gemv::linear;

/// Logits over the tied embedding: `x[b] wte^T`, (batch, vocab).
pub fn lm_head(x: &[f32], wte: &[f32], d_model: usize) -> Vec<f32> {
    linear(x, wte, None, d_model, wte.len() / d_model)
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
    fn argmax_prefers_the_lowest_index_among_equals() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(top2_gap(&[1.0, 3.0, 2.5]), 0.5);
    }
}
