//! Sends requests to the embedded provider, one model load for all of them: the prompt probe of
//! the quality benchmark (`bench/quality/probe.py`), which compares prompt variants on one call
//! without a whole render.
//!
//! ```text
//! cargo run --release -p rekindle-llm --features local --example probe -- \
//!     --model PATH --in requests.jsonl --out replies.jsonl
//! ```
//!
//! Each input line is `{"id": ..., "request": <Request>}` (the canonical request, as the render
//! sends it); each output line is `{"id": ..., "response": <Response>, "seconds": ...}`, written
//! as soon as the reply is there. Ids already in the output file are skipped, so a stopped probe
//! resumes.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rekindle_llm::local::LocalProvider;
use rekindle_llm::{NoSink, Provider, Request};
use serde::Deserialize;

#[derive(Deserialize)]
struct Line {
    id: String,
    request: Request,
}

fn main() {
    let (mut model, mut input, mut output) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(val)),
            "--in" => input = Some(PathBuf::from(val)),
            "--out" => output = Some(PathBuf::from(val)),
            other => panic!("unknown argument {other}"),
        }
    }
    let (model, input, output) = (
        model.expect("--model PATH"),
        input.expect("--in FILE"),
        output.expect("--out FILE"),
    );
    let done: HashSet<String> = std::fs::read_to_string(&output)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let provider = LocalProvider::load(&model).unwrap_or_else(|e| panic!("{e}"));
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&output)
        .unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    let text =
        std::fs::read_to_string(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    for (n, l) in text.lines().enumerate() {
        let line: Line = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("{} line {}: {e}", input.display(), n + 1));
        if done.contains(&line.id) {
            continue;
        }
        let t = Instant::now();
        let r = rt
            .block_on(provider.complete(&line.request, &mut NoSink))
            .unwrap_or_else(|e| panic!("{}: {e}", line.id));
        let seconds = t.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} in / {} out, {seconds:.1}s",
            line.id, r.usage.input_tokens, r.usage.output_tokens
        );
        let v = serde_json::json!({ "id": line.id, "response": r, "seconds": seconds });
        writeln!(out, "{v}").expect("the output file is writable");
        out.flush().expect("the output file is writable");
    }
}
