//! The protocol loop. Every open `.plain` document is loaded as the entry spec of a project
//! ([`Analysis`]); a change reloads the projects that read the changed file, and diagnostics are
//! published for every file they read, merged across projects (a template open beside the spec
//! that imports it shows one list).

use crate::analysis::{clip, on_disk, Analysis};
use crate::docs::{self, Docs, Lines};
use crate::RenderInfo;
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, PrepareRenameRequest,
    References, Rename, Request as _,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams, GotoDefinitionResponse,
    Hover, HoverContents, HoverParams, HoverProviderCapability, MarkupContent, MarkupKind, OneOf,
    PrepareRenameResponse, PublishDiagnosticsParams, ReferenceParams, RenameOptions, RenameParams,
    ServerCapabilities, TextDocumentPositionParams, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use rekindle_diag::source::FileId;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![":".into(), "*".into()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        ..ServerCapabilities::default()
    }
}

struct Server<'c> {
    conn: &'c Connection,
    info: Box<dyn RenderInfo>,
    docs: Docs,
    analyses: HashMap<PathBuf, Analysis>,
    /// What each project last said about each file it reads.
    said: HashMap<PathBuf, HashMap<PathBuf, Vec<lsp_types::Diagnostic>>>,
}

/// Runs the server on `conn` until `exit`.
pub fn serve(conn: &Connection, info: Box<dyn RenderInfo>) -> Result<(), String> {
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    let init = serde_json::json!({
        "capabilities": caps,
        "serverInfo": {"name": "rekindle", "version": env!("CARGO_PKG_VERSION")},
    });
    let (id, _params) = conn.initialize_start().map_err(|e| e.to_string())?;
    conn.initialize_finish(id, init)
        .map_err(|e| e.to_string())?;
    let mut s = Server {
        conn,
        info,
        docs: Docs::default(),
        analyses: HashMap::new(),
        said: HashMap::new(),
    };
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req).map_err(|e| e.to_string())? {
                    return Ok(());
                }
                let id = req.id.clone();
                let resp = match s.request(req) {
                    Ok(value) => Response::new_ok(id, value),
                    Err((code, message)) => Response::new_err(id, code, message),
                };
                s.send(Message::Response(resp));
            }
            Message::Notification(n) => s.notification(n),
            Message::Response(_) => {}
        }
    }
    Ok(())
}

const INVALID_PARAMS: i32 = -32602;
const METHOD_NOT_FOUND: i32 = -32601;
const REQUEST_FAILED: i32 = -32803;

type Answer = Result<serde_json::Value, (i32, String)>;

fn params<P: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<P, (i32, String)> {
    serde_json::from_value(v).map_err(|e| (INVALID_PARAMS, e.to_string()))
}

fn json<T: serde::Serialize>(v: T) -> Answer {
    serde_json::to_value(v).map_err(|e| (REQUEST_FAILED, e.to_string()))
}

