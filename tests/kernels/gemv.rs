//! GPU tests of the GEMV with its epilogues, at every GPT-2 width and test batch: the four
//! projections of a transformer block, as the decode step uses them.

use gpu_kernels::abi::{Epilogue, GemvParams, KvCacheLayer};
use half::f16;
use host::cuda::{Gpu, GpuBuffer};
use host::reference;
use integration_tests::{
    GPT2_WIDTHS, QkvOutputs, TEST_BATCHES, assert_close, fresh_rng, gpu, random_f16, to_f32,
};
use rand::rngs::StdRng;

/// fp16 storage of the output dominates: about 3e-4 is expected.
const THRESHOLD: f64 = 2e-3;

/// A weight (out, in) scaled by 1/sqrt(in), so outputs stay O(1) like a trained model's.
fn weight(rng: &mut StdRng, n_out: usize, n_in: usize) -> Vec<f16> {
    random_f16(rng, n_out * n_in, 1.0 / (n_in as f32).sqrt() * 1.7)
}

/// One input `x` (batch, n_in) on the GPU and on the host, for GEMVs against the CPU.
struct Case<'a> {
    gpu: &'a Gpu,
    x: GpuBuffer<f16>,
    x_host: Vec<f32>,
    /// Columns of x.
    n_in: usize,
    batch: usize,
}

impl<'a> Case<'a> {
    /// `x` as it is on the GPU.
    fn new(gpu: &'a Gpu, x: GpuBuffer<f16>, n_in: usize, batch: usize) -> Self {
        let x_host = to_f32(&x.to_host().unwrap());
        Case {
            gpu,
            x,
            x_host,
            n_in,
            batch,
        }
    }

    /// Fresh random `x` of unit scale.
    fn random(gpu: &'a Gpu, rng: &mut StdRng, n_in: usize, batch: usize) -> Self {
        let x = gpu.upload(&random_f16(rng, batch * n_in, 1.0)).unwrap();
        Case::new(gpu, x, n_in, batch)
    }

