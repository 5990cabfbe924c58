//! Loading a Hugging Face GPT-2 directory (config.json + model.safetensors), validated
//! tensor by tensor before anything touches the GPU.

use super::config::Config;
use super::error::ModelError;
use super::weights::{LayerWeights, Weights};
use half::f16;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// How a checkpoint stores one parameter.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Layout {
    /// As the kernels want it (vectors, embeddings).
    AsIs,
    /// A Conv1D weight stored (in, out): transposed to (out, in) on load.
    Conv1d,
}

/// The Hugging Face name, stored shape and layout of every parameter, in `Weights`
/// order; the loader and the exporter share it so the two cannot disagree.
pub(super) fn tensor_names(config: &Config) -> Vec<(String, Vec<usize>, Layout)> {
    let d = config.d_model;
    let mut names = vec![
        ("wte.weight".to_owned(), vec![config.vocab, d], Layout::AsIs),
        (
            "wpe.weight".to_owned(),
            vec![config.n_positions, d],
            Layout::AsIs,
        ),
    ];
    for i in 0..config.n_layer {
        let h =
            |suffix: &str, shape: Vec<usize>, layout| (format!("h.{i}.{suffix}"), shape, layout);
        names.extend([
            h("ln_1.weight", vec![d], Layout::AsIs),
            h("ln_1.bias", vec![d], Layout::AsIs),
            h("attn.c_attn.weight", vec![d, 3 * d], Layout::Conv1d),
            h("attn.c_attn.bias", vec![3 * d], Layout::AsIs),
            h("attn.c_proj.weight", vec![d, d], Layout::Conv1d),
            h("attn.c_proj.bias", vec![d], Layout::AsIs),
            h("ln_2.weight", vec![d], Layout::AsIs),
            h("ln_2.bias", vec![d], Layout::AsIs),
            h("mlp.c_fc.weight", vec![d, 4 * d], Layout::Conv1d),
            h("mlp.c_fc.bias", vec![4 * d], Layout::AsIs),
            h("mlp.c_proj.weight", vec![4 * d, d], Layout::Conv1d),
            h("mlp.c_proj.bias", vec![d], Layout::AsIs),
        ]);
    }
    names.push(("ln_f.weight".to_owned(), vec![d], Layout::AsIs));
    names.push(("ln_f.bias".to_owned(), vec![d], Layout::AsIs));
    names
}

/// Reads and validates `dir/config.json` and `dir/model.safetensors`: every tensor
/// present (with or without the `transformer.` prefix), of the shape the config implies,
/// F32, F16 or BF16, every value representable in fp16, no layers beyond the config's.
pub fn load_hf_dir(dir: &Path) -> Result<Weights, ModelError> {
    load_hf_dir_with_progress(dir, |_| {})
}

/// [`load_hf_dir`], telling `progress` the fp16 bytes of each tensor as it is converted.
pub fn load_hf_dir_with_progress(
    dir: &Path,
    mut progress: impl FnMut(usize),
) -> Result<Weights, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::MissingDir(dir.to_owned()));
    }
    let config = Config::from_hf_json(&dir.join("config.json"))?;
    let path = dir.join("model.safetensors");
    // Read whole: mapping the file would need `unsafe`, which this crate keeps in cuda/.
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::MissingFile(path.clone()),
        _ => ModelError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        },
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    for name in file.names() {
        let bare = name.strip_prefix("transformer.").unwrap_or(name);
        let layer = bare
            .strip_prefix("h.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|i| i.parse::<usize>().ok());
        if layer.is_some_and(|i| i >= config.n_layer) {
            return Err(ModelError::ExtraLayer {
                path,
                name: name.to_owned(),
                n_layer: config.n_layer,
            });
        }
    }
    let mut tensors = tensor_names(&config)
        .into_iter()
        .map(|(name, shape, layout)| {
            let tensor = read_tensor(&file, &path, &name, &shape, layout)?;
            progress(2 * tensor.len());
            Ok(tensor)
        });
    let mut next = || tensors.next().expect("tensor_names lists every parameter");
    let wte = next()?;
    let wpe = next()?;
    let mut layers = Vec::with_capacity(config.n_layer);
    for _ in 0..config.n_layer {
        layers.push(LayerWeights {
            ln_1_gamma: next()?,
            ln_1_beta: next()?,
            qkv_w: next()?,
            qkv_b: next()?,
            attn_proj_w: next()?,
            attn_proj_b: next()?,
            ln_2_gamma: next()?,
            ln_2_beta: next()?,
            fc_w: next()?,
            fc_b: next()?,
            mlp_proj_w: next()?,
            mlp_proj_b: next()?,
        });
    }
    let ln_f_gamma = next()?;
    let ln_f_beta = next()?;
    Ok(Weights {
        config,
        wte,
        wpe,
        layers,
        ln_f_gamma,
        ln_f_beta,
    })
}

/// One tensor, checked and converted to fp16 in the kernels' layout.
fn read_tensor(
    file: &SafeTensors,
    path: &Path,
    name: &str,
    shape: &[usize],
    layout: Layout,
) -> Result<Vec<f16>, ModelError> {
    let view = file
        .tensor(name)
        .or_else(|_| file.tensor(&format!("transformer.{name}")))
        .map_err(|_| ModelError::MissingTensor {
            path: path.to_owned(),
            name: name.to_owned(),
        })?;
    if view.shape() != shape {
        return Err(ModelError::WrongShape {
            path: path.to_owned(),
            name: name.to_owned(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(ModelError::WrongDtype {
                path: path.to_owned(),
                name: name.to_owned(),
                dtype: format!("{other:?}"),
            });
        }
    };
    let mut out = Vec::with_capacity(values.len());
    for &v in &values {
        let h = f16::from_f32(v);
        if !h.is_finite() {
            return Err(ModelError::NotRepresentable {
                path: path.to_owned(),
                name: name.to_owned(),
                value: v,
            });
        }
        out.push(h);
    }
    Ok(match layout {
        Layout::AsIs => out,
        Layout::Conv1d => transpose(&out, shape[0], shape[1]),
    })
}

/// (rows, cols) row-major -> (cols, rows) row-major.
pub(super) fn transpose(m: &[f16], rows: usize, cols: usize) -> Vec<f16> {
    let mut t = vec![f16::ZERO; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}
