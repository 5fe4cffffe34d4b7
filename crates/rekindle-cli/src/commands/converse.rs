//! `rekindle converse SPEC`: a conversation with a model about a spec. The model proposes spec
//! edits as unified diffs; each one that applies and still checks is shown and, when accepted,
//! written. The conversation (messages, proposals, verdicts, the spec's text before and after
//! each accepted edit) is stored under `.rekindle/conversations/` and entered in the journal.

use super::runtime;
use crate::args::{Format, ProviderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_diag::diag;
use rekindle_ledger::conversation::{
    self, Conversation, ConversationEntry, Edit, FileChange, Turn,
};
use rekindle_ledger::journal::Journal;
use rekindle_ledger::record::Record;
use rekindle_llm::session::Mode;
use rekindle_lsp::docs::{Docs, Overlay};
use rekindle_spec::project;
use rekindle_workspace::layout::ProjectLayout;
use rekindle_workspace::patch;
use serde_json::json;
use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

pub struct ConverseArgs<'a> {
    pub file: &'a Path,
    pub messages: &'a [String],
    pub yes: bool,
    pub max_tokens: u32,
    pub local_only: bool,
    pub args: &'a SpecArgs,
    pub provider: &'a ProviderArgs,
}

/// How many times a proposal that does not apply or check goes back to the model.
const RETRIES: usize = 2;

pub fn run(a: &ConverseArgs<'_>) -> CmdResult {
    // A spec with errors is something to talk about: only a broken config stops here.
    load::precheck(a.file)?;
    let l = load::load(a.file, a.args);
    if l.config_failed() {
        l.print_diagnostics(load::color(a.args));
        return Err(CliError::Reported(ExitStatus::Error));
    }
    let (project, settings) = (l.project, l.settings);
    let json_out = a.args.format == Format::Json;
    let dir = ProjectLayout::for_spec(a.file).dir;
    let files = spec_files(&project, &dir);
    if files.is_empty() {
        return Err(CliError::usage(format!(
            "{} is not a spec file in its project folder",
            a.file.display()
        )));
    }
    let terminal = std::io::stdin().is_terminal() && !json_out;
    let mut queue: VecDeque<String> = a.messages.iter().cloned().collect();
    if queue.is_empty() && !terminal {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::usage(format!("cannot read the message from stdin: {e}")))?;
        if text.trim().is_empty() {
            return Err(CliError::usage(
                "no message: give --message TEXT, or the message on stdin",
            ));
        }
        queue.push_back(text);
    }
    if a.local_only {
        setup::refuse_hosted(&settings, a.provider, "this conversation")?;
    }
    let built = setup::build_models(&settings, a.provider, false).map_err(CliError::usage)?;
    let hosted = built.hosted();
    if !hosted.is_empty()
        && !setup::confirm(
            &format!(
                "This conversation calls hosted models ({}), which can cost money. Continue?",
                hosted.join(", ")
            ),
            a.yes,
        )
    {
        eprintln!("cancelled");
        return Ok(ExitStatus::Failure);
    }
    let models = built.model_set();
    let model = &models.code;
    let session = setup::session(
        &settings,
        Some(rekindle_llm::cache::Cache::new(settings.cache_dir())),
        Mode::Normal,
    );
    let mut c = Conversation {
        spec: conversation::relative(&dir, a.file),
        provider: model.label.clone(),
        model: model.model.clone(),
        purpose: "converse".into(),
        turns: Vec::new(),
        edits: Vec::new(),
    };
    let mut t = Talk {
        file: a.file,
        dir: dir.clone(),
        settings: &settings,
        files,
        yes: a.yes,
        terminal,
        json_out,
        max_tokens: a.max_tokens,
        model,
        session: &session,
        since: 0,
    };
    let failed = talk(&mut t, &mut queue, &mut c)?;
    if c.turns.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let (id, accepted) = record(a.file, &c)?;
    let reported = c.edits.iter().filter(|e| e.verdict == "reported").count();
    if json_out {
        println!(
            "{}",
            json!({
                "ok": !failed,
                "conversation": id,
                "turns": c.turns.len(),
                "edits": c.edits.iter().map(|e| json!({"turn": e.turn + 1, "verdict": e.verdict, "diff": e.diff})).collect::<Vec<_>>(),
                "accepted": accepted,
                "reply": c.turns.iter().rev().find(|t| t.role == "assistant").map(|t| t.text.clone()),
            })
        );
    } else {
        eprintln!(
            "conversation {}: {} turns, {accepted} edit{} accepted{}",
            &id[..16],
            c.turns.len(),
            if accepted == 1 { "" } else { "s" },
            if reported > 0 {
                format!(", {reported} reported and not applied (no terminal to ask; --yes accepts)")
            } else {
                String::new()
            }
        );
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// What a conversation needs: the spec, its files, the model, and how to decide.
pub(crate) struct Talk<'a> {
    pub file: &'a Path,
    pub dir: PathBuf,
    pub settings: &'a rekindle_config::Settings,
    pub files: Vec<(String, String)>,
    pub yes: bool,
    pub terminal: bool,
    pub json_out: bool,
    pub max_tokens: u32,
    pub model: &'a rekindle_render::RoleModel<'a>,
    pub session: &'a rekindle_llm::session::Session,
    /// The turns of the conversation before this one are not sent to the model (adopt's staged
    /// questions, when it falls back to asking for the spec change).
    pub since: usize,
}

