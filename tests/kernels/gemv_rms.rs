//! GPU tests of the GEMV at the shapes of the models with RMSNorm (Llama 3, Qwen2.5,
//! SmolLM2), in bf16 and fp16: plain with a bias, and with the RMSNorm before it folded
//! into its weights (`W diag(gamma)`, no row sums), against RMSNorm then the unfolded
//! layer on the CPU. Where no folded entry takes the shape (batches past 8, rows too wide
//! for batch 1's stage) an RMSNorm of unit scale runs first, as the decode step does it.

use gpu_kernels::abi::{
    Epilogue, FoldedNormGemvParams, GemvParams, HalfType, Kernel, KvCacheLayer, RmsNormParams,
};
use host::cuda::{Gpu, GpuBuffer, HalfBits};
use host::halves::{self, to_f32};
use host::reference;
use integration_tests::{assert_close, fresh_rng, gpu_for, random_halves};
use rand::rngs::StdRng;

/// (in, out): SmolLM2's QKV, Qwen2.5 0.5B's QKV, Llama 3.2 1B's QKV, gate and up, down.
const SHAPES: [(usize, usize); 5] = [
    (576, 960),
    (896, 1152),
    (2048, 3072),
    (2048, 16384),
    (8192, 2048),
];

const BATCHES: [usize; 5] = [1, 3, 8, 16, 32];

fn threshold(half: HalfType) -> f64 {
    match half {
        HalfType::F16 => 3e-3,
        HalfType::Bf16 => 1.5e-2,
    }
}

/// The GEMV of `w` (out, in) over `x` (batch, in) with an optional bias, storing.
fn plain(
    x: &GpuBuffer<HalfBits>,
    w: &GpuBuffer<HalfBits>,
    bias: Option<&GpuBuffer<HalfBits>>,
    out: &mut GpuBuffer<HalfBits>,
    (n_in, n_out, batch): (usize, usize, usize),
) -> GemvParams {
    GemvParams {
        x: x.as_ptr(),
        w: w.as_ptr(),
        bias: bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        out: out.as_mut_ptr(),
        residual: std::ptr::null(),
        cache: KvCacheLayer::NONE,
        in_features: n_in as u32,
        out_features: n_out as u32,
        batch: batch as u32,
        epilogue: Epilogue::Store as u32,
    }
}

fn run_shape(gpu: &Gpu, rng: &mut StdRng, (n_in, n_out): (usize, usize)) {
    let half = gpu.half_type();
    let w = random_halves(rng, n_out * n_in, 1.7 / (n_in as f32).sqrt(), half);
    let bias = random_halves(rng, n_out, 0.5, half);
    let gamma = random_halves(rng, n_in, 2.0, half);
    let (w_f32, gamma_f32) = (to_f32(&w, half), to_f32(&gamma, half));
    // W diag(gamma), each product rounded once, as the loader folds it.
    let folded: Vec<f32> = w_f32
        .iter()
        .enumerate()
        .map(|(i, &v)| v * gamma_f32[i % n_in])
        .collect();
    let w_gpu = gpu.upload(&w).unwrap();
    let folded_gpu = gpu.upload(&halves::from_f32(&folded, half)).unwrap();
    let bias_gpu = gpu.upload(&bias).unwrap();
    for batch in BATCHES {
        let what = |name: &str| format!("{name}: {half:?} {n_in} -> {n_out} batch {batch}");
        let mut x = random_halves(rng, batch * n_in, 2.0, half);
        x[n_in / 3] = HalfBits::from_f32(60.0, half);
        let x_f32 = to_f32(&x, half);
        let x_gpu = gpu.upload(&x).unwrap();
        let shape = (n_in, n_out, batch);

        let mut out = gpu.alloc_poisoned(batch * n_out).unwrap();
        gpu.launch(plain(&x_gpu, &w_gpu, Some(&bias_gpu), &mut out, shape))
            .unwrap();
        gpu.synchronize().unwrap();
        let expected = reference::linear(&x_f32, &w_f32, Some(&to_f32(&bias, half)), n_in, n_out);
        let got = to_f32(&out.to_host().unwrap(), half);
        assert_close(&what("plain"), &got, &expected, threshold(half));

        out.poison().unwrap();
        let fold = FoldedNormGemvParams {
            gemv: plain(&x_gpu, &folded_gpu, None, &mut out, shape),
            row_sums: std::ptr::null(),
            eps: 1e-5,
        };
        if fold.check().is_ok() {
            gpu.launch(fold).unwrap();
        } else {
            let mut normed = gpu.alloc_poisoned(batch * n_in).unwrap();
            gpu.launch(RmsNormParams {
                x: x_gpu.as_ptr(),
                gamma: std::ptr::null(),
                out: normed.as_mut_ptr(),
                d_model: n_in as u32,
                batch: batch as u32,
                eps: 1e-5,
            })
            .unwrap();
            gpu.launch(plain(&normed, &folded_gpu, None, &mut out, shape))
                .unwrap();
        }
        gpu.synchronize().unwrap();
        let normed = reference::rmsnorm(&x_f32, Some(&gamma_f32), n_in, 1e-5);
        let expected = reference::linear(&normed, &w_f32, None, n_in, n_out);
        let got = to_f32(&out.to_host().unwrap(), half);
        assert_close(&what("rmsnorm folded"), &got, &expected, threshold(half));
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gemv_at_rmsnorm_model_shapes_plain_and_folded() {
    for half in HalfType::ALL {
        let gpu = gpu_for(half);
        let mut rng = fresh_rng();
        for shape in SHAPES {
            run_shape(&gpu, &mut rng, shape);
        }
    }
}
