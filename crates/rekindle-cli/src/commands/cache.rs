//! `rekindle cache`: statistics of the response cache, and clean-up that never collects what
//! rekindle.lock pins.

use crate::args::{CacheCommand, Format};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::load;
use rekindle_ledger::lock::Lock;
use rekindle_workspace::layout::ProjectLayout;

pub fn run(command: CacheCommand) -> CmdResult {
    let at = match &command {
        CacheCommand::Stats { at } | CacheCommand::Gc { at, .. } => at,
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
