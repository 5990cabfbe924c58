//! GPU tests of the LM head fused with argmax over the full GPT-2 vocabulary.

use gpu_kernels::abi::{ArgmaxFinalizeParams, Feedback, LmHeadParams, pack_argmax};
use half::f16;
use host::cuda::{Gpu, GpuBuffer};
use host::reference;
use integration_tests::{
    GPT2_VOCAB, GPT2_WIDTHS, TEST_BATCHES, assert_close, fresh_rng, gpu, random_f16, to_f32,
};
use rand::Rng;

/// Runs the LM head (with logits when `logits` is given) and the finalize pass; returns
/// the token ids.
fn run(
    gpu: &Gpu,
    x: &GpuBuffer<f16>,
    wte: &GpuBuffer<f16>,
    best: &mut GpuBuffer<u64>,
    logits: Option<&mut GpuBuffer<f32>>,
    d: usize,
    batch: usize,
) -> Vec<u32> {
    let mut tokens = gpu.alloc_poisoned::<u32>(batch).unwrap();
    gpu.launch(LmHeadParams {
        x: x.as_ptr(),
        wte: wte.as_ptr(),
        best: best.as_mut_ptr(),
        logits: logits.map_or(std::ptr::null_mut(), |l| l.as_mut_ptr()),
        d_model: d as u32,
        vocab: GPT2_VOCAB as u32,
        batch: batch as u32,
    })
    .unwrap();
    gpu.launch(ArgmaxFinalizeParams {
        best: best.as_mut_ptr(),
        tokens: tokens.as_mut_ptr(),
        feedback: Feedback::NONE,
        batch: batch as u32,
    })
    .unwrap();
    gpu.synchronize().unwrap();
    tokens.to_host().unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn lm_head_logits_and_argmax_match_cpu() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    for (d, _) in GPT2_WIDTHS {
        let mut wte = random_f16(&mut rng, GPT2_VOCAB * d, 0.1);
        for batch in TEST_BATCHES {
            let x = random_f16(&mut rng, batch * d, 1.0);
            // The last row of the vocabulary is made the winner of sequence 0: the tail
            // of the vocabulary must be read and win.
            for (w, xv) in wte[(GPT2_VOCAB - 1) * d..].iter_mut().zip(&x[..d]) {
                *w = f16::from_f32(xv.to_f32() * 0.1);
            }
            let (x_gpu, wte_gpu) = (gpu.upload(&x).unwrap(), gpu.upload(&wte).unwrap());
            // Zero once at allocation; the finalize pass re-zeroes it after every use.
            let mut best = gpu.upload(&vec![0u64; batch]).unwrap();
            let mut logits = gpu.alloc_poisoned::<f32>(batch * GPT2_VOCAB).unwrap();
            let tokens = run(
                &gpu,
                &x_gpu,
                &wte_gpu,
                &mut best,
                Some(&mut logits),
                d,
                batch,
            );

            let expected = reference::lm_head(&to_f32(&x), &to_f32(&wte), d);
            let what = format!("d {d} batch {batch}");
            // f32 logits from fp32 accumulation: far under fp16's error.
            assert_close(&what, &logits.to_host().unwrap(), &expected, 1e-4);
            for b in 0..batch {
                let row = &expected[b * GPT2_VOCAB..][..GPT2_VOCAB];
                if reference::top2_gap(row) > 1e-3 {
                    assert_eq!(
                        tokens[b] as usize,
                        reference::argmax(row),
                        "{what}: sequence {b}"
                    );
                }
            }
            assert_eq!(
                tokens[0] as usize,
                GPT2_VOCAB - 1,
                "{what}: the vocabulary's tail"
            );

            // The variant without logits picks the same tokens, and `best` was reset.
            let again = run(&gpu, &x_gpu, &wte_gpu, &mut best, None, d, batch);
            assert_eq!(again, tokens, "{what}: without logits");
            assert!(best.to_host().unwrap().iter().all(|&b| b == 0));
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn argmax_ties_go_to_the_lowest_index() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    let d = 768;
    // Batch 1 on the CUDA cores, 3 and 16 on the tensor cores (the others' tokens
    // unchecked).
    for batch in [1, 3, 16] {
        let mut wte = random_f16(&mut rng, GPT2_VOCAB * d, 0.01);
        let x = random_f16(&mut rng, batch * d, 1.0);
        // Sequence b's winning row appears three times, far apart: rows handled by
        // different warps and blocks must agree on the lowest.
        let rows = [
            [17, 25_000, 50_256],
            [4_000, 4_001, 49_999],
            [0, 30_000, 50_000],
        ];
        for (b, copies) in rows.iter().enumerate().take(batch) {
            for &row in copies {
                for (w, xv) in wte[row * d..][..d].iter_mut().zip(&x[b * d..][..d]) {
                    *w = f16::from_f32(xv.to_f32() * 0.5);
                }
            }
        }
        let (x_gpu, wte_gpu) = (gpu.upload(&x).unwrap(), gpu.upload(&wte).unwrap());
        let mut best = gpu.upload(&vec![0u64; batch]).unwrap();
        let tokens = run(&gpu, &x_gpu, &wte_gpu, &mut best, None, d, batch);
        let checked = batch.min(3);
        assert_eq!(
            tokens[..checked],
            [17, 4_000, 0][..checked],
            "batch {batch}"
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn finalize_feeds_the_next_step_and_clears_the_maxima() {
    let mut rng = fresh_rng();
    let gpu = gpu();
    for batch in TEST_BATCHES {
        let ids: Vec<u32> = (0..batch).map(|_| rng.random_range(0..50257)).collect();
        let packed: Vec<u64> = ids.iter().map(|&i| pack_argmax(0.5, i)).collect();
        let positions: Vec<u32> = (0..batch).map(|_| rng.random_range(0..1000)).collect();
        let mut best = gpu.upload(&packed).unwrap();
        let mut next = gpu.alloc_poisoned::<u32>(batch).unwrap();
        let mut inputs = gpu.alloc_poisoned::<u32>(batch).unwrap();
        let mut input_positions = gpu.upload(&positions).unwrap();
        let lengths_before: Vec<u32> = positions.iter().map(|p| p + 1).collect();
        let mut lengths = gpu.upload(&lengths_before).unwrap();
        gpu.launch(ArgmaxFinalizeParams {
            best: best.as_mut_ptr(),
            tokens: next.as_mut_ptr(),
            feedback: Feedback {
                tokens: inputs.as_mut_ptr(),
                positions: input_positions.as_mut_ptr(),
                lengths: lengths.as_mut_ptr(),
            },
            batch: batch as u32,
        })
        .unwrap();
        gpu.synchronize().unwrap();
        let advanced: Vec<u32> = positions.iter().map(|p| p + 1).collect();
        assert_eq!(next.to_host().unwrap(), ids, "batch {batch}");
        assert_eq!(inputs.to_host().unwrap(), ids, "batch {batch}");
        assert_eq!(input_positions.to_host().unwrap(), advanced);
        let lengths_after: Vec<u32> = advanced.iter().map(|p| p + 1).collect();
        assert_eq!(lengths.to_host().unwrap(), lengths_after);
        assert_eq!(best.to_host().unwrap(), vec![0; batch]);
    }
}
