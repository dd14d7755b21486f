//! Accounts and sessions: the logic behind `/v1/auth/...`, independent of HTTP.
//!
//! A *session* is one sign-in on one device and doubles as the refresh-token family. Refresh
//! tokens are opaque (256 random bits), stored as SHA-256, and single-use: each refresh marks the
//! presented token used and issues its child. Presenting a token that was already used means it
//! leaked (or a client raced itself): the whole session is revoked, every descendant with it.
use chrono::{DateTime, Utc};
use entities::{
    auth::{AccessClaims, Role, AUDIENCE, ISSUER},
    magic_links, password_credentials, preferences, profiles, refresh_tokens, sessions, settings,
    users,
};
use fred::prelude::{KeysInterface, PubsubInterface};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    crypto::{hash_token, new_token},
    error::{is_unique_violation, AppError},
    mail::Mail,
    state::AppState,
    validation::normalize_email,
};

/// Who is calling, for the sessions list and rate limits.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: String,
}

/// A fresh access token, and the refresh token when a new one was minted.
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// How a session was opened (`sessions.auth_method`).
#[derive(Clone, Copy)]
pub enum AuthMethod {
    Password,
    MagicLink,
    Registration,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::MagicLink => "magic_link",
            AuthMethod::Registration => "registration",
        }
    }
}

fn invalid_credentials() -> AppError {
    AppError::Unauthorized {
        kind: "invalid-credentials",
        detail: "the email or the password is wrong",
    }
}

fn email_subject(state: &AppState, normalized: &str) -> (Vec<u8>, String) {
    let hash = state.cipher.blind_index(normalized);
    let subject = account_subject(&hash);
    (hash, subject)
}

/// The rate-limit subject of an account: a prefix of its email's blind index (no plain email in
/// Redis), the same whether the account is named by email (login) or by id (re-authentication).
pub(crate) fn account_subject(email_hash: &[u8]) -> String {
    email_hash
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses suspended and banned accounts with the problem types the contract names.
pub fn ensure_active(user: &users::Model) -> Result<(), AppError> {
    match user.status.as_str() {
        "banned" => Err(AppError::Forbidden {
            kind: "account-banned",
            detail: "this account has been banned".into(),
            until: None,
        }),
        "suspended" if user.suspended_until.is_none_or(|until| until > Utc::now()) => {
            Err(AppError::Forbidden {
                kind: "account-suspended",
                detail: "this account is suspended".into(),
                until: user.suspended_until,
            })
        }
        _ => Ok(()),
    }
}

/// Signs an access token for a session.
pub fn access_token(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    role: Role,
    auth_time: DateTime<Utc>,
) -> Result<(String, u64), AppError> {
    let now = Utc::now();
    let ttl = state.settings.access_token_ttl.as_secs();
    let claims = AccessClaims {
        sub: user_id,
        sid: session_id,
        role,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now.timestamp(),
        exp: now.timestamp() + ttl as i64,
        auth_time: auth_time.timestamp(),
        jti: Uuid::new_v4(),
    };
    Ok((state.jwt.issue(&claims)?, ttl))
}

fn role_of(user: &users::Model) -> Role {
    Role::parse(&user.role).unwrap_or(Role::User)
}

/// Records that a person is active (a sign-in or a token refresh), at most every ten minutes:
/// discovery ranks and prepares queues by it, analytics counts active people by it.
async fn touch_activity<C: ConnectionTrait>(conn: &C, user: Uuid) -> Result<(), AppError> {
    conn.execute(sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "UPDATE users SET last_active_at = now()
         WHERE id = $1 AND last_active_at < now() - interval '10 minutes'",
        vec![user.into()],
    ))
    .await?;
    Ok(())
}

/// Opens a session (a new refresh-token family) and issues its first tokens.
async fn start_session<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    user: &users::Model,
    method: AuthMethod,
    client: &ClientInfo,
) -> Result<IssuedTokens, AppError> {
    let now = Utc::now();
    let session_id = Uuid::new_v4();
    let refresh_ttl = state.settings.refresh_token_ttl;
    sessions::ActiveModel {
        id: Set(session_id),
        user_id: Set(user.id),
        user_agent: Set(client.user_agent.clone()),
        ip: Set(Some(client.ip.clone())),
        auth_method: Set(method.as_str().into()),
        created_at: Set(now),
        authenticated_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(refresh_ttl).unwrap_or_default()),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(conn)
    .await?;
    let refresh_token = new_token();
    refresh_tokens::ActiveModel {
        id: Set(Uuid::new_v4()),
        session_id: Set(session_id),
        parent_id: Set(None),
        token_hash: Set(hash_token(&refresh_token)),
        created_at: Set(now),
        used_at: Set(None),
    }
    .insert(conn)
    .await?;
    touch_activity(conn, user.id).await?;
    let (access_token, expires_in) = access_token(state, user.id, session_id, role_of(user), now)?;
    Ok(IssuedTokens {
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in: refresh_ttl.as_secs(),
        user_id: user.id,
        session_id,
    })
}

