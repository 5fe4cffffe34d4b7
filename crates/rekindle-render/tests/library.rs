//! The render loop at its library boundary: `render` and `status` called directly, against a
//! scripted model served on 127.0.0.1 (the real OpenAI-compatible provider talks to it), with
//! real bash test scripts and real git repositories. The CLI's own tests cover printing and exit
//! codes; these cover what the loop does and that `status` predicts it.

use rekindle_llm::meter::{Budget, PriceTable};
use rekindle_llm::providers::ProviderSpec;
use rekindle_llm::session::{Mode, Session};
use rekindle_llm::{Provider, ProviderKind};
use rekindle_plan::stale::State;
use rekindle_render::events::{FunctionalityStatus, Phase};
use rekindle_render::{Event, ModelSet, Observer, Options, RenderError, Role, RoleModel, Summary};
use rekindle_testkit::{openai_reply, Reply, Seen, Server};
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::BuildLayout;
use rekindle_workspace::trailers::Trailers;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Runs every `unit_*.sh` in the code folder.
const UNIT: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in unit_*.sh; do [ -e \"$t\" ] || continue; bash \"$t\" || { echo \"unit test $t failed\"; exit 1; }; done\n";
/// Runs every test in the functionality's conformance folder against the code.
const CONFORMANCE: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in \"$2\"/*.sh; do bash \"$t\" || { echo \"conformance test $t failed\"; exit 1; }; done\n";

/// The word that functionality "Print WORD." asks for.
fn word(prompt: &str) -> String {
    let after = prompt
        .split("# The functionality to implement now")
        .nth(1)
        .unwrap_or("");
    after
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .trim_end_matches('.')
        .to_string()
}

fn block(path: &str, content: &str) -> String {
    format!("--- FILE: {path}\n{content}--- END FILE\n")
}

/// The roles of a request's messages, in order.
fn roles(request: &Seen) -> Vec<String> {
    request.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect()
}

/// Whether the render warned with a message containing `text`.
fn warned(events: &[Event], text: &str) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Warning { message } if message.contains(text)))
}

/// A tiny programmer: each functionality appends an `echo` to main.sh; a word starting with
/// `broken` first gets a failing unit test, fixed when asked.
fn programmer(s: &Seen) -> Reply {
    openai_reply(&programmer_text(s))
}

/// What [`programmer`] replies.
fn programmer_text(s: &Seen) -> String {
    let prompt = s.last_user();
    let w = word(&prompt);
    if prompt.contains("# Unit test failure") {
        return block(&format!("unit_{w}.sh"), "exit 0\n");
    }
    if prompt.contains("Write conformance tests") {
        return block("check.sh", &format!("bash main.sh | grep -qx {w}\n"));
    }
    let main = prompt
        .split("--- FILE: main.sh\n")
        .nth(1)
        .and_then(|r| r.split("--- END FILE").next())
        .unwrap_or("#!/usr/bin/env bash\n")
        .to_string();
    let unit = if w.starts_with("broken") {
        "exit 1\n"
    } else {
        "exit 0\n"
    };
    format!(
        "{}{}",
        block("main.sh", &format!("{main}echo {w}\n")),
        block(&format!("unit_{w}.sh"), unit)
    )
}

/// [`programmer`], but every unit-test fix echoes the files it was shown, unchanged: the code
/// stays as it was.
fn unchanging_fixes(s: &Seen) -> Reply {
    let prompt = s.last_user();
    if !prompt.contains("# Unit test failure") {
        return programmer(s);
    }
    let mut reply = String::new();
    for f in prompt.split("--- FILE: ").skip(1) {
        let (path, rest) = f.split_once('\n').unwrap();
        let content = rest.split("--- END FILE").next().unwrap();
        reply.push_str(&block(path, content));
    }
    openai_reply(&reply)
}

#[derive(Default)]
struct Log(Vec<Event>);

impl Observer for Log {
    fn event(&mut self, e: &Event) {
        self.0.push(e.clone());
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    _server_rt: tokio::runtime::Runtime,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new(words: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("unit.sh", UNIT), ("conformance.sh", CONFORMANCE)] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let (server, server_rt) = Server::start_blocking(vec![]);
        server.set_responder(programmer);
        let f = Fixture {
            dir,
            server,
            _server_rt: server_rt,
            rt: tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        f.write_spec(words);
        f
    }

    /// A project of one Python spec, `spec`, whose test scripts run real `python3 -m unittest`:
    /// the unit tests in the code folder, the conformance tests with the code on the path.
    fn python(spec: &str) -> Fixture {
        let f = Fixture::new(&[]);
        for (name, text) in [
            ("app.plain", spec),
            (
                "unit.sh",
                "#!/usr/bin/env bash\ncd \"$1\" || exit 69\npython3 -m unittest discover -p 'test_*.py' 2>&1\n",
            ),
            (
                "conformance.sh",
                "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nPYTHONPATH=\"$1\" python3 -m unittest discover -s \"$2\" -t \"$2\" -p 'test_*.py' 2>&1\n",
            ),
        ] {
            std::fs::write(f.dir.path().join(name), text).unwrap();
        }
        f
    }

    fn write_spec(&self, words: &[&str]) {
        let mut s = String::from("***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n");
        for w in words {
            s.push_str(&format!("- Print {w}.\n\n"));
        }
        std::fs::write(self.dir.path().join("app.plain"), s).unwrap();
    }

    fn project(&self) -> rekindle_spec::project::Project {
        let p = rekindle_spec::project::load(
            &self.dir.path().join("app.plain"),
            &Default::default(),
            &rekindle_spec::loader::RealFs,
        );
        assert!(!p.has_errors(), "{:?}", p.diagnostics);
        p
    }

    fn options(&self) -> Options {
        let mut o = Options::new(self.dir.path().join("build"));
        o.unittests_script = Some(self.dir.path().join("unit.sh"));
        o.conformance_tests_script = Some(self.dir.path().join("conformance.sh"));
        o.patches_dir = self.dir.path().join("patches");
        o.script_timeout = std::time::Duration::from_secs(10);
        // Room for the fix loop's later steps (rewrite the test, then remove it; the sampled
        // repeat), which the default of one fix per phase seldom reaches.
        o.fix_attempts = 3;
        // One restart: the later, sampled ones are tested on their own.
        o.restarts = 1;
        // Calls for all of it: the budget is tested on its own.
        o.call_budget = 20;
        o
    }

    fn code(&self) -> PathBuf {
        BuildLayout::new(self.dir.path().join("build"))
            .module("app")
            .code
    }

    /// Functionality `k`'s conformance tests folder.
    fn conformance_tests(&self, k: usize) -> PathBuf {
        BuildLayout::new(self.dir.path().join("build"))
            .module("app")
            .conformance_tests(k)
    }

    /// The names of the files in functionality `k`'s conformance tests folder, sorted.
    fn conformance_files(&self, k: usize) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.conformance_tests(k))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn provider(&self) -> Box<dyn Provider> {
        let mut spec = ProviderSpec::new("openai", ProviderKind::Openai);
        spec.base_url = Some(format!("{}/v1", self.server.url()));
        spec.model = Some("fake".into());
        rekindle_llm::providers::build_for(&spec, false).unwrap()
    }

    fn render(&self, opts: &Options) -> (Result<Summary, RenderError>, Vec<Event>) {
        let provider = self.provider();
        let session = Session::new(
            Some(rekindle_llm::cache::Cache::new(
                self.dir.path().join("cache"),
            )),
            Mode::Normal,
            Budget::default(),
            PriceTable::default(),
        );
        let mut log = Log::default();
        let r = self.rt.block_on(rekindle_render::render(
            &self.project(),
            opts,
            &models(provider.as_ref()),
            &session,
            &mut log,
        ));
        (r, log.0)
    }

    fn status(&self, opts: &Options) -> rekindle_render::Status {
        let provider = self.provider();
        let settings = models(provider.as_ref()).settings(&opts.sampling);
        rekindle_render::status(&self.project(), opts, &settings).unwrap()
    }
}

fn models(provider: &dyn Provider) -> ModelSet<'_> {
    let m = || RoleModel {
        provider,
        model: "fake".into(),
        label: "openai".into(),
    };
    ModelSet {
        code: m(),
        fix: m(),
        tests: m(),
        escalate: None,
    }
}

fn statuses(events: &[Event]) -> Vec<(usize, FunctionalityStatus, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Functionality {
                id, status, reason, ..
            } => Some((*id, *status, reason.clone())),
            _ => None,
        })
        .collect()
}

