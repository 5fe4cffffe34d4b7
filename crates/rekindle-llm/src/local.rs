//! The embedded engine (feature `local`): llama.cpp, through `llama-cpp-2`, running a GGUF file
//! in this process.
//!
//! The model is loaded once per [`LocalProvider`] and shared by its calls. One context is kept
//! between calls: a call whose prompt starts with tokens the context already holds (the same
//! system prompt and spec, a fix after its implement call, a reformat request after its reply)
//! reads only the rest of the prompt, and reports the reused tokens as `cached_tokens`. Messages
//! go through the chat template stored in the GGUF, and decoding is greedy unless the request
//! asks for a temperature. A reply that starts repeating itself is cut ([`crate::runaway`]).
//! [`Constraint::FileBlocks`] is enforced with the GBNF grammar [`file_blocks::GRAMMAR`].
//!
//! All llama.cpp work runs on one long-lived thread of the process ([`on_inference_thread`]),
//! one job at a time: llama.cpp (built with OpenMP) keeps a team of spinning worker threads per
//! calling thread, and two teams fight for the cores (a quarter of the speed lost on 2 cores).
//! Text is streamed to the [`TokenSink`] through a channel; dropping the `complete` future stops
//! the generation at the next token.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use crate::models::{self, ModelSpec};
use crate::{
    file_blocks, Constraint, FinishReason, LlmError, Provider, ProviderKind, Request, Response,
    TokenSink, Usage,
};

/// Tokens decoded per batch while reading the prompt.
const N_BATCH: u32 = 512;
/// The smallest context a call gets: room for the growing prompts of a functionality's calls,
/// so one context (and its KV cache) serves them all.
const MIN_CTX: u32 = 8192;

/// llama.cpp's process-wide state, initialised once. Its log goes nowhere unless
/// `REKINDLE_LLAMA_LOG` is set.
pub fn backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            if std::env::var_os("REKINDLE_LLAMA_LOG").is_none() {
                b.void_logs();
            }
            Ok(b)
        })
        .as_ref()
        .map_err(|e| LlmError::Local {
            detail: format!("cannot start llama.cpp: {e}"),
        })
}

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_INFERENCE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn inference_queue() -> &'static Mutex<std_mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<std_mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rekindle-llama".into())
            .spawn(move || {
                ON_INFERENCE_THREAD.with(|f| f.set(true));
                for job in rx {
                    // A panicking job drops its reply sender; the caller sees the failure.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("cannot start the inference thread");
        Mutex::new(tx)
    })
}

/// Queues `job` on the inference thread; the receiver gets its result (or is dropped if it
/// panicked).
fn submit<R: Send + 'static>(
    job: impl FnOnce() -> R + Send + 'static,
) -> Result<std_mpsc::Receiver<R>, LlmError> {
    let (tx, rx) = std_mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    inference_queue()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| local("the inference thread is gone"))?;
    Ok(rx)
}

/// Runs `f` on the thread that runs all llama.cpp work, after the jobs queued before it, and
/// waits for its result. Benchmarks use it to drive llama.cpp directly under the same
/// conditions as the provider. Called from that thread, it runs `f` at once.
pub fn on_inference_thread<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, LlmError> {
    if ON_INFERENCE_THREAD.with(|f| f.get()) {
        return Ok(f());
    }
    submit(f)?
        .recv()
        .map_err(|_| local("the inference thread failed (a panic in llama.cpp's caller)"))
}

/// A GGUF model run in this process.
#[derive(Clone)]
pub struct LocalProvider {
    inner: Arc<Inner>,
}

struct Inner {
    /// The context of the last call, with the tokens its KV cache holds. Declared before
    /// `model`, so it is dropped first: the context points into the model.
    kv: Mutex<Option<Kv>>,
    model: LlamaModel,
    path: PathBuf,
    file_name: String,
    threads: i32,
    /// Prompt lookup decoding ([`Lookup`]) in generation.
    lookup: bool,
}

/// A context kept between calls, and the tokens at positions `0..tokens.len()` of its KV cache.
struct Kv {
    ctx: LlamaContext<'static>,
    tokens: Vec<LlamaToken>,
}