/// Creates a user with an empty profile, default preferences and settings.
async fn create_user<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    email: &str,
    email_hash: Vec<u8>,
    verified: bool,
    display_name: Option<String>,
) -> Result<users::Model, sea_orm::DbErr> {
    let now = Utc::now();
    let id = Uuid::new_v4();
    let user = users::ActiveModel {
        id: Set(id),
        email_hash: Set(email_hash),
        email_ciphertext: Set(state
            .cipher
            .encrypt(email.as_bytes(), &format!("users.email:{id}"))),
        role: Set(Role::User.as_str().into()),
        status: Set("active".into()),
        suspended_until: Set(None),
        email_verified_at: Set(verified.then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        last_active_at: Set(now),
    }
    .insert(conn)
    .await?;
    preferences::ActiveModel {
        user_id: Set(id),
        age_min: Set(18),
        age_max: Set(99),
        max_distance_km: Set(50),
        genders: Set(vec!["woman".into(), "man".into(), "non_binary".into()]),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    settings::ActiveModel {
        user_id: Set(id),
        incognito: Set(false),
        snoozed_until: Set(None),
        notify_resonances: Set(true),
        notify_messages: Set(true),
        notify_likes: Set(true),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    // The profile last: its insert trigger copies the preferences and settings onto it
    // (discovery's mirror, migration 000010).
    profiles::ActiveModel {
        user_id: Set(id),
        display_name: Set(display_name),
        birthdate: Set(None),
        gender: Set(None),
        bio_ciphertext: Set(None),
        intentions: Set(vec![]),
        latitude: Set(None),
        longitude: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(user)
}

/// Decrypts a user's email.
pub fn email_of(state: &AppState, user: &users::Model) -> Result<String, AppError> {
    Ok(state
        .cipher
        .decrypt_string(&user.email_ciphertext, &format!("users.email:{}", user.id))?)
}

/// `POST /v1/auth/register`.
pub async fn register(
    state: &AppState,
    email: &str,
    password: SecretString,
    display_name: Option<String>,
    client: &ClientInfo,
) -> Result<IssuedTokens, AppError> {
    state.limiter.hit("register_per_ip", &client.ip).await?;
    let email = normalize_email(email);
    let (email_hash, _) = email_subject(state, &email);
    if users::Entity::find()
        .filter(users::Column::EmailHash.eq(email_hash.clone()))
        .one(&state.db)
        .await?
        .is_some()
    {
        return Err(email_taken());
    }
    let password_hash = state.hasher.hash(password).await?;
    let txn = state.db.begin().await?;
    let user = create_user(state, &txn, &email, email_hash, false, display_name)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                email_taken()
            } else {
                e.into()
            }
        })?;
    password_credentials::ActiveModel {
        user_id: Set(user.id),
        password_hash: Set(password_hash),
        updated_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    let tokens = start_session(state, &txn, &user, AuthMethod::Registration, client).await?;
    txn.commit().await?;
    tracing::info!(user_id = %user.id, "account registered");
    Ok(tokens)
}

fn email_taken() -> AppError {
    AppError::Conflict {
        kind: "email-taken",
        detail: "an account already uses this email; log in instead".into(),
    }
}

/// `POST /v1/auth/login`.
pub async fn login(
    state: &AppState,
    email: &str,
    password: SecretString,
    client: &ClientInfo,
) -> Result<IssuedTokens, AppError> {
    state.limiter.hit("login_per_ip", &client.ip).await?;
    let email = normalize_email(email);
    let (email_hash, subject) = email_subject(state, &email);
    state.limiter.check("login_per_account", &subject).await?;

    let found = users::Entity::find()
        .filter(users::Column::EmailHash.eq(email_hash))
        .find_also_related_credential(&state.db)
        .await?;
    let (user, stored) = match found {
        Some((user, credential)) => (Some(user), credential.map(|c| c.password_hash)),
        None => (None, None),
    };
    let ok = state.hasher.verify(password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        state.limiter.record("login_per_account", &subject).await?;
        return Err(invalid_credentials());
    };
    state.limiter.reset("login_per_account", &subject).await?;
    ensure_active(&user)?;
    let tokens = start_session(state, &state.db, &user, AuthMethod::Password, client).await?;
    tracing::info!(user_id = %user.id, session_id = %tokens.session_id, "logged in");
    Ok(tokens)
}

/// Users with their (optional) password credential, found in one query.
trait FindWithCredential {
    async fn find_also_related_credential(
        self,
        db: &sea_orm::DatabaseConnection,
    ) -> Result<Option<(users::Model, Option<password_credentials::Model>)>, sea_orm::DbErr>;
}

impl FindWithCredential for sea_orm::Select<users::Entity> {
    async fn find_also_related_credential(
        self,
        db: &sea_orm::DatabaseConnection,
    ) -> Result<Option<(users::Model, Option<password_credentials::Model>)>, sea_orm::DbErr> {
        let Some(user) = self.one(db).await? else {
            return Ok(None);
        };
        let credential = password_credentials::Entity::find_by_id(user.id)
            .one(db)
            .await?;
        Ok(Some((user, credential)))
    }
}

/// `POST /v1/auth/magic-link`: always the same answer, whether or not the email has an account
/// (an unknown email receives a link that creates the account).
pub async fn request_magic_link(
    state: &AppState,
    email: &str,
    client: &ClientInfo,
) -> Result<(), AppError> {
    state.limiter.hit("magic_link_per_ip", &client.ip).await?;
    let email = normalize_email(email);
    let (email_hash, subject) = email_subject(state, &email);
    state.limiter.hit("magic_link_per_email", &subject).await?;
    let token = new_token();
    let now = Utc::now();
    magic_links::ActiveModel {
        id: Set(Uuid::new_v4()),
        token_hash: Set(hash_token(&token)),
        email_hash: Set(email_hash),
        email_ciphertext: Set(state.cipher.encrypt(email.as_bytes(), "magic_links.email")),
        created_at: Set(now),
        expires_at: Set(
            now + chrono::Duration::from_std(state.settings.magic_link_ttl).unwrap_or_default()
        ),
        used_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    let link = format!(
        "{}/auth/magic?token={token}",
        state.settings.public_base_url
    );
    let minutes = state.settings.magic_link_ttl.as_secs() / 60;
    let body = format!(
        "Hello,\n\nTo sign in to DESPACIO, open this link within {minutes} minutes:\n\n{link}\n\n\
         Or paste this code into the app: {token}\n\nIf you did not ask for it, ignore this mail.\n"
    );
    state
        .mailer
        .send(Mail {
            to: &email,
            subject: "Your DESPACIO sign-in link",
            body,
            link: Some(&link),
        })
        .await
        .map_err(|e| AppError::Internal(e.context("sending the magic link")))?;
    Ok(())
}

/// `POST /v1/auth/magic-link/verify`: consumes the token (once) and signs in, creating the account
/// when the email has none. Returns the tokens and whether an account was created.
pub async fn verify_magic_link(
    state: &AppState,
    token: &str,
    client: &ClientInfo,
) -> Result<(IssuedTokens, bool), AppError> {
    state.limiter.hit("magic_link_per_ip", &client.ip).await?;
    let now = Utc::now();
    let consumed = magic_links::Entity::update_many()
        .col_expr(magic_links::Column::UsedAt, Expr::value(now))
        .filter(magic_links::Column::TokenHash.eq(hash_token(token)))
        .filter(magic_links::Column::UsedAt.is_null())
        .filter(magic_links::Column::ExpiresAt.gt(now))
        .exec_with_returning(&state.db)
        .await?;
    let Some(link) = consumed.into_iter().next() else {
        return Err(AppError::Unauthorized {
            kind: "invalid-magic-link",
            detail: "this sign-in link is invalid, expired or already used; ask for a new one",
        });
    };
    let email = state
        .cipher
        .decrypt_string(&link.email_ciphertext, "magic_links.email")?;
    let existing = users::Entity::find()
        .filter(users::Column::EmailHash.eq(link.email_hash.clone()))
        .one(&state.db)
        .await?;
    let (user, created) = match existing {
        Some(user) => (user, false),
        None => match create_user(
            state,
            &state.db,
            &email,
            link.email_hash.clone(),
            true,
            None,
        )
        .await
        {
            Ok(user) => (user, true),
            // Two links for one new email verified at once: the other created the account.
            Err(e) if is_unique_violation(&e) => {
                let user = users::Entity::find()
                    .filter(users::Column::EmailHash.eq(link.email_hash))
                    .one(&state.db)
                    .await?
                    .ok_or_else(|| {
                        AppError::Internal(anyhow::anyhow!("user vanished after a conflict"))
                    })?;
                (user, false)
            }
            Err(e) => return Err(e.into()),
        },
    };
    ensure_active(&user)?;
    if user.email_verified_at.is_none() {
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerifiedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user.id))
            .exec(&state.db)
            .await?;
    }
    let tokens = start_session(state, &state.db, &user, AuthMethod::MagicLink, client).await?;
    tracing::info!(user_id = %user.id, created, "signed in by magic link");
    Ok((tokens, created))
}

/// `POST /v1/auth/refresh`: rotates a refresh token; reuse revokes the whole family.
pub async fn refresh(
    state: &AppState,
    presented: &str,
    client: &ClientInfo,
) -> Result<IssuedTokens, AppError> {
    state.limiter.hit("refresh_per_ip", &client.ip).await?;
    let invalid = || AppError::Unauthorized {
        kind: "invalid-refresh-token",
        detail: "the refresh token is invalid or expired; log in again",
    };
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let Some(token) = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(hash_token(presented)))
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(invalid());
    };
    let session = sessions::Entity::find_by_id(token.session_id)
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(invalid());
    }
    if token.used_at.is_some() {
        txn.commit().await?;
        revoke_sessions(
            state,
            sessions::Column::Id.eq(session.id),
            "refresh_token_reused",
        )
        .await?;
        tracing::warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reused: session revoked");
        return Err(AppError::Unauthorized {
            kind: "refresh-token-reused",
            detail: "this refresh token was already used; the session has been revoked for safety",
        });
    }
    let user = users::Entity::find_by_id(session.user_id)
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    ensure_active(&user)?;
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(token.id))
        .exec(&txn)
        .await?;
    let refresh_token = new_token();
    refresh_tokens::ActiveModel {
        id: Set(Uuid::new_v4()),
        session_id: Set(session.id),
        parent_id: Set(Some(token.id)),
        token_hash: Set(hash_token(&refresh_token)),
        created_at: Set(now),
        used_at: Set(None),
    }
    .insert(&txn)
    .await?;
    sessions::Entity::update_many()
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .col_expr(sessions::Column::Ip, Expr::value(client.ip.clone()))
        .filter(sessions::Column::Id.eq(session.id))
        .exec(&txn)
        .await?;
    touch_activity(&txn, user.id).await?;
    txn.commit().await?;
    let (access_token, expires_in) = access_token(
        state,
        user.id,
        session.id,
        role_of(&user),
        session.authenticated_at,
    )?;
    Ok(IssuedTokens {
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in: (session.expires_at - now).num_seconds().max(0) as u64,
        user_id: user.id,
        session_id: session.id,
    })
}

