//! Greedy generation over a batch of prompts on top of [`Engine::step`] and
//! [`Engine::step_chain`].

use super::{Engine, EngineError};

/// What [`Engine::generate`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens of each sequence, up to and including EOS.
    pub tokens: Vec<Vec<u32>>,
    /// Decode steps run (prompt and generation).
    pub steps: usize,
    /// Launches: one per eager step, one per graph replay.
    pub launches: usize,
}

impl Engine {
    /// Greedy generation for a batch of prompts (lengths may differ): every sequence
    /// advances one position per step, reading its prompt until it runs out and its own
    /// last token after; `on_token(sequence, token)` sees each new token as it comes.
    /// A sequence stops at any of the `eos` tokens or after `max_new_tokens`; tokens after
    /// that are dropped.
    /// Once every prompt is read, graphs with several steps per graph run that many steps
    /// per launch while some unfinished sequence wants at least that many more tokens.
    pub fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
        eos: &[u32],
        mut on_token: impl FnMut(usize, u32),
    ) -> Result<Generated, EngineError> {
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        if prompts.iter().any(Vec::is_empty) {
            return Err(EngineError::Request("a prompt is empty".into()));
        }
        if max_new_tokens > 0 {
            // The last new token is chosen at position longest + max_new_tokens - 2, so
            // the sequences fill longest + max_new_tokens - 1 positions.
            let positions = longest.saturating_add(max_new_tokens - 1);
            if positions > self.capacity {
                return Err(EngineError::Request(format!(
                    "a prompt of {longest} tokens plus {max_new_tokens} new tokens needs {positions} positions; the context is {}",
                    self.capacity
                )));
            }
            // Fails before the first step if no graph holds the last one.
            self.graph_for(prompts.len(), positions - 1, 1)?;
        }
        let chain = self
            .graphs
            .as_ref()
            .map_or(1, |g| g.options.steps_per_graph);
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut done = vec![max_new_tokens == 0; prompts.len()];
        let (mut steps, mut launches, mut position) = (0, 0, 0);
        while !done.iter().all(|&d| d) {
            let inputs: Vec<u32> = prompts
                .iter()
                .zip(&generated)
                .map(|(p, g)| match p.get(position) {
                    Some(&t) => t,
                    None => *g
                        .last()
                        .expect("past the prompt there is a generated token"),
                })
                .collect();
            let wanted = (0..prompts.len())
                .filter(|&b| !done[b])
                .map(|b| max_new_tokens - generated[b].len())
                .max()
                .unwrap_or(0);
            let chained = may_chain(chain, position, longest, wanted)
                && matches!(self.graph_for(prompts.len(), position, chain), Ok(Some(_)));
            let rows = if chained {
                self.step_chain(&inputs, position, chain)?
            } else {
                vec![self.step(&inputs, position, false)?.0]
            };
            launches += 1;
            for next in &rows {
                for (b, &token) in next.iter().enumerate() {
                    if done[b] || position + 1 < prompts[b].len() {
                        continue;
                    }
                    generated[b].push(token);
                    on_token(b, token);
                    done[b] = eos.contains(&token) || generated[b].len() == max_new_tokens;
                }
                position += 1;
                steps += 1;
            }
        }
        Ok(Generated {
            tokens: generated,
            steps,
            launches,
        })
    }
}

/// Whether the step at `position` may start a chain of `chain` steps fed on the device:
/// only once every prompt (the longest has `longest` tokens) is read, so that each step's
/// input is the step before's greedy token, and only while some sequence still wants
/// `chain` more tokens (so no chain runs past the request's last position).
fn may_chain(chain: usize, position: usize, longest: usize, wanted: usize) -> bool {
    chain > 1 && position + 1 >= longest && wanted >= chain
}

#[cfg(test)]
mod tests {
    use super::may_chain;

    #[test]
    fn chains_start_after_the_prompts_and_stop_before_the_end() {
        // The longest prompt has 5 tokens: position 4 reads its last one.
        assert!(!may_chain(16, 3, 5, 64), "prompt tokens are still to read");
        assert!(
            may_chain(16, 4, 5, 64),
            "position 4 feeds its greedy token on"
        );
        assert!(
            !may_chain(16, 60, 5, 15),
            "15 tokens wanted, 16 would overrun"
        );
        assert!(may_chain(16, 60, 5, 16));
        assert!(!may_chain(1, 60, 5, 16), "one step per graph never chains");
    }
}
