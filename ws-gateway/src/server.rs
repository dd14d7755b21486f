//! The gateway process: one listener on `GATEWAY_ADDR` for both the WebSocket (`GET /v1/chat`,
//! served by tokio-tungstenite directly, so a connection costs a few KiB) and the probes
//! (`/healthz`, `/readyz`, `/metrics`, served by poem). Each accepted socket is peeked at: a
//! request line for `/v1/chat` goes to [`crate::conn`], anything else to poem.
//!
//! Shutdown (SIGTERM): stop accepting, send close 1012 ("service restart: reconnect and resume")
//! to every connection, mark everyone held here offline, and wait up to `SHUTDOWN_GRACE_S`.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use fred::prelude::{Builder, ClientLike, Config as RedisConfig, Pool, ReconnectPolicy};
use poem::{
    get, handler,
    http::StatusCode,
    listener::Acceptor,
    web::{Data, Json, LocalAddr, RemoteAddr},
    Addr, EndpointExt, IntoResponse, Response, Route, Server,
};
use prometheus::{Encoder, TextEncoder};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use crate::{
    config::Settings,
    conn::{self, Context, Verifier},
    hub::{Hub, Out},
    metrics::Metrics,
    store::Store,
};

#[derive(Clone)]
struct ProbeState {
    redis: Pool,
    metrics: Metrics,
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[handler]
async fn readyz(state: Data<&ProbeState>) -> Response {
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
fn metrics_text(state: Data<&ProbeState>) -> Response {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&state.metrics.registry.gather(), &mut out);
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}

/// Feeds poem the sockets that are not WebSocket chat requests.
struct ChannelAcceptor {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl Acceptor for ChannelAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![LocalAddr(Addr::SocketAddr(self.local))]
    }

    async fn accept(
        &mut self,
    ) -> std::io::Result<(TcpStream, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        match self.rx.recv().await {
            Some((stream, remote)) => Ok((
                stream,
                LocalAddr(Addr::SocketAddr(self.local)),
                RemoteAddr(Addr::SocketAddr(remote)),
                poem::http::uri::Scheme::HTTP,
            )),
            None => std::future::pending().await,
        }
    }
}

/// A bound gateway, ready to run.
pub struct Gateway {
    listener: TcpListener,
    addr: SocketAddr,
    hub: Arc<Hub>,
    ctx: Arc<Context>,
    probes: ProbeState,
    grace: Duration,
}

/// Binds with a deep accept queue: after a gateway dies, thousands of clients reconnect at once,
/// and a full queue drops SYNs that clients only retry a second later.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Pending connections the kernel queues for `accept` (capped by `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 8192;

