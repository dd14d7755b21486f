//! The gateway's settings, from the same environment names as the API (`shared/API.md`), plus
//! the chat's own knobs (`CHAT_*`). A bad value stops start-up with the variable named.
use std::{net::SocketAddr, time::Duration};

use base64::Engine;

/// A bad variable, named.
#[derive(Debug)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration variable {}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

pub struct Settings {
    pub gateway_addr: SocketAddr,
    pub redis_url: String,
    pub redis_prefix: String,
    /// Only read when Redis has lost a conversation's members (see `store`).
    pub database_url: String,
    pub json_logs: bool,
    pub production: bool,
    /// The raw Ed25519 public key that verifies access tokens.
    pub jwt_public_key: Vec<u8>,
    /// When set, tokens must carry this `kid`.
    pub jwt_key_id: Option<String>,
    /// `messages_per_minute` from `RATE_LIMITS` (count, period).
    pub messages_limit: (u64, Duration),
    /// WebSocket ping interval; three missed intervals close the connection.
    pub heartbeat: Duration,
    /// How long a connection without a token in its handshake may take to send `auth`.
    pub auth_timeout: Duration,
    /// Frames waiting to be written to one connection before it counts as a slow consumer.
    pub queue_frames: usize,
    /// Connections verified and registered at the same time (reconnect storms queue beyond).
    pub admissions: usize,
    /// Redis connections for commands and scripts (pub/sub has its own). One batches best: the
    /// client writes every command queued meanwhile in one system call, and Redis reads them in
    /// one (bench/RESULTS.md, fourth pass).
    pub redis_connections: usize,
    /// How long graceful shutdown waits for connections to close.
    pub shutdown_grace: Duration,
}

fn dev_public_key() -> Vec<u8> {
    match ring::signature::Ed25519KeyPair::from_seed_unchecked(&entities::auth::dev_jwt_seed()) {
        Ok(pair) => ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
        Err(_) => Vec::new(),
    }
}

