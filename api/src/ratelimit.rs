//! Redis-backed rate limits: one counter per (limit, subject) that lives for the limit's period
//! from its first hit (a fixed window that starts with the first event).
//!
//! Subjects are IP addresses or blind-index hashes, never plain emails: Redis holds no personal
//! data in clear. Over the limit, the caller gets a 429 problem with `Retry-After` and
//! `RateLimit-*` headers.
use std::sync::Arc;

use fred::prelude::{KeysInterface, LuaInterface, Pool};

use crate::{config::RateLimits, error::AppError};
use entities::keys::RedisKeys;

/// Atomically counts one event and returns `{count, milliseconds left in the window}`.
const HIT: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"#;

/// Reads a counter without counting: `{count, milliseconds left}`.
const PEEK: &str = r#"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
return {count, redis.call('PTTL', KEYS[1])}
"#;

#[derive(Clone)]
pub struct RateLimiter {
    redis: Pool,
    keys: RedisKeys,
    limits: Arc<RateLimits>,
}

impl RateLimiter {
    pub fn new(redis: Pool, keys: RedisKeys, limits: Arc<RateLimits>) -> Self {
        Self {
            redis,
            keys,
            limits,
        }
    }

    fn refuse(&self, name: &'static str, ttl_ms: i64) -> AppError {
        let limit = self.limits.get(name);
        AppError::RateLimited {
            name,
            limit: limit.count,
            period_s: limit.period.as_secs(),
            retry_after_s: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
        }
    }

    /// Counts one event; refuses it when it goes over the limit.
    pub async fn hit(&self, name: &'static str, subject: &str) -> Result<(), AppError> {
        let (count, ttl) = self.count(name, subject).await?;
        if count > self.limits.get(name).count {
            return Err(self.refuse(name, ttl));
        }
        Ok(())
    }

    /// Counts one event in a window of `ttl_s` seconds that the caller names in `subject` (for
    /// calendar windows such as "today, UTC"); refuses it over the limit.
    pub async fn hit_window(
        &self,
        name: &'static str,
        subject: &str,
        ttl_s: u64,
    ) -> Result<(), AppError> {
        let key = self.keys.rate_limit(name, subject);
        let v: Vec<i64> = self
            .redis
            .eval(HIT, vec![key], vec![(ttl_s * 1000).to_string()])
            .await?;
        let (count, ttl) = (
            v.first().copied().unwrap_or(0).max(0) as u64,
            v.get(1).copied().unwrap_or(0),
        );
        if count > self.limits.get(name).count {
            return Err(self.refuse(name, ttl));
        }
        Ok(())
    }

    /// Refuses when the limit is already reached, without counting (for counters that only
    /// count failures, checked before the expensive work).
    pub async fn check(&self, name: &'static str, subject: &str) -> Result<(), AppError> {
        let key = self.keys.rate_limit(name, subject);
        let (count, ttl): (u64, i64) = {
            let v: Vec<i64> = self
                .redis
                .eval(PEEK, vec![key], Vec::<String>::new())
                .await?;
            (
                v.first().copied().unwrap_or(0).max(0) as u64,
                v.get(1).copied().unwrap_or(0),
            )
        };
        if count >= self.limits.get(name).count {
            return Err(self.refuse(name, ttl));
        }
        Ok(())
    }

    /// Counts one event without refusing it (a failed login).
    pub async fn record(&self, name: &'static str, subject: &str) -> Result<(), AppError> {
        self.count(name, subject).await.map(|_| ())
    }

    /// Forgets a counter (a successful login clears the failures).
    pub async fn reset(&self, name: &'static str, subject: &str) -> Result<(), AppError> {
        let _: i64 = self.redis.del(self.keys.rate_limit(name, subject)).await?;
        Ok(())
    }

    async fn count(&self, name: &'static str, subject: &str) -> Result<(u64, i64), AppError> {
        let key = self.keys.rate_limit(name, subject);
        let period_ms = self.limits.get(name).period.as_millis().to_string();
        let v: Vec<i64> = self.redis.eval(HIT, vec![key], vec![period_ms]).await?;
        Ok((
            v.first().copied().unwrap_or(0).max(0) as u64,
            v.get(1).copied().unwrap_or(0),
        ))
    }
}
