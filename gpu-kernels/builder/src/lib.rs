//! Rust -> PTX for the kernels crate, shared by `cargo xtask build-ptx` and `host/build.rs`.
//!
//! rustc's `nvptx64-nvidia-cuda` target hands linking to `llvm-bitcode-linker`, which
//! rustup does not serve here. The program that calls [`build_ptx`] stands in for it:
//! cargo is told to use the calling executable as the linker, and that executable must
//! call [`act_as_linker_if_asked`] first thing in `main`. See [`linker`] for what it does.

pub mod linker;
pub mod ptxas;

use anyhow::{Context, Result, bail, ensure};
use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use linker::act_as_linker_if_asked;

/// The rustc target the kernels are built for.
pub const TARGET: &str = "nvptx64-nvidia-cuda";
/// The architecture the PTX is written for unless asked otherwise.
pub const DEFAULT_ARCH: &str = "sm_90";
/// The PTX ISA version, written explicitly so the `.version` line does not drift with
/// LLVM's default. PTX 8.1 adds `st.async` (remote shared-memory stores that count their
/// bytes at an mbarrier, which the cluster kernels use) to 8.0's sm_90 features;
/// ptxas 12.1 and later and the drivers of CUDA 12.1 and later accept it.
pub const PTX_ISA_FEATURE: &str = "+ptx81";
/// panic=abort, in its immediate form: a kernel that panics (a failed bounds check) traps
/// at once instead of first formatting a message it has nowhere to print, which also
/// keeps the formatting's stack objects out of every kernel.
const PANIC: &str = "-Zunstable-options -Cpanic=immediate-abort";
/// Kernels keep small per-thread arrays (accumulators for a batch tile, loads in flight)
/// in registers only when the loops over them unroll fully; LLVM's default threshold
/// stops short of the 32-row batch tile and leaves them in local memory.
const UNROLL: &str = "-Cllvm-args=-unroll-threshold=12000";
/// Where the project keeps the tools its test command provides (ptxas, libcuda).
pub const TOOLS_DIR: &str = ".tools";

pub use gpu_kernels::abi::HalfType;

/// The cargo arguments that build the module of `half`.
fn features(half: HalfType) -> &'static [&'static str] {
    match half {
        HalfType::F16 => &[],
        HalfType::Bf16 => &["--features", "bf16"],
    }
}

/// The nested build's target directory for `half`: one each, since switching features
/// in one would rebuild core.
fn target_dir_name(half: HalfType) -> &'static str {
    match half {
        HalfType::F16 => "cargo",
        HalfType::Bf16 => "cargo-bf16",
    }
}

/// Where the built PTX of `half` lands, relative to the workspace root.
pub fn ptx_path(workspace: &Path, half: HalfType) -> PathBuf {
    workspace.join("target").join("ptx").join(half.ptx_file())
}

/// The files whose change must rebuild the PTX (for `cargo:rerun-if-changed`).
pub fn kernel_sources(workspace: &Path) -> Vec<PathBuf> {
    vec![
        workspace.join("gpu-kernels").join("src"),
        workspace.join("gpu-kernels").join("Cargo.toml"),
        workspace.join("rust-toolchain.toml"),
    ]
}

/// Checks an `--arch` value such as `sm_90` or `sm_90a`.
pub fn validate_arch(arch: &str) -> Result<()> {
    let digits = arch
        .strip_prefix("sm_")
        .map(|rest| rest.strip_suffix('a').unwrap_or(rest));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            let number: u32 = d.parse()?;
            ensure!(
                number >= 70,
                "arch {arch}: the nvptx64 target supports sm_70 and newer"
            );
            Ok(())
        }
        _ => bail!("arch {arch:?} is not of the form sm_NN or sm_NNa (for example sm_90)"),
    }
}

/// Builds the kernels crate to PTX for `arch` and `half` and returns the path of the PTX
/// file.
///
/// Runs a nested `cargo rustc` with its own target directory (so it never waits on the
/// lock of an outer build), `-Zbuild-std=core` and `panic=abort`, linking through the
/// current executable.
pub fn build_ptx(workspace: &Path, arch: &str, half: HalfType) -> Result<PathBuf> {
    validate_arch(arch)?;
    let llvm_bin = llvm_tools_dir(workspace)?;
    let target_dir = workspace
        .join("target")
        .join("ptx")
        .join(target_dir_name(half));
    let linker = env::current_exe().context("locating the current executable (the linker)")?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));

    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "rustc",
            "--release",
            "--package",
            "gpu-kernels",
            "--target",
            TARGET,
        ])
        .args(features(half))
        .args(["-Zbuild-std=core", "--crate-type", "cdylib", "--target-dir"])
        .arg(&target_dir);
    // An outer cargo (when called from a build script) or a developer's shell may set
    // variables meant for the host build; none of them apply to the kernels.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("DEP_")
        {
            cmd.env_remove(&*key);
        }
    }
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
    ] {
        cmd.env_remove(key);
    }
    // Passed per target, not as RUSTFLAGS: a changed linker path then relinks only the
    // kernels instead of rebuilding core.
    cmd.env("CARGO_TARGET_NVPTX64_NVIDIA_CUDA_LINKER", &linker)
        .env(
            "CARGO_TARGET_NVPTX64_NVIDIA_CUDA_RUSTFLAGS",
            format!("-Ctarget-cpu={arch} -Ctarget-feature={PTX_ISA_FEATURE} {PANIC} {UNROLL}"),
        )
        .env(linker::LLVM_BIN_ENV, &llvm_bin);

    let status = cmd
        .status()
        .context("running cargo to build gpu-kernels for nvptx64")?;
    ensure!(
        status.success(),
        "building gpu-kernels for {TARGET} failed ({status})"
    );

    let built = target_dir
        .join(TARGET)
        .join("release")
        .join("gpu_kernels.ptx");
    let out = ptx_path(workspace, half);
    let ptx =
        std::fs::read_to_string(&built).with_context(|| format!("reading {}", built.display()))?;
    let bounds: Vec<_> = gpu_kernels::abi::launch_bounds().collect();
    let ptx = with_launch_bounds(&ptx, &bounds)?;
    let clusters: Vec<_> = gpu_kernels::abi::cluster_dims().collect();
    let ptx = with_cluster_dims(&ptx, &clusters)?;
    std::fs::write(&out, &ptx).with_context(|| format!("writing {}", out.display()))?;
    ensure!(
        ptx.contains(&format!(".target {arch}")),
        "{} does not target {arch}",
        out.display()
    );
    Ok(out)
}

