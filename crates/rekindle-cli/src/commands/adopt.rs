//! `rekindle adopt [PATH]`: a hand edit to generated code becomes a spec change. The model is
//! shown the edit and the specs and proposes the change (as in `converse`); once accepted, the
//! spec is re-rendered (the edit saved as a patch first, as `render --force` does). The edit is
//! retired only when the render passes and a conformance test of a functionality rendered anew
//! fails on the code as it was before the edit (so it checks what the edit did); otherwise the
//! patch stays, with the reason. Recorded as a conversation (purpose `adopt`).

use super::converse::{changes, offer, question, record, spec_files, talk, Talk};
use crate::args::{Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_ledger::conversation::{self, Conversation, Turn};
use rekindle_llm::session::Mode;
use rekindle_plan::stale::State;
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::{BuildLayout, ModuleLayout, ProjectLayout};
use rekindle_workspace::scripts::{self, Outcome};
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::Path;

pub fn run(path: Option<&str>, spec: Option<&Path>, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let max_tokens = r.max_tokens;
    let spec = load::spec_or_default(spec);
    let (project, settings) = load::load_valid_with(&spec, args, Some(r))?;
    let json_out = args.format == Format::Json;
    let opts = setup::options(&spec, &settings, r, &project);
    let entry = project
        .render_order
        .last()
        .map(|rm| project.module(rm.module).name.clone())
        .ok_or_else(|| CliError::usage("the spec renders no module"))?;
    let layout = BuildLayout::new(&opts.build_folder);
    let code = Repo::new(layout.module(&entry).code);
    if !code.exists() || code.head().ok().flatten().is_none() {
        return Err(CliError::usage(format!(
            "module {entry} has not been rendered yet: there is no generated code to adopt edits from"
        )));
    }
    // The hand edits: changes to the entry module's code since its last render commit.
    let changed: Vec<String> = code
        .drift()
        .map_err(|e| CliError::usage(e.to_string()))?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| path.is_none_or(|want| p == want || want.ends_with(&format!("/{p}"))))
        .collect();
    if changed.is_empty() {
        if !json_out {
            eprintln!("nothing to adopt: no file of module {entry} was changed by hand");
        }
        return Ok(ExitStatus::Success);
    }
    let edit = code
        .diff_all()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let before = code
        .head()
        .map_err(|e| CliError::usage(e.to_string()))?
        .unwrap_or_default();
    let dir = ProjectLayout::for_spec(&spec).dir;
    let files = spec_files(&project, &dir);
    if r.local_only {
        setup::refuse_hosted(&settings, &r.provider, "adopting")?;
    }
    let built = setup::build_models(&settings, &r.provider, false).map_err(CliError::usage)?;
    let models = built.model_set();
    let session = setup::session(
        &settings,
        Some(rekindle_llm::cache::Cache::new(settings.cache_dir())),
        Mode::Normal,
    );
    let message = format!(
        "Someone changed the generated code of module {entry} by hand ({}). This is the change:\n\n```diff\n{}```\n\nThe spec is the source of truth, so this change must come from the spec. Change the spec so that rendering it produces this behaviour: preferably a new functionality at the end of ***functional specs*** saying what the change does, with an acceptance test that checks the new behaviour; or a change to an existing functionality or requirement. Say nothing about the code itself.",
        changed.join(", "),
        edit
    );
    // A functionality whose conformance tests fail on the edited code is one the edit changes:
    // the spec must say it differently, not gain a functionality that contradicts it.
    let n = project
        .render_order
        .last()
        .map_or(0, |rm| rm.sections.functional_specs.len());
    let changes_one = match &settings.conformance_tests_script {
        Some(script) => {
            let d = layout.module(&entry);
            let tree = edited_tree(&d).map_err(CliError::usage)?;
            let ids: Vec<usize> = (1..=n).collect();
            first_failing(script, &opts, &d, tree.path(), &ids).map_err(CliError::usage)?
        }
        None => None,
    };
    let message = match &changes_one {
        Some((k, output)) => format!(
            "{message}\n\nThe edit changes what functionality {k} says: its conformance tests fail on the edited code:\n\n```\n{}\n```\n\nSo change functionality {k} and its acceptance tests to say what the program does now, rather than adding a functionality that contradicts it.",
            rekindle_render::events::output_tail(output, 20, 4096)
        ),
        None => message,
    };
    let terminal = std::io::stdin().is_terminal() && !json_out;
    let mut c = Conversation {
        spec: conversation::relative(&dir, &spec),
        provider: models.code.label.clone(),
        model: models.code.model.clone(),
        purpose: "adopt".into(),
        turns: Vec::new(),
        edits: Vec::new(),
    };
    let mut t = Talk {
        file: &spec,
        dir: dir.clone(),
        settings: &settings,
        files,
        yes: r.yes,
        terminal,
        json_out,
        max_tokens,
        model: &models.code,
        session: &session,
        since: 0,
    };
    // First the small questions (what the edit adds or how the functionality it changes reads
    // now; the acceptance tests), whose answers rekindle writes into the spec; when that does
    // not check, the model is asked for the spec change itself.
    if !staged(
        &mut t,
        &mut c,
        &project,
        &entry,
        &edit,
        changes_one.as_ref(),
    )? {
        t.since = c.turns.len();
        let mut queue = VecDeque::from([message]);
        talk(&mut t, &mut queue, &mut c)?;
    }
    let accepted = c.edits.iter().any(|e| e.verdict == "accepted");
    if !accepted {
        let (id, _) = record(&spec, &c)?;
        let why =
            "the spec was not changed (no edit was accepted), so the hand edit stays where it is";
        report(json_out, false, &id, why, None);
        return Ok(ExitStatus::Failure);
    }
    // What the changed spec renders anew: the functionalities whose conformance tests will be
    // the candidates for capturing the edit.
    let (project2, settings2) = load::load_valid_with(&spec, args, Some(r))?;
    let opts2 = setup::options(&spec, &settings2, r, &project2);
    let ms = setup::model_settings(&settings2, &r.provider, &opts2).map_err(CliError::usage)?;
    let status = rekindle_render::status(&project2, &opts2, &ms).map_err(CliError::usage)?;
    let fresh: Vec<usize> = status
        .modules
        .iter()
        .find(|m| m.module == entry)
        .map(|m| {
            m.functionalities
                .iter()
                .filter(|f| f.state != State::UpToDate)
                .map(|f| f.id)
                .collect()
        })
        .unwrap_or_default();
    let patches_dir = ProjectLayout::for_spec(&spec).patches();
    let patches_before: HashSet<_> = list(&patches_dir);
    let forced = RenderArgs {
        force: true,
        ..r.clone()
    };
    let rendered = super::render::run(&spec, args, &forced);
    let saved: Vec<_> = list(&patches_dir)
        .into_iter()
        .filter(|p| !patches_before.contains(p))
        .collect();
    let outcome = match rendered {
        Ok(ExitStatus::Success) => captured(&settings2, &opts2, &layout, &entry, &before, &fresh),
        _ => Err("the spec changed, but its render did not pass".to_string()),
    };
    let (retired, why) = match &outcome {
        Ok(Some(k)) => (true, format!("functionality {k}'s conformance tests fail on the code before the edit and pass on the code rendered from the changed spec: the edit is retired")),
        Ok(None) => (false, "no conformance test of a functionality rendered anew fails on the code before the edit, so nothing shows the spec captures it: the edit stays as a patch".to_string()),
        Err(e) => (false, format!("{e}: the edit stays as a patch")),
    };
    if retired {
        for p in &saved {
            let retired_dir = patches_dir.join("retired");
            let _ = std::fs::create_dir_all(&retired_dir);
            if let Some(name) = p.file_name() {
                let _ = std::fs::rename(p, retired_dir.join(name));
            }
        }
    }
    c.turns.push(Turn {
        role: "check".into(),
        text: why.clone(),
    });
    let (id, _) = record(&spec, &c)?;
    report(
        json_out,
        retired,
        &id,
        &why,
        saved.first().map(|p| p.display().to_string()),
    );
    Ok(if retired {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The functionality among `fresh` whose conformance tests fail on the code of `before` (the
/// render commit the hand edit was made on), if one does.
fn captured(
    settings: &rekindle_config::Settings,
    opts: &rekindle_render::Options,
    layout: &BuildLayout,
    module: &str,
    before: &str,
    fresh: &[usize],
) -> Result<Option<usize>, String> {
    let Some(script) = &settings.conformance_tests_script else {
        return Err("the project has no conformance tests script".into());
    };
    let d = layout.module(module);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    Repo::new(&d.code)
        .export(before, tmp.path())
        .map_err(|e| e.to_string())?;
    Ok(first_failing(script, opts, &d, tmp.path(), fresh)?.map(|(k, _)| k))
}

/// The code as edited by hand, in a folder of its own: the last render commit with the drifted
/// files copied over (regular files only: a link the edit made is not followed) and the deleted
/// ones removed. The tests run there, never in the build folder.
fn edited_tree(d: &ModuleLayout) -> Result<tempfile::TempDir, String> {
    let code = Repo::new(&d.code);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let head = code
        .head()
        .map_err(|e| e.to_string())?
        .ok_or("the module has no render commit")?;
    code.export(&head, tmp.path()).map_err(|e| e.to_string())?;
    for (_, rel) in code.drift().map_err(|e| e.to_string())? {
        let (from, to) = (d.code.join(&rel), tmp.path().join(&rel));
        let regular = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file());
        let _ = std::fs::remove_file(&to);
        if regular {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
        }
    }
    Ok(tmp)
}

/// The first functionality among `ids` whose conformance tests fail (or time out) on the code
/// in `tree`, with the tests' output.
fn first_failing(
    script: &Path,
    opts: &rekindle_render::Options,
    d: &ModuleLayout,
    tree: &Path,
    ids: &[usize],
) -> Result<Option<(usize, String)>, String> {
    for &k in ids {
        let tests = d.conformance_tests(k);
        if !tests.is_dir() {
            continue;
        }
        let run = scripts::run(
            script,
            &[tree, &tests],
            tree,
            opts.script_timeout,
            &opts.sandbox,
        )
        .map_err(|e| e.to_string())?;
        if matches!(run.outcome, Outcome::Failed | Outcome::TimedOut) {
            return Ok(Some((k, run.output)));
        }
    }
    Ok(None)
}

fn list(dir: &Path) -> HashSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

fn report(json_out: bool, retired: bool, id: &str, why: &str, patch: Option<String>) {
    if json_out {
        println!(
            "{}",
            json!({"ok": retired, "retired": retired, "conversation": id, "why": why, "patch": patch})
        );
    } else {
        eprintln!("{}: {why}", if retired { "adopted" } else { "not adopted" });
        if let Some(p) = patch.filter(|_| !retired) {
            eprintln!("  the hand edit is saved as {p}");
        }
        eprintln!("  conversation {}", &id[..16.min(id.len())]);
    }
}

/// The staged proposal, in small questions whose answers rekindle writes into the entry
/// module's spec file and offers as the edit. When the edit changes what functionality `k` says
/// (`changes_one`: its conformance tests fail on the edited code), the model rewrites that
/// functionality's sentence and each of its acceptance tests; otherwise it says in one sentence
/// what the edit makes the program do and gives one acceptance test, appended as a new
/// functionality. Whether it was offered (checked and decided); false when there was nothing
/// usable or the result did not check.
fn staged(
    t: &mut Talk<'_>,
    c: &mut Conversation,
    project: &rekindle_spec::project::Project,
    entry: &str,
    edit: &str,
    changes_one: Option<&(usize, String)>,
) -> Result<bool, CliError> {
    use rekindle_render::draft;
    // One question, its answer made one safe paragraph (empty when there was nothing usable).
    let (model, session, json_out) = (t.model, t.session, t.json_out);
    let ask = |c: &mut Conversation, messages| {
        question(model, session, c, messages, 200, json_out).map(|r| draft::sentences(&r))
    };
    let Some(m) = project.modules.iter().find(|m| m.name == entry) else {
        return Ok(false);
    };
    let rel = conversation::relative(&t.dir, &project.sources.get(m.file).path);
    let Some(text) = t
        .files
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, text)| text.clone())
    else {
        return Ok(false);
    };
    let new_text = if let Some((k, failure)) = changes_one {
        let Some(item) = project
            .render_order
            .last()
            .and_then(|rm| rm.sections.functional_specs.get(k - 1))
            .filter(|i| i.span.file == m.file && project.sources.get(m.file).text == text)
        else {
            return Ok(false);
        };
        let said = first_paragraph(&item.text);
        let subject = subject(std::slice::from_ref(&said));
        let requirement = ask(
            c,
            draft::edit_changed_requirement(&said, edit, failure, subject.as_deref()),
        )?;
        if requirement.is_empty() {
            return Ok(false);
        }
        let mut edits = vec![(item.span.start as usize, said, requirement.clone())];
        for a in item.acceptance_tests.iter().take(MAX_TESTS_REWRITTEN) {
            let old = first_paragraph(&a.text);
            let new = ask(
                c,
                draft::edit_changed_acceptance_test(&requirement, &old, edit, failure),
            )?;
            if !new.is_empty() {
                edits.push((a.span.start as usize, old, new));
            }
        }
        match replace_items(&text, &edits) {
            Some(new_text) => new_text,
            None => return Ok(false),
        }
    } else {
        let said: Vec<String> = m
            .own
            .functional_specs
            .iter()
            .map(|i| first_paragraph(&i.text))
            .collect();
        let subject = subject(&said);
        let requirement = ask(c, draft::edit_requirement(&said, edit, subject.as_deref()))?;
        if requirement.is_empty() {
            return Ok(false);
        }
        let test = ask(c, draft::edit_acceptance_test(&requirement, edit))?;
        let Some(new_text) = add_functionality(&text, &requirement, &test) else {
            return Ok(false);
        };
        new_text
    };
    c.turns.push(Turn {
        role: "rekindle".into(),
        text: format!("the spec change written into {rel} from the answers above"),
    });
    let new_files: Vec<(String, String)> = t
        .files
        .iter()
        .map(|(p, old)| {
            let text = if *p == rel {
                new_text.clone()
            } else {
                old.clone()
            };
            (p.clone(), text)
        })
        .collect();
    let diff = changes(&t.files, &new_files);
    if !t.json_out {
        eprintln!("proposed edit:\n{diff}");
    }
    let turn = c.turns.len() - 1;
    match offer(t, c, turn, diff, new_files, &mut VecDeque::new())? {
        Ok(_) => Ok(true),
        Err(problem) => {
            c.turns.push(Turn {
                role: "check".into(),
                text: problem,
            });
            Ok(false)
        }
    }
}

/// The concept the functionalities most often start with (`:App:`), if any.
fn subject(functionalities: &[String]) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in functionalities {
        let Some((a, b)) = rekindle_spec::concepts::uses(f).next() else {
            continue;
        };
        let name = &f[a..b];
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, k)) => *k += 1,
            None => counts.push((name.to_string(), 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, k)| *k).map(|(n, _)| n)
}

