//! Imports a failed Python test run shows missing: a test (or program) file that uses a name it
//! never imports, where the name is one the program defines at its top level, a module of
//! Python's standard library, or a name of `typing`. The import is the one line the file lacks,
//! so the render adds it without a call ([`crate::steps`]) instead of asking the model, which
//! on HumanEval's first 40 with the 0.5B model (2ddc636) left 16 of 40 renders with such a
//! failure, 11 of them a test calling the function under test that it never imported, and
//! asked to write the test anew forgot the import again. Pure functions of the output and the
//! files shown.

use crate::blame::all_pointed_at;
use crate::steps::TESTS;
use rekindle_workspace::files::FileText;

/// An import a file lacks: the file (as prompts name it), the name, and the line to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingImport {
    pub path: String,
    pub name: String,
    pub line: String,
    /// The program file that defines the name, when it is the program's.
    pub defined_in: Option<String>,
}

/// Modules of Python's standard library a test commonly uses: `name` alone names the module.
const STDLIB: &[&str] = &[
    "argparse",
    "bisect",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "io",
    "itertools",
    "json",
    "math",
    "operator",
    "os",
    "pathlib",
    "random",
    "re",
    "shutil",
    "statistics",
    "string",
    "subprocess",
    "sys",
    "tempfile",
    "textwrap",
    "time",
    "typing",
    "unittest",
];

/// Names of `typing` that type hints use.
const TYPING: &[&str] = &[
    "Any",
    "Callable",
    "Dict",
    "FrozenSet",
    "Iterable",
    "Iterator",
    "List",
    "Mapping",
    "Optional",
    "Sequence",
    "Set",
    "Tuple",
    "Union",
];

/// The first import that `output`'s tracebacks show missing: a `NameError: name 'X' is not
/// defined` raised in a Python file among `files`, where X is not already defined or imported
/// at the top level of that file, and is defined at the top level of exactly one program file
/// (not a test) among `files`, or is a standard module or a name of `typing`. The program's
/// names are imported by their module path in the code folder, which the test scripts run from.
pub(crate) fn missing_import(output: &str, files: &[FileText]) -> Option<MissingImport> {
    for tb in output.split("Traceback (most recent call last):").skip(1) {
        let Some(name) = tb.lines().find_map(undefined_name) else {
            continue;
        };
        let Some(raised) = all_pointed_at(tb, files).pop() else {
            continue;
        };
        let Some(path) = raised.split(" line ").next() else {
            continue;
        };
        let Some(file) = files.iter().find(|f| f.path == path) else {
            continue;
        };
        if !path.ends_with(".py") || binds(&file.content, &name) {
            continue;
        }
        let definers: Vec<&FileText> = files
            .iter()
            .filter(|f| f.path != path && f.path.ends_with(".py"))
            .filter(|f| !crate::blame::is_test_path(&f.path))
            .filter(|f| defines(&f.content, &name))
            .collect();
        let (line, defined_in) = match definers.as_slice() {
            [one] => {
                let module = module_of(&one.path)?;
                (
                    format!("from {module} import {name}"),
                    Some(one.path.clone()),
                )
            }
            [] if STDLIB.contains(&name.as_str()) => (format!("import {name}"), None),
            [] if TYPING.contains(&name.as_str()) => (format!("from typing import {name}"), None),
            _ => continue,
        };
        return Some(MissingImport {
            path: path.to_string(),
            name,
            line,
            defined_in,
        });
    }
    None
}

/// The name a Python `NameError` line reports undefined: `NameError: name 'x' is not defined`
/// (3.11 may add `. Did you mean: 'y'?`).
fn undefined_name(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("NameError: name '")?;
    let (name, tail) = rest.split_once('\'')?;
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ok && tail.starts_with(" is not defined")).then(|| name.to_string())
}

/// The module path of a program file of the code folder: `solution.py` → `solution`,
/// `pkg/util.py` → `pkg.util`. None for a path that is no Python module name.
fn module_of(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    let parts: Vec<&str> = stem.split('/').collect();
    let ok = parts.iter().all(|p| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    (ok && !path.starts_with(TESTS)).then(|| parts.join("."))
}

/// Whether `content` defines `name` at its top level: `def name(`, `async def name(`,
/// `class name`, or an assignment `name = …` / `name: T = …`.
fn defines(content: &str, name: &str) -> bool {
    content.lines().any(|l| {
        let l = l.trim_end();
        let def = l
            .strip_prefix("def ")
            .or_else(|| l.strip_prefix("async def "))
            .or_else(|| l.strip_prefix("class "));
        if let Some(rest) = def {
            return rest
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with(['(', ':']));
        }
        l.strip_prefix(name).is_some_and(|r| {
            let r = r.trim_start();
            (r.starts_with('=') && !r.starts_with("==")) || r.starts_with(':')
        })
    })
}

