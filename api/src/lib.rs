//! `despacio-api`: DESPACIO's REST API (poem + poem-openapi), and the library behind the
//! `despacio-worker` binary.
//!
//! A request goes through [`middleware::Observe`] (request id, body limit, problem+json for every
//! error, metrics, one log line), the cookie layer ([`auth::cookies`]), then a poem-openapi
//! operation. Operations live by domain; each domain folder has its `routes` (the OpenAPI
//! operations), its `service` (the logic, taking the [`state::AppState`]) and its types.
//!
//! # Layout
//! - [`config`]: typed settings from the environment.
//! - [`startup`]: [`startup::Application`] — bind, assemble, serve, drain.
//! - [`state`]: shared connections and services.
//! - [`error`]: [`error::AppError`], RFC 9457 problems, per-operation error sets.
//! - [`auth`]: accounts, passwords, magic links, JWT, refresh rotation, sessions, cookies.
//! - [`profiles`]: `/v1/me...`, public profiles, profile cards.
//! - [`discovery`]: the ranked candidate queue, likes received.
//! - [`resonances`]: swipes, résonances, unmatch.
//! - [`blocks`]: blocking and unblocking people.
//! - [`ops`]: health, readiness, metrics, Swagger UI.
//! - [`openapi`]: the spec and its tags.
//! - [`crypto`]: field encryption, blind index, token hashing.
//! - [`cursor`]: signed pagination cursors.
//! - [`events`]: the event bus and `GET /v1/events` (SSE).
//! - [`ratelimit`]: Redis rate limits.
//! - [`mail`]: SMTP or outbox folder.
//! - [`idempotency`]: `Idempotency-Key` on every POST.
//! - [`validation`]: `validator` glue and value rules.
//! - [`seed`]: demo data (`despacio-api seed`).
//! - [`spec_index`]: names the field behind poem-openapi's parse errors.
//! - [`middleware`], [`metrics`], [`telemetry`], [`worker`].
pub mod admin;
pub mod analytics;
pub mod auth;
pub mod blocks;
pub mod config;
pub mod crypto;
pub mod cursor;
pub mod discovery;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod photos;
pub mod privacy;
pub mod profiles;
pub mod ratelimit;
pub mod reports;
pub mod resonances;
pub mod seed;
pub mod spec_index;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validation;
pub mod worker;
