//! Running child processes with the command line echoed, failing with it on error.

use anyhow::{Context, Result, ensure};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Prints the command, runs it with inherited stdio, fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    ensure!(status.success(), "{} failed ({status})", describe(cmd));
    Ok(())
}

/// Totals of libtest's `test result:` lines.
#[derive(Debug, Default, PartialEq)]
pub struct TestSummary {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestSummary {
    /// Adds one `test result: ok. 3 passed; 0 failed; 2 ignored; ...` line.
    fn add_line(&mut self, line: &str) {
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let n: u64 = n.parse().unwrap_or(0);
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs a `cargo test` command, passing its output through, and adds up its results.
/// A failing command is an error even when its output counted no failure.
pub fn run_tests(cmd: &mut Command) -> Result<TestSummary> {
    eprintln!("$ {}", describe(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    let mut summary = TestSummary::default();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        summary.add_line(&line);
    }
    let status = child.wait()?;
    ensure!(
        status.success(),
        "{} failed ({status}): {} passed, {} failed",
        describe(cmd),
        summary.passed,
        summary.failed
    );
    Ok(summary)
}

/// Runs the command and returns its stdout; fails with its stderr if it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    ensure!(
        out.status.success(),
        "{} failed ({}):\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo`, as the one that runs this xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_libtest_result_lines() {
        let mut summary = TestSummary::default();
        summary.add_line("test result: ok. 3 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        summary.add_line("test foo ... ok");
        summary.add_line(
            "test result: FAILED. 1 passed; 4 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        assert_eq!(
            summary,
            TestSummary {
                passed: 4,
                failed: 4,
                ignored: 2
            }
        );
    }
}
