//! `rekindle cache`: statistics of the response cache, one model call's conversation and reply,
//! and clean-up that never collects what rekindle.lock pins.

use crate::args::{CacheCommand, Format};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::load;
use rekindle_ledger::lock::Lock;
use rekindle_llm::cache::{FindError, Payload};
use rekindle_workspace::layout::ProjectLayout;

pub fn run(command: CacheCommand) -> CmdResult {
    let at = match &command {
        CacheCommand::Stats { at }
        | CacheCommand::Show { at, .. }
        | CacheCommand::Gc { at, .. } => at,
    };
    let dir = match &at.dir {
        Some(d) => d.clone(),
        None => load::settings_for(at.spec.as_deref()).0.cache_dir(),
    };
    let cache = rekindle_llm::cache::Cache::new(&dir);
    match &command {
        CacheCommand::Stats { at } => {
            let s = cache.stats();
            match at.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"dir": dir.display().to_string(), "stats": s})
                ),
                Format::Text => println!(
                    "{}: {} entr{}, {} bytes, {} damaged",
                    dir.display(),
                    s.entries,
                    if s.entries == 1 { "y" } else { "ies" },
                    s.bytes,
                    s.damaged
                ),
            }
        }
        CacheCommand::Show { key, at } => {
            let p = cache.find(key).map_err(|e| match e {
                FindError::NotAKey => CliError::usage(format!(
                    "`{key}` is not the start of a cache key: give at least 6 of its hex digits, as `rekindle why` prints them"
                )),
                FindError::Missing => CliError::usage(format!(
                    "no entry of {} has a key starting with `{key}`",
                    dir.display()
                )),
                FindError::Ambiguous(keys) => CliError::usage(format!(
                    "several entries of {} have keys starting with `{key}` ({}…): give more digits",
                    dir.display(),
                    keys.join(", ")
                )),
                FindError::Unreadable(why) => CliError::failure(why),
            })?;
            match at.format {
                Format::Json => println!("{}", serde_json::json!({"entry": p})),
                Format::Text => print!("{}", shown(&p)),
            }
        }
        CacheCommand::Gc { older_than, at } => {
            // Entries pinned in rekindle.lock are what `render --locked` replays: never collected.
            let spec = load::spec_or_default(at.spec.as_deref());
            let lock_path = ProjectLayout::for_spec(&spec).lock();
            // A lock that cannot be read pins nothing anyone can see: collecting now could
            // delete what it pins, so gc refuses until the lock is mended or removed.
            let lock = Lock::read(&lock_path).map_err(|e| {
                CliError::usage(format!(
                    "{e} ({}): cache gc would not know which replies `render --locked` needs; mend or remove the lock first",
                    lock_path.display()
                ))
            })?;
            let pinned: std::collections::HashSet<String> = lock
                .map(|l| l.pins.into_iter().flat_map(|p| p.cache).collect())
                .unwrap_or_default();
            let r = cache.gc(
                older_than.map(|d| std::time::Duration::from_secs(d * 86_400)),
                &|key| pinned.contains(key),
            );
            match at.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"dir": dir.display().to_string(), "gc": r})
                ),
                Format::Text => println!(
                    "{}: removed {} entr{} ({} bytes), kept {}",
                    dir.display(),
                    r.removed,
                    if r.removed == 1 { "y" } else { "ies" },
                    r.freed_bytes,
                    r.kept
                ),
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// One entry as text: what was asked, message by message, then the reply and its usage.
fn shown(p: &Payload) -> String {
    let r = &p.response;
    let mut out = format!(
        "key {}\n{} {}: {} tokens in ({} reused), {} out, {:?}{}, {:.1}s\n",
        p.key,
        p.provider.as_str(),
        r.model,
        r.usage.input_tokens,
        r.usage.cached_tokens,
        r.usage.output_tokens,
        r.finish_reason,
        r.cut
            .as_deref()
            .map(|c| format!(" (cut: {c})"))
            .unwrap_or_default(),
        p.duration_ms as f64 / 1000.0
    );
    match &p.request {
        Some(req) => {
            out.push_str(&format!(
                "temperature {}, at most {} tokens out{}\n",
                req.sampling.temperature,
                req.sampling.max_tokens,
                req.constraint
                    .as_ref()
                    .map(|c| format!(", constrained to {c:?}"))
                    .unwrap_or_default()
            ));
            for m in &req.messages {
                let role = m.role.as_str();
                out.push_str(&format!("\n=== {role}\n{}\n", m.content.trim_end()));
            }
        }
        None => out.push_str(
            "\n(the request is not stored: the entry was written by a rekindle that did not keep requests)\n",
        ),
    }
    out.push_str(&format!("\n=== reply\n{}\n", r.text.trim_end()));
    out
}
