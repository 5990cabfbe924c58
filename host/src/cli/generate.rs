//! `host generate`: greedy generation streamed as text, eagerly or through CUDA graphs.

use super::graph_args::GraphArgs;
use super::model_args::ModelArgs;
use super::{prompt_tokens, start_engine};
use crate::engine::Engine;
use crate::graphs::GraphReport;
use crate::output::OutputFile;
use crate::tokenizer::{ChatTemplate, TextStream, Tokenizer};
use anyhow::{Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// What to generate.
pub struct Request {
    /// The prompt text.
    pub prompt: String,
    /// Format the prompt as one user message with the model's chat template.
    pub chat: bool,
    /// Copies of the prompt decoded as one batch; the first is shown.
    pub batch: usize,
    /// New tokens per sequence at most.
    pub max_new_tokens: usize,
    /// Write every step's logits here (eager steps: graphs write no logits).
    pub dump_logits: Option<PathBuf>,
}

/// Checks the request, starts the engine, makes its graphs, streams the text of the
/// first sequence, then prints ms/token and tokens/s.
pub fn generate(
    model: &ModelArgs,
    request: Request,
    graphs: &GraphArgs,
    device: u32,
) -> Result<()> {
    let Request {
        prompt,
        chat,
        batch,
        max_new_tokens,
        dump_logits,
    } = request;
    // Everything a user can get wrong is checked before the GPU is touched.
    let config = model.config()?;
    let tokenizer = Tokenizer::for_model(model.model.as_deref())?;
    let tokens = match (chat, &model.model) {
        (false, _) => prompt_tokens(&tokenizer, &prompt, false, &config)?,
        (true, Some(dir)) => {
            let text = ChatTemplate::for_model(dir)?.render_user_message(&prompt)?;
            prompt_tokens(&tokenizer, &text, true, &config)?
        }
        (true, None) => {
            bail!("--chat needs --model DIR, whose tokenizer_config.json has the template")
        }
    };
    if batch == 0 || batch > gpu_kernels::abi::MAX_BATCH as usize {
        bail!(
            "--batch {batch} is outside 1..={}",
            gpu_kernels::abi::MAX_BATCH
        );
    }
    let capacity = config.n_positions;
    if max_new_tokens == 0 {
        bail!("--max-new-tokens 0 generates nothing; give 1 or more");
    }
    // The last new token is chosen at the position after the prompt's last plus
    // max_new_tokens - 2: the sequence fills prompt + max_new_tokens - 1 positions.
    let positions = tokens.len() as u128 + max_new_tokens as u128 - 1;
    if positions > capacity as u128 {
        bail!(
            "the prompt has {} tokens; with --max-new-tokens {max_new_tokens} it needs {positions} positions, more than the model's context of {capacity}",
            tokens.len(),
        );
    }
    let positions = positions as usize;
    let dump = dump_logits
        .map(|path| OutputFile::create(&path, &model.input_files()))
        .transpose()?;
    let graph_options = match &dump {
        Some(_) => None,
        None => graphs.options(batch, capacity)?,
    };
    if let (Some(options), false) = (&graph_options, graphs.allow_eager_fallback) {
        options.table.choose(batch, positions).map_err(|why| {
            anyhow::anyhow!("{why} (--allow-eager-fallback runs such steps without graphs)")
        })?;
    }
    let weights = model.weights()?;
    let mut engine = start_engine(&weights, device, batch, capacity)?;
    engine.set_nvtx(graphs.nvtx);
    let mode = match graph_options {
        Some(options) => {
            let steps = options.steps_per_graph;
            engine.set_allow_eager_fallback(graphs.allow_eager_fallback);
            let lazy = options.lazy;
            let reports = engine.capture_graphs(options)?;
            if !lazy {
                print_capture_summary(&reports);
            }
            format!("CUDA graphs, {steps} steps per launch")
        }
        None => "eager".to_owned(),
    };
    // A chat answer stands alone; a plain prompt is continued, so it is shown first.
    if !chat {
        print!("{prompt}");
    }
    let mut stream = TextStream::new(&tokenizer);
    let start = Instant::now();
    let eos = &config.eos_token_ids;
    let (steps, launches) = if let Some(dump) = dump {
        let run = Run {
            prompt: &tokens,
            batch,
            max_new_tokens,
            eos,
        };
        let steps = generate_dumping(&mut engine, run, dump, |t| {
            print!("{}", stream.push(t));
        })?;
        (steps, steps)
    } else {
        let prompts = vec![tokens.clone(); batch];
        let out = engine.generate(&prompts, max_new_tokens, eos, |b, t| {
            if b == 0 {
                print!("{}", stream.push(t));
                let _ = std::io::stdout().flush();
            }
        })?;
        (out.steps, out.launches)
    };
    let elapsed = start.elapsed().as_secs_f64();
    println!();
    let ms_per_step = 1e3 * elapsed / steps as f64;
    eprintln!(
        "{steps} steps (prompt {} + generated) in {launches} launches at batch {batch}: {ms_per_step:.3} ms/token, {:.0} tokens/s ({mode})",
        tokens.len(),
        1e3 / ms_per_step * batch as f64,
    );
    Ok(())
}

/// One line for all the graphs made at start.
pub fn print_capture_summary(reports: &[GraphReport]) {
    let ms: f64 = reports.iter().map(|r| r.record_ms + r.instantiate_ms).sum();
    eprintln!(
        "made {} graphs ({} nodes at most) in {ms:.0} ms{}",
        reports.len(),
        reports.iter().map(|r| r.nodes).max().unwrap_or(0),
        if reports.iter().all(|r| r.programmatic) {
            ", with programmatic dependent launch"
        } else {
            ""
        }
    );
}

/// What [`generate_dumping`] runs.
struct Run<'a> {
    prompt: &'a [u32],
    batch: usize,
    max_new_tokens: usize,
    eos: &'a [u32],
}

/// Generation that also keeps every step's logits, written to `dump` at the end.
fn generate_dumping(
    engine: &mut Engine,
    run: Run,
    dump: OutputFile,
    mut show: impl FnMut(u32),
) -> Result<usize> {
    let Run {
        prompt,
        batch,
        max_new_tokens,
        eos,
    } = run;
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
            if eos.contains(&next[0]) {
                break;
            }
        }
    }
    dump.write(&crate::logits_dump::to_bytes(
        &logits,
        batch,
        &inputs[..steps],
    )?)?;
    let path = dump.target().to_owned();
    dump.commit()?;
    eprintln!("wrote logits of {steps} steps to {}", path.display());
    Ok(steps)
}
