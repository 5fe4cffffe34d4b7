//! Models. One async [`Provider`] interface over a canonical [`Request`] and [`Response`], with
//! implementations for OpenAI-compatible endpoints, Anthropic's Messages API and (feature
//! `local`) an embedded llama.cpp engine; a content-addressed response [`cache`]; retries with
//! backoff; budgets; and token and cost accounting.
//!
//! Keys are read from the environment by the provider that needs them and never appear in
//! errors, logs, `Debug` output or the cache.

pub mod error;
pub mod file_blocks;
#[cfg(feature = "local")]
pub mod local;
pub mod models;
pub mod request;
pub mod runaway;

pub use error::LlmError;
pub use request::{Constraint, FinishReason, Message, Request, Response, Role, Sampling, Usage};

use async_trait::async_trait;

/// Receives streamed text as it is generated (for progress display). May be a no-op.
pub trait TokenSink: Send {
    fn token(&mut self, text: &str);
}

/// A sink that ignores tokens.
pub struct NoSink;

impl TokenSink for NoSink {
    fn token(&mut self, _text: &str) {}
}

/// Which protocol a provider speaks; part of every cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Local,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
        }
    }
}

/// A model behind some protocol. Implementations must be cancel-safe at await points and must
/// never put a key into an error or a log line.
#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// Where requests go and which model answers, for messages (no secrets).
    fn describe(&self) -> String;
    /// Sends one request, streaming text to `sink` as it arrives.
    async fn complete(&self, req: &Request, sink: &mut dyn TokenSink)
        -> Result<Response, LlmError>;
}
pub mod anthropic;
pub mod cache;
pub mod http;
pub mod meter;
pub mod openai;
pub mod providers;
pub mod secret;
pub mod session;
pub mod sse;
