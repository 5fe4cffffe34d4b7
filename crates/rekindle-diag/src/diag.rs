//! Diagnostics: what went wrong, where, and how to fix it; rendered like rustc's or as JSON.

use crate::source::{floor_char_boundary, SourceDb, Span};
use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled span.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One finding about a spec. `code` is stable (documented in docs/diagnostics.md) so that
/// editors, CI and tests can match on it.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn also(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Where a diagnostic points, resolved to a path and 1-based line and column.
#[derive(Debug, Serialize)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

pub fn position(db: &SourceDb, span: Span) -> Position {
    let file = db.get(span.file);
    let (line, column) = file.line_col(span.start);
    let (end_line, end_column) = file.line_col(span.end);
    Position {
        file: file.path.display().to_string(),
        line,
        column,
        end_line,
        end_column,
    }
}

/// The JSON shape of a diagnostic, for `--format json`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Position>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<JsonRelated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct JsonRelated {
    pub location: Position,
    pub message: String,
}

pub fn to_json(db: &SourceDb, d: &Diagnostic) -> JsonDiagnostic {
    JsonDiagnostic {
        code: d.code,
        severity: d.severity,
        message: d.message.clone(),
        location: d.primary.as_ref().map(|l| position(db, l.span)),
        label: d.primary.as_ref().map(|l| l.message.clone()),
        related: d
            .secondary
            .iter()
            .map(|l| JsonRelated {
                location: position(db, l.span),
                message: l.message.clone(),
            })
            .collect(),
        help: d.help.clone(),
        notes: d.notes.clone(),
    }
}

/// Renders a diagnostic the way rustc does: header, `--> file:line:col`, the source lines with the
/// span marked, then notes and help.
pub fn render(db: &SourceDb, d: &Diagnostic, color: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group =
        annotate_snippets::Group::with_title(level.primary_title(d.message.as_str()).id(d.code));
    // Labels on the same file share one snippet; others get their own.
    let mut labels: Vec<(&Label, bool)> = Vec::new();
    if let Some(p) = &d.primary {
        labels.push((p, true));
    }
    labels.extend(d.secondary.iter().map(|l| (l, false)));
    let mut files: Vec<crate::source::FileId> = Vec::new();
    for (l, _) in &labels {
        if !files.contains(&l.span.file) {
            files.push(l.span.file);
        }
    }
    let mut paths = Vec::new();
    let mut excerpts = Vec::new();
    for &file in &files {
        let src = db.get(file);
        paths.push(src.path.display().to_string());
        // Show only the lines the labels touch (with a line of context), so huge files stay cheap.
        let mine: Vec<&(&Label, bool)> =
            labels.iter().filter(|(l, _)| l.span.file == file).collect();
        let first = mine
            .iter()
            .map(|(l, _)| src.line_col(l.span.start).0)
            .min()
            .unwrap_or(1);
        let last = mine
            .iter()
            .map(|(l, _)| src.line_col(l.span.end).0)
            .max()
            .unwrap_or(1);
        let start = src.line_start(first - 1);
        let end = if last >= src.line_count() {
            src.text.len()
        } else {
            src.line_start(last) - 1
        };
        excerpts.push((file, first, start, end.max(start)));
    }
    for (i, (file, first, start, end)) in excerpts.iter().enumerate() {
        let src = db.get(*file);
        let mut snippet = Snippet::source(&src.text[*start..*end])
            .line_start(*first)
            .path(paths[i].as_str())
            .fold(true);
        for (l, primary) in labels.iter().filter(|(l, _)| l.span.file == *file) {
            // Spans from damaged input may not sit on character boundaries; widen them.
            let excerpt = &src.text[*start..*end];
            let s =
                floor_char_boundary(excerpt, (l.span.start as usize).clamp(*start, *end) - start);
            let e = ceil_char_boundary(excerpt, (l.span.end as usize).clamp(*start, *end) - start);
            let kind = if *primary {
                AnnotationKind::Primary
            } else {
                AnnotationKind::Context
            };
            snippet = snippet.annotation(kind.span(s..e).label(l.message.as_str()));
        }
        group = group.element(snippet);
    }
    for n in &d.notes {
        group = group.element(Level::NOTE.message(n.as_str()));
    }
    if let Some(h) = &d.help {
        group = group.element(Level::HELP.message(h.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}
