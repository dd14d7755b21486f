//! Profiles, preferences and settings.
//!
//! # Layout
//! - [`cards`]: profile cards as another person sees them (shared by every list).
//! - [`routes`]: `/v1/me...` and `/v1/profiles/{user_id}`.
//! - [`service`]: storage, encryption of the bio, and the visibility rules of public profiles.
//! - [`types`]: the request and response objects (and the `Gender` / `Intention` enums).
pub mod cards;
pub mod routes;
pub mod service;
pub mod types;
