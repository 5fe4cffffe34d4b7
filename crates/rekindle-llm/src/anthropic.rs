//! Anthropic's Messages API, streamed.

use crate::error::LlmError;
use crate::http::{self, Attempt, HttpSettings, RetryState};
use crate::request::{FinishReason, Request, Response, Role, Usage};
use crate::secret::Secret;
use crate::{Provider, ProviderKind, TokenSink};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Instant;

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    http: HttpSettings,
    client: reqwest::Client,
    key: Option<Secret>,
    key_env: Option<String>,
}

impl Anthropic {
    pub fn new(
        http: HttpSettings,
        key: Option<Secret>,
        key_env: Option<String>,
    ) -> Result<Anthropic, LlmError> {
        Ok(Anthropic {
            client: http::client(&http.timeouts)?,
            http,
            key,
            key_env,
        })
    }

    fn url(&self) -> String {
        let base = self.http.base_url.trim_end_matches('/');
        if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        }
    }

    fn body(req: &Request) -> Value {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| {
                let role = if m.role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        let s = &req.sampling;
        let mut body = json!({
            "model": req.model,
            "max_tokens": s.max_tokens,
            "messages": messages,
            "temperature": s.temperature,
            "stream": true,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(p) = s.top_p {
            body["top_p"] = json!(p);
        }
        if !s.stop.is_empty() {
            body["stop_sequences"] = json!(s.stop);
        }
        body
    }

    async fn attempt(
        &self,
        req: &Request,
        body: &Value,
        sink: &mut dyn TokenSink,
    ) -> Result<Response, Attempt> {
        let url = self.url();
        let t = &self.http.timeouts;
        let started = Instant::now();
        let mut rb = self
            .client
            .post(&url)
            .header("anthropic-version", API_VERSION)
            .json(body)
            .timeout(t.total);
        if let Some(k) = &self.key {
            rb = rb.header("x-api-key", k.expose());
        }
        let resp = rb.send().await.map_err(|e| http::send_error(&url, &e, t))?;
        let status = resp.status().as_u16();
        let secret = self.key.as_ref().map(Secret::expose);
        if !(200..300).contains(&status) {
            let headers = resp.headers().clone();
            let text = http::redact(&http::error_body(resp).await, secret);
            return Err(http::status_error(
                &url,
                &req.model,
                status,
                &headers,
                &text,
                self.key_env.as_deref(),
            ));
        }
        let request_id = resp
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let malformed = |detail: String| LlmError::Malformed {
            url: url.clone(),
            detail: http::redact(&detail, secret),
        };
        let mut out = Response {
            text: String::new(),
            usage: Usage::default(),
            finish_reason: FinishReason::Other("none".into()),
            request_id,
            model: req.model.clone(),
            cut: None,
        };
        let mut stopped = false;
        let mut got_any = false;
        let mut overloaded = None;
        let result = http::read_events(&url, resp, t, started, |ev| {
            let v: Value = serde_json::from_str(&ev.data)
                .map_err(|e| malformed(format!("a stream event is not JSON ({e})")))?;
            match v.get("type").and_then(Value::as_str).unwrap_or("") {
                "message_start" => {
                    if let Some(m) = v.pointer("/message/model").and_then(Value::as_str) {
                        out.model = m.to_string();
                    }
                    if out.request_id.is_none() {
                        out.request_id = v
                            .pointer("/message/id")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                    }
                    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
                    out.usage.input_tokens = n("/message/usage/input_tokens")
                        + n("/message/usage/cache_read_input_tokens")
                        + n("/message/usage/cache_creation_input_tokens");
                    out.usage.cached_tokens = n("/message/usage/cache_read_input_tokens");
                    out.usage.output_tokens = n("/message/usage/output_tokens");
                }
                "content_block_delta" => {
                    if let Some(text) = v.pointer("/delta/text").and_then(Value::as_str) {
                        got_any = true;
                        sink.token(text);
                        out.text.push_str(text);
                    }
                }
                "message_delta" => {
                    if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                        out.finish_reason = match r {
                            "end_turn" | "stop_sequence" => FinishReason::Stop,
                            "max_tokens" => FinishReason::Length,
                            other => FinishReason::Other(other.to_string()),
                        };
                    }
                    if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                        out.usage.output_tokens = n;
                    }
                }
                "message_stop" => {
                    stopped = true;
                    return Ok(true);
                }
                "error" => {
                    let kind = v
                        .pointer("/error/type")
                        .and_then(Value::as_str)
                        .unwrap_or("error");
                    let msg = v
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if kind == "overloaded_error" && !got_any {
                        overloaded = Some(msg.to_string());
                        return Ok(true);
                    }
                    return Err(malformed(format!("the stream reported {kind}: {msg}")));
                }
                _ => {}
            }
            Ok(false)
        })
        .await;
        if let Some(detail) = overloaded {
            return Err(Attempt::Retry {
                error: LlmError::Unavailable {
                    url: url.clone(),
                    status: 529,
                    detail,
                    attempts: 1,
                },
                after: None,
            });
        }
        match result {
            Err(e @ LlmError::Timeout { .. }) if !got_any => {
                return Err(Attempt::Retry {
                    error: e,
                    after: None,
                })
            }
            Err(e) => return Err(Attempt::Fatal(e)),
            Ok(()) => {}
        }
        if !stopped {
            return Err(Attempt::Fatal(malformed(
                "the stream ended before message_stop".into(),
            )));
        }
        Ok(out)
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn describe(&self) -> String {
        format!("Anthropic Messages API at {}", self.http.base_url)
    }

    async fn complete(
        &self,
        req: &Request,
        sink: &mut dyn TokenSink,
    ) -> Result<Response, LlmError> {
        let body = Self::body(req);
        let mut retry = RetryState::new(&self.http.retry);
        loop {
            match self.attempt(req, &body, sink).await {
                Ok(r) => return Ok(r),
                Err(a) => tokio::time::sleep(retry.failed(a)?).await,
            }
        }
    }
}
