//! Property tests of the whole front end, run in memory through `MemFs`.
//!
//! (a) arbitrary input never panics `load`, and every diagnostic renders;
//! (b) generated valid specs load without errors and keep every functionality, text for text;
//! (c) `>` comment lines and trailing whitespace do not change the functionalities;
//! (d) CRLF line endings and a byte-order mark read the same as LF.

use proptest::prelude::*;
use proptest::test_runner::Config;
use rekindle_spec::diag::{position, render, to_json};
use rekindle_spec::loader::{Fs, MemFs};
use rekindle_spec::project::{load, Options, Project};
use std::path::Path;

const DIR: &str = "spec";

fn load_files(files: &[(String, Vec<u8>)]) -> Project {
    let mut fs = MemFs::default();
    for (name, text) in files {
        fs.add(format!("{DIR}/{name}"), text.clone());
    }
    load(
        Path::new(&format!("{DIR}/main.plain")),
        &Options::default(),
        &fs,
    )
}

/// Renders every diagnostic as text (plain and colored) and JSON, and resolves every item span.
fn render_all(p: &Project) {
    for d in &p.diagnostics {
        let text = render(&p.sources, d, false);
        assert!(text.contains(d.code), "rendering lost the code: {text}");
        let _ = render(&p.sources, d, true);
        serde_json::to_string(&to_json(&p.sources, d)).expect("diagnostic serializes");
    }
    for rm in &p.render_order {
        let s = &rm.sections;
        for item in s
            .definitions
            .iter()
            .chain(&s.implementation_reqs)
            .chain(&s.test_reqs)
            .chain(&s.functional_specs)
        {
            let _ = position(&p.sources, item.span);
            for t in &item.acceptance_tests {
                let _ = position(&p.sources, t.span);
            }
        }
    }
}

fn errors(p: &Project) -> Vec<String> {
    p.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| render(&p.sources, d, false))
        .collect()
}

/// The entry module's functionalities: text and acceptance-test texts.
fn functionalities(p: &Project) -> Vec<(String, Vec<String>)> {
    p.render_order
        .last()
        .map(|rm| {
            rm.sections
                .functional_specs
                .iter()
                .map(|f| {
                    let tests = f.acceptance_tests.iter().map(|t| t.text.clone()).collect();
                    (f.text.clone(), tests)
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// (a) arbitrary input

/// Pieces of ***plain syntax, so random input reaches past the decoder and the front matter.
const TOKENS: &[&str] = &[
    "***definitions***",
    "***implementation reqs***",
    "***test reqs***",
    "***functional specs***",
    "***acceptance tests***",
    "***",
    "\n",
    "\n\n",
    "- ",
    "\n- ",
    "\n  - ",
    "\n    ",
    "1. ",
    "> ",
    "\n> ",
    "---\n",
    "import:\n  - a\n",
    "requires:\n  - b\n",
    "required_concepts:\n  - :A: x\n",
    "exported_concepts:\n  - :A:\n",
    "description: d\n",
    ":A:",
    ":B:",
    ":Implementation:",
    ":A:, :B: are",
    "{% include \"a.plain\" %}",
    "{% include \"b.plain\", v: \"x\" %}",
    "{% include ",
    "{{ v }}",
    "{{ v | code_variable }}",
    "{{",
    "}}",
    " %}",
    "[l](a.plain)",
    "```",
    "# ",
    "\t",
    " ",
    "\r\n",
    "\r",
    "word",
    "x",
];

/// Non-ASCII pieces: multi-byte characters next to syntax stress byte-offset arithmetic.
const UNICODE_TOKENS: &[&str] = &["é", "😀", "\u{feff}", "\u{a0}", "日本", "—"];

fn soup(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..60).prop_map(|v| v.concat())
}

fn files_of(main: Vec<u8>, a: Vec<u8>, b: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    vec![
        ("main.plain".into(), main),
        ("a.plain".into(), a),
        ("b.plain".into(), b),
    ]
}

proptest! {
    #![proptest_config(Config { cases: 1024, ..Config::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        main in prop::collection::vec(any::<u8>(), 0..512),
        a in prop::collection::vec(any::<u8>(), 0..128),
        b in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let p = load_files(&files_of(main, a, b));
        render_all(&p);
    }

    #[test]
    fn arbitrary_token_soup_never_panics(
        main in soup(all_tokens()),
        a in soup(all_tokens()),
        b in soup(all_tokens()),
    ) {
        let p = load_files(&files_of(main.into(), a.into(), b.into()));
        render_all(&p);
    }
}

fn all_tokens() -> &'static [&'static str] {
    static ALL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| TOKENS.iter().chain(UNICODE_TOKENS).copied().collect())
}

/// Fuzzer finding (fixed in 8e9ef38): a paragraph or heading whose first word has a multi-byte
/// character across byte 4 reached `near_section`, which sliced `&first[..4]`.
#[test]
fn near_section_non_ascii_word() {
    for main in [
        "a\u{e9}\u{e9}",
        "***a\u{e9}\u{e9}***",
        "a\u{1F600}",
        "- x\n\n  ***a\u{e9}\u{e9}***\n",
    ] {
        let p = load_files(&files_of(main.into(), Vec::new(), Vec::new()));
        render_all(&p);
    }
}

// ---------------------------------------------------------------------------------------------
// (b) generated specs

/// Words safe inside a Markdown paragraph: no emphasis, code, links, HTML or list markers.
const WORDS: &[&str] = &[
    "alpha",
    "beta",
    "user",
    "value",
    "click",
    "the",
    "a",
    "data",
    "shows",
    "list",
    "café",
    "naïve",
    "日本語",
    "—",
    "x2",
    "tasks",
    "\"quoted\"",
    "it's",
    "ok.",
    "(paren)",
];

fn words(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..max).prop_map(|w| w.join(" "))
}