fn phases(events: &[Event], k: usize) -> Vec<Phase> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Phase { id, phase, .. } if *id == k => Some(*phase),
            _ => None,
        })
        .collect()
}

fn run_main(code: &Path) -> String {
    let out = std::process::Command::new("bash")
        .arg("main.sh")
        .current_dir(code)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn renders_commits_with_trailers_then_reuses() {
    let f = Fixture::new(&["alpha", "beta"]);
    let opts = f.options();
    let (r, events) = f.render(&opts);
    let s = r.unwrap();
    assert_eq!((s.rendered, s.reused, s.model_calls), (2, 0, 4));
    assert_eq!(
        phases(&events, 1),
        [Phase::Implement, Phase::UnitTests, Phase::ConformanceTests]
    );
    assert_eq!(run_main(&f.code()), "alpha\nbeta\n");
    // Every functionality is one commit whose trailers say which, on top of the module's base.
    let log = Repo::new(f.code()).log().unwrap();
    let t: Vec<Trailers> = log.iter().filter_map(Trailers::of).collect();
    assert_eq!(
        t.iter().map(|t| t.functionality).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(t[0].base.as_deref(), Some("empty"));
    assert!(t[1..].iter().all(|t| t.module == "app"
        && t.render_key.as_ref().is_some_and(|k| k.len() == 64)
        && t.tests_commit.is_some()));
    let (r, events) = f.render(&opts);
    let s = r.unwrap();
    assert_eq!((s.rendered, s.reused, s.model_calls), (0, 2, 0));
    assert!(statuses(&events)
        .iter()
        .all(|(_, st, _)| *st == FunctionalityStatus::Reused));
}

#[test]
fn a_failing_unit_test_is_fixed() {
    let f = Fixture::new(&["broken1"]);
    let (r, events) = f.render(&f.options());
    assert_eq!(r.unwrap().model_calls, 3);
    assert_eq!(
        phases(&events, 1),
        [
            Phase::Implement,
            Phase::UnitTests,
            Phase::FixUnitTests,
            Phase::UnitTests,
            Phase::ConformanceTests
        ]
    );
}

/// A model that answers every unit-test fix with the files exactly as they are: each such fix
/// changes nothing, and the loop must not send the same request again (it says what was tried,
/// and says the fix changed nothing, or samples).
#[test]
fn a_fix_that_changes_nothing_is_not_asked_again() {
    let f = Fixture::new(&["broken1"]);
    f.server.set_responder(unchanging_fixes);
    let mut opts = f.options();
    opts.fix_attempts = 3;
    opts.restarts = 1;
    let (r, _) = f.render(&opts);
    assert!(matches!(r, Err(RenderError::Failed { .. })), "{r:?}");
    let seen = f.server.seen();
    // An implement call and three fixes; the restart's implement call (a restart gets no fix).
    assert_eq!(seen.len(), 5);
    let bodies: Vec<String> = seen.iter().map(|s| s.json().to_string()).collect();
    for (i, a) in bodies.iter().enumerate() {
        for b in &bodies[i + 1..] {
            assert_ne!(a, b, "the same request was sent twice");
        }
    }
    // The second and third fixes are told what the fixes before them did.
    let fix2 = seen[2].last_user();
    assert!(
        fix2.contains("- Fix 1 (failing unit tests) changed nothing")
            && fix2.contains("The last fix changed nothing"),
        "{fix2}"
    );
    let fix3 = seen[3].last_user();
    assert!(
        fix3.contains("- Fix 2 (failing unit tests) changed nothing"),
        "{fix3}"
    );
    // The restart starts afresh: its implement call names why, and no fix history.
    let told = seen[4].last_user();
    assert!(told.contains("An earlier attempt at this functionality was abandoned"));
    assert!(!told.contains("Earlier fixes"), "{told}");
}

/// With the library's default options, a failing functionality gets one fix in its first
/// attempt and none after: a second or third fix made the tests pass in none of 74 tries on the
/// quality benchmark, a fresh restart in 5 of 22. So: implement, fix; a greedy restart told why;
/// then restarts sampled from the first prompt as it was, each with a seed of its own, without
/// top-p, while two of the functionality's 7 calls are left; and the render fails saying so.
#[test]
fn by_default_one_fix_then_a_greedy_restart_then_samples_within_seven_calls() {
    let f = Fixture::new(&["broken1"]);
    f.server.set_responder(unchanging_fixes);
    let defaults = Options::new(PathBuf::from("build"));
    assert_eq!(
        (
            defaults.fix_attempts,
            defaults.restarts,
            defaults.call_budget
        ),
        (1, 5, 7)
    );
    let opts = Options {
        fix_attempts: defaults.fix_attempts,
        restarts: defaults.restarts,
        call_budget: defaults.call_budget,
        ..f.options()
    };
    let (r, events) = f.render(&opts);
    match &r {
        Err(RenderError::Failed { id, reason, .. }) => {
            assert_eq!(*id, 1);
            assert!(
                reason.starts_with("its unit tests still fail (exit 1)"),
                "{reason}"
            );
            assert!(
                reason.ends_with("(the last of 5 attempts; 6 of its 7 model calls made, too few left for another attempt)"),
                "{reason}"
            );
        }
        other => panic!("expected the functionality to fail, got {other:?}"),
    }
    let seen = f.server.seen();
    // implement, fix; implement (told); implement, implement, implement (sampled).
    assert_eq!(seen.len(), 6);
    assert!(seen[1].last_user().contains("# Unit test failure"));
    let implements = [&seen[0], &seen[2], &seen[3], &seen[4], &seen[5]];
    let told = "abandoned because its unit tests still fail after 1 fix (exit";
    assert!(!implements[0].last_user().contains(told));
    assert!(
        implements[1].last_user().contains(told),
        "{}",
        implements[1].last_user()
    );
    for later in &implements[2..] {
        assert_eq!(later.last_user(), implements[0].last_user());
    }
    let temperature = |s: &Seen| s.json()["temperature"].as_f64().unwrap_or(0.0);
    let seed = |s: &Seen| s.json()["seed"].as_u64();
    assert_eq!(temperature(implements[0]), 0.0);
    assert_eq!(temperature(implements[1]), 0.0);
    for later in &implements[2..] {
        assert!(temperature(later) > 0.0, "{}", later.body);
        assert!(seed(later).is_some(), "{}", later.body);
        assert!(later.json().get("top_p").is_none(), "{}", later.body);
    }
    let seeds: HashSet<Option<u64>> = implements[2..].iter().map(|s| seed(s)).collect();
    assert_eq!(seeds.len(), 3);
    let count = |phase: Phase| phases(&events, 1).iter().filter(|p| **p == phase).count();
    assert_eq!(
        (count(Phase::Implement), count(Phase::FixUnitTests)),
        (5, 1)
    );
}

/// A budget that runs out inside an attempt stops it there: no call beyond the budget, and the
/// failure says so. With one call, the implementation passes its unit tests and the conformance
/// tests, which need a second call, are never asked for.
#[test]
fn the_call_budget_stops_a_functionality_inside_an_attempt() {
    let f = Fixture::new(&["alpha"]);
    let opts = Options {
        call_budget: 1,
        ..f.options()
    };
    let (r, _) = f.render(&opts);
    match &r {
        Err(RenderError::Failed { id, reason, .. }) => {
            assert_eq!(*id, 1);
            assert_eq!(
                reason,
                "its budget of 1 model calls ran out before its first attempt finished"
            );
        }
        other => panic!("expected the functionality to fail, got {other:?}"),
    }
    assert_eq!(f.server.seen().len(), 1);
    // With two, the same functionality renders: the budget was all that stopped it.
    let f = Fixture::new(&["alpha"]);
    let (r, _) = f.render(&Options {
        call_budget: 2,
        ..f.options()
    });
    assert_eq!(r.unwrap().model_calls, 2);
}

/// A model that answers the second functionality's implementation call with the program as it
/// was (with only a README of its own): the loop tells it so, once, in the same conversation, and
/// renders with the second answer.
#[test]
fn an_implementation_that_leaves_the_program_as_it_was_is_asked_again() {
    let f = Fixture::new(&["alpha", "beta"]);
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("leaves the program as it was") {
            return openai_reply(&block(
                "main.sh",
                "#!/usr/bin/env bash\necho alpha\necho beta\n",
            ));
        }
        if word(&prompt) == "beta" && !prompt.contains("Write conformance tests") {
            return openai_reply(&format!(
                "{}{}",
                block("main.sh", "#!/usr/bin/env bash\necho alpha\n"),
                block("README.md", "Prints alpha and beta.\n")
            ));
        }
        programmer(s)
    });
    let (r, _) = f.render(&f.options());
    let s = r.unwrap();
    assert_eq!((s.rendered, s.model_calls), (2, 5));
    assert_eq!(run_main(&f.code()), "alpha\nbeta\n");
    let seen = f.server.seen();
    let again = &seen[3];
    assert_eq!(roles(again), ["system", "user", "assistant", "user"]);
    let messages = again.json()["messages"].as_array().unwrap().clone();
    // The model's own reply, then what was wrong with it: which files it left as they were,
    // and the functionality again.
    assert!(messages[2]["content"]
        .as_str()
        .unwrap()
        .contains("README.md"));
    let told = again.last_user();
    assert!(
        told.contains("(main.sh, unit_alpha.sh unchanged)") && told.contains("Print beta."),
        "{told}"
    );
    // The first functionality's implementation (nothing to compare with) is not asked again.
    assert!(!seen[0].last_user().contains("leaves the program"));
}

