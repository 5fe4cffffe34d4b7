//! Any OpenAI-compatible chat-completions endpoint: OpenAI, Ollama's `/v1`, vLLM, LM Studio,
//! llama.cpp's llama-server, OpenRouter. Streams with `stream_options.include_usage`.

use crate::error::LlmError;
use crate::http::{self, Attempt, HttpSettings, RetryState};
use crate::request::{FinishReason, Request, Response, Usage};
use crate::secret::Secret;
use crate::{Provider, ProviderKind, TokenSink};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Instant;

pub struct OpenAi {
    http: HttpSettings,
    client: reqwest::Client,
    key: Option<Secret>,
    key_env: Option<String>,
}

impl OpenAi {
    /// `key_env` names the variable the key came from, for messages.
    pub fn new(
        http: HttpSettings,
        key: Option<Secret>,
        key_env: Option<String>,
    ) -> Result<OpenAi, LlmError> {
        Ok(OpenAi {
            client: http::client(&http.timeouts)?,
            http,
            key,
            key_env,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.http.base_url.trim_end_matches('/')
        )
    }

    fn body(req: &Request) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = m.role.as_str();
                json!({"role": role, "content": m.content})
            })
            .collect();
        let s = &req.sampling;
        let mut body = json!({
            "model": req.model,
            "messages": messages,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(p) = s.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(seed) = s.seed {
            body["seed"] = json!(seed);
        }
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
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
        let mut rb = self.client.post(&url).json(body).timeout(t.total);
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k.expose());
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
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
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
        if is_json {
            // A server that ignored `stream: true`.
            let body = http::read_body(&url, resp, http::MAX_BODY)
                .await
                .map_err(Attempt::Fatal)?;
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| Attempt::Fatal(malformed(format!("the body is not JSON ({e})"))))?;
            let content = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or_else(|| Attempt::Fatal(malformed("no choices[0].message.content".into())))?;
            sink.token(content);
            out.text = content.to_string();
            read_common(&v, &mut out);
            return Ok(out);
        }
        let mut done = false;
        let mut got_any = false;
        let result = http::read_events(&url, resp, t, started, |ev| {
            if ev.data.trim() == "[DONE]" {
                done = true;
                return Ok(true);
            }
            let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
                malformed(format!(
                    "a stream event is not JSON ({e}): {}",
                    clip(&ev.data)
                ))
            })?;
            if let Some(err) = v.get("error") {
                return Err(malformed(format!(
                    "the stream reported an error: {}",
                    http::error_detail(&err.to_string())
                )));
            }
            if let Some(delta) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                if !delta.is_empty() {
                    got_any = true;
                    sink.token(delta);
                    out.text.push_str(delta);
                }
            }
            read_common(&v, &mut out);
            Ok(false)
        })
        .await;
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
        if !done && out.finish_reason == FinishReason::Other("none".into()) {
            return Err(Attempt::Fatal(malformed(
                "the stream ended before the reply was complete (no finish reason, no [DONE])"
                    .into(),
            )));
        }
        Ok(out)
    }
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Fields that appear in both streamed chunks and whole responses.
fn read_common(v: &Value, out: &mut Response) {
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        out.model = m.to_string();
    }
    if out.request_id.is_none() {
        out.request_id = v.get("id").and_then(Value::as_str).map(str::to_string);
    }
    if let Some(r) = v
        .pointer("/choices/0/finish_reason")
        .and_then(Value::as_str)
    {
        out.finish_reason = match r {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            other => FinishReason::Other(other.to_string()),
        };
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        out.usage = Usage {
            input_tokens: n("/prompt_tokens"),
            output_tokens: n("/completion_tokens"),
            cached_tokens: n("/prompt_tokens_details/cached_tokens"),
        };
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn describe(&self) -> String {
        format!("openai-compatible endpoint {}", self.http.base_url)
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
