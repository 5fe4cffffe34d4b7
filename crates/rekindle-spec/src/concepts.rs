//! Concepts (`:Name:`): which are defined, where they are used, and the rules between them —
//! every use defined, each defined once, reserved names left alone, no definition cycles.

use crate::diag::Diagnostic;
use crate::model::{Item, Sections};
use crate::source::{FileId, Span};
use crate::template::Expanded;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Concepts the language predefines; they may be used but never defined or exported.
pub const RESERVED: &[&str] = &[
    ":Implementation:",
    ":UnitTests:",
    ":ConformanceTests:",
    ":AcceptanceTest:",
    ":AcceptanceTests:",
];

pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with(":plain")
}

fn is_concept_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_')
}

/// Byte ranges of every concept reference in `text`, left to right, not overlapping.
pub fn uses(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            let Some(p) = b[i..].iter().position(|&c| c == b':') else {
                i = b.len();
                return None;
            };
            let start = i + p;
            let mut j = start + 1;
            while j < b.len() && is_concept_byte(b[j]) {
                j += 1;
            }
            if j > start + 1 && j < b.len() && b[j] == b':' {
                i = j + 1;
                return Some((start, j + 1));
            }
            i = if j == start + 1 { start + 1 } else { j };
        }
        None
    })
}

/// What a definition item defines: the concepts it starts with (`- :A:, :B: are …`).
#[derive(Debug, PartialEq, Eq)]
pub enum Defines {
    Concepts(Vec<(usize, usize)>),
    /// A leading `:…:` whose name has characters concepts may not use.
    BadName(usize, usize),
    /// The text does not start with a concept.
    Nothing,
}

pub fn defines(text: &str) -> Defines {
    let b = text.as_bytes();
    let mut i = text.len() - text.trim_start().len();
    let mut out = Vec::new();
    loop {
        if b.get(i) != Some(&b':') {
            break;
        }
        let Some(len) = text[i + 1..].find([':', '\n']) else {
            break;
        };
        let end = i + 1 + len;
        if b[end] != b':' || len == 0 {
            break;
        }
        if !b[i + 1..end].iter().all(|&c| is_concept_byte(c)) {
            return Defines::BadName(i, end + 1);
        }
        out.push((i, end + 1));
        i = end + 1;
        // `, :Next:` continues the list.
        let rest = &text[i..];
        let after_comma = rest
            .strip_prefix(',')
            .map(|r| r.trim_start_matches([' ', '\t']));
        match after_comma {
            Some(r) if r.starts_with(':') => i = text.len() - r.len(),
            _ => break,
        }
    }
    if out.is_empty() {
        Defines::Nothing
    } else {
        Defines::Concepts(out)
    }
}

/// The text of an item's first range in its expansion: where the item's own words start.
fn item_text<'a>(bodies: &'a [Expanded], item: &Item) -> (&'a Expanded, usize, &'a str) {
    let exp = &bodies[item.body as usize];
    let (s, e) = item.ranges[0];
    (exp, s as usize, &exp.text[s as usize..e as usize])
}

/// The concepts an item defines, with their spans (diagnostics for malformed ones go to `diags`).
pub fn defined_by(
    bodies: &[Expanded],
    item: &Item,
    diags: Option<&mut Vec<Diagnostic>>,
) -> Vec<(String, Span)> {
    let (exp, base, text) = item_text(bodies, item);
    match defines(text) {
        Defines::Concepts(v) => v
            .into_iter()
            .map(|(s, e)| (text[s..e].to_string(), exp.span(base + s, base + e)))
            .collect(),
        Defines::BadName(s, e) => {
            if let Some(d) = diags {
                d.push(
                    Diagnostic::error("E0507", format!("invalid concept name `{}`", &text[s..e]))
                        .at(
                            exp.span(base + s, base + e),
                            "concept names use only letters, digits, `+`, `-`, `.` and `_`",
                        )
                        .help(format!(
                            "write it without spaces, for example `:{}:`",
                            text[s + 1..e - 1].split_whitespace().collect::<String>()
                        )),
                );
            }
            Vec::new()
        }
        Defines::Nothing => {
            if let Some(d) = diags {
                let first = item.text.lines().next().unwrap_or("");
                d.push(
                    Diagnostic::error(
                        "E0501",
                        "a definition must start with the concept it defines",
                    )
                    .at(item.span, "no `:Concept:` at the start of this definition")
                    .help(format!(
                        "start it with the concept's name, for example `- :Name: {}`",
                        first.chars().take(40).collect::<String>()
                    )),
                );
            }
            Vec::new()
        }
    }
}

