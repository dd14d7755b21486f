//! `/v1/auth/...` and `/.well-known/jwks.json`.
use chrono::{DateTime, Utc};
use poem::{web::cookie::CookieJar, Request};
use poem_openapi::{param::Path, payload::Json, types::Example, ApiResponse, Object, OpenApi};
use secrecy::SecretString;
use uuid::Uuid;
use validator::Validate;

use super::{
    cookies::{self, REFRESH_COOKIE},
    extract::BearerAuth,
    service::{self, ClientInfo, IssuedTokens},
};
use crate::{
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    state::AppState,
    validation::{check, printable},
};

/// Registration: an email and a password (8 to 128 characters, any characters).
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct RegisterRequest {
    /// The account's email address (case-insensitive).
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    pub email: String,
    /// 8 to 128 characters; no composition rules (NIST SP 800-63B).
    #[validate(length(min = 8, max = 128))]
    #[oai(write_only)]
    pub password: String,
    /// Optional first name shown to others; can be set later in the profile.
    #[validate(length(min = 1, max = 50), custom(function = "printable"))]
    #[oai(nullable)]
    pub display_name: Option<String>,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "ana@example.com".into(),
            password: "slow-and-steady-2026".into(),
            display_name: Some("Ana".into()),
        }
    }
}

/// Email and password.
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct LoginRequest {
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    pub email: String,
    #[validate(length(min = 1, max = 128))]
    #[oai(write_only)]
    pub password: String,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: "ana@example.com".into(),
            password: "slow-and-steady-2026".into(),
        }
    }
}

/// Ask for a sign-in link by email.
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct MagicLinkRequest {
    #[validate(email(message = "must be a valid email address"), length(max = 254))]
    pub email: String,
}

impl Example for MagicLinkRequest {
    fn example() -> Self {
        Self {
            email: "ana@example.com".into(),
        }
    }
}

/// The token from the sign-in link (the `token` query parameter of the link).
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct MagicLinkVerifyRequest {
    #[validate(length(min = 20, max = 128))]
    pub token: String,
}

impl Example for MagicLinkVerifyRequest {
    fn example() -> Self {
        Self {
            token: "q3Jw0cN7a2nq9mE4bH1vXyZp5tLkR8sDfG6uVwA2oQe".into(),
        }
    }
}

/// A refresh token; browsers send `{}` and rely on the `despacio_refresh` cookie plus the
/// `X-CSRF-Token` header.
#[derive(Object, Validate, Default)]
#[oai(example, deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 20, max = 128))]
    #[oai(nullable)]
    pub refresh_token: Option<String>,
}

impl Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some("bW9yZS10aGFuLTI1Ni1iaXRzLW9mLXJhbmRvbW5lc3M".into()),
        }
    }
}

/// The current password, to prove it is still you before a sensitive operation.
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct ReauthenticateRequest {
    #[validate(length(min = 1, max = 128))]
    #[oai(write_only)]
    pub password: String,
}

impl Example for ReauthenticateRequest {
    fn example() -> Self {
        Self {
            password: "slow-and-steady-2026".into(),
        }
    }
}

/// Tokens for an authenticated session.
#[derive(Object)]
#[oai(example)]
pub struct TokenResponse {
    /// A JWT (EdDSA) to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires (at most 900).
    pub expires_in: u64,
    /// Single-use token for `POST /v1/auth/refresh`. Absent for browsers, which receive it only
    /// as the HttpOnly `despacio_refresh` cookie.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// Seconds until the session expires (refreshing does not extend it; log in again then).
    #[oai(skip_serializing_if_is_none)]
    pub refresh_expires_in: Option<u64>,
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// For magic-link sign-in: whether this sign-in created the account.
    #[oai(skip_serializing_if_is_none)]
    pub account_created: Option<bool>,
}

