//! Accounts and authentication.
//!
//! - `users`: one row a person. The email is stored encrypted (`email_ciphertext`, AES-256-GCM with a
//!   key id) and found through `email_hash`, an HMAC-SHA256 blind index of the normalised address.
//! - `password_credentials`: the Argon2id PHC string, apart from the user row so that an account
//!   created by magic link simply has none.
//! - `sessions`: one row a login; it is also the refresh-token *family*: every token rotated from
//!   that login belongs to it, and revoking the session revokes them all.
//! - `refresh_tokens`: SHA-256 of each opaque token, its parent, and when it was rotated
//!   (`used_at`): presenting a used token is reuse, which revokes the family.
//! - `magic_links`: SHA-256 of a single-use sign-in token, valid 15 minutes.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email_hash        bytea NOT NULL UNIQUE,
    email_ciphertext  bytea NOT NULL,
    role              text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'banned')),
    suspended_until   timestamptz,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_active_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE password_credentials (
    user_id       uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_agent     text,
    ip             text,
    auth_method    text NOT NULL CHECK (auth_method IN ('password', 'magic_link', 'registration')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Last time the person proved who they are in this session (login or re-authentication).
    authenticated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent_id   uuid REFERENCES refresh_tokens(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE magic_links (
    id               uuid PRIMARY KEY,
    token_hash       bytea NOT NULL UNIQUE,
    email_hash       bytea NOT NULL,
    email_ciphertext bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);
CREATE INDEX magic_links_email_idx ON magic_links (email_hash);
CREATE INDEX magic_links_expiry_idx ON magic_links (expires_at);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE magic_links; DROP TABLE refresh_tokens; DROP TABLE sessions;
             DROP TABLE password_credentials; DROP TABLE users;",
        )
        .await
    }
}
