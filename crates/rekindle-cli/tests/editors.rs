//! `rekindle init`, `rekindle lsp` and `rekindle mcp` driven as their users drive them: a shell,
//! an editor speaking LSP over stdio (Content-Length framing), an agent speaking MCP over stdio
//! (newline-delimited JSON-RPC). What each answers is checked against `rekindle check`'s own
//! JSON and against the spec text, not against the server's internals.

use assert_cmd::cargo::cargo_bin;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

const SPEC: &str = "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n- :Greeting: is the text :Tool: prints.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n- :Tool: prints :Greeting:, then :Gadget:.\n\n  ***acceptance tests***\n\n  - Running :Tool: prints two lines.\n";

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A server process and the messages it sends, read on a thread.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications seen while waiting for something else.
    seen: Vec<Value>,
    framed: bool,
}

impl Peer {
    fn start(command: &str, dir: &Path, framed: bool) -> Peer {
        let mut child = Command::new(cargo_bin("rekindle"))
            .arg(command)
            .current_dir(dir)
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let msg = if framed {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.strip_prefix("Content-Length: ") {
                            len = v.parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    serde_json::from_slice(&body).unwrap()
                } else {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    serde_json::from_str(&line).unwrap()
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        Peer {
            child,
            stdin,
            rx,
            next_id: 0,
            seen: Vec::new(),
            framed,
        }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        if self.framed {
            write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        } else {
            writeln!(self.stdin, "{body}").unwrap();
        }
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self) -> Value {
        self.rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server answered within a minute")
    }

    /// Sends a request and waits for its response (keeping notifications that come first).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.next();
            if m["id"] == json!(id) && m.get("method").is_none() {
                return m;
            }
            self.seen.push(m);
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if let Some(i) = self.seen.iter().position(|m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        }) {
            let m = self.seen.remove(i);
            return m["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let m = self.next();
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.seen.push(m);
        }
    }
}

/// (line, column) of the `n`th occurrence of `needle` in `text`, 0-based as LSP counts (ASCII).
fn pos(text: &str, needle: &str, n: usize) -> (u32, u32) {
    let at = text
        .match_indices(needle)
        .nth(n)
        .expect("the needle is there")
        .0;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line as u32, col as u32)
}

fn at(uri: &str, (line, character): (u32, u32)) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
}