/// A line of text that may mention some of the concepts in scope.
fn line_with(concepts: Vec<String>) -> BoxedStrategy<String> {
    let pick = if concepts.is_empty() {
        Just(None).boxed()
    } else {
        prop::option::of(prop::sample::select(concepts)).boxed()
    };
    (words(6), pick, words(4))
        .prop_map(|(a, c, b)| match c {
            Some(c) => format!("{a} {c} {b}"),
            None => format!("{a} {b}"),
        })
        .boxed()
}

#[derive(Clone, Debug)]
struct GItem {
    first: String,
    more: Option<String>,
    tests: Vec<String>,
    /// A `>` comment line written before the item.
    comment_before: bool,
}

impl GItem {
    /// The text the parser should give the item: bullet dropped, continuation dedented.
    fn text(&self) -> String {
        match &self.more {
            Some(m) => format!("{}\n{}", self.first, m),
            None => self.first.clone(),
        }
    }
}

fn item(concepts: Vec<String>, tests: bool) -> impl Strategy<Value = GItem> {
    let t = if tests {
        prop::collection::vec(line_with(concepts.clone()), 0..3).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        line_with(concepts.clone()),
        prop::option::of(line_with(concepts)),
        t,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(first, more, tests, comment_before)| GItem {
            first,
            more,
            tests,
            comment_before,
        })
}

/// Where an included file with items goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum IncludeAt {
    None,
    ImplementationReqs,
    FunctionalSpecs,
}

#[derive(Clone, Debug)]
struct GSpec {
    description: bool,
    /// `import: [lib]`: lib defines `:L0:` and has one implementation req.
    import_lib: bool,
    /// `requires: [base]`: base is a valid module exporting `:B0:`.
    require_base: bool,
    defs: Vec<String>,
    impl_reqs: Vec<GItem>,
    test_reqs: Vec<GItem>,
    funcs: Vec<GItem>,
    include_at: IncludeAt,
    include_items: Vec<String>,
    /// Blank line between items (a loose list).
    loose: bool,
    /// Use a concept nobody defines (the spec is then invalid).
    undefined_concept: bool,
}

const LIB: &str = "***definitions***\n\n- :L0: is a library thing.\n\n***implementation reqs***\n\n- Use :L0: everywhere.\n";
const BASE: &str = "---\nexported_concepts:\n  - :B0:\n---\n\n***definitions***\n\n- :B0: is the base.\n\n***implementation reqs***\n\n- Build :B0: first.\n\n***functional specs***\n\n- Make :B0: work.\n";
const INCLUDE_VAR: &str = "included";

