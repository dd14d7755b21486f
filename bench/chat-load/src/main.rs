//! `chat-load`: the chat benchmark's load generator (see `bench/chat.sh` and `bench/RESULTS.md`).
//!
//! It speaks two protocols over tokio-tungstenite: DESPACIO's gateway (`send` → `ack`, `message`,
//! `resume`) and Socket.IO v5 / Engine.IO v4 (`42["send",…]` with an ack id, `43…` acks,
//! `42["message",…]`), so both servers get the same workload:
//!
//! - `idle`: hold N authenticated connections (the script reads the server's RSS);
//! - `rate`: pairs of people on two server instances exchanging messages at fixed total rates;
//!   end-to-end latency from the *scheduled* send time (no coordinated omission), acks, losses
//!   and duplicates per phase;
//! - `storm`: N connections on one gateway, traffic flowing, the gateway SIGKILLed; every client
//!   reconnects to the other gateway, resumes from its last seen id and re-sends what was not
//!   acked (same client id); time to resume everyone, acked messages missing, and three
//!   latencies per client: reconnection attempt → `resumed` (`resume_*`), reconnection attempt
//!   → `ready` (`ready_*`: TCP, handshake, authentication, registration), and `resume` frame →
//!   `resumed` (`resume_frame_*`: the resume operation itself, history read from Redis).
//!
//! DESPACIO conversations and tokens are created directly (Redis metadata and tokens signed with
//! the development key), so the benchmark measures the gateway, not the API.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand, ValueEnum};
use fred::prelude::{Builder, ClientLike, Config, LuaInterface};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};
use uuid::Uuid;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Target {
    Despacio,
    Socketio,
}

#[derive(Subcommand)]
enum Command {
    /// Hold N authenticated connections until killed.
    Idle {
        #[arg(long, value_enum)]
        target: Target,
        #[arg(long)]
        url: String,
        #[arg(long)]
        connections: usize,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value = "bench:")]
        prefix: String,
    },
    /// Fixed total message rates between pairs on two instances.
    Rate {
        #[arg(long, value_enum)]
        target: Target,
        /// Two base URLs, comma-separated: the first member of each pair on the first.
        #[arg(long)]
        urls: String,
        #[arg(long, default_value_t = 1000)]
        pairs: usize,
        /// Total messages per second, comma-separated phases.
        #[arg(long, default_value = "1000,2000,5000,10000")]
        rates: String,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value = "bench:")]
        prefix: String,
    },
    /// Kill a gateway holding N connections while messages flow; reconnect, resume, count.
    Storm {
        #[arg(long)]
        urls: String,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// The pid of the gateway at the first URL (SIGKILLed by this program).
        #[arg(long)]
        kill_pid: u32,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Each client waits a random 0..JITTER ms before reconnecting (0: all at once).
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value = "bench:")]
        prefix: String,
    },
}

/// mimalloc, like the gateway: glibc's malloc was ≈ 8 % of this load generator's CPU during a
/// reconnect storm, CPU taken from the server under test on the same two cores.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `CHAT_LOAD_TIMELINE=1`: print when the late messages (> 25 ms) of each step were scheduled.
static TIMELINE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("CHAT_LOAD_TIMELINE").is_ok_and(|v| v == "1"));

/// `storm --jitter-ms`.
static JITTER_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// A stable pseudo-random delay for one client, below the jitter window.
fn jitter_for(id: &str) -> Duration {
    use std::hash::{Hash, Hasher};
    let window = JITTER_MS.get().copied().unwrap_or(0);
    if window == 0 {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    Duration::from_millis(h.finish() % window)
}

/// One side of a conversation.
#[derive(Clone)]
struct Person {
    /// DESPACIO: a user id; Socket.IO: the room name.
    id: String,
    peer: String,
    conversation: Uuid,
    token: String,
}

fn token(user: Uuid) -> anyhow::Result<String> {
    let key = jsonwebtoken::EncodingKey::from_ed_der(&entities::auth::ed25519_pkcs8(
        &entities::auth::dev_jwt_seed(),
    ));
    let now = chrono::Utc::now().timestamp();
    let claims = entities::auth::AccessClaims {
        sub: user,
        sid: Uuid::new_v4(),
        role: entities::auth::Role::User,
        iss: entities::auth::ISSUER.into(),
        aud: entities::auth::AUDIENCE.into(),
        iat: now,
        exp: now + 7200,
        auth_time: now,
        jti: Uuid::new_v4(),
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &key,
    )?)
}