impl Server<'_> {
    fn send(&self, m: Message) {
        let _ = self.conn.sender.send(m);
    }

    fn notification(&mut self, n: Notification) {
        // Every document notification names its document the same way.
        let Some(path) = n.params["textDocument"]["uri"]
            .as_str()
            .and_then(|u| u.parse::<Uri>().ok())
            .and_then(|u| docs::path_of(&u))
        else {
            return;
        };
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Some(text) = n.params["textDocument"]["text"].as_str() else {
                    return;
                };
                self.docs.open(path.clone(), text.to_string());
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return;
                };
                self.docs.change(&path, p.content_changes);
            }
            // Saving may change what other projects read from disk (a template saved).
            DidSaveTextDocument::METHOD => {}
            DidCloseTextDocument::METHOD => {
                self.docs.close(&path);
                self.analyses.remove(&path);
                let old = self.said.remove(&path).unwrap_or_default();
                for file in old.keys() {
                    self.publish(file);
                }
                // Projects that read the closed file now read it from disk.
            }
            _ => return,
        }
        self.changed(&path);
    }

    /// Reloads every open project that reads `path` (and `path` itself when it is an open
    /// spec), then publishes the diagnostics of every file whose list may have changed.
    fn changed(&mut self, path: &Path) {
        let mut entries: Vec<PathBuf> = self
            .analyses
            .iter()
            .filter(|(_, a)| a.file(path).is_some())
            .map(|(e, _)| e.clone())
            .collect();
        if self.docs.get(path).is_some() && !entries.iter().any(|e| e == path) {
            entries.push(path.to_path_buf());
        }
        for entry in entries {
            if self.docs.get(&entry).is_none() {
                continue;
            }
            let a = Analysis::load(&entry, &self.docs);
            let now = a.diagnostics();
            let replaced = self.analyses.insert(entry.clone(), a);
            let old = self.said.insert(entry.clone(), now).unwrap_or_default();
            let mut files: HashSet<PathBuf> = old.into_keys().collect();
            files.extend(self.said[&entry].keys().cloned());
            for f in files {
                self.publish(&f);
            }
            // Freeing a large project takes a while: after the editor has its answer.
            drop(replaced);
        }
    }

    /// Publishes what every open project says about `file`, without repeats.
    fn publish(&self, file: &Path) {
        let Some(uri) = docs::uri_of(file) else {
            return;
        };
        let mut all: Vec<lsp_types::Diagnostic> = Vec::new();
        for said in self.said.values() {
            for d in said.get(file).into_iter().flatten() {
                if !all.contains(d) {
                    all.push(d.clone());
                }
            }
        }
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics: all,
            version: None,
        };
        self.send(Message::Notification(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            params,
        )));
    }

    fn request(&mut self, req: Request) -> Answer {
        match req.method.as_str() {
            GotoDefinition::METHOD => {
                let p: GotoDefinitionParams = params(req.params)?;
                self.definition(&p.text_document_position_params)
            }
            References::METHOD => {
                let p: ReferenceParams = params(req.params)?;
                self.references(&p.text_document_position)
            }
            HoverRequest::METHOD => {
                let p: HoverParams = params(req.params)?;
                self.hover(&p.text_document_position_params)
            }
            Completion::METHOD => {
                let p: CompletionParams = params(req.params)?;
                self.completion(&p.text_document_position)
            }
            DocumentSymbolRequest::METHOD => {
                let p: DocumentSymbolParams = params(req.params)?;
                let (a, file) = self.at_uri(&p.text_document.uri)?;
                json(DocumentSymbolResponse::Nested(a.symbols(file)))
            }
            PrepareRenameRequest::METHOD => {
                let p: TextDocumentPositionParams = params(req.params)?;
                self.prepare_rename(&p)
            }
            Rename::METHOD => {
                let p: RenameParams = params(req.params)?;
                self.rename(&p)
            }
            _ => Err((
                METHOD_NOT_FOUND,
                format!("rekindle lsp does not answer {}", req.method),
            )),
        }
    }

    /// The project of an open document, and the document's file in it.
    fn at_uri(&mut self, uri: &Uri) -> Result<(&Analysis, FileId), (i32, String)> {
        let path = docs::path_of(uri).ok_or_else(|| {
            (
                INVALID_PARAMS,
                format!("not a local file: {}", uri.as_str()),
            )
        })?;
        if !self.analyses.contains_key(&path) {
            // Asked about a file that is not open: load it from disk as it is.
            let a = Analysis::load(&path, &self.docs);
            self.analyses.insert(path.clone(), a);
        }
        let a = &self.analyses[&path];
        let file = a.file(&path).ok_or_else(|| {
            (
                REQUEST_FAILED,
                format!("{} could not be read", path.display()),
            )
        })?;
        Ok((a, file))
    }

    fn at(
        &mut self,
        p: &TextDocumentPositionParams,
    ) -> Result<(&Analysis, FileId, usize), (i32, String)> {
        let (a, file) = self.at_uri(&p.text_document.uri)?;
        let offset = docs::offset(a.text(file), p.position);
        Ok((a, file, offset))
    }

    fn definition(&mut self, p: &TextDocumentPositionParams) -> Answer {
        let (a, file, offset) = self.at(p)?;
        let Some((name, _)) = a.concept_at(file, offset) else {
            return json(serde_json::Value::Null);
        };
        let locations: Vec<_> = a.concepts()[name]
            .defined
            .iter()
            .filter_map(|(s, _)| a.location(*s))
            .collect();
        json(GotoDefinitionResponse::Array(locations))
    }

    fn references(&mut self, p: &TextDocumentPositionParams) -> Answer {
        let (a, file, offset) = self.at(p)?;
        let Some((name, _)) = a.concept_at(file, offset) else {
            return json(serde_json::Value::Null);
        };
        let locations: Vec<_> = a.concepts()[name]
            .used
            .iter()
            .filter_map(|s| a.location(*s))
            .collect();
        json(locations)
    }

    fn hover(&mut self, p: &TextDocumentPositionParams) -> Answer {
        let path = docs::path_of(&p.text_document.uri);
        let (a, file, offset) = self.at(p)?;
        let lines = Lines::new(a.text(file));
        if let Some((name, span)) = a.concept_at(file, offset) {
            let c = &a.concepts()[name];
            let mut text = String::new();
            if c.defined.is_empty() {
                text.push_str(&format!(
                    "**{name}** is not defined: add it under ***definitions***, or import the module that defines it."
                ));
            }
            for (s, def) in &c.defined {
                let f = a.project.sources.get(s.file);
                let line = f.line_col(s.start).0;
                text.push_str(&format!(
                    "**{name}**\n\n{}\n\n*defined in {}:{line}*\n\n",
                    def.trim(),
                    f.path.display()
                ));
            }
            let uses = c.used.len().saturating_sub(c.defined.len());
            text.push_str(&format!("{uses} use{}", if uses == 1 { "" } else { "s" }));
            return json(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: text,
                }),
                range: Some(lines.range(span.start as usize, span.end as usize)),
            });
        }
        if let Some((module, id, item)) = a.functionality_at(file, offset) {
            let mut text = format!(
                "**functionality {id} of module {module}**: {}",
                clip(item.text.lines().next().unwrap_or("").trim(), 120)
            );
            if !item.acceptance_tests.is_empty() {
                text.push_str(&format!(
                    "\n\n{} acceptance test{}",
                    item.acceptance_tests.len(),
                    if item.acceptance_tests.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ));
            }
            let module = module.to_string();
            let entry = path.unwrap_or_default();
            match self.info.functionality(&entry, &module, id) {
                Some(state) => text.push_str(&format!("\n\n{state}")),
                None => text.push_str("\n\nnot rendered yet"),
            }
            return json(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: text,
                }),
                range: None,
            });
        }
        json(serde_json::Value::Null)
    }

    fn completion(&mut self, p: &TextDocumentPositionParams) -> Answer {
        let (a, file, offset) = self.at(p)?;
        let text = a.text(file);
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let before = &text[line_start..offset];
        let lines = Lines::new(text);
        let mut items = Vec::new();
        // A section heading at the start of a line.
        let stars = before.trim_start_matches(' ');
        if !stars.is_empty() && stars.chars().all(|c| c == '*') {
            let from = offset - stars.len();
            for h in [
                "definitions",
                "implementation reqs",
                "test reqs",
                "functional specs",
                "acceptance tests",
            ] {
                let label = format!("***{h}***");
                items.push(CompletionItem {
                    label: label.clone(),
                    kind: Some(CompletionItemKind::KEYWORD),
                    text_edit: Some(lsp_types::CompletionTextEdit::Edit(TextEdit {
                        range: lines.range(from, offset),
                        new_text: label,
                    })),
                    ..CompletionItem::default()
                });
            }
            return json(CompletionResponse::Array(items));
        }
        // A concept after a `:`.
        let partial_len = before
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || b"+-._".contains(b))
            .count();
        let colon = before.len() - partial_len;
        if colon == 0 || before.as_bytes()[colon - 1] != b':' {
            return json(CompletionResponse::Array(items));
        }
        let from = line_start + colon - 1;
        // A closing `:` already typed after the cursor is replaced too.
        let to = if text[offset..].starts_with(':') {
            offset + 1
        } else {
            offset
        };
        for (name, c) in a.concepts() {
            if c.defined.is_empty() {
                continue;
            }
            let detail = c
                .defined
                .first()
                .map(|(_, d)| clip(d.lines().next().unwrap_or(""), 80));
            items.push(CompletionItem {
                label: name.clone(),
                kind: Some(CompletionItemKind::CONSTANT),
                detail,
                filter_text: Some(name.clone()),
                text_edit: Some(lsp_types::CompletionTextEdit::Edit(TextEdit {
                    range: lines.range(from, to),
                    new_text: name.clone(),
                })),
                ..CompletionItem::default()
            });
        }
        json(CompletionResponse::Array(items))
    }

    fn prepare_rename(&mut self, p: &TextDocumentPositionParams) -> Answer {
        let (a, file, offset) = self.at(p)?;
        let Some((name, span)) = a.concept_at(file, offset) else {
            return json(serde_json::Value::Null);
        };
        if let Some(why) = not_renamable(a, name) {
            return Err((REQUEST_FAILED, why));
        }
        let lines = Lines::new(a.text(file));
        json(PrepareRenameResponse::RangeWithPlaceholder {
            range: lines.range(span.start as usize + 1, span.end as usize - 1),
            placeholder: name.trim_matches(':').to_string(),
        })
    }

    // `WorkspaceEdit::changes` is keyed by `Uri` (lsp-types' choice); its hash never changes.
    #[allow(clippy::mutable_key_type)]
    fn rename(&mut self, p: &RenameParams) -> Answer {
        let (a, file, offset) = self.at(&p.text_document_position)?;
        let Some((name, _)) = a.concept_at(file, offset) else {
            return Err((REQUEST_FAILED, "no concept here to rename".into()));
        };
        let new = p.new_name.trim().trim_matches(':');
        let valid = !new.is_empty()
            && new
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b));
        if !valid {
            return Err((
                INVALID_PARAMS,
                format!(
                    "`{new}` is not a concept name: use letters, digits, `+`, `-`, `.` and `_`"
                ),
            ));
        }
        let new = format!(":{new}:");
        if rekindle_spec::concepts::is_reserved(&new) {
            return Err((INVALID_PARAMS, format!("{new} is reserved by the language")));
        }
        if a.concepts()
            .get(&new)
            .is_some_and(|c| !c.defined.is_empty())
        {
            return Err((REQUEST_FAILED, format!("{new} is already defined")));
        }
        if let Some(why) = not_renamable(a, name) {
            return Err((REQUEST_FAILED, why));
        }
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for s in &a.concepts()[name].used {
            let Some(loc) = a.location(*s) else {
                continue;
            };
            changes.entry(loc.uri).or_default().push(TextEdit {
                range: loc.range,
                new_text: new.clone(),
            });
        }
        json(WorkspaceEdit {
            changes: Some(changes),
            ..WorkspaceEdit::default()
        })
    }
}

/// Why a concept cannot be renamed here, if it cannot.
fn not_renamable(a: &Analysis, name: &str) -> Option<String> {
    if rekindle_spec::concepts::is_reserved(name) {
        return Some(format!("{name} is reserved by the language"));
    }
    let c = a.concepts().get(name)?;
    let built_in = c
        .defined
        .iter()
        .any(|(s, _)| !on_disk(&a.project.sources.get(s.file).path));
    built_in.then(|| {
        format!("{name} is defined in the built-in template library, which cannot be edited; copy the template beside the spec to change it")
    })
}