fn spec() -> impl Strategy<Value = GSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        prop::bool::weighted(0.1),
    )
        .prop_flat_map(
            |(description, import_lib, require_base, n_defs, undefined_concept)| {
                let mut scope: Vec<String> = (0..n_defs).map(|i| format!(":C{i}:")).collect();
                if import_lib {
                    scope.push(":L0:".into());
                }
                if require_base {
                    scope.push(":B0:".into());
                }
                scope.push(":Implementation:".into());
                // Definition i may use only concepts defined before it: no cycles.
                let defs: Vec<BoxedStrategy<String>> = (0..n_defs)
                    .map(|i| {
                        let earlier: Vec<String> = (0..i).map(|j| format!(":C{j}:")).collect();
                        line_with(earlier)
                            .prop_map(move |t| format!(":C{i}: is {t}"))
                            .boxed()
                    })
                    .collect();
                let min_impl = if import_lib { 0 } else { 1 };
                (
                    Just((description, import_lib, require_base, undefined_concept)),
                    defs,
                    prop::collection::vec(item(scope.clone(), false), min_impl..4),
                    prop::collection::vec(item(scope.clone(), false), 0..3),
                    prop::collection::vec(item(scope, true), 1..6),
                    prop::sample::select(vec![
                        IncludeAt::None,
                        IncludeAt::ImplementationReqs,
                        IncludeAt::FunctionalSpecs,
                    ]),
                    prop::collection::vec(words(5), 1..3),
                    any::<bool>(),
                )
            },
        )
        .prop_map(
            |(
                (description, import_lib, require_base, undefined_concept),
                defs,
                impl_reqs,
                test_reqs,
                funcs,
                include_at,
                include_items,
                loose,
            )| GSpec {
                description,
                import_lib,
                require_base,
                defs,
                impl_reqs,
                test_reqs,
                funcs,
                include_at,
                include_items,
                loose,
                undefined_concept,
            },
        )
}

impl GSpec {
    /// Whether the generated spec should load without errors.
    fn valid(&self) -> bool {
        !self.undefined_concept
    }

    /// The functionalities `load` should report, in order.
    fn expected(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .funcs
            .iter()
            .map(|f| (f.text(), f.tests.clone()))
            .collect();
        if self.include_at == IncludeAt::FunctionalSpecs {
            out.extend(
                self.include_items
                    .iter()
                    .map(|t| (format!("{t} {INCLUDE_VAR}"), Vec::new())),
            );
        }
        out
    }

