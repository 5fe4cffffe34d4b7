//! Block structure of an expanded spec: section headings (`***definitions***` …), their list items,
//! and the `***acceptance tests***` nested in functionalities. Markdown is read by pulldown-cmark;
//! everything here works on its byte ranges.

use crate::diag::Diagnostic;
use crate::model::{Item, Link, Section, SectionKind};
use crate::template::Expanded;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;
use std::sync::Arc;

/// Markdown nested deeper than this is refused rather than walked.
pub const MAX_NESTING: usize = 256;
/// The code of the diagnostic that says a body could not be parsed at all.
pub const UNREADABLE: &str = "E0411";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Doc,
    Paragraph,
    Heading,
    List,
    Item,
    Code,
    Quote,
    Html,
    Rule,
    Other,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    range: Range<usize>,
    children: Vec<Node>,
    implicit: bool,
}

impl Node {
    fn new(kind: Kind, range: Range<usize>) -> Node {
        Node {
            kind,
            range,
            children: Vec::new(),
            implicit: false,
        }
    }
}

struct RawLink {
    range: Range<usize>,
    target: String,
    text: String,
}

fn block_kind(tag: &Tag) -> Option<Kind> {
    Some(match tag {
        Tag::Paragraph => Kind::Paragraph,
        Tag::Heading { .. } => Kind::Heading,
        Tag::BlockQuote(_) => Kind::Quote,
        Tag::CodeBlock(_) => Kind::Code,
        Tag::HtmlBlock => Kind::Html,
        Tag::List(_) => Kind::List,
        Tag::Item => Kind::Item,
        Tag::FootnoteDefinition(_)
        | Tag::Table(_)
        | Tag::TableHead
        | Tag::TableRow
        | Tag::TableCell
        | Tag::MetadataBlock(_)
        | Tag::DefinitionList
        | Tag::DefinitionListTitle
        | Tag::DefinitionListDefinition => Kind::Other,
        _ => return None,
    })
}

fn is_block_end(end: &TagEnd) -> bool {
    !matches!(
        end,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Superscript
            | TagEnd::Subscript
    )
}

/// Builds the block tree. Tight list items hold inline text without a paragraph; such runs become
/// implicit paragraphs so that every item's children are blocks.
fn build(text: &str) -> Result<(Node, Vec<RawLink>), usize> {
    let mut stack = vec![Node::new(Kind::Doc, 0..text.len())];
    let mut links = Vec::new();
    let mut open_links: Vec<RawLink> = Vec::new();
    let close_implicit = |stack: &mut Vec<Node>| {
        if stack.last().is_some_and(|n| n.implicit) {
            let n = stack.pop().expect("implicit node");
            stack.last_mut().expect("parent").children.push(n);
        }
    };
    for (event, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        let inline_at = |stack: &mut Vec<Node>, r: &Range<usize>| match stack.last_mut() {
            Some(top) if top.implicit => top.range.end = top.range.end.max(r.end),
            Some(top) if top.kind == Kind::Item => {
                let mut n = Node::new(Kind::Paragraph, r.clone());
                n.implicit = true;
                stack.push(n);
            }
            _ => {}
        };
        match event {
            Event::Start(tag) => {
                if let Some(kind) = block_kind(&tag) {
                    close_implicit(&mut stack);
                    if stack.len() > MAX_NESTING {
                        return Err(range.start);
                    }
                    stack.push(Node::new(kind, range));
                } else {
                    inline_at(&mut stack, &range);
                    if let Tag::Link { dest_url, .. } = tag {
                        open_links.push(RawLink {
                            range: range.clone(),
                            target: dest_url.to_string(),
                            text: String::new(),
                        });
                    }
                }
            }
            Event::End(end) => {
                if is_block_end(&end) {
                    close_implicit(&mut stack);
                    if stack.len() > 1 {
                        let mut n = stack.pop().expect("open block");
                        n.range.end = n.range.end.max(range.end);
                        stack.last_mut().expect("parent").children.push(n);
                    }
                } else {
                    inline_at(&mut stack, &range);
                    if end == TagEnd::Link {
                        if let Some(l) = open_links.pop() {
                            links.push(l);
                        }
                    }
                }
            }
            Event::Rule => {
                close_implicit(&mut stack);
                stack
                    .last_mut()
                    .expect("parent")
                    .children
                    .push(Node::new(Kind::Rule, range));
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(l) = open_links.last_mut() {
                    l.text.push_str(&t);
                }
                inline_at(&mut stack, &range);
            }
            _ => inline_at(&mut stack, &range),
        }
    }
    while stack.len() > 1 {
        close_implicit(&mut stack);
        if stack.len() > 1 {
            let n = stack.pop().expect("open block");
            stack.last_mut().expect("parent").children.push(n);
        }
    }
    Ok((stack.pop().expect("document"), links))
}

