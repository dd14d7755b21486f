//! The gateway's HTTP side: probes and metrics, with graceful shutdown.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use fred::prelude::{Builder, ClientLike, Config as RedisConfig, Pool};
use poem::{
    get, handler,
    http::StatusCode,
    listener::{Acceptor, AcceptorExt, Listener, TcpListener},
    web::{Data, Json},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use prometheus::{Encoder, IntGauge, Registry, TextEncoder};

use crate::config::Settings;

#[derive(Clone)]
struct GatewayState {
    redis: Pool,
    registry: Arc<Registry>,
}

/// A bound gateway, ready to run.
pub struct Gateway {
    acceptor: poem::listener::BoxAcceptor,
    addr: SocketAddr,
    app: poem::endpoint::BoxEndpoint<'static>,
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[handler]
async fn readyz(state: Data<&GatewayState>) -> Response {
    let redis = match tokio::time::timeout(Duration::from_secs(2), state.redis.ping::<String>(None))
        .await
    {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "timeout".to_owned(),
    };
    let ready = redis == "ok";
    let body =
        serde_json::json!({"status": if ready { "ready" } else { "not_ready" }, "redis": redis});
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}

#[handler]
fn metrics(state: Data<&GatewayState>) -> Response {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&state.registry.gather(), &mut out);
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}

impl Gateway {
    /// Connects to Redis and binds `GATEWAY_ADDR` (port 0 works).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let config = RedisConfig::from_url(&settings.redis_url)
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let redis = Builder::from_config(config).build_pool(2)?;
        tokio::time::timeout(Duration::from_secs(10), redis.init())
            .await
            .map_err(|_| anyhow::anyhow!("REDIS_URL: Redis did not answer within 10 s"))??;
        let registry = Registry::new_custom(Some("despacio_gateway".into()), None)?;
        let connections = IntGauge::new("connections", "Open WebSocket connections")?;
        registry.register(Box::new(connections))?;
        let state = GatewayState {
            redis,
            registry: Arc::new(registry),
        };
        let app = Route::new()
            .at("/healthz", get(healthz))
            .at("/readyz", get(readyz))
            .at("/metrics", get(metrics))
            .data(state)
            .boxed();
        let acceptor = TcpListener::bind(settings.gateway_addr)
            .into_acceptor()
            .await
            .map_err(|e| anyhow::anyhow!("GATEWAY_ADDR {}: {e}", settings.gateway_addr))?;
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("GATEWAY_ADDR: no socket address"))?;
        Ok(Self {
            acceptor: acceptor.boxed(),
            addr,
            app,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "despacio-gateway listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, shutdown, Some(Duration::from_secs(10)))
            .await
    }
}
