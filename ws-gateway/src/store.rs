//! The chat store: Redis scripts from [`entities::chat`] (one round trip per operation, atomic),
//! and the PostgreSQL fallback used only when Redis has lost a conversation's members.
use std::{sync::Arc, time::Duration};

use entities::{chat, keys::RedisKeys};
use fred::{
    prelude::{KeysInterface, Pool},
    types::scripts::Script,
};
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

/// At most this many messages go into one call of the send script.
const MAX_BATCH: usize = 64;
/// At most this many send-script calls are in flight at once. Fewer calls carrying more messages
/// cost Redis less (one per message: ≈ 13.5 µs of script time alone; batches of three: ≈ 7 µs
/// each), but one call at a time makes every message wait for the round trip in flight, which
/// stretches when the machine is busy. Measured at 18,000–22,000 msg/s (interleaved runs): one
/// in flight gave batches of 5.3–5.7 and failed p99 ≤ 25 ms at 18,000; two gave batches of 3.1–3.2
/// and held it; four gave 2.6–2.7, more Redis CPU, and failed.
const IN_FLIGHT: usize = 2;

/// How long a message may wait for the send script (queue included), and a call may take, before
/// it is answered `unavailable`.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a send-script call answers for one message: status and two values.
type SendAnswer = anyhow::Result<[String; 3]>;

struct SendJob {
    keys: [String; chat::SEND_KEYS],
    args: [String; chat::SEND_ARGS],
    reply: oneshot::Sender<SendAnswer>,
}

/// Group commit for `send`: whatever was queued while earlier calls were in flight goes to Redis
/// in one script call (one round trip, one script set-up), each message still handled as if it
/// were alone. An idle gateway sends each message at once, alone; under load, batches grow by
/// themselves, with no timer and no added wait.
struct Batcher {
    redis: Pool,
    script: Script,
    prefix: String,
    instance: String,
    limit: (u64, Duration),
    batch_sizes: prometheus::Histogram,
}

impl Batcher {
    fn start(self) -> mpsc::UnboundedSender<SendJob> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(Arc::new(self).run(rx));
        tx
    }

    async fn run(self: Arc<Self>, mut jobs: mpsc::UnboundedReceiver<SendJob>) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            // Take a slot first: while every slot is busy, messages wait in the queue and the
            // next call carries them all.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let this = self.clone();
            tokio::spawn(async move {
                this.call(batch).await;
                drop(slot);
            });
        }
    }

    async fn call(&self, batch: Vec<SendJob>) {
        self.batch_sizes.observe(batch.len() as f64);
        let mut keys = Vec::with_capacity(batch.len() * chat::SEND_KEYS);
        let mut args = Vec::with_capacity(7 + batch.len() * chat::SEND_ARGS);
        args.extend([
            now_ms().to_string(),
            chat::MESSAGE_TTL_MS.to_string(),
            chat::MAX_MESSAGES.to_string(),
            self.limit.0.to_string(),
            self.limit.1.as_millis().to_string(),
            self.prefix.clone(),
            self.instance.clone(),
        ]);
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            keys.extend(job.keys);
            args.extend(job.args);
            replies.push(job.reply);
        }
        // Bounded: a call that never comes back must not hold its slot (and every later send)
        // forever.
        let answer: Result<Vec<String>, String> = match tokio::time::timeout(
            CALL_TIMEOUT,
            self.script
                .evalsha_with_reload(self.redis.next(), keys, args),
        )
        .await
        {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
        };
        match answer {
            Ok(values) if values.len() == replies.len() * 3 => {
                let mut values = values.into_iter();
                for reply in replies {
                    let (Some(s), Some(x), Some(y)) = (values.next(), values.next(), values.next())
                    else {
                        break;
                    };
                    let _ = reply.send(Ok([s, x, y]));
                }
            }
            Ok(values) => {
                let messages = replies.len();
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!(
                        "the send script answered {} values for {messages} messages",
                        values.len(),
                    )));
                }
            }
            // The script may have stored some of these (a script is not rolled back): each
            // sender retries with its client id and gets the stored id back.
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!("send script: {e}")));
                }
            }
        }
    }
}

