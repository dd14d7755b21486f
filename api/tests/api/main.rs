//! The API's integration tests: one binary, real PostgreSQL + PostGIS and Redis, each test on
//! its own database and Redis prefix (see `helpers`).
mod auth;
mod browser;
mod helpers;
mod lifecycle;
mod magic_link;
mod openapi;
mod ops;
mod profiles;
mod sessions;
mod tokens;
