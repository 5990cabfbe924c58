//! CPU twin of the embedding kernel.

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