/// `***name***` alone in a paragraph: the name.
pub fn heading_name(src: &str) -> Option<&str> {
    let t = src.trim();
    let inner = t.strip_prefix("***")?.strip_suffix("***")?;
    let inner = inner.trim();
    (!inner.is_empty() && !inner.contains(['*', '\n'])).then_some(inner)
}

const ACCEPTANCE: &str = "acceptance tests";

fn near_section(name: &str) -> Option<&'static str> {
    if name.len() > 64 {
        return None;
    }
    let lower = name.to_lowercase();
    let all = [
        "definitions",
        "implementation reqs",
        "test reqs",
        "functional specs",
        ACCEPTANCE,
    ];
    all.iter()
        .copied()
        .find(|k| *k == lower || edit_distance(&lower, k) <= 3)
        .or_else(|| {
            let first = lower.split_whitespace().next().unwrap_or("");
            let prefix: String = first.chars().take(4).collect();
            all.iter()
                .copied()
                .find(|k| !prefix.is_empty() && k.starts_with(&prefix))
        })
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

struct Ctx<'a> {
    exp: &'a Expanded,
    body: u32,
    links: &'a [RawLink],
    diags: &'a mut Vec<Diagnostic>,
}

/// Parses the expanded text of one file into its sections.
pub fn parse(exp: &Expanded, body: u32, diags: &mut Vec<Diagnostic>) -> Vec<Section> {
    let text = exp.text.as_str();
    let (doc, links) = match build(text) {
        Ok(v) => v,
        Err(at) => {
            diags.push(
                Diagnostic::error(
                    "E0411",
                    format!("Markdown nested more than {MAX_NESTING} levels deep"),
                )
                .at(exp.span(at, at + 1), "nesting goes too deep from here")
                .help("flatten the nested lists or quotes"),
            );
            return Vec::new();
        }
    };
    let mut cx = Ctx {
        exp,
        body,
        links: &links,
        diags,
    };
    let mut sections: Vec<Section> = Vec::new();
    for node in &doc.children {
        let src = &text[node.range.clone()];
        let span = exp.span(node.range.start, trim_end(text, &node.range));
        match node.kind {
            Kind::Paragraph => match heading_name(src) {
                Some(name) => cx.heading(name, span, &mut sections),
                None => cx.diags.push(stray_text(src, span)),
            },
            Kind::List => {
                let Some(section) = sections.last_mut() else {
                    cx.diags.push(
                        Diagnostic::error("E0410", "list item before any section heading")
                            .at(span, "this list belongs to no section")
                            .help("put a heading such as ***functional specs*** above it"),
                    );
                    continue;
                };
                let kind = section.kind;
                for item in node.children.iter().filter(|n| n.kind == Kind::Item) {
                    let item = cx.item(item, kind);
                    section.items.push(Arc::new(item));
                }
            }
            Kind::Heading => cx.diags.push(
                Diagnostic::error("E0402", "Markdown headings are not part of ***plain")
                    .at(span, "this `#` heading")
                    .help("turn it into a comment by starting the line with `>`, or move the title into the front matter as `description:`"),
            ),
            Kind::Quote => {}
            Kind::Code => cx.diags.push(
                Diagnostic::error("E0403", "code block outside a list item")
                    .at(span, "this block belongs to no requirement")
                    .help("indent it under the list item it belongs to"),
            ),
            _ => cx.diags.push(
                Diagnostic::error("E0403", "unexpected content outside a list item")
                    .at(span, "not a section heading or a list")
                    .help("a ***plain file holds section headings such as ***functional specs*** and list items starting with `- `"),
            ),
        }
    }
    sections
}

