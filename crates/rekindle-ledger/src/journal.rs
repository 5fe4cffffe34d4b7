//! The journal: one JSON object per line, each carrying its sequence number, the hash of the
//! entry before it and its own hash over its canonical JSON (keys sorted, no whitespace), so
//! that any edit, deletion, insertion or reordering breaks the chain at that entry. A truncated
//! tail is caught by comparing with the head recorded beside the journal (`journal.jsonl.head`).
//! Since the head file and the whole chain can both be rewritten, the head is also anchored in
//! what is committed: rekindle.lock (`journal-head`, committed with the spec) and every render
//! commit of the build repositories (the `Rekindle-Journal-Head` trailer, the head when the
//! commit was made). `rekindle journal verify` checks that every anchor it finds is an entry of
//! the chain.

use crate::record::Record;
use rekindle_llm::cache::canonical_json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// The hash the first entry points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(entry: &Map<String, Value>) -> String {
    let mut without = entry.clone();
    without.remove("hash");
    blake3::hash(canonical_json(&Value::Object(without)).as_bytes())
        .to_hex()
        .to_string()
}

/// An entry as read back: its place in the chain and what it records.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    #[serde(flatten)]
    pub record: Record,
}

/// The journal cannot be read or written; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// The journal file, appended to under an exclusive lock.
#[derive(Clone, Debug)]
pub struct Journal {
    pub path: PathBuf,
}

/// Where verification found the chain broken.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    /// 1-based line of the first bad entry (or the line after the last one for a cut-off tail).
    pub line: usize,
    pub seq: Option<u64>,
    pub reason: String,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub entries: u64,
    pub head: String,
    /// Every entry's hash, in order: what an anchor of the head must be one of.
    #[serde(skip)]
    pub hashes: Vec<String>,
}

impl Journal {
    pub fn new(path: impl Into<PathBuf>) -> Journal {
        Journal { path: path.into() }
    }

    /// Beside the journal: the hash of its last entry, so that a cut-off tail is noticed.
    pub fn head_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".head");
        self.path.with_file_name(name)
    }

    /// The head recorded beside the journal, if any.
    pub fn recorded_head(&self) -> Option<String> {
        std::fs::read_to_string(self.head_path())
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The hash of the last entry ([`GENESIS`] for an empty journal): what a commit or a lock
    /// made now anchors.
    pub fn head(&self) -> Result<String, JournalError> {
        self.tail().map(|(hash, _)| hash)
    }

    /// The last entry's hash and the next sequence number (checking only the last line).
    fn tail(&self) -> Result<(String, u64), JournalError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((GENESIS.into(), 0)),
            Err(e) => {
                return Err(JournalError(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )))
            }
        };
        if !text.is_empty() && !text.ends_with('\n') {
            return Err(JournalError(format!(
                "{} ends in the middle of an entry; run `rekindle journal verify`",
                self.path.display()
            )));
        }
        match text.lines().last() {
            None => Ok((GENESIS.into(), 0)),
            Some(l) => {
                #[derive(Deserialize)]
                struct Link {
                    seq: u64,
                    hash: String,
                }
                let e: Link = serde_json::from_str(l).map_err(|e| {
                    JournalError(format!(
                        "the last entry of {} is damaged: {e}",
                        self.path.display()
                    ))
                })?;
                Ok((e.hash, e.seq + 1))
            }
        }
    }

    /// Appends `record`; returns the new entry's hash.
    pub fn append(&self, record: &Record) -> Result<String, JournalError> {
        use std::os::unix::io::AsRawFd;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JournalError(e.to_string()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| JournalError(format!("cannot open {}: {e}", self.path.display())))?;
        // SAFETY: flock on a descriptor we own; released when `file` closes.
        unsafe {
            libc::flock(file.as_raw_fd(), libc::LOCK_EX);
        }
        let (prev, seq) = self.tail()?;
        let Ok(Value::Object(mut m)) = serde_json::to_value(record) else {
            return Err(JournalError("a journal record must be an object".into()));
        };
        m.insert("seq".into(), Value::from(seq));
        m.insert("prev".into(), Value::from(prev));
        let hash = entry_hash(&m);
        m.insert("hash".into(), Value::from(hash.clone()));
        let mut line = canonical_json(&Value::Object(m));
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| JournalError(format!("cannot write {}: {e}", self.path.display())))?;
        let head = self.head_path();
        let tmp = head.with_extension("tmp");
        std::fs::write(&tmp, format!("{hash}\n"))
            .and_then(|()| std::fs::rename(&tmp, &head))
            .map_err(|e| JournalError(format!("cannot write {}: {e}", head.display())))?;
        Ok(hash)
    }

    /// Every entry, in order (no checking).
    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(JournalError(e.to_string())),
        };
        std::io::BufReader::new(file)
            .lines()
            .map(|l| {
                let l = l.map_err(|e| JournalError(e.to_string()))?;
                serde_json::from_str(&l).map_err(|e| JournalError(e.to_string()))
            })
            .collect()
    }

    /// What every entry records, in order; a journal that cannot be read records nothing (its
    /// problems are `verify`'s to report).
    pub fn records(&self) -> Vec<Record> {
        self.entries()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.record)
            .collect()
    }

    /// Checks the whole chain; `expected_head` (default: the head recorded beside the journal)
    /// catches a cut-off tail.
    pub fn verify(&self, expected_head: Option<&str>) -> Result<Verified, Break> {
        let recorded = self.recorded_head();
        let head = expected_head.or(recorded.as_deref());
        verify_text(
            &std::fs::read_to_string(&self.path).unwrap_or_default(),
            head,
        )
    }
}

