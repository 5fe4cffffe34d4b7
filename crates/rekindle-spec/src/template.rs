//! The Liquid subset of ***plain: `{% include "f.plain", var: "v" %}` (the included text re-indented to
//! the tag's column), `{{ var }}` with the `code_variable` and `prohibited_chars` filters, and `>`
//! comment lines, which are blanked before anything else so that a commented-out include stays inert.
//!
//! Written here rather than with a general Liquid engine because we need what engines do not give:
//! a map from every expanded line back to the file and line it came from, re-indentation, and
//! errors that point at the tag.

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
use std::collections::HashMap;

/// Expanded text never grows past this; an include bomb is stopped with an error.
pub const MAX_EXPANDED_BYTES: usize = 64 << 20;
/// Includes nest at most this deep.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// From expanded byte `at` on, bytes map one to one onto `file` from byte `offset`, until the
/// next mark. Marks sit at every line start, around every substituted value, and where an
/// included file's text starts and ends.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: u32,
    file: FileId,
    offset: u32,
}

/// Spec text after templates and comments, with its way back to the sources.
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    marks: Vec<Mark>,
}

impl Expanded {
    /// The file and byte offset an expanded offset came from.
    pub fn origin(&self, offset: usize) -> (FileId, u32) {
        let at = offset as u32;
        let i = self.marks.partition_point(|m| m.at <= at).saturating_sub(1);
        let m = self.marks[i.min(self.marks.len() - 1)];
        (m.file, m.offset + at.saturating_sub(m.at))
    }

    /// Maps an expanded range to a source span (ends that land in another file collapse to the start).
    pub fn span(&self, start: usize, end: usize) -> Span {
        let (file, s) = self.origin(start);
        // The end is exclusive: map the last byte of the range, not the one after it, which may
        // already belong to another file.
        let (file2, e) = if end > start {
            let (f, e) = self.origin(end - 1);
            (f, e + 1)
        } else {
            (file, s)
        };
        let e = if file2 == file && e >= s { e } else { s + 1 };
        Span {
            file,
            start: s,
            end: e,
        }
    }
}

/// A value recorded by the `code_variable` filter: the prompt may show the name, the code must use
/// the value.
#[derive(Clone, Debug)]
pub struct CodeVar {
    pub name: String,
    pub value: String,
    pub span: Span,
}

/// Gives the expander the text of an included file.
pub trait Includes {
    /// Finds `name` as seen from `from`; returns the file and its text, or why not.
    fn include(&mut self, name: &str, from: FileId) -> Result<(FileId, String), IncludeError>;
}

/// Why an include has no text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncludeError {
    /// Not found, unreadable or not text; the message says which (and never quotes the file).
    Missing(String),
    /// Found at `resolved`, outside the project's roots, and so never read.
    Outside { resolved: std::path::PathBuf },
}

impl From<String> for IncludeError {
    fn from(message: String) -> IncludeError {
        IncludeError::Missing(message)
    }
}

pub type Vars = HashMap<String, String>;

struct Expander<'a> {
    out: String,
    marks: Vec<Mark>,
    includes: &'a mut dyn Includes,
    diags: &'a mut Vec<Diagnostic>,
    code_vars: Vec<CodeVar>,
    /// Include sites from the outermost file inward, for cycle detection and notes.
    stack: Vec<(FileId, Span)>,
    overflow: bool,
}

/// Expands `text` (the body of `file`, starting at byte `base` of it).
pub fn expand(
    file: FileId,
    text: &str,
    base: usize,
    includes: &mut dyn Includes,
    diags: &mut Vec<Diagnostic>,
) -> (Expanded, Vec<CodeVar>) {
    // Text with no template tag and no comment line expands to itself: one mark maps it all
    // (what a mark per line would say), and the line-by-line pass is skipped.
    if text.len() <= MAX_EXPANDED_BYTES && is_plain_text(text) {
        return (
            Expanded {
                text: text.to_string(),
                marks: vec![Mark {
                    at: 0,
                    file,
                    offset: base as u32,
                }],
            },
            Vec::new(),
        );
    }
    expand_lines(file, text, base, includes, diags)
}

