//! Agreement with the reference renderer over the shared corpus of real specs: for every file in
//! `corpus/shared-expectations.json` (the repository's copy of `shared/corpus/expectations.json`,
//! with the reference's whole messages), `rekindle plan FILE --format json` run in the file's folder
//! accepts exactly what the reference accepted, with the same functionalities (count, first lines
//! modulo link syntax) and acceptance-test counts. Rejections must name a file and line and give
//! the reference's reason (a rekindle code of the same meaning, [`REASONS`]). The same for
//! rekindle's own cases in `corpus/`.

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

/// The reference's reasons for rejecting a spec, by a phrase of its message, and the rekindle
/// codes that mean the same (any one of them will do). Its generic "Found N errors in the plain
/// file:" is followed by the errors themselves, one per line, which are matched in turn.
const REASONS: &[(&str, &[&str])] = &[
    ("Circular import detected", &["E0702"]),
    ("Circular required module detected", &["E0712"]),
    (
        "There must be a fixed order how required modules are dependent",
        &["E0713"],
    ),
    ("Module does not exist", &["E0701"]),
    ("is imported but contains functional specs", &["E0703"]),
    ("does not have any functionality specified", &["E0720"]),
    ("has an empty 'functional specs' section", &["E0721"]),
    (
        "defines functionalities but specifies no implementation reqs",
        &["E0722"],
    ),
    ("Duplicate specification heading", &["E0405"]),
    (
        "Definitions specification must be the first specification",
        &["E0407"],
    ),
    // A Markdown heading, or text that is no list item under a section.
    ("Invalid source structure", &["E0402", "E0401", "E0410"]),
    ("Invalid specification", &["E0401", "E0410"]),
    ("Undefined liquid variable", &["E0302"]),
    ("Only relative links are allowed", &["E0601"]),
    ("does not exist. Linked resources are looked up", &["E0602"]),
    ("must be a file", &["E0602"]),
    ("Not all required concepts were defined", &["E0505"]),
    ("is not defined", &["E0504"]),
    ("Concepts were defined multiple times", &["E0502"]),
    // The reference raises this one as a bare Python exception.
    ("has multiple values", &["E0305"]),
];

/// The rekindle codes that give the reference's reason `message`, or why none can: the
/// reference crashed without a reason, or the reason is not in the table.
fn reason_codes(message: &str) -> Result<Vec<&'static str>, String> {
    let mut lines = message.lines();
    let mut first = lines.next().unwrap_or("");
    if first.starts_with("raise ") {
        // A bare exception: its reason is on the `Exception:` line, if anywhere.
        first = message
            .lines()
            .find_map(|l| l.strip_prefix("Exception: "))
            .ok_or_else(|| "the reference crashed".to_string())?;
    }
    let wanted: Vec<&str> =
        if first.contains("Found ") && first.contains("errors in the plain file") {
            lines.collect()
        } else {
            vec![first]
        };
    if wanted.is_empty() {
        return Err(format!("the reference's message is cut short: {message:?}"));
    }
    let mut codes = Vec::new();
    for w in wanted {
        match REASONS.iter().find(|(phrase, _)| w.contains(phrase)) {
            Some((_, c)) => codes.extend_from_slice(c),
            None => return Err(format!("no rekindle code is mapped to the reason {w:?}")),
        }
    }
    Ok(codes)
}

