//! A safetensors file read tensor by tensor: the header is read and checked first (its
//! length bounded by the file, no key named twice, offsets that tile the data, a file size
//! that matches the header exactly), then each tensor's bytes are read from its offset,
//! so host memory holds one tensor at a time rather than the whole file.

use super::error::ModelError;
use super::files::open_regular;
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The safetensors format's own limit on its JSON header.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// An open, validated safetensors file.
pub(super) struct WeightFile {
    path: PathBuf,
    file: File,
    header: Metadata,
    /// Where the data begins: 8 bytes of header length, then the header.
    data_start: u64,
}

impl WeightFile {
    /// Opens `path` and checks its header against its size.
    pub(super) fn open(path: &Path) -> Result<WeightFile, ModelError> {
        let (mut file, size) = open_regular(path)?;
        let corrupt = |reason: String| ModelError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        if size < 8 {
            return Err(corrupt(format!(
                "{size} bytes, shorter than the 8-byte header length"
            )));
        }
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .map_err(|e| corrupt(e.to_string()))?;
        let header_len = u64::from_le_bytes(length);
        if header_len > MAX_HEADER_BYTES || header_len > size - 8 {
            return Err(corrupt(format!(
                "the header claims {header_len} bytes; the file has {} after the length and the format allows {MAX_HEADER_BYTES}",
                size - 8
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)
            .map_err(|e| corrupt(e.to_string()))?;
        let header = std::str::from_utf8(&header)
            .map_err(|e| corrupt(format!("the header is not UTF-8: {e}")))?;
        if let Some(name) = name_given_twice(header).map_err(|e| corrupt(e.to_string()))? {
            return Err(ModelError::DuplicateTensor {
                path: path.to_owned(),
                name,
            });
        }
        let metadata: Metadata =
            serde_json::from_str(header).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let data_start = 8 + header_len;
        let expected = data_start + metadata.data_len() as u64;
        if expected != size {
            return Err(corrupt(format!(
                "the file is {size} bytes but its header describes {expected}"
            )));
        }
        Ok(WeightFile {
            path: path.to_owned(),
            file,
            header: metadata,
            data_start,
        })
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name in the header.
    pub(super) fn names(&self) -> Vec<String> {
        self.header.tensors().into_keys().collect()
    }

    /// A tensor's dtype, shape and offsets, if the file holds it.
    pub(super) fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.header.info(name)
    }

    /// The little-endian bytes of a tensor whose `info` came from this file.
    pub(super) fn read(&self, info: &TensorInfo) -> Result<Vec<u8>, ModelError> {
        let (start, end) = info.data_offsets;
        let mut bytes = vec![0u8; end - start];
        self.file
            .read_exact_at(&mut bytes, self.data_start + start as u64)
            .map_err(|e| ModelError::Unreadable {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        Ok(bytes)
    }
}

/// The values of a tensor's little-endian `data` of `dtype` (F32, F16 or BF16), widened
/// to f32 exactly; `None` for any other dtype.
pub(super) fn values_f32(dtype: Dtype, data: &[u8]) -> Option<Box<dyn Iterator<Item = f32> + '_>> {
    Some(match dtype {
        Dtype::F32 => Box::new(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        Dtype::F16 => Box::new(
            data.chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        Dtype::BF16 => Box::new(
            data.chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        _ => return None,
    })
}

/// The first key the header's top-level object names twice: a JSON parser keeps one of
/// the two silently, and the other's offsets would then be blamed on a third tensor.
fn name_given_twice(header: &str) -> Result<Option<String>, serde_json::Error> {
    struct FirstRepeat(Option<String>);
    impl<'de> Deserialize<'de> for FirstRepeat {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(FirstRepeatVisitor)
        }
    }
    struct FirstRepeatVisitor;
    impl<'de> Visitor<'de> for FirstRepeatVisitor {
        type Value = FirstRepeat;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object of tensors")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirstRepeat, A::Error> {
            let mut seen = HashSet::new();
            let mut repeat = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if repeat.is_none() && !seen.insert(key.clone()) {
                    repeat = Some(key);
                }
            }
            Ok(FirstRepeat(repeat))
        }
    }
    Ok(serde_json::from_str::<FirstRepeat>(header)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_key_given_twice() {
        let once = r#"{"a": {"x": 1}, "b": 2}"#;
        let twice = r#"{"a": {"x": 1}, "b": 2, "a": 3}"#;
        assert_eq!(name_given_twice(once).unwrap(), None);
        assert_eq!(name_given_twice(twice).unwrap().as_deref(), Some("a"));
        assert!(name_given_twice("[1, 2]").is_err());
    }
}
