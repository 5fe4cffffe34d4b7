//! Conversations about specs (`rekindle converse`): what was said, which spec edits the model
//! proposed and which were accepted, with the spec's text before and after each. Stored one file
//! per conversation under `.rekindle/conversations/`, named by the BLAKE3 of its content, and
//! entered in the journal (`Record::Conversation`), so an edited or removed file is caught by
//! `journal verify`.
//!
//! [`origins`] answers "which conversation wrote this spec line": it replays the accepted edits
//! in journal order, carrying each line's origin through every version of the file, and lines
//! changed outside any conversation in between lose theirs.

use crate::record::Record;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One conversation. This is a persisted format: field names are API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The entry spec, relative to the project folder.
    pub spec: String,
    pub provider: String,
    pub model: String,
    /// What it was for: `converse`, `adopt`, ...
    pub purpose: String,
    pub turns: Vec<Turn>,
    pub edits: Vec<Edit>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `user`, `assistant`, or `check` (diagnostics sent back to the model).
    pub role: String,
    pub text: String,
}

/// A spec edit the model proposed in a turn, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The index in `turns` of the reply that proposed it.
    pub turn: usize,
    pub diff: String,
    /// `accepted`, `rejected`, `reported` (no one to ask), `does_not_apply`, `fails_check`.
    pub verdict: String,
    /// For an accepted edit: each file's text before and after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    /// Relative to the project folder.
    pub path: String,
    pub before: String,
    pub after: String,
}

/// What the journal records of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationEntry {
    /// The stored file's BLAKE3 (its name).
    pub id: String,
    pub spec: String,
    pub purpose: String,
    pub provider: String,
    pub model: String,
    pub turns: usize,
    pub accepted: usize,
}

/// The folder of stored conversations.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `c` (atomically) and returns its id.
    pub fn save(&self, c: &Conversation) -> std::io::Result<String> {
        use std::io::Write;
        let text = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
        let id = blake3::hash(text.as_bytes()).to_hex().to_string();
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(&id)).map_err(|e| e.error)?;
        Ok(id)
    }

    /// Reads conversation `id`, checking that its content still has that hash.
    pub fn load(&self, id: &str) -> Result<Conversation, String> {
        let path = self.path(id);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("conversation {} cannot be read: {e}", path.display()))?;
        let actual = blake3::hash(text.as_bytes()).to_hex().to_string();
        if actual != id {
            return Err(format!(
                "conversation {} was changed after it was stored (its content hashes to {})",
                path.display(),
                &actual[..16]
            ));
        }
        serde_json::from_str(&text)
            .map_err(|e| format!("conversation {} is not readable: {e}", path.display()))
    }
}

/// Which conversation, and which of its turns, wrote a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub conversation: String,
    /// 1-based, counting every turn.
    pub turn: usize,
    /// The user's message the proposing reply answered.
    pub asked: String,
}

/// For each line of `current` (the text of `path`, relative to the project folder), the
/// conversation turn that introduced or last changed it, replaying the journal's conversations
/// in order. Conversations that cannot be loaded are skipped (`journal verify` reports them).
pub fn origins(
    records: &[Record],
    store: &Store,
    path: &str,
    current: &str,
) -> Vec<Option<Origin>> {
    let mut text: Option<String> = None;
    let mut attr: Vec<Option<Origin>> = Vec::new();
    for r in records {
        let Record::Conversation(entry) = r else {
            continue;
        };
        let Ok(c) = store.load(&entry.id) else {
            continue;
        };
        for e in c.edits.iter().filter(|e| e.verdict == "accepted") {
            for f in e.files.iter().filter(|f| f.path == path) {
                // Changes made outside conversations since the last edit: lines they added
                // have no origin.
                attr = match &text {
                    Some(t) => carry(t, &f.before, &attr, None),
                    None => vec![None; f.before.lines().count()],
                };
                let asked = c.turns[..e.turn.min(c.turns.len())]
                    .iter()
                    .rev()
                    .find(|t| t.role == "user")
                    .map(|t| t.text.clone())
                    .unwrap_or_default();
                let origin = Origin {
                    conversation: entry.id.clone(),
                    turn: e.turn + 1,
                    asked,
                };
                attr = carry(&f.before, &f.after, &attr, Some(&origin));
                text = Some(f.after.clone());
            }
        }
    }
    match &text {
        Some(t) => carry(t, current, &attr, None),
        None => vec![None; current.lines().count()],
    }
}

