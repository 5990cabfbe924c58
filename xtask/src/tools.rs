//! What the test command provides for itself on a fresh machine, under `.tools/`:
//! ptxas (PyPI wheel nvidia-cuda-nvcc-cu12) and a libcuda.so to link cust against
//! (Debian's non-free libcuda1, downloaded and unpacked, never installed). Each step is
//! skipped when its result is already there.

use crate::cmd;
use anyhow::{Context, Result, bail, ensure};
use ptx_builder::ptxas;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyPI release ptxas comes from: 12.9 assembles the PTX ISA 8.1 we write for sm_90.
const NVCC_WHEEL: &str = "nvidia-cuda-nvcc-cu12==12.9.86";

/// How cargo builds and test runs find libcuda.
pub struct CudaLibrary {
    /// For cust's build script (`CUDA_LIBRARY_PATH`, a directory holding `lib64/`);
    /// `None` when the user set it already.
    pub link_root: Option<PathBuf>,
    /// A directory for `LD_LIBRARY_PATH` when the system has no libcuda.so.1 of its own:
    /// test binaries then load Debian's, whose cuInit reports that there is no GPU.
    pub runtime_dir: Option<PathBuf>,
}

impl CudaLibrary {
    /// Sets the variables on a cargo command that builds or runs anything linking cust.
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(root) = &self.link_root {
            cmd.env("CUDA_LIBRARY_PATH", root);
        }
        if let Some(dir) = &self.runtime_dir {
            let mut paths = vec![dir.clone()];
            if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                paths.extend(std::env::split_paths(&old));
            }
            cmd.env("LD_LIBRARY_PATH", std::env::join_paths(paths).unwrap());
        }
    }
}

/// ptxas: found where it already is, or installed from the wheel into `.tools/nvcc`.
pub fn ensure_ptxas(workspace: &Path) -> Result<PathBuf> {
    if let Some(found) = ptxas::find_ptxas(workspace) {
        return Ok(found);
    }
    let tools = workspace.join(ptx_builder::TOOLS_DIR);
    let partial = tools.join("nvcc.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&tools)?;
    eprintln!(
        "installing ptxas from {NVCC_WHEEL} into {}",
        tools.display()
    );
    cmd::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-compile", "--target"])
            .arg(&partial)
            .arg(NVCC_WHEEL),
    )?;
    fs::rename(&partial, tools.join("nvcc"))?;
    let installed = ptxas::installed_ptxas(workspace);
    ensure!(
        installed.is_file(),
        "{NVCC_WHEEL} did not provide {}",
        installed.display()
    );
    Ok(installed)
}

/// A libcuda for linking (and, without a driver, for loading).
pub fn ensure_libcuda(workspace: &Path) -> Result<CudaLibrary> {
    if std::env::var_os("CUDA_LIBRARY_PATH").is_some() {
        return Ok(CudaLibrary {
            link_root: None,
            runtime_dir: None,
        });
    }
    let root = workspace.join(ptx_builder::TOOLS_DIR).join("libcuda");
    let lib64 = root.join("lib64");
    fs::create_dir_all(&lib64)?;
    // cust's build script wants `libcuda.so`; drivers install only `libcuda.so.1`.
    if let Some(system) = system_libcuda()? {
        symlink(&system, &lib64.join("libcuda.so"))?;
        return Ok(CudaLibrary {
            link_root: Some(root),
            runtime_dir: None,
        });
    }
    if !lib64.join("libcuda.so.1").exists() {
        let library = unpack_debian_libcuda(&root)?;
        // Relative, so the checkout can move.
        let relative = Path::new("..").join(library.strip_prefix(&root)?);
        symlink(&relative, &lib64.join("libcuda.so.1"))?;
    }
    symlink(Path::new("libcuda.so.1"), &lib64.join("libcuda.so"))?;
    Ok(CudaLibrary {
        link_root: Some(root),
        runtime_dir: Some(lib64),
    })
}

/// The driver's libcuda.so.1 as the dynamic loader knows it, if any.
fn system_libcuda() -> Result<Option<PathBuf>> {
    let Ok(cache) = cmd::output(Command::new("/sbin/ldconfig").arg("-p")) else {
        return Ok(None);
    };
    Ok(cache
        .lines()
        .filter(|line| line.trim_start().starts_with("libcuda.so.1 ") && line.contains("x86-64"))
        .find_map(|line| line.split("=> ").nth(1))
        .map(|path| PathBuf::from(path.trim())))
}

