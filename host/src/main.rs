//! `host`: the decode engine's command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use host::cli_model::ModelArgs;
use host::cuda::{Gpu, KERNELS_PTX, ptx_entries, ptx_target_arch};
use host::engine::Engine;
use host::graphs::BucketTable;
use host::model::{Weights, export_hf_dir};
use host::reference::model::{ReferenceModel, SequenceCache};
use host::tokenizer::{EOS, TextStream, Tokenizer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(version, about = "Rust-native GPT-2 decode on CUDA graphs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text greedily, streaming it, then print ms/token and tokens/s.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        /// The prompt.
        #[arg(long)]
        prompt: String,
        /// Run this many copies of the prompt as one batch (1..=32); the first is shown.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// New tokens per sequence at most (EOS stops earlier).
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Also write every step's logits, (steps, batch, vocab) f32, as safetensors.
        #[arg(long)]
        dump_logits: Option<PathBuf>,
        /// Replay one captured CUDA graph per (batch, context) bucket instead of launching
        /// every kernel from the host. Not yet verified on a GPU: off by default.
        #[arg(long, conflicts_with = "dump_logits")]
        graphs: bool,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
    },
    /// Run the GPU engine and the CPU reference teacher-forced; print the relative logit
    /// error per step; fail above the threshold.
    Check {
        #[command(flatten)]
        model: ModelArgs,
        /// Steps to compare.
        #[arg(long, default_value_t = 16)]
        steps: usize,
        /// Text whose tokens are fed (extended with the reference's greedy tokens).
        #[arg(long, default_value = "The quick brown fox jumps over the lazy dog.")]
        prompt: String,
        /// Largest relative L2 error of a step's logits that passes.
        #[arg(long, default_value_t = 1e-2)]
        threshold: f64,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
    },
    /// Write weights as a Hugging Face GPT-2 directory (config.json + model.safetensors).
    Export {
        #[command(flatten)]
        model: ModelArgs,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Show the GPU, check it can run the embedded kernels, and list them.
    Info {
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
    },
    /// Benchmarks on the GPU; each prints a table and can write JSON.
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
        /// Write the results as JSON to this file too.
        #[arg(long, global = true)]
        json: Option<PathBuf>,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0, global = true)]
        device: u32,
    },
}

