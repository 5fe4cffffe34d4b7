//! The response cache, content-addressed: the key is the BLAKE3 hash of the canonical JSON of the
//! whole request (provider kind, model, sampling, messages, constraint, template version), the
//! value the reply with its usage. Entries are written atomically (temp file + rename), so two
//! processes may share a cache; each entry carries a digest of its payload, so a damaged entry is
//! detected, reported and treated as a miss. An entry keeps the request it answers too (the whole
//! conversation: `rekindle cache show`); entries written before it did are read as they are.

use crate::request::{Request, Response};
use crate::ProviderKind;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const VERSION: u32 = 1;

/// The cache key of `req` sent to a `kind` provider: 64 hex digits.
pub fn key(kind: ProviderKind, req: &Request) -> String {
    #[derive(Serialize)]
    struct Keyed<'a> {
        v: u32,
        provider: ProviderKind,
        request: &'a Request,
    }
    let canonical = canonical_json(&Keyed {
        v: VERSION,
        provider: kind,
        request: req,
    });
    blake3::hash(canonical.as_bytes()).to_hex().to_string()
}

/// JSON with object keys sorted, no whitespace: the same value always gives the same bytes.
pub fn canonical_json<T: Serialize>(v: &T) -> String {
    // serde_json's Value keeps objects in a BTreeMap (sorted) without `preserve_order`.
    let value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    serde_json::to_string(&value).unwrap_or_default()
}

/// What is stored for one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub key: String,
    pub provider: ProviderKind,
    pub response: Response,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// How long the original call took.
    pub duration_ms: u64,
    /// The request the response answers (its key is this request's hash); absent in entries
    /// written before requests were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

/// Why [`Cache::find`] found no one entry.
#[derive(Debug, PartialEq, Eq)]
pub enum FindError {
    /// Too short to be a key's start, or not hex.
    NotAKey,
    /// No entry's key starts so.
    Missing,
    /// Several keys start so: the first few.
    Ambiguous(Vec<String>),
    /// One entry's key starts so, and it cannot be read or is damaged: what is wrong with it.
    Unreadable(String),
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    digest: String,
    payload: Payload,
}

#[derive(Debug)]
pub enum CacheError {
    /// The entry exists but fails its digest or cannot be read as an entry.
    Damaged { path: PathBuf, detail: String },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheError::Damaged { path, detail } => {
                write!(
                    f,
                    "damaged cache entry {} ({detail}); it is ignored and will be replaced",
                    path.display()
                )
            }
            CacheError::Io { path, error } => write!(f, "cache {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for CacheError {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub damaged: u64,
    pub oldest: Option<u64>,
    pub newest: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub removed: u64,
    pub freed_bytes: u64,
    pub kept: u64,
}

#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Cache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        let (a, rest) = key.split_at(2.min(key.len()));
        self.dir.join("v1").join(a).join(format!("{rest}.json"))
    }

    /// The entry for `key`; `Ok(None)` on a miss. A damaged entry is an error the caller
    /// reports before treating it as a miss.
    pub fn get(&self, key: &str) -> Result<Option<Payload>, CacheError> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(CacheError::Io { path, error }),
        };
        let damaged = |detail: &str| CacheError::Damaged {
            path: path.clone(),
            detail: detail.to_string(),
        };
        let stored: Stored =
            serde_json::from_slice(&bytes).map_err(|_| damaged("not a cache entry"))?;
        if stored.version != VERSION {
            return Ok(None);
        }
        if digest(&stored.payload) != stored.digest {
            return Err(damaged("its content does not match its digest"));
        }
        if stored.payload.key != key {
            return Err(damaged("it is filed under another key"));
        }
        Ok(Some(stored.payload))
    }

    /// Stores `payload` atomically: readers see the old entry or the new one, never a mix.
    pub fn put(&self, payload: &Payload) -> Result<(), CacheError> {
        let path = self.path(&payload.key);
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        let io = |error| CacheError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let stored = Stored {
            version: VERSION,
            digest: digest(payload),
            payload: payload.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| io(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// The entry whose key starts with `prefix` (at least 6 hex digits, as `rekindle why` and the
    /// render's events print them).
    pub fn find(&self, prefix: &str) -> Result<Payload, FindError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.len() < 6 || prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(FindError::NotAKey);
        }
        let mut keys: Vec<String> = self
            .entries()
            .into_iter()
            .map(|(path, _)| Self::key_of(&path))
            .filter(|k| k.starts_with(&prefix))
            .collect();
        keys.sort();
        match keys.as_slice() {
            [] => Err(FindError::Missing),
            [key] => match self.get(key) {
                Ok(Some(p)) => Ok(p),
                // An entry of another cache version is no entry of this one.
                Ok(None) => Err(FindError::Missing),
                Err(e) => Err(FindError::Unreadable(e.to_string())),
            },
            _ => {
                keys.truncate(5);
                Err(FindError::Ambiguous(keys))
            }
        }
    }

    fn entries(&self) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.dir.join("v1")) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "json") {
                    if let Ok(m) = f.metadata() {
                        out.push((p, m));
                    }
                }
            }
        }
        out
    }

    fn key_of(path: &Path) -> String {
        let shard = path
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rest = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{shard}{rest}")
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for (path, meta) in self.entries() {
            let key = Self::key_of(&path);
            match self.get(&key) {
                Ok(Some(p)) => {
                    s.entries += 1;
                    s.bytes += meta.len();
                    s.oldest = Some(s.oldest.map_or(p.created, |o| o.min(p.created)));
                    s.newest = Some(s.newest.map_or(p.created, |o| o.max(p.created)));
                }
                _ => s.damaged += 1,
            }
        }
        s
    }

    /// Removes damaged entries, and entries older than `older_than` unless `keep` says otherwise
    /// (the lock's pinned keys, for example).
    pub fn gc(&self, older_than: Option<Duration>, keep: &dyn Fn(&str) -> bool) -> GcReport {
        let mut r = GcReport::default();
        let cutoff = older_than.map(|d| now().saturating_sub(d.as_secs()));
        for (path, meta) in self.entries() {
            let key = Self::key_of(&path);
            let remove = match self.get(&key) {
                Ok(Some(p)) => !keep(&key) && cutoff.is_some_and(|c| p.created <= c),
                Ok(None) => false,
                Err(_) => true,
            };
            if remove && std::fs::remove_file(&path).is_ok() {
                r.removed += 1;
                r.freed_bytes += meta.len();
            } else {
                r.kept += 1;
            }
        }
        r
    }
}

