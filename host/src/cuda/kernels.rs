//! The kernels' PTX, built by host/build.rs from gpu-kernels and embedded in the binary:
//! one module over fp16, one over bf16.

use gpu_kernels::abi::HalfType;

/// The fp16 module of every kernel in gpu-kernels. A static, not a const: a const's
/// 1.5 MB string was copied into each codegen unit that named it.
pub static KERNELS_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));

/// The same kernels over bf16.
pub static KERNELS_BF16_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels_bf16.ptx"));

/// The module of kernels over `half`.
pub fn kernels_ptx(half: HalfType) -> &'static str {
    match half {
        HalfType::F16 => KERNELS_PTX,
        HalfType::Bf16 => KERNELS_BF16_PTX,
    }
}

/// The architecture of a PTX module's `.target` line, such as `sm_90`.
pub fn ptx_target_arch(ptx: &str) -> Option<&str> {
    ptx.lines()
        .find_map(|line| line.trim().strip_prefix(".target "))
        .map(|targets| targets.split(',').next().unwrap_or(targets).trim())
}

/// The PTX ISA version of a module's `.version` line, such as `(8, 1)`.
pub fn ptx_isa_version(ptx: &str) -> Option<(u32, u32)> {
    let version = ptx
        .lines()
        .find_map(|line| line.trim().strip_prefix(".version "))?;
    let (major, minor) = version.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The kernel entries of a PTX module with the number of parameters each takes.
pub fn ptx_entries(ptx: &str) -> Vec<(&str, usize)> {
    let mut entries = Vec::new();
    let mut rest = ptx;
    while let Some(start) = rest.find(".entry ") {
        let after = &rest[start + ".entry ".len()..];
        let name_end = after.find('(').unwrap_or(after.len());
        let params_end = after.find(')').unwrap_or(after.len());
        let params = &after[name_end..params_end];
        entries.push((after[..name_end].trim(), params.matches(".param").count()));
        rest = &after[params_end..];
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_kernels::abi::ALL_ENTRIES;

    #[test]
    fn embedded_ptx_targets_sm_90() {
        for half in HalfType::ALL {
            assert_eq!(ptx_target_arch(kernels_ptx(half)), Some("sm_90"));
        }
        assert!(KERNELS_PTX.contains(".f32.f16.f16.f32"));
        assert!(KERNELS_BF16_PTX.contains(".f32.bf16.bf16.f32"));
    }

    /// The host launches every kernel with exactly one parameter, its abi struct, found by
    /// the name in abi.rs; a kernel renamed on one side only must fail here, not on a GPU.
    #[test]
    fn every_abi_kernel_is_a_ptx_entry_taking_one_struct() {
        for half in HalfType::ALL {
            entries_match_the_abi(kernels_ptx(half));
        }
    }

    fn entries_match_the_abi(ptx: &str) {
        let entries = ptx_entries(ptx);
        let names: Vec<&str> = ALL_ENTRIES.iter().flat_map(|f| f.iter().copied()).collect();
        for name in &names {
            let found = entries.iter().find(|(entry, _)| entry == name);
            assert_eq!(
                found.map(|(_, params)| *params),
                Some(1),
                "{name}: entries in the PTX are {entries:?}"
            );
        }
        assert_eq!(entries.len(), names.len(), "PTX entries {entries:?}");
    }
}
