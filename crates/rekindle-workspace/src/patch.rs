//! Unified diffs as a model writes them: parsed into per-file hunks and applied by content, not
//! by line number (models get the numbers wrong far more often than the lines). A hunk applies
//! where its old lines (context and removals) appear in the file: at the line it names if they
//! are there, else at their only other place; anywhere else is an error naming the hunk.

use std::fmt;

/// The changes a diff makes to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePatch {
    /// The path after `+++` (or `---` for a deletion), without `a/` or `b/`.
    pub path: String,
    pub hunks: Vec<Hunk>,
    /// `--- /dev/null`: the file is new.
    pub creates: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based line the hunk says it starts at in the old file (0 for a new file).
    pub old_start: usize,
    /// Context and removed lines, in order.
    pub old: Vec<String>,
    /// Context and added lines, in order.
    pub new: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PatchError(pub String);

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatchError {}

fn strip_prefix(p: &str) -> String {
    let p = p.split('\t').next().unwrap_or(p).trim();
    p.strip_prefix("a/")
        .or_else(|| p.strip_prefix("b/"))
        .unwrap_or(p)
        .to_string()
}

/// Reads the file patches of a unified diff (`---`/`+++` headers, `@@` hunks).
pub fn parse(diff: &str) -> Result<Vec<FilePatch>, PatchError> {
    let mut out: Vec<FilePatch> = Vec::new();
    let mut lines = diff.lines().peekable();
    let mut old_path: Option<String> = None;
    while let Some(line) = lines.next() {
        if let Some(p) = line.strip_prefix("--- ") {
            old_path = Some(strip_prefix(p));
            continue;
        }
        if let Some(p) = line.strip_prefix("+++ ") {
            let new_path = strip_prefix(p);
            let creates = old_path.as_deref() == Some("/dev/null");
            let path = if new_path == "/dev/null" {
                old_path.clone().unwrap_or_default()
            } else {
                new_path
            };
            out.push(FilePatch {
                path,
                hunks: Vec::new(),
                creates,
            });
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@") {
            let Some(file) = out.last_mut() else {
                return Err(PatchError(
                    "a hunk (`@@`) comes before any `--- a/FILE` / `+++ b/FILE` header".into(),
                ));
            };
            let old_start = rest
                .trim()
                .strip_prefix('-')
                .and_then(|r| r.split([',', ' ']).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut hunk = Hunk {
                old_start,
                old: Vec::new(),
                new: Vec::new(),
            };
            while let Some(next) = lines.peek() {
                if next.starts_with("@@") || next.starts_with("--- ") || next.starts_with("+++ ") {
                    break;
                }
                let l = lines.next().unwrap_or_default();
                if let Some(t) = l.strip_prefix('+') {
                    hunk.new.push(t.to_string());
                } else if let Some(t) = l.strip_prefix('-') {
                    hunk.old.push(t.to_string());
                } else if l.starts_with('\\') {
                    // "\ No newline at end of file"
                } else {
                    // Context: " line", or an empty line where the space was lost.
                    let t = l.strip_prefix(' ').unwrap_or(l);
                    hunk.old.push(t.to_string());
                    hunk.new.push(t.to_string());
                }
            }
            // Trailing blank context lines a model adds by accident match nothing; drop those
            // that are context on both sides at the end.
            while hunk.old.last().is_some_and(|l| l.is_empty())
                && hunk.new.last().is_some_and(|l| l.is_empty())
                && hunk.old.len() > 1
                && hunk.new.len() > 1
            {
                hunk.old.pop();
                hunk.new.pop();
            }
            file.hunks.push(hunk);
        }
    }
    out.retain(|f| !f.hunks.is_empty());
    if out.is_empty() {
        return Err(PatchError(
            "no file changes found: a diff needs `--- a/FILE`, `+++ b/FILE` and `@@` hunks".into(),
        ));
    }
    Ok(out)
}

/// Applies `patch` to `text` (the file's current content; empty for a new file).
pub fn apply(text: &str, patch: &FilePatch) -> Result<String, PatchError> {
    let trailing_newline = text.ends_with('\n') || text.is_empty();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Hunks in order; later hunks search after where the earlier one ended.
    let mut from = 0usize;
    for (n, h) in patch.hunks.iter().enumerate() {
        // A hunk that only adds lines may quote its context loosely (a model shortens a long
        // line): the context is then found by similarity, and the file's own lines are kept.
        let adds_only = h.new.len() > h.old.len() && h.old.iter().all(|l| h.new.contains(l));
        if adds_only
            && !h.old.is_empty()
            && locate(&lines, &h.old, h.old_start.saturating_sub(1), from).is_none()
        {
            if let Some(at) = locate_loosely(&lines, &h.old, from) {
                let n = h.old.len();
                let added = &h.new[n..];
                let new_item = added
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.starts_with("- "));
                if h.new[..n] == h.old[..] && new_item && lines[at + n - 1].starts_with("- ") {
                    // A new list item after an item: after that item's indented lines (its
                    // acceptance tests), not between the item and them.
                    let mut end = at + n;
                    while end < lines.len()
                        && (lines[end].trim().is_empty() || lines[end].starts_with([' ', '\t']))
                    {
                        end += 1;
                    }
                    while end > at + n && lines[end - 1].trim().is_empty() {
                        end -= 1;
                    }
                    lines.splice(end..end, added.iter().cloned());
                    from = end + added.len();
                    continue;
                }
                let mut block = Vec::with_capacity(h.new.len());
                let mut j = 0;
                for l in &h.new {
                    if j < h.old.len() && *l == h.old[j] {
                        block.push(lines[at + j].clone());
                        j += 1;
                    } else {
                        block.push(l.clone());
                    }
                }
                lines.splice(at..at + h.old.len(), block);
                from = at + h.new.len();
                continue;
            }
        }
        let at = if h.old.is_empty() {
            // Pure insertion: at the line it names (or the end).
            h.old_start.min(lines.len()).max(from)
        } else {
            locate(&lines, &h.old, h.old_start.saturating_sub(1), from).ok_or_else(|| {
                PatchError(format!(
                    "hunk {} of {} does not apply: its lines ({}) are not in the file as written",
                    n + 1,
                    patch.path,
                    h.old
                        .iter()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| format!("`{}`", l.trim()))
                        .unwrap_or_else(|| "blank lines".into())
                ))
            })?
        };
        lines.splice(at..at + h.old.len(), h.new.iter().cloned());
        from = at + h.new.len();
    }
    let mut out = lines.join("\n");
    if trailing_newline && !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Where `needle` sits in `lines` at or after `from`: at `hint` if it is there, else at its one
