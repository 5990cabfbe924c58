//! GPU tests of the GEMV with its input layernorm folded into the weights (ln_1 into
//! QKV, ln_2 into fc): against its CPU twin over the same folded layer, and against
//! layernorm then the linear layer on the CPU with the unfolded parameters (the fold and
//! the kernel's one-pass moments checked together).

use gpu_kernels::abi::{Epilogue, FoldedNormGemvParams, GemvParams, KvCacheLayer};
use half::f16;
use host::cuda::{Gpu, GpuBuffer};
use host::model::{FoldedLinear, fold_layernorm};
use host::reference;
use integration_tests::{
    GPT2_WIDTHS, QkvOutputs, assert_close, fresh_rng, gpu, random_f16, to_f32,
};
use rand::Rng;
use rand::rngs::StdRng;

/// As the plain GEMV: the fp16 output dominates; the fold adds one fp16 rounding of
/// `W diag(gamma)` and of the folded bias.
const THRESHOLD: f64 = 2e-3;
const EPS: f32 = 1e-5;

/// A folded linear layer on the GPU.
struct FoldedOnGpu {
    weight: GpuBuffer<f16>,
    bias: GpuBuffer<f16>,
    row_sums: GpuBuffer<f32>,
}

impl FoldedOnGpu {
    fn upload(gpu: &Gpu, folded: &FoldedLinear) -> Self {
        FoldedOnGpu {
            weight: gpu.upload(&folded.weight).unwrap(),
            bias: gpu.upload(&folded.bias).unwrap(),
            row_sums: gpu.upload(&folded.row_sums).unwrap(),
        }
    }
}

/// A residual stream as GPT-2's look: a non-zero mean, unit spread and a few large
/// outliers, so that one-pass moments meet the case they could fail on.
fn residual_stream(rng: &mut StdRng, batch: usize, d: usize) -> Vec<f16> {
    let mut x = random_f16(rng, batch * d, 2.0);
    for row in x.chunks_exact_mut(d) {
        let shift = rng.random_range(-1.0..1.0);
        for v in row.iter_mut() {
            *v = f16::from_f32(v.to_f32() + shift);
        }
        for _ in 0..3 {
            let at = rng.random_range(0..d);
            row[at] = f16::from_f32(rng.random_range(-300.0..300.0));
        }
    }
    x
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn folded_norm_gemv_matches_layernorm_then_gemv() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    // Every width's fc shape and a wide output; then narrow outputs of longer rows (the
    // longest a folded batch-1 row may be), which from batch 2 split each tile over a
    // cluster of 4 blocks: 256 blocks (three per SM hold them) and 400 (the entry of four
    // per SM, `abi::FOLDED_MMA_ENTRIES`).
    let shapes = GPT2_WIDTHS
        .iter()
        .flat_map(|&(d, _)| [(d, 4 * d, Epilogue::Gelu), (d, d + 8, Epilogue::Store)])
        .chain([(1792, 1024, Epilogue::Store), (1792, 1600, Epilogue::Store)]);
    for (d, n_out, epilogue) in shapes {
        let w = random_f16(&mut rng, n_out * d, 1.7 / (d as f32).sqrt());
        let bias = random_f16(&mut rng, n_out, 0.5);
        let gamma = random_f16(&mut rng, d, 1.5);
        let beta = random_f16(&mut rng, d, 0.5);
        let folded_host = fold_layernorm(&w, &bias, &gamma, &beta).unwrap();
        let folded = FoldedOnGpu::upload(&gpu, &folded_host);
        // Batch 1 (CUDA cores) and the tensor-core tiles, full and padded; fresh
        // inputs each.
        for (sample, batch) in [1, 1, 2, 3, 5, 8].into_iter().enumerate() {
            let x = residual_stream(&mut rng, batch, d);
            let x_gpu = gpu.upload(&x).unwrap();
            let mut out = gpu.alloc_poisoned::<f16>(batch * n_out).unwrap();
            gpu.launch(FoldedNormGemvParams {
                gemv: GemvParams {
                    x: x_gpu.as_ptr(),
                    w: folded.weight.as_ptr(),
                    bias: folded.bias.as_ptr(),
                    out: out.as_mut_ptr(),
                    residual: std::ptr::null(),
                    cache: KvCacheLayer::NONE,
                    in_features: d as u32,
                    out_features: n_out as u32,
                    batch: batch as u32,
                    epilogue: epilogue as u32,
                },
                row_sums: folded.row_sums.as_ptr(),
                eps: EPS,
            })
            .unwrap();
            gpu.synchronize().unwrap();
            let got = to_f32(&out.to_host().unwrap());
            let what = format!("d {d} -> {n_out}, {epilogue:?}, batch {batch}, input {sample}");
            let epilogue_of = |y: Vec<f32>| match epilogue {
                Epilogue::Gelu => y.into_iter().map(reference::gelu_tanh).collect(),
                _ => y,
            };
            let twin = epilogue_of(reference::gemv_folded_norm(
                &to_f32(&x),
                &to_f32(&folded_host.weight),
                &to_f32(&folded_host.bias),
                &folded_host.row_sums,
                d,
                EPS,
            ));
            assert_close(&format!("{what}, twin"), &got, &twin, THRESHOLD);
            let normed = reference::layernorm(&to_f32(&x), &to_f32(&gamma), &to_f32(&beta), d, EPS);
            let unfolded = epilogue_of(reference::linear(
                &normed,
                &to_f32(&w),
                Some(&to_f32(&bias)),
                d,
                n_out,
            ));
            assert_close(&format!("{what}, unfolded"), &got, &unfolded, THRESHOLD);
        }
    }
}

/// The QKV epilogue through the folded kernel: K and V land in the cache at each
/// sequence's position, as the plain GEMV puts them.
#[test]
#[ignore = "needs a CUDA GPU"]
fn folded_norm_qkv_writes_the_cache() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    let (d, n_head) = (1600, 25);
    let w = random_f16(&mut rng, 3 * d * d, 1.7 / (d as f32).sqrt());
    let bias = random_f16(&mut rng, 3 * d, 0.5);
    let gamma = random_f16(&mut rng, d, 1.5);
    let beta = random_f16(&mut rng, d, 0.5);
    let folded = FoldedOnGpu::upload(&gpu, &fold_layernorm(&w, &bias, &gamma, &beta).unwrap());
    for batch in [1, 5] {
        let x = residual_stream(&mut rng, batch, d);
        let x_gpu = gpu.upload(&x).unwrap();
        let mut outputs = QkvOutputs::new(&gpu, &mut rng, (d, n_head), 16, batch);
        gpu.launch(FoldedNormGemvParams {
            gemv: outputs.params(&x_gpu, &folded.weight, &folded.bias),
            row_sums: folded.row_sums.as_ptr(),
            eps: EPS,
        })
        .unwrap();
        gpu.synchronize().unwrap();
        let normed = reference::layernorm(&to_f32(&x), &to_f32(&gamma), &to_f32(&beta), d, EPS);
        let qkv = reference::linear(&normed, &to_f32(&w), Some(&to_f32(&bias)), d, 3 * d);
        outputs.assert_match(&format!("folded ln_1, batch {batch}"), &qkv, THRESHOLD);
    }
}
