//! Opaque, tamper-evident pagination cursors: `base64url(json) . base64url(hmac)`. A client can
//! only hand back a cursor the server made; anything else is a 400 `invalid-cursor` naming the
//! `cursor` parameter.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use serde::{de::DeserializeOwned, Serialize};

use crate::{crypto::FieldCipher, error::AppError};

fn invalid() -> AppError {
    AppError::BadRequest {
        detail: "the cursor is invalid; use a next_cursor the API returned".into(),
        field: Some("cursor".into()),
    }
}

/// Encodes `value` as a signed cursor for the list called `kind`.
pub fn encode<T: Serialize>(cipher: &FieldCipher, kind: &str, value: &T) -> String {
    let payload = B64URL.encode(serde_json::to_vec(value).unwrap_or_default());
    let mac = cipher.mac(&format!("cursor:{kind}"), payload.as_bytes());
    format!("{payload}.{}", B64URL.encode(&mac[..16]))
}

/// Decodes a cursor made by [`encode`] for the same list.
pub fn decode<T: DeserializeOwned>(
    cipher: &FieldCipher,
    kind: &str,
    cursor: &str,
) -> Result<T, AppError> {
    let (payload, mac) = cursor.split_once('.').ok_or_else(invalid)?;
    let mac = B64URL.decode(mac).map_err(|_| invalid())?;
    let expected = cipher.mac(&format!("cursor:{kind}"), payload.as_bytes());
    if mac.len() != 16 || !crate::crypto::constant_time_eq(&mac, &expected[..16]) {
        return Err(invalid());
    }
    let json = B64URL.decode(payload).map_err(|_| invalid())?;
    serde_json::from_slice(&json).map_err(|_| invalid())
}

/// Keyset pagination: the query fetched `limit + 1` rows; keep `limit` and, when there were more,
/// make the next cursor from the last kept row.
pub fn paginate<R, C: Serialize>(
    cipher: &FieldCipher,
    kind: &str,
    rows: &mut Vec<R>,
    limit: u64,
    key: impl Fn(&R) -> C,
) -> Option<String> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    match (more, rows.last()) {
        (true, Some(last)) => Some(encode(cipher, kind, &key(last))),
        _ => None,
    }
}

/// Checks `limit` (1 to `max`, default `default`).
pub fn limit(value: Option<u32>, default: u32, max: u32) -> Result<u64, AppError> {
    match value {
        None => Ok(default.into()),
        Some(n) if (1..=max).contains(&n) => Ok(n.into()),
        Some(_) => Err(AppError::BadRequest {
            detail: format!("limit must be between 1 and {max}"),
            field: Some("limit".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let cipher =
            FieldCipher::from_settings(&Settings::from_lookup(|_| None).expect("defaults"))
                .expect("keys");
        let cursor = encode(&cipher, "discovery", &(3, 12.5));
        assert_eq!(
            decode::<(i32, f64)>(&cipher, "discovery", &cursor).expect("valid"),
            (3, 12.5)
        );
        assert!(
            decode::<(i32, f64)>(&cipher, "resonances", &cursor).is_err(),
            "bound to its list"
        );
        let forged = format!(
            "{}.{}",
            B64URL.encode(b"[3,99.0]"),
            cursor.split('.').nth(1).expect("mac")
        );
        assert!(decode::<(i32, f64)>(&cipher, "discovery", &forged).is_err());
        assert!(decode::<(i32, f64)>(&cipher, "discovery", "garbage").is_err());
    }
}