    /// The lines of main.plain, with the indexes of body lines before which a `>` comment or
    /// a blank line can go without changing any item.
    fn main_lines(&self) -> (Vec<String>, usize, Vec<usize>) {
        let mut lines: Vec<String> = Vec::new();
        let mut boundaries = Vec::new();
        let fm: Vec<String> = [
            self.description
                .then(|| "description: a generated spec".to_string()),
            self.import_lib.then(|| "import:\n  - lib".to_string()),
            self.require_base.then(|| "requires:\n  - base".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !fm.is_empty() {
            lines.push("---".into());
            for l in fm {
                lines.extend(l.lines().map(str::to_string));
            }
            lines.push("---".into());
            lines.push(String::new());
        }
        let body_start = lines.len();
        let boundary = |lines: &Vec<String>, b: &mut Vec<usize>| b.push(lines.len());
        let sep = |lines: &mut Vec<String>, loose: bool| {
            if loose {
                lines.push(String::new());
            }
        };
        let section = |lines: &mut Vec<String>, b: &mut Vec<usize>, heading: &str| {
            b.push(lines.len());
            lines.push(format!("***{heading}***"));
            lines.push(String::new());
        };
        let items = |lines: &mut Vec<String>, b: &mut Vec<usize>, items: &[GItem], loose: bool| {
            for it in items {
                if it.comment_before {
                    lines.push("> a comment about the next item".into());
                }
                b.push(lines.len());
                lines.push(format!("- {}", it.first));
                if let Some(m) = &it.more {
                    lines.push(format!("  {m}"));
                }
                if !it.tests.is_empty() {
                    lines.push(String::new());
                    lines.push("  ***acceptance tests***".into());
                    lines.push(String::new());
                    for t in &it.tests {
                        b.push(lines.len());
                        lines.push(format!("  - {t}"));
                    }
                }
                sep(lines, loose);
            }
        };
        let include = |lines: &mut Vec<String>, b: &mut Vec<usize>| {
            b.push(lines.len());
            lines.push(format!(
                "{{% include \"inc.plain\", thing: \"{INCLUDE_VAR}\" %}}"
            ));
        };
        if !self.defs.is_empty() || self.undefined_concept {
            section(&mut lines, &mut boundaries, "definitions");
            for d in &self.defs {
                boundary(&lines, &mut boundaries);
                lines.push(format!("- {d}"));
                sep(&mut lines, self.loose);
            }
            if self.undefined_concept {
                boundary(&lines, &mut boundaries);
                lines.push("- :Bad: uses :Nowhere: which nobody defines.".into());
            }
            lines.push(String::new());
        }
        if !self.impl_reqs.is_empty() || self.include_at == IncludeAt::ImplementationReqs {
            section(&mut lines, &mut boundaries, "implementation reqs");
            items(&mut lines, &mut boundaries, &self.impl_reqs, self.loose);
            if self.include_at == IncludeAt::ImplementationReqs {
                include(&mut lines, &mut boundaries);
            }
            lines.push(String::new());
        }
        if !self.test_reqs.is_empty() {
            section(&mut lines, &mut boundaries, "test reqs");
            items(&mut lines, &mut boundaries, &self.test_reqs, self.loose);
            lines.push(String::new());
        }
        section(&mut lines, &mut boundaries, "functional specs");
        items(&mut lines, &mut boundaries, &self.funcs, self.loose);
        if self.include_at == IncludeAt::FunctionalSpecs {
            include(&mut lines, &mut boundaries);
        }
        boundaries.push(lines.len());
        boundaries.retain(|&b| b >= body_start);
        (lines, body_start, boundaries)
    }

    fn other_files(&self) -> Vec<(String, String)> {
        let inc: String = self
            .include_items
            .iter()
            .map(|t| format!("- {t} {{{{ thing }}}}\n"))
            .collect();
        vec![
            ("lib.plain".into(), LIB.into()),
            ("base.plain".into(), BASE.into()),
            ("inc.plain".into(), inc),
        ]
    }

    fn files(&self, main: String) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![("main.plain".to_string(), main.into_bytes())];
        v.extend(
            self.other_files()
                .into_iter()
                .map(|(n, t)| (n, t.into_bytes())),
        );
        v
    }

    fn main_text(&self) -> String {
        let (lines, _, _) = self.main_lines();
        lines.join("\n") + "\n"
    }
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn generated_specs_load(s in spec()) {
        let main = s.main_text();
        let p = load_files(&s.files(main.clone()));
        render_all(&p);
        let errs = errors(&p);
        if s.valid() {
            prop_assert!(errs.is_empty(), "errors for\n{main}\n{}", errs.join("\n"));
            let last = p.render_order.last().expect("entry rendered");
            prop_assert_eq!(last.sections.functional_specs.len(), s.expected().len(), "{}", main);
            prop_assert_eq!(functionalities(&p), s.expected(), "{}", main);
            let impl_count = s.impl_reqs.len()
                + usize::from(s.import_lib)
                + if s.include_at == IncludeAt::ImplementationReqs { s.include_items.len() } else { 0 };
            prop_assert_eq!(last.sections.implementation_reqs.len(), impl_count, "{}", main);
            prop_assert_eq!(p.render_order.len(), 1 + usize::from(s.require_base));
        } else {
            prop_assert!(
                p.diagnostics.iter().any(|d| d.code == "E0504"),
                "no E0504 for\n{main}"
            );
            for (concept, at) in undefined_concepts(&p) {
                prop_assert_eq!(at.as_deref(), Some(concept.as_str()), "{}", main);
            }
        }
    }

    // (c) comments and trailing whitespace
    #[test]
    fn comments_and_trailing_whitespace_do_not_change_functionalities(
        s in spec(),
        comments in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3), 0..6),
        trailing in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(vec![" ", "  ", "\t", " \t ", "   "])),
            0..10,
        ),
    ) {
        let (lines, _, boundaries) = s.main_lines();
        let base = load_files(&s.files(lines.join("\n") + "\n"));
        let want = functionalities(&base);

        let mut inserts: Vec<(usize, String)> = comments
            .iter()
            .map(|(i, style)| {
                let at = boundaries[i.index(boundaries.len())];
                // Keep the comment at the indentation of what follows, as a writer would.
                let indent = lines.get(at).map_or(0, |l| l.len() - l.trim_start().len());
                let text = match style {
                    0 => "> note",
                    1 => ">",
                    _ => ">    - looks like an item ***functional specs*** :Undefined: {{ nope }}",
                };
                (at, format!("{}{text}", " ".repeat(indent)))
            })
            .collect();
        inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let mut edited = lines.clone();
        for (i, ws) in &trailing {
            let at = i.index(edited.len());
            edited[at].push_str(ws);
        }
        for (at, text) in inserts {
            edited.insert(at, text);
        }
        let text = edited.join("\n") + "\n";
        let p = load_files(&s.files(text.clone()));
        render_all(&p);
        prop_assert_eq!(functionalities(&p), want, "edited:\n{}", text);
        prop_assert_eq!(errors(&p).len(), errors(&base).len(), "edited:\n{}", text);
    }

    // (d) CRLF and BOM
    #[test]
    fn crlf_and_bom_read_like_lf(s in spec(), bom_main: bool, bom_others: bool, lone_cr: bool) {
        let main = s.main_text();
        let lf = load_files(&s.files(main.clone()));
        let eol = if lone_cr { "\r" } else { "\r\n" };
        let convert = |t: &str, bom: bool| {
            let mut out = if bom { "\u{feff}".to_string() } else { String::new() };
            out.push_str(&t.replace('\n', eol));
            out.into_bytes()
        };
        let mut files = vec![("main.plain".to_string(), convert(&main, bom_main))];
        files.extend(s.other_files().into_iter().map(|(n, t)| (n, convert(&t, bom_others))));
        let crlf = load_files(&files);
        render_all(&crlf);
        prop_assert_eq!(functionalities(&crlf), functionalities(&lf));
        let codes = |p: &Project| p.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>();
        prop_assert_eq!(codes(&crlf), codes(&lf));
        let lines = |p: &Project| {
            p.diagnostics
                .iter()
                .filter_map(|d| d.primary.as_ref().map(|l| position(&p.sources, l.span).line))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(lines(&crlf), lines(&lf));
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics point at what they are about.

/// For every "concept `X` is not defined" (E0504): `X` and the source text its label marks.
fn undefined_concepts(p: &Project) -> Vec<(String, Option<String>)> {
    p.diagnostics
        .iter()
        .filter(|d| d.code == "E0504")
        .map(|d| {
            let name = d.message.split('`').nth(1).unwrap_or("").to_string();
            let at = d.primary.as_ref().and_then(|l| {
                let text = &p.sources.get(l.span.file).text;
                text.get(l.span.start as usize..l.span.end as usize)
                    .map(str::to_string)
            });
            (name, at)
        })
        .collect()
}

const HEAD: &str = "***implementation reqs***\n\n- r\n\n***functional specs***\n\n";

fn load_with_include(main_tail: &str, a: &str) -> Project {
    load_files(&files_of(
        format!("{HEAD}{main_tail}").into(),
        a.as_bytes().to_vec(),
        Vec::new(),
    ))
}

#[test]
fn undefined_concept_in_included_later_lines_is_located() {
    for (main, a) in [
        ("{% include \"a.plain\" %}\n", "- x\n- :U:"),
        ("{% include \"a.plain\" %}\n", "- x\n  y :U:\n"),
        (
            "- Implement {% include \"a.plain\" %}\n",
            "it\n    - sub :U:",
        ),
    ] {
        let p = load_with_include(main, a);
        assert_eq!(
            undefined_concepts(&p),
            [(":U:".to_string(), Some(":U:".to_string()))],
            "{main:?} / {a:?}"
        );
    }
}

/// Minimized: main.plain = HEAD + `{% include "a.plain" %}`, a.plain = `- :U:`. The E0504 label
/// must land on a.plain:1:3, not inside the tag; and text after a mid-line include
/// (`- Implement {% include "a.plain" %} tail :V:` with a.plain = `it\n    - sub`) must map back
/// into main.plain.
#[test]
fn undefined_concept_on_include_line_is_located() {
    let p = load_with_include("{% include \"a.plain\" %}\n", "- :U:");
    assert_eq!(undefined_concepts(&p), [(":U:".into(), Some(":U:".into()))]);
    let p = load_with_include(
        "- Implement {% include \"a.plain\" %} tail :V:\n",
        "it\n    - sub",
    );
    assert_eq!(undefined_concepts(&p), [(":V:".into(), Some(":V:".into()))]);
}

proptest! {
    #![proptest_config(Config { cases: 128, ..Config::default() })]

    /// An undefined concept anywhere in an included file, or after the tag, is labelled at its own
    /// text, wherever the tag sits.
    #[test]
    fn undefined_concepts_in_includes_are_located(
        lines in prop::collection::vec(words(4), 1..4),
        at in any::<prop::sample::Index>(),
        tag in prop::sample::select(vec!["", "  ", "- Implement "]),
        after in any::<bool>(),
    ) {
        let n = lines.len() + usize::from(after);
        let at = at.index(n);
        let a: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let bullet = if tag.starts_with('-') && i == 0 { "" } else { "- " };
                let indent = if tag.starts_with('-') && i > 0 { "    " } else { "" };
                let c = if i == at { " :Nowhere:" } else { "" };
                format!("{indent}{bullet}{l}{c}")
            })
            .collect();
        let tail = if at == lines.len() { " tail :Nowhere:" } else { "" };
        let main = format!("{tag}{{% include \"a.plain\" %}}{tail}\n");
        let p = load_with_include(&main, &a.join("\n"));
        let found = undefined_concepts(&p);
        prop_assert_eq!(found.len(), 1, "{:?} / {:?}", main, a);
        prop_assert_eq!(found[0].1.as_deref(), Some(":Nowhere:"), "{:?} / {:?}", main, a);
    }
}