/// A concept reference; its source span is worked out only when asked for (errors are rare).
#[derive(Clone, Copy)]
pub struct Use<'a> {
    pub name: &'a str,
    exp: &'a Expanded,
    start: usize,
    end: usize,
}

impl Use<'_> {
    pub fn span(&self) -> Span {
        self.exp.span(self.start, self.end)
    }
}

/// Every concept reference in an item (its acceptance tests not included).
pub fn used_in<'a>(bodies: &'a [Expanded], item: &'a Item) -> impl Iterator<Item = Use<'a>> + 'a {
    let exp = &bodies[item.body as usize];
    item.ranges.iter().flat_map(move |&(s, e)| {
        let text = &exp.text[s as usize..e as usize];
        uses(text).map(move |(a, b)| Use {
            name: &text[a..b],
            exp,
            start: s as usize + a,
            end: s as usize + b,
        })
    })
}

fn similar<'a>(name: &str, defined: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let budget = if lower.len() <= 5 { 1 } else { 2 };
    defined
        .map(|d| (crate::syntax::edit_distance(&lower, &d.to_lowercase()), d))
        .filter(|(dist, _)| *dist <= budget)
        .min()
        .map(|(_, d)| d)
}

/// The concept table of a module: every defined concept and the definition that defines it.
pub struct Table<'a> {
    pub defs: HashMap<String, (Span, &'a Arc<Item>)>,
}

/// Checks the concept rules over a module's merged sections.
pub fn validate<'a>(
    bodies: &[Expanded],
    s: &'a Sections,
    diags: &mut Vec<Diagnostic>,
) -> Table<'a> {
    let mut defs: HashMap<String, (Span, &'a Arc<Item>)> = HashMap::default();
    for item in &s.definitions {
        for (name, span) in defined_by(bodies, item, Some(diags)) {
            if is_reserved(&name) {
                diags.push(
                    Diagnostic::error(
                        "E0503",
                        format!("`{name}` is reserved and cannot be redefined"),
                    )
                    .at(span, "predefined by ***plain")
                    .help("choose another name for your concept"),
                );
                continue;
            }
            if let Some((first, _)) = defs.get(&name) {
                diags.push(
                    Diagnostic::error("E0502", format!("concept `{name}` is defined more than once"))
                        .at(span, "defined again here")
                        .also(*first, "first defined here")
                        .help("keep one definition; if both come from imported modules, remove it from one of them"),
                );
                continue;
            }
            defs.insert(name, (span, item));
        }
    }
    let groups = [
        &s.implementation_reqs,
        &s.test_reqs,
        &s.functional_specs,
        &s.definitions,
    ];
    let check = |item: &Item, diags: &mut Vec<Diagnostic>| {
        for u in used_in(bodies, item) {
            let name = u.name;
            if defs.contains_key(name) || is_reserved(name) {
                continue;
            }
            let span = u.span();
            let d = Diagnostic::error("E0504", format!("concept `{name}` is not defined"))
                .at(span, "used here");
            let d = match similar(name, defs.keys().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("define it under ***definitions***, for example `- {name} is …`, or import a module that defines it")),
            };
            diags.push(d);
        }
    };
    for group in groups {
        for item in group.iter() {
            check(item, diags);
        }
    }
    for f in &s.functional_specs {
        for t in &f.acceptance_tests {
            check(t, diags);
        }
    }
    check_cycles(bodies, &defs, diags);
    Table { defs }
}

