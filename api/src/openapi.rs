//! The OpenAPI document: poem-openapi builds it from the operations; `openapi/openapi.json` in the
//! repository is this document, regenerated with `cargo run -p api --bin despacio-api -- openapi`
//! and checked for drift by the tests.
use std::sync::Arc;

use poem_openapi::{OpenApiService, Tags};

use crate::{
    admin::{logs::AdminLogsApi, queue::AdminQueueApi, AdminApi},
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
    AdminLogsApi,
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
            AdminLogsApi,
        ),
        "DESPACIO API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The spec as committed in `openapi/openapi.json` and served at `/openapi.json` (pretty JSON,
/// trailing newline), normalised by [`normalise`].
pub fn spec_json() -> anyhow::Result<String> {
    let metrics = Arc::new(Metrics::new()?);
    spec_of(&service(metrics))
}

/// The normalised spec of `api`.
pub fn spec_of(api: &OpenApiService<Apis, ()>) -> anyhow::Result<String> {
    let mut spec: serde_json::Value = serde_json::from_str(&api.spec())?;
    normalise(&mut spec);
    Ok(format!("{}\n", serde_json::to_string_pretty(&spec)?))
}

/// Keywords a field adds next to a referenced schema.
const REF_SIBLINGS: &[&str] = &[
    "nullable",
    "description",
    "default",
    "readOnly",
    "writeOnly",
    "deprecated",
    "title",
];

/// poem-openapi writes a field of a named type with its own metadata (`nullable`, a
/// description…) as `allOf: [{$ref}, {nullable, description…}]`. SDK generators read the second
/// member as a schema of its own and fail (openapi-python-client drops the whole model); this
/// moves that metadata up beside `allOf: [{$ref}]`, which every generator reads as "this type,
/// or null".
pub fn normalise(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(members)) = map.get_mut("allOf") {
                let refs = members.iter().filter(|m| m.get("$ref").is_some()).count();
                let only_metadata = |m: &serde_json::Value| {
                    m.as_object()
                        .is_some_and(|o| o.keys().all(|k| REF_SIBLINGS.contains(&k.as_str())))
                };
                if refs == 1
                    && members
                        .iter()
                        .all(|m| m.get("$ref").is_some() || only_metadata(m))
                {
                    let mut lifted = serde_json::Map::new();
                    members.retain(|m| {
                        if m.get("$ref").is_some() {
                            return true;
                        }
                        if let Some(o) = m.as_object() {
                            lifted.extend(o.clone());
                        }
                        false
                    });
                    for (k, v) in lifted {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            for v in map.values_mut() {
                normalise(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}
