//! The chat store: Redis scripts from [`entities::chat`] (one round trip per operation, atomic),
//! and the PostgreSQL fallback used only when Redis has lost a conversation's members.
use std::time::Duration;

use entities::{chat, keys::RedisKeys};
use fred::{
    prelude::{KeysInterface, Pool},
    types::scripts::Script,
};
use uuid::Uuid;

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
    send: Script,
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
    pub fn new(
        redis: Pool,
        db: sqlx::PgPool,
        keys: RedisKeys,
        instance: String,
        limit: (u64, Duration),
    ) -> Self {
        Self {
            redis,
            db,
            keys,
            instance,
            limit,
            send: Script::from_lua(chat::SEND),
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

    /// Stores a message (see [`chat::SEND`]).
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
        let keys = vec![
            self.keys.chat_meta(&resonance),
            self.keys.chat_stream(&resonance),
            self.keys.chat_clients(&resonance),
            self.keys
                .rate_limit("messages_per_minute", &sender.to_string()),
            self.keys.chat_presence(&sender),
        ];
        for attempt in 0..2 {
            let args: Vec<String> = vec![
                sender.to_string(),
                client_id.to_owned(),
                body.to_owned(),
                sent_at.to_owned(),
                now_ms().to_string(),
                chat::MESSAGE_TTL_MS.to_string(),
                chat::MAX_MESSAGES.to_string(),
                self.limit.0.to_string(),
                self.limit.1.as_millis().to_string(),
                head.to_owned(),
                origin.to_owned(),
                self.keys.prefix().to_owned(),
                self.instance.clone(),
                if sender_has_other_local { "1" } else { "0" }.to_owned(),
                resonance.to_string(),
            ];
            let answer: Vec<String> = self
                .send
                .evalsha_with_reload(self.redis.next(), keys.clone(), args)
                .await?;
            match answer.first().map(String::as_str) {
                Some("ok") if answer.len() == 3 => {
                    return Ok(SendOutcome::Stored {
                        id: answer[1].clone(),
                        receivers: answer[2].parse().unwrap_or(0),
                    })
                }
                Some("dup") if answer.len() == 3 => {
                    return Ok(SendOutcome::Duplicate {
                        id: answer[1].clone(),
                        sent_at: answer[2].clone(),
                    })
                }
                Some("rate") if answer.len() == 2 => {
                    return Ok(SendOutcome::RateLimited {
                        retry_after_ms: answer[1].parse().unwrap_or(1000),
                    })
                }
                Some("notmember") => return Ok(SendOutcome::NotMember),
                Some("nometa") if attempt == 0 => {
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
        let answer: Vec<String> = self
            .presence_get
            .evalsha_with_reload(
                self.redis.next(),
                vec![
                    self.keys.chat_presence(&user),
                    self.keys.chat_last_seen(&user),
                ],
                vec![now_ms().to_string()],
            )
            .await?;
        let online = answer.first().is_some_and(|n| n != "0");
        let last = answer.get(1).filter(|l| !l.is_empty()).cloned();
        Ok((online, last))
    }

    /// Whether a session was revoked (its access tokens may still be unexpired).
    pub async fn session_revoked(&self, session: Uuid) -> anyhow::Result<bool> {
        let n: i64 = self
            .redis
            .exists(self.keys.revoked_session(&session))
            .await?;
        Ok(n > 0)
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