/// `rekindle check --format json`: what the language server must agree with.
fn check_json(dir: &Path, file: &str) -> Value {
    let out = Command::new(cargo_bin("rekindle"))
        .args(["check", file, "--format", "json"])
        .current_dir(dir)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_language_server_answers_as_an_editor_asks() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    let spec = dir.join("app.plain");
    std::fs::write(&spec, SPEC).unwrap();
    let u = uri(&spec);
    let mut lsp = Peer::start("lsp", &dir, true);
    let init = lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": uri(&dir), "capabilities": {}}),
    );
    let caps = &init["result"]["capabilities"];
    for cap in [
        "definitionProvider",
        "hoverProvider",
        "completionProvider",
        "renameProvider",
        "referencesProvider",
        "documentSymbolProvider",
    ] {
        assert!(!caps[cap].is_null(), "no {cap} in {caps}");
    }
    lsp.notify("initialized", json!({}));
    lsp.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "plain", "version": 1, "text": SPEC}}),
    );

    // The undefined concept, with the code and place `rekindle check` gives it.
    let diags = lsp.diagnostics(&u);
    let check = check_json(&dir, "app.plain");
    let expected = &check["files"][0]["diagnostics"];
    assert_eq!(
        diags.len(),
        expected.as_array().unwrap().len(),
        "{diags:?} vs {expected}"
    );
    let gadget = pos(SPEC, ":Gadget:", 0);
    let e504 = diags.iter().find(|d| d["code"] == "E0504").expect("E0504");
    assert_eq!(
        e504["range"]["start"],
        json!({"line": gadget.0, "character": gadget.1})
    );
    assert_eq!(
        e504["range"]["end"]["character"],
        json!(gadget.1 + ":Gadget:".len() as u32)
    );
    let from_check = expected
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E0504")
        .unwrap();
    assert_eq!(
        from_check["location"]["line"],
        json!(gadget.0 + 1),
        "{from_check}"
    );
    assert_eq!(
        from_check["location"]["column"],
        json!(gadget.1 + 1),
        "{from_check}"
    );
    assert!(
        e504["message"].as_str().unwrap().contains(":Gadget:"),
        "{e504}"
    );

    // An incremental edit that defines it: the diagnostics clear.
    let defs_end = pos(SPEC, "\n\n***implementation reqs***", 0);
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2}, "contentChanges": [{
            "range": {"start": {"line": defs_end.0, "character": defs_end.1}, "end": {"line": defs_end.0, "character": defs_end.1}},
            "text": "\n\n- :Gadget: is a second word."
        }]}),
    );
    assert_eq!(lsp.diagnostics(&u), Vec::<Value>::new());
    let text = SPEC.replace(
        "prints.\n\n***implementation",
        "prints.\n\n- :Gadget: is a second word.\n\n***implementation",
    );

    // Go to definition from a use of :Tool: lands on its definition.
    let def = lsp.request("textDocument/definition", at(&u, pos(&text, ":Tool:", 2)));
    let loc = &def["result"][0];
    assert_eq!(loc["uri"], json!(u));
    let tool_def = pos(&text, ":Tool:", 0);
    assert_eq!(
        loc["range"]["start"],
        json!({"line": tool_def.0, "character": tool_def.1})
    );

    // References: every use in the text, the definition included.
    let refs = lsp.request(
        "textDocument/references",
        json!({"textDocument": {"uri": u}, "position": {"line": tool_def.0, "character": tool_def.1 + 1}, "context": {"includeDeclaration": true}}),
    );
    assert_eq!(
        refs["result"].as_array().unwrap().len(),
        text.matches(":Tool:").count()
    );

    // Hover on a concept: its definition; on a functionality: what it is.
    let hover = lsp.request("textDocument/hover", at(&u, pos(&text, ":Greeting:", 1)));
    let said = hover["result"]["contents"]["value"].as_str().unwrap();
    assert!(
        said.contains(":Greeting: is the text :Tool: prints."),
        "{said}"
    );
    let hover = lsp.request(
        "textDocument/hover",
        at(&u, pos(&text, "prints :Greeting:", 0)),
    );
    let said = hover["result"]["contents"]["value"].as_str().unwrap();
    assert!(said.contains("functionality 1 of module app"), "{said}");
    assert!(said.contains("1 acceptance test"), "{said}");

    // Completion after a typed `:` offers the defined concepts.
    let line = text.lines().count() as u32;
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 3}, "contentChanges": [{
            "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}},
            "text": "\n- Also :"
        }]}),
    );
    let _ = lsp.diagnostics(&u);
    let done = lsp.request("textDocument/completion", at(&u, (line + 1, 8)));
    let labels: Vec<&str> = done["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    for c in [":Tool:", ":Greeting:", ":Gadget:"] {
        assert!(labels.contains(&c), "{labels:?}");
    }
    let done = lsp.request("textDocument/completion", at(&u, (0, 0)));
    assert_eq!(done["result"], json!([]));

    // The outline: the three sections, the functionality under its heading.
    let symbols = lsp.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": u}}),
    );
    let names: Vec<&str> = symbols["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "***definitions***",
            "***implementation reqs***",
            "***functional specs***"
        ]
    );
    let f = &symbols["result"][2]["children"][0]["name"];
    assert!(f.as_str().unwrap().starts_with("1. :Tool: prints"), "{f}");

    // Rename :Tool: everywhere; the reserved and the taken are refused.
    let renamed = lsp.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": u}, "position": {"line": tool_def.0, "character": tool_def.1 + 2}, "newName": "Script"}),
    );
    let edits = renamed["result"]["changes"][&u].as_array().unwrap();
    assert_eq!(edits.len(), text.matches(":Tool:").count());
    assert!(edits.iter().all(|e| e["newText"] == ":Script:"));
    for taken in ["Greeting", "ConformanceTests", "two words"] {
        let r = lsp.request(
            "textDocument/rename",
            json!({"textDocument": {"uri": u}, "position": {"line": tool_def.0, "character": tool_def.1 + 2}, "newName": taken}),
        );
        assert!(r["error"]["message"].is_string(), "{taken}: {r}");
    }

    let bye = lsp.request("shutdown", Value::Null);
    assert_eq!(bye["result"], Value::Null);
    lsp.notify("exit", Value::Null);
    let status = lsp.child.wait().unwrap();
    assert!(status.success());
}