/// What one generation did, for benchmarks and progress lines.
#[derive(Clone, Debug)]
pub struct Generation {
    pub response: Response,
    /// Prompt tokens whose KV entries were reused from the call before (a shared prefix).
    pub reused_tokens: usize,
    /// Making the context (when a new one was needed) and reading the uncached prompt tokens.
    pub prompt_time: Duration,
    /// From the first sampled token to the last.
    pub gen_time: Duration,
    /// Tokens proposed by prompt lookup, and how many of them the model confirmed.
    pub drafted_tokens: usize,
    pub accepted_tokens: usize,
}

impl Generation {
    /// Output tokens per second of generation (prompt reading excluded).
    pub fn tokens_per_second(&self) -> f64 {
        let s = self.gen_time.as_secs_f64();
        if s > 0.0 {
            self.response.usage.output_tokens as f64 / s
        } else {
            0.0
        }
    }
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("path", &self.inner.path)
            .field("threads", &self.inner.threads)
            .finish()
    }
}

fn default_threads() -> i32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(4)
}

impl LocalProvider {
    /// Loads the embedded model `spec` from `dir` (see [`models::default_dir`]). Checks the size
    /// (not the SHA-256, which `rekindle model fetch` checked) before loading.
    pub fn open(spec: &ModelSpec, dir: &Path) -> Result<LocalProvider, LlmError> {
        let path = models::path_of(spec, dir);
        models::check_size(&path, spec).map_err(|detail| LlmError::Local { detail })?;
        Self::load_with_hint(&path, &format!("`{}`", spec.fetch_command()))
    }

    /// Loads the GGUF at `path`.
    pub fn load(path: &Path) -> Result<LocalProvider, LlmError> {
        Self::load_with_hint(
            path,
            "`rekindle model fetch` (or `rekindle model fetch small`)",
        )
    }

    fn load_with_hint(path: &Path, fetch: &str) -> Result<LocalProvider, LlmError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(LlmError::Local {
                    detail: format!("{} is not a model file", path.display()),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LlmError::Local {
                    detail: format!(
                        "no model file at {}: run {fetch} to download the embedded model",
                        path.display()
                    ),
                })
            }
            Err(e) => {
                return Err(LlmError::Local {
                    detail: format!("cannot read {}: {e}", path.display()),
                })
            }
        }
        let backend = backend()?;
        let params = LlamaModelParams::default();
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            LlmError::Local {
                detail: format!(
                    "cannot load {} ({e}): it is not a GGUF model llama.cpp can read, perhaps corrupt or incomplete; run {fetch} to download it again",
                    path.display()
                ),
            }
        })?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(LocalProvider {
            inner: Arc::new(Inner {
                kv: Mutex::new(None),
                model,
                path: path.to_path_buf(),
                file_name,
                threads: default_threads(),
                lookup: false,
            }),
        })
    }

    /// Uses `n` threads (default: the available parallelism).
    pub fn with_threads(self, n: usize) -> LocalProvider {
        self.configured("with_threads", |inner| Inner {
            threads: n.clamp(1, 512) as i32,
            ..inner
        })
    }

    /// Turns prompt lookup decoding on or off (default off: on 2 cores a batch that confirms a
    /// draft costs about as much per token as decoding token by token, so refuted drafts made
    /// generation slower; see [`Lookup`]).
    pub fn with_lookup(self, on: bool) -> LocalProvider {
        self.configured("with_lookup", |inner| Inner {
            lookup: on,
            ..inner
        })
    }

    /// The provider with its settings changed by `f`; only before it is shared (`what` names
    /// the caller in the panic).
    fn configured(self, what: &str, f: impl FnOnce(Inner) -> Inner) -> LocalProvider {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("{what} must be called before the provider is shared"));
        LocalProvider {
            inner: Arc::new(f(inner)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn threads(&self) -> i32 {
        self.inner.threads
    }

    /// The loaded model (for benchmarks that drive llama.cpp directly).
    pub fn model(&self) -> &LlamaModel {
        &self.inner.model
    }

    /// The prompt tokens a request is read as: its messages through the model's chat template.
    pub fn prompt_tokens(&self, req: &Request) -> Result<Vec<LlamaToken>, LlmError> {
        self.inner.prompt_tokens(req)
    }

    /// The context size a call with this many prompt tokens and `max_tokens` gets.
    pub fn context_size(&self, n_prompt: usize, max_tokens: u32) -> u32 {
        self.inner.context_size(n_prompt, max_tokens)
    }

    /// Context parameters as every call uses them.
    pub fn context_params(&self, n_ctx: u32) -> LlamaContextParams {
        self.inner.context_params(n_ctx)
    }

    /// Runs one request, blocking the calling thread until it is done, giving text to `on_text`
    /// as it is generated (on the calling thread).
    pub fn complete_blocking(
        &self,
        req: &Request,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, LlmError> {
        if ON_INFERENCE_THREAD.with(|f| f.get()) {
            return self.inner.generate(req, on_text, None);
        }
        let inner = self.inner.clone();
        let req = req.clone();
        let (tx, rx) = std_mpsc::channel::<String>();
        let done = submit(move || {
            inner.generate(
                &req,
                &mut |text| {
                    let _ = tx.send(text.to_string());
                },
                None,
            )
        })?;
        // The channel closes when the generation ends and drops its sender.
        for text in rx {
            on_text(&text);
        }
        done.recv()
            .map_err(|_| local("the inference thread failed (a panic in llama.cpp's caller)"))?
    }
}

/// Sets the flag when the `complete` future ends or is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn describe(&self) -> String {
        format!(
            "the embedded llama.cpp engine with {}",
            self.inner.path.display()
        )
    }

    async fn complete(
        &self,
        req: &Request,
        sink: &mut dyn TokenSink,
    ) -> Result<Response, LlmError> {
        let inner = self.inner.clone();
        let req = req.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job = move || {
            let result = inner.generate(
                &req,
                &mut |text| {
                    let _ = tx.send(text.to_string());
                },
                Some(&cancel),
            );
            let _ = done_tx.send(result);
        };
        if ON_INFERENCE_THREAD.with(|f| f.get()) {
            return Err(local(
                "`complete` cannot be awaited on the inference thread",
            ));
        }
        submit(job)?;
        // The channel closes when the generation ends and drops its sender.
        while let Some(text) = rx.recv().await {
            sink.token(&text);
        }
        let generation = done_rx
            .await
            .map_err(|_| local("the inference thread failed (a panic in llama.cpp's caller)"))??;
        Ok(generation.response)
    }
}

