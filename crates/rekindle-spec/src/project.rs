//! Loading a project: the entry spec, the modules it imports and requires, in render order, each
//! validated with everything it sees merged in.
//!
//! Module lookup (for `import`, `requires`): the entry spec's folder, then each template folder
//! in order, then the built-in library. `import` merges definitions and reqs (imported first);
//! `requires` names modules rendered before this one, which must form a single chain.

use crate::concepts;
use crate::diag::Diagnostic;
use crate::front_matter::{self, FrontMatter};
use crate::library;
use crate::loader::{normalize, Fs};
use crate::model::{SectionKind, Sections};
use crate::resources;
use crate::roots::Roots;
use crate::source::{decode, decode_owned, DecodeError, FileId, SourceDb, Span};
use crate::syntax;
use crate::template::{self, CodeVar, Expanded, IncludeError, Includes};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// How to find modules and what to allow.
#[derive(Clone, Debug)]
pub struct Options {
    /// Folders searched after the entry spec's own folder, in order.
    pub search_dirs: Vec<PathBuf>,
    /// Extra folders that linked resources and includes may come from (`[spec] roots`; the
    /// other roots are in [`crate::roots`]).
    pub roots: Vec<PathBuf>,
    pub builtin_library: bool,
    pub max_resource_bytes: u64,
    pub max_spec_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            search_dirs: Vec::new(),
            roots: Vec::new(),
            builtin_library: true,
            max_resource_bytes: 1 << 20,
            max_spec_bytes: 64 << 20,
        }
    }
}

pub type ModuleId = usize;

/// One `.plain` file as parsed.
#[derive(Debug)]
pub struct Module {
    pub name: String,
    pub file: FileId,
    pub front: FrontMatter,
    /// The module's own sections, before imports.
    pub own: Sections,
    pub body: u32,
    pub code_vars: Vec<CodeVar>,
    /// The body could not be read as Markdown at all; checks that would only repeat that are
    /// skipped.
    pub unreadable: bool,
}

/// A module to render, with everything its prompts will see.
#[derive(Debug)]
pub struct RenderModule {
    pub module: ModuleId,
    /// Imported definitions and reqs, then its own, then definitions exported by the modules
    /// it directly requires.
    pub sections: Sections,
    /// The modules named in its `requires`, resolved.
    pub requires: Vec<ModuleId>,
}

#[derive(Debug, Default)]
pub struct Project {
    pub sources: SourceDb,
    pub bodies: Vec<Expanded>,
    pub modules: Vec<Module>,
    /// Required modules first, the entry last.
    pub render_order: Vec<RenderModule>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every linked resource, read once, in the order the links were checked.
    resources: Vec<resources::Resource>,
    /// (linking file, target as written) → index in `resources`.
    resource_index: HashMap<(FileId, String), usize>,
}

impl Project {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id]
    }

    /// The resource `link` names, as the loader read it (`None` when the link is bad).
    pub fn resource(&self, link: &crate::model::Link) -> Option<&resources::Resource> {
        self.resource_index
            .get(&(link.from, link.target.clone()))
            .map(|&i| &self.resources[i])
    }

    /// Every linked resource the project reads.
    pub fn resources(&self) -> &[resources::Resource] {
        &self.resources
    }
}

/// Loads `entry` and everything it needs. Never fails: problems are in `diagnostics`.
pub fn load(entry: &Path, opts: &Options, fs: &dyn Fs) -> Project {
    let entry_dir = entry
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let roots = Roots::new(fs, &entry_dir, &opts.search_dirs, &opts.roots);
    let mut l = Loader {
        fs,
        opts,
        entry_dir,
        roots,
        p: Project::default(),
        by_path: HashMap::new(),
        merged: HashMap::new(),
        checked_links: HashSet::new(),
        include_verdicts: HashMap::new(),
    };
    l.run(entry);
    let mut p = l.p;
    dedup(&mut p.diagnostics);
    p
}

fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    diags.retain(|d| {
        seen.insert((
            d.code,
            d.primary.as_ref().map(|l| l.span),
            d.message.clone(),
        ))
    });
}

struct Merged {
    sections: Sections,
}

struct Loader<'a> {
    fs: &'a dyn Fs,
    opts: &'a Options,
    entry_dir: PathBuf,
    roots: Roots,
    p: Project,
    by_path: HashMap<PathBuf, ModuleId>,
    merged: HashMap<ModuleId, Rc<Merged>>,
    checked_links: HashSet<Span>,
    /// Include targets already checked against the roots (see [`IncludeCx::locate`]).
    include_verdicts: HashMap<PathBuf, Result<PathBuf, PathBuf>>,
}

enum Found {
    File(PathBuf),
    Builtin(&'static str),
}

/// Resolves `{% include %}` targets: beside the including file, then the search folders, then
/// the built-in library. A target found outside the project's roots is refused before it is
/// read.
struct IncludeCx<'b> {
    fs: &'b dyn Fs,
    sources: &'b mut SourceDb,
    dirs: Vec<PathBuf>,
    roots: &'b Roots,
    verdicts: &'b mut HashMap<PathBuf, Result<PathBuf, PathBuf>>,
    builtin: bool,
    max: u64,
}

impl IncludeCx<'_> {
    /// Where `path` really is (links and `..` resolved as the file system does): `Ok` inside
    /// the roots, `Err` outside.
    fn locate(&mut self, path: &Path) -> Result<PathBuf, PathBuf> {
        if let Some(v) = self.verdicts.get(path) {
            return v.clone();
        }
        let v = match self.fs.canonicalize(path) {
            Ok(real) if self.roots.contains(&real) => Ok(real),
            Ok(real) => Err(real),
            // Found a moment ago but not now: refuse rather than read it unchecked.
            Err(_) => Err(path.to_path_buf()),
        };
        self.verdicts.insert(path.to_path_buf(), v.clone());
        v
    }
}

impl Includes for IncludeCx<'_> {
    fn include(&mut self, name: &str, from: FileId) -> Result<(FileId, String), IncludeError> {
        if Path::new(name).is_absolute() {
            return Err(IncludeError::Missing(
                "an include must be a relative path".into(),
            ));
        }
        let from_path = self.sources.get(from).path.clone();
        let mut candidates = Vec::new();
        if !from_path.starts_with(library::PREFIX) {
            if let Some(dir) = from_path.parent() {
                candidates.push(dir.join(name));
            }
        }
        candidates.extend(self.dirs.iter().map(|d| d.join(name)));
        for c in &candidates {
            if !self.fs.is_file(c) {
                continue;
            }
            // The file is read only at its real location, and only once that is known to be
            // inside the project.
            let real = self
                .locate(c)
                .map_err(|resolved| IncludeError::Outside { resolved })?;
            let path = normalize(c);
            if let Some(id) = self.sources.find(&path) {
                return Ok((id, self.sources.get(id).text.clone()));
            }
            if self.fs.len(&real).map_err(|e| e.to_string())? > self.max {
                return Err(format!("{} is larger than {} bytes", c.display(), self.max).into());
            }
            let bytes = self
                .fs
                .read(&real)
                .map_err(|e| format!("cannot read {}: {e}", c.display()))?;
            let text = decode(&bytes).map_err(|e| match e {
                DecodeError::InvalidUtf8 { line, column, .. } => {
                    format!(
                        "{} is not UTF-8 (line {line}, column {column})",
                        c.display()
                    )
                }
                DecodeError::Binary { .. } => format!("{} is a binary file", c.display()),
            })?;
            let id = self.sources.add(path, text.clone());
            return Ok((id, text));
        }
        if self.builtin {
            if let Some(text) = library::get(name) {
                let path = PathBuf::from(library::PREFIX).join(name);
                let id = match self.sources.find(&path) {
                    Some(id) => id,
                    None => self.sources.add(path, text.to_string()),
                };
                return Ok((id, text.to_string()));
            }
        }
        Err(format!(
            "not found (looked in {})",
            candidates
                .iter()
                .filter_map(|c| c.parent())
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into())
    }
}