fn trim_end(text: &str, r: &Range<usize>) -> usize {
    r.start + text[r.clone()].trim_end().len()
}

fn stray_text(src: &str, span: crate::source::Span) -> Diagnostic {
    let first = src.trim().lines().next().unwrap_or("");
    let first: String = first.chars().take(60).collect();
    let first = first.as_str();
    let mut d = Diagnostic::error("E0401", "text outside a list item").at(
        span,
        "this paragraph is not a section heading or a list item",
    );
    let bare = first.trim_matches('*').trim();
    if let Some(s) = near_section(bare).filter(|_| first.starts_with('*') || bare.len() < 24) {
        d = d.help(format!(
            "a section heading is written on a line of its own as ***{s}***"
        ));
    } else if first.starts_with("{%") || first.starts_with("{{") {
        d = d.help("an included file's text must itself be section headings and list items");
    } else {
        d = d.help(format!("make it a requirement by starting it with `- ` (`- {first}`), or a comment by starting it with `>`"));
    }
    d
}

impl Ctx<'_> {
    fn heading(&mut self, name: &str, span: crate::source::Span, sections: &mut Vec<Section>) {
        let Some(kind) = SectionKind::from_heading(name) else {
            let mut d = if name == ACCEPTANCE {
                Diagnostic::error("E0406", "***acceptance tests*** outside a functionality")
                    .at(span, "acceptance tests must belong to a functionality")
                    .help(
                        "indent the heading and its list under the functional spec item they test",
                    )
            } else {
                Diagnostic::error("E0404", format!("unknown section heading `{name}`"))
                    .at(span, "not a ***plain section")
            };
            if name != ACCEPTANCE {
                d = match near_section(name) {
                    Some(s) => d.help(format!("did you mean ***{s}***?")),
                    None => d.help("the sections are ***definitions***, ***implementation reqs***, ***test reqs*** and ***functional specs***"),
                };
            }
            self.diags.push(d);
            return;
        };
        if let Some(first) = sections.iter().find(|s| s.kind == kind) {
            self.diags.push(
                Diagnostic::error("E0405", format!("duplicate section ***{name}***"))
                    .at(span, "second heading")
                    .also(first.heading, "first one here")
                    .help("each section appears at most once: merge the two lists"),
            );
            return;
        }
        if kind == SectionKind::Definitions && !sections.is_empty() {
            self.diags.push(
                Diagnostic::error("E0407", "***definitions*** must be the first section")
                    .at(span, "comes after another section")
                    .also(sections[0].heading, "the first section is here")
                    .help("move the ***definitions*** section to the top of the file"),
            );
        }
        sections.push(Section {
            kind,
            heading: span,
            items: Vec::new(),
        });
    }

    /// A heading written on the line right after an item's text, with no blank line between,
    /// is read by Markdown as more text of the item: the section (or the acceptance tests) would
    /// silently vanish into it.
    fn glued_headings(&mut self, node: &Node, cut: Option<&Range<usize>>) {
        let text = self.exp.text.as_str();
        let mut offset = node.range.start;
        for (i, raw) in text[node.range.clone()].split_inclusive('\n').enumerate() {
            let start = offset;
            offset += raw.len();
            if i == 0 || cut.is_some_and(|c| offset > c.start && start < c.end) {
                continue;
            }
            let Some(name) = heading_name(raw) else {
                continue;
            };
            if SectionKind::from_heading(name).is_none() && name != ACCEPTANCE {
                continue;
            }
            let lead = raw.len() - raw.trim_start().len();
            let span = self.exp.span(start + lead, start + raw.trim_end().len());
            self.diags.push(
                Diagnostic::error(
                    "E0412",
                    format!("***{name}*** is glued to the item above it"),
                )
                .at(span, "Markdown reads this line as more text of the item")
                .help(format!("leave a blank line before ***{name}***")),
            );
        }
    }

    fn item(&mut self, node: &Node, section: SectionKind) -> Item {
        let text = self.exp.text.as_str();
        let mut acceptance: Option<(Range<usize>, Vec<Arc<Item>>)> = None;
        let mut i = 0;
        while i < node.children.len() {
            let child = &node.children[i];
            i += 1;
            if child.kind != Kind::Paragraph {
                continue;
            }
            let Some(name) = heading_name(&text[child.range.clone()]) else {
                continue;
            };
            let span = self
                .exp
                .span(child.range.start, trim_end(text, &child.range));
            if name != ACCEPTANCE {
                let d = if SectionKind::from_heading(name).is_some() {
                    Diagnostic::error("E0409", format!("***{name}*** inside a list item"))
                        .at(span, "sections cannot be nested in an item")
                        .help("move the heading to the start of its line, outside any list")
                } else {
                    let mut d = Diagnostic::error(
                        "E0404",
                        format!("unknown heading `{name}` inside a list item"),
                    )
                    .at(span, "not a ***plain heading");
                    if let Some(s) = near_section(name) {
                        d = d.help(format!("did you mean ***{s}***?"));
                    }
                    d
                };
                self.diags.push(d);
                continue;
            }
            if section != SectionKind::FunctionalSpecs {
                self.diags.push(
                    Diagnostic::error("E0406", "***acceptance tests*** outside a functionality")
                        .at(span, format!("this item is in ***{}***", section.heading()))
                        .help("acceptance tests belong under items of ***functional specs***"),
                );
                continue;
            }
            if let Some((first, _)) = &acceptance {
                self.diags.push(
                    Diagnostic::error(
                        "E0408",
                        "a second ***acceptance tests*** block in one functionality",
                    )
                    .at(span, "second block")
                    .also(
                        self.exp.span(first.start, first.start + 1),
                        "first block here",
                    )
                    .help("merge the two lists under one heading"),
                );
                continue;
            }
            match node.children.get(i).filter(|n| n.kind == Kind::List) {
                Some(list) => {
                    let tests = list
                        .children
                        .iter()
                        .filter(|n| n.kind == Kind::Item)
                        .map(|n| Arc::new(self.item(n, SectionKind::AcceptanceTests)))
                        .collect();
                    acceptance = Some((child.range.start..list.range.end, tests));
                    i += 1;
                }
                None => {
                    self.diags.push(
                        Diagnostic::warning("W0401", "***acceptance tests*** without a list")
                            .at(span, "no list of tests follows this heading")
                            .help(
                                "write each acceptance test as a list item `- ` under the heading",
                            ),
                    );
                    acceptance = Some((child.range.clone(), Vec::new()));
                }
            }
        }
        let cut = acceptance.as_ref().map(|(r, _)| r.clone());
        self.glued_headings(node, cut.as_ref());
        let (item_text, ranges) = dedent(text, node.range.clone(), cut);
        let end = ranges.last().map_or(node.range.end, |r| r.end);
        let span = self.exp.span(node.range.start, end);
        let links = self
            .links
            .iter()
            .filter(|l| {
                ranges
                    .iter()
                    .any(|r| r.start <= l.range.start && l.range.end <= r.end)
            })
            .map(|l| {
                let (from, _) = self.exp.origin(l.range.start);
                Link {
                    text: l.text.clone(),
                    target: l.target.clone(),
                    span: self.exp.span(l.range.start, l.range.end),
                    from,
                }
            })
            .collect();
        Item {
            text: item_text,
            span,
            body: self.body,
            ranges: ranges
                .iter()
                .map(|r| (r.start as u32, r.end as u32))
                .collect(),
            links,
            acceptance_tests: acceptance.map(|(_, t)| t).unwrap_or_default(),
        }
    }
}