fn local(detail: impl Into<String>) -> LlmError {
    LlmError::Local {
        detail: detail.into(),
    }
}

impl Inner {
    fn prompt_tokens(&self, req: &Request) -> Result<Vec<LlamaToken>, LlmError> {
        let prompt = self.render(req)?;
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        if vocab.should_add_bos() && tokens.first() != Some(&vocab.bos()) {
            tokens.insert(0, vocab.bos());
        }
        if tokens.is_empty() {
            return Err(local("the prompt is empty"));
        }
        Ok(tokens)
    }

    /// The messages through the GGUF's chat template (ChatML when it has none).
    fn render(&self, req: &Request) -> Result<String, LlmError> {
        let template = match self.model.chat_template(None) {
            Ok(t) => t,
            Err(_) => LlamaChatTemplate::new("chatml").map_err(|e| local(e.to_string()))?,
        };
        let messages = req
            .messages
            .iter()
            .map(|m| {
                let role = m.role.as_str();
                LlamaChatMessage::new(role.to_string(), m.content.clone())
                    .map_err(|e| local(format!("a message cannot be given to the model: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.model
            .apply_chat_template(&template, &messages, true)
            .map_err(|e| local(format!("cannot apply the model's chat template: {e}")))
    }

    fn context_size(&self, n_prompt: usize, max_tokens: u32) -> u32 {
        let want = (n_prompt as u64 + max_tokens as u64 + 16).max(MIN_CTX as u64);
        let train = self.model.n_ctx_train().max(1) as u64;
        want.min(train) as u32
    }

    fn context_params(&self, n_ctx: u32) -> LlamaContextParams {
        LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(N_BATCH)
            .with_n_ubatch(N_BATCH)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads)
    }

    fn generate(
        &self,
        req: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation, LlmError> {
        // The cached context is taken out for the call and put back only when the call ends
        // normally: after an error or a cancel its KV cache holds unknown tokens.
        let cached = self.kv.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (generation, kv) = self.generate_with(req, on_text, cancel, cached)?;
        *self.kv.lock().unwrap_or_else(|p| p.into_inner()) = Some(kv);
        Ok(generation)
    }

    fn generate_with(
        &self,
        req: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: Option<&AtomicBool>,
        cached: Option<Kv>,
    ) -> Result<(Generation, Kv), LlmError> {
        let cancelled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        if cancelled() {
            return Err(local("cancelled"));
        }
        let start = Instant::now();
        let backend = backend()?;
        let tokens = self.prompt_tokens(req)?;
        let n_prompt = tokens.len();
        let n_ctx = self.context_size(n_prompt, req.sampling.max_tokens);
        if n_prompt + 1 >= n_ctx as usize {
            return Err(local(format!(
                "the prompt has {n_prompt} tokens, more than the model's context of {n_ctx} allows"
            )));
        }
        let max_new = (req.sampling.max_tokens as usize).min(n_ctx as usize - n_prompt);

        // Reuse the last call's context when it is big enough: its KV entries for the prompt's
        // longest common prefix stay, the rest is dropped. At least the last prompt token is
        // read again, for its logits.
        let mut kv = match cached {
            Some(mut kv) if kv.ctx.n_ctx() >= n_ctx => {
                let common = kv
                    .tokens
                    .iter()
                    .zip(&tokens)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(n_prompt - 1);
                let dropped = kv
                    .ctx
                    .clear_kv_cache_seq(Some(0), Some(common as u32), None)
                    .unwrap_or(false);
                if dropped {
                    kv.tokens.truncate(common);
                    kv
                } else {
                    kv.ctx.clear_kv_cache();
                    kv.tokens.clear();
                    kv
                }
            }
            other => {
                drop(other);
                let ctx = self
                    .model
                    .new_context(backend, self.context_params(n_ctx))
                    .map_err(|e| {
                        local(format!(
                            "cannot make a context of {n_ctx} tokens ({e}): out of memory?"
                        ))
                    })?;
                // SAFETY: the context points into `self.model`, which lives in the same `Inner`
                // (behind an `Arc`, so it never moves) and is dropped after `self.kv`, the only
                // place a `Kv` is kept beyond this call.
                let ctx: LlamaContext<'static> = unsafe { std::mem::transmute(ctx) };
                Kv {
                    ctx,
                    tokens: Vec::new(),
                }
            }
        };
        let reused = kv.tokens.len();

        // Read the rest of the prompt.
        let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
        let mut last = 0i32;
        for chunk in tokens[reused..].chunks(N_BATCH as usize) {
            if cancelled() {
                return Err(local("cancelled"));
            }
            batch.clear();
            for &t in chunk {
                let pos = kv.tokens.len();
                batch
                    .add(t, pos as i32, &[0], pos == n_prompt - 1)
                    .map_err(|e| local(e.to_string()))?;
                kv.tokens.push(t);
            }
            kv.ctx
                .decode(&mut batch)
                .map_err(|e| local(format!("llama.cpp failed reading the prompt: {e}")))?;
            last = batch.n_tokens() - 1;
        }
        let prompt_time = start.elapsed();

        let mut sampler = Sampler::new(&self.model, req)?;
        let vocab = self.model.vocab();
        let stops: Vec<&str> = req
            .sampling
            .stop
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let mut emit = Emit {
            out: TextOut::new(stops),
            // A small model at greedy decoding can fall into repeating itself; the guard ends
            // the reply where the repetition began (see `runaway`).
            guard: matches!(
                req.constraint,
                Some(Constraint::FileBlocks) | Some(Constraint::Text)
            )
            .then(crate::runaway::Guard::new),
            cut: None,
            n_out: 0,
        };
        let mut lookup = self.lookup.then(Lookup::new);
        // A token sampled (and accepted by the samplers) but not yet given out: the one that
        // refuted a draft.
        let mut pending: Option<LlamaToken> = None;
        let gen_start = Instant::now();
        let finish = 'gen: loop {
            if emit.n_out >= max_new {
                break FinishReason::Length;
            }
            if cancelled() {
                return Err(local("cancelled"));
            }
            let token = match pending.take() {
                Some(t) => t,
                None => sampler.sample(&kv.ctx, last)?,
            };
            if let Some(finish) = emit.push(token, &vocab, on_text) {
                break finish;
            }
            if emit.n_out >= max_new {
                break FinishReason::Length;
            }
            // The token goes into the KV cache, with the draft (if any) after it, in one batch:
            // the logits of every position say which draft tokens the model itself would
            // have chosen.
            let pos = kv.tokens.len();
            kv.tokens.push(token);
            let draft = match &mut lookup {
                Some(l) => l.draft(&kv.tokens, max_new - emit.n_out),
                None => Vec::new(),
            };
            batch.clear();
            for (i, &t) in std::iter::once(&token).chain(&draft).enumerate() {
                batch
                    .add(t, (pos + i) as i32, &[0], true)
                    .map_err(|e| local(e.to_string()))?;
            }
            kv.ctx
                .decode(&mut batch)
                .map_err(|e| local(format!("llama.cpp failed generating: {e}")))?;
            kv.tokens.extend_from_slice(&draft);
            last = 0;
            let mut taken = 0;
            while taken < draft.len() {
                let chosen = sampler.sample(&kv.ctx, taken as i32)?;
                if chosen != draft[taken] {
                    pending = Some(chosen);
                    break;
                }
                taken += 1;
                if let Some(finish) = emit.push(chosen, &vocab, on_text) {
                    break 'gen finish;
                }
                if emit.n_out >= max_new {
                    break 'gen FinishReason::Length;
                }
            }
            if let Some(l) = &mut lookup {
                l.verified(draft.len(), taken);
            }
            if taken < draft.len() {
                // The refuted tokens leave the cache; the sampled one comes next.
                let keep = pos + 1 + taken;
                let dropped = kv
                    .ctx
                    .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
                    .unwrap_or(false);
                if !dropped {
                    return Err(local("llama.cpp could not drop refuted draft tokens"));
                }
                kv.tokens.truncate(keep);
            } else {
                last = draft.len() as i32;
            }
        };
        let n_out = emit.n_out;
        let cut = emit.cut.map(|c| c.why);
        let out = emit.out;
        let gen_time = gen_start.elapsed();
        let text = out.finish(on_text);
        let generation = Generation {
            response: Response {
                text,
                usage: Usage {
                    input_tokens: n_prompt as u64,
                    output_tokens: n_out as u64,
                    cached_tokens: reused as u64,
                },
                finish_reason: finish,
                request_id: None,
                model: self.file_name.clone(),
                cut,
            },
            reused_tokens: reused,
            prompt_time,
            gen_time,
            drafted_tokens: lookup.as_ref().map_or(0, |l| l.drafted),
            accepted_tokens: lookup.as_ref().map_or(0, |l| l.accepted),
        };
        Ok((generation, kv))
    }
}

/// Gives out generated tokens as text, and says when the reply ends: an end-of-generation
/// token, a stop string, or the runaway guard's cut.
struct Emit<'a> {
    out: TextOut<'a>,
    guard: Option<crate::runaway::Guard>,
    /// Where and why the guard cut the reply.
    cut: Option<crate::runaway::Cut>,
    n_out: usize,
}

impl Emit<'_> {
    fn push(
        &mut self,
        token: LlamaToken,
        vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
        on_text: &mut dyn FnMut(&str),
    ) -> Option<FinishReason> {
        if vocab.is_eog(token) {
            return Some(FinishReason::Stop);
        }
        self.n_out += 1;
        let piece = vocab.token_to_piece(token, false, None);
        if self.out.push(&piece, on_text) {
            return Some(FinishReason::Stop);
        }
        if let Some(g) = &mut self.guard {
            if let Some(cut) = g.check(&self.out.text) {
                self.out.text = crate::runaway::apply(&self.out.text, &cut);
                self.out.streamed = self.out.streamed.min(cut.at);
                self.out.pending.clear();
                self.cut = Some(cut);
                return Some(FinishReason::Repetition);
            }
        }
        None
    }
}

/// The shortest and longest run of tokens [`Lookup`] matches.
const LOOKUP_NGRAM: std::ops::RangeInclusive<usize> = 2..=4;
/// The most tokens one draft proposes.
const DRAFT_MAX: usize = 16;

/// Prompt lookup decoding: a reply often copies what it has read (a file it fixes, the
/// signature and examples of the spec, the lines of the test before), so the tokens that
/// followed the last earlier occurrence of the reply's last few tokens are a likely
/// continuation. They are proposed as a draft, read in one batch with the token before them,
/// and kept as far as the model, sampling as it would have token by token, agrees; the first
/// token it disagrees on is the one it chose. The reply is the one the model would have given
/// token by token (up to llama.cpp's batch arithmetic), and costs one batch per accepted run.
/// Draft length adapts: it doubles after a draft fully accepted and falls back to what was
/// accepted (plus one) after one refuted, so text the model writes anew costs little.
///
/// Off by default ([`LocalProvider::with_lookup`], `REKINDLE_LOCAL_LOOKUP=1`): on this project's
/// 2-core machines a batch of a few tokens costs about 85% of a single token's step per token,
/// so a draft pays only when nearly all of it is confirmed; measured on six real requests of the
/// multi-functionality set with the 1.5B, generation took 51.1 s with lookup and 45.0 s without.
struct Lookup {
    next_len: usize,
    drafted: usize,
    accepted: usize,
}

impl Lookup {
    fn new() -> Lookup {
        Lookup {
            next_len: 4,
            drafted: 0,
            accepted: 0,
        }
    }

    /// A draft to follow `history` (the prompt and the reply so far), at most `room` tokens.
    fn draft(&mut self, history: &[LlamaToken], room: usize) -> Vec<LlamaToken> {
        let d = lookup(history, self.next_len.min(room));
        self.drafted += d.len();
        d
    }

    fn verified(&mut self, drafted: usize, taken: usize) {
        if drafted == 0 {
            return;
        }
        self.accepted += taken;
        self.next_len = if taken == drafted {
            (drafted * 2).min(DRAFT_MAX)
        } else {
            taken + 1
        };
    }
}

/// The tokens that followed the last earlier occurrence of `history`'s last n tokens (the
/// longest n of [`LOOKUP_NGRAM`] that occurs), at most `max` of them.
fn lookup(history: &[LlamaToken], max: usize) -> Vec<LlamaToken> {
    if max == 0 {
        return Vec::new();
    }
    for n in LOOKUP_NGRAM.rev() {
        if history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        let found = (0..history.len() - n)
            .rev()
            .find(|&at| &history[at..at + n] == tail);
        if let Some(at) = found {
            let from = at + n;
            let to = (from + max).min(history.len());
            return history[from..to].to_vec();
        }
    }
    Vec::new()
}

/// Picks tokens: greedy or temperature/top-p with a seed, optionally under a grammar.
struct Sampler {
    /// Greedy: the token of the highest logit, read straight from the logits (see `sample`).
    greedy: bool,
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
}

impl Sampler {
    fn new(model: &LlamaModel, req: &Request) -> Result<Sampler, LlmError> {
        let s = &req.sampling;
        let greedy = s.temperature <= 0.0;
        let chain = if greedy {
            LlamaSampler::greedy()
        } else {
            let seed = match s.seed {
                Some(seed) => (seed ^ (seed >> 32)) as u32,
                None => fastrand::u32(..),
            };
            let mut parts = Vec::new();
            if let Some(p) = s.top_p.filter(|p| *p > 0.0 && *p < 1.0) {
                parts.push(LlamaSampler::top_p(p, 1));
            }
            parts.push(LlamaSampler::temp(s.temperature));
            parts.push(LlamaSampler::dist(seed));
            LlamaSampler::chain_simple(parts)
        };
        let grammar = match req.constraint {
            Some(Constraint::FileBlocks) => Some(
                LlamaSampler::grammar(model, file_blocks::GRAMMAR, "root")
                    .map_err(|e| local(format!("the file-block grammar was refused: {e}")))?,
            ),
            Some(Constraint::Text) | None => None,
        };
        Ok(Sampler {
            greedy,
            chain,
            grammar,
        })
    }

    fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Result<LlamaToken, LlmError> {
        // Greedy picks the highest logit, the first of equal ones, as llama.cpp's greedy
        // sampler does; read from the logits, without the copy of the whole vocabulary (152k
        // entries) that a token data array is: sampling so took 1-3% of a render's generation
        // time (0.17 s of 5.97 s in hello-world's first call).
        if !self.greedy && self.grammar.is_none() {
            // `sample` also accepts the token into the chain.
            return Ok(self.chain.sample(ctx, idx));
        }
        let (first, logit) = if self.greedy {
            let (i, logit) = argmax(ctx.get_logits_ith(idx));
            (LlamaToken::new(i as i32), logit)
        } else {
            let mut all = ctx.token_data_array_ith(idx);
            all.apply_sampler(&mut self.chain);
            let first = all
                .selected_token()
                .ok_or_else(|| local("the sampler chose no token"))?;
            let logit = all
                .data
                .iter()
                .find(|d| d.id() == first)
                .map_or(0.0, |d| d.logit());
            (first, logit)
        };
        let Some(grammar) = &mut self.grammar else {
            // Greedy has no state to accept the token into.
            return Ok(first);
        };
        // As llama.cpp's own sampler does: pick without the grammar, and only when the grammar
        // refuses that token, apply it to the whole vocabulary and pick again. Most tokens pass,
        // and the grammar over the whole vocabulary is the slow part.
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(first, logit, 1.0)], false);
        one.apply_sampler(grammar);
        let token = if one.data[0].logit().is_finite() {
            first
        } else {
            let mut all = ctx.token_data_array_ith(idx);
            all.apply_sampler(grammar);
            all.apply_sampler(&mut self.chain);
            all.selected_token()
                .ok_or_else(|| local("the grammar left no token to choose"))?
        };
        grammar.accept(token);
        self.chain.accept(token);
        Ok(token)
    }
}

