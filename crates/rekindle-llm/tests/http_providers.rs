//! The HTTP providers against a scripted server on 127.0.0.1: normal replies, retries that honour
//! `Retry-After`, errors a user can act on, malformed and truncated replies, stalls, and streams
//! split at awkward byte boundaries. No traffic leaves loopback.

use rekindle_llm::anthropic::Anthropic;
use rekindle_llm::cache::Cache;
use rekindle_llm::http::{HttpSettings, RetryPolicy, Timeouts};
use rekindle_llm::meter::{Budget, PriceTable};
use rekindle_llm::openai::OpenAi;
use rekindle_llm::secret::Secret;
use rekindle_llm::session::{Mode, Session};
use rekindle_llm::{FinishReason, LlmError, Message, NoSink, Provider, Request, TokenSink};
use rekindle_testkit::{anthropic_events, openai_events, Reply, Server};
use serde_json::json;
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-very-secret-0123456789";

fn settings(url: String) -> HttpSettings {
    HttpSettings {
        base_url: url,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(4),
            idle: Duration::from_secs(1),
        },
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        },
    }
}

fn openai(server: &Server) -> OpenAi {
    OpenAi::new(
        settings(format!("{}/v1", server.url())),
        Some(Secret::new(KEY)),
        Some("OPENAI_API_KEY".into()),
    )
    .unwrap()
}

fn anthropic(server: &Server) -> Anthropic {
    Anthropic::new(
        settings(server.url()),
        Some(Secret::new(KEY)),
        Some("ANTHROPIC_API_KEY".into()),
    )
    .unwrap()
}

fn request() -> Request {
    Request::new(
        "m",
        vec![Message::system("be brief"), Message::user("say hello")],
    )
}

struct Collect(String);
impl TokenSink for Collect {
    fn token(&mut self, t: &str) {
        self.0.push_str(t);
    }
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "the key leaked: {text}");
    assert!(
        !text.contains("very-secret"),
        "part of the key leaked: {text}"
    );
}

#[tokio::test]
async fn openai_normal_reply_with_usage() {
    let server = Server::start(vec![Reply::sse(
        &openai_events("Hello, wörld!", 3, 12, 4),
        7,
    )])
    .await;
    let mut sink = Collect(String::new());
    let r = openai(&server)
        .complete(&request(), &mut sink)
        .await
        .unwrap();
    assert_eq!(r.text, "Hello, wörld!");
    assert_eq!(sink.0, r.text);
    assert_eq!(r.usage.input_tokens, 12);
    assert_eq!(r.usage.output_tokens, 4);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = seen[0].json();
    assert_eq!(body["model"], "m");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["temperature"], 0.0);
}

#[tokio::test]
async fn stream_split_at_every_byte() {
    // One byte per chunk: splits every UTF-8 character and every `\n\n`.
    let server = Server::start(vec![Reply::sse(&openai_events("naïve 東京 ✓", 2, 5, 6), 1)]).await;
    let r = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap();
    assert_eq!(r.text, "naïve 東京 ✓");
}

#[tokio::test]
async fn retry_after_429_is_honoured() {
    let server = Server::start(vec![
        Reply::json(429, &json!({"error": {"message": "slow down"}}))
            .with_header("Retry-After", "2"),
        Reply::sse(&openai_events("ok", 5, 1, 1), 64),
    ])
    .await;
    let started = Instant::now();
    let r = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.text, "ok");
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = Server::start(vec![
        Reply::json(500, &json!({"error": {"message": "boom"}})),
        Reply::json(503, &json!({"error": {"message": "busy"}})),
        Reply::sse(&openai_events("fine", 5, 1, 1), 64),
    ])
    .await;
    let r = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap();
    assert_eq!(r.text, "fine");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn unavailable_after_all_attempts() {
    let server = Server::start(vec![]).await;
    server.set_fallback(Reply::json(
        503,
        &json!({"error": {"message": "down for maintenance"}}),
    ));
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            LlmError::Unavailable {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("down for maintenance"), "{msg}");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn unauthorized_is_clear_and_keeps_the_key_secret() {
    // A hostile server echoes the key back in its error.
    let server = Server::start(vec![Reply::json(
        401,
        &json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}),
    )])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, LlmError::Auth { status: 401, .. }), "{msg}");
    assert!(msg.contains("OPENAI_API_KEY"), "{msg}");
    assert_no_key(&msg);
    assert_no_key(&format!("{e:?}"));
    assert_eq!(server.seen().len(), 1, "401 must not be retried");
}