/// A project whose spec shows a bash function, signature and comment, no body, to define and
/// call (`greet world` prints "hello, world"), and a model whose conformance tests check that;
/// `implementation` answers every other prompt (the last user message) with the reply's text.
fn greet_fixture(implementation: impl Fn(&str) -> String + Send + Sync + 'static) -> Fixture {
    let f = Fixture::new(&[]);
    std::fs::write(
        f.dir.path().join("app.plain"),
        "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n- :Tool: should define the function below, which greets its argument, and greet \"world\" with it.\n\n  ```bash\n  #!/usr/bin/env bash\n  greet() {\n    : # prints \"hello, \" and the name it is given\n  }\n  ```\n",
    )
    .unwrap();
    f.server.set_responder(move |s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block(
                "check.sh",
                "bash main.sh | grep -qx 'hello, world'\n",
            ));
        }
        openai_reply(&implementation(&prompt))
    });
    f
}

/// A model that answers with the function the spec shows, signature and comment, and no body:
/// the file is asked for as code to complete, in a conversation of its own (one user message, no
/// file blocks), and the fenced block of that reply is the file. A completion that only gives
/// the copy back leaves the file as it was, with a warning.
#[test]
fn an_implementation_that_only_repeats_the_specs_code_is_completed() {
    let copy =
        "#!/usr/bin/env bash\ngreet() {\n  : # prints \"hello, \" and the name it is given\n}\n";
    let body = "#!/usr/bin/env bash\ngreet() {\n  echo \"hello, $1\"\n}\ngreet world\n";
    let fixture = |completion: String| {
        greet_fixture(move |prompt| {
            if prompt.starts_with("Complete the following code of main.sh") {
                return completion.clone();
            }
            block("main.sh", copy)
        })
    };
    // The completion, in prose around a fenced block, as models answer.
    let f = fixture(format!(
        "Here is the completed script:\n\n```bash\n{body}```\n\nIt defines `greet` and calls it with \"world\".\n"
    ));
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}\n{events:?}"));
    assert_eq!((s.rendered, s.model_calls), (1, 3));
    assert_eq!(run_main(&f.code()), "hello, world\n");
    let seen = f.server.seen();
    let asked = &seen[1];
    assert_eq!(roles(asked), ["user"]);
    assert_eq!(
        asked.last_user(),
        format!("Complete the following code of main.sh: write the body of every function. Reply with the whole file in one ```bash block.\n\n```bash\n{copy}```")
    );
    assert!(!seen[0].last_user().contains("Complete the following"));

    // Given the copy back, the file stays a copy: the render warns, and the tests decide.
    let f = fixture(format!("```bash\n{copy}```\n"));
    let (r, events) = f.render(&Options {
        restarts: 0,
        fix_attempts: 0,
        ..f.options()
    });
    match r {
        Err(RenderError::Failed { reason, .. }) => {
            assert!(reason.contains("conformance tests still fail"), "{reason}")
        }
        other => panic!("expected the copy to fail its tests, got {other:?}"),
    }
    assert!(
        warned(
            &events,
            "functionality 1: main.sh only repeats code the specification shows, and asked to complete it the model gave no code of its own; it stays as it is"
        ),
        "{events:?}"
    );
    // The implementation, its completion, the conformance tests.
    assert_eq!(f.server.seen().len(), 3);
}

/// A model that answers the reply format with placeholders, then, asked for the code, repeats
/// the function the spec shows with a line of its own as the body: the spec's code is asked for
/// completed, in a conversation of its own, and the completion replaces the file, with a
/// warning. The same answer given at once (no placeholders first) is the model's code and
/// stays as it is.
#[test]
fn code_written_after_placeholders_that_repeats_the_specs_code_is_completed() {
    let shown =
        "#!/usr/bin/env bash\ngreet() {\n  : # prints \"hello, \" and the name it is given\n}\n";
    let sketch = "#!/usr/bin/env bash\ngreet() {\n  : # prints \"hello, \" and the name it is given\n  echo \"hello\"\n}\ngreet world\n";
    let body = "#!/usr/bin/env bash\ngreet() {\n  echo \"hello, $1\"\n}\ngreet world\n";
    let fixture = |placeholders: bool| {
        greet_fixture(move |prompt| {
            if prompt.starts_with("Complete the following code of main.sh") {
                return format!("```bash\n{body}```\n");
            }
            if placeholders && !prompt.contains("That reply holds no code") {
                return block("main.sh", "<the whole file>\n");
            }
            block("main.sh", sketch)
        })
    };
    let f = fixture(true);
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}\n{events:?}"));
    // Placeholders, the code asked for, its completion, the conformance tests.
    assert_eq!((s.rendered, s.model_calls), (1, 4));
    assert_eq!(run_main(&f.code()), "hello, world\n");
    let seen = f.server.seen();
    assert!(seen[1].last_user().contains("That reply holds no code"));
    assert_eq!(roles(&seen[2]), ["user"]);
    // Shown without the line of its own (nor the call after the function, which the spec
    // does not show).
    assert_eq!(
        seen[2].last_user(),
        format!("Complete the following code of main.sh: write the body of every function. Reply with the whole file in one ```bash block.\n\n```bash\n{shown}```")
    );
    assert!(
        warned(
            &events,
            "functionality 1: main.sh repeated the code the specification shows with 2 lines of its own, written after a reply of placeholders; the specification's code was asked for completed, and the completion replaced it"
        ),
        "{events:?}"
    );

    // Given at once, the same file is the model's code: written as it is, no completion asked.
    let f = fixture(false);
    let (r, events) = f.render(&Options {
        restarts: 0,
        fix_attempts: 0,
        ..f.options()
    });
    assert!(
        matches!(r, Err(RenderError::Failed { .. })),
        "the sketch prints \"hello\" and fails: {r:?}"
    );
    // The implementation and the conformance tests, which were shown the file as written.
    let seen = f.server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].last_user().contains("Write conformance tests"));
    assert!(seen[1]
        .last_user()
        .contains("  echo \"hello\"\n}\ngreet world\n"));
    assert!(!events
        .iter()
        .any(|e| format!("{e:?}").contains("asked for completed")));
}