/// `ptx` with `.maxntid` and `.minnctapersm` written after the parameter list of each
/// entry that `bounds` names (rustc has no `__launch_bounds__`): ptxas then keeps those
/// kernels' registers low enough for that many blocks per SM.
pub fn with_launch_bounds(ptx: &str, bounds: &[gpu_kernels::abi::LaunchBounds]) -> Result<String> {
    let mut out = ptx.to_owned();
    for b in bounds {
        let directives = format!(
            "\n.maxntid {}, 1, 1\n.minnctapersm {}",
            b.threads, b.min_blocks_per_sm
        );
        insert_after_parameters(&mut out, b.entry, &directives, "launch bounds")?;
    }
    Ok(out)
}

/// `ptx` with `.reqnctapercluster` written after the parameter list of each entry that
/// `clusters` names (rustc has no `__cluster_dims__`): the driver then launches those
/// kernels as clusters of that many blocks, whichever API launches them.
pub fn with_cluster_dims(ptx: &str, clusters: &[gpu_kernels::abi::ClusterDims]) -> Result<String> {
    let mut out = ptx.to_owned();
    for c in clusters {
        let directive = format!("\n.reqnctapercluster {}, 1, 1", c.blocks);
        insert_after_parameters(&mut out, c.entry, &directive, "cluster dims")?;
    }
    Ok(out)
}

/// Inserts `directives` after the closing parenthesis of `entry`'s parameter list.
fn insert_after_parameters(
    ptx: &mut String,
    entry: &str,
    directives: &str,
    what: &str,
) -> Result<()> {
    let header = format!(".entry {entry}(");
    let Some(start) = ptx.find(&header) else {
        bail!("{what} for {entry}, which the PTX does not define");
    };
    let Some(close) = ptx[start..].find(')') else {
        bail!("the parameter list of {entry} does not end");
    };
    ptx.insert_str(start + close + 1, directives);
    Ok(())
}

/// The directory holding llvm-link, opt and llc of the pinned toolchain's llvm-tools.
fn llvm_tools_dir(workspace: &Path) -> Result<PathBuf> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let query = |args: &[&str]| -> Result<String> {
        let out = Command::new(&rustc)
            .current_dir(workspace)
            .args(args)
            .output()
            .with_context(|| format!("running rustc {}", args.join(" ")))?;
        ensure!(out.status.success(), "rustc {} failed", args.join(" "));
        Ok(String::from_utf8(out.stdout)?)
    };
    let sysroot = query(&["--print", "sysroot"])?;
    let host = query(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host triple")?;
    let dir = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin");
    for tool in linker::LLVM_TOOLS {
        ensure!(
            dir.join(tool).is_file(),
            "{tool} not found in {}: install the llvm-tools component (rustup component add llvm-tools)",
            dir.display()
        );
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_kernels::abi::{ClusterDims, LaunchBounds};

    const PTX: &str = ".visible .entry a(\n\t.param .u64 a_param_0\n)\n{\n\tret;\n}\n\
                       .visible .entry ab(\n\t.param .u64 ab_param_0\n)\n{\n\tret;\n}\n";

    #[test]
    fn launch_bounds_follow_the_named_entrys_parameters_only() {
        let bounds = [LaunchBounds {
            entry: "ab",
            threads: 512,
            min_blocks_per_sm: 1,
        }];
        let out = with_launch_bounds(PTX, &bounds).unwrap();
        assert!(out.contains(
            ".entry ab(\n\t.param .u64 ab_param_0\n)\n.maxntid 512, 1, 1\n.minnctapersm 1\n{"
        ));
        assert_eq!(out.matches(".maxntid").count(), 1, "{out}");
    }

    #[test]
    fn cluster_dims_follow_the_named_entrys_parameters() {
        let clusters = [ClusterDims {
            entry: "a",
            blocks: 8,
        }];
        let out = with_cluster_dims(PTX, &clusters).unwrap();
        assert!(
            out.contains(".entry a(\n\t.param .u64 a_param_0\n)\n.reqnctapercluster 8, 1, 1\n{")
        );
        assert_eq!(out.matches(".reqnctapercluster").count(), 1, "{out}");
        let missing = [ClusterDims {
            entry: "c",
            blocks: 2,
        }];
        let error = with_cluster_dims(PTX, &missing).unwrap_err().to_string();
        assert!(error.contains("cluster dims for c"), "{error}");
    }

    #[test]
    fn launch_bounds_for_a_missing_entry_are_an_error() {
        let bounds = [LaunchBounds {
            entry: "b",
            threads: 256,
            min_blocks_per_sm: 2,
        }];
        let error = with_launch_bounds(PTX, &bounds).unwrap_err().to_string();
        assert!(error.contains("launch bounds for b"), "{error}");
    }
}
