//! GPU tests of split decode attention against the CPU reference.

use gpu_kernels::abi::{AttentionParams, HEAD_DIM, HalfType};
use host::cuda::{Gpu, HalfBits};
use host::halves;
use host::reference::{self, KvShape};
use integration_tests::{
    GPT2_WIDTHS, GQA_HEADS, TEST_BATCHES, assert_close, fresh_rng, gpu, gpu_for, random_halves,
};
use rand::Rng;
use rand::rngs::StdRng;

/// Context lengths every width and batch is tested at: one position, fewer than a split,
/// exactly four splits, a partial last split, the full context.
const LENGTHS: [u32; 5] = [1, 7, 128, 1000, 1024];

/// GPT-2's heads: one KV head per query head, 64 wide.
fn mha(n_head: usize) -> (usize, usize, usize) {
    (n_head, n_head, HEAD_DIM as usize)
}

/// Runs both passes for sequences of `lengths` over fresh random q, K and V of `heads`
/// (query heads, KV heads, head size) in the GPU's half type and compares with the
/// reference.
fn check(
    gpu: &Gpu,
    rng: &mut StdRng,
    (n_head, n_kv_head, hd): (usize, usize, usize),
    lengths: &[u32],
    capacity: usize,
    bucket: u32,
) {
    let half = gpu.half_type();
    let batch = lengths.len();
    let d = n_head * hd;
    // q scaled up so the softmax is peaked, not flat: a wrong max or rescale shows.
    let q = random_halves(rng, batch * d, 3.0, half);
    let mut k = random_halves(rng, batch * n_kv_head * capacity * hd, 1.0, half);
    let mut v = random_halves(rng, batch * n_kv_head * capacity * hd, 1.0, half);
    // Rows past each length as a cache holds them before they are written: NaN, which
    // any row read past the length (and not masked) would carry into the output.
    for (b, &len) in lengths.iter().enumerate() {
        for head in 0..n_kv_head {
            let rows = (b * n_kv_head + head) * capacity;
            for cache in [&mut k, &mut v] {
                cache[(rows + len as usize) * hd..(rows + capacity) * hd].fill(HalfBits::NAN);
            }
        }
    }
    let (q_gpu, k_gpu, v_gpu) = (
        gpu.upload(&q).unwrap(),
        gpu.upload(&k).unwrap(),
        gpu.upload(&v).unwrap(),
    );
    let lengths_gpu = gpu.upload(lengths).unwrap();
    let splits = AttentionParams::splits(bucket) as usize;
    let mut partial_out = gpu
        .alloc_poisoned::<f32>(batch * n_head * splits * hd)
        .unwrap();
    let mut partial_stats = gpu
        .alloc_poisoned::<f32>(batch * n_head * splits * 2)
        .unwrap();
    let mut out = gpu.alloc_poisoned::<HalfBits>(batch * d).unwrap();
    let scale = 1.0 / (hd as f32).sqrt();
    let mut results = Vec::new();
    let mut counters = gpu.upload(&vec![0u32; batch * n_head]).unwrap();
    // Rows requested before the programmatic wait, all but the last `fresh` of each
    // sequence (its length is then settled + fresh): none (lengths read after the
    // wait), all but the newest, the shortest sequence's all, some.
    let shortest = *lengths.iter().min().unwrap();
    let early = [
        None,
        Some(1),
        Some(shortest),
        Some(rng.random_range(1..=shortest)),
    ];
    let settled = early.map(|fresh| {
        fresh.map(|fresh| {
            let rows: Vec<u32> = lengths.iter().map(|&l| l - fresh).collect();
            (gpu.upload(&rows).unwrap(), fresh)
        })
    });
    // Each launch must leave the counters as the next needs them.
    for (launch, settled) in settled.iter().enumerate() {
        out.poison().unwrap();
        gpu.launch(AttentionParams {
            q: q_gpu.as_ptr(),
            k: k_gpu.as_ptr(),
            v: v_gpu.as_ptr(),
            lengths: lengths_gpu.as_ptr(),
            settled: settled
                .as_ref()
                .map_or(std::ptr::null(), |(s, _)| s.as_ptr()),
            fresh_rows: settled.as_ref().map_or(0, |&(_, fresh)| fresh),
            out: out.as_mut_ptr(),
            partial_out: partial_out.as_mut_ptr(),
            partial_stats: partial_stats.as_mut_ptr(),
            counters: counters.as_mut_ptr(),
            n_head: n_head as u32,
            n_kv_head: n_kv_head as u32,
            head_dim: hd as u32,
            batch: batch as u32,
            capacity: capacity as u32,
            context_bucket: bucket,
            scale,
        })
        .unwrap();
        gpu.synchronize().unwrap();
        results.push(halves::to_f32(&out.to_host().unwrap(), half));
        assert!(
            counters.to_host().unwrap().iter().all(|&c| c == 0),
            "launch {launch} left counters set"
        );
    }
    let shape = KvShape {
        n_head,
        n_kv_head,
        head_dim: hd,
        capacity,
    };
    let f32s = |v: &[HalfBits]| halves::to_f32(v, half);
    let expected = reference::attention(&f32s(&q), &f32s(&k), &f32s(&v), lengths, shape, scale);
    let what = format!(
        "{half:?} heads {n_head}/{n_kv_head}x{hd} lengths {lengths:?} capacity {capacity} \
         bucket {bucket}"
    );
    let threshold = match half {
        HalfType::F16 => 2e-3,
        HalfType::Bf16 => 1e-2,
    };
    assert_close(&what, &results[0], &expected, threshold);
    // Splits finish in any order, but are combined in split order, and a row gives the
    // same products whenever it was requested: bit-identical.
    for (launch, result) in results.iter().enumerate().skip(1) {
        let identical = results[0]
            .iter()
            .zip(result)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(identical, "{what}: launch {launch} differs from the first");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn attention_matches_cpu_at_every_width_batch_and_length() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    for (_, n_head) in GPT2_WIDTHS {
        for batch in TEST_BATCHES {
            // Sequences of different lengths in one batch, every length in every batch
            // size that holds it; batch 1 goes through each length in turn.
            if batch == 1 {
                for len in LENGTHS {
                    check(&gpu, &mut rng, mha(n_head), &[len], 1024, 1024);
                }
            } else {
                let lengths: Vec<u32> = (0..batch).map(|b| LENGTHS[b % LENGTHS.len()]).collect();
                check(&gpu, &mut rng, mha(n_head), &lengths, 1024, 1024);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn attention_in_a_context_bucket_smaller_than_the_cache() {
    // A graph captured for the 128-position bucket reads a 1024-position cache: the
    // stride is the capacity, the grid the bucket, each length anything up to 128.
    let gpu = gpu();
    let mut rng = fresh_rng();
    check(
        &gpu,
        &mut rng,
        mha(25),
        &[1, 31, 32, 33, 100, 128],
        1024,
        128,
    );
    check(&gpu, &mut rng, mha(12), &[5, 128, 64], 2048, 128);
    // Buckets of one and of three splits (every split of a head in one block).
    check(&gpu, &mut rng, mha(16), &[1, 7, 32], 1024, 32);
    check(&gpu, &mut rng, mha(20), &[96, 65, 33, 2], 1024, 96);
    // 32 sequences of 25 heads: 800 one-block (sequence, head)s, more than one wave of
    // four blocks per SM, as gpt2-xl's steps at batch 32 run them.
    let lengths: Vec<u32> = (0..32).map(|b| 1 + (b * 37 % 128) as u32).collect();
    check(&gpu, &mut rng, mha(25), &lengths, 1024, 128);
    // Buckets whose splits combine in a cluster's first block, some of its blocks idle.
    check(&gpu, &mut rng, mha(12), &[129, 1, 200, 160], 1024, 200);
    check(&gpu, &mut rng, mha(25), &[256, 129, 17], 1024, 256);
    check(&gpu, &mut rng, mha(16), &[512, 300, 1], 1024, 512);
    check(&gpu, &mut rng, mha(20), &[384, 257, 3], 1024, 384);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn attention_beyond_one_cluster_combines_through_global_memory() {
    // Past 1024 positions the splits of a head outnumber a cluster's warps: the last
    // split to finish combines them all (fence and atomic counter).
    let gpu = gpu();
    let mut rng = fresh_rng();
    check(&gpu, &mut rng, mha(12), &[2048, 1025, 1, 1500], 2048, 2048);
    check(&gpu, &mut rng, mha(25), &[1100], 1536, 1100);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn grouped_query_attention_matches_cpu_for_every_head_layout_and_type() {
    // Every Llama / Qwen / SmolLM2 layout (heads of 64 and 128, 3 to 7 query heads a KV
    // head) in both types, through each combine: in a block, in clusters of 2 and 8,
    // through memory.
    for half in HalfType::ALL {
        let gpu = gpu_for(half);
        let mut rng = fresh_rng();
        for heads in GQA_HEADS {
            check(&gpu, &mut rng, heads, &[1, 77, 128], 1024, 128);
            check(&gpu, &mut rng, heads, &[200, 3, 256], 1024, 256);
            check(&gpu, &mut rng, heads, &[1000, 1024, 513], 1024, 1024);
            check(&gpu, &mut rng, heads, &[1500, 2], 2048, 2048);
            let lengths: Vec<u32> = (0..32).map(|b| 1 + (b * 37 % 128) as u32).collect();
            check(&gpu, &mut rng, heads, &lengths, 256, 128);
        }
    }
}