/// The index and value of the highest logit, the first of equal ones (llama.cpp's greedy rule).
fn argmax(logits: &[f32]) -> (usize, f32) {
    let mut best = (0, logits.first().copied().unwrap_or(f32::NEG_INFINITY));
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > best.1 {
            best = (i, l);
        }
    }
    best
}

/// Generated bytes to text: whole UTF-8 characters only, stop strings cut off, and text held
/// back from the stream while it might still become a stop string.
struct TextOut<'a> {
    stops: Vec<&'a str>,
    hold: usize,
    pending: Vec<u8>,
    text: String,
    streamed: usize,
}

impl<'a> TextOut<'a> {
    fn new(stops: Vec<&'a str>) -> TextOut<'a> {
        let hold = stops.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
        TextOut {
            stops,
            hold,
            pending: Vec::new(),
            text: String::new(),
            streamed: 0,
        }
    }

    /// Adds a token's bytes; true when a stop string was reached (the text ends before it).
    fn push(&mut self, bytes: &[u8], on_text: &mut dyn FnMut(&str)) -> bool {
        let before = self.text.len();
        self.pending.extend_from_slice(bytes);
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    self.text
                        .push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or(""));
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        if !self.stops.is_empty() {
            let from = floor_char(&self.text, before.saturating_sub(self.hold));
            let found = self
                .stops
                .iter()
                .filter_map(|s| self.text[from..].find(s))
                .min();
            if let Some(at) = found {
                self.text.truncate(from + at);
                self.pending.clear();
                return true;
            }
        }
        let upto = floor_char(&self.text, self.text.len().saturating_sub(self.hold));
        if upto > self.streamed {
            on_text(&self.text[self.streamed..upto]);
            self.streamed = upto;
        }
        false
    }

