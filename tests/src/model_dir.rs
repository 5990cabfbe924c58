//! Model directories for the loading tests: tiny random GPT-2 weights exported as a
//! Hugging Face directory, then edited into the bad file a test needs.

use host::model::{Config, Weights, export_hf_dir};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::path::Path;
pub use tempfile::TempDir;

/// A two-layer model of width 128 with a 100-token vocabulary.
pub fn tiny() -> Config {
    Config {
        n_layer: 2,
        n_head: 2,
        d_model: 128,
        vocab: 100,
        n_positions: 16,
        layer_norm_eps: 1e-5,
        eos_token_ids: vec![],
        llama: None,
    }
}

/// A fresh empty directory named after `tag`, removed when dropped.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("model-test-{tag}-"))
        .tempdir()
        .unwrap()
}

/// One tensor as the tests edit it: name, dtype, shape, little-endian bytes.
pub type Tensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// Exports random weights of `config`, then lets `edit` rewrite the tensors before
/// writing model.safetensors again.
pub fn exported_with(config: &Config, tag: &str, edit: impl FnOnce(&mut Vec<Tensor>)) -> TempDir {
    let dir = temp_dir(tag);
    export_hf_dir(&Weights::random(config, 3), dir.path()).unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = read_tensors(&path);
    edit(&mut tensors);
    write_tensors(&path, &tensors);
    dir
}

/// [`exported_with`] for the [`tiny`] model.
pub fn exported_then(tag: &str, edit: impl FnOnce(&mut Vec<Tensor>)) -> TempDir {
    exported_with(&tiny(), tag, edit)
}

/// Every tensor of a safetensors file.
pub fn read_tensors(path: &Path) -> Vec<Tensor> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, v)| (name, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect()
}

/// Writes `tensors` as a safetensors file.
pub fn write_tensors(path: &Path, tensors: &[Tensor]) {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// config.json of `dir` as JSON, edited by `edit`, written back.
pub fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(json.as_object_mut().unwrap());
    std::fs::write(&path, json.to_string()).unwrap();
}
