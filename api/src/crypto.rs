//! Field-level encryption at rest, blind indexes and token hashing.
//!
//! A ciphertext is `key id (2 bytes, big-endian) || nonce (12 bytes) || AES-256-GCM output`. The
//! key id lets old rows stay readable after a new key becomes the active one. Each value is bound
//! to its place with associated data (for instance `users.email:<user id>`), so a ciphertext copied
//! into another row or column does not decrypt.
//!
//! Equality lookups on an encrypted column (log in by email) go through a *blind index*: an
//! HMAC-SHA256 of the normalised value under a separate key. Opaque tokens (refresh tokens, magic
//! links) carry 256 bits of randomness, so a plain SHA-256 is enough to store them.
use std::collections::HashMap;

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::Settings;

/// A stored value could not be decrypted (unknown key id, tampered, or moved to another row).
#[derive(Debug, thiserror::Error)]
#[error("a stored ciphertext could not be decrypted")]
pub struct DecryptError;

/// Encrypts and decrypts sensitive columns; computes blind indexes.
pub struct FieldCipher {
    active: (u16, Aes256Gcm),
    keys: HashMap<u16, Aes256Gcm>,
    blind_index: Hmac<Sha256>,
}

impl FieldCipher {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let keys: HashMap<u16, Aes256Gcm> = settings
            .data_keys
            .keys
            .iter()
            .map(|(kid, key)| (*kid, Aes256Gcm::new(key.expose_secret().into())))
            .collect();
        let (kid, key) = settings
            .data_keys
            .keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("DATA_ENCRYPTION_KEYS holds no key"))?;
        let active = (*kid, Aes256Gcm::new(key.expose_secret().into()));
        let blind_index =
            <Hmac<Sha256> as Mac>::new_from_slice(settings.blind_index_key.expose_secret())?;
        Ok(Self {
            active,
            keys,
            blind_index,
        })
    }

    /// Encrypts `plaintext` with the active key, bound to `context`.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // AES-GCM encryption only fails for inputs over 64 GiB.
        let sealed = self
            .active
            .1
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(2 + 12 + sealed.len());
        out.extend_from_slice(&self.active.0.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value written by [`FieldCipher::encrypt`] with the same `context`.
    pub fn decrypt(&self, stored: &[u8], context: &str) -> Result<Vec<u8>, DecryptError> {
        if stored.len() < 2 + 12 + 16 {
            return Err(DecryptError);
        }
        let kid = u16::from_be_bytes([stored[0], stored[1]]);
        let cipher = self.keys.get(&kid).ok_or(DecryptError)?;
        cipher
            .decrypt(
                Nonce::from_slice(&stored[2..14]),
                Payload {
                    msg: &stored[14..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DecryptError)
    }

    /// Decrypts a UTF-8 string.
    pub fn decrypt_string(&self, stored: &[u8], context: &str) -> Result<String, DecryptError> {
        String::from_utf8(self.decrypt(stored, context)?).map_err(|_| DecryptError)
    }

    /// The blind index of an already-normalised value.
    pub fn blind_index(&self, normalized: &str) -> Vec<u8> {
        let mut mac = self.blind_index.clone();
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl FieldCipher {
    /// A MAC of `data` under the blind-index key, separated by `domain` (cursors, ...).
    pub fn mac(&self, domain: &str, data: &[u8]) -> Vec<u8> {
        let mut mac = self.blind_index.clone();
        mac.update(b"\0mac\0");
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Compares without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new opaque token: 32 random bytes, base64url without padding (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// SHA-256 of an opaque token, as stored in the database.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::from_settings(&Settings::from_lookup(|_| None).expect("defaults"))
            .expect("keys")
    }

    #[test]
    fn encrypts_round_trip_and_hides_the_plaintext() {
        let c = cipher();
        let sealed = c.encrypt(b"ana@example.com", "users.email:1");
        assert!(!sealed.windows(7).any(|w| w == b"example"));
        assert_eq!(
            c.decrypt_string(&sealed, "users.email:1")
                .expect("decrypts"),
            "ana@example.com"
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
        let c = cipher();
        let sealed = c.encrypt(b"secret", "profiles.bio:a");
        assert!(c.decrypt(&sealed, "profiles.bio:b").is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let c = cipher();
        let mut sealed = c.encrypt(b"secret", "x");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(c.decrypt(&sealed, "x").is_err());
        assert!(c.decrypt(&[0, 1, 2], "x").is_err());
    }

    #[test]
    fn two_encryptions_differ_but_blind_indexes_match() {
        let c = cipher();
        assert_ne!(c.encrypt(b"a", "x"), c.encrypt(b"a", "x"));
        assert_eq!(c.blind_index("a@b.c"), c.blind_index("a@b.c"));
        assert_ne!(c.blind_index("a@b.c"), c.blind_index("a@b.d"));
    }

    #[test]
    fn tokens_have_256_bits_and_hash_stably() {
        let t = new_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token());
        assert_eq!(hash_token(&t), hash_token(&t));
    }
}
