//! `despacio-gateway`: DESPACIO's chat gateway — a standalone tokio-tungstenite service that
//! speaks the protocol documented in `openapi/asyncapi.json`, stores messages in Redis streams
//! (24 h) and fans them out through Redis pub/sub, so any number of gateways run side by side.
//!
//! # Layout
//! - [`config`]: settings (`GATEWAY_ADDR`, `REDIS_URL`, `REDIS_PREFIX`, `DATABASE_URL`,
//!   `JWT_PUBLIC_KEY`, `RATE_LIMITS`, `CHAT_*`).
//! - [`server`]: the listener (WebSocket and probes on one port), heartbeats, shutdown (1012).
//! - [`conn`]: one connection: handshake, authentication, frames.
//! - [`hub`]: the registry of local connections, subscriptions and the pub/sub dispatcher.
//! - [`store`]: the Redis scripts (store, resume, relay, presence) and the PostgreSQL fallback.
//! - [`protocol`]: the frames.
//! - [`metrics`]: Prometheus metrics.
pub mod config;
pub mod conn;
pub mod hub;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod store;
