//! The logits file `host generate --dump-logits` writes and `xtask/peers/hf_logits.py`
//! reads: safetensors with `logits` (steps, batch, vocab) f32 and `input_ids` (steps) u32.

use anyhow::{Context, Result};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::path::Path;

/// Writes `logits` ((steps, batch, vocab), row-major) and the step inputs `ids`.
pub fn write(path: &Path, logits: &[f32], batch: usize, ids: &[u32]) -> Result<()> {
    let steps = ids.len();
    let vocab = logits.len() / (steps * batch).max(1);
    anyhow::ensure!(
        logits.len() == steps * batch * vocab,
        "{} logits are not (steps {steps}, batch {batch}, vocab)",
        logits.len()
    );
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let id_bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        (
            "logits",
            TensorView::new(Dtype::F32, vec![steps, batch, vocab], &bytes)?,
        ),
        (
            "input_ids",
            TensorView::new(Dtype::U32, vec![steps], &id_bytes)?,
        ),
    ];
    safetensors::serialize_to_file(views, None, path)
        .with_context(|| format!("writing {}", path.display()))
}
