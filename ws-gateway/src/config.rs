//! The gateway's settings, from the same environment names as the API (`shared/API.md`).
use std::net::SocketAddr;

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

pub struct Settings {
    pub gateway_addr: SocketAddr,
    pub redis_url: String,
    pub redis_prefix: String,
    pub json_logs: bool,
}

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let addr = get("GATEWAY_ADDR").unwrap_or_else(|| "127.0.0.1:8081".into());
        let gateway_addr = addr.parse().map_err(|_| ConfigError {
            var: "GATEWAY_ADDR",
            message: format!("`{addr}` is not a host:port address"),
        })?;
        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
            return Err(ConfigError {
                var: "REDIS_URL",
                message: "must be a redis:// or rediss:// URL".into(),
            });
        }
        let json_logs = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => true,
            Some("pretty") => false,
            Some(other) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    message: format!("`{other}` is neither `json` nor `pretty`"),
                })
            }
        };
        Ok(Self {
            gateway_addr,
            redis_url,
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "despacio:".into()),
            json_logs,
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

    #[test]
    fn defaults_and_named_errors() {
        let s = Settings::from_lookup(|_| None).expect("defaults");
        assert_eq!(s.gateway_addr.to_string(), "127.0.0.1:8081");
        let err = refused(Settings::from_lookup(|k| {
            (k == "GATEWAY_ADDR").then(|| "nope".to_string())
        }));
        assert_eq!(err.var, "GATEWAY_ADDR");
    }
}
