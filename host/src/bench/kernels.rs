//! `host bench kernels`: every decode kernel at gpt2-xl shapes, batch 1, 8 and 32, against
//! the copy bandwidth. Each row's bytes are what the kernel must move at least: weights or
//! KV read once, activations read and written once.

use super::{Row, copy_bandwidth_gbps, print_table, random_f16, row, time_unit_us};
use crate::cuda::{Gpu, GpuBuffer};
use anyhow::Result;
use gpu_kernels::abi::{
    ArgmaxFinalizeParams, AttentionParams, EmbeddingParams, Epilogue, Feedback,
    FoldedNormGemvParams, GemvParams, HEAD_DIM, KvCacheLayer, LayerNormParams, LmHeadParams,
};
use half::f16;

/// gpt2-xl.
const D: usize = 1600;
const N_HEAD: usize = 25;
const VOCAB: usize = 50257;
const N_POSITIONS: usize = 1024;
/// Distinct copies of each layer's buffers a graph walks through, as the 48 layers of
/// gpt2-xl do: far more than the 50 MB L2 holds.
const LAYERS: usize = 48;
const BATCHES: [usize; 3] = [1, 8, 32];
const HALF: u64 = 2;

/// What `host bench kernels` measured.
#[derive(Debug, serde::Serialize)]
pub struct KernelBench {
    /// The GPU.
    pub device: String,
    /// Device-to-device copy bandwidth, GB/s (read + write).
    pub copy_gbps: f64,
    /// One row per kernel and batch.
    pub rows: Vec<Row>,
}

/// Runs every case, prints the table and returns it.
pub fn run(gpu: &Gpu) -> Result<KernelBench> {
    let copy_gbps = copy_bandwidth_gbps(gpu)?;
    println!(
        "{}: device-to-device copy {copy_gbps:.0} GB/s (read + write)",
        gpu.info().name
    );
    let mut rows = Vec::new();
    let layers = LayerWeights::new(gpu)?;
    for batch in BATCHES {
        rows.extend(layer_gemvs(gpu, &layers, batch, copy_gbps)?);
        rows.push(lm_head(gpu, batch, copy_gbps)?);
        rows.push(attention(gpu, batch, copy_gbps)?);
        rows.extend(small_kernels(gpu, batch, copy_gbps)?);
    }
    // What programmatic dependent launch buys: the batch-1 sequences again with every
    // kernel waiting for the previous one to end before it launches.
    gpu.set_programmatic_launch(false);
    let serialized = layer_gemvs(gpu, &layers, 1, copy_gbps)?
        .into_iter()
        .chain([attention(gpu, 1, copy_gbps)?]);
    rows.extend(serialized.map(|r| Row {
        case: format!("{} [no PDL]", r.case),
        ..r
    }));
    gpu.set_programmatic_launch(true);
    print_table(&rows);
    Ok(KernelBench {
        device: gpu.info().name.clone(),
        copy_gbps,
        rows,
    })
}

/// The four projection weights of 48 gpt2-xl layers, (out, in) each.
struct LayerWeights {
    qkv: Vec<GpuBuffer<f16>>,
    attn_proj: Vec<GpuBuffer<f16>>,
    fc: Vec<GpuBuffer<f16>>,
    mlp_proj: Vec<GpuBuffer<f16>>,
    bias: GpuBuffer<f16>,
}

impl LayerWeights {
    fn new(gpu: &Gpu) -> Result<Self> {
        let mut seed = 100;
        let mut make = |n_out: usize, n_in: usize| -> Result<Vec<GpuBuffer<f16>>> {
            (0..LAYERS)
                .map(|_| {
                    seed += 1;
                    Ok(random_f16(gpu, n_out * n_in, seed, 0.04)?)
                })
                .collect()
        };
        Ok(LayerWeights {
            qkv: make(3 * D, D)?,
            attn_proj: make(D, D)?,
            fc: make(4 * D, D)?,
            mlp_proj: make(D, 4 * D)?,
            bias: random_f16(gpu, 4 * D, 7, 0.1)?,
        })
    }
}