#[tokio::test]
async fn not_found_names_the_model() {
    let server = Server::start(vec![Reply::json(
        404,
        &json!({"error": {"message": "model 'm' not found"}}),
    )])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    let msg = e.to_string();
    let want = format!(
        "model 'm' was not found at {}/v1/chat/completions: check --model",
        server.url()
    );
    assert!(msg.starts_with(&want), "{msg}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = Server::start(vec![Reply::json(
        400,
        &json!({"error": {"message": "max_tokens too large"}}),
    )])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("max_tokens too large"), "{e}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn body_that_is_not_json() {
    let server = Server::start(vec![Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: b"<html>gateway</html>".to_vec(),
    }])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[tokio::test]
async fn stream_event_that_is_not_json() {
    let events = [
        "{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}".to_string(),
        "{oops".to_string(),
    ];
    let server = Server::start(vec![Reply::sse(&events, 5)]).await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
}

#[tokio::test]
async fn truncated_stream_is_an_error() {
    let mut events = openai_events("cut short", 3, 1, 1);
    events.truncate(2); // two content chunks, no finish, no [DONE]
    let server = Server::start(vec![Reply::sse(&events, 16)]).await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("ended before the reply was complete"),
        "{e}"
    );
}

#[tokio::test]
async fn stalled_server_times_out() {
    let server = Server::start(vec![]).await;
    server.set_fallback(Reply::Stall);
    let started = Instant::now();
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Timeout { .. }), "{e}");
    // Three attempts of at most the 4 s total timeout each, plus small backoffs.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stream_that_goes_silent_times_out() {
    let first = openai_events("partial", 7, 1, 1).remove(0);
    let server = Server::start(vec![Reply::StallAfter {
        chunks: vec![format!("data: {first}\n\n").into_bytes()],
    }])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            LlmError::Timeout {
                what: "the stream (no data)",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(server.seen().len(), 1, "text already streamed: no retry");
}

#[tokio::test]
async fn connection_refused_is_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = OpenAi::new(settings(format!("http://127.0.0.1:{port}/v1")), None, None).unwrap();
    let e = p.complete(&request(), &mut NoSink).await.unwrap_err();
    assert!(matches!(e, LlmError::Connect { .. }), "{e}");
}

