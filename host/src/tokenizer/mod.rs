//! Text to token ids and back: a model directory's tokenizer.json through Hugging Face's
//! `tokenizers`, or GPT-2's byte-level BPE (r50k_base, shipped inside tiktoken-rs, so it
//! works offline) for GPT-2 directories without one and for random presets.

mod chat;

pub use chat::ChatTemplate;

use anyhow::{Context, Result, anyhow};
use std::path::Path;
use tiktoken_rs::CoreBPE;
use tokenizers::{
    DecodeStream, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper,
};

/// A tokenizer.json of a real model is tens of megabytes at most.
const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// Text to token ids and back.
pub enum Tokenizer {
    /// GPT-2's BPE.
    Gpt2(CoreBPE),
    /// A tokenizer.json.
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl Tokenizer {
    /// The GPT-2 tokenizer.
    pub fn gpt2() -> Result<Self> {
        Ok(Tokenizer::Gpt2(tiktoken_rs::r50k_base()?))
    }

    /// A Hugging Face tokenizer.json.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::model::read_text(path, MAX_TOKENIZER_BYTES)?;
        let tokenizer = tokenizers::Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| anyhow!("{}: not a tokenizer.json: {e}", path.display()))?;
        Ok(Tokenizer::HuggingFace(Box::new(tokenizer)))
    }

    /// The tokenizer of a model: `dir/tokenizer.json` where the directory has one, else
    /// GPT-2's (random presets have no directory).
    pub fn for_model(dir: Option<&Path>) -> Result<Self> {
        match dir.map(|d| d.join("tokenizer.json")) {
            Some(path) if std::fs::symlink_metadata(&path).is_ok() => Self::from_file(&path),
            _ => Self::gpt2(),
        }
    }

    /// Token ids of `text`. Special tokens written in the text are those tokens; with
    /// `add_special_tokens` the tokenizer also adds the ones it puts around a text (Llama's
    /// `<|begin_of_text|>`), which a rendered chat prompt already holds.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Gpt2(bpe) => Ok(bpe.encode_with_special_tokens(text)),
            Tokenizer::HuggingFace(t) => Ok(t
                .encode(text, add_special_tokens)
                .map_err(|e| anyhow!("tokenizing the prompt: {e}"))?
                .get_ids()
                .to_vec()),
        }
    }

    /// Tokens the tokenizer knows (special tokens included).
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Gpt2(_) => 50257,
            Tokenizer::HuggingFace(t) => t.get_vocab_size(true),
        }
    }

    /// The text of `tokens` (special tokens kept), for tests and messages.
    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Gpt2(bpe) => bpe.decode(tokens).context("decoding tokens"),
            Tokenizer::HuggingFace(t) => t.decode(tokens, false).map_err(|e| anyhow!("{e}")),
        }
    }
}

type HfDecodeStream<'t> = DecodeStream<
    't,
    ModelWrapper,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Turns tokens into text as they come, holding back the bytes of a UTF-8 character that
/// is not complete yet (byte-level BPE tokens can split one).
pub struct TextStream<'t> {
    inner: Inner<'t>,
}

enum Inner<'t> {
    Gpt2 {
        bpe: &'t CoreBPE,
        pending: Vec<u8>,
    },
    HuggingFace {
        tokenizer: &'t tokenizers::Tokenizer,
        stream: Box<HfDecodeStream<'t>>,
    },
}

impl<'t> TextStream<'t> {
    /// An empty stream for `tokenizer`.
    pub fn new(tokenizer: &'t Tokenizer) -> Self {
        let inner = match tokenizer {
            Tokenizer::Gpt2(bpe) => Inner::Gpt2 {
                bpe,
                pending: Vec::new(),
            },
            Tokenizer::HuggingFace(t) => Inner::HuggingFace {
                tokenizer: t,
                stream: Box::new(t.decode_stream(true)),
            },
        };
        TextStream { inner }
    }

