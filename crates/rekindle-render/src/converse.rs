//! The model side of `rekindle converse`: what the model is told, one call, and the spec edits
//! its reply proposes (fenced `diff` blocks). Applying, checking and recording the edits is the
//! caller's (the CLI's command, over `workspace::patch` and `ledger::conversation`).

use crate::options::RoleModel;
use rekindle_llm::session::Session;
use rekindle_llm::{Message, NoSink, Request};

const SYSTEM: &str = "You help people write specifications in ***plain, a Markdown language for software specifications. A ***plain file has sections: ***definitions*** (each item starts with the :Concept: it defines), ***implementation reqs***, ***test reqs*** and ***functional specs*** (one functionality per top-level list item, in the order they are built, each optionally with an indented ***acceptance tests*** list). Concepts are written :LikeThis: and must be defined before they are used. A blank line separates list items and headings.

You are shown the spec files of a project. Answer the person's message. When the spec should change, propose the change as a unified diff of the .plain file(s) in one fenced ```diff block, with `--- a/PATH` and `+++ b/PATH` headers (paths as shown) and `@@` hunks whose context lines are copied exactly from the file. Change only what the message asks for. Keep your explanation short.";

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

/// What goes back to the model when its edit could not be used.
pub fn refusal(problem: &str) -> String {
    format!(
        "Your proposed change could not be used:\n\n{}\n\nPropose it again as a corrected ```diff block.",
        problem.trim()
    )
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
pub async fn ask(
    model: &RoleModel<'_>,
    session: &Session,
    messages: Vec<Message>,
    max_tokens: u32,
) -> Result<(String, String), String> {
    let mut req = Request::new(model.model.clone(), messages);
    req.sampling.max_tokens = max_tokens;
    req.template_version = "converse-v1".into();
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
    fn diff_blocks_are_found_and_others_ignored() {
        let reply = "Sure.\n\n```python\nprint(1)\n```\n\n```diff\n--- a/app.plain\n+++ b/app.plain\n@@ -1 +1 @@\n-a\n+b\n```\nand\n```patch\n-x\n+y\n";
        let p = proposals(reply);
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("--- a/app.plain\n"));
        assert_eq!(p[1], "-x\n+y\n");
    }
}
