//! Photos: upload with safe decoding, WebP variants in an object store, serving.
//!
//! - [`processing`]: format sniffing, limits, orientation, metadata stripping, resizing, WebP.
//! - [`storage`]: `object_store` (local folder or S3), content-addressed keys.
//! - [`service`]: the rows (at most 6 per profile, moderation status) and access rules.
//! - [`routes`]: the HTTP operations.
pub mod bench;
pub mod processing;
pub mod routes;
pub mod service;
pub mod storage;
