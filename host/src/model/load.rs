//! Loading a Hugging Face GPT-2 directory (config.json + model.safetensors), validated
//! whole before anything touches the GPU.

use super::config::Config;
use super::error::ModelError;
use super::files::check_model_dir;
use super::weight_file::{WeightFile, values_f32};
use super::weights::{LayerWeights, Weights};
use half::f16;
use safetensors::Dtype;
use safetensors::tensor::TensorInfo;
use std::collections::HashSet;
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
/// order; the loader and the exporter share it so the two cannot disagree. Lazy, so a
/// config with absurdly many layers costs nothing until a file has to hold them.
pub(super) fn tensor_names(
    config: &Config,
) -> impl Iterator<Item = (String, Vec<usize>, Layout)> + use<> {
    let d = config.d_model;
    let embeddings = [
        ("wte.weight".to_owned(), vec![config.vocab, d], Layout::AsIs),
        (
            "wpe.weight".to_owned(),
            vec![config.n_positions, d],
            Layout::AsIs,
        ),
    ];
    let layers = (0..config.n_layer).flat_map(move |i| {
        let h =
            |suffix: &str, shape: Vec<usize>, layout| (format!("h.{i}.{suffix}"), shape, layout);
        [
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
        ]
    });
    let final_norm = [
        ("ln_f.weight".to_owned(), vec![d], Layout::AsIs),
        ("ln_f.bias".to_owned(), vec![d], Layout::AsIs),
    ];
    embeddings.into_iter().chain(layers).chain(final_norm)
}

/// Reads and validates `dir/config.json` and `dir/model.safetensors`: every tensor
/// present once (with or without the `transformer.` prefix, not both), of the shape the
/// config implies, F32, F16 or BF16, every value representable in fp16, and nothing a
/// GPT-2 model does not have.
pub fn load_hf_dir(dir: &Path) -> Result<Weights, ModelError> {
    load_hf_dir_with_progress(dir, |_| {})
}

/// [`load_hf_dir`], telling `progress` the fp16 bytes of each tensor as it is converted.
/// The whole header is checked against the config before any tensor is read, so a file
/// that cannot load is refused before memory sized by it (or by the config) is taken.
pub fn load_hf_dir_with_progress(
    dir: &Path,
    mut progress: impl FnMut(usize),
) -> Result<Weights, ModelError> {
    check_model_dir(dir)?;
    let config = Config::from_hf_dir(dir)?;
    let file = WeightFile::open(&dir.join("model.safetensors"))?;
    let plan = plan(&file, &config)?;
    let mut tensors = plan.iter().map(|p| {
        let tensor = read_tensor(&file, p)?;
        progress(2 * tensor.len());
        Ok(tensor)
    });
    let mut next = || tensors.next().expect("the plan lists every parameter");
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

/// One parameter and where the file holds it.
struct Planned<'f> {
    /// Its name without the `transformer.` prefix.
    name: String,
    /// Its header entry.
    info: &'f TensorInfo,
    /// The shape the config implies.
    shape: Vec<usize>,
    /// How it is stored.
    layout: Layout,
}

/// Every parameter in `Weights` order with the header entry that holds it, after
/// checking each one's shape and dtype and that the file holds nothing else. The list
/// grows only while the header has the tensors, so its length is bounded by the file,
/// whatever n_layer says.
fn plan<'f>(file: &'f WeightFile, config: &Config) -> Result<Vec<Planned<'f>>, ModelError> {
    let path = file.path();
    let mut plan = Vec::new();
    let mut used = HashSet::new();
    for (name, shape, layout) in tensor_names(config) {
        let prefixed = format!("transformer.{name}");
        let (stored, info) = match (file.info(&name), file.info(&prefixed)) {
            (Some(_), Some(_)) => {
                return Err(ModelError::AmbiguousTensor {
                    path: path.to_owned(),
                    name,
                });
            }
            (Some(info), None) => (name.clone(), info),
            (None, Some(info)) => (prefixed, info),
            (None, None) => {
                return Err(ModelError::MissingTensor {
                    path: path.to_owned(),
                    name,
                });
            }
        };
        if info.shape != shape {
            return Err(ModelError::WrongShape {
                path: path.to_owned(),
                name,
                expected: shape,
                found: info.shape.clone(),
            });
        }
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(ModelError::WrongDtype {
                path: path.to_owned(),
                name,
                dtype: format!("{:?}", info.dtype),
            });
        }
        used.insert(stored);
        plan.push(Planned {
            name,
            info,
            shape,
            layout,
        });
    }
    let mut names = file.names();
    names.sort();
    for name in names.iter().filter(|n| !used.contains(*n)) {
        let bare = name.strip_prefix("transformer.").unwrap_or(name);
        let layer = bare
            .strip_prefix("h.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)));
        match layer {
            Some((i, _)) if i >= config.n_layer => {
                return Err(ModelError::ExtraLayer {
                    path: path.to_owned(),
                    name: name.clone(),
                    n_layer: config.n_layer,
                });
            }
            // The causal-mask buffers older checkpoints store; the kernels mask by position.
            Some((_, "attn.bias" | "attn.masked_bias")) => {}
            // The tied LM head: transformers ties it to wte on load, whatever is stored.
            None if bare == "lm_head.weight" => {}
            _ => {
                return Err(ModelError::UnexpectedTensor {
                    path: path.to_owned(),
                    name: name.clone(),
                    architecture: "GPT-2 (GPT2LMHeadModel)",
                });
            }
        }
    }
    Ok(plan)
}

/// One tensor, read from the file, converted to fp16 and put in the kernels' layout.
fn read_tensor(file: &WeightFile, planned: &Planned) -> Result<Vec<f16>, ModelError> {
    let Planned {
        name,
        info,
        shape,
        layout,
    } = planned;
    let data = file.read(info)?;
    let Some(values) = values_f32(info.dtype, &data) else {
        return Err(ModelError::WrongDtype {
            path: file.path().to_owned(),
            name: name.clone(),
            dtype: format!("{:?}", info.dtype),
        });
    };
    let mut out = Vec::with_capacity(shape.iter().product());
    for v in values {
        let h = f16::from_f32(v);
        if !h.is_finite() {
            return Err(ModelError::NotRepresentable {
                path: file.path().to_owned(),
                name: name.clone(),
                value: v,
                half: "fp16",
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
