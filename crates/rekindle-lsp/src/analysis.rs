//! One loaded project: a spec opened in the editor, loaded as `rekindle check` loads it (its
//! config.yaml and rekindle.toml, imports, templates, links) through the open documents. Its
//! diagnostics are grouped by file; its concepts (every definition and use) are indexed the
//! first time a request needs them.

use crate::docs::{Docs, Lines, Overlay};
use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, DocumentSymbol, Location, NumberOrString,
    SymbolKind,
};
use rekindle_diag::diag::{Diagnostic, Severity};
use rekindle_diag::source::{FileId, SourceDb, Span};
use rekindle_spec::concepts;
use rekindle_spec::model::{Item, SectionKind};
use rekindle_spec::project::{self, Project};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a concept is defined and used.
#[derive(Default, Debug)]
pub struct Concept {
    /// The concept's name at the start of its definition, and the definition's text.
    pub defined: Vec<(Span, String)>,
    /// Every use, the defining occurrences included.
    pub used: Vec<Span>,
}

pub struct Analysis {
    pub entry: PathBuf,
    pub project: Project,
    pub config_db: SourceDb,
    pub config_diags: Vec<Diagnostic>,
    concepts: OnceCell<BTreeMap<String, Concept>>,
}

impl Analysis {
    /// Loads the project whose entry spec is `entry` (absolute), open documents first.
    pub fn load(entry: &Path, docs: &Docs) -> Analysis {
        let mut config_db = SourceDb::default();
        let mut config_diags = Vec::new();
        let settings = rekindle_config::load(
            entry,
            &rekindle_config::Overrides::default(),
            &mut config_db,
            &mut config_diags,
        );
        let opts = settings.project_options();
        let project = project::load(entry, &opts, &Overlay { docs });
        Analysis {
            entry: entry.to_path_buf(),
            project,
            config_db,
            config_diags,
            concepts: OnceCell::new(),
        }
    }

    /// Every file of the project on disk (the spec, its imports and includes, the config file)
    /// with its diagnostics, an empty list for a file that has none (so old ones are cleared).
    pub fn diagnostics(&self) -> HashMap<PathBuf, Vec<lsp_types::Diagnostic>> {
        let mut out = HashMap::new();
        for (db, diags) in [
            (&self.project.sources, &self.project.diagnostics),
            (&self.config_db, &self.config_diags),
        ] {
            let mut by_file: HashMap<FileId, Vec<&Diagnostic>> = HashMap::new();
            let mut unplaced = Vec::new();
            for d in diags {
                match &d.primary {
                    Some(l) => by_file.entry(l.span.file).or_default().push(d),
                    None => unplaced.push(d),
                }
            }
            for (id, f) in db.files() {
                if !on_disk(&f.path) {
                    continue;
                }
                let path = absolute(&f.path);
                let list: &mut Vec<lsp_types::Diagnostic> = out.entry(path).or_default();
                let Some(ds) = by_file.get(&id) else {
                    continue;
                };
                let lines = Lines::new(&f.text);
                for d in ds {
                    list.push(to_lsp(db, d, &lines));
                }
            }
            // A diagnostic with no place (a config file that does not parse at all, a module
            // that cannot be found) goes on the first line of the entry spec.
            if !unplaced.is_empty() {
                let list = out.entry(self.entry.clone()).or_default();
                for d in unplaced {
                    let mut l = to_lsp(db, d, &Lines::new(""));
                    l.range = lsp_types::Range::default();
                    list.push(l);
                }
            }
        }
        out
    }

    /// The loaded file at `path`, if the project read it.
    pub fn file(&self, path: &Path) -> Option<FileId> {
        self.project
            .sources
            .files()
            .find(|(_, f)| on_disk(&f.path) && absolute(&f.path) == path)
            .map(|(id, _)| id)
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.project.sources.get(file).text
    }

    /// Where `span` is, for the editor (`None` for the built-in library, which is not a file).
    pub fn location(&self, span: Span) -> Option<Location> {
        let f = self.project.sources.get(span.file);
        if !on_disk(&f.path) {
            return None;
        }
        let lines = Lines::new(&f.text);
        Some(Location {
            uri: crate::docs::uri_of(&absolute(&f.path))?,
            range: lines.range(span.start as usize, span.end as usize),
        })
    }

    /// Every concept of the project, by name (`:Name:`).
    pub fn concepts(&self) -> &BTreeMap<String, Concept> {
        self.concepts.get_or_init(|| index(&self.project))
    }

    /// The concept written at `offset` of `file`, with the span of that occurrence.
    pub fn concept_at(&self, file: FileId, offset: usize) -> Option<(&str, Span)> {
        self.concepts().iter().find_map(|(name, c)| {
            c.used
                .iter()
                .find(|s| s.file == file && (s.start as usize..=s.end as usize).contains(&offset))
                .map(|s| (name.as_str(), *s))
        })
    }