fn digest(p: &Payload) -> String {
    blake3::hash(canonical_json(p).as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{FinishReason, Message, Usage};

    fn payload(key: &str) -> Payload {
        Payload {
            key: key.to_string(),
            provider: ProviderKind::Openai,
            response: Response {
                text: "hi".into(),
                usage: Usage {
                    input_tokens: 3,
                    output_tokens: 1,
                    cached_tokens: 0,
                },
                finish_reason: FinishReason::Stop,
                request_id: None,
                model: "m".into(),
                cut: None,
            },
            created: now(),
            duration_ms: 5,
            request: None,
        }
    }

    #[test]
    fn an_entry_keeps_its_request_and_is_found_by_the_start_of_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path());
        let req = Request::new("m", vec![Message::system("be brief"), Message::user("hi")]);
        let k = key(ProviderKind::Openai, &req);
        let mut p = payload(&k);
        p.request = Some(req.clone());
        c.put(&p).unwrap();
        assert_eq!(c.get(&k).unwrap().unwrap().request, Some(req));
        assert_eq!(c.find(&k[..6].to_uppercase()).unwrap(), p);
        assert_eq!(c.find(&k).unwrap(), p);
        // An entry written without its request (as before requests were kept) reads as it is,
        // digest and all.
        let old = "0".repeat(64);
        c.put(&payload(&old)).unwrap();
        let text = std::fs::read_to_string(c.path(&old)).unwrap();
        assert!(!text.contains("\"request\""), "{text}");
        assert_eq!(c.get(&old).unwrap().unwrap().request, None);
        // Too short, not hex, no entry, several entries.
        assert_eq!(c.find("00000"), Err(FindError::NotAKey));
        assert_eq!(c.find("zzzzzz"), Err(FindError::NotAKey));
        let absent = if k.starts_with("ffffff") {
            "eeeeee"
        } else {
            "ffffff"
        };
        assert_eq!(c.find(absent), Err(FindError::Missing));
        let twin = format!("{}{}", &old[..63], "1");
        c.put(&payload(&twin)).unwrap();
        assert_eq!(
            c.find("000000"),
            Err(FindError::Ambiguous(vec![old.clone(), twin.clone()]))
        );
        assert_eq!(c.find(&old).unwrap().key, old);
        // A damaged entry is found, and said to be damaged, not missing.
        std::fs::write(c.path(&twin), "{\"version\": 1").unwrap();
        match c.find(&twin) {
            Err(FindError::Unreadable(why)) => {
                assert!(
                    why.contains("not a cache entry") && why.contains(&twin[2..]),
                    "{why}"
                )
            }
            other => panic!("expected the damaged entry to be reported, got {other:?}"),
        }
    }

    #[test]
    fn keys_cover_every_part_of_the_request() {
        let base = Request::new("m", vec![Message::user("hi")]);
        let k = key(ProviderKind::Openai, &base);
        assert_eq!(k, key(ProviderKind::Openai, &base.clone()));
        assert_ne!(k, key(ProviderKind::Anthropic, &base));
        let mut r = base.clone();
        r.sampling.temperature = 0.5;
        assert_ne!(k, key(ProviderKind::Openai, &r));
        let mut r = base.clone();
        r.template_version = "2".into();
        assert_ne!(k, key(ProviderKind::Openai, &r));
        let mut r = base.clone();
        r.constraint = Some(crate::Constraint::FileBlocks);
        assert_ne!(k, key(ProviderKind::Openai, &r));
        assert_eq!(k.len(), 64);
    }

    #[test]
    fn put_get_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let k = "ab".repeat(32);
        assert!(c.get(&k).unwrap().is_none());
        c.put(&payload(&k)).unwrap();
        assert_eq!(c.get(&k).unwrap().unwrap().response.text, "hi");
        // Flip the stored text: the digest no longer matches.
        let path = c.path(&k);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"hi\"", "\"ho\"");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(c.get(&k), Err(CacheError::Damaged { .. })));
        assert_eq!(c.stats().damaged, 1);
        assert_eq!(c.gc(None, &|_| false).removed, 1);
        assert!(c.get(&k).unwrap().is_none());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{trunc").unwrap();
        assert!(matches!(c.get(&k), Err(CacheError::Damaged { .. })));
    }
}
