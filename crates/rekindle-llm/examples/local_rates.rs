//! The embedded engine's two rates, as a render's model time is predicted from them: prompt
//! tokens read per second (a fresh context, a prompt of a render's size, read in the provider's
//! batches) and tokens generated per second (greedy, unconstrained). Prints one JSON object.
//!
//! ```text
//! cargo run --release -p rekindle-llm --features local --example local_rates -- \
//!     --model PATH [--rounds 3] [--prompt-tokens 600] [--max-tokens 128]
//! ```
//!
//! Runs a minimal llama-cpp-2 loop (as llama.cpp's `simple` example) on the provider's
//! inference thread, so the rates are the engine's, not the provider's.

use std::time::Instant;

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use rekindle_llm::local::{backend, on_inference_thread, LocalProvider};
use rekindle_llm::{Message, Request};

const PARAGRAPH: &str = "A console program reads lines of text from standard input, counts the \
words, lines and bytes in them, and prints the three counts separated by single spaces. Words \
are runs of characters that are not white space. An empty input prints zeros. ";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut model = None;
    let (mut rounds, mut prompt_tokens, mut max_tokens) = (3usize, 600usize, 128u32);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(val()),
            "--rounds" => rounds = val().parse().expect("--rounds N"),
            "--prompt-tokens" => prompt_tokens = val().parse().expect("--prompt-tokens N"),
            "--max-tokens" => max_tokens = val().parse().expect("--max-tokens N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let path = model.expect("--model PATH");
    let provider =
        LocalProvider::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    // A prompt of about `prompt_tokens` tokens through the chat template.
    let mut text = String::new();
    let tokens = loop {
        text.push_str(PARAGRAPH);
        let req = Request::new("local", vec![Message::user(text.clone())]);
        let t = provider.prompt_tokens(&req).unwrap();
        if t.len() >= prompt_tokens {
            break t;
        }
    };
    let n_prompt = tokens.len();
    let p = provider.clone();
    let (prompt_rates, gen_rates) = on_inference_thread(move || {
        let model = p.model();
        let (mut pr, mut gr) = (vec![], vec![]);
        for round in 0..=rounds {
            let n_ctx = p.context_size(n_prompt, max_tokens);
            let mut ctx = model
                .new_context(backend().unwrap(), p.context_params(n_ctx))
                .unwrap();
            let start = Instant::now();
            let mut batch = LlamaBatch::new(512, 1);
            for (c, chunk) in tokens.chunks(512).enumerate() {
                batch.clear();
                for (i, &t) in chunk.iter().enumerate() {
                    let pos = c * 512 + i;
                    batch.add(t, pos as i32, &[0], pos == n_prompt - 1).unwrap();
                }
                ctx.decode(&mut batch).unwrap();
            }
            let prompt_s = start.elapsed().as_secs_f64();
            let mut sampler = LlamaSampler::greedy();
            let mut last = batch.n_tokens() - 1;
            let gen_start = Instant::now();
            let mut n_out = 0;
            let mut pos = n_prompt as i32;
            while n_out < max_tokens {
                let t = sampler.sample(&ctx, last);
                if model.vocab().is_eog(t) {
                    break;
                }
                n_out += 1;
                batch.clear();
                batch.add(t, pos, &[0], true).unwrap();
                ctx.decode(&mut batch).unwrap();
                pos += 1;
                last = 0;
            }
            let gen_s = gen_start.elapsed().as_secs_f64();
            // Round 0 pages the weights in.
            if round > 0 {
                pr.push(n_prompt as f64 / prompt_s);
                gr.push(n_out as f64 / gen_s);
            }
        }
        (pr, gr)
    })
    .unwrap();
    println!(
        "{{\"model\": {:?}, \"threads\": {}, \"prompt_tokens\": {n_prompt}, \"max_tokens\": {max_tokens}, \"rounds\": {rounds}, \"prompt_tokens_per_s\": {:.2}, \"gen_tokens_per_s\": {:.2}}}",
        path,
        provider.threads(),
        median(prompt_rates),
        median(gen_rates)
    );
}
