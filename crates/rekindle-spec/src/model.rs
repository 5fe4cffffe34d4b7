//! The parsed form of a spec: sections of items, each item pointing back to its source.

use crate::source::{FileId, Span};
use serde::Serialize;
use std::sync::Arc;

/// The four sections of a ***plain module, plus the acceptance tests nested in functionalities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Definitions,
    ImplementationReqs,
    TestReqs,
    FunctionalSpecs,
    AcceptanceTests,
}

impl SectionKind {
    pub fn from_heading(name: &str) -> Option<SectionKind> {
        Some(match name {
            "definitions" => SectionKind::Definitions,
            "implementation reqs" => SectionKind::ImplementationReqs,
            "test reqs" => SectionKind::TestReqs,
            "functional specs" => SectionKind::FunctionalSpecs,
            _ => return None,
        })
    }

    pub fn heading(self) -> &'static str {
        match self {
            SectionKind::Definitions => "definitions",
            SectionKind::ImplementationReqs => "implementation reqs",
            SectionKind::TestReqs => "test reqs",
            SectionKind::FunctionalSpecs => "functional specs",
            SectionKind::AcceptanceTests => "acceptance tests",
        }
    }
}

/// A relative Markdown link to a resource file.
#[derive(Clone, Debug)]
pub struct Link {
    pub text: String,
    pub target: String,
    pub span: Span,
    /// The file whose folder the target is relative to.
    pub from: FileId,
}

/// One requirement: a top-level list item of a section.
#[derive(Clone, Debug)]
pub struct Item {
    /// The item's Markdown without its bullet, continuation lines dedented.
    pub text: String,
    pub span: Span,
    /// The expansion this item was parsed from (an index into the project's bodies).
    pub body: u32,
    /// Byte ranges of the item in that expansion (acceptance tests cut out).
    pub ranges: Vec<(u32, u32)>,
    pub links: Vec<Link>,
    pub acceptance_tests: Vec<Arc<Item>>,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub kind: SectionKind,
    pub heading: Span,
    pub items: Vec<Arc<Item>>,
}

/// A module's requirements by section, own or merged with what it imports.
#[derive(Clone, Debug, Default)]
pub struct Sections {
    pub definitions: Vec<Arc<Item>>,
    pub implementation_reqs: Vec<Arc<Item>>,
    pub test_reqs: Vec<Arc<Item>>,
    pub functional_specs: Vec<Arc<Item>>,
    /// Where each heading was written in the module's own file.
    pub headings: Vec<(SectionKind, Span)>,
}

impl Sections {
    pub fn from_parsed(sections: Vec<Section>) -> Sections {
        let mut out = Sections::default();
        for s in sections {
            out.headings.push((s.kind, s.heading));
            out.list_mut(s.kind).extend(s.items);
        }
        out
    }

    pub fn list(&self, kind: SectionKind) -> &Vec<Arc<Item>> {
        match kind {
            SectionKind::Definitions => &self.definitions,
            SectionKind::ImplementationReqs => &self.implementation_reqs,
            SectionKind::TestReqs => &self.test_reqs,
            SectionKind::FunctionalSpecs | SectionKind::AcceptanceTests => &self.functional_specs,
        }
    }

    pub fn list_mut(&mut self, kind: SectionKind) -> &mut Vec<Arc<Item>> {
        match kind {
            SectionKind::Definitions => &mut self.definitions,
            SectionKind::ImplementationReqs => &mut self.implementation_reqs,
            SectionKind::TestReqs => &mut self.test_reqs,
            SectionKind::FunctionalSpecs | SectionKind::AcceptanceTests => {
                &mut self.functional_specs
            }
        }
    }

    pub fn heading(&self, kind: SectionKind) -> Option<Span> {
        self.headings
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| *s)
    }
}
