//! How long a cache hit takes through `Session::call`: hashing a realistic request (about 20 KB
//! of prompt), reading the entry, checking its digest, accounting. Prints the median and the 90th
//! percentile over many rounds; asserts nothing (`cargo bench -p rekindle-llm --bench cache_hit`).

use async_trait::async_trait;
use rekindle_llm::cache::{self, Cache, Payload};
use rekindle_llm::meter::{Budget, PriceTable};
use rekindle_llm::session::{Mode, Session};
use rekindle_llm::{
    FinishReason, LlmError, Message, NoSink, Provider, ProviderKind, Request, Response, TokenSink,
    Usage,
};
use std::time::Instant;

/// A provider that must never be called: every request in this benchmark is a hit.
struct Unreachable;

#[async_trait]
impl Provider for Unreachable {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }
    fn describe(&self) -> String {
        "unreachable".into()
    }
    async fn complete(&self, _: &Request, _: &mut dyn TokenSink) -> Result<Response, LlmError> {
        panic!("a cache hit must not call the model")
    }
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let spec = "- :App: should print the report for every file it is given.\n".repeat(300);
    let code = "def main():\n    print('hello, world')\n".repeat(200);
    let req = Request::new(
        "qwen2.5-coder-1.5b-instruct",
        vec![
            Message::system("You write Python code from ***plain specs. Reply with file blocks."),
            Message::user(format!("{spec}\n\nCurrent files:\n{code}")),
        ],
    );
    let key = cache::key(ProviderKind::Openai, &req);
    let c = Cache::new(dir.path());
    c.put(&Payload {
        key: key.clone(),
        provider: ProviderKind::Openai,
        response: Response {
            text: format!("--- FILE: app.py\n{code}--- END FILE\n"),
            usage: Usage {
                input_tokens: 6000,
                output_tokens: 2500,
                cached_tokens: 0,
            },
            finish_reason: FinishReason::Stop,
            request_id: None,
            model: "qwen2.5-coder-1.5b-instruct".into(),
            cut: None,
        },
        created: cache::now(),
        duration_ms: 90_000,
        request: Some(req.clone()),
    })
    .unwrap();
    let session = Session::new(
        Some(c),
        Mode::Normal,
        Budget::default(),
        PriceTable::default(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = serde_json::to_string(&req).unwrap().len();
    let mut times = Vec::with_capacity(rounds);
    rt.block_on(async {
        for _ in 0..rounds {
            let t = Instant::now();
            let out = session.call(&Unreachable, &req, &mut NoSink).await.unwrap();
            times.push(t.elapsed());
            assert!(out.record.cache_hit);
        }
    });
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    println!(
        "cache hit through Session::call ({bytes} byte request, {rounds} rounds): median {:.3} ms, p90 {:.3} ms, min {:.3} ms",
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