/// Downloads Debian's libcuda1 with apt-get, using apt's own configuration redirected into
/// `.tools/apt` (sources with the non-free component, lists, cache), and unpacks it.
/// Returns the unpacked library.
fn unpack_debian_libcuda(root: &Path) -> Result<PathBuf> {
    let apt = root.join("apt");
    let parts = apt.join("sources.list.d");
    for dir in [
        &parts,
        &apt.join("lists/partial"),
        &apt.join("cache/archives/partial"),
    ] {
        fs::create_dir_all(dir)?;
    }
    fs::write(parts.join("non-free.sources"), non_free_sources()?)?;
    let apt_get = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.arg("-qq")
            .arg("-o")
            .arg("Dir::Etc::SourceList=/dev/null")
            .arg("-o")
            .arg(format!("Dir::Etc::SourceParts={}", parts.display()))
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", apt.join("lists").display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", apt.join("cache").display()))
            .arg("-o")
            .arg("Debug::NoLocking=1")
            .args(args)
            .current_dir(&apt);
        cmd
    };
    eprintln!("downloading Debian's libcuda1 (non-free) to link against");
    cmd::run(&mut apt_get(&["update"]))?;
    cmd::run(&mut apt_get(&["download", "libcuda1"]))?;
    let deb = fs::read_dir(&apt)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("libcuda1_") && name.ends_with(".deb")
        })
        .context("apt-get download libcuda1 left no .deb")?;
    let unpacked = root.join("deb");
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    find_file(&unpacked, &|name| name.starts_with("libcuda.so."))?
        .with_context(|| format!("{} holds no libcuda.so.*", deb.display()))
}

/// The machine's Debian sources (deb822 `.sources` files and one-line `.list` files)
/// restricted to its own release's suites, with the component set to non-free.
fn non_free_sources() -> Result<String> {
    let codename = fs::read_to_string("/etc/os-release")?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VERSION_CODENAME=")
                .map(|c| c.trim_matches('"').to_owned())
        })
        .context("/etc/os-release names no VERSION_CODENAME: not a Debian machine?")?;
    let mut files: Vec<PathBuf> = vec!["/etc/apt/sources.list".into()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.filter_map(|e| e.ok().map(|e| e.path())));
    }
    let mut out = String::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => out += &deb822_non_free(&text, &codename),
            Some("list") => out += &one_line_non_free(&text, &codename),
            _ => {}
        }
    }
    if out.is_empty() {
        bail!("no apt source for Debian {codename} found in /etc/apt to derive non-free from");
    }
    Ok(out)
}

fn is_own_suite(suite: &str, codename: &str) -> bool {
    suite == codename || suite.starts_with(&format!("{codename}-"))
}

/// Rewrites deb822 stanzas of the release's suites to the non-free component.
fn deb822_non_free(text: &str, codename: &str) -> String {
    let mut out = String::new();
    for stanza in text.split("\n\n") {
        let fields: Vec<&str> = stanza.lines().filter(|l| !l.starts_with('#')).collect();
        let value = |key: &str| {
            fields
                .iter()
                .find_map(|l| l.strip_prefix(key).map(str::trim))
                .unwrap_or("")
        };
        let is_deb = value("Types:").split_whitespace().any(|t| t == "deb");
        let own = value("Suites:")
            .split_whitespace()
            .any(|s| is_own_suite(s, codename));
        if !is_deb || !own || value("Enabled:") == "no" {
            continue;
        }
        for line in &fields {
            if line.starts_with("Components:") {
                out += "Components: non-free\n";
            } else if line.starts_with("Types:") {
                out += "Types: deb\n";
            } else {
                out += line;
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// Rewrites one-line `deb [options] uri suite components` entries to deb822 stanzas with
/// the non-free component.
fn one_line_non_free(text: &str, codename: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let (opts, after) = options.split_once(']').unwrap_or((options, ""));
            signed_by = opts
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="));
            rest = after.trim();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if !is_own_suite(suite, codename) {
            continue;
        }
        out += &format!("Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: non-free\n");
        if let Some(key) = signed_by {
            out += &format!("Signed-By: {key}\n");
        }
        out.push('\n');
    }
    out
}

fn find_file(dir: &Path, matches: &dyn Fn(&str) -> bool) -> Result<Option<PathBuf>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, matches)? {
                return Ok(Some(found));
            }
        } else if matches(&path.file_name().unwrap_or_default().to_string_lossy()) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_keeps_the_release_and_switches_to_non_free() {
        let text = "\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://other.example/node
Suites: nodistro
Components: main
";
        assert_eq!(
            deb822_non_free(text, "bookworm"),
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
             Components: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        );
    }

    #[test]
    fn one_line_entries_become_non_free_stanzas() {
        let text = "\
# comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main
deb http://other.example/repo stable main
";
        assert_eq!(
            one_line_non_free(text, "bookworm"),
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\
             Components: non-free\nSigned-By: /k.gpg\n\n\
             Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\
             Components: non-free\n\n"
        );
    }
}
