//! One WebSocket connection: handshake and authentication, then one task that reads frames and
//! writes what the hub queued for it. Replies (`ack`, `error`, `resumed`, replayed messages) are
//! written by the task itself, in order; live traffic arrives through the bounded outbound
//! queue ([`crate::hub::Conn`]).
use std::{
    collections::{HashMap, VecDeque},
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use entities::{auth::AccessClaims, chat::StreamId};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        handshake::server::{ErrorResponse, Request, Response},
        http::{header, HeaderValue, StatusCode},
        protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig},
        Message, Utf8Bytes,
    },
    WebSocketStream,
};
use uuid::Uuid;

use crate::{
    hub::{Conn, Hub, LogSubscription, Out, Proof, Registration},
    protocol::{self, ClientFrame, ErrorCode, ErrorFrame},
    store::{Membership, SendOutcome},
};

/// Largest frame or message accepted from a client.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// The subprotocol browsers offer (with `bearer.<token>`); the server selects it.
pub const SUBPROTOCOL: &str = "despacio.v1";
/// Conversations per `resume` frame.
pub const MAX_RESUME: usize = 200;
/// `resume` frames accepted per connection and minute (each may replay a lot).
pub const RESUMES_PER_MINUTE: usize = 10;
/// `typing` frames relayed per conversation and connection.
pub const TYPING_EVERY: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A "verified" mark outlives its token's expiry by the leeway the claims check allows.
const VERIFIED_MARK_LEEWAY_S: i64 = 5;
const REPLAY_PAGE: usize = 500;

/// Verifies access tokens with the API's public key (no call to the API).
///
/// **Remembered verifications.** The Ed25519 check is the largest single part of a connection's
/// set-up: ≈ 60–100 µs of CPU, a quarter of a gateway's work per reconnection in a storm
/// (bench/RESULTS.md). A gateway that verified a token's signature leaves a mark in Redis,
/// named by the SHA-256 of the verifying key and of the whole token, that lives until the token
/// expires. A gateway that finds the mark — in the same Redis call that checks the session
/// against revocations and records the presence, so it costs no round trip — accepts the token
/// after checking its header and claims (algorithm, key id, expiry, issuer, audience) but not
/// its signature again. A token changed in any byte has another digest, hence no mark, and is
/// verified; a new signing key names other marks. Redis is trusted here as it already is for
/// revocations and conversation membership. When every gateway holding many people dies at
/// once, the others take them back without one signature check each.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    /// The same rules without the signature (for a token whose mark exists).
    claims_only: Validation,
    kid: Option<String>,
    /// The verifying key (DER), hashed into every mark's name.
    public_key: Vec<u8>,
}

/// A token whose header and claims passed, signature not checked yet.
pub struct Token {
    pub claims: AccessClaims,
    /// Hex SHA-256 of the verifying key and the token: the name of its "verified" mark.
    pub digest: String,
}