// ---------------------------------------------------------------------------------------------
// (e) includes stay inside the project's roots

/// An in-memory disk that records every file read, with symbolic links (`links`: a folder or
/// file path that really is another one).
struct Spy {
    files: MemFs,
    links: Vec<(std::path::PathBuf, std::path::PathBuf)>,
    reads: std::cell::RefCell<Vec<std::path::PathBuf>>,
}

impl Spy {
    fn new(files: MemFs) -> Spy {
        Spy {
            files,
            links: Vec::new(),
            reads: Default::default(),
        }
    }

    /// `path` with links followed, component by component, as the kernel would.
    fn real(&self, path: &Path) -> std::path::PathBuf {
        let mut out = std::path::PathBuf::new();
        for c in path.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                c => out.push(c),
            }
            if let Some((_, to)) = self.links.iter().find(|(from, _)| *from == out) {
                out = to.clone();
            }
        }
        out
    }
}

impl Fs for Spy {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let real = self.real(path);
        self.reads.borrow_mut().push(real.clone());
        self.files.read(&real)
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.is_file(&self.real(path))
    }
    fn len(&self, path: &Path) -> std::io::Result<u64> {
        self.files.len(&self.real(path))
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<std::path::PathBuf> {
        self.files.canonicalize(&self.real(path))
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.exists(&self.real(path))
    }
    fn home(&self) -> Option<std::path::PathBuf> {
        self.files.home()
    }
}

