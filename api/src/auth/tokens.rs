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
                ErrorKind::ExpiredSignature => AppError::Unauthorized {
                    kind: "token-expired",
                    detail: "the access token has expired; refresh it",
                },
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
