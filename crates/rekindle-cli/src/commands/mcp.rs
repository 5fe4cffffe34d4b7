//! `rekindle mcp`: a Model Context Protocol server on stdin and stdout (the official SDK, `rmcp`)
//! for coding agents. Each tool runs this same rekindle binary with `--format json`, so an agent
//! sees exactly what the command line prints and exits with, as structured results.
//!
//! `render` never calls a hosted model (one that may cost money) unless the call sets
//! `allow_hosted`: it runs with `--local-only` otherwise.

use super::runtime;
use crate::exit::{CliError, CmdResult, ExitStatus};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, Content, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerInfo, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

pub fn run() -> CmdResult {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::usage(format!("cannot find the rekindle binary: {e}")))?;
    runtime().block_on(async move {
        let server = Server { exe };
        let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| {
            CliError::usage(format!("mcp: the client did not start a session: {e}"))
        })?;
        running
            .waiting()
            .await
            .map_err(|e| CliError::usage(format!("mcp: {e}")))?;
        Ok(ExitStatus::Success)
    })
}

struct Server {
    exe: PathBuf,
}

/// A tool: its name, what it does, and its parameters as (name, JSON type, description,
/// required).
struct ToolDef {
    name: &'static str,
    about: &'static str,
    params: &'static [(&'static str, &'static str, &'static str, bool)],
}

const FILE: (&str, &str, &str, bool) = (
    "file",
    "string",
    "the .plain spec, relative to the server's working folder",
    true,
);

const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "check",
        about: "Parse and validate a ***plain spec (its imports and templates too). Returns ok, and every diagnostic with its code, message, file, line and column.",
        params: &[FILE],
    },
    ToolDef {
        name: "plan",
        about: "The render plan of a valid spec: modules in render order, each functionality with its acceptance tests and spec lines.",
        params: &[FILE],
    },
    ToolDef {
        name: "expand",
        about: "The spec's text with templates, imports and exported definitions expanded (what the model is shown).",
        params: &[
            FILE,
            ("module", "string", "a required module to expand instead of the entry module", false),
        ],
    },
    ToolDef {
        name: "status",
        about: "What a render would do: each functionality up to date or stale (and why), and generated files changed by hand.",
        params: &[FILE],
    },
    ToolDef {
        name: "why",
        about: "Which functionality, spec lines, commit and model calls produced a generated file or line.",
        params: &[
            ("target", "string", "PATH or PATH:LINE of a generated file", true),
            ("spec", "string", "the spec whose journal to read (default: the one .plain file in the working folder)", false),
        ],
    },
    ToolDef {
        name: "converse",
        about: "Ask a model about a spec, or ask it to change the spec. Its proposed spec edits are checked and returned; with apply they are written (when they check). Recorded with the spec's history. Without allow_hosted only the local model or the response cache is used.",
        params: &[
            FILE,
            ("message", "string", "what to ask or ask for", true),
            ("apply", "boolean", "write the proposed edits that check (default false: report them only)", false),
            ("allow_hosted", "boolean", "allow calls to hosted models, which may cost money (default false)", false),
        ],
    },
    ToolDef {
        name: "render",
        about: "Render what is stale: implement, test, fix and commit each functionality with a model. Without allow_hosted it refuses to call a hosted model (which may cost money) and uses only the local model or the response cache.",
        params: &[
            FILE,
            ("allow_hosted", "boolean", "allow calls to hosted models, which may cost money (default false)", false),
            ("from", "integer", "re-render from this functionality of the entry module on", false),
            ("range", "string", "render only these functionalities, e.g. 2..4", false),
            ("force_render", "boolean", "render every functionality again", false),
            ("offline", "boolean", "answer only from the response cache", false),
            ("locked", "boolean", "rebuild what rekindle.lock pins, without any model", false),
        ],
    },
];

