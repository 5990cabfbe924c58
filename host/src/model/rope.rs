//! Rotary position embedding's frequencies (default and Llama 3's scaling, as
//! transformers computes them) and the (cos, sin) table the `rope_kv` kernel reads.

/// How the rotary frequencies are scaled for long contexts (`rope_scaling` /
/// `rope_parameters` in config.json).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// `rope_type` "default": `theta^(-2i/d)` as they are.
    Default,
    /// `rope_type` "llama3" (Llama 3.1 and 3.2): low frequencies divided by `factor`,
    /// high ones kept, the band between interpolated.
    Llama3 {
        /// Divisor of the low frequencies (8 for Llama 3.1).
        factor: f32,
        /// Wavelengths past `original_max_position_embeddings / low_freq_factor` are low.
        low_freq_factor: f32,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are
        /// high.
        high_freq_factor: f32,
        /// The context the model was pretrained at (8192 for Llama 3.1).
        original_max_position_embeddings: f32,
    },
}

/// The rotary embedding of a model: its base and scaling over heads of `head_dim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    /// `rope_theta`: 500000 for Llama 3, 1000000 for Qwen2.5.
    pub theta: f32,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

impl Rope {
    /// Llama 3.1's and 3.2's rotary embedding: theta 500000, frequencies scaled by 8 below
    /// the band of wavelengths 2048 to 8192.
    pub const LLAMA_3_1: Rope = Rope {
        theta: 500_000.0,
        scaling: RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        },
    };

    /// The `head_dim / 2` inverse frequencies in f32, computed as transformers computes
    /// them (`1 / theta^(2i / d)` in f32, then the scaling).
    pub fn inverse_frequencies(&self, head_dim: usize) -> Vec<f32> {
        let base: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / self.theta.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        match self.scaling {
            RopeScaling::Default => base,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: context,
            } => {
                let low_freq_wavelen = context / low_freq_factor;
                let high_freq_wavelen = context / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        if wavelen < high_freq_wavelen {
                            f
                        } else if wavelen > low_freq_wavelen {
                            f / factor
                        } else {
                            let smooth = (context / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }

    /// The table `rope_kv` reads: for each position below `positions` and frequency i,
    /// `(cos, sin)` of the angle `position * inv_freq[i]` (the product in f32, as
    /// transformers takes it; cos and sin of that f32 in f64, rounded to f32).
    pub fn table(&self, head_dim: usize, positions: usize) -> Vec<f32> {
        let frequencies = self.inverse_frequencies(head_dim);
        (0..positions)
            .flat_map(|position| table_row(&frequencies, position))
            .collect()
    }

    /// Row `position` of [`Rope::table`] alone.
    pub fn row(&self, head_dim: usize, position: usize) -> Vec<f32> {
        table_row(&self.inverse_frequencies(head_dim), position)
    }
}

/// The (cos, sin) pairs of one position.
fn table_row(frequencies: &[f32], position: usize) -> Vec<f32> {
    frequencies
        .iter()
        .flat_map(|&f| {
            let angle = f64::from(position as f32 * f);
            [angle.cos() as f32, angle.sin() as f32]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama 3.1's published scaling (factor 8, 1 and 4, 8192 positions) over its heads
    /// of 128: the highest frequency stays, the lowest is divided by 8, and
    /// a frequency of the band between is interpolated.
    #[test]
    fn llama3_scaling_keeps_high_divides_low_and_blends_between() {
        let rope = Rope::LLAMA_3_1;
        let scaled = rope.inverse_frequencies(128);
        let plain = Rope {
            scaling: RopeScaling::Default,
            ..rope
        }
        .inverse_frequencies(128);
        assert_eq!(scaled[0], 1.0);
        assert_eq!(scaled[63], plain[63] / 8.0);
        assert!(scaled[32] < plain[32] && scaled[32] > plain[32] / 8.0);
    }

    #[test]
    fn the_table_holds_cos_and_sin_of_position_times_frequency() {
        let rope = Rope {
            theta: 10_000.0,
            scaling: RopeScaling::Default,
        };
        let table = rope.table(4, 3);
        // Position 2, frequency 1: 10000^(-1/2) = 0.01.
        let angle = f64::from(2.0f32 * 0.01f32);
        assert!((f64::from(table[(2 * 2 + 1) * 2]) - angle.cos()).abs() < 1e-7);
        assert!((f64::from(table[(2 * 2 + 1) * 2 + 1]) - angle.sin()).abs() < 1e-7);
        assert_eq!(&table[..4], [1.0, 0.0, 1.0, 0.0]);
    }
}
