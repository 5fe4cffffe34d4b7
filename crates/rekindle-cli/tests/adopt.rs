//! `rekindle adopt` on `examples/word-count` (copied with its scripts), against a scripted Python
//! programmer on 127.0.0.1: it writes `wc_lite.py` with the behaviour the functionalities shown so
//! far ask for, a unit test, and one conformance test per functionality. The generated code is
//! then edited by hand to add a `--lines` option; adopt must end with the option in the spec, the
//! code re-rendered from the spec, and a conformance test that fails on the code before the edit.

use assert_cmd::cargo::cargo_bin;
use rekindle_testkit::{openai_reply, Seen, Server};
use std::path::Path;
use std::process::{Command, Stdio};

/// The program for the features the prompt's functionalities name.
fn program(features: &str) -> String {
    let has = |k: &str| features.contains(k);
    let mut p =
        String::from("import sys\n\n\ndef main():\n    args = sys.argv[1:]\n    mode = None\n");
    if has("--words") {
        p.push_str("    if args and args[0] == \"--words\":\n        mode = \"words\"\n        args = args[1:]\n");
    }
    if has("--lines") {
        p.push_str("    if args and args[0] == \"--lines\":\n        mode = \"lines\"\n        args = args[1:]\n");
    }
    p.push_str("    if args:\n");
    if has("does not exist") {
        p.push_str("        try:\n            with open(args[0], \"rb\") as f:\n                data = f.read()\n        except OSError:\n            print(f\"wc-lite: cannot open {args[0]}\", file=sys.stderr)\n            sys.exit(1)\n");
    } else {
        p.push_str("        with open(args[0], \"rb\") as f:\n            data = f.read()\n");
    }
    p.push_str("    else:\n");
    if has("standard input") {
        p.push_str("        data = sys.stdin.buffer.read()\n");
    } else {
        p.push_str("        data = b\"\"\n");
    }
    p.push_str("    lines, words = data.count(b\"\\n\"), len(data.split())\n    if mode == \"words\":\n        print(words)\n    elif mode == \"lines\":\n        print(lines)\n    else:\n        print(lines, words, len(data))\n\n\nif __name__ == \"__main__\":\n    main()\n");
    p
}

const HEAD: &str = "import os, subprocess, sys, tempfile, unittest\n\n\ndef run(args, stdin=b\"\"):\n    return subprocess.run([sys.executable, \"wc_lite.py\", *args], input=stdin, capture_output=True)\n\n\ndef sample():\n    f = tempfile.NamedTemporaryFile(\"wb\", delete=False, suffix=\".txt\")\n    f.write(b\"a b\\nc\\n\")\n    f.close()\n    return f.name\n\n\nclass T(unittest.TestCase):\n";

/// A conformance test for the functionality the prompt is about.
fn conformance(current: &str) -> (String, String) {
    let (name, body) = if current.contains("--lines") {
        ("lines", "    def test_lines(self):\n        r = run([\"--lines\", sample()])\n        self.assertEqual(r.stdout, b\"2\\n\")\n")
    } else if current.contains("--words") {
        ("words", "    def test_words(self):\n        r = run([\"--words\", sample()])\n        self.assertEqual(r.stdout, b\"3\\n\")\n")
    } else if current.contains("does not exist") {
        ("missing", "    def test_missing(self):\n        r = run([\"missing.txt\"])\n        self.assertEqual(r.returncode, 1)\n        self.assertEqual(r.stderr, b\"wc-lite: cannot open missing.txt\\n\")\n")
    } else if current.contains("standard input") {
        ("stdin", "    def test_stdin(self):\n        r = run([], b\"a b\\nc\\n\")\n        self.assertEqual(r.stdout, b\"2 3 6\\n\")\n")
    } else {
        ("file", "    def test_file(self):\n        r = run([sample()])\n        self.assertEqual(r.stdout, b\"2 3 6\\n\")\n")
    };
    (
        format!("conformance_tests/test_{name}.py"),
        format!("{HEAD}{body}"),
    )
}

fn block(path: &str, content: &str) -> String {
    format!("--- FILE: {path}\n{content}--- END FILE\n")
}

