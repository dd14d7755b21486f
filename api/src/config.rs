//! Typed configuration, read once from the environment (names in `shared/API.md`).
//!
//! [`Settings::from_lookup`] takes any `name -> value` function, so tests build settings from a
//! map instead of mutating the process environment. Every bad value stops start-up with an error
//! naming the variable. In `APP_ENV=production`, secrets have no defaults and the development
//! values are refused.
use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Where and how to reach S3 (or MinIO, or any S3-compatible server).
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    /// `AWS_ENDPOINT_URL` (MinIO, a local server); unset: AWS itself.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
}

/// `APP_ENV`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    /// Developer machines and tests: dev secrets allowed, mail to the outbox folder.
    Local,
    /// Refuses development secrets.
    Production,
}

/// One rate limit: at most `count` events per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u64,
    pub period: Duration,
}

/// The named rate limits (`RATE_LIMITS` overrides entries as `name=count/seconds,...`).
#[derive(Clone, Debug)]
pub struct RateLimits(HashMap<&'static str, Limit>);

impl RateLimits {
    /// The defaults, documented in the README's limits table.
    pub const DEFAULTS: &'static [(&'static str, u64, u64)] = &[
        ("register_per_ip", 10, 3600),
        ("login_per_ip", 30, 300),
        ("login_per_account", 5, 900),
        ("magic_link_per_ip", 10, 3600),
        ("magic_link_per_email", 3, 900),
        ("refresh_per_ip", 120, 60),
        ("likes_per_day", 100, 86_400),
        ("swipes_per_minute", 60, 60),
        ("messages_per_minute", 30, 60),
        ("reports_per_day", 10, 86_400),
        ("uploads_per_hour", 20, 3600),
        ("exports_per_hour", 5, 3600),
    ];

    fn parse(overrides: Option<&str>) -> Result<Self, ConfigError> {
        let mut map: HashMap<&'static str, Limit> = Self::DEFAULTS
            .iter()
            .map(|&(name, count, secs)| {
                (
                    name,
                    Limit {
                        count,
                        period: Duration::from_secs(secs),
                    },
                )
            })
            .collect();
        for entry in overrides
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let err = || {
                bad(
                    "RATE_LIMITS",
                    format!("`{entry}` is not `name=count/seconds`"),
                )
            };
            let (name, rule) = entry.split_once('=').ok_or_else(err)?;
            let (count, secs) = rule.split_once('/').ok_or_else(err)?;
            let count: u64 = count.trim().parse().map_err(|_| err())?;
            let secs: u64 = secs.trim().parse().map_err(|_| err())?;
            if secs == 0 {
                return Err(err());
            }
            let key = Self::DEFAULTS
                .iter()
                .map(|d| d.0)
                .find(|known| *known == name.trim())
                .ok_or_else(|| {
                    bad(
                        "RATE_LIMITS",
                        format!("unknown limit name `{}`", name.trim()),
                    )
                })?;
            map.insert(
                key,
                Limit {
                    count,
                    period: Duration::from_secs(secs),
                },
            );
        }
        Ok(Self(map))
    }

    /// The limit called `name` (one of [`RateLimits::DEFAULTS`]).
    pub fn get(&self, name: &str) -> Limit {
        self.0.get(name).copied().unwrap_or(Limit {
            count: u64::MAX,
            period: Duration::from_secs(1),
        })
    }
}

/// Data-encryption keys: `DATA_ENCRYPTION_KEYS=kid:base64key,...` (32-byte keys). The first key
/// encrypts new values; the others only decrypt, which is how keys rotate.
pub struct DataKeys {
    pub keys: Vec<(u16, SecretBox<[u8; 32]>)>,
}

/// Everything a process needs to start.
pub struct Settings {
    pub app_env: AppEnv,
    pub database_url: SecretString,
    pub redis_url: SecretString,
    /// Prefix of every Redis key (`REDIS_PREFIX`, default `despacio:`).
    pub redis_prefix: String,
    pub api_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub worker_addr: SocketAddr,
    /// Where people reach the API (links in mails, cookie `Secure` flag).
    pub public_base_url: String,
    pub object_store_url: String,
    /// S3 settings when `OBJECT_STORE_URL` is `s3://bucket` (`AWS_*` variables).
    pub s3: Option<S3Settings>,
    /// Photos wait for a moderator before others see them (`PHOTO_REVIEW=before`), or are
    /// visible at once and may be rejected later (`after`, the default).
    pub photo_review_before: bool,
    /// Concurrent photo decodes/encodes (`PHOTO_WORKERS`, default: CPU count).
    pub photo_workers: usize,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub outbox_dir: PathBuf,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    /// Ed25519 private key, PKCS#8 DER.
    pub jwt_private_key_der: SecretBox<Vec<u8>>,
    pub jwt_key_id: String,
    pub data_keys: DataKeys,
    pub blind_index_key: SecretBox<[u8; 32]>,
    pub auto_migrate: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub reauth_window: Duration,
    pub magic_link_ttl: Duration,
    pub max_body_bytes: usize,
    pub password_hash_concurrency: usize,
    pub trust_forwarded_for: bool,
    pub log_format: LogFormat,
    /// Seconds between SSE heartbeats (`SSE_HEARTBEAT_S`, default 15).
    pub sse_heartbeat: Duration,
}