fn module_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A module's name is also the name of its folder in the build folder, so it must be one plain
/// name: not empty, not `.` or `..`, no `/` or `\`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn not_plain(name: &str) -> Diagnostic {
    Diagnostic::error(
        "E0704",
        format!("`{name}` is not a plain module name"),
    )
    .help("name a module by its file name without `.plain` and without a folder (it also names the module's folder in the build folder); add the folder that holds it with --template-dir or `template-dir` in config.yaml")
}

impl Loader<'_> {
    fn run(&mut self, entry: &Path) {
        if entry.extension().and_then(|e| e.to_str()) != Some("plain") {
            self.p.diagnostics.push(
                Diagnostic::error(
                    "E0105",
                    format!("`{}` is not a .plain file", entry.display()),
                )
                .help("***plain specs are files whose names end in .plain"),
            );
            return;
        }
        if !self.fs.is_file(entry) {
            self.p.diagnostics.push(
                Diagnostic::error(
                    "E0101",
                    format!("cannot read `{}`: no such file", entry.display()),
                )
                .help("check the path; it is relative to the current folder"),
            );
            return;
        }
        let name = module_name(entry);
        if !is_plain_name(&name) {
            self.p.diagnostics.push(not_plain(&name));
            return;
        }
        let Some(root) = self.load_found(&name, Found::File(entry.to_path_buf()), None) else {
            return;
        };
        let mut chain = Vec::new();
        self.requires_chain(root, &mut vec![root], &mut chain);
        chain.push(root);
        for m in chain {
            let rm = self.render_module(m);
            self.p.render_order.push(rm);
        }
    }

    fn find(&self, name: &str) -> Result<Found, Vec<String>> {
        let mut looked = Vec::new();
        if is_plain_name(name) {
            let file = format!("{name}.plain");
            for dir in std::iter::once(&self.entry_dir).chain(&self.opts.search_dirs) {
                let p = normalize(&dir.join(&file));
                if self.fs.is_file(&p) {
                    return Ok(Found::File(p));
                }
                looked.push(dir.display().to_string());
            }
            if self.opts.builtin_library {
                if let Some(t) = library::get(name) {
                    return Ok(Found::Builtin(t));
                }
                looked.push("the built-in library".into());
            }
        }
        Err(looked)
    }

    fn resolve(&mut self, name: &str, site: Span, what: &str) -> Option<ModuleId> {
        if !is_plain_name(name) {
            self.p
                .diagnostics
                .push(not_plain(name).at(site, format!("{what} here")));
            return None;
        }
        match self.find(name) {
            Ok(found) => self.load_found(name, found, Some(site)),
            Err(looked) => {
                let mut d = Diagnostic::error("E0701", format!("module `{name}` not found"))
                    .at(site, format!("{what} here"));
                if !looked.is_empty() {
                    d = d.note(format!(
                        "looked for `{name}.plain` in: {}",
                        looked.join(", ")
                    ));
                }
                self.p.diagnostics.push(d.help(
                    "check the name (without .plain), or add the folder that holds it with --template-dir or `template-dir` in config.yaml",
                ));
                None
            }
        }
    }

    fn load_found(&mut self, name: &str, found: Found, site: Option<Span>) -> Option<ModuleId> {
        let (path, key, bytes) = match found {
            Found::File(p) => {
                let key = self.fs.canonicalize(&p).unwrap_or_else(|_| normalize(&p));
                if let Some(&id) = self.by_path.get(&key) {
                    return Some(id);
                }
                let too_big = self
                    .fs
                    .len(&p)
                    .map(|n| n > self.opts.max_spec_bytes)
                    .unwrap_or(false);
                if too_big {
                    let mut d = Diagnostic::error(
                        "E0104",
                        format!(
                            "`{}` is larger than {} MiB",
                            p.display(),
                            self.opts.max_spec_bytes >> 20
                        ),
                    );
                    if let Some(s) = site {
                        d = d.at(s, "needed here");
                    }
                    self.p
                        .diagnostics
                        .push(d.help("split the spec into modules"));
                    return None;
                }
                match self.fs.read(&p) {
                    Ok(b) => (p, key, b),
                    Err(e) => {
                        let mut d = Diagnostic::error(
                            "E0101",
                            format!("cannot read `{}`: {e}", p.display()),
                        );
                        if let Some(s) = site {
                            d = d.at(s, "needed here");
                        }
                        self.p.diagnostics.push(d);
                        return None;
                    }
                }
            }
            Found::Builtin(text) => {
                let p = PathBuf::from(library::PREFIX).join(format!("{name}.plain"));
                if let Some(&id) = self.by_path.get(&p) {
                    return Some(id);
                }
                (p.clone(), p, text.as_bytes().to_vec())
            }
        };
        let text = match decode_owned(bytes) {
            Ok(t) => t,
            Err((e, bytes)) => {
                let lossy = String::from_utf8_lossy(&bytes).replace('\0', " ");
                let file = self.p.sources.add(path.clone(), lossy);
                let src = self.p.sources.get(file);
                let d = match e {
                    DecodeError::InvalidUtf8 { line, column, .. } => {
                        let line_text = src.line_text(line - 1);
                        let col: usize =
                            line_text.chars().take(column - 1).map(char::len_utf8).sum();
                        let width = line_text[col..].chars().next().map_or(0, char::len_utf8);
                        let start = src.line_start(line - 1) + col;
                        Diagnostic::error(
                            "E0102",
                            format!("`{}` is not valid UTF-8", path.display()),
                        )
                        .at(Span::new(file, start, start + width), "invalid byte here")
                        .help("save the file as UTF-8")
                    }
                    DecodeError::Binary { offset } => Diagnostic::error(
                        "E0103",
                        format!("`{}` is a binary file, not a spec", path.display()),
                    )
                    .at(Span::new(file, offset, offset + 1), "NUL byte here"),
                };
                self.p.diagnostics.push(d);
                return None;
            }
        };
        let file = self.p.sources.add(path, text);
        let (front, body_start) =
            front_matter::split(self.p.sources.get(file), file, &mut self.p.diagnostics);
        let body_id = self.p.bodies.len() as u32;
        let text = self.p.sources.take_text(file);
        let mut inc = IncludeCx {
            fs: self.fs,
            sources: &mut self.p.sources,
            dirs: self.opts.search_dirs.clone(),
            roots: &self.roots,
            verdicts: &mut self.include_verdicts,
            builtin: self.opts.builtin_library,
            max: self.opts.max_spec_bytes,
        };
        let (expanded, code_vars) = template::expand(
            file,
            &text[body_start.min(text.len())..],
            body_start,
            &mut inc,
            &mut self.p.diagnostics,
        );
        self.p.sources.restore_text(file, text);
        let before = self.p.diagnostics.len();
        let parsed = syntax::parse(&expanded, body_id, &mut self.p.diagnostics);
        let unreadable = self.p.diagnostics[before..]
            .iter()
            .any(|d| d.code == syntax::UNREADABLE);
        self.p.bodies.push(expanded);
        let id = self.p.modules.len();
        self.p.modules.push(Module {
            name: name.to_string(),
            file,
            front,
            own: Sections::from_parsed(parsed),
            body: body_id,
            code_vars,
            unreadable,
        });
        self.by_path.insert(key, id);
        Some(id)
    }

    /// `a → b → a`: the modules from `pos` in `trace`, closed by `id`.
    fn ring(&self, trace: &[ModuleId], pos: usize, id: ModuleId) -> String {
        let mut ring = trace[pos..].to_vec();
        ring.push(id);
        self.names(&ring)
    }

    fn names(&self, ids: &[ModuleId]) -> String {
        ids.iter()
            .map(|&i| self.p.modules[i].name.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// The reference's rule: required modules form one chain, each building on the one before.
    fn requires_chain(
        &mut self,
        m: ModuleId,
        trace: &mut Vec<ModuleId>,
        chain: &mut Vec<ModuleId>,
    ) {
        for entry in self.p.modules[m].front.requires.clone() {
            let Some(id) = self.resolve(&entry.text, entry.span, "required") else {
                continue;
            };
            if let Some(pos) = trace.iter().position(|&t| t == id) {
                let names = self.ring(trace, pos, id);
                self.p.diagnostics.push(
                    Diagnostic::error("E0712", format!("modules require each other: {names}"))
                        .at(entry.span, "this requirement closes the cycle")
                        .help("a module can only require modules rendered before it; remove one of these `requires`"),
                );
                continue;
            }
            if chain.last() == Some(&id) {
                continue;
            }
            if self.p.modules[id].front.requires.is_empty() {
                if let Some(&last) = chain.last() {
                    let (this, prev) = (
                        self.p.modules[id].name.clone(),
                        self.p.modules[last].name.clone(),
                    );
                    self.p.diagnostics.push(
                        Diagnostic::error("E0713", format!("required modules must form a single chain, but `{this}` would start a second one"))
                            .at(entry.span, format!("`{this}` requires nothing, so it cannot come after `{prev}`"))
                            .help("rekindle renders required modules one after another, each building on the one before: make each module require the one before it, and list only the last module of the chain under `requires`"),
                    );
                    continue;
                }
            } else {
                trace.push(id);
                self.requires_chain(id, trace, chain);
                trace.pop();
            }
            if !chain.contains(&id) {
                chain.push(id);
            }
        }
    }

    /// A module's own sections with its imports merged in (imported items first), cached.
    fn merged(&mut self, m: ModuleId) -> Rc<Merged> {
        if let Some(r) = self.merged.get(&m) {
            return r.clone();
        }
        let mut out = Sections::default();
        let mut required: Vec<(String, Span, Span)> = Vec::new();
        let mut seen = HashSet::new();
        self.collect_imports(m, &mut vec![m], &mut seen, &mut out, &mut required, None);
        let own = self.p.modules[m].own.clone();
        out.definitions.extend(own.definitions);
        out.implementation_reqs.extend(own.implementation_reqs);
        out.test_reqs.extend(own.test_reqs);
        out.functional_specs.extend(own.functional_specs);
        out.headings = own.headings;
        let defined: HashSet<String> = out
            .definitions
            .iter()
            .flat_map(|i| concepts::defined_by(&self.p.bodies, i, None))
            .map(|(n, _)| n)
            .collect();
        let name = self.p.modules[m].name.clone();
        for (concept, at, site) in required {
            if defined.contains(&concept) {
                continue;
            }
            self.p.diagnostics.push(
                Diagnostic::error(
                    "E0505",
                    format!("required concept `{concept}` is not defined in `{name}`"),
                )
                .at(site, format!("this import requires `{concept}`"))
                .also(at, "required here")
                .help(format!(
                    "define it under ***definitions*** in `{name}`: `- {concept} is …`"
                )),
            );
        }
        let r = Rc::new(Merged { sections: out });
        self.merged.insert(m, r.clone());
        r
    }

    fn collect_imports(
        &mut self,
        m: ModuleId,
        trace: &mut Vec<ModuleId>,
        seen: &mut HashSet<ModuleId>,
        out: &mut Sections,
        required: &mut Vec<(String, Span, Span)>,
        site: Option<Span>,
    ) {
        for entry in self.p.modules[m].front.import.clone() {
            let Some(id) = self.resolve(&entry.text, entry.span, "imported") else {
                continue;
            };
            if let Some(pos) = trace.iter().position(|&t| t == id) {
                let names = self.ring(trace, pos, id);
                self.p.diagnostics.push(
                    Diagnostic::error("E0702", format!("modules import each other: {names}"))
                        .at(entry.span, "this import closes the cycle")
                        .help("remove one of these imports; shared definitions can move to a module both import"),
                );
                continue;
            }
            if !seen.insert(id) {
                continue;
            }
            let top = site.unwrap_or(entry.span);
            trace.push(id);
            self.collect_imports(id, trace, seen, out, required, Some(top));
            trace.pop();
            let imported = &self.p.modules[id];
            if let Some(h) = imported.own.heading(SectionKind::FunctionalSpecs) {
                let name = imported.name.clone();
                self.p.diagnostics.push(
                    Diagnostic::error("E0703", format!("imported module `{name}` has functional specs"))
                        .at(entry.span, "imported here")
                        .also(h, "its functional specs")
                        .help("imported modules may only provide definitions, implementation reqs and test reqs; use `requires` to build on a module that has functionalities"),
                );
                continue;
            }
            out.definitions
                .extend(imported.own.definitions.iter().cloned());
            out.implementation_reqs
                .extend(imported.own.implementation_reqs.iter().cloned());
            out.test_reqs.extend(imported.own.test_reqs.iter().cloned());
            for rc in imported.front.required_concepts.clone() {
                match concepts::defines(&rc.text) {
                    concepts::Defines::Concepts(v) => {
                        for (s, e) in v {
                            required.push((rc.text[s..e].to_string(), rc.span, top));
                        }
                    }
                    _ => self.p.diagnostics.push(concept_entry_error(
                        "required_concepts",
                        &rc.text,
                        rc.span,
                    )),
                }
            }
        }
    }

    fn render_module(&mut self, m: ModuleId) -> RenderModule {
        let mut sections = self.merged(m).sections.clone();
        let mut requires = Vec::new();
        for entry in self.p.modules[m].front.requires.clone() {
            if let Ok(found) = self.find(&entry.text) {
                if let Some(id) = self.load_found(&entry.text, found, Some(entry.span)) {
                    requires.push(id);
                    self.add_exports(id, &mut sections);
                }
            }
        }
        self.validate(m, &sections);
        RenderModule {
            module: m,
            sections,
            requires,
        }
    }

    /// Definitions a required module exports (with those they build on) join the module's own.
    fn add_exports(&mut self, from: ModuleId, into: &mut Sections) {
        let merged = self.merged(from);
        let bodies = &self.p.bodies;
        let defs = &merged.sections.definitions;
        let by_concept: Vec<Vec<String>> = defs
            .iter()
            .map(|i| {
                concepts::defined_by(bodies, i, None)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect()
            })
            .collect();
        let from_name = self.p.modules[from].name.clone();
        let mut diags = Vec::new();
        let mut picked: Vec<usize> = Vec::new();
        for ex in &self.p.modules[from].front.exported_concepts {
            let names: Vec<String> = match concepts::defines(&ex.text) {
                concepts::Defines::Concepts(v) => {
                    v.iter().map(|&(s, e)| ex.text[s..e].to_string()).collect()
                }
                _ => {
                    diags.push(concept_entry_error("exported_concepts", &ex.text, ex.span));
                    continue;
                }
            };
            for name in names {
                if concepts::is_reserved(&name) {
                    diags.push(
                        Diagnostic::error(
                            "E0509",
                            format!("`{name}` is predefined and cannot be exported"),
                        )
                        .at(ex.span, "exported here")
                        .help("only concepts the module defines itself can be exported"),
                    );
                    continue;
                }
                let mut work = vec![name.clone()];
                let mut visited = HashSet::new();
                let mut found_any = false;
                while let Some(c) = work.pop() {
                    if !visited.insert(c.clone()) {
                        continue;
                    }
                    for (i, names) in by_concept.iter().enumerate() {
                        if !names.contains(&c) {
                            continue;
                        }
                        found_any |= c == name;
                        if !picked.contains(&i) {
                            picked.push(i);
                        }
                        for u in concepts::used_in(bodies, &defs[i]) {
                            if !concepts::is_reserved(u.name) {
                                work.push(u.name.to_string());
                            }
                        }
                    }
                }
                if !found_any {
                    diags.push(
                        Diagnostic::error("E0506", format!("`{from_name}` exports `{name}` but does not define it"))
                            .at(ex.span, "exported here")
                            .help(format!("define `{name}` under ***definitions*** in `{from_name}`, or remove it from `exported_concepts`")),
                    );
                }
            }
        }
        for i in picked {
            let item = &defs[i];
            if !into.definitions.iter().any(|d| d.text == item.text) {
                into.definitions.push(item.clone());
            }
        }
        self.p.diagnostics.extend(diags);
    }

    fn validate(&mut self, m: ModuleId, s: &Sections) {
        let module = &self.p.modules[m];
        let name = module.name.clone();
        let file_start = Span::new(module.file, 0, 0);
        let fs_heading = s.heading(SectionKind::FunctionalSpecs);
        let file = module.file;
        let diags = &mut self.p.diagnostics;
        // A misspelled or unreadable section was already reported; "no functional specs" would
        // only repeat it.
        let unreadable = module.unreadable
            || diags.iter().any(|d| {
                d.code == "E0404" && d.primary.as_ref().is_some_and(|l| l.span.file == file)
            });
        if unreadable {
            // Already reported as unreadable; its sections are unknown.
        } else if s.functional_specs.is_empty() {
            diags.push(match fs_heading {
                Some(h) => Diagnostic::error("E0721", format!("module `{name}` has an empty ***functional specs*** section"))
                    .at(h, "no functionality under this heading")
                    .help("add at least one functionality as a list item `- ` under the heading"),
                None => Diagnostic::error("E0720", format!("module `{name}` has no functional specs"))
                    .at(file_start, "nothing to render in this module")
                    .help("add a ***functional specs*** section with at least one `- ` item; a module with only definitions and reqs is meant to be imported, not rendered"),
            });
        } else if s.implementation_reqs.is_empty() {
            let at = fs_heading.unwrap_or(s.functional_specs[0].span);
            diags.push(
                Diagnostic::error("E0722", format!("module `{name}` has functionalities but no implementation reqs"))
                    .at(at, "functionalities here")
                    .help("add ***implementation reqs*** with at least one item, or import a template such as python-console-app-template"),
            );
        }
        concepts::validate(&self.p.bodies, s, &mut self.p.diagnostics);
        let items = [
            &s.definitions,
            &s.implementation_reqs,
            &s.test_reqs,
            &s.functional_specs,
        ];
        for item in items.into_iter().flatten() {
            let tests = item.acceptance_tests.iter();
            for it in std::iter::once(item).chain(tests) {
                for link in &it.links {
                    if !self.checked_links.insert(link.span) {
                        continue;
                    }
                    let from = self.p.sources.get(link.from).path.clone();
                    let search: Vec<&Path> = std::iter::once(self.entry_dir.as_path())
                        .chain(self.opts.search_dirs.iter().map(PathBuf::as_path))
                        .collect();
                    let resolved = resources::check(
                        self.fs,
                        link,
                        &from,
                        &search,
                        &self.roots,
                        self.opts.max_resource_bytes,
                        &mut self.p.diagnostics,
                    );
                    let key = (link.from, link.target.clone());
                    if let (Some(r), false) = (resolved, self.p.resource_index.contains_key(&key)) {
                        self.p.resource_index.insert(key, self.p.resources.len());
                        self.p.resources.push(r);
                    }
                }
            }
        }
    }
}

fn concept_entry_error(key: &str, text: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "E0510",
        format!("`{key}` entry does not start with a concept"),
    )
    .at(span, format!("`{text}`"))
    .help(format!(
        "write entries of `{key}` as `- :Name:` or `- :Name: description`"
    ))
}
