//! The embedded engine end to end, with a real embedded model.
//!
//! The model is `$REKINDLE_MODEL_PATH`, else the default model in `models::default_dir()`, else
//! the small one (two of the tests, the runaway guard's, assert what the default model writes
//! and fail with the small one). Without a model these tests fail, never skip: fetch it with
//! `rekindle model fetch` (the README's test command does).
#![cfg(feature = "local")]

use std::path::PathBuf;
use std::sync::OnceLock;

use rekindle_llm::local::{on_inference_thread, LocalProvider};
use rekindle_llm::{
    file_blocks, models, runaway, Constraint, FinishReason, Message, NoSink, Provider, Request,
    TokenSink,
};

fn model_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REKINDLE_MODEL_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let dir = models::default_dir();
    ["default", "small"]
        .iter()
        .map(|n| models::path_of(models::spec(n).unwrap(), &dir))
        .find(|p| p.is_file())
}

/// The provider, loaded once for all tests; a missing model fails the test that asks.
fn provider() -> &'static LocalProvider {
    static P: OnceLock<LocalProvider> = OnceLock::new();
    P.get_or_init(|| {
        let path = model_path().unwrap_or_else(|| {
            panic!(
                "no embedded model: set REKINDLE_MODEL_PATH or run `rekindle model fetch` (looked in {})",
                models::default_dir().display()
            )
        });
        eprintln!("model: {}", path.display());
        LocalProvider::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
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
    let p = provider();
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

/// Greedy decoding gives the same reply to the same request after the same calls. (The engine
/// reuses the KV cache of the prompt the last call shared with this one; llama.cpp's numbers
/// depend a little on how a prompt was batched, so the history of calls is part of "the same".)
#[test]
fn greedy_decoding_is_deterministic() {
    let p = provider();
    let mut req = Request::new(
        "local",
        vec![Message::user(
            "Explain in two sentences what a hash map is.",
        )],
    );
    req.sampling.max_tokens = 48;
    let other = add_request();
    let q = p.clone();
    let (a, b) = on_inference_thread(move || {
        let run = || {
            q.complete_blocking(&other, &mut |_| {}).unwrap();
            q.complete_blocking(&req, &mut |_| {}).unwrap()
        };
        (run(), run())
    })
    .unwrap();
    assert!(!a.response.text.is_empty());
    assert_eq!(a.response.text, b.response.text);
    assert_eq!(a.response.usage, b.response.usage);
}

/// Calls that share the start of their prompt read the shared tokens once: the engine keeps its
/// KV cache between calls and reads only what differs. Run in one job on the inference thread,
/// so that no other test's call comes between.
#[test]
fn a_shared_prompt_prefix_is_read_once() {
    let p = provider();
    let add = add_request();
    let mut sub = add_request();
    sub.messages[1].content =
        "Write a Python function sub(a, b) that returns a - b, in a file named sub.py".into();
    let ta = p.prompt_tokens(&add).unwrap();
    let ts = p.prompt_tokens(&sub).unwrap();
    let common = ta.iter().zip(&ts).take_while(|(a, b)| a == b).count();
    assert!(common > 20 && common < ta.len().min(ts.len()), "{common}");
    let q = p.clone();
    let (a, s, again) = on_inference_thread(move || {
        let a = q.complete_blocking(&add, &mut |_| {}).unwrap();
        let s = q.complete_blocking(&sub, &mut |_| {}).unwrap();
        let again = q.complete_blocking(&add, &mut |_| {}).unwrap();
        (a, s, again)
    })
    .unwrap();
    assert_eq!(s.reused_tokens, common);
    assert_eq!(s.response.usage.cached_tokens, common as u64);
    assert_eq!(again.reused_tokens, common);
    eprintln!(
        "prompt read in {:.2}s fresh or after another call, {:.2}s reusing {common} of {} tokens",
        a.prompt_time.as_secs_f64(),
        again.prompt_time.as_secs_f64(),
        ta.len()
    );
    for g in [&a, &s, &again] {
        let blocks = file_blocks::parse(&g.response.text).unwrap();
        assert!(blocks[0].path().ends_with(".py"), "{blocks:?}");
    }
}

/// A reply that starts repeating a line is cut where the repetition starts, within a few hundred
/// tokens instead of at the cap, and what it keeps is whole file blocks: the file before, and the
/// repeating file up to the limit.
#[tokio::test]
async fn a_repeating_reply_is_cut_and_its_blocks_kept() {
    let p = provider();
    let mut req = Request::new(
        "local",
        vec![
            Message::system(file_blocks::INSTRUCTIONS),
            Message::user(
                "Write two files. First x.py, which holds the single line x = 1. Then fox.txt, \
                 which holds the line `the quick brown fox jumps over the lazy dog` 300 times, \
                 one per line.",
            ),
        ],
    );
    req.sampling.max_tokens = 2048;
    req.constraint = Some(Constraint::FileBlocks);
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    eprintln!(
        "{} output tokens, finish {:?}:\n{}",
        r.usage.output_tokens, r.finish_reason, r.text
    );
    assert_eq!(r.finish_reason, FinishReason::Repetition);
    let why = r.cut.as_deref().unwrap_or_default();
    assert!(why.contains("quick brown fox"), "{why}");
    assert!(r.usage.output_tokens < 400, "{}", r.usage.output_tokens);
    let blocks = file_blocks::parse(&r.text).unwrap();
    assert!(r.text.ends_with("--- END FILE\n"), "{}", r.text);
    let file_blocks::FileBlock::Write { content, .. } = blocks.last().unwrap() else {
        panic!("{blocks:?}")
    };
    // The repeating block keeps the line exactly up to the limit.
    let fox = content
        .lines()
        .filter(|l| l.contains("quick brown fox"))
        .count();
    assert_eq!(
        fox as u32,
        runaway::max_same("the quick brown fox jumps over the lazy dog"),
        "{content}"
    );
    assert!(
        blocks.len() >= 2,
        "the file before the repetition is kept: {blocks:?}"
    );
}

#[tokio::test]
async fn code_that_spells_out_a_table_is_not_cut() {
    // The guard once cut this at the ninth `if`: its lines have one shape, numbers masked.
    let p = provider();
    let mut req = Request::new(
        "local",
        vec![
            Message::system(file_blocks::INSTRUCTIONS),
            Message::user(
                "Write roman.py holding only a function to_roman(n), for n from 1 to 3999, and \
                 no other code. Do not use a list or a dict: write one `while n >= VALUE:` \
                 block for each of the values 1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4 \
                 and 1, adding its letters to the result and subtracting VALUE from n.",
            ),
        ],
    );
    req.sampling.max_tokens = 2048;
    req.constraint = Some(Constraint::FileBlocks);
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    eprintln!(
        "{} output tokens, finish {:?} ({:?}):\n{}",
        r.usage.output_tokens, r.finish_reason, r.cut, r.text
    );
    let blocks = file_blocks::parse(&r.text).unwrap();
    let code = blocks
        .iter()
        .find_map(|b| match b {
            file_blocks::FileBlock::Write { path, content } if path.ends_with("roman.py") => {
                Some(content.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no roman.py: {blocks:?}"));
    // Every `while n >= …:` line has one shape; more of them than lines alike may come.
    let ifs: Vec<&str> = code
        .lines()
        .filter(|l| l.contains(">=") && l.trim_end().ends_with(':'))
        .collect();
    let shapes: std::collections::HashSet<String> = ifs.iter().map(|l| runaway::shape(l)).collect();
    assert_eq!(shapes.len(), 1, "{ifs:?}");
    assert!(
        ifs.len() as u32 > runaway::max_same(ifs[0]),
        "the model wrote only {} blocks:\n{code}",
        ifs.len()
    );
    assert_ne!(r.finish_reason, FinishReason::Repetition, "{:?}", r.cut);
    assert_eq!(r.cut, None);
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let p = provider();
    let mut req = add_request();
    req.sampling.max_tokens = 5;
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.output_tokens, 5);
    assert!(r.text.starts_with("--- FILE: "), "{}", r.text);
}

#[tokio::test]
async fn stop_strings_end_the_reply() {
    let p = provider();
    let mut req = add_request();
    req.sampling.stop = vec!["def".into()];
    let r = p.complete(&req, &mut NoSink).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(!r.text.contains("def"), "{}", r.text);
    assert!(r.text.starts_with("--- FILE: "), "{}", r.text);
}

/// Prompt lookup decoding, when turned on: a reply that copies a file it was shown is drafted
/// from the prompt, and most of its tokens are confirmed in batches instead of generated one by
/// one; the reply is the one token-by-token decoding gives. A provider drafts nothing by default.
#[test]
fn a_copied_file_is_drafted_from_the_prompt_and_the_reply_is_unchanged() {
    let p = provider();
    let file = "def mean(numbers):\n    \"\"\"The arithmetic mean of a non-empty list of numbers.\"\"\"\n    total = 0\n    for n in numbers:\n        total += n\n    return total / len(numbers)\n\n\ndef spread(numbers):\n    \"\"\"The largest minus the smallest number of a non-empty list.\"\"\"\n    return max(numbers) - min(numbers)\n";
    let mut req = Request::new(
        "local",
        vec![
            Message::system(file_blocks::INSTRUCTIONS),
            Message::user(format!(
                "--- FILE: stats.py\n{file}--- END FILE\n\nAdd a function `middle(numbers)` at the end of stats.py that returns the median of a non-empty list. Reply with the whole new stats.py."
            )),
        ],
    );
    req.sampling.max_tokens = 300;
    req.constraint = Some(Constraint::FileBlocks);
    // Fresh providers, so that neither reuses a cache another test left.
    let path = p.path().to_path_buf();
    let (with, without) = on_inference_thread(move || {
        let drafting = LocalProvider::load(&path).unwrap().with_lookup(true);
        // Off by default: on 2 cores it cost more than it saved.
        let plain = LocalProvider::load(&path).unwrap();
        let with = drafting.complete_blocking(&req, &mut |_| {}).unwrap();
        let without = plain.complete_blocking(&req, &mut |_| {}).unwrap();
        (with, without)
    })
    .unwrap();
    eprintln!(
        "with lookup: {} tokens in {:.1}s ({} drafted, {} confirmed); without: {:.1}s",
        with.response.usage.output_tokens,
        with.gen_time.as_secs_f64(),
        with.drafted_tokens,
        with.accepted_tokens,
        without.gen_time.as_secs_f64()
    );
    assert_eq!(without.drafted_tokens, 0);
    assert_eq!(with.response.text, without.response.text);
    assert!(
        with.response
            .text
            .contains("return max(numbers) - min(numbers)"),
        "{}",
        with.response.text
    );
    // The copied part (about 90 tokens) is confirmed from drafts.
    assert!(with.accepted_tokens >= 60, "{}", with.accepted_tokens);
}
