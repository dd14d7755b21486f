//! Profiles, preferences and settings.
//!
//! # Layout
//! - [`routes`]: `/v1/me...` and `/v1/profiles/{user_id}`.
//! - [`service`]: storage, encryption of the bio, and the visibility rules of public profiles.
//! - [`types`]: the request and response objects (and the `Gender` / `Intention` enums).
pub mod routes;
pub mod service;
pub mod types;
