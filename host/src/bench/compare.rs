//! `host bench compare`: our engine beside PyTorch on the very same weights, in one run on
//! one GPU. Per model: the weights are exported as a Hugging Face directory; ours is timed
//! eager, one graph per step and several steps per graph ([`super::decode`]); the peers
//! (`xtask/peers/torch_decode.py`: transformers eager, a static-KV step under
//! torch.cuda.graph, the same under torch.compile) run on that directory; and our logits
//! are cross-checked against transformers' (`xtask/peers/hf_logits.py`), teacher-forced.

use super::copy_bandwidth_gbps;
use super::decode::{self, DecodeCases};
use crate::cuda::Gpu;
use crate::engine::Engine;
use crate::model::{Config, Weights, export_hf_dir};
use crate::reference::argmax;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Steps the cross-check compares.
const CROSS_CHECK_STEPS: usize = 16;

/// What to run.
#[derive(Clone, Debug)]
pub struct CompareCases {
    /// Models, batches, contexts and steps per graph, as for `bench decode`.
    pub decode: DecodeCases,
    /// Where torch_decode.py and hf_logits.py are.
    pub peers_dir: PathBuf,
    /// The Python that has torch and transformers.
    pub python: String,
    /// Peers to run (names torch_decode.py knows), none for ours alone.
    pub peers: Vec<String>,
}

/// ms/token of every engine for one (model, batch, context).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompareRow {
    /// gpt2 .. gpt2-xl.
    pub preset: String,
    /// Parameters of the model.
    pub parameters: usize,
    /// Sequences.
    pub batch: usize,
    /// Mean positions attended to.
    pub context: usize,
    /// Weights and KV bytes read per step at the copy bandwidth, ms.
    pub floor_ms: f64,
    /// Engine name -> ms per step (each step gives every sequence one token).
    pub ms: BTreeMap<String, f64>,
    /// Engine name -> remark (whether torch.compile's CUDA graphs engaged).
    pub notes: BTreeMap<String, String>,
}

/// Our logits against transformers' on the same weights and tokens.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CrossCheck {
    /// The model.
    pub preset: String,
    /// Largest relative L2 error of a step's logits.
    pub largest_relative_error: f64,
    /// Steps whose argmax agrees, of `steps`.
    pub argmax_equal: usize,
    /// Steps compared.
    pub steps: usize,
}

/// What `host bench compare` measured.
#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    /// The GPU.
    pub device: String,
    /// Device-to-device copy bandwidth, GB/s (read + write).
    pub copy_gbps: f64,
    /// Steps per launch of the "ours graph xK" rows.
    pub steps_per_graph: usize,
    /// One row per model, batch and context.
    pub rows: Vec<CompareRow>,
    /// One per model.
    pub cross_checks: Vec<CrossCheck>,
}

/// The PyTorch peers torch_decode.py runs.
pub const PEERS: [&str; 3] = ["hf", "graph", "compile"];

/// Names of our three rows.
pub fn our_engines(steps_per_graph: usize) -> [String; 3] {
    [
        "ours eager".into(),
        "ours graph".into(),
        format!("ours graph x{steps_per_graph}"),
    ]
}

/// Runs every case, printing as it goes.
pub fn run(device: u32, cases: &CompareCases) -> Result<Comparison> {
    for (preset, config) in cases.decode.check()? {
        if config.llama.is_some() {
            anyhow::bail!(
                "bench compare runs the GPT-2 presets so far; time {preset} with bench decode"
            );
        }
    }
    if let Some(peer) = cases.peers.iter().find(|p| !PEERS.contains(&p.as_str())) {
        bail!("--peers {peer}: choose from {} or none", PEERS.join(", "));
    }
    for script in ["torch_decode.py", "hf_logits.py"] {
        let path = cases.peers_dir.join(script);
        if !path.is_file() {
            bail!("{} does not exist (see --peers-dir)", path.display());
        }
    }
    let runs = Command::new(&cases.python)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !runs {
        bail!("--python {} does not run", cases.python);
    }
    let probe = Gpu::open(device)?;
    let copy_gbps = copy_bandwidth_gbps(&probe)?;
    let name = probe.info().name.clone();
    drop(probe);
    println!("{name}: device-to-device copy {copy_gbps:.0} GB/s (read + write)");
    // Removed when dropped, on success or failure.
    let scratch = tempfile::Builder::new()
        .prefix("host-compare-")
        .tempdir()
        .context("making a scratch directory")?;
    let mut comparison = Comparison {
        device: name,
        copy_gbps,
        steps_per_graph: cases.decode.steps_per_graph,
        rows: Vec::new(),
        cross_checks: Vec::new(),
    };
    let result = (|| {
        for preset in &cases.decode.presets {
            let config = Config::preset(preset)?;
            let weights = Weights::random(&config, 1);
            let dir = scratch.path().join(preset);
            export_hf_dir(&weights, &dir)?;
            for &batch in &cases.decode.batches {
                let rows = compare_batch(device, &weights, preset, batch, cases, &dir, copy_gbps)?;
                comparison.rows.extend(rows);
            }
            let check = cross_check(device, &weights, preset, cases, &dir)?;
            println!(
                "{preset}: logits vs transformers, {} steps teacher-forced: largest relative error {:.2e}, argmax equal {}/{}",
                check.steps, check.largest_relative_error, check.argmax_equal, check.steps
            );
            comparison.cross_checks.push(check);
        }
        Ok(())
    })();
    drop(scratch);
    result.map(|()| comparison)
}

