//! Linked resources: relative links from spec items to text files that go into the prompts.
//! A link may not leave the project, so a spec can never send a file from elsewhere on disk
//! (a key, a credential store) to a model.
//!
//! A link is resolved as the reference resolves it, whichever file it is written in (the entry
//! spec, an imported or required module, an included template): from the entry spec's folder,
//! then each template folder in order; the first that holds the target wins. Never from the
//! process's working folder, and never from the linking file's own folder unless it is one of
//! those. (The built-in library holds no resource files.)

use crate::diag::Diagnostic;
use crate::library;
use crate::loader::Fs;
use crate::model::Link;
use crate::roots::Roots;
use crate::source::decode;
use std::path::{Path, PathBuf};

/// A linked resource as the loader read it: checked once, kept in the `Project`, so that no
/// later stage reads it again (or reads something else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The file where it was found: the search folder joined with the target as written.
    pub path: PathBuf,
    /// Its text, exactly as read.
    pub content: String,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
}

fn has_scheme(target: &str) -> bool {
    let Some(colon) = target.find(':') else {
        return false;
    };
    let scheme = &target[..colon];
    !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Checks one link found in the file at `from`: looks for its target in `search` (the entry
/// spec's folder, then the template folders) and checks it against the project's `roots`.
/// Returns the resource when the link is good.
pub fn check(
    fs: &dyn Fs,
    link: &Link,
    from: &Path,
    search: &[&Path],
    roots: &Roots,
    max_bytes: u64,
    diags: &mut Vec<Diagnostic>,
) -> Option<Resource> {
    let target = link.target.split(['#', '?']).next().unwrap_or("");
    let err = |code, msg: String| Diagnostic::error(code, msg).at(link.span, "linked here");
    if has_scheme(&link.target) || target.starts_with('/') || target.starts_with('\\') {
        diags.push(
            err("E0601", format!("only relative links to files in the project are allowed, not `{}`", link.target))
                .help("link to a file beside the spec, for example `[api](api.yaml)`; to mention a URL, write it as text or in backticks"),
        );
        return None;
    }
    if target.is_empty() {
        diags.push(
            err("E0602", "the link has no target file".into())
                .help("write it as `[name](relative/path.ext)`"),
        );
        return None;
    }
    if link.text.trim().is_empty() {
        diags.push(
            err("E0607", format!("the link to `{target}` has no text"))
                .help("name the resource: `[name](path)`"),
        );
        return None;
    }
    if from.starts_with(library::PREFIX) {
        diags.push(err(
            "E0601",
            "built-in templates cannot link resources".into(),
        ));
        return None;
    }
    if target.ends_with(".plain") {
        diags.push(
            err("E0604", format!("`{target}` is a spec, not a resource")).help(
                "to use another module, name it under `import` or `requires` in the front matter",
            ),
        );
        return None;
    }
    let mut looked = Vec::new();
    let found = search.iter().find_map(|dir| {
        let path = dir.join(target);
        let real = fs.canonicalize(&path).ok();
        looked.push(path.clone());
        real.map(|r| (path, r))
    });
    let Some((path, real)) = found else {
        let mut d = err(
            "E0602",
            format!("linked resource `{target}` does not exist"),
        );
        for p in &looked {
            d = d.note(format!("looked for {}", p.display()));
        }
        diags.push(d.help(
            "links are resolved from the entry spec's folder, then each template folder (`template-dir`), whichever file they are written in",
        ));
        return None;
    };
    if !roots.contains(&real) {
        diags.push(
            err("E0603", format!("linked resource `{target}` is outside the project"))
                .note(format!("it resolves to {}", real.display()))
                .help("move the file into the project folder (or the git repository the spec is in), or list its folder under `roots` in rekindle.toml"),
        );
        return None;
    }
    if !fs.is_file(&real) {
        diags.push(err(
            "E0602",
            format!("linked resource `{target}` is not a file"),
        ));
        return None;
    }
    match fs.len(&real) {
        Ok(n) if n > max_bytes => {
            diags.push(
                err(
                    "E0605",
                    format!(
                        "linked resource `{target}` is {n} bytes, over the limit of {max_bytes}"
                    ),
                )
                .help("link a smaller excerpt, or raise `max-resource-bytes` in rekindle.toml"),
            );
            return None;
        }
        Ok(_) => {}
        Err(e) => {
            diags.push(err(
                "E0602",
                format!("cannot read linked resource `{target}`: {e}"),
            ));
            return None;
        }
    }
    match fs.read(&real) {
        Ok(bytes) => {
            if decode(&bytes).is_err() {
                diags.push(
                    err(
                        "E0606",
                        format!("linked resource `{target}` is not a text file"),
                    )
                    .help("resources go into prompts as text: link UTF-8 text files only"),
                );
                return None;
            }
            let content = String::from_utf8(bytes).ok()?;
            Some(Resource {
                path,
                blake3: blake3::hash(content.as_bytes()).to_hex().to_string(),
                content,
            })
        }
        Err(e) => {
            diags.push(err(
                "E0602",
                format!("cannot read linked resource `{target}`: {e}"),
            ));
            None
        }
    }
}
