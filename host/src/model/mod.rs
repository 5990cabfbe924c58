//! The model: its shape ([`Config`]), its parameters ([`Weights`], random or loaded from a
//! Hugging Face directory and validated; [`DeviceWeights`] on the GPU), writing them back
//! out, the input layernorms folded into the layers after them ([`fold_layers`]), and
//! the [`KvCache`] pool.

mod config;
mod config_json;
mod device_weights;
mod error;
mod export;
mod files;
mod fold;
mod kv_cache;
mod llama_config;
mod llama_device;
mod llama_export;
mod llama_load;
mod llama_weights;
mod load;
mod rope;
mod weight_file;
mod weights;

pub use config::{Config, GPT2_EOS};
pub use device_weights::{DeviceLayer, DeviceWeights, FoldedDeviceLinear};
pub use error::ModelError;
pub use export::{export_hf_dir, write_hf_files};
pub use files::{check_model_dir, describe_file_type, read_text};
pub use fold::{FoldedLayer, FoldedLinear, fold_layernorm, fold_layers};
pub use kv_cache::KvCache;
pub use llama_config::{LlamaConfig, LlamaFamily};
pub use llama_device::{LlamaDeviceLayer, LlamaDeviceWeights, check_llama_folds, fold_rms};
pub use llama_export::write_llama_files;
pub use llama_load::load_llama_dir;
pub use llama_weights::{LlamaLayer, LlamaWeights, tiny_llama};
pub use load::{load_hf_dir, load_hf_dir_with_progress};
pub use rope::{Rope, RopeScaling};
pub use weights::{LayerWeights, Weights};