/// Runs the conversation over the messages in `queue` (and, on a terminal, what the person types
/// next), adding to `c`; whether a proposal was given up on.
pub(crate) fn talk(
    t: &mut Talk<'_>,
    queue: &mut VecDeque<String>,
    c: &mut Conversation,
) -> Result<bool, CliError> {
    let mut failed = false;
    let rt = runtime();
    loop {
        let message = match queue.pop_front() {
            Some(m) => m,
            None if t.terminal => match prompt("you> ") {
                Some(m) if !m.trim().is_empty() && m.trim() != "/quit" => m,
                _ => break,
            },
            None => break,
        };
        c.turns.push(Turn {
            role: "user".into(),
            text: message.clone(),
        });
        // The model sees the t.files as they are now (earlier accepted edits included).
        let mut sent: Vec<(bool, String)> = Vec::new();
        for turn in &c.turns[t.since.min(c.turns.len() - 1)..c.turns.len() - 1] {
            sent.push((turn.role != "assistant", turn.text.clone()));
        }
        sent.push((true, rekindle_render::converse::opening(&t.files, &message)));
        let mut tries = 0;
        loop {
            // A retry is sampled: asked greedily, a small model gives the refused answer again.
            let (reply, _key) = rt
                .block_on(rekindle_render::converse::ask(
                    t.model,
                    t.session,
                    rekindle_render::converse::messages(&sent),
                    t.max_tokens,
                    (tries > 0).then_some(tries as u64),
                ))
                .map_err(|e| CliError::usage(format!("the model call failed: {e}")))?;
            c.turns.push(Turn {
                role: "assistant".into(),
                text: reply.clone(),
            });
            sent.push((false, reply.clone()));
            let turn = c.turns.len() - 1;
            let diffs = rekindle_render::converse::proposals(&reply);
            let whole = rekindle_render::converse::whole_files(&reply);
            if !t.json_out {
                eprintln!("model> {}", reply.trim());
            }
            if diffs.is_empty() && whole.is_empty() {
                break;
            }
            // A diff first; whole t.files when there is no diff or it does not apply.
            let result = if diffs.is_empty() {
                replaced(&whole, &t.files, &t.dir)
            } else {
                match proposed(&diffs.join("\n"), &t.files, &t.dir) {
                    Err(_) if !whole.is_empty() => replaced(&whole, &t.files, &t.dir),
                    other => other,
                }
            };
            // What is stored and shown: the change as a diff of the t.files.
            let diff = match &result {
                Ok(new_files) => changes(&t.files, new_files),
                Err(_) if diffs.is_empty() => String::new(),
                Err(_) => diffs.join("\n"),
            };
            if !t.json_out && result.is_ok() {
                eprintln!("proposed edit:\n{diff}");
            }
            let problem = match result {
                Err(p) => {
                    c.edits.push(Edit {
                        turn,
                        diff,
                        verdict: "does_not_apply".into(),
                        files: Vec::new(),
                    });
                    Some(("does_not_apply", p))
                }
                Ok(new_files) => offer(t, c, turn, diff, new_files, queue)?
                    .err()
                    .map(|p| ("fails_check", p)),
            };
            let Some((verdict, problem)) = problem else {
                break;
            };
            if tries == RETRIES {
                failed = true;
                if !t.json_out {
                    eprintln!(
                        "error: the proposed edit {}: {problem}",
                        verdict.replace('_', " ")
                    );
                }
                break;
            }
            tries += 1;
            let back = rekindle_render::converse::refusal(&problem, verdict == "does_not_apply");
            c.turns.push(Turn {
                role: "check".into(),
                text: back.clone(),
            });
            sent.push((true, back));
        }
    }
    Ok(failed)
}

