//! What the embedded PTX asks of the machine: a GPU at least as new as its `.target` and
//! a driver at least as new as its `.version`. Checked when a [`super::Gpu`] opens, so
//! that an old GPU or driver gets one line naming what is needed, not the JIT's error
//! at module load.

use super::device::GpuInfo;
use super::error::CudaError;
use super::kernels::{KERNELS_PTX, ptx_isa_version, ptx_target_arch};

/// Refuses a device older than the PTX's `.target`.
pub(crate) fn check_arch(info: &GpuInfo) -> Result<(), CudaError> {
    let arch = ptx_target_arch(KERNELS_PTX).unwrap_or("sm_90");
    let needed = required_compute_capability(arch);
    if info.compute_capability >= needed {
        return Ok(());
    }
    Err(CudaError::GpuTooOld {
        ordinal: info.ordinal,
        name: info.name.clone(),
        found: format!(
            "{}.{}",
            info.compute_capability.0, info.compute_capability.1
        ),
        arch: arch.to_owned(),
        needed: format!("{}.{}", needed.0, needed.1),
    })
}

/// Refuses a driver older than the CUDA release that introduced the PTX's ISA version
/// (`driver_cuda`: the newest CUDA version it supports, as `cuDriverGetVersion` says).
pub(crate) fn check_driver(driver_cuda: (u32, u32)) -> Result<(), CudaError> {
    check_driver_for(KERNELS_PTX, driver_cuda)
}

fn check_driver_for(ptx: &str, driver_cuda: (u32, u32)) -> Result<(), CudaError> {
    // An ISA this table does not know is newer than it: the driver's own error applies.
    let Some(isa) = ptx_isa_version(ptx) else {
        return Ok(());
    };
    let Some(needed) = first_cuda_for_isa(isa) else {
        return Ok(());
    };
    if driver_cuda >= needed {
        return Ok(());
    }
    Err(CudaError::DriverTooOld {
        found: format!("{}.{}", driver_cuda.0, driver_cuda.1),
        isa: format!("{}.{}", isa.0, isa.1),
        needed: format!("{}.{}", needed.0, needed.1),
    })
}

/// The first CUDA release whose driver loads PTX of ISA `(major, minor)`, from the PTX
/// ISA's release history (ISA 7.x came with CUDA 11.x, 8.0-8.5 with 12.0-12.5, 8.6-8.8
/// with 12.7-12.9, 9.x with 13.x); `None` for versions outside that table.
fn first_cuda_for_isa((major, minor): (u32, u32)) -> Option<(u32, u32)> {
    match (major, minor) {
        (7, 0..=8) => Some((11, minor)),
        (8, 0..=5) => Some((12, minor)),
        (8, 6..=8) => Some((12, minor + 1)),
        (9, 0..=1) => Some((13, minor)),
        _ => None,
    }
}

/// `sm_90` -> (9, 0), `sm_90a` -> (9, 0), `sm_100` -> (10, 0).
fn required_compute_capability(arch: &str) -> (u32, u32) {
    let digits: u32 = arch
        .trim_start_matches("sm_")
        .trim_end_matches('a')
        .parse()
        .unwrap_or(0);
    (digits / 10, digits % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_to_compute_capability() {
        assert_eq!(required_compute_capability("sm_90"), (9, 0));
        assert_eq!(required_compute_capability("sm_90a"), (9, 0));
        assert_eq!(required_compute_capability("sm_80"), (8, 0));
        assert_eq!(required_compute_capability("sm_100"), (10, 0));
    }

    #[test]
    fn an_ampere_gpu_is_refused_with_a_clear_line() {
        let a100 = GpuInfo {
            ordinal: 0,
            name: "NVIDIA A100-SXM4-80GB".into(),
            compute_capability: (8, 0),
            multiprocessors: 108,
            total_memory: 80 << 30,
            l2_bytes: 40 << 20,
            driver_cuda: (13, 0),
        };
        let message = check_arch(&a100).unwrap_err().to_string();
        assert_eq!(
            message,
            "GPU 0 (NVIDIA A100-SXM4-80GB) has compute capability 8.0; the kernels are built \
             for sm_90 and need compute capability 9.0 or newer"
        );
        let h100 = GpuInfo {
            compute_capability: (9, 0),
            ..a100
        };
        assert!(check_arch(&h100).is_ok());
    }

    #[test]
    fn isa_to_first_cuda_release() {
        assert_eq!(first_cuda_for_isa((7, 8)), Some((11, 8)));
        assert_eq!(first_cuda_for_isa((8, 0)), Some((12, 0)));
        assert_eq!(first_cuda_for_isa((8, 1)), Some((12, 1)));
        assert_eq!(first_cuda_for_isa((8, 5)), Some((12, 5)));
        // CUDA 12.6 brought no new ISA: 8.6 is 12.7's.
        assert_eq!(first_cuda_for_isa((8, 6)), Some((12, 7)));
        assert_eq!(first_cuda_for_isa((8, 8)), Some((12, 9)));
        assert_eq!(first_cuda_for_isa((9, 0)), Some((13, 0)));
        assert_eq!(first_cuda_for_isa((9, 9)), None);
    }

    #[test]
    fn an_old_driver_is_refused_with_a_clear_line() {
        let ptx = "//\n.version 8.1\n.target sm_90\n.address_size 64\n";
        let message = check_driver_for(ptx, (12, 0)).unwrap_err().to_string();
        assert_eq!(
            message,
            "the CUDA driver supports CUDA 12.0; the kernels are PTX ISA 8.1 and need a \
             driver for CUDA 12.1 or newer"
        );
        assert!(check_driver_for(ptx, (12, 1)).is_ok());
        assert!(check_driver_for(ptx, (13, 0)).is_ok());
        // A version the table does not know is left to the driver.
        assert!(check_driver_for(".version 9.9\n", (12, 0)).is_ok());
        assert!(check_driver_for(".target sm_90\n", (12, 0)).is_ok());
    }

    #[test]
    fn the_embedded_ptx_names_a_known_isa() {
        let isa = ptx_isa_version(KERNELS_PTX).expect("the PTX has a .version line");
        assert!(
            first_cuda_for_isa(isa).is_some(),
            "PTX ISA {isa:?} is missing from first_cuda_for_isa"
        );
    }
}
