//! GPU test of SwiGLU against the CPU reference, in fp16 and bf16.

use gpu_kernels::abi::{HalfType, SwigluParams};
use host::halves::to_f32;
use host::reference;
use integration_tests::{
    TEST_BATCHES, assert_close, fresh_rng, gpu_for, random_halves, storage_threshold,
};

/// Intermediate widths: SmolLM2, Qwen2.5 0.5B, Llama 3.2 1B, Llama 3.1 8B.
const INTERMEDIATES: [usize; 4] = [1536, 4864, 8192, 14336];

#[test]
#[ignore = "needs a CUDA GPU"]
fn swiglu_matches_cpu() {
    for half in HalfType::ALL {
        let gpu = gpu_for(half);
        let mut rng = fresh_rng();
        for width in INTERMEDIATES {
            for batch in TEST_BATCHES {
                // Gates far into both tails, where silu is 0 and the identity.
                let gate_up = random_halves(&mut rng, batch * 2 * width, 12.0, half);
                let input = gpu.upload(&gate_up).unwrap();
                let mut out = gpu.alloc_poisoned(batch * width).unwrap();
                gpu.launch(SwigluParams {
                    gate_up: input.as_ptr(),
                    out: out.as_mut_ptr(),
                    intermediate: width as u32,
                    batch: batch as u32,
                })
                .unwrap();
                gpu.synchronize().unwrap();
                assert_close(
                    &format!("{half:?} width {width} batch {batch}"),
                    &to_f32(&out.to_host().unwrap(), half),
                    &reference::swiglu(&to_f32(&gate_up, half), width),
                    storage_threshold(half),
                );
            }
        }
    }
}
