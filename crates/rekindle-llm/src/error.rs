//! What can go wrong talking to a model, phrased for the user, never containing a key.

use std::time::Duration;

#[derive(Debug)]
pub enum LlmError {
    /// No connection could be made (refused, DNS, TLS).
    Connect { url: String, detail: String },
    /// A timeout: connecting, the whole call, or silence in the middle of a stream.
    Timeout {
        url: String,
        what: &'static str,
        after: Duration,
    },
    /// 401/403: the key is missing, wrong or lacks permission.
    Auth {
        url: String,
        status: u16,
        detail: String,
        key_env: Option<String>,
    },
    /// 404: usually a wrong model name or base URL.
    NotFound {
        url: String,
        model: String,
        detail: String,
    },
    /// 400 and other client errors that retrying cannot fix.
    BadRequest {
        url: String,
        status: u16,
        detail: String,
    },
    /// 429 or 5xx after every retry.
    Unavailable {
        url: String,
        status: u16,
        detail: String,
        attempts: u32,
    },
    /// The reply was not what the protocol promises (not JSON, truncated, missing fields).
    Malformed { url: String, detail: String },
    /// A budget for this run would be exceeded by the next call.
    Budget { what: String },
    /// `--offline` or `--locked` and the answer is not in the cache.
    CacheMiss { key: String },
    /// The local engine failed (model file missing or corrupt, out of memory, …).
    Local { detail: String },
    /// Missing configuration, such as an unset key variable.
    Config { detail: String },
}

impl LlmError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::Connect { .. } | LlmError::Timeout { .. } | LlmError::Unavailable { .. }
        )
    }
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::Connect { url, detail } => write!(f, "cannot connect to {url}: {detail}"),
            LlmError::Timeout { url, what, after } => {
                write!(f, "{what} timed out after {}s at {url}", after.as_secs_f32())
            }
            LlmError::Auth { url, status, detail, key_env } => {
                write!(f, "{url} refused the credentials (HTTP {status})")?;
                if let Some(var) = key_env {
                    write!(f, ": check the key in ${var}")?;
                }
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            LlmError::NotFound { url, model, detail } => {
                write!(f, "model '{model}' was not found at {url}: check --model and --base-url")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            LlmError::BadRequest { url, status, detail } => {
                write!(f, "{url} rejected the request (HTTP {status}): {detail}")
            }
            LlmError::Unavailable { url, status, detail, attempts } => write!(
                f,
                "{url} is unavailable (HTTP {status}) after {attempts} attempt{}{}",
                if *attempts == 1 { "" } else { "s" },
                if detail.is_empty() { String::new() } else { format!(": {detail}") }
            ),
            LlmError::Malformed { url, detail } => {
                write!(f, "{url} sent a reply that is not what the protocol promises: {detail}")
            }
            LlmError::Budget { what } => write!(f, "budget reached: {what}"),
            LlmError::CacheMiss { key } => write!(
                f,
                "no cached reply for request {} and the model may not be called (--offline or --locked)",
                &key[..key.len().min(16)]
            ),
            LlmError::Local { detail } => write!(f, "local model: {detail}"),
            LlmError::Config { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for LlmError {}