/// place (trailing spaces ignored); `None` when absent or ambiguous.
fn locate(lines: &[String], needle: &[String], hint: usize, from: usize) -> Option<usize> {
    let same = |i: usize| {
        needle.iter().enumerate().all(|(k, l)| {
            lines
                .get(i + k)
                .is_some_and(|x| x.trim_end() == l.trim_end())
        })
    };
    if hint >= from && same(hint) {
        return Some(hint);
    }
    let found: Vec<usize> = (from..lines.len().saturating_sub(needle.len() - 1).max(from))
        .filter(|&i| same(i))
        .take(2)
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Where `needle` best matches `lines` at or after `from`, line by line by character
/// similarity: the best place when its mean similarity is at least 0.75 and no other place comes
/// within 0.1 of it (blank lines must match blank lines).
fn locate_loosely(lines: &[String], needle: &[String], from: usize) -> Option<usize> {
    if needle.iter().all(|l| l.trim().is_empty()) || needle.len() > lines.len() {
        return None;
    }
    let score = |i: usize| -> f32 {
        let mut total = 0.0;
        for (k, l) in needle.iter().enumerate() {
            let x = lines[i + k].trim();
            let l = l.trim();
            if x.is_empty() != l.is_empty() {
                return 0.0;
            }
            total += if x.is_empty() {
                1.0
            } else {
                similar::TextDiff::from_chars(x, l).ratio()
            };
        }
        total / needle.len() as f32
    };
    let mut scored: Vec<(f32, usize)> = (from..=lines.len() - needle.len())
        .map(|i| (score(i), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    match scored.as_slice() {
        [(best, at), rest @ ..]
            if *best >= 0.75 && rest.first().is_none_or(|r| r.0 + 0.1 < *best) =>
        {
            Some(*at)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "***functional specs***\n\n- Print hello.\n\n- Print world.\n";

    #[test]
    fn a_hunk_applies_by_content_when_its_line_number_is_wrong() {
        let diff = "--- a/app.plain\n+++ b/app.plain\n@@ -40,3 +40,5 @@\n - Print hello.\n \n+- Print again.\n+\n - Print world.\n";
        let p = parse(diff).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "app.plain");
        let out = apply(SPEC, &p[0]).unwrap();
        assert_eq!(
            out,
            "***functional specs***\n\n- Print hello.\n\n- Print again.\n\n- Print world.\n"
        );
    }

    #[test]
    fn a_hunk_whose_lines_are_not_there_is_an_error_naming_it() {
        let diff = "--- a/app.plain\n+++ b/app.plain\n@@ -1,1 +1,1 @@\n-- Print nothing.\n+- Print something.\n";
        let p = parse(diff).unwrap();
        let e = apply(SPEC, &p[0]).unwrap_err();
        assert!(
            e.0.contains("hunk 1 of app.plain") && e.0.contains("Print nothing"),
            "{e}"
        );
    }

    #[test]
    fn new_files_and_text_without_a_diff() {
        let p = parse("--- /dev/null\n+++ b/part.plain\n@@ -0,0 +1,2 @@\n+***definitions***\n+\n")
            .unwrap();
        assert!(p[0].creates);
        assert_eq!(apply("", &p[0]).unwrap(), "***definitions***\n\n");
        assert!(parse("just words").is_err());
    }

    #[test]
    fn an_addition_whose_context_is_shortened_lands_after_the_line_it_means() {
        let spec = "***functional specs***\n\n- :App: should print \"hello, world\" followed by a newline.\n\n  ***acceptance tests***\n";
        let diff = "--- a/app.plain\n+++ b/app.plain\n@@ -20,1 +20,3 @@\n - :App: should print \"hello, world\".\n+\n+- :App: should print \"goodbye\" after it.\n";
        let out = apply(spec, &parse(diff).unwrap()[0]).unwrap();
        // After the item's acceptance tests, which stay with it.
        assert_eq!(
            out,
            "***functional specs***\n\n- :App: should print \"hello, world\" followed by a newline.\n\n  ***acceptance tests***\n\n- :App: should print \"goodbye\" after it.\n"
        );
        // Removals are never matched loosely.
        let diff = "--- a/app.plain\n+++ b/app.plain\n@@ -3 +3 @@\n-- :App: should print \"hello, world\".\n+- gone\n";
        assert!(apply(spec, &parse(diff).unwrap()[0]).is_err());
    }

    #[test]
    fn two_hunks_apply_in_order() {
        let diff = "--- app.plain\n+++ app.plain\n@@ -3 +3 @@\n-- Print hello.\n+- Print hi.\n@@ -5 +5 @@\n-- Print world.\n+- Print earth.\n";
        let out = apply(SPEC, &parse(diff).unwrap()[0]).unwrap();
        assert_eq!(
            out,
            "***functional specs***\n\n- Print hi.\n\n- Print earth.\n"
        );
    }
}
