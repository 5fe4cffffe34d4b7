//! What the HTTP providers share: timeouts, retries with backoff that honour `Retry-After`,
//! mapping statuses to errors a user can act on, and reading a streamed body with an idle timeout.

use crate::error::LlmError;
use crate::sse;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// How long to wait.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole call, streaming included.
    pub total: Duration,
    /// Longest silence in the middle of a streamed reply.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(600),
            idle: Duration::from_secs(120),
        }
    }
}

/// Retries of transient failures (connection errors, timeouts, 429, 5xx).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter: between half and all of `base * 2^attempt`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Everything an HTTP provider needs besides its protocol.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub base_url: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

pub fn client(t: &Timeouts) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(t.connect)
        .build()
        .map_err(|e| LlmError::Config {
            detail: format!("cannot set up the HTTP client: {e}"),
        })
}

/// `Retry-After`: seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Removes a secret from text that may be shown to the user (some servers echo headers).
pub fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 4 => text.replace(s, "[REDACTED]"),
        _ => text.to_string(),
    }
}

/// The readable part of an error body: `error.message` in both protocols, else the text, cut.
pub fn error_detail(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.pointer("/message"))
                .or_else(|| v.get("error").filter(|e| e.is_string()))
        })
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().to_string());
    let mut msg: String = msg.chars().take(300).collect();
    if msg.len() < body.len() && msg.chars().count() == 300 {
        msg.push('…');
    }
    msg
}

/// What went wrong with one attempt, and whether (and when) to try again.
pub enum Attempt {
    Fatal(LlmError),
    Retry {
        error: LlmError,
        after: Option<Duration>,
    },
}

/// Maps a non-success status to an error.
pub fn status_error(
    url: &str,
    model: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    key_env: Option<&str>,
) -> Attempt {
    let detail = error_detail(body);
    match status {
        401 | 403 => Attempt::Fatal(LlmError::Auth {
            url: url.to_string(),
            status,
            detail,
            key_env: key_env.map(str::to_string),
        }),
        404 => Attempt::Fatal(LlmError::NotFound {
            url: url.to_string(),
            model: model.to_string(),
            detail,
        }),
        408 | 409 | 425 | 429 | 500..=599 => Attempt::Retry {
            after: retry_after(headers),
            error: LlmError::Unavailable {
                url: url.to_string(),
                status,
                detail,
                attempts: 1,
            },
        },
        _ => Attempt::Fatal(LlmError::BadRequest {
            url: url.to_string(),
            status,
            detail,
        }),
    }
}

pub fn send_error(url: &str, e: &reqwest::Error, t: &Timeouts) -> Attempt {
    let error = if e.is_timeout() {
        LlmError::Timeout {
            url: url.to_string(),
            what: if e.is_connect() {
                "connecting"
            } else {
                "the request"
            },
            after: if e.is_connect() { t.connect } else { t.total },
        }
    } else {
        // The innermost cause says what happened ("Connection refused"); the wrappers only
        // repeat the URL.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        LlmError::Connect {
            url: url.to_string(),
            detail,
        }
    };
    Attempt::Retry { error, after: None }
}

/// Counts failed attempts and says how long to wait before the next, or gives up.
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    failures: u32,
}

impl<'a> RetryState<'a> {
    pub fn new(policy: &'a RetryPolicy) -> RetryState<'a> {
        RetryState {
            policy,
            failures: 0,
        }
    }

    /// After a failed attempt: the wait before the next one, or the error to report.
    pub fn failed(&mut self, attempt: Attempt) -> Result<Duration, LlmError> {
        let (error, after) = match attempt {
            Attempt::Fatal(e) => return Err(e),
            Attempt::Retry { error, after } => (error, after),
        };
        self.failures += 1;
        let n = self.failures;
        let error = match error {
            LlmError::Unavailable {
                url,
                status,
                detail,
                ..
            } => LlmError::Unavailable {
                url,
                status,
                detail,
                attempts: n,
            },
            other => other,
        };
        if n >= self.policy.attempts {
            return Err(error);
        }
        match after {
            Some(a) if a > self.policy.max_retry_after => Err(match error {
                LlmError::Unavailable {
                    url,
                    status,
                    detail,
                    attempts,
                } => LlmError::Unavailable {
                    url,
                    status,
                    detail: format!(
                        "{detail}{}asked to retry after {}s, longer than the {}s rekindle waits",
                        if detail.is_empty() { "" } else { "; " },
                        a.as_secs(),
                        self.policy.max_retry_after.as_secs()
                    ),
                    attempts,
                },
                other => other,
            }),
            Some(a) => Ok(a),
            None => Ok(self.policy.backoff(n - 1)),
        }
    }
}

/// The most of a streamed reply rekindle reads: far more than any model's answer, with its
/// per-token framing, yet a bound on a server that never stops.
pub const MAX_STREAM: u64 = 128 * 1024 * 1024;
/// The most of a whole (not streamed) response body rekindle reads.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// The most of an error body kept for the message; the rest is not read.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Reads a whole response body, refusing one larger than `limit` bytes before reading it (by its
/// `Content-Length`) or as soon as it passes the limit.
pub async fn read_body(
    url: &str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, LlmError> {
    let too_large = || LlmError::Malformed {
        url: url.to_string(),
        detail: format!("the response body is larger than {limit} bytes, the most rekindle reads"),
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(LlmError::Malformed {
                    url: url.to_string(),
                    detail: format!("the response body broke off: {e}"),
                })
            }
        }
    }
}

