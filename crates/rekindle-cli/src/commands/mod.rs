//! One module per command. Each takes its parsed arguments, calls the library crates and prints
//! its output; errors come back as [`CliError`] and are printed in one place, [`run`].

mod adopt;
mod attest;
mod burn;
mod cache;
mod check;
mod converse;
mod doctor;
mod expand;
mod from_code;
mod init;
mod journal;
mod lsp;
mod mcp;
mod model;
mod plan;
mod render;
mod status;
mod why;

use crate::args::{Command, Format, JournalCommand};
use crate::exit::ExitStatus;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
}

/// Runs `command` and reports its error, if any; returns the status to exit with.
pub fn run(command: Command) -> ExitStatus {
    let format = error_format(&command);
    // plain2code's flags rekindle does not honour: refused before anything runs.
    let refused = match &command {
        Command::Render { render, .. }
        | Command::Status { render, .. }
        | Command::Burn { render, .. }
        | Command::Attest { render, .. }
        | Command::Adopt { render, .. } => render.refused.refusal(),
        _ => None,
    };
    if let Some(why) = refused {
        return crate::exit::CliError::usage(why).report(format);
    }
    let result = match command {
        Command::Check { files, args } => check::run(&files, &args),
        Command::Plan { file, args } => plan::run(&file, &args),
        Command::Render {
            file,
            full_plain: true,
            args,
            ..
        } => expand::run(&file, None, &args),
        Command::Render {
            file,
            dry_run: true,
            args,
            ..
        } => plan::run(&file, &args),
        Command::Render {
            file, args, render, ..
        } => render::run(&file, &args, &render),
        Command::Expand { file, module, args } => expand::run(&file, module.as_deref(), &args),
        Command::Doctor {
            file,
            provider,
            format,
        } => doctor::run(file.as_deref(), &provider, format),
        Command::Model { command } => model::run(command),
        Command::Status {
            file,
            check,
            args,
            render,
        } => status::run(&file, check, &args, &render),
        Command::Burn {
            file,
            into,
            args,
            render,
        } => burn::run(&file, into.as_deref(), &args, &render),
        Command::Attest { file, args, render } => attest::run(&file, &args, &render),
        Command::Why {
            target,
            spec,
            format,
        } => why::run(&target, spec.as_deref(), format),
        Command::Journal {
            command: JournalCommand::Verify { spec, format },
        } => journal::verify(spec.as_deref(), format),
        Command::Cache { command } => cache::run(command),
        Command::Init {
            dir,
            template,
            name,
            provider,
            yes,
            from_code,
            base_url,
            model,
            model_path,
            format,
        } => init::run(&init::InitArgs {
            dir: dir.as_deref(),
            template: template.as_deref(),
            name: name.as_deref(),
            provider: provider.as_deref(),
            yes,
            format,
            from_code: from_code.as_deref(),
            model: crate::args::ProviderArgs {
                provider: provider.clone(),
                base_url,
                model,
                model_path,
                api_key_env: None,
            },
        }),
        Command::Converse {
            file,
            messages,
            yes,
            max_tokens,
            local_only,
            args,
            provider,
        } => converse::run(&converse::ConverseArgs {
            file: &file,
            messages: &messages,
            yes,
            max_tokens,
            local_only,
            args: &args,
            provider: &provider,
        }),
        Command::Adopt {
            path,
            spec,
            args,
            render,
        } => adopt::run(path.as_deref(), spec.as_deref(), &args, &render),
        Command::Lsp => lsp::run(),
        Command::Mcp => mcp::run(),
    };
    result.unwrap_or_else(|e| e.report(format))
}

/// How a command's errors are printed: as JSON when its output is JSON.
fn error_format(command: &Command) -> Format {
    match command {
        Command::Check { args, .. }
        | Command::Plan { args, .. }
        | Command::Render { args, .. }
        | Command::Expand { args, .. }
        | Command::Status { args, .. }
        | Command::Burn { args, .. }
        | Command::Converse { args, .. }
        | Command::Adopt { args, .. } => args.format,
        Command::Why { format, .. } | Command::Init { format, .. } => *format,
        // Their errors were always plain text.
        Command::Attest { .. }
        | Command::Doctor { .. }
        | Command::Model { .. }
        | Command::Journal { .. }
        | Command::Cache { .. }
        | Command::Lsp
        | Command::Mcp => Format::Text,
    }
}
