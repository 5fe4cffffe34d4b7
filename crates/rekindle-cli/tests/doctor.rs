//! `rekindle doctor` against a model server on 127.0.0.1.

use assert_cmd::Command;
use rekindle_testkit::{openai_events, Reply, Server};
use serde_json::{json, Value};

const KEY: &str = "sk-doctor-secret-abcdef123456";

fn doctor(dir: &std::path::Path, server: &Server, extra: &[&str]) -> (i32, String, String) {
    let url = format!("{}/v1", server.url());
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(dir)
        .env("OPENAI_API_KEY", KEY)
        .args([
            "doctor",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "m",
        ])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key leaked:\n{stdout}\n{stderr}"
    );
    (out.status.code().unwrap(), stdout, stderr)
}

#[test]
fn doctor_reports_a_working_provider() {
    let (server, _rt) = Server::start_blocking(vec![Reply::sse(&openai_events("OK", 2, 14, 1), 8)]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = doctor(dir.path(), &server, &["--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["model"], "m");
    assert!(v["latency_ms"].is_u64());
    let provider = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("provider"))
        .unwrap();
    assert!(
        provider["detail"]
            .as_str()
            .unwrap()
            .contains("answered \"OK\""),
        "{provider}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one tiny request");
    assert_eq!(seen[0].json()["max_tokens"], 8);
}

#[test]
fn doctor_explains_401() {
    let (server, _rt) = Server::start_blocking(vec![Reply::json(
        401,
        &json!({"error": {"message": format!("bad key {KEY}")}}),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = doctor(dir.path(), &server, &[]);
    assert_ne!(code, 0);
    assert!(
        out.contains("refused the credentials (HTTP 401): check the key in $OPENAI_API_KEY"),
        "{out}"
    );
    assert!(out.contains("not ready"), "{out}");
}

#[test]
fn doctor_explains_404() {
    let (server, _rt) = Server::start_blocking(vec![Reply::json(
        404,
        &json!({"error": {"message": "no such model"}}),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = doctor(dir.path(), &server, &[]);
    assert_ne!(code, 0);
    let want = format!(
        "model 'm' was not found at {}/v1/chat/completions: check --model",
        server.url()
    );
    assert!(out.contains(&want), "{out}");
}

#[test]
fn doctor_without_a_local_model_says_how_to_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(dir.path())
        .env("REKINDLE_MODEL_DIR", dir.path())
        .args(["doctor", "--provider", "local"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0));
    assert!(stdout.contains("rekindle model fetch"), "{stdout}");
}
