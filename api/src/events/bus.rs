//! The event bus behind `GET /v1/events`: per-person events stored in a short Redis stream (the
//! replay buffer for `Last-Event-ID`) and announced on Redis pub/sub, so every API instance
//! holding that person's stream delivers them.
//!
//! Publishing is one Lua script: `XADD` (capped at [`REPLAY_LEN`] entries, kept [`REPLAY_TTL_S`]),
//! then `PUBLISH` of the stored entry, so what is delivered live is exactly what can be replayed.
//! Each instance holds one pattern subscription and fans messages out to its local listeners.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use entities::keys::RedisKeys;
use fred::{
    clients::SubscriberClient,
    prelude::{ClientLike, EventInterface, LuaInterface, Pool, PubsubInterface, StreamsInterface},
};
use poem_openapi::{types::Example, Object};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::AppError;

use entities::events::{EventBody as Body, PUBLISH};
pub use entities::events::{REPLAY_LEN, REPLAY_TTL_S};

/// One event for one person. `type` says what happened; `data` carries its fields.
#[derive(Object, Clone, Debug, Serialize, Deserialize, PartialEq)]
#[oai(example)]
pub struct ServerEvent {
    /// The event id (also the SSE `id:`); send it back as `Last-Event-ID` to resume.
    pub id: String,
    /// `resonance.created` (`resonance_id`, `user_id`), `resonance.removed` (`resonance_id`),
    /// `likes.changed` (`count`), `moderation.notice` (`action`, `reason`, `until`), `message.new`
    /// (`resonance_id`, `message_id`, `sender_id`), `account.erased` (the last event: the
    /// account is gone), `resync` (the replay buffer no longer holds what you asked for: reload
    /// your state).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl Example for ServerEvent {
    fn example() -> Self {
        ServerEvent {
            id: "1795564412000-0".into(),
            kind: "resonance.created".into(),
            data: serde_json::json!({"resonance_id": Uuid::nil(), "user_id": Uuid::nil()}),
            at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

type Listeners = Arc<Mutex<HashMap<Uuid, broadcast::Sender<ServerEvent>>>>;

/// Publishes and delivers events.
#[derive(Clone)]
pub struct EventBus {
    redis: Pool,
    keys: RedisKeys,
    listeners: Listeners,
    _subscriber: SubscriberClient,
}

/// Orders Redis stream ids (`ms-seq`).
pub fn stream_id_key(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

impl EventBus {
    /// Subscribes this instance to every person's channel and starts the local fan-out.
    pub async fn start(
        redis: Pool,
        subscriber: SubscriberClient,
        keys: RedisKeys,
    ) -> anyhow::Result<Self> {
        subscriber.init().await?;
        // Re-subscribes after a reconnection; the task lives as long as the client.
        drop(subscriber.manage_subscriptions());
        subscriber.psubscribe(keys.events_pattern()).await?;
        let listeners: Listeners = Arc::default();
        let mut messages = subscriber.message_rx();
        let prefix = keys.events_channel_prefix();
        let fan_out = listeners.clone();
        tokio::spawn(async move {
            while let Ok(message) = messages.recv().await {
                let channel = message.channel.to_string();
                let Some(user) = channel
                    .strip_prefix(&prefix)
                    .and_then(|u| Uuid::parse_str(u).ok())
                else {
                    continue;
                };
                let Some(text) = message.value.as_string() else {
                    continue;
                };
                let Some((id, json)) = text.split_once(' ') else {
                    continue;
                };
                let Ok(body) = serde_json::from_str::<Body>(json) else {
                    continue;
                };
                let event = ServerEvent {
                    id: id.to_owned(),
                    kind: body.kind,
                    data: body.data,
                    at: body.at,
                };
                let mut map = fan_out.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(sender) = map.get(&user) {
                    if sender.send(event).is_err() {
                        map.remove(&user);
                    }
                }
            }
        });
        Ok(Self {
            redis,
            keys,
            listeners,
            _subscriber: subscriber,
        })
    }

    /// Stores and announces an event for `user`; returns its id.
    pub async fn publish(
        &self,
        user: Uuid,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<String, AppError> {
        let body = serde_json::to_string(&Body {
            kind: kind.to_owned(),
            data,
            at: Utc::now(),
        })
        .map_err(|e| AppError::Internal(e.into()))?;
        let id: String = self
            .redis
            .eval(
                PUBLISH,
                vec![
                    self.keys.events_stream(&user),
                    self.keys.events_channel(&user),
                ],
                vec![body, REPLAY_TTL_S.to_string(), REPLAY_LEN.to_string()],
            )
            .await?;
        Ok(id)
    }

    /// Live events for `user` on this instance (subscribe before replaying, then drop what the
    /// replay already gave).
    pub fn subscribe(&self, user: Uuid) -> broadcast::Receiver<ServerEvent> {
        let mut map = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&user) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(64);
                map.insert(user, sender);
                receiver
            }
        }
    }

    /// Events after `last_id`, oldest first; `None` when `last_id` is older than the buffer
    /// (the client must resynchronise).
    pub async fn replay(
        &self,
        user: Uuid,
        last_id: &str,
    ) -> Result<Option<Vec<ServerEvent>>, AppError> {
        let Some(last) = stream_id_key(last_id) else {
            return Ok(None);
        };
        let key = self.keys.events_stream(&user);
        let first: Vec<(String, HashMap<String, String>)> =
            self.redis.xrange(&key, "-", "+", Some(1)).await?;
        // No buffer at all, or one that starts after `last_id`: events may have been lost.
        match first.first().and_then(|(id, _)| stream_id_key(id)) {
            Some(oldest) if oldest <= last => {}
            _ => return Ok(None),
        }
        let entries: Vec<(String, HashMap<String, String>)> = self
            .redis
            .xrange(&key, format!("({last_id}"), "+", None)
            .await?;
        Ok(Some(
            entries
                .into_iter()
                .filter_map(|(id, fields)| {
                    let body: Body = serde_json::from_str(fields.get("e")?).ok()?;
                    Some(ServerEvent {
                        id,
                        kind: body.kind,
                        data: body.data,
                        at: body.at,
                    })
                })
                .collect(),
        ))
    }

    /// Deletes a person's buffer (account erasure).
    pub async fn forget(&self, user: Uuid) -> Result<(), AppError> {
        let _: i64 =
            fred::prelude::KeysInterface::del(&self.redis, self.keys.events_stream(&user)).await?;
        Ok(())
    }
}