/// Revokes every live session matching `condition`; their access tokens stop working at once
/// (Redis marks them for the rest of their lifetime) and the revocation is announced to the
/// gateways. Returns the revoked session ids.
pub async fn revoke_sessions(
    state: &AppState,
    condition: impl sea_orm::sea_query::IntoCondition,
    reason: &str,
) -> Result<Vec<Uuid>, AppError> {
    let revoked = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(condition)
        .filter(sessions::Column::RevokedAt.is_null())
        .exec_with_returning(&state.db)
        .await?;
    let ids: Vec<(Uuid, Uuid)> = revoked.iter().map(|s| (s.id, s.user_id)).collect();
    announce_revoked(state, &ids, reason).await?;
    Ok(ids.into_iter().map(|(id, _)| id).collect())
}

/// Makes revoked sessions' access tokens stop working (a Redis mark for the rest of their
/// lifetime) and tells the gateways (they close those connections with 4003). `sessions` are
/// `(session id, user id)` pairs.
pub async fn announce_revoked(
    state: &AppState,
    sessions: &[(Uuid, Uuid)],
    reason: &str,
) -> Result<(), AppError> {
    let ttl = state.settings.access_token_ttl.as_secs() as i64 + 60;
    for (session, user) in sessions {
        let _: () = state
            .redis
            .set(
                state.keys.revoked_session(session),
                reason,
                Some(fred::types::Expiration::EX(ttl)),
                None,
                false,
            )
            .await?;
        let event = serde_json::json!({"session_id": session, "user_id": user, "reason": reason});
        let _: i64 = state
            .redis
            .next()
            .publish(state.keys.revocations_channel(), event.to_string())
            .await?;
    }
    Ok(())
}