/// `LOG_FORMAT`: `json` (default) or `pretty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The seed of the development signing key. Public on purpose: refused in production.
use entities::auth::DEV_JWT_SEED;
const DEV_DATA_KEY_SEED: &str = "despacio-dev-data-encryption-key";
const DEV_BLIND_INDEX_SEED: &str = "despacio-dev-blind-index-key";

fn dev_key(seed: &str) -> [u8; 32] {
    Sha256::digest(seed.as_bytes()).into()
}

use entities::auth::ed25519_pkcs8;

/// A number of concurrent workers: 1 to `max`, default the CPU count.
fn concurrency(value: Option<String>, var: &'static str, max: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(var, format!("`{v}` is not a number between 1 and {max}"))),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let app_env = match get("APP_ENV").as_deref() {
            None | Some("local") | Some("development") | Some("test") => AppEnv::Local,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(bad(
                    "APP_ENV",
                    format!("`{other}` is neither `local` nor `production`"),
                ))
            }
        };
        let production = app_env == AppEnv::Production;

        let addr = |var: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            let value = get(var).unwrap_or_else(|| default.to_owned());
            value
                .parse()
                .map_err(|_| bad(var, format!("`{value}` is not a host:port address")))
        };
        let boolean = |var: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(var).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(other) => Err(bad(var, format!("`{other}` is not a boolean"))),
            }
        };
        let seconds =
            |var: &'static str, default: u64, max: u64| -> Result<Duration, ConfigError> {
                let value = match get(var) {
                    None => default,
                    Some(v) => v
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| bad(var, format!("`{v}` is not a number of seconds")))?,
                };
                if value == 0 || value > max {
                    return Err(bad(var, format!("must be between 1 and {max} seconds")));
                }
                Ok(Duration::from_secs(value))
            };

        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/despacio".to_owned());
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(bad("DATABASE_URL", "must be a postgres:// URL"));
        }
        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
            return Err(bad("REDIS_URL", "must be a redis:// or rediss:// URL"));
        }

        let public_base_url = get("PUBLIC_BASE_URL")
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !public_base_url.starts_with("http://") && !public_base_url.starts_with("https://") {
            return Err(bad(
                "PUBLIC_BASE_URL",
                "must start with http:// or https://",
            ));
        }

        let object_store_url =
            get("OBJECT_STORE_URL").unwrap_or_else(|| "./.data/photos".to_owned());
        let s3 = match object_store_url.strip_prefix("s3://") {
            None => None,
            Some(rest) => {
                let bucket = rest.trim_end_matches('/');
                if bucket.is_empty() || bucket.contains('/') {
                    return Err(bad(
                        "OBJECT_STORE_URL",
                        "an S3 URL is `s3://bucket` (no path)",
                    ));
                }
                let endpoint = get("AWS_ENDPOINT_URL");
                if let Some(e) = &endpoint {
                    if !e.starts_with("http://") && !e.starts_with("https://") {
                        return Err(bad("AWS_ENDPOINT_URL", "must be an http(s):// URL"));
                    }
                }
                Some(S3Settings {
                    bucket: bucket.to_owned(),
                    endpoint,
                    region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
                    access_key_id: get("AWS_ACCESS_KEY_ID").map(SecretString::from),
                    secret_access_key: get("AWS_SECRET_ACCESS_KEY").map(SecretString::from),
                })
            }
        };
        let photo_review_before = match get("PHOTO_REVIEW").as_deref() {
            None | Some("after") => false,
            Some("before") => true,
            Some(other) => {
                return Err(bad(
                    "PHOTO_REVIEW",
                    format!("`{other}` is neither `after` nor `before`"),
                ))
            }
        };
        let photo_workers = concurrency(get("PHOTO_WORKERS"), "PHOTO_WORKERS", 64)?;
        let smtp_url = get("SMTP_URL");
        if let Some(url) = &smtp_url {
            if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
                return Err(bad("SMTP_URL", "must be an smtp:// or smtps:// URL"));
            }
        }

        let tls = match (get("TLS_CERT"), get("TLS_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (var, path) in [("TLS_CERT", &cert), ("TLS_KEY", &key)] {
                    if !std::path::Path::new(path).is_file() {
                        return Err(bad(var, format!("no file at `{path}`")));
                    }
                }
                Some((PathBuf::from(cert), PathBuf::from(key)))
            }
            (Some(_), None) => return Err(bad("TLS_KEY", "must be set together with TLS_CERT")),
            (None, Some(_)) => return Err(bad("TLS_CERT", "must be set together with TLS_KEY")),
        };

        let cors_origins = get("CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();

        let rate_limits = RateLimits::parse(get("RATE_LIMITS").as_deref())?;

        // Secrets.
        let jwt_private_key_der = match get("JWT_PRIVATE_KEY") {
            Some(pem_text) => {
                let doc = pem::parse(pem_text.replace("\\n", "\n").as_bytes())
                    .map_err(|e| bad("JWT_PRIVATE_KEY", format!("not a PEM document: {e}")))?;
                if doc.tag() != "PRIVATE KEY" {
                    return Err(bad(
                        "JWT_PRIVATE_KEY",
                        "expected a PKCS#8 `PRIVATE KEY` (openssl genpkey -algorithm ed25519)",
                    ));
                }
                ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(doc.contents())
                    .map_err(|_| bad("JWT_PRIVATE_KEY", "not an Ed25519 PKCS#8 private key"))?;
                if doc.contents() == ed25519_pkcs8(&dev_key(DEV_JWT_SEED)).as_slice() && production
                {
                    return Err(bad(
                        "JWT_PRIVATE_KEY",
                        "the development key is refused in production",
                    ));
                }
                doc.contents().to_vec()
            }
            None if production => return Err(bad("JWT_PRIVATE_KEY", "required in production")),
            None => ed25519_pkcs8(&dev_key(DEV_JWT_SEED)),
        };
        let jwt_key_id = get("JWT_KEY_ID").unwrap_or_else(|| {
            let digest = Sha256::digest(&jwt_private_key_der);
            format!("ed25519-{}", hex_prefix(&digest, 8))
        });

        let data_keys = match get("DATA_ENCRYPTION_KEYS") {
            Some(value) => {
                let mut keys = Vec::new();
                for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    let (kid, key) = entry.split_once(':').ok_or_else(|| {
                        bad(
                            "DATA_ENCRYPTION_KEYS",
                            "entries are `kid:base64-of-32-bytes`",
                        )
                    })?;
                    let kid: u16 = kid.trim().parse().map_err(|_| {
                        bad(
                            "DATA_ENCRYPTION_KEYS",
                            format!("key id `{kid}` is not a number 0-65535"),
                        )
                    })?;
                    let key = decode_key32("DATA_ENCRYPTION_KEYS", key)?;
                    if production && key == dev_key(DEV_DATA_KEY_SEED) {
                        return Err(bad(
                            "DATA_ENCRYPTION_KEYS",
                            "the development key is refused in production",
                        ));
                    }
                    if keys.iter().any(|(k, _)| *k == kid) {
                        return Err(bad(
                            "DATA_ENCRYPTION_KEYS",
                            format!("key id {kid} appears twice"),
                        ));
                    }
                    keys.push((kid, SecretBox::new(Box::new(key))));
                }
                if keys.is_empty() {
                    return Err(bad("DATA_ENCRYPTION_KEYS", "no key given"));
                }
                DataKeys { keys }
            }
            None if production => {
                return Err(bad("DATA_ENCRYPTION_KEYS", "required in production"))
            }
            None => DataKeys {
                keys: vec![(1, SecretBox::new(Box::new(dev_key(DEV_DATA_KEY_SEED))))],
            },
        };
        let blind_index_key = match get("BLIND_INDEX_KEY") {
            Some(value) => {
                let key = decode_key32("BLIND_INDEX_KEY", &value)?;
                if production && key == dev_key(DEV_BLIND_INDEX_SEED) {
                    return Err(bad(
                        "BLIND_INDEX_KEY",
                        "the development key is refused in production",
                    ));
                }
                SecretBox::new(Box::new(key))
            }
            None if production => return Err(bad("BLIND_INDEX_KEY", "required in production")),
            None => SecretBox::new(Box::new(dev_key(DEV_BLIND_INDEX_SEED))),
        };

        let max_body_bytes = match get("MAX_BODY_BYTES") {
            None => 64 * 1024,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| {
                    bad(
                        "MAX_BODY_BYTES",
                        format!("`{v}` is not a size in bytes (at least 1024)"),
                    )
                })?,
        };
        let password_hash_concurrency = concurrency(
            get("PASSWORD_HASH_CONCURRENCY"),
            "PASSWORD_HASH_CONCURRENCY",
            256,
        )?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("`{other}` is neither `json` nor `pretty`"),
                ))
            }
        };

        Ok(Self {
            app_env,
            database_url: SecretString::from(database_url),
            redis_url: SecretString::from(redis_url),
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "despacio:".to_owned()),
            api_addr: addr("API_ADDR", "127.0.0.1:8080")?,
            gateway_addr: addr("GATEWAY_ADDR", "127.0.0.1:8081")?,
            worker_addr: addr("WORKER_ADDR", "127.0.0.1:8082")?,
            public_base_url,
            object_store_url,
            s3,
            photo_review_before,
            photo_workers,
            smtp_url: smtp_url.map(SecretString::from),
            mail_from: get("MAIL_FROM")
                .unwrap_or_else(|| "DESPACIO <no-reply@despacio.app>".to_owned()),
            outbox_dir: PathBuf::from(get("OUTBOX_DIR").unwrap_or_else(|| "./.outbox".to_owned())),
            tls,
            cors_origins,
            rate_limits,
            jwt_private_key_der: SecretBox::new(Box::new(jwt_private_key_der)),
            jwt_key_id,
            data_keys,
            blind_index_key,
            auto_migrate: boolean("AUTO_MIGRATE", !production)?,
            access_token_ttl: seconds("ACCESS_TOKEN_TTL_S", 900, 900)?,
            refresh_token_ttl: seconds("REFRESH_TOKEN_TTL_S", 30 * 86_400, 365 * 86_400)?,
            reauth_window: seconds("REAUTH_WINDOW_S", 300, 3600)?,
            magic_link_ttl: seconds("MAGIC_LINK_TTL_S", 900, 900)?,
            max_body_bytes,
            password_hash_concurrency,
            trust_forwarded_for: boolean("TRUST_FORWARDED_FOR", false)?,
            log_format,
            sse_heartbeat: seconds("SSE_HEARTBEAT_S", 15, 300)?,
        })
    }

    /// Whether cookies must carry `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }

    /// The database URL, for the connection pool.
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

