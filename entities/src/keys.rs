//! Redis key and channel names. Every key starts with a deployment prefix (`REDIS_PREFIX`, tests
//! use one per test) so that several deployments or test runs can share one Redis.

/// Builds Redis keys under one prefix.
#[derive(Clone, Debug)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A rate-limit counter: `rl:{name}:{subject}`.
    pub fn rate_limit(&self, name: &str, subject: &str) -> String {
        format!("{}rl:{name}:{subject}", self.prefix)
    }

    /// Set while a revoked session's access tokens may still be unexpired.
    pub fn revoked_session(&self, session_id: &uuid::Uuid) -> String {
        format!("{}revoked:session:{session_id}", self.prefix)
    }

    /// Pub/sub channel on which session revocations are announced (the gateway listens).
    pub fn revocations_channel(&self) -> String {
        format!("{}events:revocations", self.prefix)
    }

    /// A person's event replay buffer (a Redis stream; ids are SSE event ids).
    pub fn events_stream(&self, user_id: &uuid::Uuid) -> String {
        format!("{}events:stream:{user_id}", self.prefix)
    }

    /// The pub/sub channel of a person's events.
    pub fn events_channel(&self, user_id: &uuid::Uuid) -> String {
        format!("{}{user_id}", self.events_channel_prefix())
    }

    /// What every person's events channel starts with (the user id follows).
    pub fn events_channel_prefix(&self) -> String {
        format!("{}events:user:", self.prefix)
    }

    /// The pattern matching every person's events channel.
    pub fn events_pattern(&self) -> String {
        format!("{}*", self.events_channel_prefix())
    }

    /// Pub/sub channel telling gateways that a conversation is closed (unmatch, block).
    pub fn conversations_channel(&self) -> String {
        format!("{}events:conversations", self.prefix)
    }

    /// A conversation's message stream (24 h).
    pub fn chat_stream(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:messages", self.prefix)
    }

    /// A conversation's metadata hash: its two members (`a`, `b`) and the stream positions that
    /// say how complete its history is (`floor`, `trimmed`, `last`; see [`crate::chat`]).
    pub fn chat_meta(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:meta", self.prefix)
    }

    /// Client message ids already stored in a conversation (`sender:client_id` → `id sent_at`).
    pub fn chat_clients(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:clients", self.prefix)
    }

    /// Read marks of a conversation (`user` → last message id read).
    pub fn chat_reads(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:reads", self.prefix)
    }

    /// Set once a conversation is closed, so a gateway never restores its metadata afterwards.
    pub fn chat_closed(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:closed", self.prefix)
    }

    /// Set for a minute when a gateway found no active résonance with this id in PostgreSQL
    /// (so random ids cannot make every frame query the database).
    pub fn chat_absent(&self, resonance_id: &uuid::Uuid) -> String {
        format!("{}chat:{resonance_id}:absent", self.prefix)
    }

    /// Sorted set: conversation id → when its oldest stored message expires (ms), so idle
    /// conversations are trimmed too (`despacio-worker`).
    pub fn chat_trim_due(&self) -> String {
        format!("{}chat:trim-due", self.prefix)
    }

    /// Everything about chat that is not a conversation's own key starts with this.
    pub fn chat_prefix(&self) -> String {
        format!("{}chat:", self.prefix)
    }

    /// The pub/sub channel of one person's chat traffic (every gateway holding them listens).
    pub fn chat_user_channel(&self, user_id: &uuid::Uuid) -> String {
        format!("{}chat:user:{user_id}", self.prefix)
    }

    /// A person's presence: a sorted set of gateway instances holding them, scored by expiry.
    pub fn chat_presence(&self, user_id: &uuid::Uuid) -> String {
        format!("{}chat:presence:{user_id}", self.prefix)
    }

    /// When a person was last seen online (RFC 3339).
    pub fn chat_last_seen(&self, user_id: &uuid::Uuid) -> String {
        format!("{}chat:lastseen:{user_id}", self.prefix)
    }

    /// Set while an access token whose signature a gateway verified is unexpired: another
    /// gateway may accept that very token without verifying it again. `digest` is the hex
    /// SHA-256 of the verifying key and the token (see `ws_gateway::conn::Verifier`).
    pub fn chat_verified_token(&self, digest: &str) -> String {
        format!("{}chat:verified:{digest}", self.prefix)
    }

    /// Set while a person's account is being erased, and for an hour after (longer than any
    /// access token or presence entry lives): what a gateway still does for them removes their
    /// keys instead of writing them.
    pub fn erased_user(&self, user_id: &uuid::Uuid) -> String {
        format!("{}erased:{user_id}", self.prefix)
    }

    /// The pub/sub channel announcing a person's presence changes.
    pub fn chat_presence_channel(&self, user_id: &uuid::Uuid) -> String {
        format!("{}chat:presence-changes:{user_id}", self.prefix)
    }

    /// A stored answer to a POST with an `Idempotency-Key`.
    pub fn idempotency(&self, scope: &str, key: &str) -> String {
        format!("{}idem:{scope}:{key}", self.prefix)
    }
}
