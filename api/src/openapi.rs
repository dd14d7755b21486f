//! The OpenAPI document: poem-openapi builds it from the operations; `openapi/openapi.json` in the
//! repository is this document, regenerated with `cargo run -p api --bin despacio-api -- openapi`
//! and checked for drift by the tests.
use std::sync::Arc;

use poem_openapi::{OpenApiService, Tags};

use crate::{
    admin::{queue::AdminQueueApi, AdminApi},
    analytics::AnalyticsApi,
    auth::routes::{AuthApi, KeysApi},
    blocks::BlocksApi,
    discovery::routes::DiscoveryApi,
    events::routes::EventsApi,
    metrics::Metrics,
    ops::OpsApi,
    photos::routes::PhotosApi,
    privacy::routes::PrivacyApi,
    profiles::routes::{MeApi, ProfilesApi},
    reports::ReportsApi,
    resonances::routes::ResonancesApi,
};

#[derive(Tags)]
pub enum ApiTags {
    /// Accounts, sign-in, tokens and sessions.
    Auth,
    /// My account, profile, preferences and settings; export and erasure of my data.
    Me,
    /// Other people's profiles.
    People,
    /// Who I see next.
    Discovery,
    /// Likes, passes and mutual matches ("résonances").
    Resonances,
    /// My photos, and serving photos.
    Photos,
    /// People I never want to see again.
    Blocks,
    /// Telling moderators about someone.
    Reports,
    /// Live events (Server-Sent Events).
    Events,
    /// Moderation and administration (moderators and admins only).
    Admin,
    /// Probes and metrics for operators.
    Operations,
}

const DESCRIPTION: &str = r#"DESPACIO is a slow-dating app: "Vibes, not promises".

**Authentication.** Send `Authorization: Bearer <access_token>` (from register, login, magic-link
verify or refresh). Access tokens are EdDSA JWTs valid at most 15 minutes, verifiable with
`/.well-known/jwks.json`. Refresh tokens are single-use: every refresh returns a new one, and
presenting a spent one revokes the session. Browsers (requests with an `Origin` header) receive
HttpOnly cookies instead of a refresh token in the body and must echo the `despacio_csrf` cookie in
`X-CSRF-Token` on unsafe requests.

**Errors** are RFC 9457 `application/problem+json` objects: `type` (switch on its last segment),
`title`, `status`, `detail`, and `field` / `errors` naming the invalid input. Rate-limited requests
get 429 with `Retry-After` and `RateLimit-*` headers. Every response carries `X-Request-Id`.

**Lists** are `{"items": [...], "next_cursor": "..." | null}`. Ids are UUIDs; times are RFC 3339 UTC."#;

pub type Apis = (
    OpsApi,
    KeysApi,
    AuthApi,
    MeApi,
    PrivacyApi,
    ProfilesApi,
    DiscoveryApi,
    ResonancesApi,
    BlocksApi,
    ReportsApi,
    PhotosApi,
    EventsApi,
    AdminApi,
    AdminQueueApi,
    AnalyticsApi,
);

/// The service with every operation.
pub fn service(metrics: Arc<Metrics>) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            OpsApi { metrics },
            KeysApi,
            AuthApi,
            MeApi,
            PrivacyApi,
            ProfilesApi,
            DiscoveryApi,
            ResonancesApi,
            BlocksApi,
            ReportsApi,
            PhotosApi,
            EventsApi,
            AdminApi,
            AdminQueueApi,
            AnalyticsApi,
        ),
        "DESPACIO API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The spec as committed in `openapi/openapi.json` (pretty JSON, trailing newline).
pub fn spec_json() -> anyhow::Result<String> {
    let metrics = Arc::new(Metrics::new()?);
    Ok(format!("{}\n", service(metrics).spec()))
}
