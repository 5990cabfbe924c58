//! GPU test of the token + position embedding against the CPU reference.

use gpu_kernels::abi::EmbeddingParams;
use half::f16;
use host::reference;
use integration_tests::{
    GPT2_VOCAB, GPT2_WIDTHS, TEST_BATCHES, assert_close, fresh_rng, gpu, random_f16, to_f32,
};
use rand::Rng;

const N_POSITIONS: usize = 1024;

#[test]
#[ignore = "needs a CUDA GPU"]
fn embedding_matches_cpu() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    for (d, _) in GPT2_WIDTHS {
        let wte = random_f16(&mut rng, GPT2_VOCAB * d, 0.5);
        let wpe = random_f16(&mut rng, N_POSITIONS * d, 0.5);
        let (wte_gpu, wpe_gpu) = (gpu.upload(&wte).unwrap(), gpu.upload(&wpe).unwrap());
        for batch in TEST_BATCHES {
            // The last token id and position are in every batch: the tables' tails.
            let mut tokens: Vec<u32> = (0..batch)
                .map(|_| rng.random_range(0..GPT2_VOCAB as u32))
                .collect();
            let mut positions: Vec<u32> = (0..batch)
                .map(|_| rng.random_range(0..N_POSITIONS as u32))
                .collect();
            tokens[0] = GPT2_VOCAB as u32 - 1;
            positions[batch - 1] = N_POSITIONS as u32 - 1;
            let tokens_gpu = gpu.upload(&tokens).unwrap();
            let positions_gpu = gpu.upload(&positions).unwrap();
            let mut out = gpu.alloc_poisoned::<f16>(batch * d).unwrap();
            gpu.launch(EmbeddingParams {
                wte: wte_gpu.as_ptr(),
                wpe: wpe_gpu.as_ptr(),
                tokens: tokens_gpu.as_ptr(),
                positions: positions_gpu.as_ptr(),
                out: out.as_mut_ptr(),
                d_model: d as u32,
                vocab: GPT2_VOCAB as u32,
                n_positions: N_POSITIONS as u32,
                batch: batch as u32,
            })
            .unwrap();
            gpu.synchronize().unwrap();
            let expected =
                reference::embedding(&to_f32(&wte), &to_f32(&wpe), &tokens, &positions, d);
            // One fp16 rounding of an exact f32 sum: well under 1e-3.
            assert_close(
                &format!("d {d} batch {batch}"),
                &to_f32(&out.to_host().unwrap()),
                &expected,
                1e-3,
            );
        }
    }
}