fn compare_batch(
    device: u32,
    weights: &Weights,
    preset: &str,
    batch: usize,
    cases: &CompareCases,
    dir: &Path,
    copy_gbps: f64,
) -> Result<Vec<CompareRow>> {
    let ours = decode::measure(device, weights, preset, batch, &cases.decode, copy_gbps)?;
    let peers = run_peers(batch, cases, dir)?;
    let names = our_engines(cases.decode.steps_per_graph);
    let mut rows = Vec::new();
    for row in ours {
        let mut ms = BTreeMap::new();
        let mut notes = BTreeMap::new();
        for (name, value) in names
            .iter()
            .zip([row.eager_ms, row.graph_ms, row.chained_ms])
        {
            ms.insert(name.clone(), value);
        }
        for peer in peers.iter().filter(|p| p.context == row.context) {
            ms.insert(peer.engine.clone(), peer.ms_per_token);
            if !peer.note.is_empty() {
                notes.insert(peer.engine.clone(), peer.note.clone());
            }
        }
        let line: Vec<String> = ms.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        println!(
            "{preset} batch {batch} context {}: floor {:.3} ms; {}",
            row.context,
            row.floor_ms,
            line.join(", ")
        );
        rows.push(CompareRow {
            preset: preset.to_owned(),
            parameters: weights.config.parameters(),
            batch,
            context: row.context,
            floor_ms: row.floor_ms,
            ms,
            notes,
        });
    }
    Ok(rows)
}

/// One peer's measurement, as torch_decode.py writes it.
#[derive(serde::Deserialize)]
struct PeerRow {
    peer: String,
    context: usize,
    ms_per_token: f64,
    #[serde(default)]
    note: Option<String>,
}

/// A peer row under its display name.
struct Peer {
    engine: String,
    context: usize,
    ms_per_token: f64,
    note: String,
}

/// The display name of a torch_decode.py peer.
pub fn peer_engine(peer: &str) -> String {
    match peer {
        "hf" => "transformers eager".into(),
        "hf-cudnn" => "transformers eager, cuDNN SDPA".into(),
        "graph" => "torch.cuda.graph".into(),
        "compile" => "torch.compile".into(),
        other => other.into(),
    }
}

fn run_peers(batch: usize, cases: &CompareCases, dir: &Path) -> Result<Vec<Peer>> {
    if cases.peers.is_empty() {
        return Ok(Vec::new());
    }
    let json = dir.join(format!("peers-b{batch}.json"));
    let contexts: Vec<String> = cases.decode.contexts.iter().map(usize::to_string).collect();
    let status = Command::new(&cases.python)
        .arg(cases.peers_dir.join("torch_decode.py"))
        .arg(dir)
        .args(["--batch", &batch.to_string()])
        .args(["--contexts", &contexts.join(",")])
        .args(["--peers", &cases.peers.join(",")])
        .arg("--json")
        .arg(&json)
        .status()
        .with_context(|| format!("running {}", cases.python))?;
    if !status.success() {
        bail!("torch_decode.py failed at batch {batch} ({status})");
    }
    let text = std::fs::read_to_string(&json)?;
    let rows: Vec<PeerRow> = serde_json::from_str(&text)?;
    Ok(rows
        .into_iter()
        .map(|r| Peer {
            engine: peer_engine(&r.peer),
            context: r.context,
            ms_per_token: r.ms_per_token,
            note: r.note.unwrap_or_default(),
        })
        .collect())
}

/// Our engine teacher-forced over a fixed token sequence (extended greedily), logits
/// dumped, then hf_logits.py over the same weights and tokens.
fn cross_check(
    device: u32,
    weights: &Weights,
    preset: &str,
    cases: &CompareCases,
    dir: &Path,
) -> Result<CrossCheck> {
    let mut engine = Engine::new(Gpu::open(device)?, weights, 1, CROSS_CHECK_STEPS, |_| {})?;
    let mut ids: Vec<u32> = vec![464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13];
    let mut logits = Vec::new();
    for position in 0..CROSS_CHECK_STEPS {
        let (_, step_logits) = engine.step(&ids[position..=position], position, true)?;
        let step_logits = step_logits.expect("asked for logits");
        if ids.len() == position + 1 {
            ids.push(argmax(&step_logits) as u32);
        }
        logits.extend(step_logits);
    }
    let dump = dir.join("ours.safetensors");
    crate::logits_dump::write(&dump, &logits, 1, &ids[..CROSS_CHECK_STEPS])?;
    let out = Command::new(&cases.python)
        .arg(cases.peers_dir.join("hf_logits.py"))
        .arg(dir)
        .arg(&dump)
        .output()
        .with_context(|| format!("running {}", cases.python))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_hf_logits(preset, &stdout).with_context(|| {
        format!(
            "hf_logits.py said: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Reads hf_logits.py's summary line: `largest E over N steps (...); argmax equal at A/N
/// steps`.
fn parse_hf_logits(preset: &str, stdout: &str) -> Result<CrossCheck> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("largest "))
        .context("no summary line")?;
    let word = |i: usize| line.split_whitespace().nth(i).unwrap_or("");
    let largest_relative_error: f64 = word(1).parse()?;
    let steps: usize = word(3).parse()?;
    let equal = line
        .rsplit("argmax equal at ")
        .next()
        .context("no argmax count")?;
    let argmax_equal: usize = equal.split('/').next().unwrap_or("").parse()?;
    Ok(CrossCheck {
        preset: preset.to_owned(),
        largest_relative_error,
        argmax_equal,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cross_check_summary() {
        let out = "step | relative L2 error vs transformers\n   0 | 1.0e-03\nlargest 1.208e-03 over 16 steps (threshold 1e-02); argmax equal at 15/16 steps\n";
        let c = parse_hf_logits("gpt2", out).unwrap();
        assert_eq!(c.largest_relative_error, 1.208e-3);
        assert_eq!((c.argmax_equal, c.steps), (15, 16));
    }
}
