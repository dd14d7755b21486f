//! Accounts and authentication: registration, password and magic-link sign-in, JWT access
//! tokens, rotating refresh tokens with reuse detection, sessions, browser cookies with CSRF
//! protection, and the admin-creation path of the CLI.
//!
//! # Layout
//! - [`routes`]: the `/v1/auth` operations and `/.well-known/jwks.json`.
//! - [`service`]: the logic (sessions, rotation, revocation).
//! - [`extract`]: the bearer security scheme and the [`extract::Caller`] it yields.
//! - [`cookies`]: browser cookies and the double-submit CSRF check.
//! - [`password`]: Argon2id on the blocking pool, bounded.
//! - [`tokens`]: EdDSA JWTs and the JWK set.
pub mod cookies;
pub mod extract;
pub mod password;
pub mod routes;
pub mod service;
pub mod tokens;