/// A model that writes a README with every implementation: unless the specification names a
/// README, generation is asked to stop where one starts and the README is not written.
#[test]
fn documentation_nobody_asked_for_is_not_written() {
    let with_readme = |s: &Seen| {
        let prompt = s.last_user();
        let text = programmer_text(s);
        if prompt.contains("Write conformance tests") || prompt.contains("# Unit test failure") {
            return openai_reply(&text);
        }
        openai_reply(&format!(
            "{text}{}",
            block(
                "README.md",
                "# The functionality to implement now\n\nPrint it.\n"
            )
        ))
    };
    let stops = |s: &Seen| -> Vec<String> {
        s.json()["stop"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let f = Fixture::new(&["alpha", "beta"]);
    f.server.set_responder(with_readme);
    let (r, _) = f.render(&f.options());
    assert_eq!(r.unwrap().rendered, 2);
    assert_eq!(run_main(&f.code()), "alpha\nbeta\n");
    assert!(!f.code().join("README.md").exists());
    let seen = f.server.seen();
    for s in &seen {
        assert!(
            stops(s).contains(&"--- FILE: README".to_string()),
            "{:?}",
            stops(s)
        );
        // No README is shown to a later prompt either.
        assert!(!s.last_user().contains("--- FILE: README.md"));
    }
    // A specification that names a README gets it.
    let f = Fixture::new(&["alpha"]);
    let spec = f.dir.path().join("app.plain");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "- :Tool: is written in bash.",
        "- :Tool: is written in bash, with a README.md beside it.",
    );
    std::fs::write(&spec, text).unwrap();
    f.server.set_responder(with_readme);
    let (r, _) = f.render(&f.options());
    assert_eq!(r.unwrap().rendered, 1);
    assert!(f.code().join("README.md").is_file());
    for s in f.server.seen() {
        assert!(
            !stops(&s).iter().any(|t| t.contains("README")),
            "{:?}",
            stops(&s)
        );
    }
}

/// A model that, asked for the second functionality's conformance tests, also tests the first
/// one again, wrongly, in a file named like the first one's: that file goes (the first
/// functionality's own tests pass), without a fix call, and the render says so.
#[test]
fn a_conformance_test_that_tests_an_earlier_functionality_again_and_fails_goes() {
    let f = Fixture::new(&["alpha", "beta"]);
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write conformance tests") && word(&prompt) == "beta" {
            return openai_reply(&format!(
                "{}{}",
                block("check.sh", "bash main.sh | head -n 1 | grep -qx ALPHA\n"),
                block("check_beta.sh", "bash main.sh | grep -qx beta\n")
            ));
        }
        programmer(s)
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap();
    assert_eq!((s.rendered, s.model_calls), (2, 4));
    assert_eq!(f.conformance_files(2), ["check_beta.sh"]);
    assert!(
        warned(
            &events,
            "conformance_tests/check.sh was removed: it tested functionality 1 again"
        ),
        "{events:?}"
    );
}

/// A model whose conformance tests for the second functionality check the first one's value
/// instead of the one its acceptance test gives: asked once more in the same conversation, told
/// which acceptance test and which values are missing. A better second answer replaces the
/// first. When it is no better, or cannot be used, the acceptance test is asked for alone, in a
/// new conversation and a file of its own, added to the first answer's when it checks it. When
/// nothing checks it, the functionality fails rather than pass on tests of something else.
#[test]
fn conformance_tests_that_leave_out_an_acceptance_test_are_asked_for_again() {
    const ALONE: &str = "Write a conformance test for this one acceptance test";
    for answer in ["better", "no better", "unusable"] {
        let f = Fixture::new(&["alpha", "beta"]);
        std::fs::write(
            f.dir.path().join("app.plain"),
            "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash and started as \"bash main.sh\".\n\n***functional specs***\n\n- Print alpha.\n\n- Print beta.\n\n  ***acceptance tests***\n\n  - Running \"bash main.sh\" prints \"beta\" on its last line.\n",
        )
        .unwrap();
        f.server.set_responder(move |s: &Seen| {
            let prompt = s.last_user();
            // A test step may not write the program: asked to reformat, then done without.
            let unusable = || openai_reply(&block("main.sh", "echo beta\n"));
            if prompt.contains(ALONE) || s.first_user().contains(ALONE) {
                return match answer {
                    "unusable" => unusable(),
                    _ => openai_reply(&block(
                        "check_beta.sh",
                        "bash main.sh | tail -n 1 | grep -qx beta\n",
                    )),
                };
            }
            if prompt.contains("Your tests leave out")
                || prompt.contains("Reply again, with file blocks only")
            {
                return match answer {
                    "better" => openai_reply(&block(
                        "check_last.sh",
                        "bash main.sh | tail -n 1 | grep -qx beta\n",
                    )),
                    "no better" => {
                        openai_reply(&block("check_last.sh", "bash main.sh | grep -q alpha\n"))
                    }
                    _ => unusable(),
                };
            }
            if prompt.contains("Write conformance tests") && word(&prompt) == "beta" {
                return openai_reply(&block("check.sh", "bash main.sh | grep -qx alpha\n"));
            }
            programmer(s)
        });
        let mut opts = f.options();
        opts.restarts = 0;
        let (r, events) = f.render(&opts);
        let seen = f.server.seen();
        // implement, tests, implement, tests, then: the follow-up; the test alone; each
        // unusable answer's reformat request.
        let calls = match answer {
            "better" => 5,
            "no better" => 6,
            _ => 8,
        };
        assert_eq!(seen.len(), calls, "{answer}");
        if answer == "unusable" {
            // No test checks the acceptance test: the functionality is not passed on a test
            // of another one. The render fails, and says which acceptance test and values.
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains("functionality 2")
                    && e.contains("its conformance tests do not check the acceptance test \"Running \"bash main.sh\" prints \"beta\" on its last line.\" (no test names \"beta\")"),
                "{e}"
            );
        } else {
            assert_eq!(r.unwrap().rendered, 2, "{answer}");
        }
        let again = &seen[4];
        assert_eq!(roles(again), ["system", "user", "assistant", "user"]);
        let messages = again.json()["messages"].as_array().unwrap().clone();
        assert!(messages[1]["content"]
            .as_str()
            .unwrap()
            .contains("Write conformance tests"));
        // The acceptance test as the spec gives it, and the one value the tests do not name
        // ("bash" and "main.sh" are the requirements' own).
        let told = again.last_user();
        assert!(
            told.contains("- Running \"bash main.sh\" prints \"beta\" on its last line.")
                && told.contains("(not in your tests: \"beta\")"),
            "{told}"
        );
        // The test alone: a new conversation, the one acceptance test, the first answer's file
        // named as taken.
        let alone: Vec<_> = seen
            .iter()
            .filter(|q| q.last_user().contains(ALONE))
            .collect();
        assert_eq!(
            alone.len(),
            if answer == "better" { 0 } else { 1 },
            "{answer}"
        );
        for q in &alone {
            assert_eq!(roles(q), ["system", "user"]);
            let p = q.last_user();
            assert!(
                p.contains("- Running \"bash main.sh\" prints \"beta\" on its last line.\n")
                    && p.contains("(not conformance_tests/check.sh, which test other things)"),
                "{p}"
            );
            // The first functionality's test, which passes, shows how a test runs the program.
            assert!(
                p.contains("# A conformance test of an earlier functionality\n\nIt passes: it runs the program as the test requirements say.\n\n--- FILE: conformance_tests/check.sh\nbash main.sh | grep -qx alpha\n--- END FILE\n"),
                "{p}"
            );
        }
        // The first functionality had no acceptance test to leave out.
        assert!(!seen[2].last_user().contains("leave out"));
        match answer {
            "better" => assert_eq!(f.conformance_files(2), ["check_last.sh"]),
            "no better" => assert_eq!(f.conformance_files(2), ["check.sh", "check_beta.sh"]),
            // Functionality 2 failed: none of its tests is kept.
            _ => assert!(!f.conformance_tests(2).exists()),
        }
        let now = if answer == "unusable" { 1 } else { 0 };
        assert!(
            warned(
                &events,
                &format!(
                    "left out 1 of 1 acceptance tests and were asked for again ({now} left out now)"
                )
            ),
            "{answer}: {events:?}"
        );
        assert_eq!(
            warned(&events, "could not be used"),
            answer == "unusable",
            "{answer}: {events:?}"
        );
    }
}

/// A model that "fixes" a failing conformance test by making it expect what its wrong code
/// prints: that change of the test is not kept (the value comes from an acceptance test), the
/// render says so, and the next fix prompt tells the model, which then fixes the code.
#[test]
fn a_fix_that_makes_a_test_leave_out_an_acceptance_value_is_not_kept() {
    let f = Fixture::new(&["alpha", "beta"]);
    std::fs::write(
        f.dir.path().join("app.plain"),
        "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash and started as \"bash main.sh\".\n\n***functional specs***\n\n- Print alpha.\n\n- Print beta.\n\n  ***acceptance tests***\n\n  - Running \"bash main.sh\" prints \"beta\" on its last line.\n",
    )
    .unwrap();
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("# Conformance test failure") {
            if prompt.contains("was not kept") {
                return openai_reply(&block(
                    "main.sh",
                    "#!/usr/bin/env bash\necho alpha\necho beta\n",
                ));
            }
            return openai_reply(&block(
                "conformance_tests/check.sh",
                "bash main.sh | tail -n 1 | grep -qx gamma\n",
            ));
        }
        if prompt.contains("Write conformance tests") && word(&prompt) == "beta" {
            return openai_reply(&block(
                "check.sh",
                "bash main.sh | tail -n 1 | grep -qx beta\n",
            ));
        }
        if word(&prompt) == "beta" {
            return openai_reply(&block(
                "main.sh",
                "#!/usr/bin/env bash\necho alpha\necho gamma\n",
            ));
        }
        programmer(s)
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap();
    // implement, tests, implement, tests, the fix not kept, the fix of the code.
    assert_eq!((s.rendered, s.model_calls), (2, 6));
    assert_eq!(run_main(&f.code()), "alpha\nbeta\n");
    let test = f.conformance_tests(2).join("check.sh");
    assert_eq!(
        std::fs::read_to_string(test).unwrap(),
        "bash main.sh | tail -n 1 | grep -qx beta\n"
    );
    let note = "Its change of conformance_tests/check.sh was not kept: the tests would no longer check \"beta\", which the acceptance tests give.";
    let said = events.iter().any(
        |e| matches!(e, Event::Warning { message } if message == &format!("functionality 2: {note}")),
    );
    assert!(said, "{events:?}");
    assert!(f.server.seen()[5].last_user().contains(note));
}