impl Verifier {
    pub fn new(public_key: &[u8], kid: Option<String>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[entities::auth::ISSUER]);
        validation.set_audience(&[entities::auth::AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = VERIFIED_MARK_LEEWAY_S as u64;
        let mut claims_only = validation.clone();
        claims_only.insecure_disable_signature_validation();
        Self {
            key: DecodingKey::from_ed_der(public_key),
            validation,
            claims_only,
            kid,
            public_key: public_key.to_vec(),
        }
    }

    fn header(&self, token: &str) -> Result<(), &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "invalid token")?;
        if header.alg != Algorithm::EdDSA {
            return Err("invalid token");
        }
        if let Some(kid) = &self.kid {
            if header.kid.as_deref() != Some(kid.as_str()) {
                return Err("invalid token");
            }
        }
        Ok(())
    }

    /// Everything checked, signature included: the claims, or the close reason.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, &'static str> {
        self.header(token)?;
        jsonwebtoken::decode::<AccessClaims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                _ => "invalid token",
            })
    }

    /// Header and claims checked, not the signature (see [`Verifier`]); on failure the same
    /// reason a full verification gives (a forged expired token is "invalid", not "expired").
    pub fn claims(&self, token: &str) -> Result<Token, &'static str> {
        let checked = self.header(token).and_then(|()| {
            jsonwebtoken::decode::<AccessClaims>(token, &self.key, &self.claims_only)
                .map_err(|_| "invalid token")
        });
        match checked {
            Ok(data) => Ok(Token {
                claims: data.claims,
                digest: self.digest(token),
            }),
            Err(_) => Err(self.verify(token).err().unwrap_or("invalid token")),
        }
    }

    fn digest(&self, token: &str) -> String {
        use std::fmt::Write;
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(&(self.public_key.len() as u64).to_be_bytes());
        context.update(&self.public_key);
        context.update(token.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in context.finish().as_ref() {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// What every connection needs besides the hub.
pub struct Context {
    pub verifier: Verifier,
    pub heartbeat: Duration,
    pub auth_timeout: Duration,
    /// Admission control: how many connections are verified and registered at the same time.
    /// In a reconnect storm the others wait here, first come first served, instead of every
    /// connection of the gateway (and the resumes of those already back) slowing down alike.
    /// Taken only once the client has sent its token: a slow client cannot hold a place.
    pub admissions: tokio::sync::Semaphore,
}

/// Frames fed to a connection are written together once this many bytes wait, or at the next
/// flush: a replay, or the frames a busy connection's queue holds, go out in a few system calls.
/// Small, because tungstenite keeps its output buffer at the largest size it ever reached: a
/// connection that once replayed a long history keeps about this much (plus its largest frame).
const WRITE_BUFFER: usize = 2 * 1024;

fn ws_config() -> WebSocketConfig {
    // Small buffers: an idle connection costs a few KiB (see bench/RESULTS.md). The write
    // buffer grows only while frames wait for a flush.
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

type Ws = WebSocketStream<TcpStream>;

async fn close(ws: &mut Ws, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(Some(frame))).await;
}

async fn write(ws: &mut Ws, text: String) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

/// Serves one TCP connection whose request is `GET /v1/chat`.
///
/// Memory: the setup (handshake, authentication, registration) runs in a boxed future that is
/// freed once the connection is ready, so what an idle connection keeps is the stream, the
/// session and a small select state (see bench/RESULTS.md).
pub async fn serve(hub: Arc<Hub>, ctx: Arc<Context>, stream: TcpStream, accepted: Instant) {
    let Some((ws, conn)) = Box::pin(setup(&hub, &ctx, stream, accepted)).await else {
        return;
    };
    let mut session = Session {
        hub: &hub,
        conn: &conn,
        ws,
        seen: HashMap::new(),
        typing_at: HashMap::new(),
        read_marks: HashMap::new(),
        relayed: false,
        resumes: VecDeque::new(),
    };
    session.run().await;
    drop(session);
    hub.end_logs(conn.id);
    Box::pin(hub.unregister(&conn)).await;
}

/// Handshake, authentication, registration and `ready`; `None` when the connection ended.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
async fn setup(
    hub: &Arc<Hub>,
    ctx: &Context,
    stream: TcpStream,
    accepted: Instant,
) -> Option<(Ws, Arc<Conn>)> {
    let _ = stream.set_nodelay(true);
    let mut header_token: Option<String> = None;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != "/v1/chat" {
            let mut not_found = ErrorResponse::new(Some("not found".into()));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            return Err(not_found);
        }
        if let Some(value) = req.headers().get(header::AUTHORIZATION) {
            if let Some(token) = value.to_str().ok().and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            }) {
                header_token = Some(token.trim().to_owned());
            }
        }
        let mut select = false;
        for value in req.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL) {
            for offer in value.to_str().unwrap_or("").split(',').map(str::trim) {
                if offer == SUBPROTOCOL {
                    select = true;
                } else if let Some(token) = offer.strip_prefix("bearer.") {
                    if header_token.is_none() {
                        header_token = Some(token.to_owned());
                    }
                }
            }
        }
        if select {
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        Ok(resp)
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config()));
    let mut ws = match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(ws)) => ws,
        _ => return None,
    };
    let token = match header_token {
        Some(token) => token,
        None => match first_auth_frame(&mut ws, ctx.auth_timeout).await {
            Ok(token) => token,
            Err(reason) => {
                hub.metrics.closes.with_label_values(&["4001"]).inc();
                close(&mut ws, 4001, reason).await;
                return None;
            }
        },
    };
    let Some(admitted) = admit(hub, ctx).await else {
        hub.metrics.closes.with_label_values(&["1013"]).inc();
        close(
            &mut ws,
            1013,
            "try again later: reconnect after a random delay",
        )
        .await;
        return None;
    };
    // The admission place covers the server's own work only (verification and registration),
    // never a write to the client.
    let checked = ctx.verifier.claims(&token);
    let registered = match &checked {
        Ok(checked) if !hub.stopping.load(Ordering::Relaxed) => {
            // Registration checks the session against revocations (4003) and the token's
            // signature, unless a gateway verified this very token before, in the same Redis
            // call that records the presence.
            let verify = || ctx.verifier.verify(&token).is_ok();
            let proof = Proof {
                mark: hub.store.keys.chat_verified_token(&checked.digest),
                // (Claims not proven yet: any `exp` must not overflow.)
                expires_ms: checked
                    .claims
                    .exp
                    .saturating_add(VERIFIED_MARK_LEEWAY_S)
                    .saturating_mul(1000),
                verify: &verify,
            };
            Some(
                hub.register(checked.claims.sub, checked.claims.sid, proof)
                    .await,
            )
        }
        _ => None,
    };
    drop(admitted);
    let claims = match checked {
        Ok(checked) => checked.claims,
        Err(reason) => {
            hub.metrics.closes.with_label_values(&["4001"]).inc();
            close(&mut ws, 4001, reason).await;
            return None;
        }
    };
    let conn = match registered {
        Some(Ok(Registration::Ready(conn))) => conn,
        None => {
            close(&mut ws, 1012, "service restart").await;
            return None;
        }
        Some(Ok(Registration::Revoked)) => {
            hub.metrics.closes.with_label_values(&["4003"]).inc();
            close(&mut ws, 4003, "session revoked").await;
            return None;
        }
        Some(Ok(Registration::Invalid)) => {
            hub.metrics.closes.with_label_values(&["4001"]).inc();
            close(&mut ws, 4001, "invalid token").await;
            return None;
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "registration failed");
            close(&mut ws, 1011, "store unavailable").await;
            return None;
        }
    };
    let (count, _) = hub.store.limit();
    let ready = protocol::ready(claims.sub, claims.sid, ctx.heartbeat.as_secs(), count);
    hub.metrics
        .setup_seconds
        .observe(accepted.elapsed().as_secs_f64());
    if write(&mut ws, ready).await {
        Some((ws, conn))
    } else {
        hub.unregister(&conn).await;
        None
    }
}

