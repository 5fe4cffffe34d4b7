//! The render loop's own cost, with an instant in-process model:
//!
//! 1. overhead per functionality: render N functionalities from scratch with trivial test
//!    scripts (`exit 0`), time spent in scripts subtracted;
//! 2. a no-change re-render of a 1,000-functionality spec (every functionality reused, zero
//!    model calls).
//!
//! Prints medians; asserts nothing. `cargo bench -p rekindle-render --bench render_loop`
//! (ROUNDS, N and BIG override the sizes).

use async_trait::async_trait;
use rekindle_llm::meter::{Budget, PriceTable};
use rekindle_llm::session::{Mode, Session};
use rekindle_llm::{
    FinishReason, LlmError, Provider, ProviderKind, Request, Response, TokenSink, Usage,
};
use rekindle_render::{Event, ModelSet, Observer, Options, RoleModel};
use std::path::Path;
use std::time::{Duration, Instant};

/// Answers at once: a file named after a hash of the prompt, so every functionality changes the tree.
struct Instant0;

#[async_trait]
impl Provider for Instant0 {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }
    fn describe(&self) -> String {
        "instant".into()
    }
    async fn complete(&self, req: &Request, _: &mut dyn TokenSink) -> Result<Response, LlmError> {
        let h = blake3::hash(serde_json::to_string(&req.messages).unwrap().as_bytes()).to_hex();
        Ok(Response {
            text: format!("--- FILE: out/{}.txt\n{h}\n--- END FILE\n", &h[..12]),
            usage: Usage::default(),
            finish_reason: FinishReason::Stop,
            request_id: None,
            model: "instant".into(),
            cut: None,
        })
    }
}

#[derive(Default)]
struct ScriptTime(Duration);

impl Observer for ScriptTime {
    fn event(&mut self, e: &Event) {
        if let Event::Script { seconds, .. } = e {
            self.0 += Duration::from_secs_f64(*seconds);
        }
    }
}

fn spec(n: usize) -> String {
    let mut s = String::from("***definitions***\n\n- :Tool: is a command-line tool.\n\n***implementation reqs***\n\n- :Tool: is written in Python.\n\n***functional specs***\n\n");
    for i in 1..=n {
        s.push_str(&format!(
            "- :Tool: should handle case number {i} by printing its square.\n\n"
        ));
    }
    s
}

fn project(dir: &Path, n: usize) -> rekindle_spec::project::Project {
    let file = dir.join("app.plain");
    std::fs::write(&file, spec(n)).unwrap();
    let p =
        rekindle_spec::project::load(&file, &Default::default(), &rekindle_spec::loader::RealFs);
    assert!(!p.has_errors());
    p
}

fn run(
    p: &rekindle_spec::project::Project,
    opts: &Options,
    rt: &tokio::runtime::Runtime,
) -> (Duration, Duration, rekindle_render::Summary) {
    let provider = Instant0;
    let m = || RoleModel {
        provider: &provider,
        model: "instant".into(),
        label: "instant".into(),
    };
    let models = ModelSet {
        code: m(),
        fix: m(),
        tests: m(),
        escalate: None,
    };
    let session = Session::new(None, Mode::Normal, Budget::default(), PriceTable::default());
    let mut obs = ScriptTime::default();
    let t = Instant::now();
    let s = rt
        .block_on(rekindle_render::render(
            p, opts, &models, &session, &mut obs,
        ))
        .unwrap();
    (t.elapsed(), obs.0, s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("ROUNDS", 5);
    let n = env("N", 20);
    let big = env("BIG", 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Overhead per functionality, fresh renders with trivial scripts.
    let mut per = Vec::new();
    for _ in 0..rounds {
        let d = tempfile::tempdir().unwrap();
        let p = project(d.path(), n);
        let ok = d.path().join("ok.sh");
        std::fs::write(&ok, "#!/bin/sh\nexit 0\n").unwrap();
        let mut opts = Options::new(d.path().join("build"));
        opts.unittests_script = Some(ok.clone());
        opts.conformance_tests_script = Some(ok);
        let (total, scripts, s) = run(&p, &opts, &rt);
        assert_eq!(s.rendered, n);
        per.push((total - scripts).as_secs_f64() * 1e3 / n as f64);
    }
    println!(
        "render loop overhead per functionality ({n} functionalities, instant model, scripts excluded, {rounds} rounds): median {:.1} ms",
        median(per)
    );

    // 2. No-change re-render of a big spec.
    let d = tempfile::tempdir().unwrap();
    let p = project(d.path(), big);
    let opts = Options::new(d.path().join("build"));
    let t = Instant::now();
    let (_, _, s) = run(&p, &opts, &rt);
    assert_eq!(s.rendered, big);
    println!(
        "first render of {big} functionalities (instant model, no scripts): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut again = Vec::new();
    for _ in 0..rounds {
        let (total, _, s) = run(&p, &opts, &rt);
        assert_eq!((s.reused, s.model_calls), (big, 0));
        again.push(total.as_secs_f64() * 1e3);
    }
    println!("no-change re-render of {big} functionalities ({rounds} rounds): median {:.0} ms, zero model calls", median(again));
}