/// Whether `content` binds `name` at its top level: defines it, or imports it (`import name`,
/// `import m as name`, `from m import …, name, …`).
fn binds(content: &str, name: &str) -> bool {
    if defines(content, name) {
        return true;
    }
    content.lines().any(|l| {
        let names = if let Some(rest) = l.strip_prefix("import ") {
            rest
        } else if let Some((_, rest)) = l
            .strip_prefix("from ")
            .and_then(|r| r.split_once(" import "))
        {
            rest
        } else {
            return false;
        };
        names
            .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
            .split(',')
            .any(|item| {
                let item = item.trim();
                let bound = item.rsplit(" as ").next().unwrap_or(item).trim();
                bound == name || bound.split('.').next() == Some(name)
            })
    })
}

/// `content` with `line` added where imports go: before the first top-level import that is not
/// a `from __future__` one; with none, after the leading `#!`, encoding and `from __future__`
/// lines (a `from __future__` import must come first).
pub(crate) fn with_import(content: &str, line: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    let first_import = lines.iter().position(|l| {
        (l.starts_with("import ") || l.starts_with("from ")) && !l.starts_with("from __future__")
    });
    let at = first_import.unwrap_or_else(|| {
        let futures = lines
            .iter()
            .rposition(|l| l.starts_with("from __future__"))
            .map_or(0, |i| i + 1);
        let comments = lines
            .iter()
            .take_while(|l| l.starts_with("#!") || l.starts_with("# -*-"))
            .count();
        futures.max(comments)
    });
    let mut out: Vec<&str> = lines[..at].to_vec();
    out.push(line);
    out.extend_from_slice(&lines[at..]);
    let mut text = out.join("\n");
    if content.ends_with('\n') || content.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> FileText {
        FileText {
            path: path.into(),
            content: content.into(),
        }
    }

    /// A unittest run as the benchmark's test script shows it: an error in one test, raised in
    /// the test file's line `n`.
    fn raised(path: &str, n: usize, source: &str, error: &str) -> String {
        format!("E.\n======================================================================\nERROR: test_t (test_solution.T.test_t)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/run-0.0412/{path}\", line {n}, in test_t\n    {source}\n{error}\n\n----------------------------------------------------------------------\nRan 2 tests in 0.002s\n\nFAILED (errors=1)\n")
    }

    const SOLUTION: &str = "from typing import List\n\n\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n\nLIMIT: int = 3\n";

    #[test]
    fn a_test_that_never_imports_the_function_it_calls_gets_the_import() {
        let test = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_t(self):\n        self.assertEqual(truncate_number(3.5), 0.5)\n";
        let files = [
            file("solution.py", SOLUTION),
            file("conformance_tests/test_solution.py", test),
        ];
        let out = raised(
            "conformance_tests/test_solution.py",
            6,
            "self.assertEqual(truncate_number(3.5), 0.5)",
            "NameError: name 'truncate_number' is not defined",
        );
        let m = missing_import(&out, &files).expect("the import is missing");
        assert_eq!(m.path, "conformance_tests/test_solution.py");
        assert_eq!(m.line, "from solution import truncate_number");
        assert_eq!(m.defined_in.as_deref(), Some("solution.py"));
        assert_eq!(
            with_import(test, &m.line),
            "from solution import truncate_number\nimport unittest\n\n\nclass T(unittest.TestCase):\n    def test_t(self):\n        self.assertEqual(truncate_number(3.5), 0.5)\n"
        );
        // A name assigned at the top level is defined too; Python 3.11's suggestion is read past.
        let out = raised(
            "conformance_tests/test_solution.py",
            6,
            "x",
            "NameError: name 'LIMIT' is not defined. Did you mean: 'list'?",
        );
        assert_eq!(
            missing_import(&out, &files).map(|m| m.line),
            Some("from solution import LIMIT".into())
        );
    }

    #[test]
    fn standard_modules_and_typing_names_are_imported_by_their_own_names() {
        let test = "from solution import f\n\nclass T(unittest.TestCase):\n    pass\n";
        let files = [
            file("solution.py", "def f():\n    return time.time()\n"),
            file("test_solution.py", test),
        ];
        let out = raised(
            "test_solution.py",
            3,
            "class T(unittest.TestCase):",
            "NameError: name 'unittest' is not defined",
        );
        let m = missing_import(&out, &files).expect("unittest is missing");
        assert_eq!(
            (m.path.as_str(), m.line.as_str(), m.defined_in),
            ("test_solution.py", "import unittest", None)
        );
        assert_eq!(
            with_import(test, &m.line),
            "import unittest\nfrom solution import f\n\nclass T(unittest.TestCase):\n    pass\n"
        );
        // Raised in the program: the program gets the import.
        let out = raised(
            "solution.py",
            2,
            "return time.time()",
            "NameError: name 'time' is not defined",
        );
        let m = missing_import(&out, &files).expect("time is missing");
        assert_eq!(
            (m.path.as_str(), m.line.as_str()),
            ("solution.py", "import time")
        );
        let out = raised(
            "solution.py",
            2,
            "x",
            "NameError: name 'Tuple' is not defined",
        );
        assert_eq!(
            missing_import(&out, &files).map(|m| m.line),
            Some("from typing import Tuple".into())
        );
    }

    #[test]
    fn nothing_is_added_where_the_name_has_no_single_known_home() {
        let test = "import unittest\nfrom solution import f\n";
        let files = [
            file("solution.py", "def f():\n    pass\n"),
            file("other.py", "def g():\n    pass\n\ndef h():\n    pass\n"),
            file("more.py", "def h():\n    pass\n"),
            file("test_solution.py", test),
            file("test_helpers.py", "def helper():\n    pass\n"),
        ];
        let error = |name: &str| {
            raised(
                "test_solution.py",
                2,
                "x",
                &format!("NameError: name '{name}' is not defined"),
            )
        };
        // Defined nowhere, defined in two program files, defined only in another test file.
        for name in ["undefined_thing", "h", "helper"] {
            assert_eq!(missing_import(&error(name), &files), None, "{name}");
        }
        // Already imported (the error is then something else, such as a deletion): left alone.
        assert_eq!(missing_import(&error("f"), &files), None);
        // A NameError from a file the prompt does not show, or no NameError at all.
        let elsewhere = raised("lib/site.py", 2, "x", "NameError: name 'g' is not defined");
        assert_eq!(missing_import(&elsewhere, &files), None);
        let assertion = raised("test_solution.py", 2, "x", "AssertionError: 1 != 2");
        assert_eq!(missing_import(&assertion, &files), None);
        // Found in the one program file that defines it, with its module path.
        let files = [
            file("pkg/util.py", "def g():\n    pass\n"),
            file("test_solution.py", test),
        ];
        assert_eq!(
            missing_import(&error("g"), &files).map(|m| m.line),
            Some("from pkg.util import g".into())
        );
    }

    #[test]
    fn the_import_goes_after_what_must_come_first() {
        assert_eq!(with_import("", "import os"), "import os\n");
        assert_eq!(with_import("x = 1", "import os"), "import os\nx = 1");
        assert_eq!(
            with_import(
                "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(1)\n",
                "import os"
            ),
            "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nimport os\nprint(1)\n"
        );
        assert_eq!(
            with_import(
                "\"\"\"Doc.\"\"\"\nfrom __future__ import annotations\n\nx = 1\n",
                "import os"
            ),
            "\"\"\"Doc.\"\"\"\nfrom __future__ import annotations\nimport os\n\nx = 1\n"
        );
        assert_eq!(
            with_import(
                "from __future__ import annotations\nimport sys\n",
                "import os"
            ),
            "from __future__ import annotations\nimport os\nimport sys\n"
        );
    }

    #[test]
    fn what_a_file_binds_is_read_from_its_top_level() {
        let content = "import os.path\nimport numpy as np\nfrom a import (b, c as d)\n\ndef e():\n    import f\n";
        for name in ["os", "np", "b", "d", "e"] {
            assert!(binds(content, name), "{name}");
        }
        for name in ["numpy", "c", "f", "path"] {
            assert!(!binds(content, name), "{name}");
        }
        assert!(!defines("x == 1\n", "x"));
        assert!(defines("x = 1\n", "x"));
        assert!(!defines("xy = 1\n", "x"));
        assert!(!defines("def xy():\n", "x"));
    }
}
