//! Access tokens: EdDSA (Ed25519) JWTs with a `kid` header, verified with the algorithm pinned.
//! The public key is published as a JWK set at `/.well-known/jwks.json` so the gateway and
//! partners verify tokens without any secret.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use entities::auth::{AccessClaims, AUDIENCE, ISSUER};
use jsonwebtoken::{
    decode, decode_header, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header,
    Validation,
};
use poem_openapi::Object;
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::ExposeSecret;

use crate::{config::Settings, error::AppError};

/// The signing key and everything needed to verify with it.
pub struct JwtKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
    validation: Validation,
    /// Tokens whose signature was already verified, with their claims: an app sends the same
    /// access token on every request for up to 15 minutes, and an Ed25519 verification is about
    /// a tenth of the API's CPU per discovery page. Only exact token strings are cached; expiry
    /// is checked again on every hit, and revocation is never cached (Redis, every request).
    verified: std::sync::Mutex<std::collections::HashMap<String, AccessClaims>>,
}

/// Verified tokens kept at most (about 4 MiB); the cache is emptied of expired tokens, or
/// entirely, when it is full.
const VERIFIED_CAPACITY: usize = 10_000;

fn expired() -> AppError {
    AppError::Unauthorized {
        kind: "token-expired",
        detail: "the access token has expired; refresh it",
    }
}

/// A JSON Web Key (RFC 8037 OKP key).
#[derive(Object, Debug, Clone)]
pub struct Jwk {
    /// Key type: always `OKP`.
    pub kty: String,
    /// Curve: always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, matched against the token header's `kid`.
    pub kid: String,
    /// Algorithm: always `EdDSA`.
    pub alg: String,
    /// Usage: always `sig`.
    #[oai(rename = "use")]
    pub use_: String,
}

/// A JWK set.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl poem_openapi::types::Example for Jwks {
    fn example() -> Self {
        Jwks {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
                kid: "ed25519-2d85fe39d1654c89".into(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            }],
        }
    }
}

impl JwtKeys {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let der = settings.jwt_private_key_der.expose_secret();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| anyhow::anyhow!("JWT_PRIVATE_KEY is not an Ed25519 key"))?;
        let public_x = B64URL.encode(pair.public_key().as_ref());
        let decoding = DecodingKey::from_ed_components(&public_x)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            kid: settings.jwt_key_id.clone(),
            encoding: EncodingKey::from_ed_der(der),
            decoding,
            public_x,
            validation,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(encode(&header, claims, &self.encoding)?)
    }

    /// Verifies a token: our key id, EdDSA only, signature, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AppError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] at `now` (Unix seconds) for the cache's expiry check.
    fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, AppError> {
        let leeway = self.validation.leeway as i64;
        if let Some(claims) = self.cached(token) {
            if claims.exp + leeway < now {
                return Err(expired());
            }
            return Ok(claims);
        }
        let claims = self.verify_signature(token)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= VERIFIED_CAPACITY {
            cache.retain(|_, c| c.exp + leeway >= now);
            if cache.len() >= VERIFIED_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn cached(&self, token: &str) -> Option<AccessClaims> {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    fn verify_signature(&self, token: &str) -> Result<AccessClaims, AppError> {
        let invalid = AppError::Unauthorized {
            kind: "unauthorized",
            detail: "the access token is invalid",
        };
        let header = decode_header(token).map_err(|_| invalid)?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(AppError::Unauthorized {
                kind: "unauthorized",
                detail: "the access token is invalid",
            });
        }
        decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => expired(),
                _ => AppError::Unauthorized {
                    kind: "unauthorized",
                    detail: "the access token is invalid",
                },
            })
    }

    /// The public key set.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: self.public_x.clone(),
                kid: self.kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        let settings = Settings::from_lookup(|_| None).expect("development settings");
        JwtKeys::from_settings(&settings).expect("keys")
    }

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: uuid::Uuid::new_v4(),
            sid: uuid::Uuid::new_v4(),
            role: entities::auth::Role::User,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: exp - 900,
            exp,
            auth_time: exp - 900,
            jti: uuid::Uuid::new_v4(),
        }
    }

    #[test]
    fn a_cached_token_still_expires() {
        let keys = keys();
        let exp = chrono::Utc::now().timestamp() + 600;
        let token = keys.issue(&claims(exp)).expect("token");
        // Verified once (signature), then answered from the cache.
        assert_eq!(keys.verify_at(&token, exp - 300).expect("valid").exp, exp);
        assert!(keys.cached(&token).is_some());
        assert_eq!(keys.verify_at(&token, exp).expect("within leeway").exp, exp);
        match keys.verify_at(&token, exp + 60) {
            Err(AppError::Unauthorized { kind, .. }) => assert_eq!(kind, "token-expired"),
            other => panic!("expected token-expired, got {other:?}"),
        }
    }

    #[test]
    fn a_tampered_token_is_never_cached() {
        let keys = keys();
        let exp = chrono::Utc::now().timestamp() + 600;
        let token = keys.issue(&claims(exp)).expect("token");
        // Change one character in the middle of the signature.
        let at = token.len() - 20;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(keys.verify(&forged).is_err());
        assert!(keys.cached(&forged).is_none());
        assert!(
            keys.verify(&forged).is_err(),
            "still refused the second time"
        );
    }
}
