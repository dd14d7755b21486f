//! The API's integration tests: one binary, real PostgreSQL + PostGIS and Redis, each test on
//! its own database and Redis prefix (see `helpers`).
mod admin;
mod analytics;
mod auth;
mod blocks;
mod browser;
mod chat;
mod chat_client;
mod discovery;
mod events;
mod helpers;
mod idempotency;
mod lifecycle;
mod logs;
mod magic_link;
mod openapi;
mod ops;
mod photos;
mod privacy;
mod profiles;
mod reports;
mod resonances;
mod seed;
mod sessions;
mod tokens;