/// Creates `pairs` conversations (DESPACIO: metadata in Redis; Socket.IO: names only).
async fn people(
    target: Target,
    pairs: usize,
    redis: &str,
    prefix: &str,
) -> anyhow::Result<Vec<(Person, Person)>> {
    let mut out = Vec::with_capacity(pairs);
    let client = if target == Target::Despacio {
        let client = Builder::from_config(Config::from_url(redis)?).build()?;
        client.init().await?;
        Some(client)
    } else {
        None
    };
    let keys = entities::keys::RedisKeys::new(prefix.to_owned());
    for i in 0..pairs {
        let (a, b, conversation) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        if let Some(client) = &client {
            let _: String = client
                .eval(
                    entities::chat::META_RESTORE,
                    vec![
                        keys.chat_meta(&conversation),
                        keys.chat_closed(&conversation),
                    ],
                    vec![a.to_string(), b.to_string(), "0-0".to_owned()],
                )
                .await?;
        }
        let (ida, idb) = match target {
            Target::Despacio => (a.to_string(), b.to_string()),
            Target::Socketio => (format!("a{i}"), format!("b{i}")),
        };
        out.push((
            Person {
                id: ida.clone(),
                peer: idb.clone(),
                conversation,
                token: token(a)?,
            },
            Person {
                id: idb,
                peer: ida,
                conversation,
                token: token(b)?,
            },
        ));
    }
    Ok(out)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The client side's WebSocket settings: tungstenite's default 128 KiB read buffer is zero-filled
/// on every read, which cost this load generator a third of its CPU; our frames are small. (And
/// connections are opened with Nagle's algorithm off, as chat clients do: with it, a second frame
/// sent within a round trip waited for the server's delayed ACK, up to 40 ms.)
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// Connects and authenticates; returns once the server is ready for traffic.
async fn connect(target: Target, base: &str, person: &Person) -> anyhow::Result<Ws> {
    match target {
        Target::Despacio => {
            let mut request = format!("{base}/v1/chat").into_client_request()?;
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {}", person.token))?,
            );
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
                    .await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => return Ok(ws),
                    Some(Ok(Message::Close(c))) => anyhow::bail!("closed: {c:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("closed before ready"),
                }
            }
        }
        Target::Socketio => {
            let url = format!(
                "{base}/socket.io/?EIO=4&transport=websocket&user={}",
                person.id
            );
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
            ws.send(Message::Text("40".into())).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.starts_with("40") => return Ok(ws),
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        ws.send(Message::Text("3".into())).await?;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("closed before connect"),
                }
            }
        }
    }
}