/// A model whose code raises an error that the conformance tests report as a traceback would
/// (`main.sh:3: TypeError`), and whose fix gives the files back as they were. Kept code with an
/// error raised in it is still wrong code: the next fix asks for that file alone, written anew,
/// in a conversation of its own, not for the test to be rewritten.
#[test]
fn an_error_raised_in_kept_code_asks_for_the_code_alone() {
    let f = Fixture::new(&["alpha"]);
    let broken = "#!/usr/bin/env bash\necho alpha\nexit 3\n";
    f.server.set_responder(move |s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write main.sh anew") {
            return openai_reply(&block("main.sh", "#!/usr/bin/env bash\necho alpha\n"));
        }
        if prompt.contains("# Conformance test failure") {
            return openai_reply(&format!(
                "{}{}",
                block("main.sh", broken),
                block("unit_alpha.sh", "exit 0\n")
            ));
        }
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block(
                "check.sh",
                "out=$(bash main.sh) || { echo \"Traceback: main.sh:3: TypeError: exit $? after 0.0$RANDOM s\"; exit 1; }\n[ \"$out\" = alpha ]\n",
            ));
        }
        openai_reply(&format!(
            "{}{}",
            block("main.sh", broken),
            block("unit_alpha.sh", "exit 0\n")
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    // Implement, tests, the fix that kept everything, the code alone.
    assert_eq!(s.model_calls, 4);
    assert_eq!(run_main(&f.code()), "alpha\n");
    let seen = f.server.seen();
    let alone = &seen[3];
    assert_eq!(roles(alone), ["system", "user"]);
    let asked = alone.last_user();
    assert!(
        asked.contains("The error is raised in the code, at main.sh line 3: exit 3,"),
        "{asked}"
    );
    assert!(asked.contains("--- FILE: main.sh\n"), "{asked}");
    assert!(alone.json()["stop"].to_string().contains("--- END FILE"));
    // Not the test's fault: the test was neither rewritten nor asked for.
    assert!(!asked.contains("is wrong (the lines above show where)"));
    assert_eq!(
        std::fs::read_to_string(f.conformance_tests(1).join("check.sh"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert_eq!(
        phases(&events, 1),
        [
            Phase::Implement,
            Phase::UnitTests,
            Phase::ConformanceTests,
            Phase::FixConformance,
            Phase::UnitTests,
            Phase::FixConformance,
            Phase::UnitTests,
        ]
    );
}

/// Runs every `test_*.sh` in the code folder; a failure is reported as a traceback would
/// report it: the file and line it was raised at (what the test prints names another file to
/// blame instead), and an assertion that failed.
const UNIT_WITH_LINES: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in test_*.sh; do [ -e \"$t\" ] || continue; out=$(bash \"$t\") || { echo \"Traceback: ${out:-$t}:1: assertion failed after 0.0$RANDOM s in $PWD\"; exit 1; }; done\n";

/// [`UNIT_WITH_LINES`], but the failure is an error (a name the test never defined), not an
/// assertion.
const UNIT_ERROR_WITH_LINES: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in test_*.sh; do [ -e \"$t\" ] || continue; out=$(bash \"$t\") || { echo \"Traceback: ${out:-$t}:1: NameError: name 'run' is not defined (0.0$RANDOM s in $PWD)\"; exit 1; }; done\n";

/// A model for "Print broken1." whose unit test (`test_broken1.sh`, `exit 1`) fails on its own:
/// asked to write the test anew it answers `rewritten`; a fix of the code changes main.sh.
fn failing_own_unit_test(rewritten: &'static str) -> impl Fn(&Seen) -> Reply + Send + Sync {
    move |s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write test_broken1.sh anew") {
            return openai_reply(&block("test_broken1.sh", rewritten));
        }
        if prompt.contains("# Unit test failure") {
            return openai_reply(&block("main.sh", "echo changed by a fix\n"));
        }
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block("check.sh", "bash main.sh | grep -qx broken1\n"));
        }
        openai_reply(&format!(
            "{}{}",
            block("main.sh", "echo broken1\n"),
            block("test_broken1.sh", "exit 1\n")
        ))
    }
}

/// A unit test written anew exactly as it was (a fix that changes nothing) and still failing is
/// removed without a call; the call after that, the conformance tests, is asked greedily: the
/// sampling that a fix changing nothing asks for is for the next fix, not for whatever call
/// comes next.
#[test]
fn a_removal_after_a_fix_that_changed_nothing_leaves_the_next_call_greedy() {
    let f = Fixture::new(&["broken1"]);
    std::fs::write(f.dir.path().join("unit.sh"), UNIT_ERROR_WITH_LINES).unwrap();
    f.server.set_responder(failing_own_unit_test("exit 1\n"));
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.model_calls, 3);
    assert!(
        warned(&events, "The unit test file test_broken1.sh was removed"),
        "{events:?}"
    );
    let seen = f.server.seen();
    assert!(seen[2].last_user().contains("Write conformance tests"));
    let temperature = |s: &Seen| s.json()["temperature"].as_f64().unwrap_or(0.0);
    assert_eq!(temperature(&seen[2]), 0.0, "{}", seen[2].body);
}

/// A model whose unit test (`test_WORD.sh`) fails on an error of its own: the failure is raised
/// in the test file, not the code. The test is written anew first (the code is kept); a test
/// that still fails after that is removed, and the conformance tests decide.
#[test]
fn a_unit_test_failing_on_its_own_error_is_rewritten_then_removed() {
    for rewrite_passes in [true, false] {
        let f = Fixture::new(&["broken1"]);
        std::fs::write(f.dir.path().join("unit.sh"), UNIT_ERROR_WITH_LINES).unwrap();
        f.server
            .set_responder(failing_own_unit_test(if rewrite_passes {
                "exit 0\n"
            } else {
                "exit 1\n# still wrong\n"
            }));
        let (r, events) = f.render(&f.options());
        let s = r.unwrap_or_else(|e| panic!("{e}"));
        // Implement, the rewrite, the conformance tests: no fix of the code was asked.
        assert_eq!(s.model_calls, 3, "rewrite passes: {rewrite_passes}");
        let seen = f.server.seen();
        let rewrite = seen[1].last_user();
        assert!(
            rewrite.contains("The failure is raised in the test file test_broken1.sh"),
            "{rewrite}"
        );
        // One file is asked for: generation stops at its end.
        let stop = seen[1].json()["stop"].to_string();
        assert!(stop.contains("--- END FILE"), "{stop}");
        assert!(!seen[0].json()["stop"].to_string().contains("--- END FILE"));
        // The test to be written anew is not shown (the model would copy it); the code is.
        assert!(!rewrite.contains("--- FILE: test_broken1.sh"), "{rewrite}");
        assert!(
            rewrite.contains("--- FILE: main.sh\necho broken1\n"),
            "{rewrite}"
        );
        assert_eq!(run_main(&f.code()), "broken1\n");
        let test = f.code().join("test_broken1.sh");
        if rewrite_passes {
            assert_eq!(std::fs::read_to_string(&test).unwrap(), "exit 0\n");
            assert_eq!(
                phases(&events, 1),
                [
                    Phase::Implement,
                    Phase::UnitTests,
                    Phase::FixUnitTests,
                    Phase::UnitTests,
                    Phase::ConformanceTests
                ]
            );
        } else {
            assert!(!test.exists(), "the unwritable unit test is removed");
            assert_eq!(
                phases(&events, 1),
                [
                    Phase::Implement,
                    Phase::UnitTests,
                    Phase::FixUnitTests,
                    Phase::UnitTests,
                    Phase::FixUnitTests,
                    Phase::UnitTests,
                    Phase::ConformanceTests
                ]
            );
        }
    }
}

/// A unit test that fails an assertion raised in the test alone (no line of the code in the
/// traceback) disagrees with the code it came with: when this functionality wrote it, it is
/// removed without a call, and the conformance tests decide. A test kept from an earlier
/// functionality passed on the code before: it is not removed unasked, but goes the way of any
/// other failure raised in a test (written anew first, with a call).
#[test]
fn a_failed_assertion_in_a_new_unit_test_removes_it_without_a_call() {
    let f = Fixture::new(&["alpha", "beta"]);
    std::fs::write(f.dir.path().join("unit.sh"), UNIT_WITH_LINES).unwrap();
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write test_alpha.sh anew") {
            return openai_reply(&block("test_alpha.sh", "bash main.sh | grep -qx alpha\n"));
        }
        let w = word(&prompt);
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block(
                "check.sh",
                &format!("bash main.sh | grep -qx {w}\n"),
            ));
        }
        if w == "alpha" {
            // A test that checks the code, and one that disagrees with it.
            return openai_reply(&format!(
                "{}{}{}",
                block("main.sh", "#!/usr/bin/env bash\necho alpha\n"),
                block("test_alpha.sh", "[ \"$(bash main.sh)\" = alpha ]\n"),
                block("test_wrong.sh", "exit 1\n")
            ));
        }
        // The second functionality's output has a second line: the first one's kept unit test,
        // which compares the whole output, fails.
        openai_reply(&format!(
            "{}{}",
            block("main.sh", "#!/usr/bin/env bash\necho alpha\necho beta\n"),
            block("test_beta.sh", "bash main.sh | grep -qx beta\n")
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    // alpha: implement, conformance tests. beta: implement, the rewrite, conformance tests.
    assert_eq!(s.model_calls, 5);
    let seen = f.server.seen();
    assert!(seen[1].last_user().contains("Write conformance tests"));
    assert!(seen[3].last_user().contains("Write test_alpha.sh anew"));
    let code = f.code();
    assert!(!code.join("test_wrong.sh").exists());
    assert_eq!(
        std::fs::read_to_string(code.join("test_alpha.sh")).unwrap(),
        "bash main.sh | grep -qx alpha\n"
    );
    assert!(code.join("test_beta.sh").exists());
    assert_eq!(run_main(&code), "alpha\nbeta\n");
    assert!(warned(&events, "test_wrong.sh was removed"), "{events:?}");
    assert!(!warned(&events, "test_alpha.sh was removed"), "{events:?}");
    let expected = [
        Phase::Implement,
        Phase::UnitTests,
        Phase::FixUnitTests,
        Phase::UnitTests,
        Phase::ConformanceTests,
    ];
    assert_eq!(phases(&events, 1), expected);
    assert_eq!(phases(&events, 2), expected);
}

/// A new unit test that fails on the spec's own example (the output "hello" and the exit status
/// 3, both of which the spec gives) is right, and the code is not: the test stays, and the one
/// fix asks for the code to change, saying so.
#[test]
fn a_unit_test_failing_on_the_specs_own_example_is_kept_and_the_code_fixed() {
    let f = Fixture::new(&["hello, then exit with status 3"]);
    std::fs::write(f.dir.path().join("unit.sh"), UNIT_WITH_LINES).unwrap();
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("# Unit test failure") {
            return openai_reply(&block(
                "main.sh",
                "#!/usr/bin/env bash\necho hello\nexit 3\n",
            ));
        }
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block("check.sh", "bash main.sh | grep -qx hello\n"));
        }
        openai_reply(&format!(
            "{}{}",
            block("main.sh", "#!/usr/bin/env bash\necho helo\nexit 3\n"),
            block(
                "test_hello.sh",
                "bash main.sh > out.txt; [ $? = 3 ] && [ \"$(cat out.txt)\" = \"hello\" ]\n"
            )
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.model_calls, 3);
    let fix = f.server.seen()[1].last_user();
    assert!(
        fix.contains("compares with values the specification itself gives: the test is right and the code is wrong"),
        "{fix}"
    );
    assert!(!warned(&events, "was removed"), "{events:?}");
    let code = f.code();
    assert!(code.join("test_hello.sh").exists());
    assert_eq!(run_main(&code), "hello\n");
}