impl Example for TokenResponse {
    fn example() -> Self {
        Self {
            access_token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6ImVkMjU1MTktMWEyYiJ9.eyJzdWIiOiIuLi4ifQ.c2ln".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: Some("bW9yZS10aGFuLTI1Ni1iaXRzLW9mLXJhbmRvbW5lc3M".into()),
            refresh_expires_in: Some(2_592_000),
            user_id: Uuid::nil(),
            session_id: Uuid::nil(),
            account_created: None,
        }
    }
}

/// An accepted request.
#[derive(Object)]
#[oai(example)]
pub struct Accepted {
    pub message: String,
}

impl Example for Accepted {
    fn example() -> Self {
        Self {
            message: "if this address can receive mail, a sign-in link is on its way".into(),
        }
    }
}

/// One signed-in device.
#[derive(Object)]
#[oai(example)]
pub struct SessionView {
    pub id: Uuid,
    /// The `User-Agent` seen at sign-in.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// The IP address last seen.
    #[oai(nullable)]
    pub ip: Option<String>,
    /// `password`, `magic_link` or `registration`.
    pub auth_method: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl Example for SessionView {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        Self {
            id: Uuid::nil(),
            user_agent: Some("DespacioApp/1.4 (iPhone; iOS 19.1)".into()),
            ip: Some("203.0.113.7".into()),
            auth_method: "password".into(),
            created_at: at,
            last_used_at: at,
            expires_at: at + chrono::Duration::days(30),
            current: true,
        }
    }
}

/// My live sessions, most recently used first.
#[derive(Object)]
#[oai(example)]
pub struct SessionList {
    pub items: Vec<SessionView>,
    /// Always null: the list is short and complete.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for SessionList {
    fn example() -> Self {
        Self {
            items: vec![SessionView::example()],
            next_cursor: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum Created {
    /// The account exists and is signed in.
    #[oai(status = 201)]
    Created(Json<TokenResponse>),
}

#[derive(ApiResponse)]
pub enum Tokens {
    /// Signed in.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
}

#[derive(ApiResponse)]
pub enum AcceptedResponse {
    /// Accepted.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

error_set!(RegisterErrors: [400, 409, 413, 422, 429]);
error_set!(LoginErrors: [400, 401, 403, 413, 422, 429]);
error_set!(MagicLinkErrors: [400, 413, 422, 429]);
error_set!(RefreshErrors: [400, 401, 403, 422, 429]);
error_set!(AuthedErrors: [401, 403]);
error_set!(RevokeErrors: [400, 401, 403, 404]);
error_set!(ReauthErrors: [400, 401, 403, 422, 429]);

/// Client details for sessions and rate limits.
pub fn client_info(state: &AppState, req: &Request) -> ClientInfo {
    let forwarded = state
        .settings
        .trust_forwarded_for
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
        })
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned());
    let ip = forwarded.unwrap_or_else(|| {
        req.remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    });
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect());
    ClientInfo { user_agent, ip }
}