/// The origins of `new`'s lines: those `old` also has (by a line diff) keep theirs; the rest get
/// `added`.
fn carry(
    old: &str,
    new: &str,
    attr: &[Option<Origin>],
    added: Option<&Origin>,
) -> Vec<Option<Origin>> {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let mut out = Vec::with_capacity(new.lines().count());
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => out.push(
                change
                    .old_index()
                    .and_then(|i| attr.get(i).cloned())
                    .flatten(),
            ),
            ChangeTag::Insert => out.push(added.cloned()),
            ChangeTag::Delete => {}
        }
    }
    out
}

/// `path` relative to the project folder `dir`, as conversations name files.
pub fn relative(dir: &Path, path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.strip_prefix(&dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(edits: Vec<(&str, &str)>) -> Conversation {
        Conversation {
            spec: "app.plain".into(),
            provider: "openai".into(),
            model: "fake".into(),
            purpose: "converse".into(),
            turns: vec![
                Turn {
                    role: "user".into(),
                    text: "add it".into(),
                },
                Turn {
                    role: "assistant".into(),
                    text: "here".into(),
                },
            ],
            edits: edits
                .into_iter()
                .map(|(before, after)| Edit {
                    turn: 1,
                    diff: String::new(),
                    verdict: "accepted".into(),
                    files: vec![FileChange {
                        path: "app.plain".into(),
                        before: before.into(),
                        after: after.into(),
                    }],
                })
                .collect(),
        }
    }

    fn entry(id: &str) -> Record {
        Record::Conversation(ConversationEntry {
            id: id.into(),
            spec: "app.plain".into(),
            purpose: "converse".into(),
            provider: "openai".into(),
            model: "fake".into(),
            turns: 2,
            accepted: 1,
        })
    }

    #[test]
    fn lines_keep_the_turn_that_wrote_them_through_later_edits() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let a = store
            .save(&conv(vec![("one\ntwo\n", "one\nnew\ntwo\n")]))
            .unwrap();
        let b = store
            .save(&conv(vec![(
                "zero\none\nnew\ntwo\n",
                "zero\none\nnew\ntwo\nlast\n",
            )]))
            .unwrap();
        // Between them, "zero" was added by hand; after them, "two" was edited by hand.
        let now = "zero\none\nnew\nTWO\nlast\n";
        let o = origins(&[entry(&a), entry(&b)], &store, "app.plain", now);
        let who: Vec<Option<&str>> = o
            .iter()
            .map(|x| x.as_ref().map(|x| x.conversation.as_str()))
            .collect();
        assert_eq!(who, [None, None, Some(a.as_str()), None, Some(b.as_str())]);
        assert_eq!(o[2].as_ref().unwrap().turn, 2);
        assert_eq!(o[2].as_ref().unwrap().asked, "add it");
    }

    #[test]
    fn a_changed_file_is_refused_by_its_name() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let id = store.save(&conv(vec![("a\n", "b\n")])).unwrap();
        assert!(store.load(&id).is_ok());
        let p = d.path().join(format!("{id}.json"));
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("add it", "add that");
        std::fs::write(&p, text).unwrap();
        let e = store.load(&id).unwrap_err();
        assert!(e.contains("was changed after it was stored"), "{e}");
        // Its lines no longer have an origin: the replay skips it.
        let o = origins(&[entry(&id)], &store, "app.plain", "b\n");
        assert_eq!(o, vec![None]);
    }
}