fn decode_key32(var: &'static str, value: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = B64
        .decode(value.trim())
        .map_err(|_| bad(var, "not valid base64 (openssl rand -base64 32)"))?;
    bytes
        .try_into()
        .map_err(|_| bad(var, "a key must be exactly 32 bytes"))
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect()
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

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn local_defaults_start_without_any_variable() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.app_env, AppEnv::Local);
        assert_eq!(s.api_addr.to_string(), "127.0.0.1:8080");
        assert!(s.auto_migrate);
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.rate_limits.get("login_per_account").count, 5);
    }

    #[test]
    fn production_refuses_missing_secrets_and_names_the_variable() {
        let err = refused(settings(&[("APP_ENV", "production")]));
        assert_eq!(err.var, "JWT_PRIVATE_KEY");
    }

    #[test]
    fn production_refuses_the_development_keys() {
        let dev_data = format!("1:{}", B64.encode(dev_key(DEV_DATA_KEY_SEED)));
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", ed25519_pkcs8(&[7u8; 32])));
        let err = refused(settings(&[
            ("APP_ENV", "production"),
            ("JWT_PRIVATE_KEY", &pem_text),
            ("DATA_ENCRYPTION_KEYS", &dev_data),
        ]));
        assert_eq!(err.var, "DATA_ENCRYPTION_KEYS");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("API_ADDR", "not-an-address"),
            ("DATABASE_URL", "mysql://x"),
            ("RATE_LIMITS", "login_per_ip=ten/60"),
            ("RATE_LIMITS", "nonsense=1/60"),
            ("ACCESS_TOKEN_TTL_S", "3600"),
            ("AUTO_MIGRATE", "maybe"),
            ("APP_ENV", "staging"),
            ("BLIND_INDEX_KEY", "c2hvcnQ="),
        ] {
            let err = refused(settings(&[(var, value)]));
            assert_eq!(err.var, var, "{var}={value}");
        }
    }

    #[test]
    fn rate_limit_overrides_replace_only_the_named_limits() {
        let s =
            settings(&[("RATE_LIMITS", "login_per_ip=3/10, register_per_ip=1/60")]).expect("ok");
        assert_eq!(
            s.rate_limits.get("login_per_ip"),
            Limit {
                count: 3,
                period: Duration::from_secs(10)
            }
        );
        assert_eq!(s.rate_limits.get("register_per_ip").count, 1);
        assert_eq!(s.rate_limits.get("magic_link_per_ip").count, 10);
    }
}
