//! Server-Sent Events.
//!
//! # Layout
//! - [`bus`]: Redis stream + pub/sub event bus, replay buffer.
//! - [`routes`]: `GET /v1/events`.
pub mod bus;
pub mod routes;