/// An admission place (see [`Context::admissions`]), or `None` after waiting `auth_timeout` for
/// one in vain.
async fn admit<'a>(hub: &Hub, ctx: &'a Context) -> Option<tokio::sync::SemaphorePermit<'a>> {
    if let Ok(permit) = ctx.admissions.try_acquire() {
        return Some(permit);
    }
    hub.metrics.admission_waits.inc();
    tokio::time::timeout(ctx.auth_timeout, ctx.admissions.acquire())
        .await
        .ok()?
        .ok()
}

async fn first_auth_frame(ws: &mut Ws, deadline: Duration) -> Result<String, &'static str> {
    let frame = tokio::time::timeout(deadline, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await
    .map_err(|_| "no auth frame in time")?
    .ok_or("expected an auth frame")?;
    match serde_json::from_str::<ClientFrame>(&frame) {
        Ok(ClientFrame::Auth { token }) => Ok(token),
        _ => Err("missing token: send an auth frame first"),
    }
}

/// What the connection task keeps while it runs. Every byte here is paid by every idle connection:
/// one more word once cost 250–400 bytes each, the task's allocation crossing into the
/// allocator's next size class (`bench/RESULTS.md`, idle check). Keep what few connections use
/// in the hub, keyed by connection, and measure with `bench/chat-idle.sh` after any change.
struct Session<'a> {
    hub: &'a Arc<Hub>,
    conn: &'a Arc<Conn>,
    ws: Ws,
    /// Per conversation: the first message id delivered live, and the newest delivered.
    seen: HashMap<Uuid, (StreamId, StreamId)>,
    typing_at: HashMap<Uuid, Instant>,
    /// The last read mark relayed per conversation.
    read_marks: HashMap<Uuid, StreamId>,
    /// Whether the last relay reached a conversation of mine.
    relayed: bool,
    /// Recent `resume` frames (at most [`RESUMES_PER_MINUTE`] a minute).
    resumes: VecDeque<Instant>,
}

/// How often a log subscription checks that its admin is still one.
const LOG_ROLE_RECHECK: Duration = Duration::from_secs(30);