/// Diagnostics in a template the spec imports land on the template's own file.
#[test]
fn diagnostics_of_an_imported_module_go_to_its_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    std::fs::write(
        dir.join("base.plain"),
        "***definitions***\n\n- :Tool: is a script.\n\n***implementation reqs***\n\n- :Tool: uses :Missing:.\n",
    )
    .unwrap();
    let spec = "---\nimport:\n  - base\n---\n\n***functional specs***\n\n- :Tool: says hi.\n";
    std::fs::write(dir.join("app.plain"), spec).unwrap();
    let mut lsp = Peer::start("lsp", &dir, true);
    lsp.request("initialize", json!({"processId": null, "capabilities": {}}));
    lsp.notify("initialized", json!({}));
    let u = uri(&dir.join("app.plain"));
    lsp.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "plain", "version": 1, "text": spec}}),
    );
    let base = uri(&dir.join("base.plain"));
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = lsp.next();
        if m["method"] == "textDocument/publishDiagnostics" {
            got.push(m["params"].clone());
        }
    }
    let on_base = got
        .iter()
        .find(|p| p["uri"] == base)
        .expect("diagnostics for base.plain");
    let codes: Vec<&str> = on_base["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E0504"], "{on_base}");
    assert_eq!(on_base["diagnostics"][0]["range"]["start"]["line"], 6);
    lsp.request("shutdown", Value::Null);
    lsp.notify("exit", Value::Null);
    assert!(lsp.child.wait().unwrap().success());
}

#[test]
fn the_mcp_server_lists_its_tools_and_check_names_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("app.plain"), SPEC).unwrap();
    let mut mcp = Peer::start("mcp", dir, false);
    let init = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "rekindle", "{init}");
    mcp.notify("notifications/initialized", json!({}));
    let tools = mcp.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "check", "plan", "expand", "status", "why", "render", "converse",
    ] {
        assert!(names.contains(&t), "{names:?}");
    }
    let check = mcp.request(
        "tools/call",
        json!({"name": "check", "arguments": {"file": "app.plain"}}),
    );
    let r = &check["result"];
    assert_eq!(r["isError"], true, "{r}");
    let expected = check_json(dir, "app.plain");
    assert_eq!(r["structuredContent"]["output"], expected, "{r}");
    let diag = &r["structuredContent"]["output"]["files"][0]["diagnostics"][0];
    assert_eq!(diag["code"], "E0504");
    assert!(diag["message"].as_str().unwrap().contains(":Gadget:"));

    // A valid spec: its plan; a render against a hosted provider is refused unless allowed.
    std::fs::write(dir.join("app.plain"), SPEC.replace(", then :Gadget:", "")).unwrap();
    let plan = mcp.request(
        "tools/call",
        json!({"name": "plan", "arguments": {"file": "app.plain"}}),
    );
    assert_eq!(plan["result"]["isError"], false, "{plan}");
    assert_eq!(plan["result"]["structuredContent"]["exit_code"], 0);
    std::fs::write(
        dir.join("rekindle.toml"),
        "[models]\ndefault = \"openai\"\n",
    )
    .unwrap();
    let render = mcp.request(
        "tools/call",
        json!({"name": "render", "arguments": {"file": "app.plain"}}),
    );
    let r = &render["result"];
    assert_eq!(r["isError"], true, "{r}");
    let said = r["structuredContent"]["output"]["error"]
        .as_str()
        .unwrap_or("");
    assert!(
        said.starts_with("--local-only: this render would call hosted models (openai)"),
        "{r}"
    );
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("--local-only"),
        "{r}"
    );
    assert!(!dir.join("plain_modules").exists());
    let talk = mcp.request(
        "tools/call",
        json!({"name": "converse", "arguments": {"file": "app.plain", "message": "Add a goodbye."}}),
    );
    let said = talk["result"]["structuredContent"]["output"]["error"]
        .as_str()
        .unwrap_or("");
    assert!(
        said.starts_with("--local-only: this conversation would call hosted models (openai)"),
        "{talk}"
    );
    assert!(!dir.join(".rekindle/conversations").exists());
    // Unknown tools and arguments are the caller's mistake.
    let bad = mcp.request(
        "tools/call",
        json!({"name": "check", "arguments": {"file": "app.plain", "force": true}}),
    );
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("force"),
        "{bad}"
    );
    drop(mcp.stdin);
    assert!(mcp.child.wait().unwrap().success());
}

