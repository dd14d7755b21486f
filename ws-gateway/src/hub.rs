//! The connection registry and the Redis bridge of one gateway process.
//!
//! - Every person held here has their chat channel (`chat:user:{id}`) subscribed; every person
//!   whose presence a connection watches has their presence channel subscribed. Subscriptions
//!   are reference-counted and reconciled by one task, in batches, so a storm of connects costs
//!   a few `SUBSCRIBE` commands, and a connection only gets `ready` once its channel is live.
//! - One dispatcher task reads every pub/sub message and pushes the (already serialised) frame
//!   into the outbound queue of each local connection concerned.
//! - Control channels: session revocations (close 4003) and closed conversations (`closed`).
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
    time::Duration,
};

use entities::chat::StreamId;
use fred::{
    clients::SubscriberClient,
    prelude::{ClientLike, EventInterface, PubsubInterface, SortedSetsInterface},
};
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use crate::{metrics::Metrics, protocol, store::Store};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a connection's `subscribe_logs` came to.
pub enum LogSubscription {
    /// Not an admin: later requests are refused without asking the database again.
    Refused,
    /// The forwarding task and the level it reads (an index of the levels, 0 = error).
    Active {
        task: tokio::task::JoinHandle<()>,
        level: Arc<std::sync::atomic::AtomicU8>,
    },
}

/// Something to write to one connection.
pub enum Out {
    Text(Utf8Bytes),
    /// A chat message: the connection drops it when it already delivered this id.
    Message {
        resonance: Uuid,
        id: StreamId,
        text: Utf8Bytes,
    },
    Ping,
}

struct Outbox {
    items: VecDeque<Out>,
    closing: Option<(u16, &'static str)>,
}

/// One authenticated WebSocket connection, as the hub sees it.
pub struct Conn {
    pub id: u64,
    pub user: Uuid,
    pub session: Uuid,
    pub origin: String,
    outbox: Mutex<Outbox>,
    pub wake: Notify,
    /// Milliseconds since start of the last frame received (heartbeat bookkeeping).
    pub last_heard: AtomicU64,
    capacity: usize,
    /// The people whose presence this connection watches (possibly stale: an entry only says
    /// where to look when the connection closes, so that closing costs what it watched, not
    /// what the whole gateway watches).
    watching: Mutex<Vec<Uuid>>,
    /// Set (under the person's presence lock) once the connection's token and session passed and
    /// its presence is recorded. Until then it is listed only so that no revocation or message
    /// slips by; it counts for nothing about presence (a forged token, refused after its
    /// signature check, never raises, lowers or refreshes anyone's presence).
    proven: AtomicBool,
}

impl Conn {
    /// Queues a frame; a full queue marks the connection as a slow consumer (closed with 1008).
    pub fn push(&self, out: Out) -> bool {
        let mut outbox = lock(&self.outbox);
        if outbox.closing.is_some() {
            return false;
        }
        if outbox.items.len() >= self.capacity {
            outbox.items.clear();
            outbox.closing = Some((1008, "slow consumer: outbound queue full"));
            drop(outbox);
            self.wake.notify_one();
            return false;
        }
        outbox.items.push_back(out);
        drop(outbox);
        self.wake.notify_one();
        true
    }

    /// Queues a frame that may be dropped (a log event): `Some(false)` when the queue holds an
    /// eighth of its capacity already (the frame is dropped, the connection kept: log frames
    /// never bring the slow-consumer close much nearer), `None` once the connection is closing.
    pub fn push_if_room(&self, out: Out) -> Option<bool> {
        let mut outbox = lock(&self.outbox);
        if outbox.closing.is_some() {
            return None;
        }
        if outbox.items.len() >= (self.capacity / 8).max(1) {
            return Some(false);
        }
        outbox.items.push_back(out);
        drop(outbox);
        self.wake.notify_one();
        Some(true)
    }

    /// Asks the connection to close with `code`.
    pub fn close(&self, code: u16, reason: &'static str) {
        let mut outbox = lock(&self.outbox);
        if outbox.closing.is_none() {
            outbox.closing = Some((code, reason));
        }
        drop(outbox);
        self.wake.notify_one();
    }

