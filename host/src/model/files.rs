//! Opening the files of a model directory. Only regular files are read: a device, FIFO or
//! socket where a file belongs is refused by name instead of hanging the process or
//! filling its memory, and the size every read relies on comes from the open file.

use super::error::ModelError;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Checks that `dir` is a directory that can be read, naming what it is otherwise.
pub fn check_model_dir(dir: &Path) -> Result<(), ModelError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) => Err(ModelError::NotADirectory {
            path: dir.to_owned(),
            kind: describe_file_type(&m),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ModelError::MissingDir(dir.to_owned())),
        Err(e) => Err(unreadable(dir, &e)),
    }
}

/// Opens `path` for reading if it is a regular file (symbolic links followed); returns
/// the file and its size in bytes.
pub(super) fn open_regular(path: &Path) -> Result<(File, u64), ModelError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => ModelError::MissingFile(path.to_owned()),
        _ => unreadable(path, &e),
    })?;
    check_regular(path, &metadata)?;
    // Non-blocking, so that a FIFO swapped in after the check cannot hang the open; it
    // changes nothing for the reads of a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| unreadable(path, &e))?;
    let metadata = file.metadata().map_err(|e| unreadable(path, &e))?;
    check_regular(path, &metadata)?;
    Ok((file, metadata.len()))
}

/// The whole of a regular text file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ModelError> {
    let (file, size) = open_regular(path)?;
    if size > limit {
        return Err(ModelError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut text = String::new();
    // take() holds the limit even if the file grows while it is read.
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(path, &e))?;
    if text.len() as u64 > limit {
        return Err(ModelError::TooLarge {
            path: path.to_owned(),
            size: text.len() as u64,
            limit,
        });
    }
    Ok(text)
}

fn check_regular(path: &Path, metadata: &Metadata) -> Result<(), ModelError> {
    if metadata.is_file() {
        Ok(())
    } else {
        Err(ModelError::NotRegular {
            path: path.to_owned(),
            kind: describe_file_type(metadata),
        })
    }
}

/// What a path that is not what it should be is, in words ("a FIFO").
pub fn describe_file_type(metadata: &Metadata) -> &'static str {
    let t = metadata.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> ModelError {
    ModelError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}
