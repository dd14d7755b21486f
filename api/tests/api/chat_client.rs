//! Test side of the chat gateway: real `despacio-gateway` processes on this test's database and
//! Redis prefix, a WebSocket client, and a check of every frame against `openapi/asyncapi.json`.
use std::{
    io::{BufRead, Write},
    sync::OnceLock,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::helpers::{listening_addr, pg_base, redis_url, TestApp, TestUser};

/// A file in the temp folder for a gateway's log (kept for post-mortems).
fn tempfile_log() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!(
        "despacio-gateway-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let file = std::fs::File::create(&path).expect("log file");
    (path, file)
}

/// A gateway process; killed (SIGKILL) when dropped.
pub struct GatewayProcess {
    pub url: String,
    pub base: String,
    pub child: std::process::Child,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

fn gateway_binary() -> std::path::PathBuf {
    let path =
        std::path::Path::new(env!("CARGO_BIN_EXE_despacio-api")).with_file_name("despacio-gateway");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo nextest run --workspace builds it)",
        path.display()
    );
    path
}

impl TestApp {
    /// Starts a `despacio-gateway` process for this app (its database, Redis prefix, dev key).
    pub fn spawn_gateway(&self, extra: &[(&str, &str)]) -> GatewayProcess {
        let mut command = std::process::Command::new(gateway_binary());
        command
            .env("DATABASE_URL", format!("{}/{}", pg_base(), self.db_name))
            .env("REDIS_URL", redis_url())
            .env("REDIS_PREFIX", &self.prefix)
            .env("GATEWAY_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn despacio-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut log = tempfile_log();
        let mut logged = lines.by_ref().inspect(|line| {
            if let Ok(line) = line {
                let _ = writeln!(log.1, "{line}");
            }
        });
        let addr = listening_addr(&mut logged, "despacio-gateway listening");
        let mut log = log.1;
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        GatewayProcess {
            url: format!("ws://{addr}/v1/chat"),
            base: format!("http://{addr}"),
            child,
        }
    }

    /// Two people with an active résonance; returns its id.
    pub async fn resonance(&self, a: &TestUser, b: &TestUser) -> uuid::Uuid {
        self.swipe(a, b, "like").await;
        let answer = self.swipe(b, a, "like").await;
        answer["resonance"]["id"]
            .as_str()
            .expect("résonance id")
            .parse()
            .expect("uuid")
    }
}

/// The AsyncAPI document's message payload schemas.
fn asyncapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/asyncapi.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("asyncapi.json"))
            .expect("asyncapi.json is JSON")
    })
}

fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(&asyncapi()["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Checks `value` against `schema` (the keyword subset the document uses); returns what is wrong.
fn check(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(schema);
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !(allowed.contains(&actual) || actual == "integer" && allowed.contains(&"number")) {
            errors.push(format!("{at}: {actual} is not {allowed:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Value::String(s) = value {
        let n = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errors.push(format!("{at}: too short"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: too long"));
        }
    }
    if let (Value::Number(n), Some(min)) = (value, schema.get("minimum").and_then(Value::as_f64)) {
        if n.as_f64().is_some_and(|v| v < min) {
            errors.push(format!("{at}: below {min}"));
        }
    }
    if let Value::Array(items) = value {
        if let Some(item) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                check(item, v, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{at}: `{r}` is missing"));
                }
            }
        }
        for (k, v) in map {
            match properties.and_then(|p| p.get(k)) {
                Some(s) => check(s, v, &format!("{at}.{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: `{k}` is not documented"))
                    }
                    Some(s @ Value::Object(_)) => check(s, v, &format!("{at}.{k}"), errors),
                    _ => {}
                },
            }
        }
    }
}

/// Panics unless `frame` is a documented `direction.type` message.
pub fn assert_documented(direction: &str, frame: &Value) {
    let kind = frame["type"].as_str().unwrap_or("?");
    let name = format!("{direction}.{kind}");
    let message = &asyncapi()["components"]["messages"][&name];
    assert!(
        message.is_object(),
        "{name} is not in asyncapi.json: {frame}"
    );
    let mut errors = Vec::new();
    check(&message["payload"], frame, &name, &mut errors);
    assert!(
        errors.is_empty(),
        "{frame} does not match asyncapi.json: {errors:?}"
    );
}

/// How a client presents its token.
pub enum Auth<'a> {
    Header(&'a str),
    Subprotocol(&'a str),
    Frame(&'a str),
    None,
}

pub struct ChatClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Option<String>,
}

const WAIT: Duration = Duration::from_secs(10);

impl ChatClient {
    /// Connects without waiting for `ready`.
    pub async fn open(url: &str, auth: Auth<'_>) -> ChatClient {
        let mut request = url.into_client_request().expect("request");
        match &auth {
            Auth::Header(token) => {
                request.headers_mut().insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
                );
            }
            Auth::Subprotocol(token) => {
                request.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_str(&format!("despacio.v1, bearer.{token}")).expect("header"),
                );
            }
            _ => {}
        }
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket handshake");
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut client = ChatClient { ws, protocol };
        if let Auth::Frame(token) = auth {
            client.send(json!({"type": "auth", "token": token})).await;
        }
        client
    }

    /// Connects with a bearer header and waits for `ready`.
    pub async fn connect(url: &str, user: &TestUser) -> ChatClient {
        let mut client = Self::open(url, Auth::Header(&user.access)).await;
        let ready = client.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        assert_eq!(ready["user_id"], user.id.to_string());
        client
    }

    /// Sends a frame that must be valid per the AsyncAPI document.
    pub async fn send(&mut self, frame: Value) {
        assert_documented("client", &frame);
        self.send_raw(Message::Text(frame.to_string().into())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next server frame (checked against the AsyncAPI document); panics on close.
    pub async fn next(&mut self) -> Value {
        // One deadline for the frame, not reset by the pings that arrive meanwhile.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within 10 s")
                .expect("the connection is open")
                .expect("a frame");
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    assert_documented("server", &frame);
                    return frame;
                }
                Message::Close(close) => panic!("closed: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others of the listed types.
    pub async fn next_of(&mut self, kind: &str, skip: &[&str]) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
            let other = frame["type"].as_str().unwrap_or("");
            assert!(skip.contains(&other), "expected `{kind}`, got {frame}");
        }
    }

    /// Waits for the close frame; returns (code, reason).
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close within 10 s");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    assert_documented("server", &frame);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
            }
        }
    }

    /// Sends a message and waits for its ack (skipping live traffic listed in `skip`).
    pub async fn say(&mut self, resonance: uuid::Uuid, client_id: &str, body: &str) -> Value {
        self.send(json!({"type": "send", "resonance_id": resonance, "client_id": client_id, "body": body}))
            .await;
        let ack = self
            .next_of("ack", &["presence", "typing", "read", "message"])
            .await;
        assert_eq!(ack["client_id"], client_id, "{ack}");
        ack
    }
}
