//! Prometheus metrics of the gateway (`GET /metrics`, prefix `despacio_gateway_`).
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub connections: IntGauge,
    pub messages_in: IntCounter,
    pub messages_out: IntCounter,
    pub frames_in: IntCounter,
    pub errors: IntCounterVec,
    pub closes: IntCounterVec,
    pub slow_consumers: IntCounter,
    /// Seconds from a message's storage (its id's time) to its dispatch by a receiving gateway.
    pub fanout_seconds: Histogram,
    /// Seconds from a `send` frame's arrival to its `ack`.
    pub ack_seconds: Histogram,
    /// Messages carried by each call of the send script (group commit).
    pub send_batch_messages: Histogram,
    /// Seconds from a TCP connection's acceptance to its `ready` frame.
    pub setup_seconds: Histogram,
    /// Connections that found every admission place taken and waited (`CHAT_ADMISSIONS`).
    pub admission_waits: IntCounter,
    /// Seconds from a `resume` frame's arrival to each of its `resumed` frames.
    pub resume_seconds: Histogram,
    /// Access tokens accepted, by how: `signature` (Ed25519 checked here) or `remembered` (a
    /// gateway checked this very token before: see `conn::Verifier`).
    pub tokens: IntCounterVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("despacio_gateway".into()), None)?;
        let buckets = vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let metrics = Self {
            connections: IntGauge::new("connections", "Open authenticated WebSocket connections")?,
            messages_in: IntCounter::new(
                "messages_in_total",
                "Messages stored (send frames acked)",
            )?,
            messages_out: IntCounter::new(
                "messages_out_total",
                "Message frames written to connections (live and resumed)",
            )?,
            frames_in: IntCounter::new("frames_in_total", "Frames received from clients")?,
            errors: IntCounterVec::new(
                Opts::new("errors_total", "Error frames sent, by code"),
                &["code"],
            )?,
            closes: IntCounterVec::new(
                Opts::new(
                    "closes_total",
                    "Connections closed by the server, by close code",
                ),
                &["code"],
            )?,
            slow_consumers: IntCounter::new(
                "slow_consumers_total",
                "Frames refused because a connection's outbound queue was full",
            )?,
            fanout_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "fanout_seconds",
                    "From storage of a message to its dispatch by the gateway holding a receiver",
                )
                .buckets(buckets.clone()),
            )?,
            ack_seconds: Histogram::with_opts(
                HistogramOpts::new("ack_seconds", "From a send frame to its ack (stored)")
                    .buckets(buckets.clone()),
            )?,
            admission_waits: IntCounter::new(
                "admission_waits_total",
                "Connections that waited for an admission place (CHAT_ADMISSIONS all taken)",
            )?,
            setup_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "setup_seconds",
                    "From a connection's acceptance to its ready frame (WebSocket handshake, \
                     authentication, registration)",
                )
                .buckets(buckets.clone()),
            )?,
            resume_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "resume_seconds",
                    "From a resume frame to each of its resumed frames (history replayed)",
                )
                .buckets(buckets),
            )?,
            tokens: IntCounterVec::new(
                Opts::new(
                    "tokens_accepted_total",
                    "Access tokens accepted, by how: signature (verified here) or remembered \
                     (this very token was verified by a gateway before)",
                ),
                &["how"],
            )?,
            send_batch_messages: Histogram::with_opts(
                HistogramOpts::new(
                    "send_batch_messages",
                    "Messages stored by one call of the send script (sends queued while earlier \
                     calls were in flight go together)",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            )?,
            registry,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.connections.clone()))?;
        r.register(Box::new(metrics.messages_in.clone()))?;
        r.register(Box::new(metrics.messages_out.clone()))?;
        r.register(Box::new(metrics.frames_in.clone()))?;
        r.register(Box::new(metrics.errors.clone()))?;
        r.register(Box::new(metrics.closes.clone()))?;
        r.register(Box::new(metrics.slow_consumers.clone()))?;
        r.register(Box::new(metrics.fanout_seconds.clone()))?;
        r.register(Box::new(metrics.ack_seconds.clone()))?;
        r.register(Box::new(metrics.tokens.clone()))?;
        r.register(Box::new(metrics.send_batch_messages.clone()))?;
        r.register(Box::new(metrics.setup_seconds.clone()))?;
        r.register(Box::new(metrics.admission_waits.clone()))?;
        r.register(Box::new(metrics.resume_seconds.clone()))?;
        Ok(metrics)
    }
}
