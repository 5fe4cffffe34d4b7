//! The ***plain language front end: loading, template expansion, parsing and validation.
//!
//! Pure over data: the only I/O goes through [`loader::Fs`], so the whole front end runs in tests
//! and fuzzers without touching the disk.

pub use rekindle_diag::{diag, source};
pub mod concepts;
pub mod expand;
pub mod front_matter;
pub mod library;
pub mod loader;
pub mod model;
pub mod project;
mod resources;
pub mod roots;
pub mod syntax;
pub mod template;
