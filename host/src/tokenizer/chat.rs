//! Chat templates: the Jinja template in a model's tokenizer_config.json, rendered with
//! minijinja as transformers' `apply_chat_template` renders it (Python string methods the
//! templates call come from minijinja-contrib's pycompat).

use anyhow::{Context, Result, anyhow, bail};
use minijinja::{Environment, Error, ErrorKind, context};
use serde_json::Value;
use std::path::Path;

/// tokenizer_config.json holds the vocabulary's added tokens besides the template: tens
/// of kilobytes, a few megabytes at most.
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// A model's chat template and the special tokens it refers to.
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The template of `dir/tokenizer_config.json`; an error names what is missing.
    pub fn for_model(dir: &Path) -> Result<ChatTemplate> {
        let path = dir.join("tokenizer_config.json");
        let text = crate::model::read_text(&path, MAX_CONFIG_BYTES)?;
        let config: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        let source = match config.get("chat_template") {
            Some(Value::String(s)) => s.clone(),
            // Several named templates: the default one, as transformers picks it.
            Some(Value::Array(named)) => named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{}: no chat template named default", path.display()))?,
            _ => bail!(
                "{}: no chat_template, so --chat cannot format a conversation",
                path.display()
            ),
        };
        let token = |name: &str| match &config[name] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o["content"].as_str().unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        let template = ChatTemplate {
            source,
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
        };
        template
            .environment()
            .template_from_str(&template.source)
            .map_err(|e| anyhow!("{}: the chat template does not parse: {e}", path.display()))?;
        Ok(template)
    }

    /// The prompt for one user message, ending where the assistant's answer begins.
    pub fn render_user_message(&self, content: &str) -> Result<String> {
        let env = self.environment();
        let template = env.template_from_str(&self.source)?;
        template
            .render(context! {
                messages => vec![context! { role => "user", content => content }],
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| anyhow!("rendering the chat template: {e}"))
    }

    fn environment(&self) -> Environment<'_> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // transformers renders with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |message: String| -> Result<(), Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env
    }
}