const SECRET: &str = "root:x:0:0:SECRET-LINE:/root:/bin/bash\n- Leak the SECRET-ITEM.\n";

/// A valid spec whose functionality on line 12 includes `target`.
fn including(target: &str) -> String {
    format!("***definitions***\n\n- :App: is an app.\n\n***implementation reqs***\n\n- :App: is written in Python.\n\n***functional specs***\n\n- Show :App:.\n- Implement {{% include \"{target}\" %}}\n")
}

/// Loads `fs`'s `/w/<depth folders>/proj/main.plain`; asserts the include on line 12 was refused
/// with E0313, that the secret file was never read and that no message holds any of its text.
fn assert_refused(fs: &Spy, entry: &Path, secret: &Path) -> Result<(), TestCaseError> {
    let p = load(entry, &Options::default(), fs);
    let refused: Vec<_> = p.diagnostics.iter().filter(|d| d.code == "E0313").collect();
    prop_assert_eq!(refused.len(), 1, "{:?}", p.diagnostics);
    let at = position(&p.sources, refused[0].primary.as_ref().unwrap().span);
    prop_assert_eq!(at.line, 12);
    prop_assert!(at.file.ends_with("main.plain"), "{}", at.file);
    prop_assert!(
        !fs.reads.borrow().iter().any(|r| r == secret),
        "the refused file was read: {:?}",
        fs.reads.borrow()
    );
    for d in &p.diagnostics {
        for text in [
            render(&p.sources, d, false),
            serde_json::to_string(&to_json(&p.sources, d)).unwrap(),
        ] {
            prop_assert!(!text.contains("SECRET"), "{}", text);
            prop_assert!(!text.contains("root:x"), "{}", text);
        }
    }
    prop_assert!(!p.bodies.iter().any(|b| b.text.contains("SECRET")));
    Ok(())
}

