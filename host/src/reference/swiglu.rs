//! CPU twin of the SwiGLU kernel.

/// `silu(gate) * up` for each row of `gate_up` (batch, 2 intermediate): gate, then up.
pub fn swiglu(gate_up: &[f32], intermediate: usize) -> Vec<f32> {
    gate_up
        .chunks_exact(2 * intermediate)
        .flat_map(|row| {
            let (gate, up) = row.split_at(intermediate);
            gate.iter().zip(up).map(|(&g, &u)| {
                let g = f64::from(g);
                (g / (1.0 + (-g).exp()) * f64::from(u)) as f32
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swiglu_gates_up_by_silu() {
        let out = swiglu(&[0.0, 20.0, 5.0, 2.0], 2);
        assert_eq!(out[0], 0.0);
        assert!((out[1] - 40.0).abs() < 1e-6, "{out:?}");
    }
}
