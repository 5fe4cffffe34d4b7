//! The language server for ***plain specs (`rekindle lsp`), on `lsp-server` (rust-analyzer's
//! synchronous protocol crate) and `lsp-types`.
//!
//! - [`docs`]: the open documents, kept in step with the editor's incremental changes, and the
//!   file system the loader sees through them (an open document wins over the disk).
//! - [`analysis`]: one loaded project per open document: its diagnostics by file (the same codes
//!   and spans as `rekindle check`, imported and included files too), and its concepts with every
//!   place they are defined and used.
//! - [`server`]: the protocol loop: diagnostics after every change, go to definition, references,
//!   hover, completion, document symbols and rename.
//!
//! The render state a hover shows comes from the caller ([`RenderInfo`]): it needs the build
//! folder, the journal and the model settings, which the command line owns.

pub mod analysis;
pub mod docs;
pub mod server;

use std::path::Path;

/// What a hover on a functionality says about its renders; the CLI implements it.
pub trait RenderInfo {
    /// Markdown about functionality `id` (1-based) of `module` in the project whose entry spec is
    /// `spec`: its render state, why it is stale, the files its last render wrote.
    fn functionality(&self, spec: &Path, module: &str, id: usize) -> Option<String>;
}

/// A [`RenderInfo`] that knows nothing (for tests and editors without a build).
pub struct NoRenderInfo;

impl RenderInfo for NoRenderInfo {
    fn functionality(&self, _: &Path, _: &str, _: usize) -> Option<String> {
        None
    }
}

/// Serves the protocol on stdin and stdout until the client says `exit`.
pub fn stdio(info: Box<dyn RenderInfo>) -> Result<(), String> {
    let (connection, threads) = lsp_server::Connection::stdio();
    server::serve(&connection, info)?;
    drop(connection);
    threads.join().map_err(|e| e.to_string())
}
