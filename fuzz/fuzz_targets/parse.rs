//! Fuzzes the whole ***plain front end in memory.
//!
//! The input is split on 0xFF bytes (never valid in UTF-8, so it cannot clash with spec text) into
//! up to three files, `p/main.plain`, `p/a.plain` and `p/b.plain`; the rest after the third
//! separator stays in `b.plain`. Specs that `{% include "a.plain" %}`, `import: [a]` or
//! `requires: [b]` therefore reach each other. Every diagnostic is rendered as text and JSON,
//! so spans that point outside their file or split a character show up as panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rekindle_spec::diag::{position, render, to_json};
use rekindle_spec::loader::MemFs;
use rekindle_spec::project::{load, Options};
use std::path::Path;

const NAMES: [&str; 3] = ["p/main.plain", "p/a.plain", "p/b.plain"];

fuzz_target!(|data: &[u8]| {
    let mut fs = MemFs::default();
    let mut rest = data;
    for (i, name) in NAMES.iter().enumerate() {
        let cut = if i + 1 < NAMES.len() {
            rest.iter().position(|&b| b == 0xFF)
        } else {
            None
        };
        match cut {
            Some(p) => {
                fs.add(name, &rest[..p]);
                rest = &rest[p + 1..];
            }
            None => {
                fs.add(name, rest);
                rest = &[];
                break;
            }
        }
    }
    let _ = rest;
    let opts = Options::default();
    let p = load(Path::new("p/main.plain"), &opts, &fs);
    for d in &p.diagnostics {
        let text = render(&p.sources, d, false);
        assert!(!text.is_empty());
        let _ = render(&p.sources, d, true);
        let json = to_json(&p.sources, d);
        serde_json::to_string(&json).expect("diagnostic serializes");
    }
    // Walk the result the way the renderer does, so bad item ranges surface here too.
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
            let body = &p.bodies[item.body as usize].text;
            for &(a, b) in &item.ranges {
                assert!(
                    body.get(a as usize..b as usize).is_some(),
                    "item range off a char boundary"
                );
            }
            for t in &item.acceptance_tests {
                let body = &p.bodies[t.body as usize].text;
                for &(a, b) in &t.ranges {
                    assert!(
                        body.get(a as usize..b as usize).is_some(),
                        "test range off a char boundary"
                    );
                }
            }
        }
    }
});
