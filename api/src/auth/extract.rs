//! The bearer security scheme every authenticated operation declares.
//!
//! The checker verifies the JWT (EdDSA, our `kid`, expiry, issuer, audience) and then asks Redis
//! whether the token's session was revoked (logout, session revoked, refresh-token reuse,
//! moderation): revocation takes effect at once instead of when the token expires.
//! Browsers that hold the `despacio_access` cookie instead of a bearer header are handled by the
//! cookie middleware in `auth::cookies`, which turns the cookie into a bearer header after its CSRF
//! check.
use chrono::{DateTime, Utc};
use entities::auth::Role;
use fred::prelude::KeysInterface;
use poem::Request;
use poem_openapi::{auth::Bearer, SecurityScheme};
use uuid::Uuid;

use crate::{error::AppError, state::AppState};

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    /// When the person last proved who they are.
    pub auth_time: DateTime<Utc>,
}

/// An access token from `POST /v1/auth/login` (or register, magic-link verify, refresh), sent as
/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req.data::<AppState>().ok_or_else(|| {
        poem::Error::from_string(
            "application state missing",
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )
    })?;
    authenticate(state, &bearer.token)
        .await
        .map_err(|e| poem::Error::from_response(poem::IntoResponse::into_response(e)))
}

/// Verifies an access token and that its session is still alive.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, AppError> {
    let claims = state.jwt.verify(token)?;
    // One round trip: the session's revocation, and the account's erasure (which refuses every
    // token of the person at once, even one from a session opened while it runs).
    let revoked: i64 = state
        .redis
        .exists(vec![
            state.keys.revoked_session(&claims.sid),
            state.keys.erased_user(&claims.sub),
        ])
        .await?;
    if revoked > 0 {
        return Err(AppError::Unauthorized {
            kind: "session-revoked",
            detail: "this session has been signed out",
        });
    }
    Ok(Caller {
        user_id: claims.sub,
        session_id: claims.sid,
        role: claims.role,
        auth_time: DateTime::from_timestamp(claims.auth_time, 0).unwrap_or_default(),
    })
}

impl Caller {
    /// Sensitive operations need a login or re-authentication within `REAUTH_WINDOW_S`.
    pub fn require_recent_auth(&self, state: &AppState) -> Result<(), AppError> {
        let window = chrono::Duration::from_std(state.settings.reauth_window).unwrap_or_default();
        if Utc::now() - self.auth_time > window {
            return Err(AppError::Forbidden {
                kind: "reauthentication-required",
                detail: "confirm your password with POST /v1/auth/reauthenticate, then retry"
                    .into(),
                until: None,
            });
        }
        Ok(())
    }
}
