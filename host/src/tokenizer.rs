//! GPT-2's byte-level BPE (r50k_base), shipped inside tiktoken-rs: works offline.

use tiktoken_rs::CoreBPE;

/// `<|endoftext|>`: GPT-2's end-of-sequence token.
pub const EOS: u32 = 50256;

/// Text to token ids and back.
pub struct Tokenizer {
    bpe: CoreBPE,
}

impl Tokenizer {
    /// The GPT-2 tokenizer.
    pub fn gpt2() -> anyhow::Result<Self> {
        Ok(Tokenizer {
            bpe: tiktoken_rs::r50k_base()?,
        })
    }

    /// Token ids of `text` (`<|endoftext|>` written in the text is that token).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_with_special_tokens(text)
    }

    /// The bytes of `tokens`; they may end inside a UTF-8 character.
    pub fn decode_bytes(&self, tokens: &[u32]) -> Vec<u8> {
        self.bpe.decode_bytes(tokens).unwrap_or_default()
    }
}

/// Turns a growing token sequence into text as it grows, holding back bytes of a UTF-8
/// character that is not complete yet (BPE tokens can split one).
pub struct TextStream {
    tokens: Vec<u32>,
    printed: usize,
}

impl TextStream {
    /// An empty stream.
    pub fn new() -> Self {
        TextStream {
            tokens: Vec::new(),
            printed: 0,
        }
    }

    /// Adds a token; returns the text that became complete.
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> String {
        self.tokens.push(token);
        let bytes = tokenizer.decode_bytes(&self.tokens);
        let complete = match std::str::from_utf8(&bytes[self.printed..]) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid (not merely unfinished) bytes are shown as U+FFFD.
            Err(_) => bytes.len() - self.printed,
        };
        let text =
            String::from_utf8_lossy(&bytes[self.printed..self.printed + complete]).into_owned();
        self.printed += complete;
        text
    }
}

impl Default for TextStream {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_through_gpt2_bpe() {
        let t = Tokenizer::gpt2().unwrap();
        let ids = t.encode("Hello world<|endoftext|>");
        assert_eq!(ids, [15496, 995, EOS]);
        assert_eq!(t.decode_bytes(&ids), b"Hello world<|endoftext|>");
    }

    #[test]
    fn streams_whole_characters_only() {
        let t = Tokenizer::gpt2().unwrap();
        let ids = t.encode("naïve café ☕ ok");
        let mut stream = TextStream::new();
        let text: String = ids.iter().map(|&id| stream.push(&t, id)).collect();
        assert_eq!(text, "naïve café ☕ ok");
    }
}