/// [`expand`] line by line.
fn expand_lines(
    file: FileId,
    text: &str,
    base: usize,
    includes: &mut dyn Includes,
    diags: &mut Vec<Diagnostic>,
) -> (Expanded, Vec<CodeVar>) {
    let mut ex = Expander {
        out: String::with_capacity(text.len() + 64),
        marks: Vec::with_capacity(text.len() / 32 + 1),
        includes,
        diags,
        code_vars: Vec::new(),
        stack: vec![(file, Span::new(file, 0, 0))],
        overflow: false,
    };
    ex.text(file, text, base, 0, false, &Vars::new());
    if ex.marks.is_empty() {
        ex.mark(file, base);
    }
    let code_vars = ex.code_vars;
    check_code_vars(&code_vars, ex.diags);
    (
        Expanded {
            text: ex.out,
            marks: ex.marks,
        },
        code_vars,
    )
}

fn check_code_vars(vars: &[CodeVar], diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &CodeVar> = HashMap::new();
    for v in vars {
        match seen.get(v.name.as_str()) {
            Some(first) if first.value != v.value => diags.push(
                Diagnostic::error(
                    "E0305",
                    format!(
                        "code variable `{}` has two values: \"{}\" and \"{}\"",
                        v.name, first.value, v.value
                    ),
                )
                .at(v.span, format!("here it is \"{}\"", v.value))
                .also(first.span, format!("first set to \"{}\" here", first.value))
                .help("a code variable names one thing in the generated code; give both uses the same value or use two variable names"),
            ),
            Some(_) => {}
            None => {
                seen.insert(&v.name, v);
            }
        }
    }
}

/// Whether `text` has nothing to expand: no `{` (so no tag) and no comment line.
fn is_plain_text(text: &str) -> bool {
    let b = text.as_bytes();
    if memchr::memchr(b'{', b).is_some() {
        return false;
    }
    memchr::memchr_iter(b'>', b).all(|i| {
        let start = memchr::memrchr(b'\n', &b[..i]).map_or(0, |j| j + 1);
        !b[start..i].iter().all(|&c| c == b' ' || c == b'\t')
    })
}

/// A comment line: `>` as its first non-blank character.
pub fn is_comment(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('>')
}

fn fence_marker(line: &str) -> Option<(u8, usize)> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let b = t.as_bytes();
    let c = *b.first()?;
    if c != b'`' && c != b'~' {
        return None;
    }
    let n = b.iter().take_while(|&&x| x == c).count();
    (n >= 3).then_some((c, n))
}

