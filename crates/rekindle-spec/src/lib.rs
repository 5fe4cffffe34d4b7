//! The ***plain language front end: loading, template expansion, parsing and validation.
//!
//! Pure over data: the only I/O goes through [`loader::Fs`], so the whole front end runs in tests
//! and fuzzers without touching the disk.

pub mod diag;
pub mod front_matter;
pub mod source;
pub mod template;
pub mod model;
pub mod syntax;