/// `rekindle init demo` makes a project that checks, and renders with a (scripted) model; a
/// second init there writes nothing.
#[test]
fn init_makes_a_project_that_checks_and_renders() {
    use rekindle_testkit::{openai_reply, Server};
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(cargo_bin("rekindle"))
        .args(["init", "demo", "--format", "json"])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["template"], "python-console-app-template");
    let demo = d.path().join("demo");
    for f in [
        "demo.plain",
        "config.yaml",
        "rekindle.toml",
        ".gitignore",
        "scripts/run_unittests_python.sh",
        "scripts/run_conformance_tests_python.sh",
    ] {
        assert!(demo.join(f).is_file(), "{f} is missing");
    }
    let check = check_json(&demo, "demo.plain");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["files"][0]["warnings"], 0, "{check}");

    // The scripted programmer: the program, a unit test, a conformance test.
    let (server, _rt) = Server::start_blocking(vec![]);
    server.set_responder(|s| {
        let prompt = s.last_user();
        let block = |p: &str, c: &str| format!("--- FILE: {p}\n{c}--- END FILE\n");
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block(
                "conformance_tests/test_hello.py",
                "import subprocess, sys, unittest\n\nclass T(unittest.TestCase):\n    def test_prints(self):\n        r = subprocess.run([sys.executable, 'demo.py'], capture_output=True, text=True)\n        self.assertEqual(r.stdout, 'Hello from demo!\\n')\n        self.assertEqual(r.returncode, 0)\n",
            ));
        }
        openai_reply(&format!(
            "{}{}",
            block("demo.py", "print('Hello from demo!')\n"),
            block(
                "test_demo.py",
                "import subprocess, sys, unittest\n\nclass T(unittest.TestCase):\n    def test_runs(self):\n        r = subprocess.run([sys.executable, 'demo.py'], capture_output=True, text=True)\n        self.assertEqual(r.returncode, 0)\n",
            )
        ))
    });
    // The user points rekindle.toml at their model (here the scripted one) and renders.
    std::fs::write(
        demo.join("rekindle.toml"),
        format!(
            "[providers.scripted]\nkind = \"openai\"\nbase-url = \"{}/v1\"\nmodel = \"fake\"\n\n[models]\ndefault = \"scripted\"\n",
            server.url()
        ),
    )
    .unwrap();
    let out = Command::new(cargo_bin("rekindle"))
        .args(["render", "demo.plain", "--format", "json"])
        .current_dir(&demo)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let code = demo.join("plain_modules/demo/code/demo.py");
    assert_eq!(
        std::fs::read_to_string(code).unwrap(),
        "print('Hello from demo!')\n"
    );

    // A hover on the functionality in `rekindle lsp` says how its render stands, and what the
    // render wrote; after the spec changes on disk, that it is stale and why.
    let spec_path = demo.canonicalize().unwrap().join("demo.plain");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let u = uri(&spec_path);
    let mut lsp = Peer::start("lsp", &demo, true);
    lsp.request("initialize", json!({"processId": null, "capabilities": {}}));
    lsp.notify("initialized", json!({}));
    lsp.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "plain", "version": 1, "text": text}}),
    );
    assert_eq!(lsp.diagnostics(&u), Vec::<Value>::new());
    let hover = |lsp: &mut Peer| -> String {
        let h = lsp.request("textDocument/hover", at(&u, pos(&text, "should print", 0)));
        h["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let said = hover(&mut lsp);
    assert!(said.contains("functionality 1 of module demo"), "{said}");
    assert!(said.contains("render state: **up to date**"), "{said}");
    assert!(
        said.contains("`demo.py`") && said.contains("`test_demo.py`"),
        "{said}"
    );
    std::fs::write(&spec_path, text.replace("\"demo.py\"", "\"hello.py\"")).unwrap();
    let said = hover(&mut lsp);
    assert!(said.contains("render state: **stale**"), "{said}");
    assert!(said.contains("implementation reqs"), "{said}");
    std::fs::write(&spec_path, &text).unwrap();
    lsp.request("shutdown", Value::Null);
    lsp.notify("exit", Value::Null);
    assert!(lsp.child.wait().unwrap().success());

    // Again in the same folder: refused, nothing touched; `.gitignore` entries are not repeated.
    let before = std::fs::read_to_string(demo.join("demo.plain")).unwrap();
    let out = Command::new(cargo_bin("rekindle"))
        .args(["init", "demo"])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("demo.plain") && err.contains("already there"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(demo.join("demo.plain")).unwrap(),
        before
    );
    let ignore = std::fs::read_to_string(demo.join(".gitignore")).unwrap();
    assert_eq!(ignore.matches("plain_modules/").count(), 1, "{ignore}");
    // The template list, and a template init has no scripts for.
    let out = Command::new(cargo_bin("rekindle"))
        .args(["init", "--template", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("python-console-app-template")
            && list.contains("golang-console-app-template"),
        "{list}"
    );
    let out = Command::new(cargo_bin("rekindle"))
        .args([
            "init",
            "other",
            "--template",
            "typescript-react-app-template",
        ])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!d.path().join("other").exists());
}

/// A real editor: Neovim, headless, starts `rekindle lsp` for a .plain file (as the snippet in
/// docs/editors.md configures it) and receives its diagnostics. Neovim comes from Debian
/// (`scripts/lib/deps.sh` installs it for the tests); without it this test fails.
#[test]
fn neovim_shows_the_servers_diagnostics() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("app.plain"), SPEC).unwrap();
    let out = dir.join("diagnostics.txt");
    let init = dir.join("init.lua");
    std::fs::write(
        &init,
        r#"
local bin, out = os.getenv("REKINDLE_BIN"), os.getenv("DIAGNOSTICS_OUT")
vim.cmd("autocmd BufRead,BufNewFile *.plain setfiletype plain")
vim.api.nvim_create_autocmd("FileType", {
  pattern = "plain",
  callback = function(ev)
    local id = vim.lsp.start_client({ name = "rekindle", cmd = { bin, "lsp" }, root_dir = vim.fn.getcwd() })
    vim.lsp.buf_attach_client(ev.buf, id)
  end,
})
vim.api.nvim_create_autocmd("DiagnosticChanged", {
  callback = function(ev)
    local ds = vim.diagnostic.get(ev.buf)
    if #ds == 0 then return end
    local f = assert(io.open(out, "w"))
    for _, d in ipairs(ds) do
      f:write(string.format("%d:%d %s %s\n", d.lnum, d.col, d.code or "", (d.message:gsub("\n.*", ""))))
    end
    f:close()
    vim.cmd("qall!")
  end,
})
vim.defer_fn(function() vim.cmd("cquit 3") end, 60000)
"#,
    )
    .unwrap();
    let status = Command::new("nvim")
        .args(["--headless", "-n", "-i", "NONE", "-u"])
        .arg(&init)
        .arg("app.plain")
        .current_dir(dir)
        .env("REKINDLE_BIN", cargo_bin("rekindle"))
        .env("DIAGNOSTICS_OUT", &out)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .status()
        .expect("nvim runs (Debian's neovim; scripts/lib/deps.sh installs it)");
    assert!(
        status.success(),
        "nvim ended with {status} before any diagnostic arrived"
    );
    let got = std::fs::read_to_string(&out).unwrap();
    let (line, col) = pos(SPEC, ":Gadget:", 0);
    assert!(
        got.contains(&format!(
            "{line}:{col} E0504 concept `:Gadget:` is not defined"
        )),
        "{got}"
    );
}