impl Expander<'_> {
    /// From here on, output comes from `file` at `offset`.
    fn mark(&mut self, file: FileId, offset: usize) {
        let m = Mark {
            at: self.out.len() as u32,
            file,
            offset: offset as u32,
        };
        match self.marks.last_mut() {
            Some(last) if last.at == m.at => *last = m,
            _ => self.marks.push(m),
        }
    }

    fn new_line(&mut self, file: FileId, offset: usize, indent: usize) {
        self.mark(file, offset);
        if indent > 0 {
            for _ in 0..indent {
                self.out.push(' ');
            }
            self.mark(file, offset);
        }
    }

    /// Expands one file's text. `continues`: the first line carries on the current output line
    /// (the text of an include tag that sits mid-line).
    fn text(
        &mut self,
        file: FileId,
        text: &str,
        base: usize,
        indent: usize,
        continues: bool,
        vars: &Vars,
    ) {
        let mut fence: Option<(u8, usize)> = None;
        let mut offset = base;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            if self.overflow {
                return;
            }
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            if i == 0 && continues {
                self.mark(file, offset);
            } else {
                self.new_line(file, offset, indent);
            }
            if let Some((c, n)) = fence {
                self.out.push_str(line);
                if let Some((c2, n2)) = fence_marker(line) {
                    if c2 == c && n2 >= n && line.trim().bytes().all(|b| b == c) {
                        fence = None;
                    }
                }
            } else if let Some(m) = fence_marker(line) {
                fence = Some(m);
                self.out.push_str(line);
            } else if !is_comment(line) {
                self.line(file, line, offset, vars);
            }
            if raw.ends_with('\n') {
                self.out.push('\n');
            }
            offset += raw.len();
            if self.out.len() > MAX_EXPANDED_BYTES {
                self.overflow = true;
                self.diags.push(
                    Diagnostic::error(
                        "E0308",
                        format!(
                            "the spec expands to more than {} MiB",
                            MAX_EXPANDED_BYTES >> 20
                        ),
                    )
                    .at(self.stack.last().map(|s| s.1).unwrap_or(Span::new(file, 0, 0)), "while expanding this include")
                    .help("an include repeats too much text; check for includes that include each other many times"),
                );
                return;
            }
        }
    }

    fn line(&mut self, file: FileId, line: &str, offset: usize, vars: &Vars) {
        let mut rest = 0;
        while let Some(found) = find_tag(&line[rest..]) {
            let start = rest + found;
            self.out.push_str(&line[rest..start]);
            let is_output = line.as_bytes()[start + 1] == b'{';
            let close = if is_output { "}}" } else { "%}" };
            let Some(len) = line[start + 2..].find(close) else {
                let span = Span::new(file, offset + start, offset + line.len());
                self.diags.push(
                    Diagnostic::error("E0301", "template tag is not closed on its line")
                        .at(
                            span,
                            format!("expected `{close}` before the end of the line"),
                        )
                        .help("template tags must open and close on the same line"),
                );
                self.out.push_str(&line[start..]);
                return;
            };
            let end = start + 2 + len + 2;
            let inner = line[start + 2..end - 2].trim_matches('-').trim();
            let span = Span::new(file, offset + start, offset + end);
            self.mark(file, offset + start);
            if is_output {
                let value = self.output(inner, span, vars);
                self.out.push_str(&value);
            } else {
                self.tag(file, inner, span, vars);
            }
            self.mark(file, offset + end);
            rest = end;
        }
        self.out.push_str(&line[rest..]);
    }

    fn output(&mut self, inner: &str, span: Span, vars: &Vars) -> String {
        let mut parts = inner.split('|').map(str::trim);
        let expr = parts.next().unwrap_or("");
        let (mut value, name) = match parse_value(expr, vars) {
            Ok(v) => v,
            Err(ValueError::Undefined(name)) => {
                let mut d =
                    Diagnostic::error("E0302", format!("undefined template variable `{name}`"))
                        .at(span, "not defined here");
                if let Some(&(_, site)) = self.stack.last().filter(|_| self.stack.len() > 1) {
                    d = d.also(site, "included from here");
                    d = d.help(format!(
                        "pass it to the include: `{{% include \"…\", {name}: \"value\" %}}`"
                    ));
                } else {
                    d = d.help(format!("`{name}` is only defined when this file is included with `{name}: \"value\"`; check the file that includes it"));
                }
                self.diags.push(d);
                return String::new();
            }
            Err(ValueError::Syntax) => {
                self.diags.push(
                    Diagnostic::error("E0309", format!("cannot read template expression `{expr}`"))
                        .at(span, "expected a variable name or a quoted string"),
                );
                return String::new();
            }
        };
        for filter in parts {
            let (fname, arg) = match filter.split_once(':') {
                Some((f, a)) => (f.trim(), Some(a.trim())),
                None => (filter, None),
            };
            match fname {
                "code_variable" => {
                    let name = name.clone().unwrap_or_else(|| expr.to_string());
                    self.code_vars.push(CodeVar {
                        name,
                        value: value.clone(),
                        span,
                    });
                }
                "prohibited_chars" => {
                    let chars = arg
                        .and_then(|a| parse_value(a, vars).ok())
                        .map(|v| v.0)
                        .unwrap_or_default();
                    if let Some(c) = value.chars().find(|c| chars.contains(*c)) {
                        self.diags.push(
                            Diagnostic::error(
                                "E0306",
                                format!(
                                    "'{c}' is not allowed in `{}` (value: \"{value}\")",
                                    name.as_deref().unwrap_or(expr)
                                ),
                            )
                            .at(span, format!("must not contain any of \"{chars}\"")),
                        );
                    }
                }
                "upcase" => value = value.to_uppercase(),
                "downcase" => value = value.to_lowercase(),
                "strip" => value = value.trim().to_string(),
                _ => self.diags.push(
                    Diagnostic::error("E0307", format!("unknown template filter `{fname}`"))
                        .at(span, "in this expression")
                        .help("the filters are: code_variable, prohibited_chars, upcase, downcase, strip"),
                ),
            }
        }
        value
    }

    fn tag(&mut self, file: FileId, inner: &str, span: Span, vars: &Vars) {
        let (name, args) = inner
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((inner, ""));
        if name != "include" {
            self.diags.push(
                Diagnostic::error("E0303", format!("unsupported template tag `{name}`"))
                    .at(span, "only `include` is supported")
                    .help("***plain templates use `{% include \"file.plain\", var: \"value\" %}` and `{{ var }}`"),
            );
            return;
        }
        let (target, include_vars) = match parse_include_args(args, vars) {
            Ok(v) => v,
            Err(msg) => {
                self.diags.push(
                    Diagnostic::error("E0310", format!("cannot read include: {msg}"))
                        .at(span, "in this include")
                        .help("write `{% include \"file.plain\", name: \"value\" %}`"),
                );
                return;
            }
        };
        let (inc_file, inc_text) = match self.includes.include(&target, file) {
            Ok(v) => v,
            Err(IncludeError::Missing(msg)) => {
                self.diags.push(
                    Diagnostic::error("E0311", format!("cannot include `{target}`"))
                        .at(span, msg)
                        .help("included files are looked up beside the including file, then in the template folders"),
                );
                return;
            }
            Err(IncludeError::Outside { resolved }) => {
                self.diags.push(
                    Diagnostic::error("E0313", format!("`{target}` is outside the project"))
                        .at(span, "included here")
                        .note(format!("it resolves to {}, which was not read", resolved.display()))
                        .help("an included file must be in the spec's folder, a template folder, the git repository the spec is in, or a folder listed under `roots` in rekindle.toml"),
                );
                return;
            }
        };
        if let Some(pos) = self.stack.iter().position(|(f, _)| *f == inc_file) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(f, _)| format!("{f:?}"))
                .collect();
            let _ = chain;
            self.diags.push(
                Diagnostic::error("E0304", format!("`{target}` includes itself"))
                    .at(span, "this include starts a cycle")
                    .help("an included file may not include, directly or through others, a file that is including it"),
            );
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.diags.push(
                Diagnostic::error(
                    "E0312",
                    format!("includes nest deeper than {MAX_INCLUDE_DEPTH}"),
                )
                .at(span, "this include is too deep"),
            );
            return;
        }
        let mut scope = vars.clone();
        scope.extend(include_vars);
        let column = self
            .out
            .rfind('\n')
            .map(|p| self.out[p + 1..].chars().count())
            .unwrap_or_else(|| self.out.chars().count());
        let body = inc_text.strip_suffix('\n').unwrap_or(&inc_text);
        self.stack.push((inc_file, span));
        self.text(inc_file, body, 0, column, true, &scope);
        self.stack.pop();
    }
}

