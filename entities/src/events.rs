//! The per-person event bus behind the API's `GET /v1/events` (SSE), as stored in Redis: the API
//! publishes most events, the gateway publishes `message.new` for people it cannot reach.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Entries kept per person for replay.
pub const REPLAY_LEN: usize = 200;
/// Seconds a person's replay buffer lives after the last event.
pub const REPLAY_TTL_S: u64 = 3600;

/// Stores and announces one event. KEYS: the person's stream, the person's channel. ARGV: the
/// [`EventBody`] as JSON, ttl (s), max entries. `XADD` then `PUBLISH` of the stored entry, so what
/// is delivered live is exactly what can be replayed. Returns the event id.
pub const PUBLISH: &str = r#"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])
return id
"#;

/// What is stored per event (the id is the stream entry's).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}
