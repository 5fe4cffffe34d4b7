//! YAML front matter: the `---` block at the top of a `.plain` file naming imports, requires and
//! concept contracts.

use crate::diag::Diagnostic;
use crate::source::{FileId, SourceFile, Span};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A name or text from the front matter with the place it was written.
#[derive(Clone, Debug)]
pub struct Entry {
    pub text: String,
    pub span: Span,
}

/// The keys the reference understands, all optional.
#[derive(Clone, Debug, Default)]
pub struct FrontMatter {
    pub description: Option<String>,
    pub import: Vec<Entry>,
    pub requires: Vec<Entry>,
    /// Concept declarations written as `- :Name: text`, normalized to that form.
    pub required_concepts: Vec<Entry>,
    pub exported_concepts: Vec<Entry>,
    /// Where the front matter sits, for diagnostics about the module as a whole.
    pub span: Option<Span>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    description: Option<Spanned<Scalar>>,
    import: Option<Spanned<Vec<Spanned<String>>>>,
    requires: Option<Spanned<Vec<Spanned<String>>>>,
    required_concepts: Option<Spanned<Vec<Spanned<ConceptItem>>>>,
    exported_concepts: Option<Spanned<Vec<Spanned<ConceptItem>>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Other(serde_json::Value),
}

/// YAML reads `- :Name: is a thing` as a one-key mapping, so both shapes are accepted.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConceptItem {
    Text(String),
    Pair(std::collections::BTreeMap<String, Option<serde_json::Value>>),
}

pub const KEYS: &[&str] = &[
    "description",
    "import",
    "requires",
    "required_concepts",
    "exported_concepts",
];