/// Definitions that use each other in a ring have no order to be explained in.
fn check_cycles(
    bodies: &[Expanded],
    defs: &HashMap<String, (Span, &Arc<Item>)>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut keyed: Vec<((FileId, u32), &String)> = defs
        .iter()
        .map(|(n, (span, _))| ((span.file, span.start), n))
        .collect();
    keyed.sort_unstable();
    let names: Vec<&String> = keyed.into_iter().map(|(_, n)| n).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            let mut out: Vec<usize> = used_in(bodies, defs[*n].1)
                .filter_map(|u| index.get(u.name).copied())
                .filter(|&j| !Arc::ptr_eq(defs[names[j]].1, defs[*n].1))
                .collect();
            out.sort_unstable();
            out.dedup();
            out
        })
        .collect();
    // Iterative depth-first search; a back edge closes a cycle.
    let mut state = vec![0u8; names.len()];
    let mut reported: std::collections::HashSet<Vec<usize>> = Default::default();
    for root in 0..names.len() {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let ring: Vec<usize> = stack[pos..].iter().map(|(n, _)| *n).collect();
                        let mut key = ring.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            let path: Vec<&str> = ring
                                .iter()
                                .chain(std::iter::once(&ring[0]))
                                .map(|&i| names[i].as_str())
                                .collect();
                            let mut d = Diagnostic::error(
                                "E0508",
                                format!(
                                    "concepts are defined in terms of each other: {}",
                                    path.join(" → ")
                                ),
                            )
                            .at(defs[names[ring[0]]].0, "this definition starts the cycle");
                            for &i in &ring[1..] {
                                d = d.also(defs[names[i]].0, "part of the cycle");
                            }
                            diags.push(
                                d.help("define one of them without referring back to the others"),
                            );
                        }
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
}

/// Definitions ordered so that each comes after the concepts it uses (the order the reference
/// presents them to the model); ties keep the written order.
pub fn sorted_definitions(bodies: &[Expanded], s: &Sections) -> Vec<Arc<Item>> {
    let defined: Vec<Vec<String>> = s
        .definitions
        .iter()
        .map(|i| {
            defined_by(bodies, i, None)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        })
        .collect();
    let mut owner: HashMap<&str, usize> = HashMap::default();
    for (i, names) in defined.iter().enumerate() {
        for n in names {
            owner.entry(n.as_str()).or_insert(i);
        }
    }
    let n = s.definitions.len();
    let mut indegree = vec![0usize; n];
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, item) in s.definitions.iter().enumerate() {
        let mut deps: Vec<usize> = used_in(bodies, item)
            .filter_map(|u| owner.get(u.name).copied())
            .filter(|&j| j != i)
            .collect();
        deps.sort_unstable();
        deps.dedup();
        for j in deps {
            out_edges[j].push(i);
            indegree[i] += 1;
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &out_edges[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.insert(k);
            }
        }
    }
    // A cycle (already reported) leaves some behind: keep them in written order.
    let placed: std::collections::HashSet<usize> = order.iter().copied().collect();
    order.extend((0..n).filter(|i| !placed.contains(i)));
    order
        .into_iter()
        .map(|i| s.definitions[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_uses_like_the_reference() {
        let t = "a :A: b :B.c-d: ::x: :no space: :Z:";
        let found: Vec<&str> = uses(t).map(|(s, e)| &t[s..e]).collect();
        assert_eq!(found, [":A:", ":B.c-d:", ":x:", ":Z:"]);
        let url = "connect to http://localhost:8080.";
        assert_eq!(uses(url).count(), 0);
    }

    #[test]
    fn definitions_start_with_concepts() {
        assert_eq!(
            defines(":A:, :B: are"),
            Defines::Concepts(vec![(0, 3), (5, 8)])
        );
        assert_eq!(defines("This is"), Defines::Nothing);
        assert_eq!(defines(":My App: is"), Defines::BadName(0, 8));
        assert!(is_reserved(":plainFunctionality:"));
    }
}