/// The start of an error response's body, for the message: at most [`MAX_ERROR_BODY`] bytes are
/// read; what follows is dropped unread.
pub async fn error_body(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    let mut cut = false;
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if cut {
        text.push_str(" […]");
    }
    text
}

/// Reads a streamed response as server-sent events, calling `on_event` for each; enforces the
/// idle and total timeouts, and the bounds on one event ([`sse::MAX_EVENT`]) and on the whole
/// stream ([`MAX_STREAM`]). `on_event` returns `Ok(true)` to stop early (end of stream marker).
pub async fn read_events(
    url: &str,
    resp: reqwest::Response,
    t: &Timeouts,
    started: Instant,
    on_event: impl FnMut(sse::Event) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    read_events_within(url, resp, t, started, MAX_STREAM, on_event).await
}

async fn read_events_within(
    url: &str,
    resp: reqwest::Response,
    t: &Timeouts,
    started: Instant,
    max_stream: u64,
    mut on_event: impl FnMut(sse::Event) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    let mut stream = resp.bytes_stream();
    let mut parser = sse::Parser::default();
    let mut total = 0u64;
    let malformed = |detail: String| LlmError::Malformed {
        url: url.to_string(),
        detail,
    };
    loop {
        let left = t.total.saturating_sub(started.elapsed());
        let wait = t.idle.min(left);
        let next = match tokio::time::timeout(wait, stream.next()).await {
            Ok(n) => n,
            Err(_) => {
                let total_hit = left <= t.idle;
                return Err(LlmError::Timeout {
                    url: url.to_string(),
                    what: if total_hit {
                        "the request"
                    } else {
                        "the stream (no data)"
                    },
                    after: if total_hit { t.total } else { t.idle },
                });
            }
        };
        match next {
            Some(Ok(bytes)) => {
                total += bytes.len() as u64;
                if total > max_stream {
                    return Err(malformed(format!(
                        "the stream passed {max_stream} bytes, the most rekindle reads"
                    )));
                }
                let events = parser.push(&bytes).map_err(|e| malformed(e.to_string()))?;
                for e in events {
                    if on_event(e)? {
                        return Ok(());
                    }
                }
            }
            Some(Err(e)) => return Err(malformed(format!("the stream broke off: {e}"))),
            None => {
                if let Some(e) = parser.finish() {
                    on_event(e)?;
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rekindle_testkit::{Reply, Server};

    async fn get(server: &Server) -> reqwest::Response {
        reqwest::get(server.url()).await.unwrap()
    }

    fn full(status: u16, body: Vec<u8>) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body,
        }
    }

    #[tokio::test]
    async fn a_body_is_bounded_by_its_length_and_as_it_arrives() {
        let server = Server::start(vec![
            full(200, vec![b'a'; 1000]),
            full(200, vec![b'a'; 1001]),
            // No Content-Length: refused once the bytes pass the bound.
            Reply::Stream {
                chunks: vec![vec![b'b'; 600]; 4],
                pause: Duration::ZERO,
            },
        ])
        .await;
        let url = server.url();
        assert_eq!(
            read_body(&url, get(&server).await, 1000)
                .await
                .unwrap()
                .len(),
            1000
        );
        for _ in 0..2 {
            let e = read_body(&url, get(&server).await, 1000).await.unwrap_err();
            assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains("larger than 1000 bytes"), "{e}");
        }
    }

    #[tokio::test]
    async fn an_error_body_is_cut_unread() {
        let server = Server::start(vec![full(500, vec![b'e'; 10 * MAX_ERROR_BODY])]).await;
        let text = error_body(get(&server).await).await;
        assert!(text.len() <= MAX_ERROR_BODY + 8, "{}", text.len());
        assert!(text.ends_with(" […]"));
    }

    #[tokio::test]
    async fn a_stream_is_bounded_in_all_and_per_event() {
        let t = Timeouts::default();
        let events = Reply::sse(&vec!["x".repeat(100); 50], 512);
        let server = Server::start(vec![
            events.clone(),
            events,
            Reply::Stream {
                chunks: vec![vec![b'z'; 64 * 1024]; 80],
                pause: Duration::ZERO,
            },
        ])
        .await;
        let url = server.url();
        let mut n = 0;
        read_events_within(&url, get(&server).await, &t, Instant::now(), 10_000, |_| {
            n += 1;
            Ok(false)
        })
        .await
        .unwrap();
        assert_eq!(n, 50);
        let e = read_events_within(&url, get(&server).await, &t, Instant::now(), 2_000, |_| {
            Ok(false)
        })
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("the stream passed 2000 bytes"),
            "{e}"
        );
        // 5 MiB of one event that never ends.
        let e = read_events(&url, get(&server).await, &t, Instant::now(), |_| Ok(false))
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("event passed"), "{e}");
    }
}
