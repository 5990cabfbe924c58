//! The model on the host: its shape ([`Config`]), its parameters ([`Weights`], random or
//! loaded from a Hugging Face directory and validated), and writing them back out.

mod config;
mod error;
mod export;
mod load;
mod weights;

pub use config::Config;
pub use error::ModelError;
pub use export::export_hf_dir;
pub use load::load_hf_dir;
pub use weights::{LayerWeights, Weights};