/// Splits the front matter off `file`: returns it and the byte offset where the body starts.
pub fn split(file: &SourceFile, id: FileId, diags: &mut Vec<Diagnostic>) -> (FrontMatter, usize) {
    let text = &file.text;
    let Some(first) = text.lines().next() else {
        return (FrontMatter::default(), 0);
    };
    if first.trim_end() != "---" {
        return (FrontMatter::default(), 0);
    }
    let yaml_start = first.len() + 1;
    let mut offset = yaml_start.min(text.len());
    let mut close = None;
    for line in text[offset..].split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t == "..." {
            close = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((yaml_end, body_start)) = close else {
        diags.push(
            Diagnostic::error("E0201", "front matter is not closed")
                .at(Span::new(id, 0, 3), "this `---` opens it")
                .help("end the front matter with a line that holds only `---`"),
        );
        return (FrontMatter::default(), text.len());
    };
    let yaml = &text[yaml_start..yaml_end];
    let whole = Span::new(id, 0, yaml_end + 3);
    let fm = parse_yaml(file, id, yaml, yaml_start, whole, diags);
    (fm, body_start)
}

fn location_span(file: &SourceFile, id: FileId, yaml_start: usize, line: u64, col: u64) -> Span {
    // Locations are 1-based within the YAML text, which starts on the file's second line.
    let (first_line, _) = file.line_col(yaml_start as u32);
    let file_line = first_line - 1 + line.max(1) as usize - 1;
    let start = file.line_start(file_line);
    let line_text = file.line_text(file_line);
    let byte_col: usize = line_text
        .chars()
        .take(col.max(1) as usize - 1)
        .map(char::len_utf8)
        .sum();
    let s = start + byte_col;
    let e = start + line_text.len();
    let _ = yaml_start;
    Span::new(id, s, e.max(s + 1).min(file.text.len().max(s)))
}

fn spanned_at<T>(file: &SourceFile, id: FileId, yaml_start: usize, v: &Spanned<T>) -> Span {
    location_span(
        file,
        id,
        yaml_start,
        v.referenced.line(),
        v.referenced.column(),
    )
}

fn parse_yaml(
    file: &SourceFile,
    id: FileId,
    yaml: &str,
    yaml_start: usize,
    whole: Span,
    diags: &mut Vec<Diagnostic>,
) -> FrontMatter {
    let mut fm = FrontMatter {
        span: Some(whole),
        ..FrontMatter::default()
    };
    if yaml.trim().is_empty() {
        return fm;
    }
    // First as a generic value: the reference tolerates front matter that is not a mapping.
    let generic: Result<serde_json::Value, _> = serde_saphyr::from_str(yaml);
    match generic {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(serde_json::Value::Null) => return fm,
        Ok(_) => {
            diags.push(
                Diagnostic::warning("W0201", "front matter is not a mapping and is ignored")
                    .at(whole, "expected `key: value` lines")
                    .help("write keys as `import:` followed by a list, for example `import:\\n  - python-console-app-template`"),
            );
            return fm;
        }
        Err(e) => {
            diags.push(yaml_error(file, id, yaml_start, &e, whole));
            return fm;
        }
    }
    let raw: Raw = match serde_saphyr::from_str(yaml) {
        Ok(r) => r,
        Err(e) => {
            diags.push(yaml_error(file, id, yaml_start, &e, whole));
            return fm;
        }
    };
    let at = |v: &Spanned<String>| Entry {
        text: v.value.clone(),
        span: spanned_at(file, id, yaml_start, v),
    };
    if let Some(d) = raw.description {
        match d.value {
            Scalar::Text(t) => fm.description = Some(t),
            Scalar::Other(v) => fm.description = Some(v.to_string()),
        }
    }
    if let Some(list) = raw.import {
        fm.import = list.value.iter().map(at).collect();
    }
    if let Some(list) = raw.requires {
        fm.requires = list.value.iter().map(at).collect();
    }
    for (key, list, out) in [
        (
            "required_concepts",
            raw.required_concepts,
            &mut fm.required_concepts,
        ),
        (
            "exported_concepts",
            raw.exported_concepts,
            &mut fm.exported_concepts,
        ),
    ] {
        let Some(list) = list else { continue };
        for item in &list.value {
            let span = spanned_at(file, id, yaml_start, item);
            match &item.value {
                ConceptItem::Text(t) => out.push(Entry {
                    text: t.clone(),
                    span,
                }),
                ConceptItem::Pair(map) => {
                    for (k, v) in map {
                        let rest = match v {
                            None => String::new(),
                            Some(serde_json::Value::String(s)) => format!(" {s}"),
                            Some(other) => format!(" {other}"),
                        };
                        out.push(Entry {
                            text: format!("{k}:{rest}"),
                            span,
                        });
                    }
                }
            }
        }
        let _ = key;
    }
    fm
}

fn yaml_error(
    file: &SourceFile,
    id: FileId,
    yaml_start: usize,
    e: &serde_saphyr::Error,
    whole: Span,
) -> Diagnostic {
    let message = first_line(&e.to_string());
    let span = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| location_span(file, id, yaml_start, l.line(), l.column()))
        .unwrap_or(whole);
    if message.contains("budget breached") {
        return Diagnostic::error("E0203", "front matter is too large: its YAML expands past the safety limits")
            .at(span, "expansion stopped here")
            .help("front matter holds a few keys and lists; remove the anchors and aliases (`&x`, `*x`) that multiply it");
    }
    let message = message.trim_start_matches("error: ");
    let message = match message.find(": ").filter(|_| message.starts_with("line ")) {
        Some(i) => &message[i + 2..],
        None => message,
    };
    let mut d =
        Diagnostic::error("E0202", format!("invalid front matter: {message}")).at(span, "here");
    if message.contains("unknown field") {
        d = d.help(format!("the front matter keys are: {}", KEYS.join(", ")));
    } else if message.contains("invalid type") || message.contains("sequence") {
        d = d.help("`import`, `requires`, `required_concepts` and `exported_concepts` take a list, for example `import:\\n  - module-name`");
    }
    d
}

fn first_line(s: &str) -> String {
    // serde-saphyr appends a location and sometimes a snippet; keep the sentence.
    let line = s.lines().next().unwrap_or(s).trim();
    match line.find(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}
