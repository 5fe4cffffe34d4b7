//! The outline of a Python file, read line by line (no Python needed): its top-level imports,
//! public functions and classes (with their source, signature and methods) and its
//! `if __name__ == "__main__":` block. What a draft asks the model about, one unit at a time.

use rekindle_render::draft::Kind;

/// One top-level unit of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub kind: Kind,
    /// The function's or class's name; the file's path for [`Kind::Main`].
    pub name: String,
    /// `name(params) -> ret` of a function, `Name(bases)` or `Name` of a class.
    pub signature: String,
    /// A class's public methods (and `__init__`), as `name(params)`.
    pub methods: Vec<String>,
    /// The unit's lines, decorators included.
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outline {
    /// Top-level `import …` and `from … import …` lines, as written.
    pub imports: Vec<String>,
    pub units: Vec<Unit>,
}

/// The outline of `text`. Names starting with `_` are left out: they are the file's own
/// helpers, which code written from the spec may shape as it likes.
pub fn outline(path: &str, text: &str) -> Outline {
    let lines: Vec<&str> = text.lines().collect();
    let strings = in_string(&lines);
    let top = |i: usize| -> bool {
        let l = lines[i];
        !strings[i] && !l.is_empty() && !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty()
    };
    let mut out = Outline::default();
    let mut i = 0;
    while i < lines.len() {
        if !top(i) {
            i += 1;
            continue;
        }
        let line = lines[i];
        if line.starts_with("import ") || line.starts_with("from ") {
            out.imports.push(line.trim_end().to_string());
            i += 1;
            continue;
        }
        // Decorators belong to the definition they stand above.
        let start = i;
        while i < lines.len() && top(i) && lines[i].starts_with('@') {
            i += 1;
        }
        if i >= lines.len() {
            break;
        }
        let head = lines[i];
        let kind = if head.starts_with("def ") || head.starts_with("async def ") {
            Some(Kind::Function)
        } else if head.starts_with("class ") {
            Some(Kind::Class)
        } else if is_main(head) {
            Some(Kind::Main)
        } else {
            None
        };
        let Some(kind) = kind else {
            i += 1;
            continue;
        };
        // The header runs to the line that closes its brackets and ends with `:`.
        let mut header = String::new();
        let mut end = i;
        while end < lines.len() {
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(lines[end].trim());
            end += 1;
            if depth(&header) <= 0 && header.trim_end().ends_with(':') {
                break;
            }
        }
        // The body: up to the next top-level line.
        while end < lines.len() && !top(end) {
            end += 1;
        }
        let mut body_end = end;
        while body_end > i + 1 && lines[body_end - 1].trim().is_empty() {
            body_end -= 1;
        }
        let source = lines[start..body_end].join("\n");
        i = end;
        let unit = match kind {
            Kind::Main => Unit {
                kind,
                name: path.to_string(),
                signature: String::new(),
                methods: Vec::new(),
                source,
            },
            _ => {
                let sig = header
                    .trim_start_matches("async ")
                    .trim_start_matches("def ")
                    .trim_start_matches("class ")
                    .trim_end()
                    .trim_end_matches(':')
                    .trim()
                    .to_string();
                let name: String = sig
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || name.starts_with('_') {
                    continue;
                }
                let methods = if kind == Kind::Class {
                    methods(&source)
                } else {
                    Vec::new()
                };
                Unit {
                    kind,
                    name,
                    signature: sig,
                    methods,
                    source,
                }
            }
        };
        out.units.push(unit);
    }
    out
}

fn is_main(line: &str) -> bool {
    let l: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    l == "if__name__==\"__main__\":" || l == "if__name__=='__main__':"
}

/// Bracket depth at the end of `s` (quotes respected, roughly).
fn depth(s: &str) -> i32 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => d += 1,
                ')' | ']' | '}' => d -= 1,
                '#' => break,
                _ => {}
            },
        }
    }
    d
}