/// Ways to climb one folder: plain, with a `./`, with a detour down and back up.
const CLIMBS: &[&str] = &["../", "./../", "../x/../", ".//../"];

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    /// However an include climbs out of the project (`../` runs, detours, a link in the spec's
    /// folder), it is refused at its own line, the file is never read, and no message quotes it.
    #[test]
    fn includes_outside_the_roots_are_refused_unread(
        depth in 0usize..4,
        extra in 0usize..3,
        via_link in any::<bool>(),
        name in prop::sample::select(vec!["passwd", "x.plain", "notes.txt"]),
        steps in prop::collection::vec(prop::sample::select(CLIMBS), 4),
    ) {
        // /w/d0/d1/.../proj/main.plain; the secret is `extra` folders above /w/d0/... (at most /w).
        let dirs: Vec<String> = (0..depth).map(|i| format!("d{i}")).collect();
        let proj = Path::new("/w").join(dirs.join("/")).join("proj");
        let entry = proj.join("main.plain");
        let up = extra.min(depth) + 1;
        let secret_dir = proj.ancestors().nth(up).unwrap().join("etc");
        let secret = secret_dir.join(name);
        let mut files = MemFs::default();
        files.add(&secret, SECRET);
        files.add(proj.join("sub/keep.txt"), "x");
        let mut fs = Spy::new(files);
        if via_link {
            fs.links.push((proj.join("inside"), secret_dir.clone()));
            fs.files.add(&entry, including(&format!("inside/{name}")));
        } else {
            let target = format!("{}etc/{name}", steps[..up].concat());
            fs.files.add(&entry, including(&target));
        }
        assert_refused(&fs, &entry, &secret)?;
    }
}

#[test]
fn the_etc_passwd_include_is_refused_unread() {
    let mut files = MemFs::default();
    let entry = Path::new("/home/u/work/app/main.plain");
    files.add(entry, including("../../../../../../etc/passwd"));
    files.add("/etc/passwd", SECRET);
    files.home = Some("/home/u".into());
    let fs = Spy::new(files);
    assert_refused(&fs, entry, Path::new("/etc/passwd")).unwrap();
}

