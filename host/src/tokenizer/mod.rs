//! GPT-2's byte-level BPE (r50k_base), shipped inside tiktoken-rs: works offline.

use tiktoken_rs::CoreBPE;

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

    /// The bytes of `tokens` (they may end inside a UTF-8 character), or `None` if one
    /// is not a token of this vocabulary.
    pub fn decode_bytes(&self, tokens: &[u32]) -> Option<Vec<u8>> {
        self.bpe.decode_bytes(tokens).ok()
    }
}

/// Turns tokens into text as they come, holding back the bytes of a UTF-8 character that
/// is not complete yet (BPE tokens can split one).
#[derive(Default)]
pub struct TextStream {
    pending: Vec<u8>,
}

impl TextStream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token; returns the text that became complete. A token the tokenizer does
    /// not have (a model's vocabulary may be padded past it) shows as U+FFFD.
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> String {
        match tokenizer.decode_bytes(&[token]) {
            Some(bytes) => self.pending.extend(bytes),
            None => self.pending.extend("\u{FFFD}".as_bytes()),
        }
        let complete = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid (not merely unfinished) bytes are shown as U+FFFD.
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..complete]).into_owned();
        self.pending.drain(..complete);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_through_gpt2_bpe() {
        let t = Tokenizer::gpt2().unwrap();
        let ids = t.encode("Hello world<|endoftext|>");
        assert_eq!(ids, [15496, 995, 50256]);
        assert_eq!(t.decode_bytes(&ids).unwrap(), b"Hello world<|endoftext|>");
        assert_eq!(t.decode_bytes(&[50257]), None);
    }

    #[test]
    fn streams_whole_characters_only() {
        let t = Tokenizer::gpt2().unwrap();
        let ids = t.encode("naïve café ☕ ok");
        let mut stream = TextStream::new();
        let text: String = ids.iter().map(|&id| stream.push(&t, id)).collect();
        assert_eq!(text, "naïve café ☕ ok");
        assert_eq!(
            stream.push(&t, 60000),
            "\u{FFFD}",
            "a token past the tokenizer"
        );
    }
}