/// The four GEMVs of a layer, each timed over 48 layers' weights, and all four in
/// sequence as the layer runs them.
fn layer_gemvs(gpu: &Gpu, w: &LayerWeights, batch: usize, copy_gbps: f64) -> Result<Vec<Row>> {
    // (batch, 4 D): wide enough for every input and output; D-wide ones use the front.
    let x = random_f16(gpu, batch * 4 * D, 11, 1.0)?;
    let mut out = random_f16(gpu, batch * 4 * D, 12, 1.0)?;
    let cache_len = batch * N_HEAD * N_POSITIONS * HEAD_DIM as usize;
    let mut k = random_f16(gpu, cache_len, 14, 1.0)?;
    let mut v = random_f16(gpu, cache_len, 15, 1.0)?;
    let positions = gpu.upload(&vec![N_POSITIONS as u32 / 2; batch])?;
    let cache = KvCacheLayer {
        k: k.as_mut_ptr(),
        v: v.as_mut_ptr(),
        positions: positions.as_ptr(),
        capacity: N_POSITIONS as u32,
    };
    let (x, out, bias) = (x.as_ptr(), out.as_mut_ptr(), w.bias.as_ptr());
    let kinds = [
        (
            "gemv qkv 1600->4800 +kv cache",
            &w.qkv,
            D,
            3 * D,
            Epilogue::QkvToCache,
        ),
        (
            "gemv attn proj 1600->1600 +residual",
            &w.attn_proj,
            D,
            D,
            Epilogue::Residual,
        ),
        (
            "gemv mlp fc 1600->6400 +gelu",
            &w.fc,
            D,
            4 * D,
            Epilogue::Gelu,
        ),
        (
            "gemv mlp proj 6400->1600 +residual",
            &w.mlp_proj,
            4 * D,
            D,
            Epilogue::Residual,
        ),
    ];
    let params =
        |weights: &GpuBuffer<f16>, n_in: usize, n_out: usize, epilogue: Epilogue| GemvParams {
            x,
            w: weights.as_ptr(),
            bias,
            out,
            residual: out,
            cache: if epilogue == Epilogue::QkvToCache {
                cache
            } else {
                KvCacheLayer::NONE
            },
            in_features: n_in as u32,
            out_features: n_out as u32,
            batch: batch as u32,
            epilogue: epilogue as u32,
        };
    let bytes = |n_in: usize, n_out: usize, epilogue: Epilogue| {
        let residual = if epilogue == Epilogue::Residual {
            n_out
        } else {
            0
        };
        HALF * (n_out * n_in + n_out + batch * (n_in + n_out + residual)) as u64
    };
    // The engine's steps up to batch 8 fold ln_1 and ln_2 into the QKV and fc GEMVs:
    // those two also as it runs them, with the row sums (4 bytes a row) read too.
    let fold = FoldedNormGemvParams::supports_batch(batch as u32);
    let row_sums = gpu.upload(&vec![0.5f32; 4 * D])?;
    let folds_norm =
        |epilogue: Epilogue| fold && matches!(epilogue, Epilogue::QkvToCache | Epilogue::Gelu);
    let launch = |gpu: &Gpu, gemv: GemvParams, folded: bool| {
        if folded {
            gpu.launch(FoldedNormGemvParams {
                gemv,
                row_sums: row_sums.as_ptr(),
                eps: 1e-5,
            })
        } else {
            gpu.launch(gemv)
        }
    };
    let folded_bytes = |n_out: usize, folded: bool| if folded { 4 * n_out as u64 } else { 0 };
    let mut rows = Vec::new();
    for (case, weights, n_in, n_out, epilogue) in kinds {
        for folded in [false, true] {
            if folded && !folds_norm(epilogue) {
                continue;
            }
            let time = time_unit_us(gpu, LAYERS, |gpu, layer| {
                launch(gpu, params(&weights[layer], n_in, n_out, epilogue), folded)
            })?;
            let case = if folded {
                format!("{case}, ln folded")
            } else {
                case.to_owned()
            };
            rows.push(row(
                &case,
                batch as u32,
                bytes(n_in, n_out, epilogue) + folded_bytes(n_out, folded),
                time,
                copy_gbps,
            ));
        }
    }
    for folded in [false, true] {
        if folded && !fold {
            continue;
        }
        let time = time_unit_us(gpu, LAYERS, |gpu, layer| {
            kinds
                .iter()
                .try_for_each(|(_, weights, n_in, n_out, epilogue)| {
                    let gemv = params(&weights[layer], *n_in, *n_out, *epilogue);
                    launch(gpu, gemv, folded && folds_norm(*epilogue))
                })
        })?;
        let layer_bytes = kinds
            .iter()
            .map(|(_, _, i, o, e)| bytes(*i, *o, *e) + folded_bytes(*o, folded && folds_norm(*e)))
            .sum();
        let case = if folded {
            "gpt2-xl layer: 4 gemvs, ln folded"
        } else {
            "gpt2-xl layer: 4 gemvs"
        };
        rows.push(row(case, batch as u32, layer_bytes, time, copy_gbps));
    }
    Ok(rows)
}

