//! A stand-in for rustc's `llvm-bitcode-linker`, which rustup does not serve here.
//!
//! rustc links an nvptx64 cdylib by calling its linker with the crate's bitcode objects,
//! the bitcode rlibs of core and compiler_builtins, `--export-symbol` for every kernel,
//! `--target-cpu`, `--target-feature`, `-O<level>` and `-o out.ptx`. This does what the
//! real tool does with llvm-tools: `llvm-link` the bitcode, internalize everything but
//! the kernels and drop what is unused (`opt`), optimize, and write PTX with `llc`.

use anyhow::{Context, Result, bail, ensure};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to the llvm-tools bin directory) when the current executable is to act as the
/// linker.
pub const LLVM_BIN_ENV: &str = "PTX_BUILDER_LLVM_BIN";
/// The llvm-tools programs the linker runs.
pub const LLVM_TOOLS: [&str; 3] = ["llvm-link", "opt", "llc"];

/// If this process was started by rustc as the nvptx linker, links and exits; otherwise
/// returns. Call it first in `main` of every program that calls [`crate::build_ptx`].
pub fn act_as_linker_if_asked() {
    let Some(llvm_bin) = std::env::var_os(LLVM_BIN_ENV) else {
        return;
    };
    let result = LinkRequest::parse(std::env::args_os().skip(1))
        .and_then(|request| request.run(Path::new(&llvm_bin)));
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("ptx linker: {e:#}");
            std::process::exit(1)
        }
    }
}

/// What rustc asked the linker to do.
#[derive(Debug, Default, PartialEq)]
pub struct LinkRequest {
    /// Bitcode objects and rlibs, in rustc's order.
    pub inputs: Vec<PathBuf>,
    /// Kernel entry points to keep visible.
    pub exports: Vec<String>,
    /// The PTX file to write.
    pub output: PathBuf,
    /// `sm_NN`.
    pub target_cpu: String,
    /// Comma-separated LLVM features (`+ptx80`, ...), empty if none.
    pub target_features: String,
    /// `-O0` .. `-O3`, `-Os`, `-Oz`.
    pub opt_level: String,
}

impl LinkRequest {
    /// Reads rustc's linker command line.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self> {
        let mut args = args.into_iter().map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("non-UTF-8 linker argument {a:?}"))
        });
        let mut request = LinkRequest {
            opt_level: "-O3".into(),
            ..Default::default()
        };
        let mut output = None;
        while let Some(arg) = args.next() {
            let arg = arg?;
            let mut value = |flag: &str| -> Result<String> {
                args.next()
                    .with_context(|| format!("{flag} needs a value"))?
            };
            match arg.as_str() {
                "--export-symbol" => request.exports.push(value(&arg)?),
                "-o" => output = Some(PathBuf::from(value(&arg)?)),
                "--target-cpu" => request.target_cpu = value(&arg)?,
                "--target-feature" => request.target_features = value(&arg)?,
                "--target" => {
                    let target = value(&arg)?;
                    ensure!(target == crate::TARGET, "asked to link for {target}");
                }
                // Library search paths: everything arrives as explicit inputs.
                "-L" => drop(value(&arg)?),
                "--debug" => {}
                _ if arg.starts_with("--target-feature=") => {
                    request.target_features = arg["--target-feature=".len()..].to_owned();
                }
                _ if arg.starts_with("-O") => request.opt_level = arg,
                _ if arg.starts_with('-') => bail!("unknown linker argument {arg:?}"),
                _ => request.inputs.push(PathBuf::from(arg)),
            }
        }
        request.output = output.context("no -o given")?;
        ensure!(!request.target_cpu.is_empty(), "no --target-cpu given");
        ensure!(!request.exports.is_empty(), "no kernel is exported");
        Ok(request)
    }

    /// Links, internalizes, optimizes and writes PTX.
    pub fn run(&self, llvm_bin: &Path) -> Result<()> {
        let linked = self.output.with_extension("linked.bc");
        let optimized = self.output.with_extension("opt.bc");

        let mut link = Command::new(llvm_bin.join("llvm-link"));
        // rlibs also hold the crate metadata, which is not bitcode.
        link.arg("--ignore-non-bitcode")
            .args(&self.inputs)
            .arg("-o")
            .arg(&linked);
        run(link)?;

        let mut opt = Command::new(llvm_bin.join("opt"));
        let level = self.opt_level.trim_start_matches("-O");
        opt.arg(format!(
            "--internalize-public-api-list={}",
            self.exports.join(",")
        ))
        .arg(format!("-passes=internalize,globaldce,default<O{level}>"))
        .arg(&linked)
        .arg("-o")
        .arg(&optimized);
        run(opt)?;

        let mut llc = Command::new(llvm_bin.join("llc"));
        llc.arg(format!("-mcpu={}", self.target_cpu));
        if !self.target_features.is_empty() {
            llc.arg(format!("-mattr={}", self.target_features));
        }
        let llc_level = if level == "s" || level == "z" {
            "2"
        } else {
            level
        };
        llc.arg(format!("-O{llc_level}"))
            .arg(&optimized)
            .arg("-o")
            .arg(&self.output);
        run(llc)
    }
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_what_rustc_passes() {
        let request = LinkRequest::parse(args(
            "--export-symbol embedding --export-symbol other k.rcgu.o libcore.rlib \
             -L /tmp/raw-dylibs --target nvptx64-nvidia-cuda --target-cpu sm_90 \
             --target-feature=+ptx78,+ptx80 -L /sysroot/self-contained -o out/k.ptx -O3 --debug",
        ))
        .unwrap();
        assert_eq!(request.exports, ["embedding", "other"]);
        assert_eq!(
            request.inputs,
            [PathBuf::from("k.rcgu.o"), PathBuf::from("libcore.rlib")]
        );
        assert_eq!(request.output, PathBuf::from("out/k.ptx"));
        assert_eq!(request.target_cpu, "sm_90");
        assert_eq!(request.target_features, "+ptx78,+ptx80");
        assert_eq!(request.opt_level, "-O3");
    }

    #[test]
    fn refuses_unknown_flags_and_missing_parts() {
        let unknown = LinkRequest::parse(args("--frobnicate -o a.ptx --target-cpu sm_90"));
        assert!(unknown.unwrap_err().to_string().contains("--frobnicate"));
        let no_exports = LinkRequest::parse(args("a.o -o a.ptx --target-cpu sm_90"));
        assert!(no_exports.unwrap_err().to_string().contains("exported"));
        let no_output = LinkRequest::parse(args("--export-symbol k a.o --target-cpu sm_90"));
        assert!(no_output.unwrap_err().to_string().contains("-o"));
        let other_target = LinkRequest::parse(args(
            "--export-symbol k -o a --target-cpu sm_90 --target x86_64-unknown-linux-gnu",
        ));
        assert!(other_target.unwrap_err().to_string().contains("x86_64"));
    }
}