/// Browsers get cookies and no refresh token in the body; other clients get it in the body.
fn deliver(
    state: &AppState,
    req: &Request,
    jar: &CookieJar,
    tokens: IssuedTokens,
    created: Option<bool>,
) -> TokenResponse {
    let browser = cookies::is_browser(req);
    if browser {
        cookies::set_session_cookies(
            jar,
            &state.settings,
            &tokens.access_token,
            &tokens.refresh_token,
        );
    }
    TokenResponse {
        access_token: tokens.access_token,
        token_type: "Bearer".into(),
        expires_in: tokens.expires_in,
        refresh_token: (!browser).then_some(tokens.refresh_token),
        refresh_expires_in: Some(tokens.refresh_expires_in),
        user_id: tokens.user_id,
        session_id: tokens.session_id,
        account_created: created,
    }
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Creates an account with an email and a password and signs it in. Rate-limited per IP
    /// (`register_per_ip`). An email already in use answers 409 `email-taken`.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        jar: &CookieJar,
        body: Json<RegisterRequest>,
    ) -> Result<Created, ApiError<RegisterErrors>> {
        check(&body.0)?;
        let client = client_info(&state, req);
        let body = body.0;
        let tokens = service::register(
            &state,
            &body.email,
            SecretString::from(body.password),
            body.display_name,
            &client,
        )
        .await?;
        Ok(Created::Created(Json(deliver(
            &state, req, jar, tokens, None,
        ))))
    }

    /// Log in with email and password
    ///
    /// A wrong email and a wrong password give the same 401 `invalid-credentials`, after the same
    /// work. Failed attempts are limited per account (`login_per_account`) and all attempts per
    /// IP (`login_per_ip`). Suspended and banned accounts get 403 `account-suspended` /
    /// `account-banned`.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        jar: &CookieJar,
        body: Json<LoginRequest>,
    ) -> Result<Tokens, ApiError<LoginErrors>> {
        check(&body.0)?;
        let client = client_info(&state, req);
        let tokens = service::login(
            &state,
            &body.0.email,
            SecretString::from(body.0.password),
            &client,
        )
        .await?;
        Ok(Tokens::Ok(Json(deliver(&state, req, jar, tokens, None))))
    }

    /// Send a sign-in link
    ///
    /// Mails a single-use sign-in link valid 15 minutes. The answer is the same whether or not
    /// the address has an account; following the link for an unknown address creates the
    /// account. Without `SMTP_URL` the mail is written to the outbox folder.
    #[oai(
        path = "/magic-link",
        method = "post",
        operation_id = "requestMagicLink"
    )]
    async fn magic_link(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        body: Json<MagicLinkRequest>,
    ) -> Result<AcceptedResponse, ApiError<MagicLinkErrors>> {
        check(&body.0)?;
        let client = client_info(&state, req);
        service::request_magic_link(&state, &body.0.email, &client).await?;
        Ok(AcceptedResponse::Accepted(Json(Accepted::example())))
    }

    /// Sign in with a link's token
    ///
    /// Consumes the token from a sign-in link (once; 401 `invalid-magic-link` when unknown,
    /// used or expired) and signs in, creating the account if the email had none
    /// (`account_created`).
    #[oai(
        path = "/magic-link/verify",
        method = "post",
        operation_id = "verifyMagicLink"
    )]
    async fn verify_magic_link(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        jar: &CookieJar,
        body: Json<MagicLinkVerifyRequest>,
    ) -> Result<Tokens, ApiError<LoginErrors>> {
        check(&body.0)?;
        let client = client_info(&state, req);
        let (tokens, created) = service::verify_magic_link(&state, &body.0.token, &client).await?;
        Ok(Tokens::Ok(Json(deliver(
            &state,
            req,
            jar,
            tokens,
            Some(created),
        ))))
    }

    /// Exchange a refresh token
    ///
    /// Returns a new access token and a new refresh token; the presented one is spent. Presenting
    /// a spent token again revokes the whole session (401 `refresh-token-reused`). Browsers send
    /// no body: the `despacio_refresh` cookie is used, and the `X-CSRF-Token` header must echo
    /// the `despacio_csrf` cookie.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        jar: &CookieJar,
        body: Json<RefreshRequest>,
    ) -> Result<Tokens, ApiError<RefreshErrors>> {
        let body = body.0;
        check(&body)?;
        let presented = match body.refresh_token {
            Some(token) => token,
            None => {
                let cookie = jar
                    .get(REFRESH_COOKIE)
                    .map(|c| c.value_str().to_owned())
                    .filter(|v| !v.is_empty());
                let Some(token) = cookie else {
                    return Err(AppError::bad_field(
                        "refresh_token",
                        "send `refresh_token` in the body or the despacio_refresh cookie",
                    )
                    .into());
                };
                if !cookies::csrf_ok(req) {
                    return Err(cookies::csrf_failed().into());
                }
                token
            }
        };
        let client = client_info(&state, req);
        let tokens = service::refresh(&state, &presented, &client).await?;
        Ok(Tokens::Ok(Json(deliver(&state, req, jar, tokens, None))))
    }

    /// Prove it is still you
    ///
    /// Checks the password again and returns an access token with a fresh authentication time,
    /// required within `REAUTH_WINDOW_S` (default 300 s) by sensitive operations such as
    /// `DELETE /v1/me`. No new refresh token is issued.
    #[oai(
        path = "/reauthenticate",
        method = "post",
        operation_id = "reauthenticate"
    )]
    async fn reauthenticate(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
        body: Json<ReauthenticateRequest>,
    ) -> Result<Tokens, ApiError<ReauthErrors>> {
        check(&body.0)?;
        let caller = auth.0;
        let (access_token, expires_in) = service::reauthenticate(
            &state,
            caller.user_id,
            caller.session_id,
            SecretString::from(body.0.password),
        )
        .await?;
        Ok(Tokens::Ok(Json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token: None,
            refresh_expires_in: None,
            user_id: caller.user_id,
            session_id: caller.session_id,
            account_created: None,
        })))
    }

    /// Log out
    ///
    /// Ends the current session: its refresh token stops working and its access tokens are
    /// refused from now on. Browser cookies are cleared.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
        jar: &CookieJar,
    ) -> Result<NoContent, ApiError<AuthedErrors>> {
        use sea_orm::ColumnTrait;
        service::revoke_sessions(
            &state,
            entities::sessions::Column::Id.eq(auth.0.session_id),
            "logout",
        )
        .await?;
        cookies::clear_session_cookies(jar, &state.settings);
        Ok(NoContent::NoContent)
    }

    /// List my sessions
    ///
    /// Every signed-in device: user agent, IP, when it signed in and was last used.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<SessionList>, ApiError<AuthedErrors>> {
        let current = auth.0.session_id;
        let items = service::list_sessions(&state, auth.0.user_id)
            .await?
            .into_iter()
            .map(|s| SessionView {
                current: s.id == current,
                id: s.id,
                user_agent: s.user_agent,
                ip: s.ip,
                auth_method: s.auth_method,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            })
            .collect();
        Ok(Json(SessionList {
            items,
            next_cursor: None,
        }))
    }

    /// Sign out everywhere
    ///
    /// Revokes every session of mine, this one included.
    #[oai(
        path = "/sessions",
        method = "delete",
        operation_id = "revokeAllSessions"
    )]
    async fn revoke_all(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
        jar: &CookieJar,
    ) -> Result<NoContent, ApiError<AuthedErrors>> {
        use sea_orm::ColumnTrait;
        service::revoke_sessions(
            &state,
            entities::sessions::Column::UserId.eq(auth.0.user_id),
            "logout_all",
        )
        .await?;
        cookies::clear_session_cookies(jar, &state.settings);
        Ok(NoContent::NoContent)
    }

    /// Sign out one device
    ///
    /// Revokes one of my sessions. 404 if it is not mine or already ended.
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke_one(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError<RevokeErrors>> {
        use sea_orm::{sea_query::Condition, ColumnTrait};
        let condition = Condition::all()
            .add(entities::sessions::Column::Id.eq(id.0))
            .add(entities::sessions::Column::UserId.eq(auth.0.user_id));
        let revoked = service::revoke_sessions(&state, condition, "revoked_by_user").await?;
        if revoked.is_empty() {
            return Err(AppError::NotFound("no live session of yours has this id").into());
        }
        Ok(NoContent::NoContent)
    }
}

/// `/.well-known/jwks.json`.
pub struct KeysApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl KeysApi {
    /// Public keys for access tokens
    ///
    /// The JWK set that verifies access tokens (EdDSA / Ed25519, matched by `kid`). The chat
    /// gateway and partners verify tokens with it, without any secret.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: poem::web::Data<&AppState>) -> Json<super::tokens::Jwks> {
        Json(state.jwt.jwks())
    }
}
