//! GPU test of the random fill against its CPU twin: the same values, bit for bit, so a
//! seed means the same weights or cache on any GPU and on the CPU.

use half::f16;
use host::reference;
use integration_tests::{fresh_rng, gpu};
use rand::Rng;

#[test]
#[ignore = "needs a CUDA GPU"]
fn fill_equals_its_cpu_twin_bit_for_bit() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    // Lengths that are no multiple of a block, one of a block, and one past a wave of
    // blocks (the grid loops).
    for len in [1, 255, 256, 1000, 3_000_001] {
        let (seed, scale) = (rng.random::<u64>(), rng.random_range(0.01..4.0));
        let mut out = gpu.alloc_poisoned::<f16>(len).unwrap();
        gpu.fill_uniform(&mut out, seed, scale).unwrap();
        gpu.synchronize().unwrap();
        let got = out.to_host().unwrap();
        let want = reference::fill_uniform(len, seed, scale);
        let first_difference = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(
            first_difference, None,
            "len {len}, seed {seed}, scale {scale}"
        );
    }
}