#[derive(Subcommand)]
enum BenchSuite {
    /// Every decode kernel at gpt2-xl shapes, batch 1, 8 and 32, against copy bandwidth.
    Kernels,
    /// The whole engine, eager and with CUDA graphs, for the four GPT-2 sizes.
    Decode,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate {
            model,
            prompt,
            batch,
            max_new_tokens,
            dump_logits,
            graphs,
            device,
        } => generate(
            &model,
            &prompt,
            Request {
                batch,
                max_new_tokens,
                graphs,
            },
            dump_logits,
            device,
        ),
        Command::Check {
            model,
            steps,
            prompt,
            threshold,
            device,
        } => check(&model, steps, &prompt, threshold, device),
        Command::Export { model, out } => {
            let weights = model.weights()?;
            export_hf_dir(&weights, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Info { device } => info(device),
        Command::Bench {
            suite,
            json,
            device,
        } => {
            let results = match suite {
                BenchSuite::Kernels => {
                    serde_json::to_value(host::bench::kernels::run(&Gpu::open(device)?)?)?
                }
                BenchSuite::Decode => serde_json::to_value(host::bench::decode::run(device)?)?,
            };
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&results)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// Uploads the weights with a progress bar.
fn start_engine(weights: &Weights, device: u32, batch: usize, capacity: usize) -> Result<Engine> {
    let gpu = Gpu::open(device)?;
    let bar = indicatif::ProgressBar::new(weights.bytes() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("uploading weights {bar:40} {bytes}/{total_bytes}")
            .expect("a valid template"),
    );
    let engine = Engine::new(gpu, weights, batch, capacity, |bytes| bar.inc(bytes as u64))?;
    bar.finish_and_clear();
    eprintln!(
        "{}: {} parameters, KV cache {:.1} MiB for {batch} x {capacity} positions",
        engine.gpu().info().name,
        weights.config.parameters(),
        engine.kv_cache_bytes() as f64 / (1 << 20) as f64
    );
    Ok(engine)
}

/// The shape of a generation request.
struct Request {
    batch: usize,
    max_new_tokens: usize,
    /// Replay CUDA graphs (graphs write no logits, so not with a dump).
    graphs: bool,
}

fn generate(
    model: &ModelArgs,
    prompt: &str,
    request: Request,
    dump_logits: Option<PathBuf>,
    device: u32,
) -> Result<()> {
    let Request {
        batch,
        max_new_tokens,
        graphs,
    } = request;
    // Everything a user can get wrong is checked before the GPU is touched.
    let tokenizer = Tokenizer::gpt2()?;
    let tokens = tokenizer.encode(prompt);
    if tokens.is_empty() {
        bail!("the prompt is empty");
    }
    if batch == 0 || batch > gpu_kernels::abi::MAX_BATCH as usize {
        bail!(
            "--batch {batch} is outside 1..={}",
            gpu_kernels::abi::MAX_BATCH
        );
    }
    let capacity = model.config()?.n_positions;
    if tokens.len() + max_new_tokens > capacity + 1 {
        bail!(
            "the prompt has {} tokens; with --max-new-tokens {max_new_tokens} it needs {} positions, more than the model's context of {capacity}",
            tokens.len(),
            tokens.len() + max_new_tokens - 1
        );
    }
    let weights = model.weights()?;
    let mut engine = start_engine(&weights, device, batch, capacity)?;
    if graphs {
        let reports = engine.capture_graphs(BucketTable::default_for(batch, capacity))?;
        let ms: f64 = reports.iter().map(|r| r.capture_ms).sum();
        eprintln!(
            "captured {} graphs ({} nodes each at most) in {ms:.0} ms{}",
            reports.len(),
            reports.iter().map(|r| r.nodes).max().unwrap_or(0),
            if reports.iter().all(|r| r.programmatic) {
                ", with programmatic dependent launch"
            } else {
                ""
            }
        );
    }
    print!("{prompt}");
    let mut stream = TextStream::new();
    let start = Instant::now();
    let generated = if let Some(path) = &dump_logits {
        generate_dumping(&mut engine, &tokens, batch, max_new_tokens, path, |t| {
            print!("{}", stream.push(&tokenizer, t));
        })?
    } else {
        let prompts = vec![tokens.clone(); batch];
        let out = engine.generate(&prompts, max_new_tokens, Some(EOS), |b, t| {
            if b == 0 {
                print!("{}", stream.push(&tokenizer, t));
                let _ = std::io::stdout().flush();
            }
        })?;
        out.steps
    };
    let elapsed = start.elapsed().as_secs_f64();
    println!();
    let ms_per_step = 1e3 * elapsed / generated as f64;
    eprintln!(
        "{generated} steps (prompt {} + generated) at batch {batch}: {ms_per_step:.2} ms/token, {:.0} tokens/s ({})",
        tokens.len(),
        1e3 / ms_per_step * batch as f64,
        if graphs { "CUDA graphs" } else { "eager" }
    );
    Ok(())
}

/// Generation that also keeps every step's logits, written to `path` at the end.
fn generate_dumping(
    engine: &mut Engine,
    prompt: &[u32],
    batch: usize,
    max_new_tokens: usize,
    path: &Path,
    mut show: impl FnMut(u32),
) -> Result<usize> {
    let mut inputs = prompt.to_vec();
    let mut logits = Vec::new();
    let mut steps = 0;
    for position in 0..prompt.len() + max_new_tokens - 1 {
        let (next, step_logits) = engine.step(&vec![inputs[position]; batch], position, true)?;
        logits.extend(step_logits.expect("asked for logits"));
        steps += 1;
        if position + 1 >= prompt.len() {
            inputs.push(next[0]);
            show(next[0]);
            if next[0] == EOS {
                break;
            }
        }
    }
    let vocab = logits.len() / (steps * batch);
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ids: Vec<u8> = inputs[..steps]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let views = vec![
        (
            "logits",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![steps, batch, vocab],
                &bytes,
            )?,
        ),
        (
            "input_ids",
            safetensors::tensor::TensorView::new(safetensors::Dtype::U32, vec![steps], &ids)?,
        ),
    ];
    safetensors::serialize_to_file(views, None, path)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote logits of {steps} steps to {}", path.display());
    Ok(steps)
}

fn check(model: &ModelArgs, steps: usize, prompt: &str, threshold: f64, device: u32) -> Result<()> {
    let tokenizer = Tokenizer::gpt2()?;
    let mut tokens = tokenizer.encode(prompt);
    let n_positions = model.config()?.n_positions;
    if steps == 0 || steps > n_positions {
        bail!("--steps {steps} is outside 1..={n_positions}");
    }
    let weights = model.weights()?;
    let reference = ReferenceModel::new(&weights);
    let mut engine = start_engine(&weights, device, 1, steps)?;
    let mut cache = SequenceCache::default();
    let mut worst: f64 = 0.0;
    println!("step | token | relative L2 error | gpu argmax | cpu argmax");
    for position in 0..steps {
        let expected = reference.step(&mut cache, tokens[position]);
        let (_, logits) = engine.step(&tokens[position..=position], position, true)?;
        let logits = logits.expect("asked for logits");
        let error = host::reference::relative_l2(&logits, &expected);
        worst = worst.max(error);
        let (gpu_top, cpu_top) = (
            host::reference::argmax(&logits),
            host::reference::argmax(&expected),
        );
        println!(
            "{position:4} | {:5} | {error:17.3e} | {gpu_top:10} | {cpu_top:10}",
            tokens[position]
        );
        if tokens.len() == position + 1 {
            tokens.push(cpu_top as u32);
        }
    }
    if worst > threshold {
        bail!("largest relative logit error {worst:.3e} is above the threshold {threshold:.0e}");
    }
    println!("largest relative logit error {worst:.3e} (threshold {threshold:.0e}): ok");
    Ok(())
}

fn info(device: u32) -> Result<()> {
    let gpu = Gpu::open(device)?;
    let info = gpu.info();
    println!("device      {} {}", info.ordinal, info.name);
    println!(
        "capability  {}.{}, {} SMs, {:.1} GiB, L2 {} MiB",
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.total_memory as f64 / (1u64 << 30) as f64,
        info.l2_bytes >> 20
    );
    println!(
        "kernels     {} for {} (loaded)",
        ptx_entries(KERNELS_PTX).len(),
        ptx_target_arch(KERNELS_PTX).unwrap_or("?")
    );
    for (name, _) in ptx_entries(KERNELS_PTX) {
        println!("  {name}");
    }
    Ok(())
}