    /// Takes what is queued (and the close request, if any).
    pub fn take(&self, into: &mut VecDeque<Out>) -> Option<(u16, &'static str)> {
        let mut outbox = lock(&self.outbox);
        std::mem::swap(&mut outbox.items, into);
        outbox.closing
    }
}

#[derive(Default)]
struct Subscriptions {
    wanted: HashMap<String, usize>,
    /// Channels whose count went to or from zero since the last reconciliation: a round looks
    /// at these only (a storm of connects must not rescan every channel at every round).
    dirty: HashSet<String>,
    requested: u64,
}

struct Watch {
    conn: Weak<Conn>,
    conn_id: u64,
    resonance: Uuid,
}

/// How a registration ended.
pub enum Registration {
    Ready(Arc<Conn>),
    /// The session was revoked: nothing of it is left registered, nobody was told it came online.
    Revoked,
    /// The token's signature is wrong (nothing left registered either).
    Invalid,
}

/// How a connecting token is to be trusted (see `conn::Verifier`).
pub struct Proof<'a> {
    /// Redis key of the token's "verified" mark.
    pub mark: String,
    /// When the token stops being accepted (ms since the epoch): the mark's end.
    pub expires_ms: i64,
    /// Checks the token's signature (when no gateway did before).
    pub verify: &'a (dyn Fn() -> bool + Sync),
}

