//! `cargo xtask gpu-bundle`: release binaries and a runner for a GPU machine without Rust.
//!
//! target/gpu-bundle/ holds `host`, `tests/<name>` (every test binary of the workspace,
//! PTX embedded), `peers/` (the PyTorch scripts of xtask/peers) and `run.sh`, which runs them all with `--include-ignored` and ends with
//! one line `N passed, N failed`.

use crate::{build_ptx, cmd, readme};
use anyhow::{Context, Result, ensure};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The device tool carries at most 64 MiB with the working tree.
const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Builds the bundle and prints its contents and size.
pub fn run(workspace: &Path) -> Result<()> {
    // Report the kernels' resources here too; the embedded PTX is built by host/build.rs.
    build_ptx::run(
        workspace,
        &build_ptx::Args {
            arch: ptx_builder::DEFAULT_ARCH.into(),
            ptxas: None,
            require_ptxas: false,
            deny_spills: false,
        },
    )?;
    let cargo = || {
        let mut c = cmd::cargo();
        c.current_dir(workspace);
        c
    };

    cmd::run(cargo().args(["build", "--release", "--package", "host", "--bin", "host"]))?;
    let messages = cmd::output(cargo().args([
        "test",
        "--release",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]))?;
    let tests = test_executables(&messages)?;

    let bundle = workspace.join("target").join("gpu-bundle");
    let _ = fs::remove_dir_all(&bundle);
    fs::create_dir_all(bundle.join("tests"))?;
    copy_executable(&workspace.join("target/release/host"), &bundle.join("host"))?;
    for (name, path) in &tests {
        copy_executable(path, &bundle.join("tests").join(name))?;
    }
    // The PyTorch peers run on the GPU machine beside the binaries.
    let peers = bundle.join("peers");
    fs::create_dir_all(&peers)?;
    for entry in fs::read_dir(workspace.join("xtask").join("peers"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "py") {
            fs::copy(&path, peers.join(path.file_name().unwrap()))?;
        }
    }
    let run_sh = bundle.join("run.sh");
    // The README's main command, as a user runs it with the bundle's binary.
    let run_sh_text = RUN_SH.replace("@MAIN_ARGUMENTS@", &readme::main_arguments(workspace)?);
    fs::write(&run_sh, run_sh_text)?;
    fs::set_permissions(&run_sh, fs::Permissions::from_mode(0o755))?;

    let size = dir_size(&bundle)?;
    println!(
        "GPU bundle: {} ({} test binaries, {:.1} MiB)",
        bundle.display(),
        tests.len(),
        size as f64 / (1 << 20) as f64
    );
    ensure!(
        size <= MAX_BUNDLE_BYTES,
        "the bundle is {size} bytes, over the {MAX_BUNDLE_BYTES} the device tool carries"
    );
    println!("run it on a GPU machine: target/gpu-bundle/run.sh [test name filter]");
    Ok(())
}

/// (unique name, path) of every test executable in cargo's JSON messages.
fn test_executables(messages: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut tests = Vec::new();
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let message: serde_json::Value = serde_json::from_str(line)?;
        let is_test =
            message["reason"] == "compiler-artifact" && message["profile"]["test"] == true;
        let Some(executable) = message["executable"].as_str().filter(|_| is_test) else {
            continue;
        };
        let target = message["target"]["name"]
            .as_str()
            .context("artifact without a name")?;
        let kind = message["target"]["kind"][0].as_str().unwrap_or("test");
        let package = package_name(message["package_id"].as_str().unwrap_or_default());
        tests.push((
            format!("{package}.{kind}.{target}"),
            PathBuf::from(executable),
        ));
    }
    ensure!(!tests.is_empty(), "cargo built no test executables");
    Ok(tests)
}

/// The package name in a cargo package id: `path+file:///w/host#0.1.0` (the directory
/// names it) or `path+file:///w/tests#integration-tests@0.1.0` (named after `#`).
fn package_name(id: &str) -> &str {
    let (location, fragment) = id.rsplit_once('#').unwrap_or((id, ""));
    match fragment.split_once('@') {
        Some((name, _)) => name,
        None => location.rsplit('/').next().unwrap_or(location),
    }
}

fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            dir_size(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

/// Runs on the GPU machine. Each test binary's libtest summary is added up; a binary
/// that dies without one counts as one failure. The host CLI's `info` and the README's
/// main command count as a test each.
const RUN_SH: &str = r#"#!/usr/bin/env bash
# Runs every test of the bundle, GPU tests (ignored in CI) included, and ends with one
# summary line "N passed, N failed". Arguments are passed to each test binary as filters.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The CLI tests run this binary, not the path it was built at.
export HOST_BIN="$here/host"
passed=0
failed=0
log=$(mktemp)

echo "== host info"
if "$here/host" info; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== the README's main command, with this bundle's host"
if "$here/host" @MAIN_ARGUMENTS@; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

for test in "$here"/tests/*; do
    name=$(basename "$test")
    echo "== $name"
    "$test" --include-ignored "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    result=$(grep -E '^test result: ' "$log" | tail -n 1)
    p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$result")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$result")
    p=${p:-0}
    f=${f:-0}
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "== $name exited with status $status without a failing test: counted as one failure"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/host#0.1.0","target":{"name":"host","kind":["lib"]},"profile":{"test":true},"executable":"/w/target/release/deps/host-1"}
{"reason":"compiler-artifact","package_id":"path+file:///w/tests#integration-tests@0.1.0","target":{"name":"embedding","kind":["test"]},"profile":{"test":true},"executable":"/w/target/release/deps/embedding-2"}
{"reason":"compiler-artifact","package_id":"path+file:///w/host#0.1.0","target":{"name":"host","kind":["lib"]},"profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}"#;
        let tests = test_executables(messages).unwrap();
        assert_eq!(
            tests,
            [
                (
                    "host.lib.host".to_owned(),
                    PathBuf::from("/w/target/release/deps/host-1")
                ),
                (
                    "integration-tests.test.embedding".to_owned(),
                    PathBuf::from("/w/target/release/deps/embedding-2")
                ),
            ]
        );
    }
}
