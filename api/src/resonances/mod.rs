//! Swipes and résonances.
//!
//! # Layout
//! - [`service`]: swipes (limits, exactly-once résonances), listing, unmatch.
//! - [`routes`]: `POST /v1/swipes`, `GET /v1/resonances`, `DELETE /v1/resonances/{id}`.
pub mod routes;
pub mod service;