/// For each line, whether it starts inside a triple-quoted string.
fn in_string(lines: &[&str]) -> Vec<bool> {
    let mut out = Vec::with_capacity(lines.len());
    let mut open: Option<&str> = None;
    for l in lines {
        out.push(open.is_some());
        let mut rest = *l;
        loop {
            match open {
                Some(q) => match rest.find(q) {
                    Some(p) => {
                        rest = &rest[p + 3..];
                        open = None;
                    }
                    None => break,
                },
                None => {
                    let a = rest.find("\"\"\"");
                    let b = rest.find("'''");
                    let (p, q) = match (a, b) {
                        (Some(a), Some(b)) if b < a => (b, "'''"),
                        (Some(a), _) => (a, "\"\"\""),
                        (None, Some(b)) => (b, "'''"),
                        (None, None) => break,
                    };
                    // A `#` before the quotes makes them a comment.
                    if rest[..p].contains('#') {
                        break;
                    }
                    rest = &rest[p + 3..];
                    open = Some(q);
                }
            }
        }
    }
    out
}

/// The public methods (and `__init__`) of a class's source, as `name(params)`, from the `def`
/// lines at the first indentation of its body.
fn methods(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let strings = in_string(&lines);
    let indent = lines
        .iter()
        .zip(&strings)
        .filter(|(l, s)| !**s && !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(l, _)| l.len() - l.trim_start().len())
        .find(|&n| n > 0);
    let Some(indent) = indent else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let at = l.len() - l.trim_start().len();
        let t = l.trim_start().trim_start_matches("async ");
        if !strings[i] && at == indent && t.starts_with("def ") {
            let mut header = t.trim_start_matches("def ").trim().to_string();
            while depth(&header) > 0 && i + 1 < lines.len() {
                i += 1;
                header.push(' ');
                header.push_str(lines[i].trim());
            }
            let sig = header.trim_end_matches(':').trim().to_string();
            if !sig.starts_with('_') || sig.starts_with("__init__(") {
                out.push(sig);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#""""Text statistics.

def not_a_function(x):
    inside the module docstring
"""
import re
from collections import Counter  # counting

CONSTANT = 3


def word_count(text: str,
               sep=None) -> int:
    """The number of words."""
    return len(text.split(sep))


def _helper():
    return 1


@dataclass
class Cart(Base):
    """A cart."""

    def __init__(self, items=()):
        self.items = list(items)

    def add(self, name,
            price):
        self.items.append((name, price))

    def _total(self):
        return 0

    async def pay(self):
        pass

if __name__ == "__main__":
    print(word_count("a b"))
"#;

    #[test]
    fn an_outline_has_imports_public_units_methods_and_main() {
        let o = outline("stats.py", FILE);
        assert_eq!(
            o.imports,
            vec![
                "import re".to_string(),
                "from collections import Counter  # counting".to_string()
            ]
        );
        let names: Vec<(&str, Kind)> = o.units.iter().map(|u| (u.name.as_str(), u.kind)).collect();
        assert_eq!(
            names,
            vec![
                ("word_count", Kind::Function),
                ("Cart", Kind::Class),
                ("stats.py", Kind::Main)
            ]
        );
        let wc = &o.units[0];
        assert_eq!(wc.signature, "word_count(text: str, sep=None) -> int");
        assert!(wc.source.starts_with("def word_count(text: str,"));
        assert!(wc.source.ends_with("return len(text.split(sep))"));
        let cart = &o.units[1];
        assert_eq!(cart.signature, "Cart(Base)");
        assert!(cart.source.starts_with("@dataclass\nclass Cart(Base):"));
        assert_eq!(
            cart.methods,
            vec![
                "__init__(self, items=())".to_string(),
                "add(self, name, price)".to_string(),
                "pay(self)".to_string()
            ]
        );
        assert_eq!(
            o.units[2].source,
            "if __name__ == \"__main__\":\n    print(word_count(\"a b\"))"
        );
    }

    #[test]
    fn odd_files_give_what_they_have_and_never_panic() {
        for text in [
            "",
            "def",
            "def f(:\n",
            "class",
            "@decorator\n",
            "\"\"\"unclosed\ndef f(): pass",
            "def f(x): return x\n\n\n",
            "def é(x):\n  return 1",
        ] {
            let _ = outline("x.py", text);
        }
        let o = outline("x.py", "def f(x): return x\n\n\n");
        assert_eq!(o.units[0].source, "def f(x): return x");
    }
}
