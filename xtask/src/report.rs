//! `cargo xtask bench report`: turns `host bench compare` JSON into the README's results
//! table (between markers), one merged JSON file (docs/bench-compare.json, so later runs
//! can be merged into it) and a PNG chart of ms/token against model size, one line per
//! engine.

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- bench-compare:begin -->";
const END: &str = "<!-- bench-compare:end -->";
const CHART: &str = "docs/bench-compare.png";
const JSON: &str = "docs/bench-compare.json";
/// A TrueType font for the chart's text (Debian's fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// What `host bench compare` writes.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Comparison {
    device: String,
    copy_gbps: f64,
    /// Runs merged into this one (1 for a file `host bench compare` wrote).
    #[serde(default = "one")]
    runs: usize,
    /// The lowest copy bandwidth among them (the highest is `copy_gbps`).
    #[serde(default)]
    copy_gbps_low: Option<f64>,
    steps_per_graph: usize,
    rows: Vec<Row>,
    cross_checks: Vec<CrossCheck>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct Row {
    preset: String,
    parameters: usize,
    batch: usize,
    context: usize,
    floor_ms: f64,
    ms: BTreeMap<String, f64>,
    notes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct CrossCheck {
    preset: String,
    largest_relative_error: f64,
    argmax_equal: usize,
    steps: usize,
}

fn one() -> usize {
    1
}

/// Merges `files`, writes the merged JSON, the chart and the README section.
pub fn run(workspace: &Path, files: &[PathBuf]) -> Result<()> {
    let merged = merge(files)?;
    std::fs::create_dir_all(workspace.join("docs"))?;
    std::fs::write(workspace.join(JSON), serde_json::to_string_pretty(&merged)?)?;
    let chart = workspace.join(CHART);
    draw_chart(&merged, &chart)?;
    let readme = workspace.join("README.md");
    let text = std::fs::read_to_string(&readme)?;
    std::fs::write(&readme, replace_section(&text, &markdown(&merged))?)?;
    println!(
        "wrote README.md ({} rows), {CHART}, {JSON}",
        merged.rows.len()
    );
    Ok(())
}

/// Later files win where an engine's time in a (model, batch, context) row or a model's
/// cross-check repeats; so ours can be measured again without running the peers again.
fn merge(files: &[PathBuf]) -> Result<Comparison> {
    let mut merged: Option<Comparison> = None;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let next: Comparison = serde_json::from_str(&text)
            .with_context(|| format!("{} is not `host bench compare` JSON", file.display()))?;
        merged = Some(match merged {
            None => next,
            Some(mut m) => {
                if m.device != next.device || m.steps_per_graph != next.steps_per_graph {
                    bail!(
                        "{} comes from another GPU or steps per graph",
                        file.display()
                    );
                }
                let key = |r: &Row| (r.preset.clone(), r.batch, r.context);
                for row in next.rows {
                    match m.rows.iter_mut().find(|r| key(r) == key(&row)) {
                        // Engines measured again replace the old values; the others stay.
                        Some(old) => {
                            old.floor_ms = row.floor_ms;
                            old.ms.extend(row.ms);
                            old.notes.extend(row.notes);
                        }
                        None => m.rows.push(row),
                    }
                }
                m.cross_checks
                    .retain(|c| !next.cross_checks.iter().any(|n| n.preset == c.preset));
                m.cross_checks.extend(next.cross_checks);
                let low = m.copy_gbps_low.unwrap_or(m.copy_gbps);
                m.copy_gbps_low = Some(low.min(next.copy_gbps_low.unwrap_or(next.copy_gbps)));
                m.copy_gbps = m.copy_gbps.max(next.copy_gbps);
                m.runs += next.runs;
                m
            }
        });
    }
    let mut m = merged.context("no files")?;
    m.rows.sort_by_key(|r| (r.parameters, r.batch, r.context));
    m.cross_checks.sort_by_key(|c| preset_order(&c.preset));
    Ok(m)
}

fn preset_order(preset: &str) -> usize {
    ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
        .iter()
        .position(|p| *p == preset)
        .unwrap_or(usize::MAX)
}

/// The table's engines, in column order.
fn engines(c: &Comparison) -> Vec<String> {
    vec![
        format!("ours graph x{}", c.steps_per_graph),
        "ours graph".into(),
        "ours eager".into(),
        "transformers eager".into(),
        "transformers eager, cuDNN SDPA".into(),
        "torch.cuda.graph".into(),
        "torch.compile".into(),
    ]
}

/// The fastest of our graph rows.
fn ours_best(c: &Comparison, r: &Row) -> Option<f64> {
    engines(c)[..2]
        .iter()
        .filter_map(|e| r.ms.get(e).copied())
        .min_by(f64::total_cmp)
}