/// What the presence script checks of a token's "verified" mark, or does with it.
pub enum Mark<'a> {
    /// It must exist (else nothing changes: [`Up::Unverified`]).
    Check(&'a str),
    /// The signature was just checked: set it, until the given time (ms since the epoch).
    Remember(&'a str, i64),
}

/// What the presence script did.
pub enum Up {
    Done,
    Revoked,
    Unverified,
}

/// What a gateway process holds.
pub struct Hub {
    pub store: Store,
    pub metrics: Metrics,
    subscriber: SubscriberClient,
    users: Mutex<HashMap<Uuid, Vec<Arc<Conn>>>>,
    watchers: Mutex<HashMap<Uuid, Vec<Watch>>>,
    subs: Mutex<Subscriptions>,
    /// Conversations closed in the last minutes: a resume racing the close cannot start
    /// watching a presence through them.
    closed: Mutex<HashMap<Uuid, std::time::Instant>>,
    /// One presence change at a time per person on this gateway (a quick reconnect must not
    /// see its "online" overtaken by the old connection's "offline").
    presence_locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// What watchers were last told about each watched person (online or not), so the heartbeat
    /// can push what changed without a frame — a crashed gateway's people going offline.
    told: Mutex<HashMap<Uuid, bool>>,
    /// How long a presence entry lives without a heartbeat.
    presence_ttl_ms: u64,
    subs_changed: Notify,
    subs_done: watch::Sender<u64>,
    /// The newest fence token of ours seen on the subscriber connection (see `reconcile`).
    fence_seen: watch::Sender<u64>,
    next_fence: AtomicU64,
    next_id: AtomicU64,
    started: std::time::Instant,
    queue_frames: usize,
    pub stopping: AtomicBool,
    /// Connections that sent `subscribe_logs`, by id (kept here, not in each connection's
    /// state: every idle connection would pay for the few that ask).
    logs: Mutex<HashMap<u64, LogSubscription>>,
    /// The people whose "offline" the shutdown announces (see [`Hub::stop`]).
    stopped_people: Mutex<HashSet<Uuid>>,
}

impl Hub {
    pub async fn start(
        store: Store,
        subscriber: SubscriberClient,
        metrics: Metrics,
        queue_frames: usize,
        heartbeat: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        subscriber.init().await?;
        drop(subscriber.manage_subscriptions());
        let keys = store.keys.clone();
        subscriber
            .subscribe(vec![
                keys.revocations_channel(),
                keys.conversations_channel(),
            ])
            .await?;
        let (subs_done, _) = watch::channel(0);
        let (fence_seen, _) = watch::channel(0);
        let hub = Arc::new(Self {
            store,
            metrics,
            subscriber,
            users: Mutex::default(),
            watchers: Mutex::default(),
            subs: Mutex::default(),
            closed: Mutex::default(),
            presence_locks: Mutex::default(),
            // 2.4 heartbeats (60 s with the default 25 s): a missed heartbeat is not enough to
            // look offline, two and a half are.
            presence_ttl_ms: (heartbeat.as_millis() as u64 * 12 / 5).max(1000),
            told: Mutex::default(),
            subs_changed: Notify::new(),
            subs_done,
            fence_seen,
            next_fence: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
            started: std::time::Instant::now(),
            queue_frames,
            stopping: AtomicBool::new(false),
            logs: Mutex::default(),
            stopped_people: Mutex::default(),
        });
        tokio::spawn(Self::dispatch(
            Arc::downgrade(&hub),
            hub.subscriber.message_rx(),
        ));
        tokio::spawn(Self::reconcile(hub.clone()));
        Ok(hub)
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn connections(&self) -> usize {
        lock(&self.users).values().map(Vec::len).sum()
    }

    /// Every connection (for heartbeats and shutdown).
    pub fn all(&self) -> Vec<Arc<Conn>> {
        lock(&self.users).values().flatten().cloned().collect()
    }

    /// The connections that `which` selects (a heartbeat slice).
    pub fn connections_where(&self, which: impl Fn(&Conn) -> bool) -> Vec<Arc<Conn>> {
        lock(&self.users)
            .values()
            .flatten()
            .filter(|c| which(c))
            .cloned()
            .collect()
    }

    /// The people held here.
    pub fn people(&self) -> Vec<Uuid> {
        self.people_where(|_| true)
    }

    /// The people held here with a proven connection (see [`Conn`]) that `which` selects.
    fn people_where(&self, which: impl Fn(&Uuid) -> bool) -> Vec<Uuid> {
        lock(&self.users)
            .iter()
            .filter(|(p, list)| which(p) && list.iter().any(|c| c.proven.load(Ordering::Relaxed)))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether `user` has a proven connection here.
    fn holds(&self, user: &Uuid) -> bool {
        lock(&self.users)
            .get(user)
            .is_some_and(|list| list.iter().any(|c| c.proven.load(Ordering::Relaxed)))
    }

    /// Other local connections of `user`?
    pub fn has_other_local(&self, conn: &Conn) -> bool {
        lock(&self.users)
            .get(&conn.user)
            .is_some_and(|list| list.iter().any(|c| c.id != conn.id))
    }

    fn want(&self, channels: &[String], delta: isize) -> u64 {
        let mut subs = lock(&self.subs);
        for channel in channels {
            let n = subs.wanted.entry(channel.clone()).or_default();
            let before = *n;
            *n = n.saturating_add_signed(delta);
            let after = *n;
            if after == 0 {
                subs.wanted.remove(channel);
            }
            if (before == 0) != (after == 0) {
                subs.dirty.insert(channel.clone());
            }
        }
        subs.requested += 1;
        let generation = subs.requested;
        drop(subs);
        self.subs_changed.notify_one();
        generation
    }

    async fn until_subscribed(&self, generation: u64) {
        let mut done = self.subs_done.subscribe();
        let _ = done.wait_for(|g| *g >= generation).await;
    }

    /// Applies the wanted subscriptions, in batches.
    async fn reconcile(this: Arc<Self>) {
        let mut actual: HashSet<String> = HashSet::new();
        // A channel subscribed whose fence did not come back: fenced again at the next round.
        let mut unconfirmed: Option<String> = None;
        loop {
            let notified = this.subs_changed.notified();
            let (generation, add, remove) = {
                let mut subs = lock(&this.subs);
                let dirty = std::mem::take(&mut subs.dirty);
                let mut add = Vec::new();
                let mut remove = Vec::new();
                for channel in dirty {
                    match (
                        subs.wanted.contains_key(&channel),
                        actual.contains(&channel),
                    ) {
                        (true, false) => add.push(channel),
                        (false, true) => remove.push(channel),
                        _ => {}
                    }
                }
                (subs.requested, add, remove)
            };
            let mut ok = true;
            for chunk in add.chunks(500) {
                match this.subscriber.subscribe(chunk.to_vec()).await {
                    Ok(()) => actual.extend(chunk.iter().cloned()),
                    Err(e) => {
                        ok = false;
                        lock(&this.subs).dirty.extend(chunk.iter().cloned());
                        tracing::warn!(error = %e, "subscribe failed; retrying");
                    }
                }
            }
            for chunk in remove.chunks(500) {
                match this.subscriber.unsubscribe(chunk.to_vec()).await {
                    Ok(()) => {
                        for c in chunk {
                            actual.remove(c);
                        }
                    }
                    Err(e) => {
                        ok = false;
                        lock(&this.subs).dirty.extend(chunk.iter().cloned());
                        tracing::warn!(error = %e, "unsubscribe failed; retrying");
                    }
                }
            }
            // fred resolves SUBSCRIBE as soon as it is written (its confirmation is out of band):
            // a connection may only be told it is ready once Redis has really subscribed. We
            // publish a fence to the newest channel and wait to see it come back.
            if ok {
                if let Some(channel) = add.last().cloned().or_else(|| unconfirmed.take()) {
                    ok = this.fence(&channel).await;
                    if !ok {
                        unconfirmed = Some(channel);
                    }
                }
            }
            if ok {
                this.subs_done.send_replace(generation);
                notified.await;
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Publishes `fence <instance> <token>` on `channel` until this process receives it back.
    async fn fence(&self, channel: &str) -> bool {
        use fred::prelude::PubsubInterface;
        let token = self.next_fence.fetch_add(1, Ordering::Relaxed);
        let mut seen = self.fence_seen.subscribe();
        let payload = format!("fence\t{}\t{token}", self.store.instance);
        for _ in 0..100 {
            let published: Result<i64, _> = self
                .store
                .redis()
                .next()
                .publish(channel, payload.as_str())
                .await;
            if let Err(e) = published {
                tracing::warn!(error = %e, "fence publish failed");
                return false;
            }
            let arrived =
                tokio::time::timeout(Duration::from_millis(50), seen.wait_for(|t| *t >= token))
                    .await;
            if matches!(arrived, Ok(Ok(_))) {
                return true;
            }
        }
        tracing::warn!(%channel, "subscription not confirmed after 100 fences");
        false
    }

    /// Registers a connection whose token's header and claims passed; returns once its chat
    /// channel is subscribed, its session checked against revocations, its token's signature
    /// known good and its presence recorded — one Redis call after the subscription when the
    /// token was verified by a gateway before (a reconnect storm is thousands of these at once),
    /// two calls and a signature check here when not (see `conn::Verifier`).
    ///
    /// The connection is listed before the revocation check, so a revocation announced at any
    /// moment either reaches it through the revocation channel or is seen by the check.
    pub async fn register(
        self: &Arc<Self>,
        user: Uuid,
        session: Uuid,
        proof: Proof<'_>,
    ) -> anyhow::Result<Registration> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            user,
            session,
            origin: format!("{}-{id}", self.store.instance),
            outbox: Mutex::new(Outbox {
                items: VecDeque::new(),
                closing: None,
            }),
            wake: Notify::new(),
            last_heard: AtomicU64::new(self.now_ms()),
            capacity: self.queue_frames,
            watching: Mutex::default(),
            proven: AtomicBool::new(false),
        });
        lock(&self.users)
            .entry(user)
            .or_default()
            .push(conn.clone());
        self.metrics.connections.inc();
        let generation = self.want(&[self.store.keys.chat_user_channel(&user)], 1);
        self.until_subscribed(generation).await;
        // (When someone's other device raised their presence already, this only refreshes it.)
        let mut how = "remembered";
        let mut answer = self.presence_up(&conn, Mark::Check(&proof.mark)).await;
        if matches!(answer, Ok(Up::Unverified)) && (proof.verify)() {
            how = "signature";
            let mark = Mark::Remember(&proof.mark, proof.expires_ms);
            answer = self.presence_up(&conn, mark).await;
        }
        match answer {
            Ok(Up::Done) => {
                self.metrics.tokens.with_label_values(&[how]).inc();
                Ok(Registration::Ready(conn))
            }
            Ok(refused) => {
                // Presence was left as it was (the refused connection was never proven: the
                // person's other devices raised and lower their presence without it).
                self.forget(&conn);
                Ok(if matches!(refused, Up::Revoked) {
                    Registration::Revoked
                } else {
                    Registration::Invalid
                })
            }
            Err(e) => {
                // Leave nothing behind: no ghost connection, no subscription.
                self.unregister(&conn).await;
                Err(e)
            }
        }
    }

    /// Takes a connection out of the registry and its chat channel; `Some(true)` when the
    /// person still has other proven connections here, `None` when it was not registered (any
    /// more).
    fn forget(&self, conn: &Arc<Conn>) -> Option<bool> {
        let left = {
            let mut users = lock(&self.users);
            let list = users.get_mut(&conn.user)?;
            let before = list.len();
            list.retain(|c| c.id != conn.id);
            if list.len() == before {
                return None;
            }
            let others = list.iter().any(|c| c.proven.load(Ordering::Relaxed));
            if list.is_empty() {
                users.remove(&conn.user);
            }
            others
        };
        self.metrics.connections.dec();
        self.want(&[self.store.keys.chat_user_channel(&conn.user)], -1);
        Some(left)
    }

    /// Forgets a connection (closed for any reason).
    pub async fn unregister(self: &Arc<Self>, conn: &Arc<Conn>) {
        let Some(others) = self.forget(conn) else {
            return;
        };
        let last = !others && conn.proven.load(Ordering::Relaxed);
        let mut partners = std::mem::take(&mut *lock(&conn.watching));
        partners.sort_unstable();
        partners.dedup();
        let watched: Vec<Uuid> = {
            let mut watchers = lock(&self.watchers);
            let mut gone = Vec::new();
            for partner in partners {
                let Some(list) = watchers.get_mut(&partner) else {
                    continue;
                };
                let before = list.len();
                list.retain(|w| w.conn_id != conn.id);
                for _ in list.len()..before {
                    gone.push(partner);
                }
                if list.is_empty() {
                    watchers.remove(&partner);
                }
            }
            gone
        };
        let channels: Vec<String> = watched
            .iter()
            .map(|p| self.store.keys.chat_presence_channel(p))
            .collect();
        if !channels.is_empty() {
            self.want(&channels, -1);
        }
        // While stopping, the shutdown announces who was held when it began; this covers anyone
        // whose connection was proven after that (a registration in flight).
        let announced = || {
            self.stopping.load(Ordering::Relaxed) && lock(&self.stopped_people).contains(&conn.user)
        };
        if last && !announced() {
            if let Err(e) = self.presence_down(conn.user).await {
                tracing::warn!(error = %e, "presence update failed");
            }
        }
    }

    /// Watches `partner`'s presence for `conn` (they share `resonance`); returns once live.
    pub async fn watch(&self, conn: &Arc<Conn>, resonance: Uuid, partner: Uuid) {
        if lock(&self.closed).contains_key(&resonance) {
            return;
        }
        {
            let mut watchers = lock(&self.watchers);
            let list = watchers.entry(partner).or_default();
            if list
                .iter()
                .any(|w| w.conn_id == conn.id && w.resonance == resonance)
            {
                return;
            }
            list.push(Watch {
                conn: Arc::downgrade(conn),
                conn_id: conn.id,
                resonance,
            });
        }
        lock(&conn.watching).push(partner);
        let generation = self.want(&[self.store.keys.chat_presence_channel(&partner)], 1);
        self.until_subscribed(generation).await;
        // Closed while we subscribed: undo, so the presence does not outlive the conversation.
        if lock(&self.closed).contains_key(&resonance) {
            let removed = {
                let mut watchers = lock(&self.watchers);
                let before = watchers.get(&partner).map_or(0, Vec::len);
                if let Some(list) = watchers.get_mut(&partner) {
                    list.retain(|w| !(w.conn_id == conn.id && w.resonance == resonance));
                }
                let after = watchers.get(&partner).map_or(0, Vec::len);
                if after == 0 {
                    watchers.remove(&partner);
                }
                before - after
            };
            if removed > 0 {
                self.want(&[self.store.keys.chat_presence_channel(&partner)], -1);
            }
        }
    }

    fn presence_lock(&self, user: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.presence_locks);
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(user).or_default().clone()
    }

    /// Marks `conn`'s person online here, unless its session is revoked or its token's mark is
    /// not as [`Mark`] asks (then nothing changes); when it is done, `conn` is proven.
    async fn presence_up(&self, conn: &Conn, mark: Mark<'_>) -> anyhow::Result<Up> {
        let user = conn.user;
        let guard = self.presence_lock(user);
        let _held = guard.lock().await;
        let keys = &self.store.keys;
        let now = chrono::Utc::now().timestamp_millis();
        let mut args = vec![
            self.store.instance.clone(),
            (now + self.presence_ttl_ms as i64).to_string(),
            now.to_string(),
            keys.chat_presence_channel(&user),
            protocol::presence(user, true, None),
            (self.presence_ttl_ms * 2).to_string(),
        ];
        let mark = match mark {
            Mark::Check(name) => {
                args.push("check".into());
                name
            }
            Mark::Remember(name, expires_ms) => {
                args.push("remember".into());
                args.push(expires_ms.to_string());
                name
            }
        };
        let script_keys = vec![
            keys.chat_presence(&user),
            keys.revoked_session(&conn.session),
            mark.to_owned(),
            keys.erased_user(&user),
        ];
        let before: i64 = self
            .store
            .presence_up
            .evalsha_with_reload(self.store.redis().next(), script_keys, args)
            .await?;
        Ok(match before {
            -1 => Up::Revoked,
            -2 => Up::Unverified,
            _ => {
                // Under the lock: a `presence_down` for this person now sees it.
                conn.proven.store(true, Ordering::Relaxed);
                Up::Done
            }
        })
    }

    pub async fn presence_down(&self, user: Uuid) -> anyhow::Result<()> {
        let guard = self.presence_lock(user);
        let _held = guard.lock().await;
        // Reconnected here meanwhile: still online (unless the gateway is stopping: then its
        // connections are all closing, still listed until their tasks end).
        if !self.stopping.load(Ordering::Relaxed) && self.holds(&user) {
            return Ok(());
        }
        let keys = &self.store.keys;
        let at = chrono::Utc::now();
        let seen = protocol::timestamp(at);
        let _: i64 = self
            .store
            .presence_down
            .evalsha_with_reload(
                self.store.redis().next(),
                vec![
                    keys.chat_presence(&user),
                    keys.chat_last_seen(&user),
                    keys.erased_user(&user),
                ],
                vec![
                    self.store.instance.clone(),
                    at.timestamp_millis().to_string(),
                    keys.chat_presence_channel(&user),
                    seen.clone(),
                    protocol::presence(user, false, Some(&seen)),
                    entities::chat::LAST_SEEN_TTL_S.to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Refreshes the presence of the people held here that `which` selects (the heartbeat).
    pub async fn refresh_presence(&self, which: impl Fn(&Uuid) -> bool) -> anyhow::Result<()> {
        let people = self.people_where(which);
        let expiry = chrono::Utc::now().timestamp_millis() + self.presence_ttl_ms as i64;
        for chunk in people.chunks(500) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|u| self.store.keys.chat_presence(u))
                .collect();
            let _: i64 = self
                .store
                .presence_refresh
                .evalsha_with_reload(
                    self.store.redis().next(),
                    keys,
                    vec![
                        self.store.instance.clone(),
                        expiry.to_string(),
                        (self.presence_ttl_ms * 2).to_string(),
                    ],
                )
                .await?;
        }
        // Someone who left between the list and the refresh was put back: take this gateway's
        // entry out again, quietly (their "offline" went out when they left), unless they are
        // back here meanwhile.
        let gone: Vec<Uuid> = people.into_iter().filter(|p| !self.holds(p)).collect();
        for user in gone {
            let guard = self.presence_lock(user);
            let _held = guard.lock().await;
            if !self.holds(&user) {
                let _: i64 = self
                    .store
                    .redis()
                    .next()
                    .zrem(self.store.keys.chat_presence(&user), &self.store.instance)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records what a watcher was just told about `partner` (in answer to a resume).
    pub fn remember_told(&self, partner: Uuid, online: bool) {
        lock(&self.told).insert(partner, online);
    }

    /// The heartbeat's presence sweep: for every person watched here that `which` selects,
    /// compares what Redis says (entries expire 60 s after their gateway's last heartbeat) with
    /// what watchers were last told, and pushes the difference — so people held by a crashed
    /// gateway go offline. One Redis call per 250 people.
    pub async fn sweep_presence(&self, which: impl Fn(&Uuid) -> bool) -> anyhow::Result<()> {
        let watched: HashSet<Uuid> = lock(&self.watchers).keys().copied().collect();
        {
            let mut told = lock(&self.told);
            told.retain(|p, _| watched.contains(p));
        }
        let partners: Vec<Uuid> = watched.into_iter().filter(|p| which(p)).collect();
        for chunk in partners.chunks(250) {
            let presences = self.store.presences(chunk).await?;
            for (partner, (online, last_seen)) in chunk.iter().zip(presences) {
                let before = lock(&self.told).get(partner).copied();
                if before != Some(online) {
                    let frame = protocol::presence(*partner, online, last_seen.as_deref());
                    self.deliver_presence(*partner, &frame);
                }
            }
        }
        Ok(())
    }

    /// Whether connection `id` was refused logs already.
    pub fn log_refused(&self, id: u64) -> bool {
        matches!(lock(&self.logs).get(&id), Some(LogSubscription::Refused))
    }

    /// Changes the level of connection `id`'s log subscription; false when it has none (or
    /// its task stopped: the person stopped being an admin).
    pub fn set_log_level(&self, id: u64, level: u8) -> bool {
        match lock(&self.logs).get(&id) {
            Some(LogSubscription::Active {
                level: current,
                task,
            }) if !task.is_finished() => {
                current.store(level, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    pub fn set_logs(&self, id: u64, subscription: LogSubscription) {
        lock(&self.logs).insert(id, subscription);
    }

    /// Forgets connection `id`'s log subscription (it closed), stopping its task.
    pub fn end_logs(&self, id: u64) {
        if let Some(LogSubscription::Active { task, .. }) = lock(&self.logs).remove(&id) {
            task.abort();
        }
    }

    /// Starts a graceful shutdown: no registration succeeds from now on. Returns the people held
    /// here, read before their connections close (a closing connection's task can end and leave
    /// the registry first), for [`Hub::offline`].
    pub fn stop(&self) -> Vec<Uuid> {
        let mut announced = lock(&self.stopped_people);
        self.stopping.store(true, Ordering::Relaxed);
        let people = self.people();
        announced.extend(people.iter().copied());
        people
    }

    /// Marks `people` offline for this gateway (graceful shutdown), stopping at a Redis error.
    pub async fn offline(&self, people: Vec<Uuid>) {
        for user in people {
            if let Err(e) = self.presence_down(user).await {
                tracing::warn!(error = %e, "presence update failed");
                return;
            }
        }
    }

    async fn dispatch(
        hub: Weak<Self>,
        mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let (user_prefix, presence_prefix, revocations, conversations) = match hub.upgrade() {
            Some(h) => {
                let keys = &h.store.keys;
                (
                    keys.chat_user_channel(&Uuid::nil())
                        .replace(&Uuid::nil().to_string(), ""),
                    keys.chat_presence_channel(&Uuid::nil())
                        .replace(&Uuid::nil().to_string(), ""),
                    keys.revocations_channel(),
                    keys.conversations_channel(),
                )
            }
            None => return,
        };
        loop {
            let message = match messages.recv().await {
                Ok(m) => m,
                Err(RecvError::Closed) => return,
                Err(RecvError::Lagged(n)) => {
                    // Live frames were lost: every client reconnects and resumes, so nothing is
                    // lost silently.
                    tracing::error!(lost = n, "pub/sub fan-out lagged; restarting connections");
                    if let Some(h) = hub.upgrade() {
                        for conn in h.all() {
                            conn.close(1012, "gateway overloaded: reconnect and resume");
                        }
                    }
                    continue;
                }
            };
            let Some(this) = hub.upgrade() else { return };
            let channel: &str = &message.channel;
            let Some(text) = message.value.as_str() else {
                continue;
            };
            if let Some(rest) = text.strip_prefix("fence\t") {
                if let Some((instance, token)) = rest.split_once('\t') {
                    if instance == this.store.instance {
                        if let Ok(token) = token.parse::<u64>() {
                            this.fence_seen.send_if_modified(|t| {
                                let newer = token > *t;
                                if newer {
                                    *t = token;
                                }
                                newer
                            });
                        }
                    }
                }
                continue;
            }
            if let Some(user) = channel.strip_prefix(user_prefix.as_str()) {
                if let Ok(user) = user.parse::<Uuid>() {
                    this.deliver(user, &text);
                }
            } else if let Some(partner) = channel.strip_prefix(presence_prefix.as_str()) {
                if let Ok(partner) = partner.parse::<Uuid>() {
                    this.deliver_presence(partner, &text);
                }
            } else if channel == revocations {
                this.revoke(&text);
            } else if channel == conversations {
                this.close_conversation(&text);
            }
        }
    }

    /// `origin \t resonance \t message id \t frame` from a person's chat channel.
    fn deliver(&self, user: Uuid, payload: &str) {
        let mut parts = payload.splitn(4, '\t');
        let (Some(origin), Some(resonance), Some(id), Some(frame)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let conns: Vec<Arc<Conn>> = match lock(&self.users).get(&user) {
            Some(list) => list
                .iter()
                .filter(|c| c.origin != origin)
                .cloned()
                .collect(),
            None => return,
        };
        if conns.is_empty() {
            return;
        }
        let text = Utf8Bytes::from(frame.to_owned());
        let message = match (resonance.parse::<Uuid>(), id.parse::<StreamId>()) {
            (Ok(resonance), Ok(id)) => {
                let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
                self.metrics
                    .fanout_seconds
                    .observe(now.saturating_sub(id.ms) as f64 / 1000.0);
                Some((resonance, id))
            }
            _ => None,
        };
        for conn in conns {
            let out = match message {
                Some((resonance, id)) => Out::Message {
                    resonance,
                    id,
                    text: text.clone(),
                },
                None => Out::Text(text.clone()),
            };
            if !conn.push(out) {
                self.metrics.slow_consumers.inc();
            }
        }
    }

    fn deliver_presence(&self, partner: Uuid, frame: &str) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(frame) {
            if let Some(online) = value.get("online").and_then(|v| v.as_bool()) {
                lock(&self.told).insert(partner, online);
            }
        }
        let targets: Vec<Arc<Conn>> = {
            let watchers = lock(&self.watchers);
            let Some(list) = watchers.get(&partner) else {
                return;
            };
            let mut seen = HashSet::new();
            list.iter()
                .filter(|w| seen.insert(w.conn_id))
                .filter_map(|w| w.conn.upgrade())
                .collect()
        };
        let text = Utf8Bytes::from(frame.to_owned());
        for conn in targets {
            conn.push(Out::Text(text.clone()));
        }
    }

    fn revoke(&self, payload: &str) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(payload) else {
            return;
        };
        let session = event
            .get("session_id")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        let user = event
            .get("user_id")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        let conns: Vec<Arc<Conn>> = match user {
            Some(user) => lock(&self.users).get(&user).cloned().unwrap_or_default(),
            None => self.all(),
        };
        for conn in conns {
            if session.is_none_or(|s| s == conn.session) {
                conn.close(4003, "session revoked");
            }
        }
    }

    fn close_conversation(&self, payload: &str) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(payload) else {
            return;
        };
        let Some(resonance) = event
            .get("resonance_id")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<Uuid>().ok())
        else {
            return;
        };
        let members: Vec<Uuid> = event
            .get("members")
            .and_then(|m| m.as_array())
            .map(|m| {
                m.iter()
                    .filter_map(|u| u.as_str()?.parse::<Uuid>().ok())
                    .collect()
            })
            .unwrap_or_default();
        {
            let mut closed = lock(&self.closed);
            let now = std::time::Instant::now();
            closed.retain(|_, at| now.duration_since(*at) < Duration::from_secs(300));
            closed.insert(resonance, now);
        }
        // Stop watching presence through this conversation.
        let mut unwatched = Vec::new();
        let mut targets: HashMap<u64, Arc<Conn>> = HashMap::new();
        {
            let mut watchers = lock(&self.watchers);
            watchers.retain(|partner, list| {
                list.retain(|w| {
                    if w.resonance == resonance {
                        if let Some(c) = w.conn.upgrade() {
                            targets.insert(c.id, c);
                        }
                        unwatched.push(*partner);
                        false
                    } else {
                        true
                    }
                });
                !list.is_empty()
            });
        }
        {
            let users = lock(&self.users);
            for member in &members {
                for c in users.get(member).into_iter().flatten() {
                    targets.insert(c.id, c.clone());
                }
            }
        }
        if !unwatched.is_empty() {
            let channels: Vec<String> = unwatched
                .iter()
                .map(|p| self.store.keys.chat_presence_channel(p))
                .collect();
            self.want(&channels, -1);
        }
        let text = Utf8Bytes::from(protocol::closed(resonance));
        for conn in targets.into_values() {
            conn.push(Out::Text(text.clone()));
        }
    }
}
