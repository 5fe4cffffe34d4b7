//! Agreement with the reference renderer over the shared corpus of real specs: for every file in
//! `shared/corpus/expectations.json`, `rekindle plan FILE --format json` run in the file's folder
//! accepts exactly what the reference accepted, with the same functionalities (count, first lines
//! modulo link syntax) and acceptance-test counts. Rejections must name a file and line.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    if let Some(p) = std::env::var_os("REKINDLE_CORPUS") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert!(
        p.join("expectations.json").is_file(),
        "the shared corpus is missing at {}; set REKINDLE_CORPUS",
        p.display()
    );
    p.canonicalize().unwrap()
}

/// `[text](target)` and the reference's `` `[resource]text` `` both become `text`.
fn unlink(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(r) = after.strip_prefix("resource]") {
            let end = r.find('`').unwrap_or(r.len());
            if out.ends_with('`') {
                out.pop();
            }
            out.push_str(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        match after.find("](") {
            Some(close) if !after[..close].contains('[') => {
                let tail = &after[close + 2..];
                let end = tail.find(')').unwrap_or(tail.len());
                out.push_str(&after[..close]);
                rest = tail.get(end + 1..).unwrap_or("");
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

#[test]
fn agrees_with_the_reference_on_every_corpus_file() {
    let corpus = corpus();
    let expectations: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("expectations.json")).unwrap())
            .unwrap();
    let stl = corpus.join("plain/plainlang-examples/standard_template_library");
    let mut failures = Vec::new();
    let files = expectations["files"].as_array().unwrap();
    for e in files {
        let rel = e["file"].as_str().unwrap();
        let path = corpus.join("plain").join(rel);
        let dir = path.parent().unwrap();
        let name = path.file_name().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rekindle"))
            .current_dir(dir)
            .arg("plan")
            .arg(name)
            .args(["--format", "json", "--template-dir"])
            .arg(&stl)
            .output()
            .unwrap();
        let accepted = e["accepted"].as_bool().unwrap();
        let code = out.status.code();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        if accepted != (code == Some(0)) {
            failures.push(format!(
                "{rel}: reference accepted={accepted}, rekindle exited {code:?}: {}",
                stdout.chars().take(600).collect::<String>()
            ));
            continue;
        }
        if !accepted {
            if code != Some(1) {
                failures.push(format!("{rel}: rejected with exit {code:?}, expected 1"));
            }
            let diags = json["diagnostics"].as_array().cloned().unwrap_or_default();
            let located = diags
                .iter()
                .filter(|d| d["severity"] == "error")
                .all(|d| d["location"]["file"].is_string() && d["location"]["line"].is_u64());
            if diags.is_empty() || !located {
                failures.push(format!("{rel}: an error without file and line: {stdout}"));
            }
            continue;
        }
        let modules = json["modules"].as_array().unwrap();
        let entry = modules.last().unwrap();
        let ours = entry["functionalities"].as_array().unwrap();
        let theirs = e["functionalities"].as_array().unwrap();
        if ours.len() != theirs.len() {
            failures.push(format!(
                "{rel}: {} functionalities, reference {}",
                ours.len(),
                theirs.len()
            ));
            continue;
        }
        for (o, t) in ours.iter().zip(theirs) {
            let first = format!(
                "- {}",
                o["text"].as_str().unwrap().lines().next().unwrap_or("")
            );
            let want = t["first_line"].as_str().unwrap();
            if unlink(&first) != unlink(want) {
                failures.push(format!(
                    "{rel} #{}: first line {first:?}, reference {want:?}",
                    t["id"]
                ));
            }
            let n = o["acceptance_tests"].as_array().unwrap().len() as u64;
            if Some(n) != t["acceptance_tests"].as_u64() {
                failures.push(format!(
                    "{rel} #{}: {n} acceptance tests, reference {}",
                    t["id"], t["acceptance_tests"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn unlink_normalizes_both_link_styles() {
    assert_eq!(unlink("- see [a.yaml](x/a.yaml)."), "- see a.yaml.");
    assert_eq!(unlink("- see `[resource]a.yaml`."), "- see a.yaml.");
}