/// What happened to a `send`.
pub enum SendOutcome {
    Stored {
        id: String,
        /// Gateways that held the recipient when it was published (0: not connected anywhere).
        receivers: u64,
    },
    Duplicate {
        id: String,
        sent_at: String,
    },
    NotMember,
    RateLimited {
        retry_after_ms: u64,
    },
}

/// One page of a resume.
pub struct ResumePage {
    pub partner: Uuid,
    pub recovered: bool,
    pub last: Option<String>,
    pub more: bool,
    /// (id, sender, client id, body, sent at)
    pub entries: Vec<[String; 5]>,
}

pub enum Membership<T> {
    Member(T),
    NotMember,
}

pub struct Store {
    redis: Pool,
    db: sqlx::PgPool,
    pub keys: RedisKeys,
    pub instance: String,
    limit: (u64, Duration),
    sends: mpsc::UnboundedSender<SendJob>,
    resume: Script,
    relay: Script,
    restore: Script,
    pub presence_up: Script,
    pub presence_down: Script,
    pub presence_refresh: Script,
    presence_get: Script,
    publish_event: Script,
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl Store {
    /// Starts the send batcher: call within a Tokio runtime.
    pub fn new(
        redis: Pool,
        db: sqlx::PgPool,
        keys: RedisKeys,
        instance: String,
        limit: (u64, Duration),
        batch_sizes: prometheus::Histogram,
    ) -> Self {
        let sends = Batcher::start(Batcher {
            redis: redis.clone(),
            script: Script::from_lua(chat::send_script()),
            prefix: keys.prefix().to_owned(),
            instance: instance.clone(),
            limit,
            batch_sizes,
        });
        Self {
            redis,
            db,
            keys,
            instance,
            limit,
            sends,
            resume: Script::from_lua(chat::resume_script()),
            relay: Script::from_lua(chat::RELAY),
            restore: Script::from_lua(chat::META_RESTORE),
            presence_up: Script::from_lua(chat::PRESENCE_UP),
            presence_down: Script::from_lua(chat::PRESENCE_DOWN),
            presence_refresh: Script::from_lua(chat::PRESENCE_REFRESH),
            presence_get: Script::from_lua(chat::PRESENCE_GET),
            publish_event: Script::from_lua(entities::events::PUBLISH),
        }
    }

    pub fn redis(&self) -> &Pool {
        &self.redis
    }

    /// A person's stored role (`user`, `moderator`, `admin`), if the account exists: what an
    /// admin-only frame checks, as the API does (a demoted admin's token is not enough).
    pub async fn role_of(&self, user: Uuid) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT role FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|(role,)| role))
    }

    pub fn limit(&self) -> (u64, Duration) {
        self.limit
    }

    /// Rebuilds a conversation's members from PostgreSQL after Redis lost them. The history
    /// floor becomes "now": whatever was stored before may be gone, and resumes say so.
    async fn restore(&self, resonance: Uuid) -> anyhow::Result<bool> {
        let absent = self.keys.chat_absent(&resonance);
        let known_absent: i64 = self.redis.exists(&absent).await?;
        if known_absent > 0 {
            return Ok(false);
        }
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT user_a, user_b FROM resonances WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(resonance)
        .fetch_optional(&self.db)
        .await?;
        let Some((a, b)) = row else {
            let _: () = self
                .redis
                .set(
                    &absent,
                    "1",
                    Some(fred::types::Expiration::EX(60)),
                    None,
                    false,
                )
                .await?;
            return Ok(false);
        };
        let answer: String = self
            .restore
            .evalsha_with_reload(
                self.redis.next(),
                vec![
                    self.keys.chat_meta(&resonance),
                    self.keys.chat_closed(&resonance),
                ],
                vec![a.to_string(), b.to_string(), format!("{}-0", now_ms())],
            )
            .await?;
        tracing::info!(%resonance, "conversation members restored from PostgreSQL");
        Ok(answer == "ok")
    }

    /// Stores a message (see [`chat::send_script`]): queued for the batcher, answered once Redis has
    /// stored it (or refused it).
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        sender: Uuid,
        origin: &str,
        sender_has_other_local: bool,
        resonance: Uuid,
        client_id: &str,
        body: &str,
        sent_at: &str,
        head: &str,
    ) -> anyhow::Result<SendOutcome> {
        for attempt in 0..2 {
            let (reply, answer) = oneshot::channel();
            let job = SendJob {
                keys: [
                    self.keys.chat_meta(&resonance),
                    self.keys.chat_stream(&resonance),
                    self.keys.chat_clients(&resonance),
                    self.keys
                        .rate_limit("messages_per_minute", &sender.to_string()),
                    self.keys.chat_presence(&sender),
                ],
                args: [
                    sender.to_string(),
                    client_id.to_owned(),
                    body.to_owned(),
                    sent_at.to_owned(),
                    head.to_owned(),
                    origin.to_owned(),
                    if sender_has_other_local { "1" } else { "0" }.to_owned(),
                    resonance.to_string(),
                ],
                reply,
            };
            self.sends
                .send(job)
                .map_err(|_| anyhow::anyhow!("the send batcher stopped"))?;
            // Bounded from the moment it is queued: behind a stalled Redis, a message is answered
            // `unavailable` (the client retries with its client id) rather than waiting on.
            let [status, x, y] = tokio::time::timeout(CALL_TIMEOUT, answer)
                .await
                .map_err(|_| anyhow::anyhow!("not stored within {} s", CALL_TIMEOUT.as_secs()))?
                .map_err(|_| anyhow::anyhow!("the send batcher dropped a message"))??;
            match status.as_str() {
                "ok" => {
                    return Ok(SendOutcome::Stored {
                        id: x,
                        receivers: y.parse().unwrap_or(0),
                    })
                }
                "dup" => return Ok(SendOutcome::Duplicate { id: x, sent_at: y }),
                "rate" => {
                    return Ok(SendOutcome::RateLimited {
                        retry_after_ms: x.parse().unwrap_or(1000),
                    })
                }
                "notmember" => return Ok(SendOutcome::NotMember),
                "err" => anyhow::bail!("send script: {x}"),
                "nometa" if attempt == 0 => {
                    if !self.restore(resonance).await? {
                        return Ok(SendOutcome::NotMember);
                    }
                }
                _ => break,
            }
        }
        anyhow::bail!("unexpected answer from the send script")
    }

    /// One page of what follows `after` (see [`chat::resume_script`]).
    pub async fn resume_page(
        &self,
        user: Uuid,
        resonance: Uuid,
        after: &str,
        count: usize,
        first: bool,
    ) -> anyhow::Result<Membership<ResumePage>> {
        for attempt in 0..2 {
            let answer: Vec<String> = self
                .resume
                .evalsha_with_reload(
                    self.redis.next(),
                    vec![
                        self.keys.chat_meta(&resonance),
                        self.keys.chat_stream(&resonance),
                    ],
                    vec![
                        user.to_string(),
                        after.to_owned(),
                        count.to_string(),
                        now_ms().to_string(),
                        chat::MESSAGE_TTL_MS.to_string(),
                        if first { "1" } else { "0" }.to_owned(),
                    ],
                )
                .await?;
            match answer.first().map(String::as_str) {
                Some("ok") if answer.len() >= 5 => {
                    let partner = answer[1].parse()?;
                    let entries = answer[5..]
                        .chunks_exact(5)
                        .map(|c| {
                            [
                                c[0].clone(),
                                c[1].clone(),
                                c[2].clone(),
                                c[3].clone(),
                                c[4].clone(),
                            ]
                        })
                        .collect();
                    return Ok(Membership::Member(ResumePage {
                        partner,
                        recovered: answer[2] == "1",
                        last: Some(answer[3].clone()).filter(|l| l != "0-0"),
                        more: answer[4] == "1",
                        entries,
                    }));
                }
                Some("notmember") => return Ok(Membership::NotMember),
                Some("nometa") if attempt == 0 => {
                    if !self.restore(resonance).await? {
                        return Ok(Membership::NotMember);
                    }
                }
                _ => break,
            }
        }
        anyhow::bail!("unexpected answer from the resume script")
    }

    /// Relays `typing` / `read` (see [`chat::RELAY`]).
    pub async fn relay(
        &self,
        user: Uuid,
        origin: &str,
        resonance: Uuid,
        kind: &str,
        frame: &str,
        message_id: &str,
    ) -> anyhow::Result<Membership<()>> {
        for attempt in 0..2 {
            let answer: String = self
                .relay
                .evalsha_with_reload(
                    self.redis.next(),
                    vec![
                        self.keys.chat_meta(&resonance),
                        self.keys.chat_reads(&resonance),
                    ],
                    vec![
                        user.to_string(),
                        kind.to_owned(),
                        frame.to_owned(),
                        self.keys.prefix().to_owned(),
                        message_id.to_owned(),
                        chat::MESSAGE_TTL_MS.to_string(),
                        origin.to_owned(),
                        resonance.to_string(),
                    ],
                )
                .await?;
            match answer.as_str() {
                "ok" => return Ok(Membership::Member(())),
                "notmember" => return Ok(Membership::NotMember),
                "nometa" if attempt == 0 => {
                    if !self.restore(resonance).await? {
                        return Ok(Membership::NotMember);
                    }
                }
                _ => break,
            }
        }
        anyhow::bail!("unexpected answer from the relay script")
    }

    /// Someone's presence: (online, last seen).
    pub async fn presence(&self, user: Uuid) -> anyhow::Result<(bool, Option<String>)> {
        let mut all = self.presences(&[user]).await?;
        all.pop()
            .ok_or_else(|| anyhow::anyhow!("no answer from the presence script"))
    }

    /// The presence of several people, in order, in one call.
    pub async fn presences(&self, users: &[Uuid]) -> anyhow::Result<Vec<(bool, Option<String>)>> {
        let keys: Vec<String> = users
            .iter()
            .flat_map(|u| [self.keys.chat_presence(u), self.keys.chat_last_seen(u)])
            .collect();
        let answer: Vec<String> = self
            .presence_get
            .evalsha_with_reload(self.redis.next(), keys, vec![now_ms().to_string()])
            .await?;
        if answer.len() != users.len() * 2 {
            anyhow::bail!("the presence script answered {} values", answer.len());
        }
        Ok(answer
            .chunks_exact(2)
            .map(|pair| {
                (
                    pair[0] != "0",
                    Some(pair[1].clone()).filter(|l| !l.is_empty()),
                )
            })
            .collect())
    }

    /// Tells `user` over SSE that a message waits (they are not connected to any gateway).
    pub async fn notify_offline(
        &self,
        user: Uuid,
        resonance: Uuid,
        message_id: &str,
        sender: Uuid,
    ) -> anyhow::Result<()> {
        let body = serde_json::to_string(&entities::events::EventBody {
            kind: "message.new".into(),
            data: serde_json::json!({
                "resonance_id": resonance, "message_id": message_id, "sender_id": sender,
            }),
            at: chrono::Utc::now(),
        })?;
        let _: String = self
            .publish_event
            .evalsha_with_reload(
                self.redis.next(),
                vec![
                    self.keys.events_stream(&user),
                    self.keys.events_channel(&user),
                ],
                vec![
                    body,
                    entities::events::REPLAY_TTL_S.to_string(),
                    entities::events::REPLAY_LEN.to_string(),
                ],
            )
            .await?;
        Ok(())
    }
}