/// `rekindle init NAME --from-code src --format json` in `dir`, with the scripted model at `url`.
fn init_from_code(dir: &Path, name: &str, url: &str) -> std::process::Output {
    Command::new(cargo_bin("rekindle"))
        .args([
            "init",
            name,
            "--from-code",
            "src",
            "--provider",
            "openai",
            "--model",
            "fake",
        ])
        .args(["--format", "json", "--base-url", url])
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `rekindle init calc --from-code src`: a (scripted) model says what each function does and
/// proposes calls that show it; the calls run on the program, so the acceptance tests hold the
/// program's answers (not the model's claims); rekindle writes the spec, renders it, and the
/// program's own three tests run against the rendered code.
#[test]
fn init_from_code_drafts_a_spec_renders_it_and_scores_it_with_the_programs_tests() {
    use rekindle_testkit::{openai_reply, Server};
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("calc.py"),
        "import math\n\n\ndef add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    \"\"\"a minus b\"\"\"\n    return a - b\n\n\ndef _clamp(x):\n    return x\n\n\ndef hello(name):\n    print(f\"hi {name}\")\n",
    )
    .unwrap();
    std::fs::write(
        src.join("test_calc.py"),
        "import unittest\nfrom calc import add, sub\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n    def test_sub(self):\n        self.assertEqual(sub(5, 3), 2)\n\n    def test_add_negative(self):\n        self.assertEqual(add(-1, 1), 0)\n",
    )
    .unwrap();
    let (server, _rt) = Server::start_blocking(vec![]);
    server.set_responder(|s| {
        let block = |p: &str, c: &str| format!("--- FILE: {p}\n{c}--- END FILE\n");
        let prompt = s.last_user();
        assert!(
            !prompt.contains("assertEqual(add(-1"),
            "the program's tests are never shown: {prompt}"
        );
        assert!(!prompt.contains("_clamp"), "private helpers are not asked about");
        if prompt.contains("say what the function `add`") {
            assert!(prompt.contains("def add(a, b):") && !prompt.contains("def sub"));
            return openai_reply("`add` returns the sum of its two arguments, a plus b.");
        }
        if prompt.contains("say what the function `sub`") {
            return openai_reply("- It returns a minus b.\n");
        }
        if prompt.contains("example calls of `add`") {
            // The model's claim (6) is wrong: the program's answer (5) is what the spec keeps.
            return openai_reply("add(2, 3) == 6\n>>> add(1, 'x')\nadd(2,\n");
        }
        if prompt.contains("example calls of `sub`") {
            return openai_reply("1. `sub(5, 3)`\n2. `sub(0, 0)`\n");
        }
        if prompt.contains("say what the function `hello`") {
            return openai_reply("It greets.");
        }
        if prompt.contains("example calls of `hello`") {
            return openai_reply("hello(\"bo\")");
        }
        if prompt.contains("Write conformance tests") {
            // One check per acceptance test of the functionality, as the spec's test reqs say.
            let mut test = String::from("import contextlib, io, unittest\nfrom calc import *\n\n\nclass C(unittest.TestCase):\n");
            let given = prompt
                .split("It must pass these acceptance tests:\n")
                .nth(1)
                .unwrap_or("");
            for (i, line) in given.lines().take_while(|l| l.starts_with("- ")).enumerate() {
                let parts: Vec<&str> = line.split('`').collect();
                let (call, verb, value) = (parts[1], parts[2].trim(), parts[3]);
                let check = match verb {
                    "returns" => format!("self.assertEqual({call}, {value})"),
                    "raises" => format!("with self.assertRaises({value}):\n            {call}"),
                    _ => format!("with contextlib.redirect_stdout(io.StringIO()) as out:\n            {call}\n        self.assertEqual(out.getvalue(), {value})"),
                };
                test.push_str(&format!("    def test_{i}(self):\n        {check}\n"));
            }
            return openai_reply(&block("conformance_tests/test_conformance.py", &test));
        }
        openai_reply(&format!(
            "{}{}",
            block("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef hello(name):\n    print(f\"hi {name}\")\n"),
            block("test_unit.py", "import unittest\nfrom calc import add\n\n\nclass U(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 1), 2)\n"),
        ))
    });
    let url = format!("{}/v1", server.url());
    let out = init_from_code(d.path(), "calc", &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (said["passed"].as_u64(), said["tests"].as_u64()),
        (Some(3), Some(3)),
        "{said}"
    );
    let spec = std::fs::read_to_string(d.path().join("calc/calc.plain")).unwrap();
    for want in [
        "- :Calc: is the Python module in the file \"calc.py\".",
        "may use what the program imports: `import math`.",
        "other code imports what it defines by name, as `from calc import NAME`.",
        "- A conformance test file imports only the function its functionality names, like `from calc import NAME`; an acceptance test `CALL` returns `VALUE` is checked as `self.assertEqual(CALL, VALUE)`; `CALL` raises `ERROR` as `with self.assertRaises(ERROR): CALL`; `CALL` prints `TEXT` by running CALL inside",
        "- :Calc: should define the function `add(a, b)`. `add` returns the sum of its two arguments, a plus b.",
        "  - `add(2, 3)` returns `5`.",
        "  - `add(1, 'x')` raises `TypeError`.",
        "- :Calc: should define the function `sub(a, b)`. It returns a minus b.",
        "  - `sub(5, 3)` returns `2`.",
        "  - `sub(0, 0)` returns `0`.",
        "- :Calc: should define the function `hello(name)`. It greets.",
        "  - `hello(\"bo\")` prints `'hi bo\\n'`.",
    ] {
        assert!(spec.contains(want), "{want}\n---\n{spec}");
    }
    assert!(
        !spec.contains("returns `6`") && !spec.contains("_clamp"),
        "{spec}"
    );
    assert_eq!(check_json(&d.path().join("calc"), "calc.plain")["ok"], true);
    let stored = std::fs::read_dir(d.path().join("calc/.rekindle/conversations"))
        .unwrap()
        .count();
    assert_eq!(stored, 1);
    // A folder with no Python code is refused before anything is written.
    std::fs::create_dir_all(d.path().join("empty")).unwrap();
    let out = Command::new(cargo_bin("rekindle"))
        .args(["init", "other", "--from-code", "empty"])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!d.path().join("other").exists());
}

