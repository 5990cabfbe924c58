//! `host`: the decode engine's command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use host::bench::compare::CompareCases;
use host::cli::bench_args::CaseArgs;
use host::cli::generate::Request;
use host::cli::graph_args::GraphArgs;
use host::cli::graphs::Show;
use host::cli::model_args::ModelArgs;
use host::cuda::Gpu;
use host::output::{OutputDir, OutputFile};
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Format the prompt as one user message with the chat template of the model's
        /// tokenizer_config.json.
        #[arg(long)]
        chat: bool,
        /// Run this many copies of the prompt as one batch (1..=32); the first is shown.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// New tokens per sequence at most (EOS stops earlier).
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Also write every step's logits, (steps, batch, vocab) f32, as safetensors.
        #[arg(long)]
        dump_logits: Option<PathBuf>,
        #[command(flatten)]
        graphs: GraphArgs,
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
        /// Largest relative L2 error of a step's logits that passes [default: 1e-2 for
        /// fp16 models, 5e-2 for bf16 ones, whose activations keep 8 significant bits].
        #[arg(long)]
        threshold: Option<f64>,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
    },
    /// Write weights as a Hugging Face directory (config.json + model.safetensors) that
    /// transformers loads.
    Export {
        #[command(flatten)]
        model: ModelArgs,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an engine's CUDA graphs and print, per graph, its nodes, record and
    /// instantiate times and device memory; optionally write one as Graphviz dot.
    Graphs {
        #[command(flatten)]
        model: ModelArgs,
        /// The engine's largest batch.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Keep only the first N layers of the model.
        #[arg(long)]
        layers: Option<usize>,
        /// Write the graph of the smallest bucket as Graphviz dot to this file, one line
        /// per node.
        #[arg(long)]
        dot: Option<PathBuf>,
        /// With --dot, every parameter of every node (the driver's verbose dump).
        #[arg(long, requires = "dot")]
        dot_verbose: bool,
        /// Then upload the weights again into new buffers and update every graph in place.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        graphs: GraphArgs,
        /// CUDA device ordinal.
        #[arg(long, default_value_t = 0)]
        device: u32,
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
    /// The whole engine, eager, with CUDA graphs, and with steps chained per graph.
    Decode {
        #[command(flatten)]
        cases: CaseArgs,
    },
    /// Ours beside the PyTorch peers on the same weights, plus a logits cross-check
    /// against transformers: the README's table (needs python3 with torch and transformers).
    Compare {
        #[command(flatten)]
        cases: CaseArgs,
        /// PyTorch peers to run: hf, graph, compile (comma-separated), or none.
        #[arg(long, value_delimiter = ',', default_value = "hf,graph,compile")]
        peers: Vec<String>,
        /// Where torch_decode.py and hf_logits.py are [default: peers/ beside this
        /// executable, else the source tree's xtask/peers].
        #[arg(long)]
        peers_dir: Option<PathBuf>,
        /// The Python to run them with.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
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
            chat,
            batch,
            max_new_tokens,
            dump_logits,
            graphs,
            device,
        } => host::cli::generate::generate(
            &model,
            Request {
                prompt,
                chat,
                batch,
                max_new_tokens,
                dump_logits,
            },
            &graphs,
            device,
        ),
        Command::Check {
            model,
            steps,
            prompt,
            threshold,
            device,
        } => host::cli::check::check(&model, steps, &prompt, threshold, device),
        Command::Graphs {
            model,
            batch,
            layers,
            dot,
            dot_verbose,
            update,
            graphs,
            device,
        } => host::cli::graphs::graphs(
            &model,
            Show {
                batch,
                layers,
                dot,
                dot_verbose,
                update,
            },
            &graphs,
            device,
        ),
        Command::Export { model, out } => {
            let dir = OutputDir::create(&out)?;
            let weights = model.weights()?;
            weights.write_hf_files(dir.path())?;
            dir.commit()?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Info { device } => host::cli::info::info(device),
        Command::Bench {
            suite,
            json,
            device,
        } => {
            let json = json
                .map(|path| OutputFile::create(&path, &[]))
                .transpose()?;
            let results = match suite {
                BenchSuite::Kernels => {
                    serde_json::to_value(host::bench::kernels::run(&Gpu::open(device)?)?)?
                }
                BenchSuite::Decode { cases } => {
                    let cases = cases.cases(&[1, 8], &[128]);
                    serde_json::to_value(host::bench::decode::run(device, &cases)?)?
                }
                BenchSuite::Compare {
                    cases,
                    peers,
                    peers_dir,
                    python,
                } => {
                    let cases = CompareCases {
                        decode: cases.cases(&[1, 8, 32], &[128, 1000]),
                        peers_dir: peers_dir.unwrap_or_else(default_peers_dir),
                        python,
                        peers: peers.into_iter().filter(|p| p != "none").collect(),
                    };
                    serde_json::to_value(host::bench::compare::run(device, &cases)?)?
                }
            };
            if let Some(file) = json {
                file.write(serde_json::to_string_pretty(&results)?.as_bytes())?;
                let path = file.target().to_owned();
                file.commit()?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// A command-line error as one line: clap's message up to its first blank line (the
/// usage and help hints after it left out), lines joined.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// peers/ beside the executable (the GPU bundle's layout), else the source tree's.
fn default_peers_dir() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("peers")));
    match beside {
        Some(dir) if dir.is_dir() => dir,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xtask/peers"),
    }
}
