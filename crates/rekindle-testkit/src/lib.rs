//! A scripted HTTP server on 127.0.0.1 for tests: each connection gets the next scripted reply,
//! which may be a normal JSON body, a server-sent-event stream cut into arbitrary byte chunks,
//! an error with headers such as `Retry-After`, a body that is not JSON, or a stall. Requests
//! are recorded for assertions. Never listens beyond loopback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200 text/event-stream`, the body written in these chunks with a pause between them, then
    /// the connection closed.
    Stream {
        chunks: Vec<Vec<u8>>,
        pause: Duration,
    },
    /// Reads the request, then says nothing until the client gives up.
    Stall,
    /// Sends the stream's headers and first chunks, then stalls.
    StallAfter { chunks: Vec<Vec<u8>> },
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// An SSE stream of `events` (each a `data:` payload), cut into `chunk`-byte pieces.
    pub fn sse(events: &[String], chunk: usize) -> Reply {
        let mut all = Vec::new();
        for e in events {
            all.extend_from_slice(format!("data: {e}\n\n").as_bytes());
        }
        Reply::Stream {
            chunks: all.chunks(chunk.max(1)).map(<[u8]>::to_vec).collect(),
            pause: Duration::ZERO,
        }
    }

    /// An SSE stream with `event:` names (Anthropic style).
    pub fn named_sse(events: &[(&str, serde_json::Value)], chunk: usize) -> Reply {
        let mut all = Vec::new();
        for (name, data) in events {
            all.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes());
        }
        Reply::Stream {
            chunks: all.chunks(chunk.max(1)).map(<[u8]>::to_vec).collect(),
            pause: Duration::ZERO,
        }
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// The text of the first user message of a chat request (either protocol).
    pub fn first_user(&self) -> String {
        let v = self.json();
        v["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The text of the last user message of a chat request (either protocol).
    pub fn last_user(&self) -> String {
        let v = self.json();
        v["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Computes a reply from the request (for tests that play a model).
pub type Responder = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    responder: Option<Responder>,
    /// Answer for every request once the script is used up.
    fallback: Option<Reply>,
    seen: Vec<Seen>,
}

/// The server. Dropping it stops accepting.
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts on 127.0.0.1 with a free port, answering with `script` in order.
    pub async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        Server { addr, state, task }
    }

    /// Starts on a thread with its own runtime, for tests that drive a blocking client
    /// (such as the `rekindle` binary).
    pub fn start_blocking(script: Vec<Reply>) -> (Server, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(Server::start(script));
        (server, rt)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every request the script does not with `f(request)`.
    pub fn set_responder(&self, f: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        self.state.lock().unwrap().responder = Some(Arc::new(f));
    }

    pub fn set_fallback(&self, reply: Reply) {
        self.state.lock().unwrap().fallback = Some(reply);
    }

    pub fn push(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Seen>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 1 << 20 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    // One request per connection: every reply closes it, which also ends streamed bodies.
    let Some(seen) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let reply = {
        let mut st = state.lock().unwrap();
        st.seen.push(seen);
        let seen = st.seen.last().cloned();
        st.script
            .pop_front()
            .or_else(|| st.responder.as_ref().zip(seen.as_ref()).map(|(r, s)| r(s)))
            .or_else(|| st.fallback.clone())
    };
    let Some(reply) = reply else {
        let body = b"{\"error\":{\"message\":\"no scripted reply left\"}}";
        let head = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body).await?;
        return sock.shutdown().await;
    };
    let stream_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body).await?;
        }
        Reply::Stream { chunks, pause } => {
            sock.write_all(stream_head.as_bytes()).await?;
            for c in chunks {
                sock.write_all(&c).await?;
                sock.flush().await?;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Reply::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::StallAfter { chunks } => {
            sock.write_all(stream_head.as_bytes()).await?;
            for c in chunks {
                sock.write_all(&c).await?;
                sock.flush().await?;
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    sock.shutdown().await
}

/// OpenAI-style stream events for `text`, cut into pieces of `piece` characters, with a final
/// usage chunk and `[DONE]`.
pub fn openai_events(
    text: &str,
    piece: usize,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for p in chars.chunks(piece.max(1)) {
        let s: String = p.iter().collect();
        out.push(
            serde_json::json!({"id":"chatcmpl-1","model":"m","choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]})
                .to_string(),
        );
    }
    out.push(serde_json::json!({"id":"chatcmpl-1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}).to_string());
    out.push(
        serde_json::json!({"id":"chatcmpl-1","model":"m","choices":[],"usage":{"prompt_tokens":prompt_tokens,"completion_tokens":completion_tokens,"total_tokens":prompt_tokens+completion_tokens}})
            .to_string(),
    );
    out.push("[DONE]".to_string());
    out
}

/// Anthropic-style named events for `text`.
pub fn anthropic_events(
    text: &str,
    input: u64,
    output: u64,
) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","model":"claude-test","usage":{"input_tokens":input,"output_tokens":1}}}),
        ),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        ("ping", json!({"type":"ping"})),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}),
        ),
        (
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":output}}),
        ),
        ("message_stop", json!({"type":"message_stop"})),
    ]
}

/// An OpenAI-style streamed reply carrying `text`.
pub fn openai_reply(text: &str) -> Reply {
    Reply::sse(
        &openai_events(
            text,
            64,
            text.len() as u64 / 4 + 10,
            text.len() as u64 / 4 + 1,
        ),
        256,
    )
}
