//! Building and running the API server.
//!
//! [`Application::build`] connects, migrates (when `AUTO_MIGRATE`), binds the listener (port 0
//! works: tests read the bound port back) and assembles the routes; [`Application::run_until_stopped`]
//! serves until the shutdown future resolves, then lets in-flight requests finish (up to 30 s).
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use migration::MigratorTrait;
use poem::{
    listener::{Acceptor, AcceptorExt, Listener, RustlsCertificate, RustlsConfig, TcpListener},
    middleware::{CookieJarManager, Cors},
    EndpointExt, Route, Server,
};

use crate::{
    auth::cookies::CookieAuth,
    config::Settings,
    idempotency::Idempotency,
    middleware::Observe,
    openapi,
    ops::{self, swagger_config},
    spec_index::SpecIndex,
    state::AppState,
};

/// A bound, ready-to-run API server.
pub struct Application {
    acceptor: poem::listener::BoxAcceptor,
    addr: SocketAddr,
    app: poem::endpoint::BoxEndpoint<'static>,
}

/// Applies pending migrations.
pub async fn migrate(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    migration::Migrator::up(db, None)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

impl Application {
    /// Connects to PostgreSQL and Redis, migrates if asked, binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState::build(settings).await?;
        if state.settings.auto_migrate {
            migrate(&state.db).await?;
        }
        Self::with_state(state).await
    }

    /// Binds and assembles the routes around an existing state.
    pub async fn with_state(state: AppState) -> anyhow::Result<Self> {
        let settings = state.settings.clone();
        let metrics = state.metrics.clone();
        let api = openapi::service(metrics.clone());
        let spec_index = Arc::new(SpecIndex::new(&api.spec()));
        // The committed document, normalised for SDK generators (`openapi::normalise`).
        let spec_text = openapi::spec_of(&api)?;
        let spec = poem::endpoint::make_sync(move |_| {
            poem::Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(spec_text.clone())
        });
        let mut routes = Route::new()
            .at("/openapi.json", spec)
            .at("/docs", ops::docs_redirect)
            .at("/docs/", ops::docs_index.data(swagger_config()))
            .at("/docs/*path", ops::docs_file.data(swagger_config()))
            .nest("/", api)
            .with(Idempotency)
            .with(CookieAuth)
            .with(CookieJarManager::new())
            .data(state)
            .boxed();
        if !settings.cors_origins.is_empty() {
            let cors = settings
                .cors_origins
                .iter()
                .fold(Cors::new(), |cors, origin| {
                    cors.allow_origin(origin.as_str())
                })
                .allow_credentials(true)
                .allow_headers([
                    "authorization",
                    "content-type",
                    "x-csrf-token",
                    "idempotency-key",
                    "x-request-id",
                    "last-event-id",
                ])
                .expose_headers([
                    "x-request-id",
                    "retry-after",
                    "ratelimit-limit",
                    "ratelimit-remaining",
                    "ratelimit-reset",
                    "idempotent-replayed",
                ]);
            routes = routes.with(cors).boxed();
        }
        let app = routes
            .with(Observe {
                metrics,
                max_body_bytes: settings.max_body_bytes,
                spec: spec_index,
            })
            .boxed();

        let (acceptor, addr) = match &settings.tls {
            None => {
                let acceptor = TcpListener::bind(settings.api_addr)
                    .into_acceptor()
                    .await
                    .map_err(|e| anyhow::anyhow!("API_ADDR {}: {e}", settings.api_addr))?;
                let addr = first_addr(&acceptor)?;
                (acceptor.boxed(), addr)
            }
            Some((cert, key)) => {
                let cert = std::fs::read(cert).map_err(|e| anyhow::anyhow!("TLS_CERT: {e}"))?;
                let key = std::fs::read(key).map_err(|e| anyhow::anyhow!("TLS_KEY: {e}"))?;
                let tls =
                    RustlsConfig::new().fallback(RustlsCertificate::new().cert(cert).key(key));
                let acceptor = TcpListener::bind(settings.api_addr)
                    .rustls(tls)
                    .into_acceptor()
                    .await
                    .map_err(|e| anyhow::anyhow!("API_ADDR / TLS_CERT / TLS_KEY: {e}"))?;
                let addr = first_addr(&acceptor)?;
                (acceptor.boxed(), addr)
            }
        };
        Ok(Self {
            acceptor,
            addr,
            app,
        })
    }

    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (at most 30 s).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "despacio-api listening; Swagger UI at /docs/");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, shutdown, Some(Duration::from_secs(30)))
            .await
    }
}

fn first_addr(acceptor: &impl Acceptor) -> anyhow::Result<SocketAddr> {
    acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .ok_or_else(|| anyhow::anyhow!("the listener has no socket address"))
}
