//! What crosses DESPACIO's process boundaries: the sea-orm entities of every table (shared by the
//! API, the worker and the gateway), and the small wire types both `api` and `ws-gateway` need.
//! Nothing here talks to the network.
//!
//! # Layout
//! - [`users`], [`password_credentials`], [`sessions`], [`refresh_tokens`], [`magic_links`]:
//!   accounts and authentication.
//! - [`profiles`], [`preferences`], [`settings`], [`photos`]: who a person is and what they seek.
//! - [`swipes`], [`resonances`], [`blocks`]: the social graph.
//! - [`discovery_queue`], [`discovery_state`]: prepared discovery candidates.
//! - [`reports`], [`moderation_actions`]: moderation and its audit trail.
//! - [`analytics_aggregates`]: anonymous counts.
//! - [`auth`]: the access-token claims and role names every service agrees on.
//! - [`chat`]: the chat store's layout in Redis and its scripts (API and gateway share them).
//! - [`events`]: the per-person event bus's Redis layout (SSE; the gateway publishes to it).
//! - [`keys`]: Redis key and channel names, so the API and the gateway never drift apart.

pub mod analytics_aggregates;
pub mod auth;
pub mod blocks;
pub mod chat;
pub mod discovery_queue;
pub mod discovery_state;
pub mod events;
pub mod keys;
pub mod logs;
pub mod magic_links;
pub mod moderation_actions;
pub mod password_credentials;
pub mod photos;
pub mod preferences;
pub mod profiles;
pub mod refresh_tokens;
pub mod reports;
pub mod resonances;
pub mod sessions;
pub mod settings;
pub mod swipes;
pub mod users;
