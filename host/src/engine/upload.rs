//! What the engine uploads: any architecture's host weights, checked and prepared for the
//! kernels (norms folded) before the first byte goes to the GPU.

use super::EngineError;
use crate::cuda::Gpu;
use crate::model::{
    Config, DeviceWeights, LlamaDeviceWeights, LlamaWeights, Weights, check_llama_folds,
    fold_layers,
};
use crate::step::DeviceParameters;

/// A model's parameters on the host, of any architecture the engine runs.
pub trait ModelWeights {
    /// The shape.
    fn config(&self) -> &Config;

    /// Checks the weights, then uploads them (the norms folded into the GEMVs after
    /// them), reporting bytes to `progress`.
    fn upload(
        &self,
        gpu: &Gpu,
        progress: &mut dyn FnMut(usize),
    ) -> Result<DeviceParameters, EngineError>;
}

impl ModelWeights for Weights {
    fn config(&self) -> &Config {
        &self.config
    }

    fn upload(
        &self,
        gpu: &Gpu,
        progress: &mut dyn FnMut(usize),
    ) -> Result<DeviceParameters, EngineError> {
        let folded = fold_layers(self)?;
        let weights = DeviceWeights::upload(gpu, self, &folded, progress)?;
        Ok(DeviceParameters::Gpt2(weights))
    }
}

impl ModelWeights for LlamaWeights {
    fn config(&self) -> &Config {
        &self.config
    }

    fn upload(
        &self,
        gpu: &Gpu,
        progress: &mut dyn FnMut(usize),
    ) -> Result<DeviceParameters, EngineError> {
        check_llama_folds(self)?;
        let weights = LlamaDeviceWeights::upload(gpu, self, progress)?;
        Ok(DeviceParameters::Llama(weights))
    }
}

/// Weights of either family, as the command line loads or makes them.
pub enum AnyWeights {
    /// GPT-2.
    Gpt2(Weights),
    /// Llama 3, Qwen2.5.
    Llama(LlamaWeights),
}

impl AnyWeights {
    /// Random weights for `config`, deterministic in `seed`.
    pub fn random(config: &Config, seed: u64) -> AnyWeights {
        match config.llama {
            None => AnyWeights::Gpt2(Weights::random(config, seed)),
            Some(_) => AnyWeights::Llama(LlamaWeights::random(config, seed)),
        }
    }

    /// Keeps the first `n` blocks (for looking at a smaller graph).
    pub fn truncate_layers(&mut self, n: usize) {
        let config = match self {
            AnyWeights::Gpt2(w) => {
                w.layers.truncate(n);
                &mut w.config
            }
            AnyWeights::Llama(w) => {
                w.layers.truncate(n);
                &mut w.config
            }
        };
        config.n_layer = config.n_layer.min(n);
        if let Some(l) = &mut config.llama {
            l.n_layer = config.n_layer;
        }
    }

    /// Writes the weights as a Hugging Face directory's config.json and model.safetensors
    /// into the existing directory `dir`.
    pub fn write_hf_files(&self, dir: &std::path::Path) -> Result<(), crate::model::ModelError> {
        match self {
            AnyWeights::Gpt2(w) => crate::model::write_hf_files(w, dir),
            AnyWeights::Llama(w) => crate::model::write_llama_files(w, dir),
        }
    }

    fn inner(&self) -> &dyn ModelWeights {
        match self {
            AnyWeights::Gpt2(w) => w,
            AnyWeights::Llama(w) => w,
        }
    }
}

impl ModelWeights for AnyWeights {
    fn config(&self) -> &Config {
        self.inner().config()
    }

    fn upload(
        &self,
        gpu: &Gpu,
        progress: &mut dyn FnMut(usize),
    ) -> Result<DeviceParameters, EngineError> {
        self.inner().upload(gpu, progress)
    }
}