#[tokio::test]
async fn anthropic_normal_reply() {
    let server = Server::start(vec![Reply::named_sse(
        &anthropic_events("Bonjour ✓", 20, 3),
        5,
    )])
    .await;
    let r = anthropic(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap();
    assert_eq!(r.text, "Bonjour ✓");
    assert_eq!(r.usage.input_tokens, 20);
    assert_eq!(r.usage.output_tokens, 3);
    assert_eq!(r.model, "claude-test");
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    let body = seen.json();
    assert_eq!(body["system"], "be brief");
    assert_eq!(body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn anthropic_overloaded_then_success_and_401() {
    let overloaded = vec![(
        "error",
        json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
    )];
    let server = Server::start(vec![
        Reply::named_sse(&overloaded, 9),
        Reply::named_sse(&anthropic_events("ok", 1, 1), 9),
        Reply::json(
            401,
            &json!({"type":"error","error":{"type":"authentication_error","message":format!("invalid x-api-key {KEY}")}}),
        ),
    ])
    .await;
    let p = anthropic(&server);
    let r = p.complete(&request(), &mut NoSink).await.unwrap();
    assert_eq!(r.text, "ok");
    let e = p.complete(&request(), &mut NoSink).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("ANTHROPIC_API_KEY"), "{msg}");
    assert_no_key(&msg);
}

#[tokio::test]
async fn anthropic_truncated_stream() {
    let mut events = anthropic_events("cut", 1, 1);
    events.truncate(4);
    let server = Server::start(vec![Reply::named_sse(&events, 3)]).await;
    let e = anthropic(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("before message_stop"), "{e}");
}

#[tokio::test]
async fn session_caches_and_serves_offline() {
    let server = Server::start(vec![Reply::sse(
        &openai_events("cached answer", 4, 9, 2),
        11,
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = openai(&server);
    let s = Session::new(
        Some(Cache::new(dir.path())),
        Mode::Normal,
        Budget::default(),
        PriceTable::default(),
    );
    let first = s.call(&provider, &request(), &mut NoSink).await.unwrap();
    assert!(!first.record.cache_hit);
    let second = s.call(&provider, &request(), &mut NoSink).await.unwrap();
    assert!(second.record.cache_hit);
    assert_eq!(second.response, first.response);
    assert_eq!(
        server.seen().len(),
        1,
        "the second call must come from the cache"
    );
    let t = s.totals();
    assert_eq!(
        (t.model_calls, t.cache_hits, t.tokens_in, t.tokens_out),
        (1, 1, 9, 2)
    );

    // The entry keeps the request it answers, found by the start of its key.
    let stored = Cache::new(dir.path())
        .find(&first.record.key[..8])
        .expect("the entry, by the first 8 digits of its key");
    assert_eq!(stored.request, Some(request()));
    assert_eq!(stored.response, first.response);

    // Offline: hits work, a different request is a clear miss without any traffic.
    let offline = Session::new(
        Some(Cache::new(dir.path())),
        Mode::Offline,
        Budget::default(),
        PriceTable::default(),
    );
    assert!(
        offline
            .call(&provider, &request(), &mut NoSink)
            .await
            .unwrap()
            .record
            .cache_hit
    );
    let mut other = request();
    other.messages.push(Message::user("and more"));
    let e = offline
        .call(&provider, &other, &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::CacheMiss { .. }), "{e}");
    assert_eq!(server.seen().len(), 1);

    // Nothing in the cache holds the key.
    for entry in walk(dir.path()) {
        assert_no_key(&std::fs::read_to_string(entry).unwrap());
    }
}

#[tokio::test]
async fn damaged_cache_entry_is_reported_and_replaced() {
    let server = Server::start(vec![
        Reply::sse(&openai_events("v1", 4, 1, 1), 64),
        Reply::sse(&openai_events("v2", 4, 1, 1), 64),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = openai(&server);
    let s = Session::new(
        Some(Cache::new(dir.path())),
        Mode::Normal,
        Budget::default(),
        PriceTable::default(),
    );
    s.call(&provider, &request(), &mut NoSink).await.unwrap();
    let entry = walk(dir.path()).pop().unwrap();
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, &text[..text.len() / 2]).unwrap();
    let again = s.call(&provider, &request(), &mut NoSink).await.unwrap();
    assert!(!again.record.cache_hit);
    assert_eq!(again.response.text, "v2");
    let warnings = s.take_warnings();
    assert!(
        warnings.iter().any(|w| w.contains("damaged cache entry")),
        "{warnings:?}"
    );
    assert!(
        s.call(&provider, &request(), &mut NoSink)
            .await
            .unwrap()
            .record
            .cache_hit
    );
}

#[tokio::test]
async fn budget_stops_cleanly() {
    let server = Server::start(vec![Reply::sse(&openai_events("one", 4, 1, 1), 64)]).await;
    let provider = openai(&server);
    let budget = Budget {
        max_calls: Some(1),
        ..Budget::default()
    };
    let s = Session::new(None, Mode::Normal, budget, PriceTable::default());
    s.call(&provider, &request(), &mut NoSink).await.unwrap();
    let e = s
        .call(&provider, &request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Budget { .. }), "{e}");
    assert!(e.to_string().contains("max-calls"), "{e}");
    assert_eq!(server.seen().len(), 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_body_larger_than_the_bound_is_refused_unread() {
    let huge = vec![b' '; rekindle_llm::http::MAX_BODY + 1];
    let server = Server::start(vec![Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: huge,
    }])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[tokio::test]
async fn a_huge_error_body_is_cut() {
    let mut body = b"{\"error\": {\"message\": \"".to_vec();
    body.extend(std::iter::repeat_n(b'x', 4 * 1024 * 1024));
    body.extend(b"\"}}");
    for provider in ["openai", "anthropic"] {
        let server = Server::start(vec![Reply::Full {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.clone(),
        }])
        .await;
        let e = if provider == "openai" {
            openai(&server).complete(&request(), &mut NoSink).await
        } else {
            anthropic(&server).complete(&request(), &mut NoSink).await
        }
        .unwrap_err();
        assert!(
            e.to_string().len() < 2 * rekindle_llm::http::MAX_ERROR_BODY,
            "{provider}: {} bytes",
            e.to_string().len()
        );
    }
}

#[tokio::test]
async fn an_endless_stream_event_is_refused() {
    let mut chunks = vec![b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec()];
    chunks.extend(std::iter::repeat_n(vec![b'a'; 64 * 1024], 80));
    let server = Server::start(vec![Reply::Stream {
        chunks,
        pause: Duration::ZERO,
    }])
    .await;
    let e = openai(&server)
        .complete(&request(), &mut NoSink)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("event passed"), "{e}");
}
