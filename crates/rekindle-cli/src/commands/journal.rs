//! `rekindle journal verify`: check the hash-chained provenance journal, and every anchor of its
//! head that was committed elsewhere: `journal-head` in rekindle.lock and the
//! `Rekindle-Journal-Head` trailer of each render commit in the build repositories. A journal
//! whose chain was recomputed, or whose tail was cut together with its head file, still chains;
//! the anchors it no longer holds give it away.

use crate::args::Format;
use crate::exit::{CmdResult, ExitStatus};
use crate::load;
use rekindle_ledger::journal::{Journal, GENESIS};
use rekindle_ledger::lock::Lock;
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::{BuildLayout, ProjectLayout};
use rekindle_workspace::trailers::Trailers;
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;

/// One place the head was anchored, and what was found there.
#[derive(Serialize)]
struct Anchor {
    /// `rekindle.lock`, or a build repository's folder.
    place: String,
    /// Anchors found there, and how many of them are not entries of the chain.
    anchors: usize,
    missing: usize,
    /// The first anchor the chain does not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_missing: Option<String>,
}

pub fn verify(spec: Option<&Path>, format: Format) -> CmdResult {
    let spec = load::spec_or_default(spec);
    let layout = ProjectLayout::for_spec(&spec);
    let journal = Journal::new(layout.journal());
    let json_out = format == Format::Json;
    let v = match journal.verify(None) {
        Ok(v) => v,
        Err(b) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "journal": journal.path.display().to_string(), "line": b.line, "seq": b.seq, "reason": b.reason})
                );
            } else {
                let seq = b.seq.map(|s| format!(" (entry {s})")).unwrap_or_default();
                eprintln!(
                    "error: journal {} is broken at line {}{seq}: {}",
                    journal.path.display(),
                    b.line,
                    b.reason
                );
            }
            return Ok(ExitStatus::Failure);
        }
    };
    let chain: HashSet<String> = v
        .hashes
        .iter()
        .cloned()
        .chain(std::iter::once(GENESIS.to_string()))
        .collect();
    let (anchors, unchecked, lock_error) = anchors(&spec, &layout, &chain);
    // Every conversation the journal names must still be stored as it was.
    let store = rekindle_ledger::conversation::Store::new(layout.conversations());
    let mut conversations = 0usize;
    let mut conversation_errors = Vec::new();
    for r in journal.records() {
        if let rekindle_ledger::record::Record::Conversation(c) = r {
            conversations += 1;
            if let Err(e) = store.load(&c.id) {
                conversation_errors.push(e);
            }
        }
    }
    let broken = anchors.iter().any(|a| a.missing > 0)
        || lock_error.is_some()
        || !conversation_errors.is_empty();
    if json_out {
        println!(
            "{}",
            json!({
                "ok": !broken,
                "journal": journal.path.display().to_string(),
                "entries": v.entries,
                "head": v.head,
                "anchors": anchors,
                "unchecked": unchecked,
                "lock_error": lock_error,
                "conversations": conversations,
                "conversation_errors": conversation_errors,
            })
        );
    } else {
        if broken {
            let why = if anchors.iter().any(|a| a.missing > 0) || lock_error.is_some() {
                "it is not the journal that was anchored"
            } else {
                "a conversation it records was changed or removed"
            };
            eprintln!(
                "error: journal {} chains ({} entries), but {why}:",
                journal.path.display(),
                v.entries
            );
        } else {
            println!(
                "journal ok: {} ({} entries, head {})",
                journal.path.display(),
                v.entries,
                &v.head[..16.min(v.head.len())]
            );
        }
        if let Some(e) = &lock_error {
            eprintln!("  rekindle.lock cannot be read: {e}");
        }
        for e in &conversation_errors {
            eprintln!("  {e}");
        }
        if conversations > 0 && conversation_errors.is_empty() {
            println!("  {conversations} conversation(s) stored as recorded");
        }
        for a in &anchors {
            match &a.first_missing {
                Some(h) => eprintln!(
                    "  {}: {} of {} anchors are not in the journal (first: {}); the journal was rewritten or cut",
                    a.place,
                    a.missing,
                    a.anchors,
                    &h[..16.min(h.len())]
                ),
                None => println!("  {}: {} anchor(s) found in the journal", a.place, a.anchors),
            }
        }
        for u in &unchecked {
            println!("  not checked: {u}");
        }
    }
    Ok(if broken {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The anchors of the journal's head in rekindle.lock and the build repositories, checked
/// against `chain` (the hashes of its entries); the places that could not be checked, and a
/// lock that cannot be read.
fn anchors(
    spec: &Path,
    layout: &ProjectLayout,
    chain: &HashSet<String>,
) -> (Vec<Anchor>, Vec<String>, Option<String>) {
    let mut out = Vec::new();
    let mut unchecked = Vec::new();
    let mut lock_error = None;
    let check = |place: String, heads: Vec<String>| {
        let missing: Vec<&String> = heads.iter().filter(|h| !chain.contains(*h)).collect();
        Anchor {
            place,
            anchors: heads.len(),
            missing: missing.len(),
            first_missing: missing.first().map(|h| h.to_string()),
        }
    };
    match Lock::read(&layout.lock()) {
        Ok(Some(lock)) => match lock.journal_head {
            Some(h) => out.push(check("rekindle.lock".into(), vec![h])),
            None => {
                unchecked.push("rekindle.lock has no journal-head (written before anchors)".into())
            }
        },
        Ok(None) => unchecked.push("rekindle.lock does not exist".into()),
        Err(e) => lock_error = Some(e.to_string()),
    }
    let (settings, _, _) = load::settings_for(Some(spec));
    let build = settings.build_folder.clone();
    let Ok(modules) = std::fs::read_dir(&build) else {
        unchecked.push(format!(
            "the build folder {} does not exist (its commits carry anchors too)",
            build.display()
        ));
        return (out, unchecked, lock_error);
    };
    let mut names: Vec<String> = modules
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let build_layout = BuildLayout::new(&build);
    for name in names {
        let m = build_layout.module(&name);
        for dir in [m.code, m.tests] {
            let repo = Repo::new(&dir);
            if !repo.exists() {
                continue;
            }
            let Ok(log) = repo.log() else {
                unchecked.push(format!("{}: its history cannot be read", dir.display()));
                continue;
            };
            let heads: Vec<String> = log
                .iter()
                .filter_map(Trailers::of)
                .filter_map(|t| t.journal_head)
                .collect();
            if !heads.is_empty() {
                out.push(check(dir.display().to_string(), heads));
            }
        }
    }
    (out, unchecked, lock_error)
}