/// Offers a proposed edit (the spec files after it, and the diff that shows it, proposed by turn
/// `turn`): when it checks, it is accepted, rejected or reported as [`decide`] says, and written
/// when accepted; when it does not, the problem. Either way it is entered in `c`'s edits.
pub(crate) fn offer(
    t: &mut Talk<'_>,
    c: &mut Conversation,
    turn: usize,
    diff: String,
    new_files: Vec<(String, String)>,
    queue: &mut VecDeque<String>,
) -> Result<Result<&'static str, String>, CliError> {
    if let Err(p) = check(t.file, t.settings, &t.dir, &new_files) {
        c.edits.push(Edit {
            turn,
            diff,
            verdict: "fails_check".into(),
            files: Vec::new(),
        });
        return Ok(Err(p));
    }
    let verdict = decide(t.yes, t.terminal, queue);
    let mut edit = Edit {
        turn,
        diff,
        verdict: verdict.into(),
        files: Vec::new(),
    };
    if verdict == "accepted" {
        edit.files = write(&t.dir, &t.files, &new_files)?;
        t.files = new_files;
    }
    if !t.json_out {
        eprintln!("edit {verdict}");
    }
    c.edits.push(edit);
    Ok(Ok(verdict))
}

/// One free-text question to the model (a draft's small questions), entered in `c` as a user
/// turn and the reply as an assistant turn; the reply.
pub(crate) fn question(
    model: &rekindle_render::RoleModel<'_>,
    session: &rekindle_llm::session::Session,
    c: &mut Conversation,
    messages: Vec<rekindle_llm::Message>,
    max_tokens: u32,
    json_out: bool,
) -> Result<String, CliError> {
    let asked = messages
        .last()
        .map(|m| m.content.clone())
        .unwrap_or_default();
    let reply = runtime()
        .block_on(rekindle_render::draft::ask(
            model, session, messages, max_tokens,
        ))
        .map_err(|e| CliError::usage(format!("the model call failed: {e}")))?;
    if !json_out {
        eprintln!("model> {}", reply.trim());
    }
    c.turns.push(Turn {
        role: "user".into(),
        text: asked,
    });
    c.turns.push(Turn {
        role: "assistant".into(),
        text: reply.clone(),
    });
    Ok(reply)
}

/// Stores `c` and enters it in the journal: its id, and how many edits were accepted.
pub(crate) fn record(file: &Path, c: &Conversation) -> Result<(String, usize), CliError> {
    let layout = ProjectLayout::for_spec(file);
    let store = conversation::Store::new(layout.conversations());
    let id = store
        .save(c)
        .map_err(|e| CliError::usage(format!("the conversation could not be stored: {e}")))?;
    let accepted = c.edits.iter().filter(|e| e.verdict == "accepted").count();
    Journal::new(layout.journal())
        .append(&Record::Conversation(ConversationEntry {
            id: id.clone(),
            spec: c.spec.clone(),
            purpose: c.purpose.clone(),
            provider: c.provider.clone(),
            model: c.model.clone(),
            turns: c.turns.len(),
            accepted,
        }))
        .map_err(|e| {
            CliError::usage(format!(
                "the journal could not record the conversation: {e}"
            ))
        })?;
    Ok((id, accepted))
}

/// The project's spec files on disk inside its folder, as (path relative to it, text): the ones
/// a conversation may edit.
pub(crate) fn spec_files(project: &project::Project, dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in &project.modules {
        let f = project.sources.get(m.file);
        if f.path.starts_with(rekindle_spec::library::PREFIX) {
            continue;
        }
        let rel = conversation::relative(dir, &f.path);
        if rel.starts_with("..") || Path::new(&rel).is_absolute() {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&f.path) {
            if !out.iter().any(|(p, _): &(String, String)| *p == rel) {
                out.push((rel, text));
            }
        }
    }
    out
}

