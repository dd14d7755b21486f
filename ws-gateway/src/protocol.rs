//! The chat protocol's frames (documented in `openapi/asyncapi.json`): what clients send is
//! parsed strictly into [`ClientFrame`]; what the server sends is built by the functions here,
//! once per frame, and shared as text by every connection it goes to.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// A frame from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Send {
        resonance_id: Uuid,
        client_id: String,
        body: String,
    },
    Resume {
        positions: HashMap<Uuid, Option<String>>,
    },
    Typing {
        resonance_id: Uuid,
    },
    Read {
        resonance_id: Uuid,
        message_id: String,
    },
    Ping,
    /// Admins only: this gateway's log events as `log` frames.
    SubscribeLogs {
        level: Option<String>,
    },
}

/// The frame types clients may send (for `unknown_type` errors).
pub const CLIENT_TYPES: &[&str] = &[
    "auth",
    "send",
    "resume",
    "typing",
    "read",
    "ping",
    "subscribe_logs",
];

/// Error codes of `error` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadFrame,
    UnknownType,
    TooBig,
    NotMember,
    RateLimited,
    Unauthorized,
    InvalidField,
    Unavailable,
}

/// An `error` frame; the connection stays open.
#[derive(Debug, Serialize)]
pub struct ErrorFrame {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: ErrorCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resonance_id: Option<Uuid>,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "error",
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            client_id: None,
            resonance_id: None,
        }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn resonance(mut self, id: Uuid) -> Self {
        self.resonance_id = Some(id);
        self
    }

    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Turns a parse failure into the error a client can act on.
pub fn parse_error(text: &str, err: &serde_json::Error) -> ErrorFrame {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return ErrorFrame::new(ErrorCode::BadFrame, "the frame is not a JSON object"),
    };
    let Some(kind) = value.get("type") else {
        return ErrorFrame::new(ErrorCode::BadFrame, "the frame has no `type`").field("type");
    };
    match kind.as_str() {
        Some(k) if CLIENT_TYPES.contains(&k) => {
            let mut frame = ErrorFrame::new(
                ErrorCode::InvalidField,
                format!("invalid `{k}` frame: {err}"),
            );
            frame.field = offending_field(k, &value);
            frame
        }
        Some(k) => ErrorFrame::new(
            ErrorCode::UnknownType,
            format!(
                "unknown frame type `{}`; expected one of {}",
                k.chars().take(40).collect::<String>(),
                CLIENT_TYPES.join(", ")
            ),
        )
        .field("type"),
        None => ErrorFrame::new(ErrorCode::BadFrame, "`type` must be a string").field("type"),
    }
}

/// The fields of each client frame and what they hold.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Uuid,
    Text,
    Positions,
}

fn fields_of(kind: &str) -> &'static [(&'static str, Kind)] {
    match kind {
        "auth" => &[("token", Kind::Text)],
        "send" => &[
            ("resonance_id", Kind::Uuid),
            ("client_id", Kind::Text),
            ("body", Kind::Text),
        ],
        "resume" => &[("positions", Kind::Positions)],
        "typing" => &[("resonance_id", Kind::Uuid)],
        "read" => &[("resonance_id", Kind::Uuid), ("message_id", Kind::Text)],
        "subscribe_logs" => &[("level", Kind::Text)],
        _ => &[],
    }
}

/// Names the field that made a known frame unreadable: missing, of the wrong kind, or unknown.
fn offending_field(kind: &str, value: &serde_json::Value) -> Option<String> {
    let fields = fields_of(kind);
    for &(name, expected) in fields {
        let ok = match (value.get(name), expected) {
            (Some(serde_json::Value::String(s)), Kind::Uuid) => s.parse::<Uuid>().is_ok(),
            (Some(serde_json::Value::String(_)), Kind::Text) => true,
            (Some(serde_json::Value::Object(map)), Kind::Positions) => map
                .iter()
                .all(|(k, v)| k.parse::<Uuid>().is_ok() && (v.is_string() || v.is_null())),
            _ => false,
        };
        if !ok {
            return Some(name.to_owned());
        }
    }
    let object = value.as_object()?;
    object
        .keys()
        .find(|k| k.as_str() != "type" && !fields.iter().any(|(n, _)| n == k))
        .map(|k| k.chars().take(64).collect())
}

pub fn ready(user: Uuid, session: Uuid, heartbeat_s: u64, messages_per_minute: u64) -> String {
    json!({
        "type": "ready", "user_id": user, "session_id": session, "heartbeat_s": heartbeat_s,
        "max_body_chars": entities::chat::MAX_BODY_CHARS, "messages_per_minute": messages_per_minute,
    })
    .to_string()
}

pub fn ack(resonance: Uuid, client_id: &str, message_id: &str, sent_at: &str, dup: bool) -> String {
    json!({
        "type": "ack", "resonance_id": resonance, "client_id": client_id,
        "message_id": message_id, "sent_at": sent_at, "duplicate": dup,
    })
    .to_string()
}

/// A `message` frame up to the message id's opening quote: the store appends `id"}` once it
/// knows the id, so the frame is serialised once for every receiver.
pub fn message_head(
    resonance: Uuid,
    sender: Uuid,
    client_id: &str,
    body: &str,
    sent_at: &str,
) -> String {
    let text = json!({
        "type": "message", "resonance_id": resonance, "sender_id": sender,
        "client_id": client_id, "body": body, "sent_at": sent_at,
    })
    .to_string();
    // `{...}` → `{...,"message_id":"`
    let mut head = text;
    head.pop();
    head.push_str(",\"message_id\":\"");
    head
}

pub fn message(
    resonance: Uuid,
    id: &str,
    sender: &str,
    client_id: &str,
    body: &str,
    sent_at: &str,
) -> String {
    json!({
        "type": "message", "resonance_id": resonance, "message_id": id, "sender_id": sender,
        "client_id": client_id, "body": body, "sent_at": sent_at,
    })
    .to_string()
}

pub fn resumed(resonance: Uuid, recovered: bool, replayed: usize, latest: Option<&str>) -> String {
    json!({
        "type": "resumed", "resonance_id": resonance, "recovered": recovered,
        "replayed": replayed, "latest_message_id": latest,
    })
    .to_string()
}

pub fn typing(resonance: Uuid, user: Uuid) -> String {
    json!({"type": "typing", "resonance_id": resonance, "user_id": user}).to_string()
}

pub fn read(resonance: Uuid, message_id: &str, user: Uuid) -> String {
    json!({"type": "read", "resonance_id": resonance, "message_id": message_id, "user_id": user})
        .to_string()
}

pub fn presence(user: Uuid, online: bool, last_seen: Option<&str>) -> String {
    json!({"type": "presence", "user_id": user, "online": online, "last_seen": last_seen})
        .to_string()
}

pub fn closed(resonance: Uuid) -> String {
    json!({"type": "closed", "resonance_id": resonance, "reason": "ended"}).to_string()
}

pub const PONG: &str = r#"{"type":"pong"}"#;

pub fn logs_subscribed(level: &str) -> String {
    json!({"type": "logs_subscribed", "level": level}).to_string()
}

/// A `log` frame from the log tap's event; `skipped` events were dropped before it.
pub fn log(event: &serde_json::Value, skipped: u64) -> String {
    let mut frame = serde_json::Map::new();
    frame.insert("type".into(), "log".into());
    if let Some(fields) = event.as_object() {
        frame.extend(fields.clone());
    }
    if skipped > 0 {
        frame.insert("skipped".into(), skipped.into());
    }
    serde_json::Value::Object(frame).to_string()
}

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
