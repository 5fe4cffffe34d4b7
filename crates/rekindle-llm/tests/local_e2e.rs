//! The embedded engine end to end, with a real embedded model.
//!
//! The model is `$REKINDLE_MODEL_PATH`, else the small model in `models::default_dir()`, else
//! the default one. Without one these tests are skipped, except under CI (`$CI` set), where
//! they fail: fetch it with `rekindle model fetch small`.
#![cfg(feature = "local")]

use std::path::PathBuf;
use std::sync::OnceLock;

use rekindle_llm::local::LocalProvider;
use rekindle_llm::{
    file_blocks, models, Constraint, FinishReason, Message, NoSink, Provider, Request, TokenSink,
};

fn model_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REKINDLE_MODEL_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let dir = models::default_dir();
    ["small", "default"]
        .iter()
        .map(|n| models::path_of(models::spec(n).unwrap(), &dir))
        .find(|p| p.is_file())
}

/// The provider, loaded once for all tests; `None` means skip.
fn provider() -> Option<&'static LocalProvider> {
    static P: OnceLock<Option<LocalProvider>> = OnceLock::new();
    P.get_or_init(|| {
        let Some(path) = model_path() else {
            let msg = format!(
                "no embedded model: set REKINDLE_MODEL_PATH or run `rekindle model fetch small` (looked in {})",
                models::default_dir().display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipped: {msg}");
            return None;
        };
        eprintln!("model: {}", path.display());
        Some(LocalProvider::load(&path).unwrap_or_else(|e| panic!("{e}")))
    })
    .as_ref()
}

struct Collect(String);

impl TokenSink for Collect {
    fn token(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

fn add_request() -> Request {
    let mut req = Request::new(
        "local",
        vec![
            Message::system(file_blocks::INSTRUCTIONS),
            Message::user(
                "Write a Python function add(a, b) that returns a + b, in a file named add.py",
            ),
        ],
    );
    req.sampling.max_tokens = 200;
    req.constraint = Some(Constraint::FileBlocks);
    req
}

#[tokio::test]
async fn writes_a_python_file_in_file_blocks() {
    let Some(p) = provider() else { return };
    let req = add_request();
    let mut sink = Collect(String::new());
    let t = std::time::Instant::now();
    let resp = p.complete(&req, &mut sink).await.unwrap();
    eprintln!(
        "{:?} in {:.1}s, {} prompt + {} output tokens, finish {:?}:\n{}",
        resp.model,
        t.elapsed().as_secs_f64(),
        resp.usage.input_tokens,
        resp.usage.output_tokens,
        resp.finish_reason,
        resp.text
    );
    assert_eq!(sink.0, resp.text, "the stream and the reply agree");
    assert!(resp.usage.input_tokens > 10 && resp.usage.output_tokens > 0);
    assert_eq!(resp.finish_reason, FinishReason::Stop);
    assert!(resp.model.ends_with(".gguf"));
    let blocks = file_blocks::parse(&resp.text).unwrap_or_else(|e| panic!("{e}: {}", resp.text));
    let py = blocks
        .iter()
        .find_map(|b| match b {
            file_blocks::FileBlock::Write { path, content } if path.ends_with(".py") => {
                Some(content)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no .py block in {blocks:?}"));
    assert!(py.contains("def add"), "{py}");
}

#[tokio::test]
async fn greedy_decoding_is_deterministic() {
    let Some(p) = provider() else { return };
    let mut req = Request::new(
        "local",
        vec![Message::user(
            "Explain in two sentences what a hash map is.",
        )],
    );
    req.sampling.max_tokens = 48;
    let a = p.complete(&req, &mut NoSink).await.unwrap();
    let b = p.complete(&req, &mut NoSink).await.unwrap();
    assert!(!a.text.is_empty());
    assert_eq!(a.text, b.text);
    assert_eq!(a.usage, b.usage);
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let Some(p) = provider() else { return };
    let mut req = add_request();
    req.sampling.max_tokens = 5;
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.output_tokens, 5);
    assert!(r.text.starts_with("--- FILE: "), "{}", r.text);
}

#[tokio::test]
async fn stop_strings_end_the_reply() {
    let Some(p) = provider() else { return };
    let mut req = add_request();
    req.sampling.stop = vec!["def".into()];
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(!r.text.contains("def"), "{}", r.text);
    assert!(r.text.starts_with("--- FILE: "), "{}", r.text);
}
