//! Loading a Llama-family Hugging Face directory: config.json and one model.safetensors
//! or shards listed by model.safetensors.index.json, every tensor checked against the
//! config (name, shape, dtype; nothing missing, nothing extra) before any is read, then
//! read one at a time and converted to the model's half type.

use super::config::Config;
use super::error::ModelError;
use super::files::{check_model_dir, read_text};
use super::llama_weights::{LlamaLayer, LlamaWeights};
use super::weight_file::{WeightFile, values_f32};
use crate::halves::{HalfBits, HalfType};
use safetensors::Dtype;
use safetensors::tensor::TensorInfo;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path};

/// A real index lists a few hundred tensors in tens of kilobytes.
const MAX_INDEX_BYTES: u64 = 16 << 20;

/// The index of a sharded checkpoint.
const INDEX: &str = "model.safetensors.index.json";

/// Every parameter's Hugging Face name and shape, in [`LlamaWeights`] order (q, k, v
/// and gate, up as the checkpoint stores them, apart); the loader and the exporter share
/// it. Lazy, so an absurd layer count costs nothing until a file has to hold it.
pub(super) fn llama_tensor_names(
    config: &Config,
) -> impl Iterator<Item = (String, Vec<usize>)> + use<> {
    let l = config.llama.clone().expect("a Llama config");
    let (d, hd, inter) = (l.d_model, l.head_dim, l.intermediate);
    let (q, kv) = (l.n_head * hd, l.n_kv_head * hd);
    let layers = (0..l.n_layer).flat_map(move |i| {
        let t = |suffix: &str, shape: Vec<usize>| (format!("model.layers.{i}.{suffix}"), shape);
        let mut names = vec![
            t("input_layernorm.weight", vec![d]),
            t("self_attn.q_proj.weight", vec![q, d]),
            t("self_attn.k_proj.weight", vec![kv, d]),
            t("self_attn.v_proj.weight", vec![kv, d]),
        ];
        if l.qkv_bias {
            names.extend([
                t("self_attn.q_proj.bias", vec![q]),
                t("self_attn.k_proj.bias", vec![kv]),
                t("self_attn.v_proj.bias", vec![kv]),
            ]);
        }
        names.extend([
            t("self_attn.o_proj.weight", vec![d, q]),
            t("post_attention_layernorm.weight", vec![d]),
            t("mlp.gate_proj.weight", vec![inter, d]),
            t("mlp.up_proj.weight", vec![inter, d]),
            t("mlp.down_proj.weight", vec![d, inter]),
        ]);
        names
    });
    let head = (!l.tie_word_embeddings).then(|| ("lm_head.weight".to_owned(), vec![l.vocab, d]));
    std::iter::once(("model.embed_tokens.weight".to_owned(), vec![l.vocab, d]))
        .chain(layers)
        .chain(std::iter::once(("model.norm.weight".to_owned(), vec![d])))
        .chain(head)
}

/// The checkpoint's files and which holds each tensor.
struct Shards {
    files: Vec<WeightFile>,
    /// Tensor name -> index into `files`.
    holder: BTreeMap<String, usize>,
}

impl Shards {
    /// model.safetensors, or the shards model.safetensors.index.json lists (each a plain
    /// file name inside the directory, each opened and checked once).
    fn open(dir: &Path) -> Result<Shards, ModelError> {
        let index_path = dir.join(INDEX);
        if std::fs::symlink_metadata(&index_path).is_err() {
            let file = WeightFile::open(&dir.join("model.safetensors"))?;
            let holder = file.names().into_iter().map(|n| (n, 0)).collect();
            return Ok(Shards {
                files: vec![file],
                holder,
            });
        }
        let bad = |reason: String| ModelError::BadIndex {
            path: index_path.clone(),
            reason,
        };
        let text = read_text(&index_path, MAX_INDEX_BYTES)?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Some(map) = json.get("weight_map").and_then(Value::as_object) else {
            return Err(bad("no weight_map object".into()));
        };
        let mut names: Vec<&str> = Vec::new();
        let mut holder = BTreeMap::new();
        for (tensor, file) in map {
            let Some(file) = file.as_str() else {
                return Err(bad(format!(
                    "the shard of {tensor} is {file}, not a file name"
                )));
            };
            let mut parts = Path::new(file).components();
            if !matches!(
                (parts.next(), parts.next()),
                (Some(Component::Normal(_)), None)
            ) {
                return Err(bad(format!(
                    "shard {file:?} is not a file name inside the model directory"
                )));
            }
            let at = match names.iter().position(|&n| n == file) {
                Some(at) => at,
                None => {
                    names.push(file);
                    names.len() - 1
                }
            };
            holder.insert(tensor.clone(), at);
        }
        let files = names
            .iter()
            .map(|name| WeightFile::open(&dir.join(name)))
            .collect::<Result<Vec<_>, _>>()?;
        for (tensor, &at) in &holder {
            if files[at].info(tensor).is_none() {
                return Err(bad(format!(
                    "lists {tensor} in {}, which does not hold it",
                    names[at]
                )));
            }
        }
        for (at, file) in files.iter().enumerate() {
            if let Some(name) = file
                .names()
                .into_iter()
                .find(|n| holder.get(n) != Some(&at))
            {
                return Err(bad(format!(
                    "{} holds {name}, which the index does not list there",
                    names[at]
                )));
            }
        }
        Ok(Shards { files, holder })
    }