/// The LM head fused with argmax, and the finalize pass, over the 160 MB embedding.
fn lm_head(gpu: &Gpu, batch: usize, copy_gbps: f64) -> Result<Row> {
    let wte = random_f16(gpu, VOCAB * D, 21, 0.1)?;
    let x = random_f16(gpu, batch * D, 22, 1.0)?;
    let mut best = gpu.upload(&vec![0u64; batch])?;
    let mut tokens = gpu.upload(&vec![0u32; batch])?;
    let (best, tokens) = (best.as_mut_ptr(), tokens.as_mut_ptr());
    // wte is three times the L2: every launch reads it from memory.
    let time = time_unit_us(gpu, 10, |gpu, _| {
        gpu.launch(LmHeadParams {
            x: x.as_ptr(),
            wte: wte.as_ptr(),
            best,
            logits: std::ptr::null_mut(),
            d_model: D as u32,
            vocab: VOCAB as u32,
            batch: batch as u32,
        })?;
        gpu.launch(ArgmaxFinalizeParams {
            best,
            tokens,
            feedback: Feedback::NONE,
            batch: batch as u32,
        })
    })?;
    let bytes = HALF * (VOCAB * D + batch * D) as u64;
    Ok(row(
        "lm head 1600->50257 +argmax",
        batch as u32,
        bytes,
        time,
        copy_gbps,
    ))
}

