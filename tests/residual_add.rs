//! GPU test of the fp16 residual add against the CPU on fresh random inputs.

use gpu_kernels::abi::ResidualAddParams;
use half::f16;
use integration_tests::{fresh_rng, gpu, largest_difference, random_f16, relative_l2};

/// CPU twin of `residual_add_f16`: sum in f32, round once to f16.
fn residual_add_reference(a: &[f16], b: &[f16]) -> Vec<f16> {
    a.iter()
        .zip(b)
        .map(|(a, b)| f16::from_f32(a.to_f32() + b.to_f32()))
        .collect()
}

fn to_f32(v: &[f16]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// The kernel rounds exactly as the reference does, so anything but equal bits is a bug;
/// the relative error is printed to say how far off it is.
fn assert_matches(what: &str, out: &[f16], reference: &[f16]) {
    let (out, reference) = (to_f32(out), to_f32(reference));
    let error = relative_l2(&out, &reference);
    let mismatches = out
        .iter()
        .zip(&reference)
        .filter(|(o, r)| o.to_bits() != r.to_bits())
        .count();
    assert!(
        mismatches == 0 && error <= 1e-3,
        "{what}: {mismatches} elements differ, relative L2 error {error:e}, largest difference \
         (index, gpu, cpu) {:?}",
        largest_difference(&out, &reference)
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn residual_add_matches_cpu_at_many_lengths() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    // Lengths below, at and above one vector; GPT-2 widths; not multiples of 8; more
    // elements than one block covers; the vocabulary size.
    for len in [1, 7, 8, 9, 15, 768, 1600, 1603, 2049, 50257, (1 << 20) + 5] {
        let a = random_f16(&mut rng, len, 4.0);
        let b = random_f16(&mut rng, len, 4.0);
        let (a_gpu, b_gpu) = (gpu.upload(&a).unwrap(), gpu.upload(&b).unwrap());
        let mut out = gpu.alloc_poisoned::<f16>(len).unwrap();
        let params = ResidualAddParams {
            a: a_gpu.as_ptr(),
            b: b_gpu.as_ptr(),
            out: out.as_mut_ptr(),
            len: len as u32,
        };
        gpu.launch(params).unwrap();
        gpu.synchronize().unwrap();
        let got = out.to_host().unwrap();
        assert_matches(&format!("len {len}"), &got, &residual_add_reference(&a, &b));
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn residual_add_in_place_and_unaligned() {
    let gpu = gpu();
    let mut rng = fresh_rng();
    let len = 4099;
    let a = random_f16(&mut rng, len, 4.0);
    let b = random_f16(&mut rng, len, 4.0);
    let expected = residual_add_reference(&a, &b);

    // In place, as the decode step uses it: x += residual.
    let mut x = gpu.upload(&a).unwrap();
    let b_gpu = gpu.upload(&b).unwrap();
    let params = ResidualAddParams {
        a: x.as_ptr(),
        b: b_gpu.as_ptr(),
        out: x.as_mut_ptr(),
        len: len as u32,
    };
    gpu.launch(params).unwrap();
    gpu.synchronize().unwrap();
    assert_matches("in place", &x.to_host().unwrap(), &expected);

    // Views one element in: no pointer is 16-byte aligned, the kernel must take its
    // scalar path and still write every element.
    let a_gpu = gpu.upload(&a).unwrap();
    let mut out = gpu.alloc_poisoned::<f16>(len).unwrap();
    let params = ResidualAddParams {
        a: a_gpu.as_ptr().wrapping_add(1),
        b: b_gpu.as_ptr().wrapping_add(1),
        out: out.as_mut_ptr().wrapping_add(1),
        len: (len - 1) as u32,
    };
    gpu.launch(params).unwrap();
    gpu.synchronize().unwrap();
    let got = out.to_host().unwrap();
    assert!(got[0].is_nan(), "element before the view was written");
    assert_matches("unaligned", &got[1..], &expected[1..]);
}
