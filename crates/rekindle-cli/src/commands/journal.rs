//! `rekindle journal verify`: check the hash-chained provenance journal.

use crate::args::Format;
use crate::exit::{CmdResult, ExitStatus};
use crate::load;
use rekindle_ledger::journal::Journal;
use rekindle_workspace::layout::ProjectLayout;
use serde_json::json;
use std::path::Path;

pub fn verify(spec: Option<&Path>, format: Format) -> CmdResult {
    let spec = load::spec_or_default(spec);
    let journal = Journal::new(ProjectLayout::for_spec(&spec).journal());
    let json_out = format == Format::Json;
    match journal.verify(None) {
        Ok(v) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "journal": journal.path.display().to_string(), "entries": v.entries, "head": v.head})
                );
            } else {
                println!(
                    "journal ok: {} ({} entries, head {})",
                    journal.path.display(),
                    v.entries,
                    &v.head[..16.min(v.head.len())]
                );
            }
            Ok(ExitStatus::Success)
        }
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
            Ok(ExitStatus::Failure)
        }
    }
}
