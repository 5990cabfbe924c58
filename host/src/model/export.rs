//! Writing weights as a Hugging Face GPT-2 directory (`host export`), so that PyTorch
//! peers load exactly the weights this engine runs.

use super::error::ModelError;
use super::load::{Layout, tensor_names, transpose};
use super::weights::Weights;
use crate::output::{OutputDir, OutputError};
use half::f16;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize_to_file};
use std::path::Path;

/// Writes the directory `dir` (which must not exist or be empty) atomically: filled
/// beside it, then renamed into place, so a failure leaves nothing behind.
pub fn export_hf_dir(weights: &Weights, dir: &Path) -> Result<(), ModelError> {
    let out = OutputDir::create(dir).map_err(unwritable_dir)?;
    write_hf_files(weights, out.path())?;
    out.commit().map_err(unwritable_dir)
}

fn unwritable_dir(e: OutputError) -> ModelError {
    ModelError::Unwritable {
        path: e.path,
        reason: e.reason,
    }
}

/// Writes `dir/config.json` and `dir/model.safetensors` into an existing directory
/// (fp16, Hugging Face names with the `transformer.` prefix, Conv1D weights (in, out);
/// the tied LM head is not stored, as `save_pretrained` does).
pub fn write_hf_files(weights: &Weights, dir: &Path) -> Result<(), ModelError> {
    let unwritable = |path: &Path, e: &dyn std::fmt::Display| ModelError::Unwritable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let config_path = dir.join("config.json");
    let config = serde_json::to_string_pretty(&weights.config.to_hf_json()).unwrap();
    std::fs::write(&config_path, config).map_err(|e| unwritable(&config_path, &e))?;

    let mut parameters: Vec<&[f16]> = vec![&weights.wte, &weights.wpe];
    for l in &weights.layers {
        parameters.extend([
            &l.ln_1_gamma[..],
            &l.ln_1_beta,
            &l.qkv_w,
            &l.qkv_b,
            &l.attn_proj_w,
            &l.attn_proj_b,
            &l.ln_2_gamma,
            &l.ln_2_beta,
            &l.fc_w,
            &l.fc_b,
            &l.mlp_proj_w,
            &l.mlp_proj_b,
        ]);
    }
    parameters.extend([&weights.ln_f_gamma[..], &weights.ln_f_beta]);

    let names = tensor_names(&weights.config);
    let stored: Vec<(String, Vec<usize>, Vec<u8>)> = names
        .into_iter()
        .zip(parameters)
        .map(|((name, shape, layout), values)| {
            let values = match layout {
                Layout::AsIs => values.to_vec(),
                // Kernels hold (out, in); Conv1D stores (in, out) = shape.
                Layout::Conv1d => transpose(values, shape[1], shape[0]),
            };
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (format!("transformer.{name}"), shape, bytes)
        })
        .collect();
    let views = stored
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F16, shape.clone(), bytes).expect("sizes agree");
            (name.as_str(), view)
        })
        .collect::<Vec<_>>();
    write_safetensors(views, &dir.join("model.safetensors"))
}

/// Writes `views` as the safetensors file `path`, readable as the config beside it is:
/// the safetensors crate writes through a private temporary file (mode 0600), which a
/// model directory shared with other users or containers must not keep.
pub(super) fn write_safetensors(
    views: Vec<(&str, TensorView)>,
    path: &Path,
) -> Result<(), ModelError> {
    let unwritable = |e: &dyn std::fmt::Display| ModelError::Unwritable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    serialize_to_file(views, None, path).map_err(|e| unwritable(&e))?;
    let beside = path.with_file_name("config.json");
    let mode = std::fs::metadata(&beside)
        .map_err(|e| unwritable(&e))?
        .permissions();
    std::fs::set_permissions(path, mode).map_err(|e| unwritable(&e))
}