fn find_tag(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr(b'{', &b[i..]) {
        let at = i + p;
        if at + 1 < b.len() && (b[at + 1] == b'{' || b[at + 1] == b'%') {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

enum ValueError {
    Undefined(String),
    Syntax,
}

/// A literal or a variable; returns the value and, for a variable, its name.
fn parse_value(expr: &str, vars: &Vars) -> Result<(String, Option<String>), ValueError> {
    let e = expr.trim();
    if let Some(s) = unquote(e) {
        return Ok((s.to_string(), None));
    }
    if !e.is_empty()
        && e.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Ok((e.to_string(), None));
    }
    if e.is_empty()
        || !e
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(ValueError::Syntax);
    }
    match vars.get(e) {
        Some(v) => Ok((v.clone(), Some(e.to_string()))),
        None => Err(ValueError::Undefined(e.to_string())),
    }
}

fn unquote(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

/// `"file.plain", a: "x", b: var` → the file name and the variables.
fn parse_include_args(args: &str, vars: &Vars) -> Result<(String, Vars), String> {
    let args = args.trim();
    let quote = args
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
        .ok_or("the file name must be a quoted string")?;
    let close = args[1..]
        .find(quote)
        .ok_or("the file name's quote is not closed")?
        + 1;
    let target = args[1..close].to_string();
    if target.is_empty() {
        return Err("the file name is empty".into());
    }
    let mut rest = args[close + 1..].trim_start();
    let mut out = Vars::new();
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("with ") {
            rest = r;
            continue;
        }
        let colon = rest.find(':').ok_or("expected `name: value`")?;
        let key = rest[..colon].trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("`{key}` is not a variable name"));
        }
        rest = rest[colon + 1..].trim_start();
        let (value, used) = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'')
        {
            let end = rest[1..].find(q).ok_or("a value's quote is not closed")? + 1;
            (rest[1..end].to_string(), end + 1)
        } else {
            let end = rest.find([',', ' ', '\t']).unwrap_or(rest.len());
            let token = &rest[..end];
            let v = match parse_value(token, vars) {
                Ok((v, _)) => v,
                Err(ValueError::Undefined(n)) => return Err(format!("`{n}` is not defined")),
                Err(ValueError::Syntax) => return Err(format!("cannot read value `{token}`")),
            };
            (v, end)
        };
        out.insert(key.to_string(), value);
        rest = &rest[used..];
    }
    Ok((target, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(Vec<(&'static str, &'static str)>);
    impl Includes for Files {
        fn include(&mut self, name: &str, _from: FileId) -> Result<(FileId, String), IncludeError> {
            self.0
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| (FileId(i as u32 + 1), self.0[i].1.to_string()))
                .ok_or_else(|| IncludeError::Missing("not found".to_string()))
        }
    }

    fn run(
        text: &str,
        files: Vec<(&'static str, &'static str)>,
    ) -> (String, Vec<Diagnostic>, Vec<CodeVar>) {
        let mut d = Vec::new();
        let (e, v) = expand(FileId(0), text, 0, &mut Files(files), &mut d);
        (e.text, d, v)
    }

    #[test]
    fn plain_text_expands_to_itself_as_the_line_pass_would() {
        struct NoIncludes;
        impl Includes for NoIncludes {
            fn include(&mut self, _: &str, _: FileId) -> Result<(FileId, String), IncludeError> {
                Err("none".to_string().into())
            }
        }
        let f = FileId(3);
        for text in [
            "***functional specs***\n\n- A -> B, a > b.\n  - nested\n",
            "```\ncode\n```\n- é and ü\n",
            "",
            "no newline at the end",
        ] {
            assert!(is_plain_text(text), "{text}");
            let (fast, _) = expand(f, text, 7, &mut NoIncludes, &mut Vec::new());
            let (slow, _) = expand_lines(f, text, 7, &mut NoIncludes, &mut Vec::new());
            assert_eq!(fast.text, slow.text);
            for at in 0..text.len() {
                assert_eq!(fast.origin(at), slow.origin(at), "{text:?} at {at}");
            }
        }
        for text in [
            "> a comment\nx\n",
            "x\n  > indented comment\n",
            "{{ v }}\n",
            "{% include \"a\" %}",
        ] {
            assert!(!is_plain_text(text), "{text}");
        }
    }

    #[test]
    fn include_reindents_to_column() {
        let (t, d, v) = run(
            "- Implement {% include \"i.plain\", name: \"nice\" %}\n- next\n",
            vec![("i.plain", "thing\n  - really {{ name | code_variable }}\n")],
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            t,
            "- Implement thing\n              - really nice\n- next\n"
        );
        assert_eq!(v[0].name, "name");
        assert_eq!(v[0].value, "nice");
    }

    #[test]
    fn comments_blank_and_do_not_expand() {
        let (t, d, _) = run("a\n> {% include \"x\" %}\nb", vec![]);
        assert!(d.is_empty());
        assert_eq!(t, "a\n\nb");
    }

    #[test]
    fn undefined_and_cycles_are_errors() {
        let (_, d, _) = run("{{ nope }}", vec![]);
        assert_eq!(d[0].code, "E0302");
        let (_, d, _) = run("{% include \"a\" %}", vec![("a", "x {% include \"a\" %}")]);
        assert_eq!(d[0].code, "E0304");
    }

    #[test]
    fn conflicting_code_vars() {
        let (_, d, _) = run(
            "{% include \"a\", v: \"1\" %}\n{% include \"a\", v: \"2\" %}",
            vec![("a", "{{ v | code_variable }}")],
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "E0305");
    }

    #[test]
    fn origins_map_back() {
        let mut d = Vec::new();
        let (e, _) = expand(
            FileId(0),
            "x {% include \"a\" %}\nyz",
            0,
            &mut Files(vec![("a", "1\n2")]),
            &mut d,
        );
        assert_eq!(e.text, "x 1\n  2\nyz");
        assert_eq!(e.origin(6), (FileId(1), 2));
        assert_eq!(e.origin(9), (FileId(0), 21));
    }
}
