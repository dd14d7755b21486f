//! Access-token claims and roles: the API signs them, the gateway and partners verify them with
//! the public key from `/.well-known/jwks.json`.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Issuer (`iss`) of every access token.
pub const ISSUER: &str = "despacio";
/// Audience (`aud`) of every access token.
pub const AUDIENCE: &str = "despacio-api";

/// The seed of the development signing key (SHA-256 of this text is the Ed25519 seed). Public on
/// purpose: the API and the gateway refuse it in production.
pub const DEV_JWT_SEED: &str = "despacio-dev-jwt-signing-key";

/// The development Ed25519 seed (32 bytes).
pub fn dev_jwt_seed() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(DEV_JWT_SEED.as_bytes()).into()
}

/// Wraps a raw Ed25519 seed in a PKCS#8 v1 document (RFC 8410), the form signing libraries take.
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// A person's role; each role includes the powers of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Moderator,
    Admin,
}

impl Role {
    /// The name stored in `users.role` and carried in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name; anything unknown is `None`.
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of a DESPACIO access token (EdDSA-signed JWT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: Uuid,
    /// The session (refresh-token family) this token belongs to.
    pub sid: Uuid,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// When the person last proved who they are (password, magic link, registration or
    /// re-authentication); sensitive operations require it to be recent.
    pub auth_time: i64,
    /// Unique token id.
    pub jti: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order_by_power() {
        for role in [Role::User, Role::Moderator, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(Role::Admin > Role::Moderator && Role::Moderator > Role::User);
        assert_eq!(Role::parse("root"), None);
    }
}
