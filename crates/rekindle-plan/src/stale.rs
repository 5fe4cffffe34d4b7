//! Is a functionality stale, and why. The one decision `render` (reuse or render?) and
//! `status` (what would a render do?) share, so the two can never disagree. Pure: the caller
//! reads what the build recorded (render keys and trees, from git) and passes it in.

use crate::keys::{KeyParts, Keyer};
use rekindle_spec::project::RenderModule;
use serde::Serialize;
use std::collections::HashMap;

/// A functionality's state, as `status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    UpToDate,
    Stale,
    NotRendered,
    /// Unchanged itself, but after a stale one: reused only if that one produces the same code
    /// again (early cutoff).
    Reusable,
}

impl State {
    /// Whether a render would have to do something about it.
    pub fn pending(self) -> bool {
        matches!(self, State::Stale | State::NotRendered)
    }

    /// The name users see (`up to date`, `not rendered`...).
    pub fn words(self) -> &'static str {
        match self {
            State::UpToDate => "up to date",
            State::Stale => "stale",
            State::NotRendered => "not rendered",
            State::Reusable => "reusable",
        }
    }
}

/// Why a functionality has to be rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    NotRendered,
    /// `--from` or `--range` named it.
    Asked,
    /// One part of its key changed (the words say which).
    Changed(&'static str),
    /// Its key changed; the build recorded no parts to say which.
    KeyChanged,
    /// The code the functionality before it will leave is not known yet.
    EarlierChanged,
    /// The module it builds on changed.
    ModuleBeforeChanged(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NotRendered => f.write_str("not rendered yet"),
            Reason::Asked => f.write_str("asked for (--from, --range or --force-render)"),
            Reason::Changed(why) => f.write_str(why),
            Reason::KeyChanged => f.write_str("its render key changed"),
            Reason::EarlierChanged => f.write_str("an earlier functionality changed"),
            Reason::ModuleBeforeChanged(m) => write!(f, "the module before it ({m}) changed"),
        }
    }
}

/// What the build recorded for one finished functionality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub key: String,
    pub parts: Option<KeyParts>,
    /// The code tree it left.
    pub tree: String,
}

/// The decision for one functionality: `None` when the recorded result can be reused,
/// otherwise why it must be rendered. `now` is the key it would get, or why that key cannot be
/// known yet; `forced` means the user asked for it.
pub fn judge(
    recorded: Option<&Recorded>,
    now: Result<&KeyParts, Reason>,
    forced: bool,
) -> Option<Vec<Reason>> {
    let Some(old) = recorded else {
        return Some(vec![Reason::NotRendered]);
    };
    let now = match now {
        Ok(now) => now,
        Err(unknown) => return Some(vec![unknown]),
    };
    if forced {
        return Some(vec![Reason::Asked]);
    }
    if now.key() == old.key {
        return None;
    }
    let why: Vec<Reason> = old
        .parts
        .as_ref()
        .map(|p| now.explain(p).into_iter().map(Reason::Changed).collect())
        .unwrap_or_default();
    Some(if why.is_empty() {
        vec![Reason::KeyChanged]
    } else {
        why
    })
}

/// One functionality's state, for `rekindle status`.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionalityState {
    pub id: usize,
    pub text: String,
    pub state: State,
    pub reasons: Vec<String>,
    pub spec_file: String,
    pub spec_lines: [usize; 2],
}

/// What a render would do with each functionality of `rm`, given what the build recorded:
/// `base_tree` is the tree the module's base commit holds when it still matches the module
/// before it (`None`: that module changed), `done` the finished functionalities by number.
pub fn module_states(
    keyer: &Keyer<'_>,
    rm: &RenderModule,
    base_tree: Option<&str>,
    previous_module: Option<&str>,
    done: &HashMap<usize, Recorded>,
) -> Vec<FunctionalityState> {
    let project = keyer.project;
    let defs = keyer.definitions(rm);
    let mut prev_tree = base_tree.map(str::to_string);
    let mut first_stale: Option<usize> = None;
    let mut out = Vec::new();
    for (i, f) in rm.sections.functional_specs.iter().enumerate() {
        let k = i + 1;
        let pos = rekindle_spec::diag::position(&project.sources, f.span);
        let old = done.get(&k);
        let parts = prev_tree.as_deref().map(|pt| keyer.key(rm, &defs, k, pt));
        let now = parts.as_ref().ok_or_else(|| match previous_module {
            Some(m) if base_tree.is_none() => Reason::ModuleBeforeChanged(m.to_string()),
            _ => Reason::EarlierChanged,
        });
        let (state, reasons) = match judge(old, now, false) {
            None => match first_stale {
                Some(s) => (
                    State::Reusable,
                    vec![format!(
                        "reused if functionality {s} produces the same code again"
                    )],
                ),
                None => (State::UpToDate, Vec::new()),
            },
            Some(why) => (
                if old.is_none() {
                    State::NotRendered
                } else {
                    State::Stale
                },
                why.iter().map(ToString::to_string).collect(),
            ),
        };
        if state == State::Stale && first_stale.is_none() {
            first_stale = Some(k);
        }
        // Follow the old chain: with early cutoff, later functionalities may still be reused.
        prev_tree = old.map(|o| o.tree.clone());
        out.push(FunctionalityState {
            id: k,
            text: first_line(&f.text),
            state,
            reasons,
            spec_file: pos.file,
            spec_lines: [pos.line, pos.end_line],
        });
    }
    out
}

/// A functionality's first line, as commit subjects, the journal and `status` show it.
pub fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(spec: &str, parent: &str) -> KeyParts {
        KeyParts {
            spec: spec.into(),
            shared: "s".into(),
            resources: "r".into(),
            templates: "t".into(),
            models: "m".into(),
            scripts: "x".into(),
            parent: parent.into(),
        }
    }

    #[test]
    fn the_decision_and_its_reasons() {
        let old = parts("a", "p");
        let rec = Recorded {
            key: old.key(),
            parts: Some(old.clone()),
            tree: "t1".into(),
        };
        assert_eq!(judge(Some(&rec), Ok(&old), false), None);
        assert_eq!(judge(Some(&rec), Ok(&old), true), Some(vec![Reason::Asked]));
        assert_eq!(
            judge(None, Ok(&old), false),
            Some(vec![Reason::NotRendered])
        );
        let new = parts("b", "q");
        let why: Vec<String> = judge(Some(&rec), Ok(&new), false)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            why,
            [
                "its spec text or acceptance tests changed",
                "the code left by the functionality before it changed"
            ]
        );
        let bare = Recorded {
            parts: None,
            ..rec.clone()
        };
        assert_eq!(
            judge(Some(&bare), Ok(&new), false),
            Some(vec![Reason::KeyChanged])
        );
        assert_eq!(
            judge(Some(&rec), Err(Reason::EarlierChanged), false).unwrap()[0].to_string(),
            "an earlier functionality changed"
        );
    }
}