pub fn verify_text(text: &str, expected_head: Option<&str>) -> Result<Verified, Break> {
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    let mut seen_head = false;
    let mut hashes = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        if !line.ends_with('\n') {
            return Err(Break {
                line: line_no,
                seq: None,
                reason: "the entry is cut off (no end of line)".into(),
            });
        }
        let v: Value = serde_json::from_str(line.trim_end()).map_err(|e| Break {
            line: line_no,
            seq: None,
            reason: format!("not a journal entry: {e}"),
        })?;
        let Value::Object(m) = v else {
            return Err(Break {
                line: line_no,
                seq: None,
                reason: "not a journal entry".into(),
            });
        };
        let seq = m.get("seq").and_then(Value::as_u64);
        let bad = |reason: String| Break {
            line: line_no,
            seq,
            reason,
        };
        if seq != Some(n) {
            return Err(bad(format!(
                "sequence number {} where {n} was expected: an entry was deleted, inserted or moved",
                seq.map_or("missing".into(), |s| s.to_string())
            )));
        }
        let stated = m.get("hash").and_then(Value::as_str).unwrap_or("");
        if entry_hash(&m) != stated {
            return Err(bad(
                "its content does not match its hash: the entry was edited".into(),
            ));
        }
        if m.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(bad("it does not point to the entry before it: entries were reordered, deleted or inserted".into()));
        }
        prev = stated.to_string();
        hashes.push(prev.clone());
        if expected_head == Some(stated) {
            seen_head = true;
        }
        n += 1;
    }
    if let Some(head) = expected_head {
        if !seen_head && head != GENESIS {
            return Err(Break {
                line: text.lines().count() + 1,
                seq: Some(n),
                reason: format!(
                    "entries are missing at the end: the head recorded beside the journal is {}",
                    &head[..head.len().min(16)]
                ),
            });
        }
    }
    Ok(Verified {
        entries: n,
        head: prev,
        hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ModelCall;
    use rekindle_render::Role;

    fn call(n: u64) -> Record {
        Record::ModelCall(ModelCall {
            render_id: "r".into(),
            module: "m".into(),
            functionality: 1,
            role: Role::Code,
            request: "k".into(),
            provider: "p".into(),
            model: "x".into(),
            cache_hit: false,
            tokens_in: n,
            tokens_out: 1,
            cost: 0.5,
            seconds: 1.5,
        })
    }

    fn journal() -> (tempfile::TempDir, Journal) {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path().join("j.jsonl"));
        for i in 0..5 {
            j.append(&call(i)).unwrap();
        }
        (d, j)
    }

    fn lines(j: &Journal) -> Vec<String> {
        std::fs::read_to_string(&j.path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write(j: &Journal, lines: &[String]) {
        std::fs::write(
            &j.path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }

    #[test]
    fn a_good_chain_verifies() {
        let (_d, j) = journal();
        let v = j.verify(None).unwrap();
        assert_eq!(v.entries, 5);
        assert!(j.verify(Some(&v.head)).is_ok());
        assert_eq!(j.entries().unwrap()[3].record, call(3));
        // The format on disk: canonical JSON, the record's fields beside the chain's.
        let line = &lines(&j)[0];
        assert!(
            line.starts_with("{\"cache_hit\":false,\"cost\":0.5,"),
            "{line}"
        );
        for field in [
            "\"kind\":\"model_call\"",
            "\"role\":\"code\"",
            "\"seq\":0",
            "\"prev\":\"0000",
        ] {
            assert!(line.contains(field), "{field} not in {line}");
        }
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let (_d, j) = journal();
        let good = lines(&j);
        let head = j.verify(None).unwrap().head;
        // Edit.
        let mut l = good.clone();
        l[2] = l[2].replace("\"tokens_in\":2", "\"tokens_in\":7");
        write(&j, &l);
        let b = j.verify(None).unwrap_err();
        assert_eq!((b.line, b.reason.contains("edited")), (3, true), "{b:?}");
        // Delete.
        let mut l = good.clone();
        l.remove(1);
        write(&j, &l);
        assert_eq!(j.verify(None).unwrap_err().line, 2);
        // Reorder.
        let mut l = good.clone();
        l.swap(3, 4);
        write(&j, &l);
        assert_eq!(j.verify(None).unwrap_err().line, 4);
        // Insert a copy.
        let mut l = good.clone();
        l.insert(2, good[1].clone());
        write(&j, &l);
        assert_eq!(j.verify(None).unwrap_err().line, 3);
        // Truncate: a whole entry (caught by the recorded head) and half an entry.
        let mut l = good.clone();
        l.pop();
        write(&j, &l);
        assert!(verify_text(&std::fs::read_to_string(&j.path).unwrap(), None).is_ok());
        let b = j.verify(None).unwrap_err();
        assert_eq!(Some(head.clone()), j.recorded_head());
        assert!(b.reason.contains("missing at the end"), "{b:?}");
        let text = std::fs::read_to_string(&j.path).unwrap();
        std::fs::write(&j.path, &text[..text.len() - 10]).unwrap();
        assert!(j.verify(None).unwrap_err().reason.contains("cut off"));
        // Appending to a damaged journal is refused, not papered over.
        assert!(j.append(&call(9)).is_err());
    }
}
