//! What can be wrong with a model the user points at, one line each.

use std::path::PathBuf;

/// A model directory, config or weight file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No such directory.
    #[error("model directory {0} does not exist")]
    MissingDir(PathBuf),
    /// The model path is something other than a directory.
    #[error(
        "model path {path} is {kind}; give the directory that holds config.json and model.safetensors"
    )]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A path where a regular file belongs holds something else.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A text file larger than any real one of its kind.
    #[error("{path} is {size} bytes; more than {limit} is not a plausible file of its kind")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The largest accepted.
        limit: u64,
    },
    /// A file the directory must hold is not there.
    #[error("{0} not found")]
    MissingFile(PathBuf),
    /// A file that could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// config.json is not valid JSON or lacks a field.
    #[error("{path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A shape the kernels do not support.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The safetensors file is truncated or not safetensors at all.
    #[error("{path}: truncated or corrupt safetensors file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// The header names one tensor twice.
    #[error("{path}: the header names {name} twice")]
    DuplicateTensor {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
    /// The file holds a parameter under two names the loader accepts.
    #[error(
        "{path}: holds both {name} and transformer.{name}; which one the model is, is ambiguous"
    )]
    AmbiguousTensor {
        /// The file.
        path: PathBuf,
        /// The name without its prefix.
        name: String,
    },
    /// The file holds a tensor the model does not have.
    #[error("{path}: holds tensor {name}, which a {architecture} model does not have")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The model class, as transformers names it.
        architecture: &'static str,
    },
    /// A tensor the model needs is absent.
    #[error("{path}: missing tensor {name}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's Hugging Face name.
        name: String,
    },
    /// A tensor's shape disagrees with the config.
    #[error("{path}: tensor {name} has shape {found:?}, but config.json implies {expected:?}")]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What the config implies.
        expected: Vec<usize>,
        /// What the file holds.
        found: Vec<usize>,
    },
    /// A tensor of a dtype the loader does not convert.
    #[error("{path}: tensor {name} has dtype {dtype}; supported: F32, F16, BF16")]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A value that fp16 cannot hold (overflow or NaN).
    #[error("{path}: tensor {name} holds {value}, which {half} cannot represent")]
    NotRepresentable {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The offending value.
        value: f32,
        /// The type it is converted to.
        half: &'static str,
    },
    /// The shard index of a sharded checkpoint is unusable.
    #[error("{path}: {reason}")]
    BadIndex {
        /// model.safetensors.index.json.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A norm's scale folded into the layer after it gives a value fp16 cannot hold.
    #[error(
        "{name}: folding the {norm} before it into the weights gives {value}, which fp16 cannot represent"
    )]
    FoldOverflow {
        /// The layer.
        name: String,
        /// The norm: layernorm (GPT-2) or RMSNorm.
        norm: &'static str,
        /// The offending value.
        value: f32,
    },
    /// The file has more layers than config.json says.
    #[error("{path}: holds tensor {name}, but config.json says n_layer = {n_layer}")]
    ExtraLayer {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Layers in the config.
        n_layer: usize,
    },
    /// Writing an exported model failed.
    #[error("cannot write {path}: {reason}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// The reason.
        reason: String,
    },
}