/// At most this many acceptance tests of a changed functionality are asked about (one question
/// each); the rest stay as they are.
const MAX_TESTS_REWRITTEN: usize = 5;

/// An item's own text (its acceptance tests cut off): its first paragraph, trimmed.
fn first_paragraph(item_text: &str) -> String {
    let own = item_text
        .split("***acceptance tests***")
        .next()
        .unwrap_or("");
    own.split("\n\n").next().unwrap_or("").trim().to_string()
}

/// `spec` with list items rewritten: each `(offset, old, new)` names the byte offset of an
/// item's bullet in `spec`, the first paragraph it has (which the line there must start with,
/// so a span from elsewhere changes nothing) and the paragraph it gets. Continuation lines of
/// the old paragraph go; what follows it (acceptance tests, nested lists) stays.
fn replace_items(spec: &str, edits: &[(usize, String, String)]) -> Option<String> {
    let mut lines: Vec<String> = spec.lines().map(str::to_string).collect();
    let mut at = Vec::new();
    for (offset, old, new) in edits {
        let line = spec.get(..*offset)?.matches('\n').count();
        at.push((line, old, new));
    }
    at.sort_by_key(|a| std::cmp::Reverse(a.0));
    let starts_item = |l: &str| {
        let t = l.trim_start();
        ["- ", "* ", "+ "].iter().any(|m| t.starts_with(m)) || t.starts_with("***")
    };
    for (l, old, new) in at {
        let line = lines.get(l)?.clone();
        let indent = &line[..line.len() - line.trim_start().len()];
        let rest = line.trim_start();
        let marker = ["- ", "* ", "+ "]
            .into_iter()
            .find(|m| rest.starts_with(m))?;
        let first_words: String = old.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        let here: String = rest[marker.len()..]
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        if !first_words.starts_with(&here) && !here.starts_with(&first_words) {
            return None;
        }
        let mut end = l + 1;
        while end < lines.len() && !lines[end].trim().is_empty() && !starts_item(&lines[end]) {
            end += 1;
        }
        lines.splice(l..end, [format!("{indent}{marker}{new}")]);
    }
    let mut out = lines.join("\n");
    if spec.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
}

