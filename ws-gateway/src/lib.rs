//! `despacio-gateway`: DESPACIO's chat gateway.
//!
//! **Status:** this is the foundation only: the process starts, serves `/healthz`, `/readyz`
//! (Redis answers) and `/metrics` on `GATEWAY_ADDR`, and stops gracefully on SIGTERM. The
//! WebSocket chat protocol (`GET /v1/chat`) arrives with its own issue.
//!
//! # Layout
//! - [`config`]: the gateway's settings (`GATEWAY_ADDR`, `REDIS_URL`, `REDIS_PREFIX`, `LOG_FORMAT`).
//! - [`server`]: the HTTP side and its lifecycle.
pub mod config;
pub mod server;