/// The item's Markdown without its bullet, continuation lines dedented to the item's content
/// column, and the expanded ranges that hold it (the acceptance-test block cut out).
fn dedent(
    text: &str,
    range: Range<usize>,
    cut: Option<Range<usize>>,
) -> (String, Vec<Range<usize>>) {
    let src = &text[range.clone()];
    let first = src.lines().next().unwrap_or("");
    let lead = first.len() - first.trim_start().len();
    let after_lead = &first[lead..];
    let marker = after_lead
        .bytes()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let marker = if marker > 0 { marker + 1 } else { 1 };
    let after_marker = after_lead.get(marker..).unwrap_or("");
    let spaces = after_marker.len() - after_marker.trim_start_matches([' ', '\t']).len();
    let spaces = if (1..=4).contains(&spaces) {
        spaces
    } else {
        1.min(spaces)
    };
    let content_col = lead + marker + spaces;

    let mut out = String::with_capacity(src.len());
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut offset = range.start;
    for (n, raw) in src.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw.len();
        if let Some(c) = &cut {
            if offset > c.start && line_start < c.end {
                continue;
            }
        }
        let line = raw.trim_end_matches('\n');
        let skip = if n == 0 {
            content_col.min(line.len())
        } else {
            let ws = line.len() - line.trim_start_matches([' ', '\t']).len();
            ws.min(content_col)
        };
        let content = &line[skip..];
        out.push_str(content.trim_end());
        out.push('\n');
        if content.trim().is_empty() {
            continue;
        }
        let s = line_start + skip;
        let e = line_start + line.trim_end().len();
        match ranges.last_mut() {
            Some(r) if r.end + 1 >= s => r.end = e.max(r.end),
            _ => ranges.push(s..e),
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if ranges.is_empty() {
        ranges.push(range.start..range.start);
    }
    (out, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;
    use crate::template::{expand, IncludeError, Includes};

    struct NoIncludes;
    impl Includes for NoIncludes {
        fn include(&mut self, _: &str, _: FileId) -> Result<(FileId, String), IncludeError> {
            Err(IncludeError::Missing("none".into()))
        }
    }

    fn sections(src: &str) -> (Vec<Section>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let (e, _) = expand(FileId(0), src, 0, &mut NoIncludes, &mut d);
        let s = parse(&e, 0, &mut d);
        (s, d)
    }

    #[test]
    fn sections_items_and_acceptance_tests() {
        let (s, d) = sections(
            "***implementation reqs***\n\n- A req\n  - sub\n\n***functional specs***\n\n- Do it\n\n  ***acceptance tests***\n\n  - t1\n  - t2\n- Second\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].items[0].text, "A req\n- sub");
        let f = &s[1].items;
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].text, "Do it");
        assert_eq!(f[0].acceptance_tests.len(), 2);
        assert_eq!(f[0].acceptance_tests[1].text, "t2");
        assert_eq!(f[1].text, "Second");
    }

    #[test]
    fn structure_errors() {
        let (_, d) = sections("# Title\n\n***definitions***\n- a\n\n***definitions***\n- b\n");
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["E0402", "E0405"]);
        let (_, d) = sections("***implementation reqs***\n- a\n\n***definitions***\n- b\nplain text\n\n***functional spec***\n");
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["E0407", "E0404"]);
        assert_eq!(
            d[1].help.as_deref(),
            Some("did you mean ***functional specs***?")
        );
    }

    #[test]
    fn glued_headings_are_errors() {
        let (_, d) = sections("***implementation reqs***\n- r\n***functional specs***\n- f\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "E0412");
        let (s, d) = sections("***functional specs***\n- f\n  ***acceptance tests***\n  - t\n");
        assert_eq!(d[0].code, "E0412");
        assert_eq!(s[0].items.len(), 1);
    }

    #[test]
    fn tab_after_bullet() {
        let (s, _) = sections("***functional specs***\n-\tTabbed\n");
        assert_eq!(s[0].items[0].text, "Tabbed");
    }

    #[test]
    fn links_are_collected() {
        let (s, _) = sections("***functional specs***\n- See [spec](ui.yaml) now\n");
        let l = &s[0].items[0].links[0];
        assert_eq!((l.text.as_str(), l.target.as_str()), ("spec", "ui.yaml"));
    }
}