    /// Adds a token; returns the text that became complete. A token the tokenizer does
    /// not have (a model's vocabulary may be padded past it) shows as U+FFFD.
    pub fn push(&mut self, token: u32) -> String {
        match &mut self.inner {
            Inner::HuggingFace { tokenizer, stream } => {
                if tokenizer.id_to_token(token).is_none() {
                    return "\u{FFFD}".into();
                }
                match stream.step(token) {
                    Ok(text) => text.unwrap_or_default(),
                    Err(_) => "\u{FFFD}".into(),
                }
            }
            Inner::Gpt2 { bpe, pending } => {
                match bpe.decode_bytes(&[token]) {
                    Ok(bytes) => pending.extend(bytes),
                    Err(_) => pending.extend("\u{FFFD}".as_bytes()),
                }
                let complete = match std::str::from_utf8(pending) {
                    Ok(s) => s.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    // Invalid (not merely unfinished) bytes are shown as U+FFFD.
                    Err(_) => pending.len(),
                };
                let text = String::from_utf8_lossy(&pending[..complete]).into_owned();
                pending.drain(..complete);
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A tokenizer directory `cargo xtask test` fetches into .tools/tokenizers/
    /// (`TOKENIZER_FIXTURES` names another place, as on a GPU machine the files travel
    /// apart from the bundle).
    pub(super) fn fixture(name: &str) -> PathBuf {
        let root = std::env::var_os("TOKENIZER_FIXTURES").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/tokenizers"),
            PathBuf::from,
        );
        let dir = root.join(name);
        assert!(
            dir.join("tokenizer.json").is_file(),
            "{} has no tokenizer.json: `cargo xtask test` fetches it",
            dir.display()
        );
        dir
    }

    #[test]
    fn round_trips_text_through_gpt2_bpe() {
        let t = Tokenizer::gpt2().unwrap();
        let ids = t.encode("Hello world<|endoftext|>", true).unwrap();
        assert_eq!(ids, [15496, 995, 50256]);
        assert_eq!(t.decode(&ids).unwrap(), "Hello world<|endoftext|>");
    }

    #[test]
    fn streams_whole_characters_only() {
        let text = "naïve café ☕ ok";
        for t in [
            Tokenizer::gpt2().unwrap(),
            Tokenizer::for_model(Some(&fixture("llama3_1"))).unwrap(),
            Tokenizer::for_model(Some(&fixture("qwen3"))).unwrap(),
        ] {
            let ids = t.encode(text, false).unwrap();
            let mut stream = TextStream::new(&t);
            let streamed: String = ids.iter().map(|&id| stream.push(id)).collect();
            assert_eq!(streamed, text);
            assert_eq!(
                stream.push(1 << 30),
                "\u{FFFD}",
                "a token past the tokenizer"
            );
        }
    }

    #[test]
    fn reads_tokenizer_json_of_llama_and_qwen() {
        let llama = Tokenizer::for_model(Some(&fixture("llama3_1"))).unwrap();
        assert_eq!(
            llama.encode("Hello world", true).unwrap(),
            [128000, 9906, 1917],
            "Llama 3 adds <|begin_of_text|>"
        );
        assert_eq!(llama.vocab_size(), 128256);
        let qwen = Tokenizer::for_model(Some(&fixture("qwen3"))).unwrap();
        assert_eq!(qwen.encode("Hello world", true).unwrap(), [9707, 1879]);
        // These files' Llama 3.0 tokenizer.json adds no <|begin_of_text|>, as transformers
        // reads them too.
        let llama3 = Tokenizer::for_model(Some(&fixture("llama3"))).unwrap();
        assert_eq!(llama3.encode("Hello world", true).unwrap(), [9906, 1917]);
        // Ids transformers gives for the same files (checked on the GPU machine).
        let text = "naïve café ☕ ok";
        assert_eq!(
            llama.encode(text, false).unwrap(),
            [3458, 38672, 588, 53050, 26182, 243, 5509]
        );
        assert_eq!(
            qwen.encode(text, false).unwrap(),
            [3376, 37572, 586, 51950, 25125, 243, 5394]
        );
        let ids = qwen.encode("<|im_start|>user", false).unwrap();
        assert_eq!(
            ids.len(),
            2,
            "a special token written in the text is that token"
        );
    }

    #[test]
    fn a_bad_tokenizer_json_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let e = Tokenizer::for_model(Some(dir.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("tokenizer.json: not a tokenizer.json"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn renders_chat_templates_as_transformers_does() {
        let llama = ChatTemplate::for_model(&fixture("llama3_1")).unwrap();
        assert_eq!(
            llama.render_user_message("Hi there ").unwrap(),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        let qwen = ChatTemplate::for_model(&fixture("qwen3")).unwrap();
        assert_eq!(
            qwen.render_user_message("Hi").unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let none = tempfile::tempdir().unwrap();
        std::fs::write(none.path().join("tokenizer_config.json"), "{}").unwrap();
        let e = ChatTemplate::for_model(none.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("no chat_template, so --chat cannot format a conversation"),
            "{e}"
        );
    }
}