    /// Runs one GEMV; returns the output buffer and the reference `x W^T + bias`.
    fn run(
        &self,
        w: &[f16],
        bias: Option<&[f16]>,
        n_out: usize,
        epilogue: Epilogue,
        residual: Option<&GpuBuffer<f16>>,
        out: &mut GpuBuffer<f16>,
    ) -> Vec<f32> {
        let w_gpu = self.gpu.upload(w).unwrap();
        let bias_gpu = bias.map(|b| self.gpu.upload(b).unwrap());
        let residual_ptr = residual.map_or(std::ptr::null(), |r| r.as_ptr());
        self.gpu
            .launch(GemvParams {
                x: self.x.as_ptr(),
                w: w_gpu.as_ptr(),
                bias: bias_gpu.as_ref().map_or(std::ptr::null(), |b| b.as_ptr()),
                out: out.as_mut_ptr(),
                residual: residual_ptr,
                cache: KvCacheLayer::NONE,
                in_features: self.n_in as u32,
                out_features: n_out as u32,
                batch: self.batch as u32,
                epilogue: epilogue as u32,
            })
            .unwrap();
        self.gpu.synchronize().unwrap();
        let bias_f32 = bias.map(to_f32);
        reference::linear(
            &self.x_host,
            &to_f32(w),
            bias_f32.as_deref(),
            self.n_in,
            n_out,
        )
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gemv_projections_match_cpu() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    for (d, _) in GPT2_WIDTHS {
        let w_proj = weight(&mut rng, d, d);
        let w_fc = weight(&mut rng, 4 * d, d);
        let w_fc_proj = weight(&mut rng, d, 4 * d);
        let bias_d = random_f16(&mut rng, d, 0.5);
        let bias_4d = random_f16(&mut rng, 4 * d, 0.5);
        // And the tile of 16, whose entries differ by how many tiles an output has
        // (`abi::MMA_ENTRIES`): at gpt2-large's and gpt2-xl's widths one per variant.
        for batch in TEST_BATCHES.into_iter().chain([16]) {
            let what = |name: &str| format!("{name}: d {d} batch {batch}");
            let case = Case::random(&gpu, &mut rng, d, batch);

            // Plain store, no bias.
            let mut out = gpu.alloc_poisoned::<f16>(batch * d).unwrap();
            let expected = case.run(&w_proj, None, d, Epilogue::Store, None, &mut out);
            assert_close(
                &what("store"),
                &to_f32(&out.to_host().unwrap()),
                &expected,
                THRESHOLD,
            );

            // attn.c_proj: x += proj(a), in place on the residual stream.
            let stream = random_f16(&mut rng, batch * d, 2.0);
            let mut inout = gpu.upload(&stream).unwrap();
            let residual = inout.as_ptr();
            let w_gpu = gpu.upload(&w_proj).unwrap();
            let bias_gpu = gpu.upload(&bias_d).unwrap();
            gpu.launch(GemvParams {
                x: case.x.as_ptr(),
                w: w_gpu.as_ptr(),
                bias: bias_gpu.as_ptr(),
                out: inout.as_mut_ptr(),
                residual,
                cache: KvCacheLayer::NONE,
                in_features: d as u32,
                out_features: d as u32,
                batch: batch as u32,
                epilogue: Epilogue::Residual as u32,
            })
            .unwrap();
            gpu.synchronize().unwrap();
            let expected: Vec<f32> =
                reference::linear(&case.x_host, &to_f32(&w_proj), Some(&to_f32(&bias_d)), d, d)
                    .iter()
                    .zip(to_f32(&stream))
                    .map(|(y, r)| y + r)
                    .collect();
            assert_close(
                &what("residual in place"),
                &to_f32(&inout.to_host().unwrap()),
                &expected,
                THRESHOLD,
            );

            // mlp.c_fc with GELU.
            let mut hidden = gpu.alloc_poisoned::<f16>(batch * 4 * d).unwrap();
            let expected: Vec<f32> = case
                .run(
                    &w_fc,
                    Some(&bias_4d),
                    4 * d,
                    Epilogue::Gelu,
                    None,
                    &mut hidden,
                )
                .into_iter()
                .map(reference::gelu_tanh)
                .collect();
            // mlp.c_proj: 4d -> d plus a separate residual, reading the GELU output.
            let case = Case::new(&gpu, hidden, 4 * d, batch);
            assert_close(&what("gelu"), &case.x_host, &expected, THRESHOLD);
            let stream = gpu.upload(&random_f16(&mut rng, batch * d, 2.0)).unwrap();
            let mut out = gpu.alloc_poisoned::<f16>(batch * d).unwrap();
            let expected: Vec<f32> = case
                .run(
                    &w_fc_proj,
                    Some(&bias_d),
                    d,
                    Epilogue::Residual,
                    Some(&stream),
                    &mut out,
                )
                .iter()
                .zip(to_f32(&stream.to_host().unwrap()))
                .map(|(y, r)| y + r)
                .collect();
            assert_close(
                &what("4d -> d residual"),
                &to_f32(&out.to_host().unwrap()),
                &expected,
                THRESHOLD,
            );
        }
    }
}

/// Shapes off the tensor-core tiles' grid: output rows not a multiple of 16, reductions
/// not a multiple of 32 (one 16-byte vector past it) or shorter than the block's warps'
/// chunks, and batches that fill a batch tile partly, on both the CUDA-core and the
/// tensor-core paths.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gemv_tails_match_cpu() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    // 1792 and 1800: the widest row one staged piece holds at batch 1 and one vector past
    // it; 6408 and 8200: four and five pieces through two slots (each slot's barrier
    // completes two and three phases); 5121 rows of 1280: batch 1 in the sized stage
    // (`GemvParams::takes_sized_stage`), its last block one row of eight.
    for (n_out, n_in) in [
        (100, 200),
        (37, 8),
        (64, 1792),
        (40, 1800),
        (1600, 6408),
        (50, 8200),
        (5121, 1280),
    ] {
        let w = weight(&mut rng, n_out, n_in);
        let bias = random_f16(&mut rng, n_out, 0.5);
        for batch in [1, 2, 5, 8, 13, 16, 31, 32] {
            let case = Case::random(&gpu, &mut rng, n_in, batch);
            let mut out = gpu.alloc_poisoned::<f16>(batch * n_out).unwrap();
            let expected = case.run(&w, Some(&bias), n_out, Epilogue::Store, None, &mut out);
            assert_close(
                &format!("{n_in} -> {n_out}, batch {batch}"),
                &to_f32(&out.to_host().unwrap()),
                &expected,
                THRESHOLD,
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn qkv_projection_writes_q_and_the_kv_cache() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    let capacity = 64;
    for (d, n_head) in GPT2_WIDTHS {
        let w = weight(&mut rng, 3 * d, d);
        let bias = random_f16(&mut rng, 3 * d, 0.5);
        let (w_gpu, bias_gpu) = (gpu.upload(&w).unwrap(), gpu.upload(&bias).unwrap());
        for batch in TEST_BATCHES {
            let x = random_f16(&mut rng, batch * d, 1.0);
            let x_gpu = gpu.upload(&x).unwrap();
            let mut outputs = QkvOutputs::new(&gpu, &mut rng, (d, n_head), capacity, batch);
            gpu.launch(outputs.params(&x_gpu, &w_gpu, &bias_gpu))
                .unwrap();
            gpu.synchronize().unwrap();
            let qkv = reference::linear(&to_f32(&x), &to_f32(&w), Some(&to_f32(&bias)), d, 3 * d);
            outputs.assert_match(&format!("d {d} batch {batch}"), &qkv, THRESHOLD);
        }
    }
}
