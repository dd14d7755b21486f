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
}
