//! Discovery and likes received.
//!
//! # Layout
//! - [`service`]: the ranked, per-person candidate queue (design and score in its docs).
//! - [`likes`]: people who liked me and await my answer.
//! - [`routes`]: `GET /v1/discovery`, `GET /v1/likes/received`.
pub mod likes;
pub mod routes;
pub mod service;