/// A new unit test whose failing line holds only the expected value, one the spec gives
/// ("hello"), is no example of the spec: what it ran stands elsewhere. It goes the way of any
/// other failing unit test the code is no part of (removed), and the code stays as it was.
#[test]
fn a_unit_test_holding_only_the_specs_expected_value_is_no_example() {
    let f = Fixture::new(&["hello"]);
    std::fs::write(f.dir.path().join("unit.sh"), UNIT_WITH_LINES).unwrap();
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block("check.sh", "bash main.sh | grep -qx hello\n"));
        }
        openai_reply(&format!(
            "{}{}",
            block("main.sh", "#!/usr/bin/env bash\necho hello\n"),
            block(
                "test_hello.sh",
                "[ \"$(bash main.sh | tr a-z A-Z)\" = \"hello\" ]\n"
            )
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    let seen = f.server.seen();
    assert!(
        seen.iter().all(|s| !s
            .last_user()
            .contains("the test is right and the code is wrong")),
        "a fix was told the code is wrong"
    );
    assert!(warned(&events, "test_hello.sh was removed"), "{events:?}");
    assert_eq!(s.model_calls, 2);
    assert_eq!(run_main(&f.code()), "hello\n");
}

/// [`programmer`], but its conformance test also checks that main.sh prints 42 bytes, a value
/// no spec gives, on a line of its own.
fn checks_a_made_up_size(s: &Seen) -> Reply {
    if s.last_user().contains("Write conformance tests") {
        return openai_reply(&block(
            "check.sh",
            "bash main.sh | grep -qx w1 || { echo \"$0:1: AssertionError: no w1\"; exit 1; }\n[ \"$(bash main.sh | wc -c)\" = 42 ] || { echo \"$0:2: AssertionError: size != 42 after 0.0$RANDOM s\"; exit 1; }\n",
        ));
    }
    programmer(s)
}

/// The same made-up check, for a functionality that gives no value of its own ("Print w1."):
/// every value of its tests is the model's, and dropping the failing ones would pass any code.
/// The check stays, and the failure goes to a fix.
#[test]
fn a_made_up_check_stays_when_the_functionality_gives_no_example() {
    let f = Fixture::new(&["w1"]);
    f.server.set_responder(checks_a_made_up_size);
    let (_, events) = f.render(&f.options());
    assert!(!warned(&events, "was removed"), "{events:?}");
    // The fix is shown the check, still in the test.
    assert!(
        f.server.seen().iter().any(|s| {
            let prompt = s.last_user();
            prompt.contains("# Conformance test failure") && prompt.contains("= 42 ]")
        }),
        "no fix was asked with the check in the test"
    );
}

/// A made-up check that is the tests' only check of an acceptance test's value (`w1`) stays:
/// dropped, it would leave the acceptance test unchecked. The failure goes to a fix instead.
#[test]
fn a_made_up_check_that_alone_names_an_acceptance_value_stays() {
    let f = Fixture::new(&[]);
    std::fs::write(
        f.dir.path().join("app.plain"),
        "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n- Print w1 in at most 20 characters.\n\n  ***acceptance tests***\n\n  - main.sh prints \"w1\".\n",
    )
    .unwrap();
    f.server.set_responder(|s: &Seen| {
        if s.last_user().contains("Write conformance tests") {
            return openai_reply(&block(
                "check.sh",
                "true\n[ \"$(bash main.sh)\" = \"w1 42\" ] || { echo \"$0:2: AssertionError: $(bash main.sh) != w1 42\"; exit 1; }\n",
            ));
        }
        programmer(s)
    });
    let (_, events) = f.render(&f.options());
    assert!(!warned(&events, "was removed"), "{events:?}");
    // A fix is asked instead, for the failure of that check.
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ModelCall {
                role: Role::Fix,
                ..
            }
        )),
        "no fix was asked: {events:?}"
    );
    assert!(
        f.server
            .seen()
            .iter()
            .any(|s| s.last_user().contains("AssertionError: w1 != w1 42")),
        "no prompt showed the failure"
    );
}