fn markdown(c: &Comparison) -> String {
    let engines = engines(c);
    let runs = match c.runs {
        1 => format!("One run of `host bench compare` on one {}", c.device),
        n => format!(
            "{n} runs of `host bench compare` (merged per engine; each run timed ours and \
             the peers on the same GPU), each on one {}",
            c.device
        ),
    };
    let bandwidth = match c.copy_gbps_low {
        Some(low) if low.round() != c.copy_gbps.round() => {
            format!("{low:.0}-{:.0} GB/s", c.copy_gbps)
        }
        _ => format!("{:.0} GB/s", c.copy_gbps),
    };
    let mut s = format!(
        "{runs}, copy bandwidth {bandwidth} (read + write), GPT-2-initialized random \
         weights written by `host export` and loaded by every engine. A cell is ms per \
         decode step / tokens per second (batch x steps per second); context is the mean \
         number of positions attended to. Floor: the weight and KV bytes a step reads, at \
         the copy bandwidth.\n\n"
    );
    s += "| model | batch | context | floor ms |";
    for e in &engines {
        s += &format!(" {e} |");
    }
    s += " best ours / floor | eager / graph | torch.cuda.graph / ours |\n";
    s += &"|---".repeat(4 + engines.len() + 3);
    s += "|\n";
    for r in &c.rows {
        s += &format!(
            "| {} | {} | {} | {:.3} |",
            r.preset, r.batch, r.context, r.floor_ms
        );
        for e in &engines {
            s += &match r.ms.get(e) {
                Some(ms) => format!(" {ms:.3} / {:.0} |", 1e3 / ms * r.batch as f64),
                None => " - |".into(),
            };
        }
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!(" {:.2} |", a / b),
            _ => " - |".into(),
        };
        s += &ratio(ours_best(c, r), Some(r.floor_ms));
        s += &ratio(
            r.ms.get("ours eager").copied(),
            r.ms.get("ours graph").copied(),
        );
        s += &ratio(r.ms.get("torch.cuda.graph").copied(), ours_best(c, r));
        s += "\n";
    }
    let notes: Vec<String> = c
        .rows
        .iter()
        .flat_map(|r| r.notes.iter().map(|(e, n)| format!("{e}: {n}")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !notes.is_empty() {
        s += &format!("\nPeer notes: {}.\n", notes.join("; "));
    }
    let missing = missing_cases(c);
    if !missing.is_empty() {
        s += &format!(
            "\nNot measured yet (model, batch): {}.\n",
            missing.join(", ")
        );
    }
    s += "\nCross-check, in the run that measured the model: our logits against \
          transformers' (fp32) on the same weights and tokens, teacher-forced:\n\n";
    for x in &c.cross_checks {
        s += &format!(
            "- {}: largest relative L2 error {:.2e} over {} steps, argmax equal {}/{}\n",
            x.preset, x.largest_relative_error, x.steps, x.argmax_equal, x.steps
        );
    }
    s += &format!("\n![ms per token against model size, batch 1]({CHART})\n");
    s
}

/// The (model, batch) pairs of the full table (four models, batch 1, 8, 32) with no row.
fn missing_cases(c: &Comparison) -> Vec<String> {
    let mut missing = Vec::new();
    for preset in ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"] {
        for batch in [1, 8, 32] {
            if !c
                .rows
                .iter()
                .any(|r| r.preset == preset && r.batch == batch)
            {
                missing.push(format!("{preset} {batch}"));
            }
        }
    }
    missing
}

fn replace_section(readme: &str, body: &str) -> Result<String> {
    let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("README.md lacks the markers {BEGIN} and {END}");
    };
    if end < begin {
        bail!("README.md has {END} before {BEGIN}");
    }
    Ok(format!(
        "{}{BEGIN}\n{body}{}",
        &readme[..begin],
        &readme[end..]
    ))
}

/// ms/token against parameters, both log scale, batch 1 at the smallest context: one line
/// per engine and one for the floor.
fn draw_chart(c: &Comparison, path: &Path) -> Result<()> {
    let font: &'static [u8] = Box::leak(
        std::fs::read(FONT)
            .with_context(|| format!("reading {FONT} (Debian: fonts-dejavu-core)"))?
            .into_boxed_slice(),
    );
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    let Some(context) = c
        .rows
        .iter()
        .filter(|r| r.batch == 1)
        .map(|r| r.context)
        .min()
    else {
        bail!("no batch-1 rows to chart");
    };
    let rows: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| r.batch == 1 && r.context == context)
        .collect();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = engines(c)
        .into_iter()
        .map(|e| {
            let points = rows
                .iter()
                .filter_map(|r| Some((r.parameters as f64, *r.ms.get(&e)?)))
                .collect();
            (e, points)
        })
        .filter(|(_, p): &(String, Vec<_>)| !p.is_empty())
        .collect();
    series.push((
        "floor (bytes / copy bandwidth)".into(),
        rows.iter()
            .map(|r| (r.parameters as f64, r.floor_ms))
            .collect(),
    ));
    let all = series.iter().flat_map(|(_, p)| p.iter());
    let (x_lo, x_hi) = all.clone().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (y_lo, y_hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });

    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("GPT-2 decode, batch 1, context {context}: {}", c.device),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_lo * 0.8..x_hi * 1.25).log_scale(),
            // Headroom above the slowest line for the legend.
            (y_lo * 0.7..y_hi * 300.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("parameters")
        .x_labels(6)
        .y_desc("ms per token")
        .x_label_formatter(&|x| format!("{:.0}M", x / 1e6))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_between_the_markers_is_replaced() {
        let readme = format!("intro\n{BEGIN}\nold table\n{END}\noutro\n");
        let new = replace_section(&readme, "new table\n").unwrap();
        assert_eq!(new, format!("intro\n{BEGIN}\nnew table\n{END}\noutro\n"));
        assert!(replace_section("no markers", "x").is_err());
    }
}