    /// The functionality written at `offset` of `file`: its module, number and item.
    pub fn functionality_at(&self, file: FileId, offset: usize) -> Option<(&str, usize, &Item)> {
        let inside =
            |s: &Span| s.file == file && (s.start as usize..=s.end as usize).contains(&offset);
        for rm in &self.project.render_order {
            let module = self.project.module(rm.module);
            for (i, item) in rm.sections.functional_specs.iter().enumerate() {
                if inside(&item.span) {
                    return Some((module.name.as_str(), i + 1, item));
                }
            }
        }
        None
    }

    /// The sections of the module in `file` and their items, as an outline.
    pub fn symbols(&self, file: FileId) -> Vec<DocumentSymbol> {
        let Some(module) = self.project.modules.iter().find(|m| m.file == file) else {
            return Vec::new();
        };
        let lines = Lines::new(self.text(file));
        let mut out = Vec::new();
        let own = &module.own;
        let mut headings = own.headings.clone();
        headings.sort_by_key(|(_, s)| s.start);
        for (i, (kind, heading)) in headings.iter().enumerate() {
            if heading.file != file {
                continue;
            }
            let next = headings
                .get(i + 1)
                .map(|(_, s)| s.start as usize)
                .unwrap_or(self.text(file).len());
            let items: Vec<&Arc<Item>> = own
                .list(*kind)
                .iter()
                .filter(|it| {
                    it.span.file == file
                        && it.span.start >= heading.start
                        && (it.span.start as usize) < next
                })
                .collect();
            let children: Vec<DocumentSymbol> = items
                .iter()
                .enumerate()
                .map(|(n, it)| {
                    let first = it.text.lines().next().unwrap_or("").trim();
                    let name = if *kind == SectionKind::FunctionalSpecs {
                        format!("{}. {}", n + 1, clip(first, 80))
                    } else {
                        clip(first, 80)
                    };
                    symbol(
                        name,
                        item_kind(*kind),
                        lines.range(it.span.start as usize, it.span.end as usize),
                        None,
                    )
                })
                .collect();
            let end = items
                .last()
                .map(|it| it.span.end as usize)
                .unwrap_or(heading.end as usize);
            out.push(symbol(
                format!("***{}***", kind.heading()),
                SymbolKind::NAMESPACE,
                lines.range(heading.start as usize, end),
                Some(children),
            ));
        }
        out
    }
}

/// Concepts defined in every module's own definitions, and used anywhere in any module's own
/// sections (acceptance tests included).
fn index(p: &Project) -> BTreeMap<String, Concept> {
    let mut out: BTreeMap<String, Concept> = BTreeMap::new();
    for m in &p.modules {
        for item in &m.own.definitions {
            for (name, span) in concepts::defined_by(&p.bodies, item, None) {
                out.entry(name)
                    .or_default()
                    .defined
                    .push((span, item.text.clone()));
            }
        }
        let kinds = [
            SectionKind::Definitions,
            SectionKind::ImplementationReqs,
            SectionKind::TestReqs,
            SectionKind::FunctionalSpecs,
        ];
        for kind in kinds {
            for item in m.own.list(kind) {
                let all = std::iter::once(item).chain(item.acceptance_tests.iter());
                for it in all {
                    for u in concepts::used_in(&p.bodies, it) {
                        out.entry(u.name.to_string())
                            .or_default()
                            .used
                            .push(u.span());
                    }
                }
            }
        }
    }
    for c in out.values_mut() {
        c.used.sort_by_key(|s| (s.file, s.start));
        c.used.dedup();
    }
    out
}

#[allow(deprecated)]
fn symbol(
    name: String,
    kind: SymbolKind,
    range: lsp_types::Range,
    children: Option<Vec<DocumentSymbol>>,
) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range: lsp_types::Range::new(range.start, range.start),
        children,
    }
}

fn item_kind(kind: SectionKind) -> SymbolKind {
    match kind {
        SectionKind::Definitions => SymbolKind::CONSTANT,
        SectionKind::FunctionalSpecs => SymbolKind::FUNCTION,
        _ => SymbolKind::STRING,
    }
}

pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Whether a loaded file is a file on disk (not the built-in library).
pub fn on_disk(path: &Path) -> bool {
    !path.starts_with(rekindle_spec::library::PREFIX)
}

fn absolute(path: &Path) -> PathBuf {
    rekindle_spec::loader::normalize(
        &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    )
}

/// A diagnostic as the editor shows it: its code, its message with the help and notes, and its
/// other labels as related places.
fn to_lsp(db: &SourceDb, d: &Diagnostic, lines: &Lines<'_>) -> lsp_types::Diagnostic {
    let range = d
        .primary
        .as_ref()
        .map(|l| lines.range(l.span.start as usize, l.span.end as usize))
        .unwrap_or_default();
    let mut message = d.message.clone();
    if let Some(l) = d.primary.as_ref().filter(|l| !l.message.is_empty()) {
        message.push_str(&format!(" ({})", l.message));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            let f = db.get(l.span.file);
            if !on_disk(&f.path) {
                return None;
            }
            let flines = Lines::new(&f.text);
            Some(DiagnosticRelatedInformation {
                location: Location {
                    uri: crate::docs::uri_of(&absolute(&f.path))?,
                    range: flines.range(l.span.start as usize, l.span.end as usize),
                },
                message: l.message.clone(),
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("rekindle".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}
