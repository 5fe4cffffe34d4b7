//! How a command ends: its exit status, and errors rendered in one place.
//!
//! Exit codes: 0 success, 1 the work failed (spec errors, tests failing after all attempts, drift
//! refused, a check that found something), 2 usage or environment errors.

use crate::args::Format;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    Success = 0,
    Failure = 1,
    Error = 2,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> std::process::ExitCode {
        std::process::ExitCode::from(s as u8)
    }
}

/// Why a command stopped early.
#[derive(Debug)]
pub enum CliError {
    /// Not yet said to the user: printed by [`CliError::report`].
    Message { status: ExitStatus, message: String },
    /// Already said (diagnostics, a render's failure event): only the status is left.
    Reported(ExitStatus),
}

impl CliError {
    /// A usage or environment problem (exit 2).
    pub fn usage(message: impl std::fmt::Display) -> CliError {
        CliError::Message {
            status: ExitStatus::Error,
            message: message.to_string(),
        }
    }

    /// The work failed (exit 1).
    pub fn failure(message: impl std::fmt::Display) -> CliError {
        CliError::Message {
            status: ExitStatus::Failure,
            message: message.to_string(),
        }
    }

    /// Prints the error (as `{"ok": false, "error": …}` on stdout for JSON output) and returns
    /// the status to exit with.
    pub fn report(self, format: Format) -> ExitStatus {
        match self {
            CliError::Reported(status) => status,
            CliError::Message { status, message } => {
                match format {
                    Format::Json => {
                        println!("{}", serde_json::json!({"ok": false, "error": message}))
                    }
                    Format::Text => eprintln!("error: {message}"),
                }
                status
            }
        }
    }
}

pub type CmdResult = Result<ExitStatus, CliError>;
