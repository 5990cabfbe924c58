//! GPU test of layernorm against the CPU reference.

use gpu_kernels::abi::LayerNormParams;
use half::f16;
use host::reference;
use integration_tests::{
    GPT2_WIDTHS, TEST_BATCHES, assert_close, fresh_rng, gpu, random_f16, to_f32,
};

#[test]
#[ignore = "needs a CUDA GPU"]
fn layernorm_matches_cpu() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    for (d, _) in GPT2_WIDTHS {
        let gamma = random_f16(&mut rng, d, 2.0);
        let beta = random_f16(&mut rng, d, 1.0);
        let (gamma_gpu, beta_gpu) = (gpu.upload(&gamma).unwrap(), gpu.upload(&beta).unwrap());
        for batch in TEST_BATCHES {
            // Rows with a large common offset: a one-pass E[x^2] - E[x]^2 would lose the
            // variance to cancellation; the residual stream of late layers looks like this.
            let x: Vec<f16> = random_f16(&mut rng, batch * d, 4.0)
                .iter()
                .enumerate()
                .map(|(i, v)| f16::from_f32(v.to_f32() + 40.0 * ((i / d) as f32 - 1.0)))
                .collect();
            let x_gpu = gpu.upload(&x).unwrap();
            let mut out = gpu.alloc_poisoned::<f16>(batch * d).unwrap();
            gpu.launch(LayerNormParams {
                x: x_gpu.as_ptr(),
                gamma: gamma_gpu.as_ptr(),
                beta: beta_gpu.as_ptr(),
                out: out.as_mut_ptr(),
                d_model: d as u32,
                batch: batch as u32,
                eps: 1e-5,
            })
            .unwrap();
            gpu.synchronize().unwrap();
            let expected =
                reference::layernorm(&to_f32(&x), &to_f32(&gamma), &to_f32(&beta), d, 1e-5);
            assert_close(
                &format!("d {d} batch {batch}"),
                &to_f32(&out.to_host().unwrap()),
                &expected,
                2e-3,
            );
        }
    }
}