#[test]
fn includes_from_every_root_are_read() {
    let good = "Python code.";
    let mut files = MemFs::default();
    // A git repository at /r holds the project and a shared folder.
    files
        .add("/r/.git/HEAD", "ref")
        .add("/r/shared/s.plain", good)
        .add("/t/t.plain", good)
        .add("/extra/e.plain", good);
    let cases = [
        ("../shared/s.plain", Vec::new(), Vec::new()),
        ("t.plain", vec!["/t".into()], Vec::new()),
        ("../../extra/e.plain", Vec::new(), vec!["/extra".into()]),
    ];
    for (target, search_dirs, roots) in cases {
        let mut files = files.clone();
        files.add("/r/proj/main.plain", including(target));
        let opts = Options {
            search_dirs,
            roots,
            ..Options::default()
        };
        let p = load(Path::new("/r/proj/main.plain"), &opts, &files);
        assert!(!p.has_errors(), "{target}: {:?}", p.diagnostics);
    }
    // The same repository as the home folder is no root.
    let mut files = files.clone();
    files.home = Some("/r".into());
    files.add("/r/proj/main.plain", including("../shared/s.plain"));
    let p = load(Path::new("/r/proj/main.plain"), &Options::default(), &files);
    assert!(
        p.diagnostics.iter().any(|d| d.code == "E0313"),
        "{:?}",
        p.diagnostics
    );
}

#[test]
fn module_names_are_plain_names() {
    for bad in ["../other", "sub/mod", "..", "/abs/x"] {
        let mut fs = MemFs::default();
        fs.add(
            "/p/main.plain",
            format!("---\nrequires:\n  - {bad}\n---\n{}", including("x")),
        )
        .add("/p/sub/mod.plain", "x")
        .add("/other.plain", "x");
        let p = load(Path::new("/p/main.plain"), &Options::default(), &fs);
        let d = p.diagnostics.iter().find(|d| d.code == "E0704");
        assert!(d.is_some(), "{bad}: {:?}", p.diagnostics);
        let at = position(&p.sources, d.unwrap().primary.as_ref().unwrap().span);
        assert_eq!(at.line, 3, "{bad}");
    }
}

/// Links resolve as the reference resolves them, whichever file they are written in: from the
/// entry spec's folder, then each template folder; the first that holds the target wins, and a
/// missing target names every place looked in.
#[test]
fn links_resolve_from_the_spec_folder_then_the_template_folders() {
    let template = "***implementation reqs***\n\n- The program prints [the notes](notes.md).\n";
    let entry = "---\nimport:\n  - base\n---\n\n***functional specs***\n\n- Print the notes.\n";
    let opts = Options {
        search_dirs: vec!["/p/template".into()],
        ..Options::default()
    };
    let load_with = |extra: &[(&str, &str)]| {
        let mut fs = MemFs::default();
        fs.add("/p/app.plain", entry)
            .add("/p/template/base.plain", template);
        for (path, text) in extra {
            fs.add(path, *text);
        }
        load(Path::new("/p/app.plain"), &opts, &fs)
    };
    let content = |p: &Project| {
        assert!(!p.has_errors(), "{:?}", p.diagnostics);
        let r = p.resources();
        assert_eq!(r.len(), 1, "{r:?}");
        (r[0].path.clone(), r[0].content.clone())
    };
    // Beside the spec (the template links it from another folder).
    let p = load_with(&[("/p/notes.md", "spec")]);
    assert_eq!(
        content(&p),
        (Path::new("/p/notes.md").into(), "spec".into())
    );
    // Only beside the template: the template folder.
    let p = load_with(&[("/p/template/notes.md", "template")]);
    assert_eq!(
        content(&p),
        (Path::new("/p/template/notes.md").into(), "template".into())
    );
    // In both: the spec's folder comes first.
    let p = load_with(&[
        ("/p/notes.md", "spec"),
        ("/p/template/notes.md", "template"),
    ]);
    assert_eq!(content(&p).1, "spec");
    // In neither: E0602, naming both places.
    let p = load_with(&[("/p/other/notes.md", "elsewhere")]);
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "E0602")
        .unwrap_or_else(|| panic!("{:?}", p.diagnostics));
    let notes = d.notes.join("\n");
    assert!(
        notes.contains("looked for /p/notes.md")
            && notes.contains("looked for /p/template/notes.md"),
        "{notes}"
    );
}