/// Live sessions of a user, most recently used first.
pub async fn list_sessions(
    state: &AppState,
    user_id: Uuid,
) -> Result<Vec<sessions::Model>, AppError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(sessions::Column::LastUsedAt)
        .limit(100)
        .all(&state.db)
        .await?)
}

/// `POST /v1/auth/reauthenticate`: checks the password again and returns an access token with a
/// fresh `auth_time` for the same session.
pub async fn reauthenticate(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    password: SecretString,
) -> Result<(String, u64), AppError> {
    let subject = user_id.to_string();
    state.limiter.check("login_per_account", &subject).await?;
    let user = users::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(invalid_credentials)?;
    let stored = password_credentials::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .map(|c| c.password_hash);
    if stored.is_none() {
        return Err(AppError::Forbidden {
            kind: "no-password",
            detail: "this account has no password; sign in again with a magic link instead".into(),
            until: None,
        });
    }
    if !state.hasher.verify(password, stored).await? {
        state.limiter.record("login_per_account", &subject).await?;
        return Err(invalid_credentials());
    }
    ensure_active(&user)?;
    let now = Utc::now();
    sessions::Entity::update_many()
        .col_expr(sessions::Column::AuthenticatedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(session_id))
        .exec(&state.db)
        .await?;
    access_token(state, user.id, session_id, role_of(&user), now)
}

