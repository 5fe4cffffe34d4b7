//! The model side of `rekindle converse`: what the model is told, one call, and the spec edits
//! its reply proposes (fenced `diff` blocks). Applying, checking and recording the edits is the
//! caller's (the CLI's command, over `workspace::patch` and `ledger::conversation`).

use crate::options::RoleModel;
use rekindle_llm::session::Session;
use rekindle_llm::{Message, NoSink, Request};

const SYSTEM: &str = "You help people write specifications in ***plain, a Markdown language for software specifications. A ***plain file has sections: ***definitions*** (each item starts with the :Concept: it defines), ***implementation reqs***, ***test reqs*** and ***functional specs*** (one functionality per top-level list item, in the order they are built, each optionally with an indented ***acceptance tests*** list). Concepts are written :LikeThis: and must be defined before they are used. A blank line separates list items and headings.

You are shown the spec files of a project. Answer the person's message. When the spec should change, propose the change as a unified diff of the .plain file(s) in one fenced ```diff block, with `--- a/PATH` and `+++ b/PATH` headers (paths as shown) and `@@` hunks whose context lines are copied exactly from the file (in a diff, a Markdown list item's line starts with a space then `- `). For a short file you may instead give its complete new content in a file block: `--- FILE: PATH`, the whole file, `--- END FILE`. Change only what the message asks for. Keep your explanation short.

For example, to add a functionality after the last one of a file app.plain whose functional specs end with `- :App: should print \"hello\".`:

```diff
--- a/app.plain
+++ b/app.plain
@@ -20,1 +20,3 @@
 - :App: should print \"hello\".
+
+- :App: should print \"bye\" after it.
```";

/// The first user message: the spec files, then the person's message.
pub fn opening(files: &[(String, String)], message: &str) -> String {
    let mut s = String::from("# Spec files\n\n");
    for (path, text) in files {
        s.push_str(&format!("--- FILE: {path}\n{text}"));
        if !text.ends_with('\n') {
            s.push('\n');
        }
        s.push_str("--- END FILE\n\n");
    }
    s.push_str("# Message\n\n");
    s.push_str(message.trim());
    s
}

/// What goes back to the model when its edit could not be used: the problem (its first
/// diagnostics: later ones mostly follow from the first), and what to do. A diff that did not
/// apply is asked for again as the whole file, which small models copy more reliably than
/// they write diffs (a Markdown list item's `- ` reads as a removed line).
pub fn refusal(problem: &str, as_file: bool) -> String {
    let how = if as_file {
        "This time reply with the complete new content of the .plain file you change, in a file block: a line `--- FILE: PATH`, the whole file, then `--- END FILE`."
    } else {
        "Propose it again as a corrected ```diff block: copy the context lines exactly from the file, and put the change where the message needs it (a functionality is a `- ` item under ***functional specs***)."
    };
    format!(
        "Your proposed change could not be used:\n\n{}\n\n{how}",
        problem.trim()
    )
}

/// Whole files a reply gives (`--- FILE: PATH` … `--- END FILE`), as (path, text).
pub fn whole_files(reply: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in reply.lines() {
        match &mut current {
            None => {
                if let Some(p) = line.trim().strip_prefix("--- FILE:") {
                    current = Some((p.trim().to_string(), String::new()));
                }
            }
            Some((_, text)) => {
                if line.trim() == "--- END FILE" {
                    if let Some(done) = current.take() {
                        out.push(done);
                    }
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    out
}

/// A unified diff of `before` and `after` of `path`, as conversations store and show edits.
pub fn unified(path: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// The system message and the conversation so far.
pub fn messages(turns: &[(bool, String)]) -> Vec<Message> {
    let mut m = vec![Message::system(SYSTEM)];
    for (from_user, text) in turns {
        m.push(if *from_user {
            Message::user(text.clone())
        } else {
            Message::assistant(text.clone())
        });
    }
    m
}

/// One reply: its text, and the request's cache key.
/// `sample`: `Some(n)` asks for a sampled reply (temperature 0.7, a seed derived from the
/// conversation and `n`), for when the greedy one repeated itself.
pub async fn ask(
    model: &RoleModel<'_>,
    session: &Session,
    messages: Vec<Message>,
    max_tokens: u32,
    sample: Option<u64>,
) -> Result<(String, String), String> {
    call(model, session, messages, max_tokens, sample, "converse-v1").await
}

/// A free-text call (conversations and drafts): no grammar, but a reply that starts repeating
/// itself is cut there (a small model can say one spec line over and over until the token cap).
pub(crate) async fn call(
    model: &RoleModel<'_>,
    session: &Session,
    messages: Vec<Message>,
    max_tokens: u32,
    sample: Option<u64>,
    version: &str,
) -> Result<(String, String), String> {
    let mut req = Request::new(model.model.clone(), messages);
    req.sampling.max_tokens = max_tokens;
    if let Some(n) = sample {
        crate::steps::sample(&mut req, n);
    }
    req.template_version = version.into();
    req.constraint = Some(rekindle_llm::Constraint::Text);
    let outcome = session
        .call(model.provider, &req, &mut NoSink)
        .await
        .map_err(|e| e.to_string())?;
    Ok((outcome.response.text, outcome.record.key))
}

/// The contents of the fenced ```diff (or ```patch) blocks of a reply, in order.
pub fn proposals(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in reply.lines() {
        let t = line.trim_start();
        match &mut current {
            None => {
                let info = t.strip_prefix("```").map(str::trim);
                if matches!(info, Some("diff") | Some("patch") | Some("udiff")) {
                    current = Some(String::new());
                }
            }
            Some(body) => {
                if t.starts_with("```") {
                    out.push(std::mem::take(body));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    // A block the reply never closed (cut at the token cap) is still a proposal.
    if let Some(body) = current.filter(|b| !b.trim().is_empty()) {
        out.push(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_and_the_diff_shown_for_them() {
        let reply = "Here:\n--- FILE: app.plain\n- a\n\n- b\n--- END FILE\n";
        let w = whole_files(reply);
        assert_eq!(
            w,
            vec![("app.plain".to_string(), "- a\n\n- b\n".to_string())]
        );
        let d = unified("app.plain", "- a\n", &w[0].1);
        assert!(d.starts_with("--- a/app.plain\n+++ b/app.plain\n@@"), "{d}");
        assert!(d.contains("\n+- b\n"), "{d}");
        assert!(refusal("x", true).contains("--- FILE: PATH"));
    }

    #[test]
    fn diff_blocks_are_found_and_others_ignored() {
        let reply = "Sure.\n\n```python\nprint(1)\n```\n\n```diff\n--- a/app.plain\n+++ b/app.plain\n@@ -1 +1 @@\n-a\n+b\n```\nand\n```patch\n-x\n+y\n";
        let p = proposals(reply);
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("--- a/app.plain\n"));
        assert_eq!(p[1], "-x\n+y\n");
    }
}