fn schema(t: &ToolDef) -> Map<String, Value> {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, ty, about, req) in t.params {
        props.insert(
            (*name).to_string(),
            json!({"type": ty, "description": about}),
        );
        if *req {
            required.push(json!(name));
        }
    }
    let v = json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rekindle", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "rekindle renders ***plain specs into tested code. Use check after editing a spec, plan and status to see what a render would do, render to build, why to trace generated code to the spec.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            TOOLS
                .iter()
                .map(|t| Tool::new(t.name, t.about, schema(t)))
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = TOOLS.iter().find(|t| t.name == request.name) else {
            return Err(ErrorData::invalid_params(
                format!("no tool named `{}`", request.name),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        for key in args.keys() {
            if !tool.params.iter().any(|(n, ..)| n == key) {
                return Err(ErrorData::invalid_params(
                    format!("`{}` takes no argument `{key}`", tool.name),
                    None,
                ));
            }
        }
        let argv =
            command_line(tool.name, &args).map_err(|m| ErrorData::invalid_params(m, None))?;
        let out = tokio::process::Command::new(&self.exe)
            .args(&argv)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| ErrorData::internal_error(format!("cannot run rekindle: {e}"), None))?;
        Ok(result(tool.name, &out))
    }
}

fn text(args: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
    }
}

fn flag(args: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("`{key}` must be true or false, not {other}")),
    }
}

/// The rekindle command line a tool call runs.
fn command_line(tool: &str, args: &Map<String, Value>) -> Result<Vec<String>, String> {
    let required = |key: &str| -> Result<String, String> {
        text(args, key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("`{tool}` needs `{key}`"))
    };
    let mut argv = vec![tool.to_string()];
    match tool {
        "why" => {
            argv.push(required("target")?);
            if let Some(spec) = text(args, "spec")? {
                argv.extend(["--spec".into(), spec]);
            }
        }
        _ => argv.push(required("file")?),
    }
    argv.extend(["--format".into(), "json".into()]);
    if tool == "expand" {
        if let Some(m) = text(args, "module")? {
            argv.extend(["--module".into(), m]);
        }
    }
    if tool == "converse" {
        argv.extend(["--message".into(), required("message")?]);
        if flag(args, "apply")? {
            argv.push("--yes".into());
        }
        if !flag(args, "allow_hosted")? {
            argv.push("--local-only".into());
        }
    }
    if tool == "render" {
        // No terminal to ask on: --yes answers the cost question, so --local-only guards it.
        argv.push("--yes".into());
        if !flag(args, "allow_hosted")? {
            argv.push("--local-only".into());
        }
        match args.get("from") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                argv.extend(["--from".into(), n.to_string()]);
            }
            Some(other) => return Err(format!("`from` must be a whole number, not {other}")),
        }
        if let Some(r) = text(args, "range")? {
            argv.extend(["--range".into(), r]);
        }
        for (key, cli) in [
            ("force_render", "--force-render"),
            ("offline", "--offline"),
            ("locked", "--locked"),
        ] {
            if flag(args, key)? {
                argv.push(cli.into());
            }
        }
    }
    Ok(argv)
}

/// A finished command as a tool result: its JSON output as the structured content (a render's
/// event lines gathered into one object), its exit status, and its stderr when it failed.
fn result(tool: &str, out: &std::process::Output) -> CallToolResult {
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let output = if tool == "render" {
        let events: Vec<Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let pick = |kind: &str| -> Vec<Value> {
            events
                .iter()
                .filter(|e| e["event"] == kind)
                .cloned()
                .collect()
        };
        json!({
            "summary": events.iter().rev().find(|e| e["event"] == "summary").cloned(),
            "functionalities": pick("committed"),
            "failed": pick("failed"),
            "warnings": pick("warning"),
            "model_calls": pick("model_call").len(),
            "error": events.iter().find_map(|e| e.get("error").cloned()),
        })
    } else {
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| json!({"text": stdout}))
    };
    // A command that fails before its work prints `{"error": ...}` under --format json.
    let error = output["error"].as_str().map(str::to_string);
    let mut value = json!({"exit_code": code, "output": output});
    if code != 0 && !stderr.trim().is_empty() {
        value["stderr"] = json!(stderr.trim_end());
    }
    let mut r = CallToolResult::structured(value);
    if code != 0 {
        r.is_error = Some(true);
        // The message first, for clients that show only text.
        let why = error.unwrap_or_else(|| stderr.trim().to_string());
        r.content.insert(
            0,
            Content::text(format!("rekindle {tool} exited {code}: {why}")),
        );
    }
    r
}