/// Runs `rekindle plan` on every file `expectations` lists (relative to `plain`), in the file's
/// folder with `args` added, and returns every disagreement with the reference in words. A
/// rejected file must be rejected with errors that name a file and line, with the code
/// `rekindle_code` among them when the expectation names one and, with `compare_reasons`, with a
/// code that means what the reference's message says ([`REASONS`]).
fn disagreements(
    plain: &Path,
    expectations: &Value,
    args: &[&std::ffi::OsStr],
    compare_reasons: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    let files = expectations["files"].as_array().unwrap();
    for e in files {
        let rel = e["file"].as_str().unwrap();
        let path = plain.join(rel);
        let dir = path.parent().unwrap();
        let name = path.file_name().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rekindle"))
            .current_dir(dir)
            .arg("plan")
            .arg(name)
            .args(["--format", "json"])
            .args(args)
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
            let errors: Vec<&Value> = diags.iter().filter(|d| d["severity"] == "error").collect();
            let located = errors
                .iter()
                .all(|d| d["location"]["file"].is_string() && d["location"]["line"].is_u64());
            if errors.is_empty() || !located {
                failures.push(format!("{rel}: an error without file and line: {stdout}"));
            }
            let ours: Vec<&str> = errors.iter().filter_map(|d| d["code"].as_str()).collect();
            if let Some(want) = e["rekindle_code"].as_str() {
                if !ours.contains(&want) {
                    failures.push(format!(
                        "{rel}: the reference's reason ({}) is rekindle's {want}, not among {ours:?}",
                        e["reference_error"]
                    ));
                }
            }
            if compare_reasons {
                let message = e["reference_error"].as_str().unwrap_or("");
                match reason_codes(message) {
                    // A crash gives no reason to compare: the decision still agrees.
                    Err(why) if why == "the reference crashed" => {}
                    Err(why) => failures.push(format!("{rel}: {why}")),
                    Ok(codes) if !codes.iter().any(|c| ours.contains(c)) => failures.push(format!(
                        "{rel}: the reference's reason {message:?} is rekindle's {codes:?}, but rekindle said {ours:?}"
                    )),
                    Ok(_) => {}
                }
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
    failures
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The repository's own copy of the shared corpus's expectations, with the reference's whole
/// messages (`corpus/regenerate.py` writes it).
fn own_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus")
}

#[test]
fn agrees_with_the_reference_on_every_corpus_file() {
    let corpus = corpus();
    let expectations = read_json(&own_corpus().join("shared-expectations.json"));
    let stl = corpus.join("plain/plainlang-examples/standard_template_library");
    let failures = disagreements(
        &corpus.join("plain"),
        &expectations,
        &["--template-dir".as_ref(), stl.as_os_str()],
        true,
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus files disagree:\n{}",
        failures.len(),
        expectations["files"].as_array().unwrap().len(),
        failures.join("\n")
    );
}

/// rekindle's own cases (`corpus/` at the top of the repository): templates in a template
/// folder linking files beside the spec and beside the template, with the reference's
/// verdicts and reasons.
#[test]
fn agrees_with_the_reference_on_our_own_cases() {
    let own = own_corpus();
    let expectations = read_json(&own.join("expectations.json"));
    let files = expectations["files"].as_array().unwrap();
    assert!(files.len() >= 6, "{files:?}");
    assert!(files.iter().all(|f| f["why"].is_string()));
    let failures = disagreements(&own.join("plain"), &expectations, &[], true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unlink_normalizes_both_link_styles() {
    assert_eq!(unlink("- see [a.yaml](x/a.yaml)."), "- see a.yaml.");
    assert_eq!(unlink("- see `[resource]a.yaml`."), "- see a.yaml.");
}

#[test]
fn the_references_reasons_map_to_rekindle_codes() {
    assert_eq!(
        reason_codes("Error: Module does not exist (require_that_does_not_exist).").unwrap(),
        ["E0701"]
    );
    // Its generic first line is followed by the errors themselves.
    assert_eq!(
        reason_codes("Error: Plain syntax error: Found 2 errors in the plain file:\nSyntax error: Concept :A: is not defined in the definitions. definitions: - x\nSyntax error: Concepts were defined multiple times: :B: .").unwrap(),
        ["E0504", "E0502"]
    );
    // A bare Python exception still gives its reason.
    assert_eq!(
        reason_codes("raise Exception(\nException: Code variable v has multiple values: a and b")
            .unwrap(),
        ["E0305"]
    );
    assert_eq!(
        reason_codes("raise Exception(").unwrap_err(),
        "the reference crashed"
    );
    // A reason nobody mapped, or one cut short, is an error of the test data, not a pass.
    assert!(reason_codes("Error: Plain syntax error: something new").is_err());
    assert!(reason_codes("Error: Plain syntax error: Found 1 errors in the plain file:").is_err());
}