fn respond(s: &Seen) -> rekindle_testkit::Reply {
    let first = s.first_user();
    // adopt's questions: the edit and the functionalities are shown; the answer is the option.
    if first.contains("Write the one new functionality") {
        assert!(
            first.contains("+    if args and args[0] == \"--lines\":"),
            "the hand edit is shown to the model: {first}"
        );
        assert!(
            first.contains(
                "- With the option \"--words\", :App: should print only the number of words."
            ) && first.contains("starts with `:App: should`"),
            "the functionalities and their subject are shown: {first}"
        );
        return openai_reply(
            "With the option \"--lines\", :App: should print only the number of lines.\n",
        );
    }
    if first.contains("Write one acceptance test for the functionality") {
        assert!(first.contains("should print only the number of lines"));
        return openai_reply(
            "Running `python wc_lite.py --lines FILE` on a file of two lines prints 2.",
        );
    }
    let prompt = s.last_user();
    let current = prompt
        .split("# The functionality to implement now")
        .nth(1)
        .unwrap_or("")
        .to_string();
    if prompt.contains("Write conformance tests") {
        let (path, text) = conformance(&current);
        return openai_reply(&block(&path, &text));
    }
    // Implement: everything up to and including the current functionality.
    let shown = prompt
        .split("# Current files")
        .next()
        .unwrap_or(&prompt)
        .to_string();
    openai_reply(&format!(
        "{}{}",
        block("wc_lite.py", &program(&shown)),
        block(
            "test_wc_lite.py",
            &format!("{HEAD}    def test_runs(self):\n        self.assertEqual(run([sample()]).returncode, 0)\n"),
        )
    ))
}

fn rekindle(dir: &Path, args: &[&str], url: &str) -> (i32, String, String) {
    let out = Command::new(cargo_bin("rekindle"))
        .args(args)
        .args(["--provider", "openai", "--model", "fake", "--base-url", url])
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn adopt_on_word_count_puts_a_hand_added_option_into_the_spec() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let d = tempfile::tempdir().unwrap();
    copy(&examples.join("word-count"), &d.path().join("word-count"));
    copy(&examples.join("scripts"), &d.path().join("scripts"));
    let wc = d.path().join("word-count");
    let (server, _rt) = Server::start_blocking(vec![]);
    server.set_responder(respond);
    let url = format!("{}/v1", server.url());
    let (code, _, err) = rekindle(
        &wc,
        &["render", "word-count.plain", "--format", "text"],
        &url,
    );
    assert_eq!(code, 0, "{err}");
    let main = wc.join("plain_modules/word-count/code/wc_lite.py");
    let before = std::fs::read_to_string(&main).unwrap();
    assert!(!before.contains("--lines"));

    // The hand edit: a --lines option, written as the programmer would have.
    std::fs::write(
        &main,
        program("standard input does not exist --words --lines"),
    )
    .unwrap();
    let (code, out, err) = rekindle(&wc, &["adopt", "--spec", "word-count.plain", "--yes"], &url);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(
            "adopted: functionality 5's conformance tests fail on the code before the edit"
        ),
        "{err}"
    );
    let spec = std::fs::read_to_string(wc.join("word-count.plain")).unwrap();
    assert!(
        spec.ends_with(
            "- With the option \"--lines\", :App: should print only the number of lines.\n\n  ***acceptance tests***\n\n  - Running `python wc_lite.py --lines FILE` on a file of two lines prints 2.\n"
        ),
        "{spec}"
    );
    // Re-rendered from the spec: the option is there, and its conformance test exists and
    // passes on the code (the render ran it).
    let now = std::fs::read_to_string(&main).unwrap();
    assert!(now.contains("\"--lines\""), "{now}");
    let test = wc.join("plain_modules/word-count/tests/f05/test_lines.py");
    assert!(test.is_file(), "{} is missing", test.display());
    // The same test on the code before the edit fails: run it by hand, independently of adopt.
    let old = tempfile::tempdir().unwrap();
    std::fs::write(old.path().join("wc_lite.py"), &before).unwrap();
    let r = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s"])
        .arg(test.parent().unwrap())
        .current_dir(old.path())
        .output()
        .unwrap();
    assert!(
        !r.status.success(),
        "the --lines test passes on the code before the edit"
    );
    assert_eq!(
        std::fs::read_dir(wc.join(".rekindle/patches/retired"))
            .unwrap()
            .count(),
        1
    );
    let (code, _, err) = rekindle(&wc, &["status", "word-count.plain", "--check"], &url);
    assert_eq!(code, 0, "nothing stale, no hand edit left: {err}");
}
