//! The README's main command, read from the README itself, so that the test command and
//! the GPU bundle run exactly what a user is told to type.

use anyhow::{Context, Result, ensure};
use std::path::Path;

/// The marker on the line before the main command's code block.
const MARKER: &str = "<!-- the main command: cargo xtask test runs it as written -->";

/// What every main command starts with: the part a user types to build and run `host`.
pub const CARGO_RUN: &str = "cargo run --release -p host --";

/// The main command, as written in the README.
pub fn main_command(workspace: &Path) -> Result<String> {
    let readme = std::fs::read_to_string(workspace.join("README.md"))?;
    find_main_command(&readme)
}

/// The arguments the main command gives `host`, as shell words.
pub fn main_arguments(workspace: &Path) -> Result<String> {
    let command = main_command(workspace)?;
    let arguments = command
        .strip_prefix(CARGO_RUN)
        .with_context(|| format!("the README's main command does not start with {CARGO_RUN}"))?;
    Ok(arguments.trim().to_owned())
}

fn find_main_command(readme: &str) -> Result<String> {
    let after = readme
        .split_once(MARKER)
        .with_context(|| format!("README.md has no line {MARKER}"))?
        .1;
    let block = after
        .trim_start()
        .strip_prefix("```")
        .context("the main command's marker is not followed by a code block")?;
    let (_, body) = block.split_once('\n').unwrap_or(("", block));
    let (body, _) = body
        .split_once("```")
        .context("the main command's code block is not closed")?;
    let command = body.trim();
    ensure!(
        !command.is_empty() && !command.contains('\n'),
        "the main command's code block must hold one line, not {command:?}"
    );
    Ok(command.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_line_after_the_marker() {
        let readme = format!(
            "# x\n\n{MARKER}\n```sh\ncargo run --release -p host -- generate --prompt \"Hi\"\n```\n"
        );
        assert_eq!(
            find_main_command(&readme).unwrap(),
            "cargo run --release -p host -- generate --prompt \"Hi\""
        );
        assert!(find_main_command("no marker").is_err());
        let two_lines = format!("{MARKER}\n```\na\nb\n```\n");
        assert!(find_main_command(&two_lines).is_err());
    }
}