/// The text after `"key":` up to the next `"` or `,`/`}` (enough for our own frames).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let start = text.find(&pattern)? + pattern.len();
    let rest = &text[start..];
    if let Some(rest) = rest.strip_prefix('"') {
        rest.find('"').map(|end| &rest[..end])
    } else {
        let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

#[derive(Default)]
struct Phase {
    acked: HashSet<u64>,
    received: HashMap<u64, u32>,
    /// storm: how each message arrived (0 live before the kill, 1 replayed, 2 live after).
    via: HashMap<u64, Vec<u8>>,
    latencies_us: Vec<u64>,
    /// (scheduled send time, latency) of messages later than 25 ms (`CHAT_LOAD_TIMELINE=1`).
    late: Vec<(u64, u64)>,
    ack_us: Vec<u64>,
}

struct Shared {
    start: Instant,
    phase: Mutex<Phase>,
    sent: AtomicU64,
    /// Connections the server closed (rate: a slow consumer is disconnected by policy).
    closed: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

enum Cmd {
    Send { seq: u64, at_us: u64 },
}

fn send_frame(target: Target, person: &Person, seq: u64, at_us: u64) -> String {
    match target {
        Target::Despacio => format!(
            r#"{{"type":"send","resonance_id":"{}","client_id":"{seq}","body":"{at_us}"}}"#,
            person.conversation
        ),
        Target::Socketio => format!(
            r#"42{seq}["send",{{"to":"{}","id":"{seq}","t":{at_us},"body":"x"}}]"#,
            person.peer
        ),
    }
}

/// What one incoming frame says.
enum Seen {
    Ack(u64),
    Message {
        seq: u64,
        at_us: u64,
        id: Option<String>,
        /// The sender (DESPACIO only): a replay also returns the client's own messages.
        sender: Option<String>,
    },
    Resumed,
    Ping,
    Other,
}

fn parse(target: Target, text: &str) -> Seen {
    match target {
        Target::Despacio => match field(text, "type") {
            Some("ack") => field(text, "client_id")
                .and_then(|s| s.parse().ok())
                .map_or(Seen::Other, Seen::Ack),
            Some("message") => {
                let seq = field(text, "client_id").and_then(|s| s.parse().ok());
                let at = field(text, "body").and_then(|s| s.parse().ok());
                match (seq, at) {
                    (Some(seq), Some(at_us)) => Seen::Message {
                        seq,
                        at_us,
                        id: field(text, "message_id").map(str::to_owned),
                        sender: field(text, "sender_id").map(str::to_owned),
                    },
                    _ => Seen::Other,
                }
            }
            Some("resumed") => Seen::Resumed,
            _ => Seen::Other,
        },
        Target::Socketio => {
            if text == "2" {
                Seen::Ping
            } else if let Some(rest) = text.strip_prefix("43") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().map_or(Seen::Other, Seen::Ack)
            } else if text.starts_with("42[\"message\"") {
                let seq = field(text, "id").and_then(|s| s.parse().ok());
                let at = field(text, "t").and_then(|s| s.parse().ok());
                match (seq, at) {
                    (Some(seq), Some(at_us)) => Seen::Message {
                        seq,
                        at_us,
                        id: None,
                        sender: None,
                    },
                    _ => Seen::Other,
                }
            } else {
                Seen::Other
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A client task for `rate`: sends what it is told, records what it receives.
async fn rate_client(
    target: Target,
    mut ws: Ws,
    person: Person,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
) {
    let mut pending: HashMap<u64, u64> = HashMap::new();
    let mut open = true;
    loop {
        tokio::select! {
            cmd = cmds.recv(), if open => {
                // No more sends: keep receiving until the process ends.
                let Some(Cmd::Send { seq, at_us }) = cmd else { open = false; continue };
                pending.insert(seq, at_us);
                if ws.send(Message::Text(send_frame(target, &person, seq, at_us).into())).await.is_err() {
                    return;
                }
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        eprintln!("connection closed by the server: {code}");
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    None | Some(Err(_)) => {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                let now = shared.now_us();
                match parse(target, &text) {
                    Seen::Ack(seq) => {
                        let mut phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
                        phase.acked.insert(seq);
                        if let Some(at) = pending.remove(&seq) {
                            phase.ack_us.push(now.saturating_sub(at));
                        }
                    }
                    Seen::Message { seq, at_us, .. } => {
                        let mut phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
                        *phase.received.entry(seq).or_default() += 1;
                        phase.latencies_us.push(now.saturating_sub(at_us));
                        if *TIMELINE && now.saturating_sub(at_us) > 25_000 {
                            phase.late.push((at_us, now.saturating_sub(at_us)));
                        }
                    }
                    Seen::Ping => {
                        let _ = ws.send(Message::Text("3".into())).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn connect_all(
    target: Target,
    urls: &[String],
    people: &[(Person, Person)],
) -> anyhow::Result<Vec<(Ws, Person)>> {
    let gate = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for (a, b) in people {
        for (person, url) in [
            (a.clone(), urls[0].clone()),
            (b.clone(), urls[1 % urls.len()].clone()),
        ] {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let mut tries = 0;
                loop {
                    match connect(target, &url, &person).await {
                        Ok(ws) => return anyhow::Ok((ws, person)),
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("connect retry: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }));
        }
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

async fn idle(
    target: Target,
    url: String,
    connections: usize,
    redis: String,
    prefix: String,
) -> anyhow::Result<()> {
    let people = people(target, connections.div_ceil(2), &redis, &prefix).await?;
    let started = Instant::now();
    let held = connect_all(target, &[url.clone(), url], &people).await?;
    println!(
        "{{\"held\":{},\"connect_secs\":{:.2}}}",
        held.len().min(connections),
        started.elapsed().as_secs_f64()
    );
    // Answer Socket.IO pings; hold everything until killed.
    let mut tasks = Vec::new();
    for (mut ws, _) in held.into_iter().take(connections) {
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.as_str() == "2" {
                        let _ = ws.send(Message::Text("3".into())).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn rate(
    target: Target,
    urls: Vec<String>,
    pairs: usize,
    rates: Vec<u64>,
    secs: u64,
    redis: String,
    prefix: String,
) -> anyhow::Result<()> {
    let people = people(target, pairs, &redis, &prefix).await?;
    let held = connect_all(target, &urls, &people).await?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        phase: Mutex::new(Phase::default()),
        sent: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    });
    let mut senders = Vec::new();
    for (ws, person) in held {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tokio::spawn(rate_client(target, ws, person, rx, shared.clone()));
    }
    eprintln!("{} connections ready", senders.len());
    let mut seq = 0u64;
    let mut next_client = 0usize;
    let mut results = Vec::new();
    for rate in rates {
        *shared.phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::default();
        shared.sent.store(0, Ordering::Relaxed);
        let phase_start = Instant::now();
        let phase_origin_us = shared.now_us();
        let first_seq = seq;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let total = rate * secs;
        while seq - first_seq < total {
            tick.tick().await;
            let due = ((phase_start.elapsed().as_micros() as u64 * rate) / 1_000_000).min(total);
            while seq - first_seq < due {
                // The scheduled time of this message, not when it is actually written.
                let at_us = phase_origin_us + (seq - first_seq) * 1_000_000 / rate;
                let _ = senders[next_client].send(Cmd::Send { seq, at_us });
                next_client = (next_client + 1) % senders.len();
                seq += 1;
            }
        }
        let send_secs = phase_start.elapsed().as_secs_f64();
        // Drain: wait until everything arrived, or nothing moved for 3 s (at most 60 s).
        let drain_start = Instant::now();
        let mut last_progress = (Instant::now(), 0usize);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
            let seen = phase.received.len() + phase.acked.len();
            let done = phase.received.len() as u64 >= total && phase.acked.len() as u64 >= total;
            drop(phase);
            if seen != last_progress.1 {
                last_progress = (Instant::now(), seen);
            }
            if done
                || last_progress.0.elapsed() > Duration::from_secs(3)
                || drain_start.elapsed() > Duration::from_secs(60)
            {
                break;
            }
        }
        let mut phase =
            std::mem::take(&mut *shared.phase.lock().unwrap_or_else(|p| p.into_inner()));
        phase.latencies_us.sort_unstable();
        if *TIMELINE {
            // Where the late messages were scheduled, by 250 ms window from the phase start.
            let mut windows: std::collections::BTreeMap<u64, (usize, u64)> = Default::default();
            for (at, lat) in &phase.late {
                let w = windows
                    .entry(at.saturating_sub(phase_origin_us) / 250_000)
                    .or_default();
                w.0 += 1;
                w.1 = w.1.max(*lat);
            }
            for (w, (n, worst)) in windows {
                eprintln!(
                    "late: t={:.2}s n={n} worst={}ms",
                    w as f64 / 4.0,
                    worst / 1000
                );
            }
        }
        phase.ack_us.sort_unstable();
        let lost = phase
            .acked
            .iter()
            .filter(|s| !phase.received.contains_key(s))
            .count();
        let never_acked = (first_seq..seq)
            .filter(|s| !phase.acked.contains(s))
            .count();
        let duplicates: u64 = phase
            .received
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum();
        let result = serde_json::json!({
            "target": format!("{target:?}").to_lowercase(), "rate": rate, "secs": secs,
            "scheduled": total, "send_secs": send_secs,
            "acked": phase.acked.len(), "received": phase.received.len(),
            "lost_acked": lost, "never_acked": never_acked, "duplicates": duplicates,
            "connections_closed_so_far": shared.closed.load(Ordering::Relaxed),
            "p50_ms": percentile(&phase.latencies_us, 0.5),
            "p99_ms": percentile(&phase.latencies_us, 0.99),
            "p999_ms": percentile(&phase.latencies_us, 0.999),
            "max_ms": percentile(&phase.latencies_us, 1.0),
            "ack_p50_ms": percentile(&phase.ack_us, 0.5),
            "ack_p99_ms": percentile(&phase.ack_us, 0.99),
        });
        println!("{result}");
        results.push(result);
    }
    Ok(())
}

/// `storm`: a client that survives the loss of its gateway.
#[allow(clippy::too_many_arguments)]
async fn storm_client(
    urls: Arc<Vec<String>>,
    person: Person,
    mut ws: Ws,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
    resumed: Arc<AtomicUsize>,
    resume_us: Arc<Mutex<Vec<[u64; 3]>>>,
    done_resume: Arc<Mutex<Option<Instant>>>,
    total: usize,
) {
    let target = Target::Despacio;
    let mut unacked: HashMap<u64, u64> = HashMap::new();
    let mut last_seen: Option<String> = None;
    let mut on_backup = false;
    let mut open = true;
    loop {
        let broken = loop {
            tokio::select! {
                cmd = cmds.recv(), if open => {
                    let Some(Cmd::Send { seq, at_us }) = cmd else { open = false; continue };
                    unacked.insert(seq, at_us);
                    if ws.send(Message::Text(send_frame(target, &person, seq, at_us).into())).await.is_err() {
                        break true;
                    }
                }
                incoming = ws.next() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                        Some(Ok(_)) => continue,
                    };
                    let now = shared.now_us();
                    match parse(target, &text) {
                        Seen::Ack(seq) => {
                            unacked.remove(&seq);
                            shared.phase.lock().unwrap_or_else(|p| p.into_inner()).acked.insert(seq);
                        }
                        Seen::Message { sender: Some(from), .. } if from == person.id => {}
                        Seen::Message { seq, at_us, id, .. } => {
                            if id.is_some() { last_seen = id; }
                            let mut phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
                            *phase.received.entry(seq).or_default() += 1;
                            phase.via.entry(seq).or_default().push(if on_backup { 2 } else { 0 });
                            phase.latencies_us.push(now.saturating_sub(at_us));
                        }
                        _ => {}
                    }
                }
            }
        };
        if !broken || on_backup {
            return;
        }
        // The gateway is gone: reconnect to the other one, resume, re-send what was not acked.
        on_backup = true;
        // Resume latency is measured from the (jittered) reconnection attempt.
        tokio::time::sleep(jitter_for(&person.id)).await;
        let began = Instant::now();
        ws = loop {
            match connect(target, &urls[1], &person).await {
                Ok(ws) => break ws,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let position = last_seen
            .as_deref()
            .map_or("null".to_owned(), |id| format!("\"{id}\""));
        let frame = format!(
            r#"{{"type":"resume","positions":{{"{}":{position}}}}}"#,
            person.conversation
        );
        // Three clocks: reconnection attempt → `ready`, `resume` sent → `resumed`, and the whole.
        let ready_us = began.elapsed().as_micros() as u64;
        let asked = Instant::now();
        if ws.send(Message::Text(frame.into())).await.is_err() {
            return;
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => match parse(target, &text) {
                    Seen::Resumed => break,
                    // My own messages come back in a replay (a new device needs them).
                    Seen::Message {
                        sender: Some(from), ..
                    } if from == person.id => {}
                    Seen::Message { seq, at_us, id, .. } => {
                        if id.is_some() {
                            last_seen = id;
                        }
                        let now = shared.now_us();
                        let mut phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
                        *phase.received.entry(seq).or_default() += 1;
                        phase.via.entry(seq).or_default().push(1);
                        phase.latencies_us.push(now.saturating_sub(at_us));
                    }
                    Seen::Ack(seq) => {
                        unacked.remove(&seq);
                        shared
                            .phase
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .acked
                            .insert(seq);
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => return,
            }
        }
        resume_us.lock().unwrap_or_else(|p| p.into_inner()).push([
            began.elapsed().as_micros() as u64,
            ready_us,
            asked.elapsed().as_micros() as u64,
        ]);
        if resumed.fetch_add(1, Ordering::SeqCst) + 1 == total {
            *done_resume.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        let mut retry: Vec<(u64, u64)> = unacked.iter().map(|(s, a)| (*s, *a)).collect();
        retry.sort_unstable();
        for (seq, at_us) in retry {
            if ws
                .send(Message::Text(
                    send_frame(target, &person, seq, at_us).into(),
                ))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn storm(
    urls: Vec<String>,
    clients: usize,
    kill_pid: u32,
    rate: u64,
    redis: String,
    prefix: String,
) -> anyhow::Result<()> {
    let people = people(Target::Despacio, clients / 2, &redis, &prefix).await?;
    let first = vec![urls[0].clone(), urls[0].clone()];
    let held = connect_all(Target::Despacio, &first, &people).await?;
    let total = held.len();
    eprintln!("{total} connections on the first gateway");
    let shared = Arc::new(Shared {
        start: Instant::now(),
        phase: Mutex::new(Phase::default()),
        sent: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    });
    let resumed = Arc::new(AtomicUsize::new(0));
    let resume_us = Arc::new(Mutex::new(Vec::new()));
    let done_resume = Arc::new(Mutex::new(None));
    let urls = Arc::new(urls);
    let mut senders = Vec::new();
    for (ws, person) in held {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tokio::spawn(storm_client(
            urls.clone(),
            person,
            ws,
            rx,
            shared.clone(),
            resumed.clone(),
            resume_us.clone(),
            done_resume.clone(),
            total,
        ));
    }
    let start = Instant::now();
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut killed_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    loop {
        tick.tick().await;
        let due = start.elapsed().as_micros() as u64 * rate / 1_000_000;
        while seq < due {
            let _ = senders[next].send(Cmd::Send {
                seq,
                at_us: shared.now_us(),
            });
            next = (next + 1) % senders.len();
            seq += 1;
        }
        if killed_at.is_none() && start.elapsed() > Duration::from_secs(5) {
            std::process::Command::new("kill")
                .args(["-KILL", &kill_pid.to_string()])
                .status()?;
            killed_at = Some(Instant::now());
            eprintln!("killed gateway {kill_pid} after {seq} messages scheduled");
        }
        if let Some(killed) = killed_at {
            let all = resumed.load(Ordering::SeqCst) == total;
            if (all && killed.elapsed() > Duration::from_secs(3))
                || killed.elapsed() > Duration::from_secs(60)
            {
                break;
            }
        }
    }
    drop(senders);
    // Drain.
    let drain = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
        let missing = phase
            .acked
            .iter()
            .filter(|s| !phase.received.contains_key(s))
            .count();
        drop(phase);
        if missing == 0 || drain.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let killed = killed_at.unwrap_or(start);
    let all_resumed_secs = done_resume
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|t| t.duration_since(killed).as_secs_f64());
    let clocks = std::mem::take(&mut *resume_us.lock().unwrap_or_else(|p| p.into_inner()));
    let sorted = |i: usize| {
        let mut v: Vec<u64> = clocks.iter().map(|c| c[i]).collect();
        v.sort_unstable();
        v
    };
    let (lat, ready, frame) = (sorted(0), sorted(1), sorted(2));
    let phase = shared.phase.lock().unwrap_or_else(|p| p.into_inner());
    let missing = phase
        .acked
        .iter()
        .filter(|s| !phase.received.contains_key(s))
        .count();
    let duplicates: u64 = phase
        .received
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    let mut paths: HashMap<String, u64> = HashMap::new();
    for v in phase.via.values().filter(|v| v.len() > 1) {
        *paths.entry(format!("{v:?}")).or_default() += 1;
    }
    println!(
        "{}",
        serde_json::json!({
            "jitter_ms": JITTER_MS.get().copied().unwrap_or(0),
            "duplicates_by_path": paths,
            "clients": total, "rate": rate, "scheduled": seq,
            "resumed": resumed.load(Ordering::SeqCst),
            "all_resumed_secs_after_kill": all_resumed_secs,
            "resume_p50_ms": percentile(&lat, 0.5), "resume_p99_ms": percentile(&lat, 0.99),
            "resume_max_ms": percentile(&lat, 1.0),
            "ready_p50_ms": percentile(&ready, 0.5), "ready_p99_ms": percentile(&ready, 0.99),
            "resume_frame_p50_ms": percentile(&frame, 0.5),
            "resume_frame_p99_ms": percentile(&frame, 0.99),
            "resume_frame_max_ms": percentile(&frame, 1.0),
            "acked": phase.acked.len(), "received": phase.received.len(),
            "acked_missing": missing, "duplicates": duplicates,
        })
    );
    Ok(())
}

fn split(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Idle {
            target,
            url,
            connections,
            redis,
            prefix,
        } => {
            idle(
                target,
                url.trim_end_matches('/').to_owned(),
                connections,
                redis,
                prefix,
            )
            .await
        }
        Command::Rate {
            target,
            urls,
            pairs,
            rates,
            secs,
            redis,
            prefix,
        } => {
            let rates = rates
                .split(',')
                .map(|r| r.trim().parse())
                .collect::<Result<Vec<u64>, _>>()?;
            rate(target, split(&urls), pairs, rates, secs, redis, prefix).await
        }
        Command::Storm {
            urls,
            clients,
            kill_pid,
            rate,
            jitter_ms,
            redis,
            prefix,
        } => {
            let _ = JITTER_MS.set(jitter_ms);
            storm(split(&urls), clients, kill_pid, rate, redis, prefix).await
        }
    }
}