/// Forwards this process's log events at `level` or above to `conn` until it closes, or until
/// its person is no longer an admin (checked every [`LOG_ROLE_RECHECK`]); events that find its
/// queue busy are skipped and counted in the next frame (with those the listener fell behind
/// on, whatever their level).
async fn forward_logs(hub: Arc<Hub>, conn: Arc<Conn>, level: Arc<std::sync::atomic::AtomicU8>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = entities::logs::subscribe();
    let mut skipped = 0u64;
    let mut recheck = tokio::time::interval(LOG_ROLE_RECHECK);
    recheck.tick().await;
    loop {
        let received = tokio::select! {
            received = events.recv() => received,
            _ = recheck.tick() => {
                let still = hub.store.role_of(conn.user).await;
                if !matches!(still, Ok(Some(role)) if role == "admin") {
                    let refused = ErrorFrame::new(ErrorCode::Unauthorized, "logs are for admins");
                    conn.push(Out::Text(refused.text().into()));
                    return;
                }
                continue;
            }
        };
        let event = match received {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                skipped += n;
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let min = entities::logs::LEVELS[usize::from(level.load(Ordering::Relaxed))].1;
        if !entities::logs::at_least(&event, min) {
            continue;
        }
        let frame = protocol::log(&event.json, skipped);
        match conn.push_if_room(Out::Text(frame.into())) {
            Some(true) => skipped = 0,
            Some(false) => skipped += 1,
            None => return,
        }
    }
}

enum Step {
    Continue,
    Stop,
}

impl Session<'_> {
    async fn run(&mut self) {
        let mut pending = VecDeque::new();
        loop {
            // The handlers are boxed: an idle connection's task then holds only the small
            // select state, not the largest handler's (see bench/RESULTS.md, memory).
            let step = tokio::select! {
                biased;
                _ = self.conn.wake.notified() => Box::pin(self.drain(&mut pending)).await,
                incoming = self.ws.next() => Box::pin(self.incoming(incoming)).await,
            };
            if matches!(step, Step::Stop) {
                return;
            }
        }
    }

    async fn drain(&mut self, pending: &mut VecDeque<Out>) -> Step {
        let closing = self.conn.take(pending);
        let mut wrote = false;
        for out in pending.drain(..) {
            let message = match out {
                Out::Text(text) => Message::Text(text),
                Out::Message {
                    resonance,
                    id,
                    text,
                } => {
                    match self.seen.get_mut(&resonance) {
                        Some((_, last)) if id <= *last => continue,
                        Some((first, last)) => {
                            if first.ms == u64::MAX {
                                *first = id;
                            }
                            *last = id;
                        }
                        None => {
                            self.seen.insert(resonance, (id, id));
                        }
                    }
                    self.hub.metrics.messages_out.inc();
                    Message::Text(text)
                }
                Out::Ping => Message::Ping(Default::default()),
            };
            // A client that stops reading blocks `feed` once the socket is full: bounded too.
            if !matches!(
                tokio::time::timeout(WRITE_TIMEOUT, self.ws.feed(message)).await,
                Ok(Ok(()))
            ) {
                self.hub
                    .metrics
                    .closes
                    .with_label_values(&["timeout"])
                    .inc();
                return Step::Stop;
            }
            wrote = true;
        }
        if wrote
            && !matches!(
                tokio::time::timeout(WRITE_TIMEOUT, self.ws.flush()).await,
                Ok(Ok(()))
            )
        {
            self.hub
                .metrics
                .closes
                .with_label_values(&["timeout"])
                .inc();
            return Step::Stop;
        }
        if let Some((code, reason)) = closing {
            self.hub
                .metrics
                .closes
                .with_label_values(&[&code.to_string()])
                .inc();
            close(&mut self.ws, code, reason).await;
            return Step::Stop;
        }
        Step::Continue
    }

    async fn incoming(
        &mut self,
        incoming: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Step {
        use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
        self.conn
            .last_heard
            .store(self.hub.now_ms(), Ordering::Relaxed);
        match incoming {
            None | Some(Ok(Message::Close(_))) => Step::Stop,
            Some(Err(Error::Capacity(CapacityError::MessageTooLong { .. }))) => {
                self.hub.metrics.closes.with_label_values(&["1009"]).inc();
                close(&mut self.ws, 1009, "frame too big (16 KiB at most)").await;
                Step::Stop
            }
            Some(Err(_)) => Step::Stop,
            Some(Ok(Message::Text(text))) => {
                self.hub.metrics.frames_in.inc();
                self.frame(&text).await
            }
            Some(Ok(Message::Binary(_))) => {
                self.error(ErrorFrame::new(
                    ErrorCode::BadFrame,
                    "frames are JSON text, not binary",
                ))
                .await
            }
            Some(Ok(Message::Ping(_))) => {
                // tungstenite queued the pong; send it now.
                match tokio::time::timeout(WRITE_TIMEOUT, self.ws.flush()).await {
                    Ok(Ok(())) => Step::Continue,
                    _ => Step::Stop,
                }
            }
            Some(Ok(_)) => Step::Continue,
        }
    }

    async fn reply(&mut self, text: String) -> Step {
        if write(&mut self.ws, text).await {
            Step::Continue
        } else {
            Step::Stop
        }
    }

    async fn error(&mut self, error: ErrorFrame) -> Step {
        let code = serde_json::to_value(error.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.hub.metrics.errors.with_label_values(&[&code]).inc();
        self.reply(error.text()).await
    }

    async fn frame(&mut self, text: &str) -> Step {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => return self.error(protocol::parse_error(text, &e)).await,
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.error(ErrorFrame::new(
                    ErrorCode::BadFrame,
                    "already authenticated",
                ))
                .await
            }
            ClientFrame::Ping => self.reply(protocol::PONG.to_owned()).await,
            ClientFrame::Send {
                resonance_id,
                client_id,
                body,
            } => self.send(resonance_id, client_id, body).await,
            ClientFrame::Resume { positions } => self.resume(positions).await,
            ClientFrame::Typing { resonance_id } => self.typing(resonance_id).await,
            ClientFrame::Read {
                resonance_id,
                message_id,
            } => self.read(resonance_id, message_id).await,
            ClientFrame::SubscribeLogs { level } => self.subscribe_logs(level).await,
        }
    }

    async fn subscribe_logs(&mut self, level: Option<String>) -> Step {
        let name = level
            .unwrap_or_else(|| "info".to_owned())
            .to_ascii_lowercase();
        let Some(index) = entities::logs::LEVELS.iter().position(|(l, _)| *l == name) else {
            return self
                .error(
                    ErrorFrame::new(
                        ErrorCode::InvalidField,
                        "`level` is one of error, warn, info, debug",
                    )
                    .field("level"),
                )
                .await;
        };
        let refused = || ErrorFrame::new(ErrorCode::Unauthorized, "logs are for admins");
        if self.hub.log_refused(self.conn.id) {
            return self.error(refused()).await;
        }
        match self.hub.store.role_of(self.conn.user).await {
            Ok(Some(role)) if role == "admin" => {}
            Ok(_) => {
                self.hub.set_logs(self.conn.id, LogSubscription::Refused);
                return self.error(refused()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "role lookup failed");
                return self
                    .error(ErrorFrame::new(ErrorCode::Unavailable, "try again shortly"))
                    .await;
            }
        }
        if !self.hub.set_log_level(self.conn.id, index as u8) {
            let level = Arc::new(std::sync::atomic::AtomicU8::new(index as u8));
            let task = tokio::spawn(forward_logs(
                self.hub.clone(),
                self.conn.clone(),
                level.clone(),
            ));
            self.hub
                .set_logs(self.conn.id, LogSubscription::Active { task, level });
        }
        self.reply(protocol::logs_subscribed(entities::logs::LEVELS[index].0))
            .await
    }

    async fn send(&mut self, resonance: Uuid, client_id: String, body: String) -> Step {
        let started = Instant::now();
        if client_id.is_empty() || client_id.chars().count() > 64 {
            return self
                .error(
                    ErrorFrame::new(
                        ErrorCode::InvalidField,
                        "`client_id` must be 1 to 64 characters",
                    )
                    .field("client_id")
                    .resonance(resonance),
                )
                .await;
        }
        let chars = body.chars().count();
        if chars > entities::chat::MAX_BODY_CHARS {
            return self
                .error(
                    ErrorFrame::new(
                        ErrorCode::TooBig,
                        format!(
                            "`body` has {chars} characters; at most {} are allowed",
                            entities::chat::MAX_BODY_CHARS
                        ),
                    )
                    .field("body")
                    .client(&client_id)
                    .resonance(resonance),
                )
                .await;
        }
        if body.trim().is_empty() {
            return self
                .error(
                    ErrorFrame::new(ErrorCode::InvalidField, "`body` must not be empty")
                        .field("body")
                        .client(&client_id)
                        .resonance(resonance),
                )
                .await;
        }
        let sent_at = protocol::timestamp(chrono::Utc::now());
        let head = protocol::message_head(resonance, self.conn.user, &client_id, &body, &sent_at);
        let others = self.hub.has_other_local(self.conn);
        let outcome = self
            .hub
            .store
            .send(
                self.conn.user,
                &self.conn.origin,
                others,
                resonance,
                &client_id,
                &body,
                &sent_at,
                &head,
            )
            .await;
        match outcome {
            Ok(SendOutcome::Stored { id, receivers }) => {
                self.hub.metrics.messages_in.inc();
                self.hub
                    .metrics
                    .ack_seconds
                    .observe(started.elapsed().as_secs_f64());
                if receivers == 0 {
                    tracing::info!(%resonance, message_id = %id, "recipient not connected: message.new over SSE");
                    self.notify_offline(resonance, &id);
                }
                self.reply(protocol::ack(resonance, &client_id, &id, &sent_at, false))
                    .await
            }
            Ok(SendOutcome::Duplicate { id, sent_at }) => {
                self.reply(protocol::ack(resonance, &client_id, &id, &sent_at, true))
                    .await
            }
            Ok(SendOutcome::NotMember) => {
                self.error(
                    ErrorFrame::new(
                        ErrorCode::NotMember,
                        "this conversation does not exist or is not yours",
                    )
                    .client(&client_id)
                    .resonance(resonance),
                )
                .await
            }
            Ok(SendOutcome::RateLimited { retry_after_ms }) => {
                let (count, period) = self.hub.store.limit();
                let mut error = ErrorFrame::new(
                    ErrorCode::RateLimited,
                    format!("at most {count} messages per {} s", period.as_secs()),
                )
                .client(&client_id)
                .resonance(resonance);
                error.retry_after = Some(retry_after_ms.div_ceil(1000).max(1));
                self.error(error).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "send failed");
                self.error(
                    ErrorFrame::new(
                        ErrorCode::Unavailable,
                        "the message could not be stored; retry with the same client_id",
                    )
                    .client(&client_id)
                    .resonance(resonance),
                )
                .await
            }
        }
    }

    /// The recipient is connected to no gateway: tell them over SSE (`message.new`).
    fn notify_offline(&self, resonance: Uuid, id: &str) {
        let hub = self.hub.clone();
        let sender = self.conn.user;
        let id = id.to_owned();
        tokio::spawn(async move {
            let partner = match hub
                .store
                .resume_page(sender, resonance, &id, 0, false)
                .await
            {
                Ok(Membership::Member(page)) => page.partner,
                _ => return,
            };
            if let Err(e) = hub
                .store
                .notify_offline(partner, resonance, &id, sender)
                .await
            {
                tracing::warn!(error = %e, "message.new event failed");
            }
        });
    }

    async fn resume(&mut self, positions: HashMap<Uuid, Option<String>>) -> Step {
        let now = Instant::now();
        while self
            .resumes
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            self.resumes.pop_front();
        }
        if self.resumes.len() >= RESUMES_PER_MINUTE {
            let mut error = ErrorFrame::new(
                ErrorCode::RateLimited,
                format!("at most {RESUMES_PER_MINUTE} resume frames a minute per connection"),
            );
            let oldest = self.resumes.front().copied().unwrap_or(now);
            error.retry_after = Some(
                60u64
                    .saturating_sub(now.duration_since(oldest).as_secs())
                    .max(1),
            );
            return self.error(error).await;
        }
        self.resumes.push_back(now);
        if positions.len() > MAX_RESUME {
            return self
                .error(
                    ErrorFrame::new(
                        ErrorCode::InvalidField,
                        format!("at most {MAX_RESUME} conversations per resume frame"),
                    )
                    .field("positions"),
                )
                .await;
        }
        let mut parsed = Vec::with_capacity(positions.len());
        for (resonance, position) in positions {
            let position = match position.as_deref().map(str::parse::<StreamId>) {
                None => StreamId::ZERO,
                Some(Ok(id)) => id,
                Some(Err(())) => {
                    return self
                        .error(
                            ErrorFrame::new(
                                ErrorCode::InvalidField,
                                "positions are message ids (`<ms>-<seq>`) or null",
                            )
                            .field("positions")
                            .resonance(resonance),
                        )
                        .await
                }
            };
            parsed.push((resonance, position));
        }
        for (resonance, position) in parsed {
            if let Step::Stop = self.resume_one(resonance, position, now).await {
                return Step::Stop;
            }
        }
        Step::Continue
    }

    async fn resume_one(&mut self, resonance: Uuid, position: StreamId, asked: Instant) -> Step {
        let first_live = self.seen.get(&resonance).map(|s| s.0);
        let mut after = position.to_string();
        let mut first = true;
        let mut recovered = true;
        let mut replayed = 0;
        let mut latest = None;
        let mut partner = None;
        loop {
            let page = match self
                .hub
                .store
                .resume_page(self.conn.user, resonance, &after, REPLAY_PAGE, first)
                .await
            {
                Ok(Membership::Member(page)) => page,
                Ok(Membership::NotMember) => {
                    return self
                        .error(
                            ErrorFrame::new(
                                ErrorCode::NotMember,
                                "this conversation does not exist or is not yours",
                            )
                            .resonance(resonance),
                        )
                        .await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "resume failed");
                    return self
                        .error(
                            ErrorFrame::new(ErrorCode::Unavailable, "resume failed; retry")
                                .resonance(resonance),
                        )
                        .await;
                }
            };
            if first {
                recovered = page.recovered;
                latest = page.last.clone();
                partner = Some(page.partner);
            }
            first = false;
            for [id, sender, client_id, body, sent_at] in &page.entries {
                after.clone_from(id);
                let Ok(sid) = id.parse::<StreamId>() else {
                    continue;
                };
                if first_live.is_some_and(|live| sid >= live) {
                    continue;
                }
                let text = protocol::message(resonance, id, sender, client_id, body, sent_at);
                if !self.feed(text).await {
                    return Step::Stop;
                }
                self.hub.metrics.messages_out.inc();
                replayed += 1;
                let entry = self.seen.entry(resonance).or_insert((
                    StreamId {
                        ms: u64::MAX,
                        seq: 0,
                    },
                    sid,
                ));
                if sid > entry.1 {
                    entry.1 = sid;
                }
            }
            if !page.more {
                break;
            }
        }
        // `resumed` leaves at once (with the replay before it); the presence follows once the
        // partner is watched.
        let resumed = protocol::resumed(resonance, recovered, replayed, latest.as_deref());
        self.hub
            .metrics
            .resume_seconds
            .observe(asked.elapsed().as_secs_f64());
        if let Step::Stop = self.reply(resumed).await {
            return Step::Stop;
        }
        if let Some(partner) = partner {
            self.hub.watch(self.conn, resonance, partner).await;
            match self.hub.store.presence(partner).await {
                Ok((online, last_seen)) => {
                    self.hub.remember_told(partner, online);
                    let text = protocol::presence(partner, online, last_seen.as_deref());
                    return self.reply(text).await;
                }
                Err(e) => tracing::warn!(error = %e, "presence lookup failed"),
            }
        }
        Step::Continue
    }

    /// Queues a frame in the connection's write buffer (written at the next flush, or once the
    /// buffer holds [`WRITE_BUFFER`] bytes).
    async fn feed(&mut self, text: String) -> bool {
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, self.ws.feed(Message::Text(text.into()))).await,
            Ok(Ok(()))
        )
    }

    async fn typing(&mut self, resonance: Uuid) -> Step {
        let now = Instant::now();
        if self
            .typing_at
            .get(&resonance)
            .is_some_and(|at| now.duration_since(*at) < TYPING_EVERY)
        {
            return Step::Continue;
        }
        let frame = protocol::typing(resonance, self.conn.user);
        let step = self.relay(resonance, "typing", frame, "").await;
        if self.relayed {
            // Only conversations of mine are remembered (the map cannot be grown at will).
            self.typing_at.insert(resonance, now);
        }
        step
    }

    async fn read(&mut self, resonance: Uuid, message_id: String) -> Step {
        let Ok(mark) = message_id.parse::<StreamId>() else {
            return self
                .error(
                    ErrorFrame::new(ErrorCode::InvalidField, "`message_id` is not a message id")
                        .field("message_id")
                        .resonance(resonance),
                )
                .await;
        };
        // Read marks only move forward: a repeated or older mark is not relayed (a peer cannot
        // flood the other side with receipts).
        if self.read_marks.get(&resonance).is_some_and(|m| mark <= *m) {
            return Step::Continue;
        }
        let frame = protocol::read(resonance, &message_id, self.conn.user);
        let step = self.relay(resonance, "read", frame, &message_id).await;
        if self.relayed {
            self.read_marks.insert(resonance, mark);
        }
        step
    }

    async fn relay(&mut self, resonance: Uuid, kind: &str, frame: String, id: &str) -> Step {
        self.relayed = false;
        match self
            .hub
            .store
            .relay(
                self.conn.user,
                &self.conn.origin,
                resonance,
                kind,
                &frame,
                id,
            )
            .await
        {
            Ok(Membership::Member(())) => {
                self.relayed = true;
                Step::Continue
            }
            Ok(Membership::NotMember) => {
                self.error(
                    ErrorFrame::new(
                        ErrorCode::NotMember,
                        "this conversation does not exist or is not yours",
                    )
                    .resonance(resonance),
                )
                .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay failed");
                self.error(
                    ErrorFrame::new(ErrorCode::Unavailable, "try again").resonance(resonance),
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::KeyPair;

    fn public_key(seed: &[u8; 32]) -> Vec<u8> {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).expect("seed");
        pair.public_key().as_ref().to_vec()
    }

    fn token(seed: &[u8; 32], exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let key = jsonwebtoken::EncodingKey::from_ed_der(&entities::auth::ed25519_pkcs8(seed));
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            role: entities::auth::Role::User,
            iss: entities::auth::ISSUER.into(),
            aud: entities::auth::AUDIENCE.into(),
            iat: now - 10,
            exp: now + exp_in,
            auth_time: now - 10,
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::EdDSA), &claims, &key)
            .expect("token")
    }

    #[test]
    fn claims_are_checked_without_the_signature_and_the_mark_names_key_and_token() {
        let (ours, theirs) = ([7u8; 32], [9u8; 32]);
        let verifier = Verifier::new(&public_key(&ours), None);
        let good = token(&ours, 600);
        let forged = token(&theirs, 600);
        // A token signed with another key has valid-looking claims: only its signature tells
        // it apart, so it must never find a mark (see `register`).
        assert!(verifier.claims(&forged).is_ok());
        assert_eq!(verifier.verify(&forged).err(), Some("invalid token"));
        assert!(verifier.verify(&good).is_ok());
        let mark = verifier.claims(&good).expect("claims").digest;
        assert_eq!(mark.len(), 64);
        assert_eq!(verifier.claims(&good).expect("claims").digest, mark);
        assert_ne!(verifier.claims(&forged).expect("claims").digest, mark);
        // The same token under another verifying key names another mark.
        let other = Verifier::new(&public_key(&theirs), None);
        assert_ne!(other.claims(&good).expect("claims").digest, mark);
        // The signature is part of the name: the token with another signature names another
        // mark, and is refused once checked.
        let (signed, _) = good.rsplit_once('.').expect("jwt");
        let resigned = format!("{signed}.{}", forged.rsplit_once('.').expect("jwt").1);
        assert_ne!(verifier.claims(&resigned).expect("claims").digest, mark);
        assert!(verifier.verify(&resigned).is_err());
    }

    #[test]
    fn claims_refuse_what_a_full_verification_refuses_with_the_same_reason() {
        let (ours, theirs) = ([7u8; 32], [9u8; 32]);
        let verifier = Verifier::new(&public_key(&ours), None);
        assert_eq!(
            verifier.claims(&token(&ours, -100)).err(),
            Some("token expired")
        );
        // Expired and forged: "invalid", as a full verification says.
        assert_eq!(
            verifier.claims(&token(&theirs, -100)).err(),
            Some("invalid token")
        );
        assert_eq!(verifier.claims("e30.e30.c2ln").err(), Some("invalid token"));
        // A key id is required when the gateway is given one.
        let with_kid = Verifier::new(&public_key(&ours), Some("k1".into()));
        assert_eq!(
            with_kid.claims(&token(&ours, 600)).err(),
            Some("invalid token")
        );
    }
}