    fn finish(mut self, on_text: &mut dyn FnMut(&str)) -> String {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&self.pending).into_owned();
            self.text.push_str(&rest);
        }
        if self.text.len() > self.streamed {
            on_text(&self.text[self.streamed..]);
        }
        self.text
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The greedy pick read from the logits is llama.cpp's greedy sampler's, ties included.
    #[test]
    fn argmax_picks_what_llama_cpp_greedy_picks() {
        let mut rng = fastrand::Rng::with_seed(7);
        let cases: Vec<Vec<f32>> = vec![
            vec![0.5],
            vec![1.0, 3.0, 3.0, 2.0],
            vec![-2.0, -1.0, -1.0],
            vec![f32::NEG_INFINITY, -5.0, f32::NEG_INFINITY],
            // Logits in coarse steps, so that the maximum is often shared.
            (0..50_000).map(|_| rng.i32(-40..40) as f32 / 4.0).collect(),
            (0..151_936).map(|_| rng.f32() * 30.0 - 15.0).collect(),
        ];
        for logits in cases {
            let data = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| LlamaTokenData::new(LlamaToken::new(i as i32), l, 0.0))
                .collect();
            let mut array = LlamaTokenDataArray::new(data, false);
            array.apply_sampler(&mut LlamaSampler::greedy());
            let theirs = array.selected_token().unwrap();
            let (ours, logit) = argmax(&logits);
            assert_eq!(
                LlamaToken::new(ours as i32),
                theirs,
                "{:?}",
                &logits[..logits.len().min(4)]
            );
            assert_eq!(logit, logits[ours]);
        }
    }

    #[test]
    fn lookup_proposes_what_followed_the_last_occurrence_of_the_tail() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken::new(i)).collect::<Vec<_>>();
        // `1 2 3` occurred before, followed by `4 5 6 7`.
        let h = t(&[9, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3]);
        assert_eq!(super::lookup(&h, 3), t(&[4, 5, 6]));
        assert_eq!(super::lookup(&h, 0), t(&[]));
        // The last occurrence wins, and a draft stops where the history does.
        let h = t(&[1, 2, 7, 1, 2, 8, 9, 1, 2]);
        assert_eq!(super::lookup(&h, 10), t(&[8, 9, 1, 2]));
        // A longer match wins over a later shorter one: `5 1 2` occurred once, followed by 3.
        let h = t(&[5, 1, 2, 3, 1, 2, 4, 5, 1, 2]);
        assert_eq!(super::lookup(&h, 1), t(&[3]));
        // A tail seen nowhere else: no draft.
        assert!(super::lookup(&t(&[1, 2, 3, 4]), 5).is_empty());
    }

    #[test]
    fn drafts_grow_while_confirmed_and_shrink_when_refuted() {
        let mut l = super::Lookup::new();
        assert_eq!(l.next_len, 4);
        l.verified(4, 4);
        assert_eq!(l.next_len, 8);
        l.verified(8, 8);
        l.verified(16, 16);
        assert_eq!(l.next_len, super::DRAFT_MAX);
        l.verified(16, 2);
        assert_eq!(l.next_len, 3);
        l.verified(3, 0);
        assert_eq!(l.next_len, 1);
        assert_eq!(l.accepted, 4 + 8 + 16 + 2);
    }

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, String, bool) {
        let mut out = TextOut::new(stops.to_vec());
        let mut streamed = String::new();
        let mut stopped = false;
        for p in pieces {
            if out.push(p, &mut |t| streamed.push_str(t)) {
                stopped = true;
                break;
            }
        }
        let text = out.finish(&mut |t| streamed.push_str(t));
        (text, streamed, stopped)
    }

    #[test]
    fn utf8_split_across_tokens() {
        let e = "é".as_bytes();
        let (text, streamed, _) = run(&[], &[b"caf", &e[..1], &e[1..], b"!"]);
        assert_eq!(text, "café!");
        assert_eq!(streamed, text);
        let (text, _, _) = run(&[], &[b"a\xffb"]);
        assert_eq!(text, "a\u{FFFD}b");
    }

    #[test]
    fn stop_strings_are_cut_and_never_streamed() {
        let (text, streamed, stopped) = run(&["END"], &[b"hello E", b"N", b"D more"]);
        assert!(stopped);
        assert_eq!(text, "hello ");
        assert_eq!(streamed, "hello ");
        let (text, streamed, stopped) = run(&["END"], &[b"hello EN", b"x"]);
        assert!(!stopped);
        assert_eq!(
            (text.as_str(), streamed.as_str()),
            ("hello ENx", "hello ENx")
        );
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = LocalProvider::load(&dir.path().join("none.gguf")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("none.gguf") && msg.contains("rekindle model fetch"),
            "{msg}"
        );
        let small = models::spec("small").unwrap();
        let msg = LocalProvider::open(small, dir.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("rekindle model fetch small"), "{msg}");
    }

    #[test]
    fn a_corrupt_model_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.gguf");
        std::fs::write(&p, b"GGUF\x03\x00\x00\x00garbage that is not a model").unwrap();
        let msg = LocalProvider::load(&p).unwrap_err().to_string();
        assert!(
            msg.contains("bad.gguf") && msg.contains("rekindle model fetch"),
            "{msg}"
        );
    }
}