/// `spec` with a functionality (and its acceptance test, when there is one) after the last item
/// of its ***functional specs*** section: before the next section heading, or at the end.
fn add_functionality(spec: &str, requirement: &str, test: &str) -> Option<String> {
    let lines: Vec<&str> = spec.lines().collect();
    let heading = |l: &str| l.starts_with("***") && l.trim_end().ends_with("***");
    let start = lines
        .iter()
        .position(|l| heading(l) && l.to_lowercase().contains("functional spec"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| heading(l))
        .map(|p| start + 1 + p)
        .unwrap_or(lines.len());
    let mut last = end;
    while last > start + 1 && lines[last - 1].trim().is_empty() {
        last -= 1;
    }
    let mut item = vec![String::new(), format!("- {requirement}")];
    if !test.is_empty() {
        item.extend([
            String::new(),
            "  ***acceptance tests***".to_string(),
            String::new(),
            format!("  - {test}"),
        ]);
    }
    let mut out: Vec<String> = lines[..last].iter().map(|l| l.to_string()).collect();
    out.extend(item);
    if end < lines.len() {
        out.push(String::new());
        out.extend(lines[end..].iter().map(|l| l.to_string()));
    }
    let mut text = out.join("\n");
    text.push('\n');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::{add_functionality, replace_items, subject};

    #[test]
    fn rewritten_items_keep_their_bullet_indent_and_what_follows() {
        let spec = "***functional specs***\n\n- :App: should print\n  a.\n\n  ***acceptance tests***\n\n  - It prints a\n    and exits.\n\n  - It exits 0.\n\n- :App: should print b.\n";
        let item = spec.find("- :App: should print\n").unwrap();
        let test = spec.find("- It prints a").unwrap();
        let edits = [
            (
                item,
                ":App: should print a.".to_string(),
                ":App: should print A.".to_string(),
            ),
            (
                test,
                "It prints a and exits.".to_string(),
                "It prints A.".to_string(),
            ),
        ];
        assert_eq!(
            replace_items(spec, &edits).unwrap(),
            "***functional specs***\n\n- :App: should print A.\n\n  ***acceptance tests***\n\n  - It prints A.\n\n  - It exits 0.\n\n- :App: should print b.\n"
        );
        // An offset whose line is not that item (a span from another file) changes nothing.
        let elsewhere = [(0, ":App: should print a.".to_string(), "x".to_string())];
        assert_eq!(replace_items(spec, &elsewhere), None);
        assert_eq!(
            replace_items(spec, &[(10_000, String::new(), String::new())]),
            None
        );
    }

    #[test]
    fn a_functionality_goes_after_the_last_one() {
        let spec = "---\nx: 1\n---\n\n***functional specs***\n\n- :App: should print a.\n\n  ***acceptance tests***\n\n  - It prints a.\n\n\n";
        assert_eq!(
            add_functionality(spec, ":App: should print b.", "It prints b.").unwrap(),
            "---\nx: 1\n---\n\n***functional specs***\n\n- :App: should print a.\n\n  ***acceptance tests***\n\n  - It prints a.\n\n- :App: should print b.\n\n  ***acceptance tests***\n\n  - It prints b.\n"
        );
        let later = "***functional specs***\n\n- one\n\n***test reqs***\n\n- t\n";
        assert_eq!(
            add_functionality(later, "two", "").unwrap(),
            "***functional specs***\n\n- one\n\n- two\n\n***test reqs***\n\n- t\n"
        );
        assert_eq!(
            add_functionality("***definitions***\n\n- :A: is a.\n", "x", ""),
            None
        );
    }

    #[test]
    fn the_subject_is_the_concept_functionalities_start_with() {
        let said = [
            ":App: should count words.".to_string(),
            "When given --lines, :App: should count lines with :Reader:.".to_string(),
            ":App: should print the total.".to_string(),
        ];
        assert_eq!(subject(&said).as_deref(), Some(":App:"));
        assert_eq!(subject(&["no concept".to_string()]), None);
    }
}