/// `JWT_PUBLIC_KEY`: a PEM `PUBLIC KEY` (SPKI), or the JWK's base64url `x`.
fn parse_public_key(text: &str) -> Result<Vec<u8>, ConfigError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let doc = pem::parse(text).map_err(|e| bad("JWT_PUBLIC_KEY", format!("not PEM: {e}")))?;
        let der = doc.contents();
        // SPKI for Ed25519 is a 12-byte header followed by the 32-byte key.
        if der.len() != 44
            || !der.starts_with(&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70])
        {
            return Err(bad("JWT_PUBLIC_KEY", "not an Ed25519 public key"));
        }
        return Ok(der[12..].to_vec());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad("JWT_PUBLIC_KEY", "neither PEM nor a base64url JWK `x`"))?;
    if raw.len() != 32 {
        return Err(bad("JWT_PUBLIC_KEY", "an Ed25519 public key is 32 bytes"));
    }
    Ok(raw)
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match get(var) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(bad(
                var,
                format!("`{v}` is not a positive number of seconds"),
            )),
        },
    }
}

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let production = match get("APP_ENV").as_deref() {
            None | Some("local") | Some("development") | Some("test") => false,
            Some("production") => true,
            Some(other) => {
                return Err(bad(
                    "APP_ENV",
                    format!("`{other}` is neither `local` nor `production`"),
                ))
            }
        };
        let addr = get("GATEWAY_ADDR").unwrap_or_else(|| "127.0.0.1:8081".into());
        let gateway_addr = addr.parse().map_err(|_| {
            bad(
                "GATEWAY_ADDR",
                format!("`{addr}` is not a host:port address"),
            )
        })?;
        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
            return Err(bad("REDIS_URL", "must be a redis:// or rediss:// URL"));
        }
        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/despacio".to_owned());
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(bad("DATABASE_URL", "must be a postgres:// URL"));
        }
        let json_logs = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => true,
            Some("pretty") => false,
            Some(other) => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("`{other}` is neither `json` nor `pretty`"),
                ))
            }
        };
        let dev_key = dev_public_key();
        let jwt_public_key = match get("JWT_PUBLIC_KEY") {
            Some(text) => {
                let key = parse_public_key(&text)?;
                if production && key == dev_key {
                    return Err(bad(
                        "JWT_PUBLIC_KEY",
                        "the development key is refused in production",
                    ));
                }
                key
            }
            None if production => return Err(bad("JWT_PUBLIC_KEY", "required in production")),
            None => dev_key,
        };
        let mut messages_limit = (30, Duration::from_secs(60));
        for entry in get("RATE_LIMITS").unwrap_or_default().split(',') {
            let Some((name, rule)) = entry.split_once('=') else {
                continue;
            };
            if name.trim() != "messages_per_minute" {
                continue;
            }
            let parsed = rule.split_once('/').and_then(|(c, s)| {
                Some((c.trim().parse::<u64>().ok()?, s.trim().parse::<u64>().ok()?))
            });
            match parsed {
                Some((count, secs)) if secs > 0 => {
                    messages_limit = (count, Duration::from_secs(secs));
                }
                _ => {
                    return Err(bad(
                        "RATE_LIMITS",
                        format!("`{}` is not `name=count/seconds`", entry.trim()),
                    ))
                }
            }
        }
        let count = |name: &'static str, default: usize, min: usize, max: usize| match get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(bad(name, format!("a number from {min} to {max}"))),
            },
        };
        let queue_frames = count("CHAT_QUEUE_FRAMES", 256, 8, 65_536)?;
        let admissions = count("CHAT_ADMISSIONS", 256, 8, 65_536)?;
        let redis_connections = count("CHAT_REDIS_CONNECTIONS", 1, 1, 64)?;
        Ok(Self {
            gateway_addr,
            redis_url,
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "despacio:".into()),
            database_url,
            json_logs,
            production,
            jwt_public_key,
            jwt_key_id: get("JWT_KEY_ID"),
            messages_limit,
            heartbeat: seconds(&get, "CHAT_HEARTBEAT_S", 25)?,
            auth_timeout: seconds(&get, "CHAT_AUTH_TIMEOUT_S", 10)?,
            queue_frames,
            admissions,
            redis_connections,
            shutdown_grace: seconds(&get, "SHUTDOWN_GRACE_S", 10)?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<Settings, ConfigError>) -> ConfigError {
        match result {
            Err(e) => e,
            Ok(_) => panic!("the settings were accepted"),
        }
    }

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_named_errors() {
        let s = Settings::from_lookup(|_| None).expect("defaults");
        assert_eq!(s.gateway_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(s.jwt_public_key.len(), 32);
        assert_eq!(s.messages_limit, (30, Duration::from_secs(60)));
        assert_eq!(s.admissions, 256);
        assert_eq!(s.redis_connections, 1);
        let bad: &[(&[(&str, &str)], &str)] = &[
            (&[("GATEWAY_ADDR", "nope")], "GATEWAY_ADDR"),
            (&[("APP_ENV", "production")], "JWT_PUBLIC_KEY"),
            (&[("JWT_PUBLIC_KEY", "short")], "JWT_PUBLIC_KEY"),
            (
                &[("RATE_LIMITS", "messages_per_minute=ten/60")],
                "RATE_LIMITS",
            ),
            (&[("CHAT_HEARTBEAT_S", "0")], "CHAT_HEARTBEAT_S"),
            (&[("CHAT_ADMISSIONS", "4")], "CHAT_ADMISSIONS"),
            (&[("CHAT_REDIS_CONNECTIONS", "0")], "CHAT_REDIS_CONNECTIONS"),
            (&[("CHAT_QUEUE_FRAMES", "lots")], "CHAT_QUEUE_FRAMES"),
        ];
        for (pairs, var) in bad {
            assert_eq!(refused(with(pairs)).var, *var, "{pairs:?}");
        }
        let s = with(&[(
            "RATE_LIMITS",
            "swipes_per_minute=1/60, messages_per_minute=5/10",
        )])
        .expect("limits");
        assert_eq!(s.messages_limit, (5, Duration::from_secs(10)));
    }
}