/// Does the request start with `GET /v1/chat`? Waits (briefly) for enough bytes to tell.
async fn is_chat(stream: &TcpStream) -> bool {
    const PREFIX: &[u8] = b"GET /v1/chat";
    let mut buf = [0u8; 13];
    for _ in 0..50 {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n >= PREFIX.len() => {
                return buf.starts_with(PREFIX)
                    && (n == PREFIX.len() || matches!(buf[PREFIX.len()], b' ' | b'?' | b'/'));
            }
            Ok(n) => {
                if !PREFIX.starts_with(&buf[..n]) {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    false
}

impl Gateway {
    /// Connects to Redis and binds `GATEWAY_ADDR` (port 0 works).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let config = RedisConfig::from_url(&settings.redis_url)
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let policy = ReconnectPolicy::new_exponential(0, 100, 2_000, 2);
        let redis = Builder::from_config(config.clone())
            .set_policy(policy.clone())
            .build_pool(settings.redis_connections)?;
        tokio::time::timeout(Duration::from_secs(10), redis.init())
            .await
            .map_err(|_| anyhow::anyhow!("REDIS_URL: Redis did not answer within 10 s"))??;
        let subscriber = Builder::from_config(config)
            .set_policy(policy)
            .with_performance_config(|p| p.broadcast_channel_capacity = 1 << 14)
            .build_subscriber_client()?;
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(&settings.database_url)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
        let metrics = Metrics::new()?;
        let instance = format!("{:016x}", rand::random::<u64>());
        let store = Store::new(
            redis.clone(),
            db,
            entities::keys::RedisKeys::new(settings.redis_prefix.clone()),
            instance,
            settings.messages_limit,
            metrics.send_batch_messages.clone(),
        );
        let hub = Hub::start(
            store,
            subscriber,
            metrics.clone(),
            settings.queue_frames,
            settings.heartbeat,
        )
        .await?;
        let listener = listen(settings.gateway_addr)
            .map_err(|e| anyhow::anyhow!("GATEWAY_ADDR {}: {e}", settings.gateway_addr))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            hub,
            ctx: Arc::new(Context {
                verifier: Verifier::new(&settings.jwt_public_key, settings.jwt_key_id.clone()),
                heartbeat: settings.heartbeat,
                auth_timeout: settings.auth_timeout,
                admissions: tokio::sync::Semaphore::new(settings.admissions),
            }),
            probes: ProbeState { redis, metrics },
            grace: settings.shutdown_grace,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then closes every connection with 1012.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, instance = %self.hub.store.instance, "despacio-gateway listening");
        let (probe_tx, probe_rx) = mpsc::channel(64);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let app = Route::new()
            .at("/healthz", get(healthz))
            .at("/readyz", get(readyz))
            .at("/metrics", get(metrics_text))
            .data(self.probes.clone());
        let poem_stop = stop_rx.clone();
        let probes = tokio::spawn(
            Server::new_with_acceptor(ChannelAcceptor {
                rx: probe_rx,
                local: self.addr,
            })
            .run_with_graceful_shutdown(
                app,
                stopped(poem_stop),
                Some(Duration::from_secs(2)),
            ),
        );
        let heartbeat = tokio::spawn(heartbeats(self.hub.clone(), self.ctx.heartbeat));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let stop = stopped(stop_rx);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = self.listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let hub = self.hub.clone();
                    let ctx = self.ctx.clone();
                    let probe_tx = probe_tx.clone();
                    let accepted = std::time::Instant::now();
                    let fut = async move {
                        if Box::pin(is_chat(&stream)).await {
                            conn::serve(hub, ctx, stream, accepted).await;
                        } else {
                            let _ = probe_tx.send((stream, remote)).await;
                        }
                    };
                    tokio::spawn(fut);
                }
            }
        }
        drop(self.listener);
        heartbeat.abort();
        let hub = self.hub;
        let people = hub.stop();
        let open = hub.all();
        tracing::info!(
            connections = open.len(),
            "shutting down: closing connections with 1012"
        );
        for conn in &open {
            conn.close(1012, "service restart: reconnect and resume");
        }
        hub.offline(people).await;
        let deadline = tokio::time::Instant::now() + self.grace;
        while hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = probes.await;
        Ok(())
    }
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The heartbeat is spread over its interval in this many slices: pinging 10,000 connections
/// at once stalled every message for tens of milliseconds (bench/RESULTS.md).
const HEARTBEAT_SLICES: u64 = 25;

/// One task for every connection's heartbeat: a ping every interval, a close after three
/// silent intervals, and the presence refresh and sweep. Each tick handles one slice of the
/// connections and people, so every one of them is visited once per interval, evenly spread.
async fn heartbeats(hub: Arc<Hub>, every: Duration) {
    let mut tick = tokio::time::interval(every / HEARTBEAT_SLICES as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let limit = every.as_millis() as u64 * 3;
    for round in 0u64.. {
        tick.tick().await;
        let slice = round % HEARTBEAT_SLICES;
        let now = hub.now_ms();
        for conn in hub.connections_where(|c| c.id % HEARTBEAT_SLICES == slice) {
            let heard = conn.last_heard.load(std::sync::atomic::Ordering::Relaxed);
            if now.saturating_sub(heard) > limit {
                conn.close(1008, "no heartbeat: answer pings");
            } else {
                conn.push(Out::Ping);
            }
        }
        let mine = |person: &uuid::Uuid| {
            person.as_u128() % u128::from(HEARTBEAT_SLICES) == u128::from(slice)
        };
        if let Err(e) = hub.refresh_presence(mine).await {
            tracing::warn!(error = %e, "presence refresh failed");
        }
        if let Err(e) = hub.sweep_presence(mine).await {
            tracing::warn!(error = %e, "presence sweep failed");
        }
    }
}