/// A program with no function or class to ask about (a script of top-level statements) is
/// drafted whole: the model is shown the code (not its tests) and writes the spec, which must
/// check before it is rendered and scored.
#[test]
fn init_from_code_drafts_a_script_without_functions_whole() {
    use rekindle_testkit::{openai_reply, Server};
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hi.py"), "print(\"hi\")\n").unwrap();
    std::fs::write(
        src.join("test_hi.py"),
        "import subprocess, sys, unittest\n\n\nclass T(unittest.TestCase):\n    def test_hi(self):\n        out = subprocess.run([sys.executable, \"hi.py\"], capture_output=True, text=True)\n        self.assertEqual(out.stdout, \"hi\\n\")\n",
    )
    .unwrap();
    let (server, _rt) = Server::start_blocking(vec![]);
    server.set_responder(|s| {
        let block = |p: &str, c: &str| format!("--- FILE: {p}\n{c}--- END FILE\n");
        let first = s.first_user();
        if first.contains("# Spec files") {
            assert!(
                first.contains("--- CODE: hi.py") && !first.contains("test_hi"),
                "the code, not its tests"
            );
            return openai_reply(&block(
                "hi.plain",
                "---\ndescription: 'hi'\nimport:\n  - python-console-app-template\n---\n\n***implementation reqs***\n\n- :MainExecutableFile: of :App: should be called \"hi.py\".\n\n***functional specs***\n\n- :App: should print \"hi\" and a newline.\n",
            ));
        }
        let prompt = s.last_user();
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block(
                "conformance_tests/test_c.py",
                "import subprocess, sys, unittest\n\n\nclass C(unittest.TestCase):\n    def test_hi(self):\n        out = subprocess.run([sys.executable, \"hi.py\"], capture_output=True, text=True)\n        self.assertEqual(out.stdout, \"hi\\n\")\n",
            ));
        }
        openai_reply(&format!(
            "{}{}",
            block("hi.py", "print(\"hi\")\n"),
            block("test_unit.py", "import unittest\n\n\nclass U(unittest.TestCase):\n    def test_ok(self):\n        self.assertTrue(True)\n"),
        ))
    });
    let url = format!("{}/v1", server.url());
    let out = init_from_code(d.path(), "hi", &url);
    let said: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (
            said["rendered"].as_bool(),
            said["passed"].as_u64(),
            said["tests"].as_u64()
        ),
        (Some(true), Some(1), Some(1)),
        "{said}"
    );
    let spec = std::fs::read_to_string(d.path().join("hi/hi.plain")).unwrap();
    assert!(
        spec.contains("- :App: should print \"hi\" and a newline."),
        "{spec}"
    );
}
