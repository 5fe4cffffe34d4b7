//! `rekindle`: a router. `args` holds every argument, `commands` one module per command; each
//! calls the library crates and prints. Errors are printed in one place (`commands::run`) and
//! end as an [`exit::ExitStatus`].
//!
//! Exit codes: 0 success, 1 the work failed (spec errors, tests failing after all attempts,
//! drift refused), 2 usage or environment errors.

mod args;
mod commands;
mod doctor;
mod exit;
mod load;
mod models;
mod printer;
mod report;
mod setup;

use clap::Parser;

/// mimalloc: loading a large spec allocates many small strings and vectors (one per item); it
/// takes about a tenth of an edit's time in `rekindle lsp` with the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    commands::run(cli.command).into()
}