/// The spec files after `diff`: only .plain files inside the project folder.
fn proposed(
    diff: &str,
    files: &[(String, String)],
    dir: &Path,
) -> Result<Vec<(String, String)>, String> {
    let patches = patch::parse(diff).map_err(|e| e.to_string())?;
    let mut out = files.to_vec();
    for p in &patches {
        if !p.path.ends_with(".plain") {
            return Err(format!(
                "{} is not a spec file: a conversation changes .plain files only",
                p.path
            ));
        }
        rekindle_workspace::files::check_path(dir, &p.path).map_err(|r| r.to_string())?;
        match out.iter_mut().find(|(path, _)| *path == p.path) {
            Some((_, text)) => *text = patch::apply(text, p).map_err(|e| e.to_string())?,
            None if p.creates => out.push((
                p.path.clone(),
                patch::apply("", p).map_err(|e| e.to_string())?,
            )),
            None => {
                return Err(format!(
                    "{} is not one of the spec files shown ({})",
                    p.path,
                    files
                        .iter()
                        .map(|(p, _)| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
    Ok(out)
}

/// The spec files with the whole files a reply gave in place of theirs (new .plain files inside
/// the project folder allowed).
fn replaced(
    whole: &[(String, String)],
    files: &[(String, String)],
    dir: &Path,
) -> Result<Vec<(String, String)>, String> {
    let mut out = files.to_vec();
    for (path, text) in whole {
        let path = path.trim_start_matches("./").to_string();
        if !path.ends_with(".plain") {
            return Err(format!(
                "{path} is not a spec file: a conversation changes .plain files only"
            ));
        }
        rekindle_workspace::files::check_path(dir, &path).map_err(|r| r.to_string())?;
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some((_, t)) => *t = text.clone(),
            None => out.push((path, text.clone())),
        }
    }
    Ok(out)
}

/// The unified diff from `before` to `after`, file by file.
pub(crate) fn changes(before: &[(String, String)], after: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, text) in after {
        let old = before
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
            .unwrap_or("");
        if old != text {
            out.push_str(&rekindle_render::converse::unified(path, old, text));
        }
    }
    out
}

/// Loads the spec as it would be after the edit; its errors, rendered, when it has any.
pub(crate) fn check(
    entry: &Path,
    settings: &rekindle_config::Settings,
    dir: &Path,
    files: &[(String, String)],
) -> Result<(), String> {
    let mut docs = Docs::default();
    for (rel, text) in files {
        let abs = std::path::absolute(dir.join(rel)).map_err(|e| e.to_string())?;
        docs.open(rekindle_spec::loader::normalize(&abs), text.clone());
    }
    let opts = settings.project_options();
    let entry = std::path::absolute(entry).map_err(|e| e.to_string())?;
    let p = project::load(&entry, &opts, &Overlay { docs: &docs });
    let errors: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| diag::render(&p.sources, d, false))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    // The first errors: the rest mostly follow from them (a broken front matter leaves every
    // concept of its template undefined).
    let more = errors.len().saturating_sub(3);
    let mut text = format!(
        "the spec no longer checks:\n\n{}",
        errors[..errors.len().min(3)].join("\n")
    );
    if more > 0 {
        text.push_str(&format!("\n({more} more error(s) follow from these)"));
    }
    Err(text)
}

/// Accept, reject or only report a proposal that applies and checks.
fn decide(yes: bool, terminal: bool, queue: &mut VecDeque<String>) -> &'static str {
    if yes {
        return "accepted";
    }
    if !terminal {
        return "reported";
    }
    match prompt("apply this edit? [y]es / [n]o / [c]hange: ")
        .unwrap_or_default()
        .trim()
        .to_lowercase()
        .as_str()
    {
        "y" | "yes" => "accepted",
        "c" | "change" => {
            if let Some(m) = prompt("what should change? ") {
                queue.push_front(m);
            }
            "rejected"
        }
        _ => "rejected",
    }
}

/// Writes the files that changed (atomically), returning each one's before and after.
pub(crate) fn write(
    dir: &Path,
    before: &[(String, String)],
    after: &[(String, String)],
) -> Result<Vec<FileChange>, CliError> {
    let mut changes = Vec::new();
    for (rel, text) in after {
        let old = before
            .iter()
            .find(|(p, _)| p == rel)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        if old == *text {
            continue;
        }
        let path: PathBuf = rekindle_workspace::files::check_path(dir, rel)
            .map_err(|r| CliError::usage(r.to_string()))?;
        let parent = path.parent().unwrap_or(dir);
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(parent)?;
            let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        result.map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
        changes.push(FileChange {
            path: rel.clone(),
            before: old,
            after: text.clone(),
        });
    }
    Ok(changes)
}

fn prompt(question: &str) -> Option<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_string()),
    }
}