/// Creates an account with a role, or promotes an existing one (the `create-admin` CLI).
pub async fn create_or_promote(
    state: &AppState,
    email: &str,
    password: SecretString,
    role: Role,
) -> Result<(Uuid, bool), AppError> {
    let email = normalize_email(email);
    let (email_hash, _) = email_subject(state, &email);
    let password_hash = state.hasher.hash(password).await?;
    let txn = state.db.begin().await?;
    let existing = users::Entity::find()
        .filter(users::Column::EmailHash.eq(email_hash.clone()))
        .one(&txn)
        .await?;
    let (user_id, created) = match existing {
        Some(user) => (user.id, false),
        None => (
            create_user(state, &txn, &email, email_hash, true, None)
                .await?
                .id,
            true,
        ),
    };
    users::Entity::update_many()
        .col_expr(users::Column::Role, Expr::value(role.as_str()))
        .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    set_password(&txn, user_id, password_hash).await?;
    txn.commit().await?;
    Ok((user_id, created))
}

/// `PUT /v1/me/password`: needs a recent authentication; every other session is signed out.
pub async fn change_password(
    state: &AppState,
    caller: &crate::auth::extract::Caller,
    new_password: SecretString,
) -> Result<(), AppError> {
    caller.require_recent_auth(state)?;
    let password_hash = state.hasher.hash(new_password).await?;
    set_password(&state.db, caller.user_id, password_hash).await?;
    let others = sea_orm::sea_query::Condition::all()
        .add(sessions::Column::UserId.eq(caller.user_id))
        .add(sessions::Column::Id.ne(caller.session_id));
    revoke_sessions(state, others, "password_changed").await?;
    tracing::info!(user_id = %caller.user_id, "password changed");
    Ok(())
}

/// Stores (or replaces) a user's password hash.
async fn set_password<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    password_hash: String,
) -> Result<(), AppError> {
    password_credentials::Entity::insert(password_credentials::ActiveModel {
        user_id: Set(user_id),
        password_hash: Set(password_hash),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(password_credentials::Column::UserId)
            .update_columns([
                password_credentials::Column::PasswordHash,
                password_credentials::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// The id of the account with this email, if any (operator tools).
pub async fn find_user_id(state: &AppState, email: &str) -> Result<Option<Uuid>, AppError> {
    let (hash, _) = email_subject(state, &normalize_email(email));
    Ok(users::Entity::find()
        .filter(users::Column::EmailHash.eq(hash))
        .one(&state.db)
        .await?
        .map(|u| u.id))
}