/// Attention at context 1024 (every sequence full), 25 heads, over 48
/// layers' caches.
fn attention(gpu: &Gpu, batch: usize, copy_gbps: f64) -> Result<Row> {
    let hd = HEAD_DIM as usize;
    let cache_len = batch * N_HEAD * N_POSITIONS * hd;
    let caches = (0..LAYERS)
        .map(|layer| {
            let seed = 1000 + 2 * layer as u64;
            Ok((
                random_f16(gpu, cache_len, seed, 1.0)?,
                random_f16(gpu, cache_len, seed + 1, 1.0)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let q = random_f16(gpu, batch * D, 31, 2.0)?;
    let lengths = gpu.upload(&vec![N_POSITIONS as u32; batch])?;
    // As in a decode step: every row but the newest was written by earlier steps, and
    // the step says so up to SETTLED_ROWS_MAX_BATCH.
    let settled_rows = gpu.upload(&vec![N_POSITIONS as u32 - 1; batch])?;
    let settled = if batch as u32 <= AttentionParams::SETTLED_ROWS_MAX_BATCH {
        settled_rows.as_ptr()
    } else {
        std::ptr::null()
    };
    let splits = AttentionParams::splits(N_POSITIONS as u32) as usize;
    let partials = batch * N_HEAD * splits;
    let mut partial_out = gpu.alloc_poisoned::<f32>(partials * hd)?;
    let mut partial_stats = gpu.alloc_poisoned::<f32>(partials * 2)?;
    let mut out = gpu.alloc_poisoned::<f16>(batch * D)?;
    let (partial_out, partial_stats, out) = (
        partial_out.as_mut_ptr(),
        partial_stats.as_mut_ptr(),
        out.as_mut_ptr(),
    );
    let mut counters = gpu.upload(&vec![0u32; batch * N_HEAD])?;
    let counters = counters.as_mut_ptr();
    let time = time_unit_us(gpu, LAYERS, |gpu, layer| {
        let (k, v) = &caches[layer];
        gpu.launch(AttentionParams {
            q: q.as_ptr(),
            k: k.as_ptr(),
            v: v.as_ptr(),
            lengths: lengths.as_ptr(),
            settled,
            fresh_rows: 1,
            out,
            partial_out,
            partial_stats,
            counters,
            n_head: N_HEAD as u32,
            n_kv_head: N_HEAD as u32,
            head_dim: hd as u32,
            batch: batch as u32,
            capacity: N_POSITIONS as u32,
            context_bucket: N_POSITIONS as u32,
            scale: 1.0 / (hd as f32).sqrt(),
        })
    })?;
    // K and V once, q in, out out; partials written and read back.
    let bytes =
        HALF * (2 * cache_len + 2 * batch * D) as u64 + 4 * 2 * (partials * (hd + 2)) as u64;
    Ok(row(
        "attention ctx 1024, 25 heads",
        batch as u32,
        bytes,
        time,
        copy_gbps,
    ))
}

/// Layernorm and embedding at gpt2-xl width: far shorter than a launch,
/// timed the same way (inside a graph) to show what each costs in the step.
fn small_kernels(gpu: &Gpu, batch: usize, copy_gbps: f64) -> Result<Vec<Row>> {
    let x = random_f16(gpu, batch * D, 41, 4.0)?;
    let mut out = gpu.alloc_poisoned::<f16>(batch * D)?;
    let out = out.as_mut_ptr();
    let norms = (0..LAYERS)
        .map(|layer| random_f16(gpu, 2 * D, 500 + layer as u64, 1.0))
        .collect::<Result<Vec<_>, _>>()?;
    let layernorm = time_unit_us(gpu, LAYERS, |gpu, layer| {
        let params = norms[layer].as_ptr();
        gpu.launch(LayerNormParams {
            x: x.as_ptr(),
            gamma: params,
            beta: params.wrapping_add(D),
            out,
            d_model: D as u32,
            batch: batch as u32,
            eps: 1e-5,
        })
    })?;
    let wte = random_f16(gpu, VOCAB * D, 42, 0.1)?;
    let wpe = random_f16(gpu, N_POSITIONS * D, 43, 0.1)?;
    let tokens: Vec<u32> = (0..batch as u32).map(|b| b * 1543 % VOCAB as u32).collect();
    let positions: Vec<u32> = (0..batch as u32)
        .map(|b| b * 31 % N_POSITIONS as u32)
        .collect();
    let (tokens, positions) = (gpu.upload(&tokens)?, gpu.upload(&positions)?);
    let embedding = time_unit_us(gpu, LAYERS, |gpu, _| {
        gpu.launch(EmbeddingParams {
            wte: wte.as_ptr(),
            wpe: wpe.as_ptr(),
            tokens: tokens.as_ptr(),
            positions: positions.as_ptr(),
            out,
            d_model: D as u32,
            vocab: VOCAB as u32,
            n_positions: N_POSITIONS as u32,
            batch: batch as u32,
        })
    })?;
    let rows_bytes = HALF * (batch * D) as u64;
    let b = batch as u32;
    Ok(vec![
        row(
            "layernorm 1600",
            b,
            2 * rows_bytes + HALF * 2 * D as u64,
            layernorm,
            copy_gbps,
        ),
        row("embedding 1600", b, 3 * rows_bytes, embedding, copy_gbps),
    ])
}
