//! GPU test of the rotary embedding and cache write (`rope_kv`) against the CPU reference:
//! every head layout of the Llama and Qwen families, fp16 and bf16, positions anywhere in
//! the cache (the table with Llama 3.1's scaling).

use gpu_kernels::abi::{HalfType, RopeKvParams};
use host::cuda::HalfBits;
use host::halves::to_f32;
use host::model::Rope;
use host::reference::{self, QkvHeads};
use integration_tests::{
    GQA_HEADS, TEST_BATCHES, assert_close, fresh_rng, gpu_for, random_halves, storage_threshold,
};
use rand::Rng;

const CAPACITY: usize = 300;

#[test]
#[ignore = "needs a CUDA GPU"]
fn rope_kv_matches_cpu_and_writes_only_the_positions() {
    let rope = Rope::LLAMA_3_1;
    for half in HalfType::ALL {
        let gpu = gpu_for(half);
        let mut rng = fresh_rng();
        for (n_head, n_kv_head, head_dim) in GQA_HEADS {
            let heads = QkvHeads {
                n_head,
                n_kv_head,
                head_dim,
            };
            let table = rope.table(head_dim, CAPACITY);
            let table_gpu = gpu.upload(&table).unwrap();
            for batch in TEST_BATCHES {
                let what = format!("{half:?} heads {n_head}/{n_kv_head}x{head_dim} batch {batch}");
                let qkv = random_halves(&mut rng, batch * heads.width(), 3.0, half);
                let positions: Vec<u32> = (0..batch)
                    .map(|_| rng.random_range(0..CAPACITY as u32))
                    .collect();
                let cache_len = batch * n_kv_head * CAPACITY * head_dim;
                let (qkv_gpu, positions_gpu) =
                    (gpu.upload(&qkv).unwrap(), gpu.upload(&positions).unwrap());
                let mut q = gpu.alloc_poisoned(batch * n_head * head_dim).unwrap();
                let mut k = gpu.alloc_poisoned(cache_len).unwrap();
                let mut v = gpu.alloc_poisoned(cache_len).unwrap();
                gpu.launch(RopeKvParams {
                    qkv: qkv_gpu.as_ptr(),
                    rope: table_gpu.as_ptr(),
                    positions: positions_gpu.as_ptr(),
                    q: q.as_mut_ptr(),
                    k: k.as_mut_ptr(),
                    v: v.as_mut_ptr(),
                    n_head: n_head as u32,
                    n_kv_head: n_kv_head as u32,
                    head_dim: head_dim as u32,
                    capacity: CAPACITY as u32,
                    batch: batch as u32,
                })
                .unwrap();
                gpu.synchronize().unwrap();
                let qkv = to_f32(&qkv, half);
                let (k_got, v_got): (Vec<HalfBits>, Vec<HalfBits>) =
                    (k.to_host().unwrap(), v.to_host().unwrap());
                let (mut q_ref, mut kv_ref, mut kv_out) = (vec![], vec![], vec![]);
                let mut written = vec![false; cache_len];
                for (b, &position) in positions.iter().enumerate() {
                    let row = &qkv[b * heads.width()..][..heads.width()];
                    let (q_row, k_row, v_row) =
                        reference::rope_row(row, heads, &table, position as usize);
                    q_ref.extend(q_row);
                    for (i, (k_value, v_value)) in k_row.iter().zip(&v_row).enumerate() {
                        let (kv_head, dim) = (i / head_dim, i % head_dim);
                        let at = ((b * n_kv_head + kv_head) * CAPACITY + position as usize)
                            * head_dim
                            + dim;
                        kv_ref.extend([*k_value, *v_value]);
                        kv_out.extend([k_got[at].to_f32(half), v_got[at].to_f32(half)]);
                        written[at] = true;
                    }
                }
                let threshold = storage_threshold(half);
                let q_out = to_f32(&q.to_host().unwrap(), half);
                assert_close(&format!("q: {what}"), &q_out, &q_ref, threshold);
                assert_close(&format!("k, v: {what}"), &kv_out, &kv_ref, threshold);
                let stray = (0..cache_len)
                    .filter(|&i| {
                        !written[i] && (k_got[i] != HalfBits::NAN || v_got[i] != HalfBits::NAN)
                    })
                    .count();
                assert_eq!(stray, 0, "{what}: cache written outside the positions");
            }
        }
    }
}