    fn get(&self, name: &str) -> Option<(&WeightFile, &TensorInfo)> {
        let file = &self.files[*self.holder.get(name)?];
        Some((file, file.info(name)?))
    }
}

/// Reads and validates a Llama or Qwen2 directory (see the module docs); `progress` is
/// told the bytes of each tensor as it is converted.
pub fn load_llama_dir(
    dir: &Path,
    mut progress: impl FnMut(usize),
) -> Result<LlamaWeights, ModelError> {
    check_model_dir(dir)?;
    let config = Config::from_hf_dir(dir)?;
    let llama = config.llama.clone().ok_or_else(|| {
        ModelError::Unsupported(format!("{} is not a Llama-family model", dir.display()))
    })?;
    let shards = Shards::open(dir)?;
    let plan = plan(&shards, &config)?;
    let mut tensors = plan.into_iter().map(|(name, file, info)| {
        let t = read_converted(file, &name, info, llama.half)?;
        progress(2 * t.len());
        Ok::<_, ModelError>(t)
    });
    let mut next = || tensors.next().expect("the plan lists every parameter");
    let embed = next()?;
    let mut layers = Vec::with_capacity(llama.n_layer);
    for _ in 0..llama.n_layer {
        let attn_norm = next()?;
        let qkv = [next()?, next()?, next()?].concat();
        let qkv_bias = if llama.qkv_bias {
            Some([next()?, next()?, next()?].concat())
        } else {
            None
        };
        layers.push(LlamaLayer {
            attn_norm,
            qkv,
            qkv_bias,
            o_proj: next()?,
            mlp_norm: next()?,
            gate_up: [next()?, next()?].concat(),
            down: next()?,
        });
    }
    let final_norm = next()?;
    let lm_head = if llama.tie_word_embeddings {
        None
    } else {
        Some(next()?)
    };
    Ok(LlamaWeights {
        config,
        embed,
        layers,
        final_norm,
        lm_head,
    })
}

type Planned<'s> = (String, &'s WeightFile, &'s TensorInfo);

/// Every parameter in order with the file and header entry that hold it, after checking
/// each one's shape and dtype and that the checkpoint holds nothing else.
fn plan<'s>(shards: &'s Shards, config: &Config) -> Result<Vec<Planned<'s>>, ModelError> {
    let llama = config.llama.as_ref().expect("a Llama config");
    let path_of = |name: &str| {
        shards
            .holder
            .get(name)
            .map_or_else(|| shards.files[0].path(), |&at| shards.files[at].path())
            .to_owned()
    };
    let mut plan = Vec::new();
    let mut used = HashSet::new();
    for (name, shape) in llama_tensor_names(config) {
        let Some((file, info)) = shards.get(&name) else {
            return Err(ModelError::MissingTensor {
                path: path_of(&name),
                name,
            });
        };
        if info.shape != shape {
            return Err(ModelError::WrongShape {
                path: file.path().to_owned(),
                name,
                expected: shape,
                found: info.shape.clone(),
            });
        }
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(ModelError::WrongDtype {
                path: file.path().to_owned(),
                name,
                dtype: format!("{:?}", info.dtype),
            });
        }
        used.insert(name.clone());
        plan.push((name, file, info));
    }
    for name in shards.holder.keys().filter(|n| !used.contains(*n)) {
        let layer = name
            .strip_prefix("model.layers.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)));
        match layer {
            Some((i, _)) if i >= llama.n_layer => {
                return Err(ModelError::ExtraLayer {
                    path: path_of(name),
                    name: name.clone(),
                    n_layer: llama.n_layer,
                });
            }
            // Older checkpoints store the rotary frequencies; they are recomputed.
            Some((_, "self_attn.rotary_emb.inv_freq")) => {}
            // A tied head stored anyway: transformers ties it to the embedding on load.
            None if name == "lm_head.weight" && llama.tie_word_embeddings => {}
            _ => {
                return Err(ModelError::UnexpectedTensor {
                    path: path_of(name),
                    name: name.clone(),
                    architecture: match config.model_type() {
                        "qwen2" => "Qwen2ForCausalLM",
                        _ => "LlamaForCausalLM",
                    },
                });
            }
        }
    }
    Ok(plan)
}

/// One tensor read and converted to `half` (refused, by name, where a value does not fit).
fn read_converted(
    file: &WeightFile,
    name: &str,
    info: &TensorInfo,
    half: HalfType,
) -> Result<Vec<HalfBits>, ModelError> {
    let data = file.read(info)?;
    let same = matches!(
        (info.dtype, half),
        (Dtype::BF16, HalfType::Bf16) | (Dtype::F16, HalfType::F16)
    );
    if same {
        return Ok(data
            .chunks_exact(2)
            .map(|b| HalfBits(u16::from_le_bytes([b[0], b[1]])))
            .collect());
    }
    let Some(values) = values_f32(info.dtype, &data) else {
        return Err(ModelError::WrongDtype {
            path: file.path().to_owned(),
            name: name.to_owned(),
            dtype: format!("{:?}", info.dtype),
        });
    };
    values
        .map(|v| {
            let h = HalfBits::from_f32(v, half);
            if h.to_f32(half).is_finite() {
                Ok(h)
            } else {
                Err(ModelError::NotRepresentable {
                    path: file.path().to_owned(),
                    name: name.to_owned(),
                    value: v,
                    half: half.torch_name(),
                })
            }
        })
        .collect()
}
