//! The files and directories the commands write, made atomically: each is checked and
//! created as a hidden temporary beside its target before the work starts (so an
//! unwritable path is refused before the GPU runs), filled, then renamed into place. A
//! failure, or an error before the rename, removes the temporary and leaves the target
//! as it was.

use crate::model::describe_file_type;
use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::{Builder, TempDir, TempPath};

/// An output that cannot be written, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {reason}")]
pub struct OutputError {
    /// The target.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

fn error(path: &Path, reason: impl std::fmt::Display) -> OutputError {
    OutputError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// A file being written: a temporary beside the target until [`OutputFile::commit`].
pub struct OutputFile {
    target: PathBuf,
    temp: TempPath,
}

impl OutputFile {
    /// Checks that `target` can be written and is none of `inputs` (the files the
    /// command reads), then creates the temporary beside it.
    pub fn create(target: &Path, inputs: &[PathBuf]) -> Result<OutputFile, OutputError> {
        if let Ok(existing) = std::fs::metadata(target) {
            if !existing.is_file() {
                let kind = describe_file_type(&existing);
                return Err(error(target, format!("it is {kind}, not a regular file")));
            }
            let same = |input: &PathBuf| {
                std::fs::metadata(input)
                    .is_ok_and(|m| (m.dev(), m.ino()) == (existing.dev(), existing.ino()))
            };
            if let Some(input) = inputs.iter().find(|i| same(i)) {
                return Err(error(
                    target,
                    format!("it is {}, which this command reads", input.display()),
                ));
            }
        }
        let prefix = temp_prefix(target);
        let temp = Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(0o644))
            .tempfile_in(parent_dir(target)?)
            .map_err(|e| error(target, e))?
            .into_temp_path();
        Ok(OutputFile {
            target: target.to_owned(),
            temp,
        })
    }

    /// Where to write until the commit (for writers that take a path).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The target's path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `bytes` to the temporary (replacing what it held).
    pub fn write(&self, bytes: &[u8]) -> Result<(), OutputError> {
        std::fs::write(&self.temp, bytes).map_err(|e| error(&self.target, e))
    }

    /// Renames the temporary onto the target.
    pub fn commit(self) -> Result<(), OutputError> {
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| error(&target, e.error))
    }
}

/// A directory being written: a temporary beside the target until [`OutputDir::commit`].
pub struct OutputDir {
    target: PathBuf,
    temp: TempDir,
}

impl OutputDir {
    /// Checks that `target` does not exist or is an empty directory, then creates the
    /// temporary beside it.
    pub fn create(target: &Path) -> Result<OutputDir, OutputError> {
        if let Ok(existing) = std::fs::metadata(target) {
            if !existing.is_dir() {
                let kind = describe_file_type(&existing);
                return Err(error(target, format!("it is {kind}, not a directory")));
            }
            let mut entries = std::fs::read_dir(target).map_err(|e| error(target, e))?;
            if entries.next().is_some() {
                return Err(error(target, "the directory exists and is not empty"));
            }
        }
        let prefix = temp_prefix(target);
        let temp = Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(0o755))
            .tempdir_in(parent_dir(target)?)
            .map_err(|e| error(target, e))?;
        Ok(OutputDir {
            target: target.to_owned(),
            temp,
        })
    }

    /// The temporary directory to fill.
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// The target's path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temporary onto the target (replacing it if it is an empty directory).
    pub fn commit(self) -> Result<(), OutputError> {
        let temp = self.temp.keep();
        std::fs::rename(&temp, &self.target).map_err(|e| {
            let _ = std::fs::remove_dir_all(&temp);
            error(&self.target, e)
        })
    }
}

/// The start of a hidden temporary's name beside `target`: `.NAME.`.
fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}.")
}

/// The directory that will hold `target`, which must exist.
fn parent_dir(target: &Path) -> Result<PathBuf, OutputError> {
    if target.file_name().is_none() {
        return Err(error(target, "the path names no file"));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&parent) {
        Ok(m) if m.is_dir() => Ok(parent),
        Ok(m) => Err(error(
            target,
            format!("{} is {}", parent.display(), describe_file_type(&m)),
        )),
        Err(e) => Err(error(target, format!("{}: {e}", parent.display()))),
    }
}
