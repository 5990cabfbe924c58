//! The logits file `host generate --dump-logits` writes and `xtask/peers/hf_logits.py`
//! reads: safetensors with `logits` (steps, batch, vocab) f32 and `input_ids` (steps) u32.

use anyhow::{Context, Result};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::path::Path;

/// Writes `logits` ((steps, batch, vocab), row-major) and the step inputs `ids`.
pub fn write(path: &Path, logits: &[f32], batch: usize, ids: &[u32]) -> Result<()> {
    std::fs::write(path, to_bytes(logits, batch, ids)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The file's bytes for `logits` ((steps, batch, vocab), row-major) and the step
/// inputs `ids`.
pub fn to_bytes(logits: &[f32], batch: usize, ids: &[u32]) -> Result<Vec<u8>> {
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
    Ok(safetensors::serialize(views, None)?)
}
