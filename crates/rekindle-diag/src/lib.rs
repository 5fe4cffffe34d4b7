//! Source files, spans and diagnostics: the vocabulary every layer uses to say what went wrong
//! and where. Knows nothing about ***plain.

pub mod diag;
pub mod source;

pub use diag::{Diagnostic, Severity};
pub use source::{FileId, SourceDb, SourceFile, Span};
