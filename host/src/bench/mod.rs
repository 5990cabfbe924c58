//! Benchmarks run on the GPU: each prints a table with the bandwidth floor beside every
//! time and returns rows for JSON.
//!
//! One way to time: the unit of work is captured into a CUDA graph `repeats` times over
//! distinct buffers (so no launch gaps are measured and nothing is served from L2), the
//! graph is replayed after a warm-up, and the median replay over `repeats` is the time.
//! The device-to-device copy bandwidth is measured in the same run and is the ceiling.

pub mod compare;
pub mod decode;
pub mod kernels;

use crate::cuda::{CudaError, Gpu, GpuBuffer};

/// Replays timed per measurement, after [`WARMUP`] untimed ones.
const REPLAYS: usize = 20;
const WARMUP: usize = 3;

/// One row of a benchmark table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// What ran.
    pub case: String,
    /// Sequences.
    pub batch: u32,
    /// Bytes the unit must move through device memory at least.
    pub bytes: u64,
    /// `bytes` at the measured copy bandwidth, microseconds.
    pub floor_us: f64,
    /// Median time of one unit, microseconds.
    pub time_us: f64,
    /// Achieved bandwidth over copy bandwidth (= floor / time), percent.
    pub percent_of_copy: f64,
}

/// Device-to-device copy bandwidth in GB/s, counting bytes read plus bytes written: the
/// median over `REPLAYS` (20) copies of a 1 GiB buffer.
pub fn copy_bandwidth_gbps(gpu: &Gpu) -> Result<f64, CudaError> {
    let len = 1 << 29; // halves: 1 GiB
    let src = random_f16(gpu, len, 1, 1.0)?;
    let mut dst = gpu.alloc_poisoned::<half::f16>(len)?;
    let mut times = Vec::new();
    for i in 0..WARMUP + REPLAYS {
        let ms = gpu.time_ms(|gpu| gpu.copy(&mut dst, &src))?;
        if i >= WARMUP {
            times.push(ms);
        }
    }
    let seconds = f64::from(median(&mut times)) / 1e3;
    Ok(2.0 * (len * 2) as f64 / seconds / 1e9)
}

/// Median GPU time of one unit, in microseconds: `enqueue(i)` enqueues unit `i` (of
/// `repeats`, each over its own buffers); all are captured into one graph.
pub fn time_unit_us(
    gpu: &Gpu,
    repeats: usize,
    enqueue: impl Fn(&Gpu, usize) -> Result<(), CudaError>,
) -> Result<f64, CudaError> {
    let graph = gpu.capture(|gpu| (0..repeats).try_for_each(|i| enqueue(gpu, i)))?;
    let graph = gpu.instantiate(graph)?;
    let mut times = Vec::new();
    for i in 0..WARMUP + REPLAYS {
        let ms = gpu.time_ms(|gpu| gpu.replay(&graph))?;
        if i >= WARMUP {
            times.push(ms);
        }
    }
    Ok(f64::from(median(&mut times)) * 1e3 / repeats as f64)
}

/// A row from the bytes a unit moves and its time.
pub fn row(case: impl Into<String>, batch: u32, bytes: u64, time_us: f64, copy_gbps: f64) -> Row {
    let floor_us = bytes as f64 / (copy_gbps * 1e3);
    Row {
        case: case.into(),
        batch,
        bytes,
        floor_us,
        time_us,
        percent_of_copy: 100.0 * floor_us / time_us,
    }
}

/// Prints rows as a table.
pub fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<width$} | batch |      bytes | floor us |  time us | % of copy",
        "case"
    );
    println!(
        "{:-<width$}-|-------|------------|----------|----------|----------",
        ""
    );
    for r in rows {
        println!(
            "{:<width$} | {:>5} | {:>10} | {:>8.2} | {:>8.2} | {:>8.1}",
            r.case, r.batch, r.bytes, r.floor_us, r.time_us, r.percent_of_copy
        );
    }
}

/// A new buffer of `len` uniform random halves in (-scale, scale), made on the GPU.
pub fn random_f16(
    gpu: &Gpu,
    len: usize,
    seed: u64,
    scale: f32,
) -> Result<GpuBuffer<half::f16>, CudaError> {
    let mut buffer = gpu.alloc_poisoned::<half::f16>(len)?;
    gpu.fill_uniform(&mut buffer, seed, scale)?;
    gpu.synchronize()?;
    Ok(buffer)
}

fn median(values: &mut [f32]) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ratio_is_floor_over_time() {
        // 3 GB at 3000 GB/s is 1000 us; taking 1250 us is 80 % of copy bandwidth.
        let r = row("x", 1, 3_000_000_000, 1250.0, 3000.0);
        assert!((r.floor_us - 1000.0).abs() < 1e-9);
        assert!((r.percent_of_copy - 80.0).abs() < 1e-9);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }
}
