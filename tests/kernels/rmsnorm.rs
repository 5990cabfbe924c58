//! GPU test of the RMSNorm against the CPU reference, in fp16 and bf16.

use gpu_kernels::abi::{HalfType, RmsNormParams};
use host::halves::to_f32;
use host::reference;
use integration_tests::{
    TEST_BATCHES, assert_close, fresh_rng, gpu_for, random_halves, storage_threshold,
};

/// Model widths with RMSNorm: SmolLM2, Qwen2.5 0.5B / 1.5B / 7B, Llama 3.2 1B / 3B, 3.1 8B.
const WIDTHS: [usize; 7] = [576, 896, 1536, 3584, 2048, 3072, 4096];

#[test]
#[ignore = "needs a CUDA GPU"]
fn rmsnorm_matches_cpu() {
    for half in HalfType::ALL {
        let gpu = gpu_for(half);
        let mut rng = fresh_rng();
        for d in WIDTHS {
            for batch in TEST_BATCHES {
                // A residual stream with an offset and an outlier, as trained models have.
                let mut x = random_halves(&mut rng, batch * d, 4.0, half);
                x[d / 2] = host::cuda::HalfBits::from_f32(90.0, half);
                let gamma = random_halves(&mut rng, d, 2.0, half);
                let (x_gpu, gamma_gpu) = (gpu.upload(&x).unwrap(), gpu.upload(&gamma).unwrap());
                for scaled in [true, false] {
                    let mut out = gpu.alloc_poisoned(batch * d).unwrap();
                    gpu.launch(RmsNormParams {
                        x: x_gpu.as_ptr(),
                        gamma: if scaled {
                            gamma_gpu.as_ptr()
                        } else {
                            std::ptr::null()
                        },
                        out: out.as_mut_ptr(),
                        d_model: d as u32,
                        batch: batch as u32,
                        eps: 1e-5,
                    })
                    .unwrap();
                    gpu.synchronize().unwrap();
                    let gamma_f32 = to_f32(&gamma, half);
                    let expected = reference::rmsnorm(
                        &to_f32(&x, half),
                        scaled.then_some(&gamma_f32[..]),
                        d,
                        1e-5,
                    );
                    assert_close(
                        &format!("{half:?} d {d} batch {batch} gamma {scaled}"),
                        &to_f32(&out.to_host().unwrap(), half),
                        &expected,
                        storage_threshold(half),
                    );
                }
            }
        }
    }
}