/// A failing conformance check that compares with a value the spec never gives (42, worked out
/// by the model), one line beside another check: the line goes without a call, the tests run
/// again, and the check with the spec's value stays.
#[test]
fn a_made_up_conformance_check_is_dropped_without_a_call() {
    // The functionality gives a value of its own (20): the tests that stay check its examples.
    let f = Fixture::new(&["w1 in at most 20 characters"]);
    f.server.set_responder(checks_a_made_up_size);
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.model_calls, 2);
    let check = std::fs::read_to_string(f.conformance_tests(1).join("check.sh")).unwrap();
    assert_eq!(
        check,
        "bash main.sh | grep -qx w1 || { echo \"$0:1: AssertionError: no w1\"; exit 1; }\n"
    );
    assert!(
        warned(
            &events,
            "(conformance_tests/check.sh line 2) was removed: it compared with values the specification does not give (42)"
        ),
        "{events:?}"
    );
    assert_eq!(
        phases(&events, 1),
        [Phase::Implement, Phase::UnitTests, Phase::ConformanceTests]
    );
}

/// A real Python conformance test whose made-up check (HumanEval/25's `factorize(100) == [2, 5,
/// 5, 5]`, wrong) is the only statement of its test method: the method goes without a call, with
/// a note naming it, the spec's own example stays in its method, and the functionality renders
/// in its two calls.
#[test]
fn a_made_up_check_alone_in_its_test_method_goes_with_the_method() {
    let f = Fixture::python(
        "***definitions***\n\n- :Factorize: is the function `factorize` of the Python module solution.py.\n\n***implementation reqs***\n\n- :Factorize: is written in Python.\n\n***functional specs***\n\n- :Factorize: returns the prime factors of a number from the smallest to the largest, each as often as it divides the number: `factorize(70)` returns `[2, 5, 7]`.\n",
    );
    let test = "import unittest\nfrom solution import factorize\n\n\nclass T(unittest.TestCase):\n    def test_seventy(self):\n        self.assertEqual(factorize(70), [2, 5, 7])\n\n    def test_hundred(self):\n        self.assertEqual(factorize(100), [2, 5, 5, 5])\n\n\nif __name__ == '__main__':\n    unittest.main()\n";
    let program = "def factorize(n):\n    out, d = [], 2\n    while n > 1:\n        while n % d == 0:\n            out.append(d)\n            n //= d\n        d += 1\n    return out\n";
    f.server.set_responder(move |s: &Seen| {
        if s.last_user().contains("Write conformance tests") {
            return openai_reply(&block("conformance_tests/test_factorize.py", test));
        }
        openai_reply(&block("solution.py", program))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}\n{events:?}"));
    assert_eq!(s.model_calls, 2, "{events:?}");
    let kept = std::fs::read_to_string(f.conformance_tests(1).join("test_factorize.py")).unwrap();
    assert_eq!(
        kept,
        "import unittest\nfrom solution import factorize\n\n\nclass T(unittest.TestCase):\n    def test_seventy(self):\n        self.assertEqual(factorize(70), [2, 5, 7])\n\n\nif __name__ == '__main__':\n    unittest.main()\n"
    );
    assert!(
        warned(
            &events,
            "The test test_hundred, whose one check was `self.assertEqual(factorize(100), [2, 5, 5, 5])` (conformance_tests/test_factorize.py line 10), was removed: it compared with values the specification does not give (100), and the code disagreed."
        ),
        "{events:?}"
    );
}

/// A unit test and a conformance test, real Python, each with a check that calls the code on
/// equal values, which the spec never gives, where the right code divides by zero (HumanEval/21's
/// tests): each such line goes without a call and with a note, the spec's own example stays,
/// and the functionality renders in its two calls.
#[test]
fn a_check_calling_the_code_on_inputs_the_spec_never_gives_is_dropped_when_the_code_raises() {
    let f = Fixture::python(
        "***definitions***\n\n- :Scale: is the function `scale` of the Python module solution.py.\n\n***implementation reqs***\n\n- :Scale: is written in Python.\n\n***functional specs***\n\n- :Scale: maps a list of numbers, of which at least two differ, linearly so that the smallest becomes 0 and the largest 1: `scale([2, 4, 6])` returns `[0.0, 0.5, 1.0]`.\n",
    );
    let test = |name: &str, odd: &str| {
        format!("import unittest\nfrom solution import scale\n\n\nclass T(unittest.TestCase):\n    def test_{name}(self):\n        self.assertEqual(scale([2, 4, 6]), [0.0, 0.5, 1.0])\n        self.assertEqual(scale([{odd}, {odd}]), [0.0, 0.0])\n\n\nif __name__ == '__main__':\n    unittest.main()\n")
    };
    let (unit, conformance) = (test("unit", "5"), test("conformance", "7"));
    f.server.set_responder(move |s: &Seen| {
        if s.last_user().contains("Write conformance tests") {
            return openai_reply(&block("test_scale.py", &conformance));
        }
        openai_reply(&format!(
            "{}{}",
            block(
                "solution.py",
                "def scale(numbers):\n    lo, hi = min(numbers), max(numbers)\n    return [(n - lo) / (hi - lo) for n in numbers]\n"
            ),
            block("test_solution.py", &unit)
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.model_calls, 2, "{events:?}");
    let kept = |path: PathBuf| {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("scale([2, 4, 6])"), "{text}");
        text
    };
    let unit = kept(f.code().join("test_solution.py"));
    assert!(!unit.contains("scale([5, 5])"), "{unit}");
    let conformance = kept(f.conformance_tests(1).join("test_scale.py"));
    assert!(!conformance.contains("scale([7, 7])"), "{conformance}");
    for (file, value) in [
        ("(test_solution.py line 8)", "(5)"),
        ("(conformance_tests/test_scale.py line 8)", "(7)"),
    ] {
        assert!(
            warned(
                &events,
                &format!("{file} was removed: it called the code with values the specification does not give {value}, and the code raised ZeroDivisionError")
            ),
            "{events:?}"
        );
    }
}

/// Real Python tests of a console program that strip what it printed and compare it with text
/// ending in a newline, which can never hold (roman-numerals f1 with the 1.5B at 9d3ee7d, where
/// the unit test file went for it, and the conformance tests written without it imported `main`
/// instead of running the program): the `.strip()` goes from every such line, without a call and
/// with a note, a check that can hold keeps its own, the unit test file stays, and the
/// functionality renders in its two calls.
#[test]
fn a_check_comparing_stripped_output_with_a_newline_loses_the_strip() {
    let f = Fixture::python(
        "***definitions***\n\n- :App: is a console program, shout.py.\n\n***implementation reqs***\n\n- :App: is written in Python.\n\n***functional specs***\n\n- :App: prints its argument in capital letters: `python shout.py hi` prints \"HI\".\n",
    );
    let test = |name: &str, check: &str| {
        format!("import subprocess\nimport sys\nimport unittest\n\n\nclass T(unittest.TestCase):\n    def test_{name}(self):\n        result = subprocess.run([sys.executable, 'shout.py', 'hi'], capture_output=True, text=True)\n        {check}\n        self.assertEqual(result.stdout.strip(), 'HI')\n\n\nif __name__ == '__main__':\n    unittest.main()\n")
    };
    let unit = test(
        "unit",
        "self.assertEqual(result.stdout.strip(), 'HI\\n', 'shouts')",
    );
    let conformance = test("conformance", "assert 'HI\\n' == result.stdout.rstrip()");
    let (u, c) = (unit.clone(), conformance.clone());
    f.server.set_responder(move |s: &Seen| {
        if s.last_user().contains("Write conformance tests") {
            return openai_reply(&block("conformance_tests/test_shout.py", &c));
        }
        openai_reply(&format!(
            "{}{}",
            block("shout.py", "import sys\n\nprint(sys.argv[1].upper())\n"),
            block("test_unit.py", &u)
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}\n{events:?}"));
    assert_eq!(s.model_calls, 2, "{events:?}");
    assert_eq!(
        std::fs::read_to_string(f.code().join("test_unit.py")).unwrap(),
        unit.replace("result.stdout.strip(), 'HI\\n'", "result.stdout, 'HI\\n'")
    );
    assert_eq!(
        std::fs::read_to_string(f.conformance_tests(1).join("test_shout.py")).unwrap(),
        conformance.replace("result.stdout.rstrip()", "result.stdout")
    );
    for note in [
        "`.strip()` was taken away in test_unit.py (line 9): a check compared the stripped output with text ending in a newline, which can never hold; tests compare the whole output as printed.",
        "`.strip()` was taken away in conformance_tests/test_shout.py (line 9): a check compared the stripped output with text ending in a newline, which can never hold; tests compare the whole output as printed.",
    ] {
        assert!(warned(&events, note), "{note}\n{events:?}");
    }
}

/// Real Python tests that use a name they never import: the unit test `unittest`, the
/// conformance test the function under test (HumanEval/2 with the 0.5B model at 2ddc636, where
/// the fix that followed removed the tests). Each gets its one missing line without a call,
/// with a note, and the functionality renders in its two calls.
#[test]
fn a_name_a_test_never_imports_is_imported_without_a_call() {
    let f = Fixture::python(
        "***definitions***\n\n- :Half: is the function `half` of the Python module solution.py.\n\n***implementation reqs***\n\n- :Half: is written in Python.\n\n***functional specs***\n\n- :Half: returns half of a number: `half(3)` returns `1.5`.\n",
    );
    const UNIT: &str = "from solution import half\n\n\nclass T(unittest.TestCase):\n    def test_unit(self):\n        self.assertEqual(half(3), 1.5)\n";
    const CONFORMANCE: &str = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_conformance(self):\n        self.assertEqual(half(3), 1.5)\n";
    f.server.set_responder(move |s: &Seen| {
        if s.last_user().contains("Write conformance tests") {
            return openai_reply(&block("test_half.py", CONFORMANCE));
        }
        openai_reply(&format!(
            "{}{}",
            block("solution.py", "def half(x):\n    return x / 2\n"),
            block("test_solution.py", UNIT)
        ))
    });
    let (r, events) = f.render(&f.options());
    let s = r.unwrap_or_else(|e| panic!("{e}\n{events:?}"));
    assert_eq!(s.model_calls, 2, "{events:?}");
    assert_eq!(
        std::fs::read_to_string(f.code().join("test_solution.py")).unwrap(),
        format!("import unittest\n{UNIT}")
    );
    assert_eq!(
        std::fs::read_to_string(f.conformance_tests(1).join("test_half.py")).unwrap(),
        format!("from solution import half\n{CONFORMANCE}")
    );
    for note in [
        "`import unittest` was added to test_solution.py: it used unittest without importing it.",
        "`from solution import half` was added to conformance_tests/test_half.py: it used half, which solution.py defines, without importing it.",
    ] {
        assert!(warned(&events, note), "{note}\n{events:?}");
    }
}

/// Runs the functionality's conformance tests; a failure names the test file and line, and
/// what the test printed (its error).
const CONFORMANCE_WITH_LINES: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in \"$2\"/*.sh; do out=$(bash \"$t\") || { echo \"$t:1: $out (after 0.0$RANDOM s)\"; exit 1; }; done\n";

/// A conformance test that fails on an error of its own (a name it never imported), not on an
/// assertion, is written anew before the code is touched; so is one whose failing check
/// compares with a value the spec never gives (`'w-1'`), told which. One that fails an
/// assertion with the spec's own values is the fix's to decide.
#[test]
fn a_conformance_test_failing_on_its_own_error_is_rewritten() {
    const MADE_UP: &str = "compares with values the specification does not give (\"w-1\")";
    for (error, rewritten) in [
        ("NameError: name main is not defined", true),
        ("AssertionError: 'w-1' != 'w1'", true),
        ("AssertionError: w1 != w-1", false),
    ] {
        let f = Fixture::new(&["w1 in at most 20 characters"]);
        std::fs::write(f.dir.path().join("conformance.sh"), CONFORMANCE_WITH_LINES).unwrap();
        let check = format!("echo {error}; exit 1\n");
        f.server.set_responder(move |s: &Seen| {
            let prompt = s.last_user();
            if prompt.contains("Write conformance_tests/check.sh anew") {
                return openai_reply(&block(
                    "conformance_tests/check.sh",
                    "bash main.sh | grep -qx w1\n",
                ));
            }
            if prompt.contains("# Conformance test failure") {
                return openai_reply(&block(
                    "conformance_tests/check.sh",
                    "bash main.sh | grep -qx w1\n",
                ));
            }
            if prompt.contains("Write conformance tests") {
                return openai_reply(&block("check.sh", &check));
            }
            programmer(s)
        });
        let (r, _) = f.render(&f.options());
        assert_eq!(r.unwrap().model_calls, 3);
        let fix = f.server.seen()[2].last_user();
        assert_eq!(
            fix.contains("The failure is raised in the test file conformance_tests/check.sh"),
            rewritten,
            "{fix}"
        );
        assert_eq!(
            fix.contains("--- FILE: conformance_tests/check.sh"),
            !rewritten,
            "{fix}"
        );
        assert_eq!(fix.contains(MADE_UP), error.contains("'w-1'"), "{fix}");
    }
}

/// A unit failure whose traceback reaches the code is the code's to fix: the fix prompt shows
/// every file, and no test is written anew.
#[test]
fn a_unit_failure_raised_in_the_code_asks_for_a_fix() {
    let f = Fixture::new(&["broken1"]);
    std::fs::write(f.dir.path().join("unit.sh"), UNIT_WITH_LINES).unwrap();
    f.server.set_responder(|s: &Seen| {
        let prompt = s.last_user();
        if prompt.contains("# Unit test failure") {
            return openai_reply(&block("test_broken1.sh", "exit 0\n"));
        }
        if prompt.contains("Write conformance tests") {
            return openai_reply(&block("check.sh", "bash main.sh | grep -qx broken1\n"));
        }
        openai_reply(&format!(
            "{}{}",
            block("main.sh", "echo broken1\n"),
            // The test blames a line of main.sh, as a traceback through the code does.
            block("test_broken1.sh", "echo main.sh; exit 1\n")
        ))
    });
    let (r, _) = f.render(&f.options());
    assert_eq!(r.unwrap().model_calls, 3);
    let fix = f.server.seen()[1].last_user();
    assert!(
        fix.contains("The failure points at these lines:\n- main.sh line 1"),
        "{fix}"
    );
    assert!(!fix.contains("anew"), "{fix}");
    assert!(fix.contains("--- FILE: test_broken1.sh"), "{fix}");
}

/// `status` and `render` share one decision: what status predicts is what render then does,
/// for the same reasons.
#[test]
fn status_predicts_what_render_does() {
    let f = Fixture::new(&["one", "two", "three"]);
    let opts = f.options();
    f.render(&opts).0.unwrap();
    assert!(f.status(&opts).clean());
    f.write_spec(&["one", "deux", "three"]);
    let st = f.status(&opts);
    let states: Vec<_> = st.modules[0]
        .functionalities
        .iter()
        .map(|s| (s.state, s.reasons.clone()))
        .collect();
    assert_eq!(states[0], (State::UpToDate, vec![]));
    assert_eq!(
        states[1],
        (
            State::Stale,
            vec!["its spec text or acceptance tests changed".to_string()]
        )
    );
    assert_eq!(states[2].0, State::Reusable);
    assert_eq!((st.pending(), st.reusable()), (1, 1));
    let (r, events) = f.render(&opts);
    r.unwrap();
    let seen = statuses(&events);
    assert_eq!(seen[0].1, FunctionalityStatus::Reused);
    assert_eq!(
        (seen[1].1, seen[1].2.as_deref()),
        (
            FunctionalityStatus::Rendering,
            Some("its spec text or acceptance tests changed")
        )
    );
    // Functionality 3 now sits on different code: its key changed for that reason alone.
    assert_eq!(
        (seen[2].1, seen[2].2.as_deref()),
        (
            FunctionalityStatus::Rendering,
            Some("the code left by the functionality before it changed")
        )
    );
    assert!(f.status(&opts).clean());
}

#[test]
fn hand_edits_stop_the_render_and_force_saves_them() {
    let f = Fixture::new(&["keep"]);
    let mut opts = f.options();
    f.render(&opts).0.unwrap();
    std::fs::write(f.code().join("main.sh"), "echo mine\n").unwrap();
    let st = f.status(&opts);
    assert_eq!(st.hand_edits(), 1);
    assert_eq!(st.modules[0].drift[0].path, "main.sh");
    f.write_spec(&["changed"]);
    match f.render(&opts).0 {
        Err(RenderError::HandEdits { paths, .. }) => assert_eq!(paths, ["main.sh"]),
        other => panic!("expected hand edits, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(f.code().join("main.sh")).unwrap(),
        "echo mine\n"
    );
    opts.force = true;
    f.render(&opts).0.unwrap();
    let patches: Vec<_> = std::fs::read_dir(f.dir.path().join("patches"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(patches.len(), 1);
    let patch = std::fs::read_to_string(patches[0].path()).unwrap();
    assert!(patch.contains("+echo mine"), "{patch}");
    assert_eq!(run_main(&f.code()), "changed\n");
}
