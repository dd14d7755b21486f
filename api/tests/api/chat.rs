//! The chat gateway, end to end: real `despacio-gateway` processes, real Redis and PostgreSQL,
//! the real API for résonances, unmatch, blocks and sessions. Every frame is checked against
//! `openapi/asyncapi.json`.
use std::collections::{HashMap, HashSet};

use fred::prelude::{
    HashesInterface, KeysInterface, LuaInterface, SortedSetsInterface, StreamsInterface,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    chat_client::{Auth, ChatClient},
    helpers::{spawn_app, Sse},
};

const LIVE: &[&str] = &["presence", "typing", "read"];

#[tokio::test]
async fn messages_cross_gateways_acked_after_storage_and_never_twice() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;

    let mut a = ChatClient::connect(&g1.url, &alice).await;
    let mut a_phone = ChatClient::connect(&g2.url, &alice).await;
    let mut b = ChatClient::connect(&g2.url, &bob).await;

    let ack = a.say(resonance, "m-1", "Bonjour ☀️").await;
    assert_eq!(ack["duplicate"], false);
    let id = ack["message_id"].as_str().expect("id").to_owned();
    // Acked means stored: the stream already holds it, with a 24 h life.
    let stream = app.state.keys.chat_stream(&resonance);
    let len: i64 = app.state.redis.xlen(&stream).await.expect("xlen");
    assert_eq!(len, 1);
    let ttl: i64 = app.state.redis.pttl(&stream).await.expect("pttl");
    assert!(ttl > 86_000_000 && ttl <= 86_400_000 + 180_000, "{ttl}");
    // Everything about the message expires too (the de-duplication record).
    let ttl: i64 = app
        .state
        .redis
        .pttl(app.state.keys.chat_clients(&resonance))
        .await
        .expect("pttl");
    assert!(ttl > 86_000_000 && ttl <= 86_400_000 + 180_000, "{ttl}");

    let got = b.next_of("message", LIVE).await;
    assert_eq!(got["message_id"], id.as_str());
    assert_eq!(got["body"], "Bonjour ☀️");
    assert_eq!(got["sender_id"], alice.id.to_string());
    assert_eq!(got["client_id"], "m-1");
    assert_eq!(got["resonance_id"], resonance.to_string());
    // The sender's other device, on the other gateway, gets it too.
    let mine = a_phone.next_of("message", LIVE).await;
    assert_eq!(mine["message_id"], id.as_str());

    // A retry with the same client id is acked with the same id and not delivered again.
    let again = a.say(resonance, "m-1", "Bonjour ☀️").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message_id"], id.as_str());
    assert_eq!(again["sent_at"], ack["sent_at"]);
    let second = a.say(resonance, "m-2", "Ça va ?").await;
    let next = b.next_of("message", LIVE).await;
    assert_eq!(
        next["message_id"], second["message_id"],
        "the retry was not re-delivered"
    );
    // The sending connection never receives its own message back.
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.next_of("pong", LIVE).await["type"], "pong");

    // Bob answers; ids are ordered within the conversation.
    let reply = b.say(resonance, "r-1", "Oui !").await;
    let reply_id: entities::chat::StreamId = reply["message_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("stream id");
    let second_id: entities::chat::StreamId = second["message_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("stream id");
    assert!(reply_id > second_id);
    assert_eq!(a.next_of("message", LIVE).await["body"], "Oui !");

    // The REST history reads the same store, in the same shape, oldest first, paged.
    let page = app
        .get_json(
            &format!("/v1/resonances/{resonance}/messages?limit=2"),
            &bob.access,
        )
        .await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["message_id"], id.as_str());
    assert_eq!(items[0]["body"], "Bonjour ☀️");
    assert_eq!(items[0]["sender_id"], alice.id.to_string());
    assert_eq!(items[0]["client_id"], "m-1");
    assert_eq!(
        items[0]["sent_at"].as_str().map(|s| !s.is_empty()),
        Some(true)
    );
    let cursor = page["next_cursor"].as_str().expect("more");
    let rest = app
        .get_json(
            &format!("/v1/resonances/{resonance}/messages?after={cursor}"),
            &bob.access,
        )
        .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["items"][0]["body"], "Oui !");
    assert_eq!(rest["next_cursor"], Value::Null);
    // Someone else cannot read it; a bad `after` is a 400 naming the field.
    let carol = app.person(json!({})).await;
    let resp = app
        .get_authed(
            &format!("/v1/resonances/{resonance}/messages"),
            &carol.access,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .get_authed(
            &format!("/v1/resonances/{resonance}/messages?after=yesterday"),
            &bob.access,
        )
        .await;
    let problem = crate::helpers::assert_problem(resp, 400, "bad-request").await;
    assert_eq!(problem["field"], "after");
    drop((g1, g2));
}

#[tokio::test]
async fn resume_replays_what_was_missed_in_order_exactly_once() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = ChatClient::connect(&g1.url, &alice).await;
    let mut b = ChatClient::connect(&g2.url, &bob).await;
    let first = a.say(resonance, "c-0", "zero").await;
    assert_eq!(b.next_of("message", LIVE).await["body"], "zero");
    drop(b);

    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(a.say(resonance, &format!("c-{i}"), &format!("n{i}")).await["message_id"].clone());
    }
    // Bob comes back on the other gateway and resumes from the last id he saw.
    let mut b = ChatClient::connect(&g1.url, &bob).await;
    b.send(json!({"type": "resume", "positions": {resonance.to_string(): first["message_id"]}}))
        .await;
    let mut got = Vec::new();
    let resumed = loop {
        let frame = b.next().await;
        match frame["type"].as_str() {
            Some("message") => got.push(frame["message_id"].clone()),
            Some("resumed") => break frame,
            other => panic!("unexpected {other:?}: {frame}"),
        }
    };
    assert_eq!(got, ids, "everything after the position, in order, once");
    assert_eq!(resumed["recovered"], true);
    assert_eq!(resumed["replayed"], 5);
    assert_eq!(resumed["latest_message_id"], ids[4]);
    // Presence of the other member comes with the resume.
    let presence = b.next_of("presence", &[]).await;
    assert_eq!(presence["user_id"], alice.id.to_string());
    assert_eq!(presence["online"], true);

    // From nothing (a new device): the whole stored history.
    let mut fresh = ChatClient::connect(&g2.url, &bob).await;
    fresh
        .send(json!({"type": "resume", "positions": {resonance.to_string(): null}}))
        .await;
    let mut count = 0;
    loop {
        let frame = fresh.next().await;
        if frame["type"] == "resumed" {
            assert_eq!(frame["recovered"], true);
            break;
        }
        count += 1;
    }
    assert_eq!(count, 6);
    // A live message after the resume arrives once.
    a.say(resonance, "c-6", "six").await;
    assert_eq!(b.next_of("message", LIVE).await["body"], "six");
    drop((g1, g2));
}

#[tokio::test]
async fn lost_history_is_never_silent() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    let seen = a.say(resonance, "x-1", "one").await["message_id"].clone();
    a.say(resonance, "x-2", "two").await;

    // Redis loses the conversation (flush of its keys).
    let keys = &app.state.keys;
    let deleted: i64 = app
        .state
        .redis
        .del(vec![
            keys.chat_meta(&resonance),
            keys.chat_stream(&resonance),
            keys.chat_clients(&resonance),
        ])
        .await
        .expect("del");
    assert_eq!(deleted, 3);

    let mut b = ChatClient::connect(&gateway.url, &bob).await;
    b.send(json!({"type": "resume", "positions": {resonance.to_string(): seen}}))
        .await;
    let resumed = b.next_of("resumed", &[]).await;
    assert_eq!(
        resumed["recovered"], false,
        "the client must reload: {resumed}"
    );
    assert_eq!(resumed["replayed"], 0);
    // The conversation still works: its members come back from PostgreSQL.
    let ack = a.say(resonance, "x-3", "three").await;
    assert_eq!(ack["duplicate"], false);
    assert_eq!(b.next_of("message", LIVE).await["body"], "three");
    // Resuming from a position before the loss still says so.
    let mut again = ChatClient::connect(&gateway.url, &bob).await;
    again
        .send(json!({"type": "resume", "positions": {resonance.to_string(): seen}}))
        .await;
    let mut replayed = 0;
    loop {
        let frame = again.next().await;
        if frame["type"] == "resumed" {
            assert_eq!(frame["recovered"], false);
            break;
        }
        replayed += 1;
    }
    assert_eq!(replayed, 1, "what is still there is replayed");

    // The stream expires (24 h without messages) and a new message recreates it: a resume from
    // before the expiry still says the history is incomplete.
    let stream = app.state.keys.chat_stream(&resonance);
    let _: i64 = app.state.redis.del(&stream).await.expect("del");
    a.say(resonance, "x-4", "four").await;
    let mut later = ChatClient::connect(&gateway.url, &bob).await;
    later
        .send(json!({"type": "resume", "positions": {resonance.to_string(): null}}))
        .await;
    let resumed = later.next_of("resumed", &["message"]).await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
}

/// Stores `n` messages from `sender` sent 25 hours ago, with their de-duplication records, as
/// the gateway stores them (client ids `{client}-0`, `{client}-1`, ...); returns when they were
/// sent and the first id.
async fn store_expired_messages(
    app: &crate::helpers::TestApp,
    resonance: Uuid,
    sender: &crate::helpers::TestUser,
    client: &str,
    n: usize,
) -> (chrono::DateTime<chrono::Utc>, String) {
    let keys = &app.state.keys;
    let (stream, clients) = (keys.chat_stream(&resonance), keys.chat_clients(&resonance));
    let then = chrono::Utc::now() - chrono::Duration::hours(25);
    let sent_at = then.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut first = String::new();
    for i in 0..n {
        let id = format!("{}-{i}", then.timestamp_millis());
        let _: String = app
            .state
            .redis
            .xadd(
                &stream,
                false,
                None,
                id.as_str(),
                vec![
                    ("s", sender.id.to_string()),
                    ("c", format!("{client}-{i}")),
                    ("b", "yesterday".to_owned()),
                    ("t", sent_at.clone()),
                ],
            )
            .await
            .expect("xadd");
        let _: i64 = app
            .state
            .redis
            .hset(
                &clients,
                vec![(
                    format!("{}:{client}-{i}", sender.id),
                    format!("{id} {sent_at}"),
                )],
            )
            .await
            .expect("hset");
        if i == 0 {
            first = id;
        }
    }
    (then, first)
}

#[tokio::test]
async fn trimmed_messages_take_their_de_duplication_records_with_them() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    // 250 messages sent 25 hours ago, with their de-duplication records, as the gateway stores
    // them.
    let keys = &app.state.keys;
    let (stream, clients) = (keys.chat_stream(&resonance), keys.chat_clients(&resonance));
    let (then, first_old) = store_expired_messages(&app, resonance, &alice, "old", 250).await;
    let remaining = |app: &crate::helpers::TestApp| {
        let (redis, clients) = (app.state.redis.clone(), clients.clone());
        async move {
            let mut left = 0;
            for i in 0..250 {
                let exists: bool = redis
                    .hexists(&clients, format!("{}:old-{i}", alice.id))
                    .await
                    .expect("hexists");
                left += usize::from(exists);
            }
            left
        }
    };

    // A send trims at most 200 old messages, with their records; the next send goes on.
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    let fresh = a.say(resonance, "new-1", "today").await;
    let len: i64 = app.state.redis.xlen(&stream).await.expect("xlen");
    assert_eq!(len, 51, "200 trimmed, 50 old left, today's added");
    assert_eq!(remaining(&app).await, 50);
    // The conversation is scheduled for the worker at its oldest message's expiry (already
    // past), not at today's.
    let at: Option<f64> = app
        .state
        .redis
        .zscore(keys.chat_trim_due(), resonance.to_string())
        .await
        .expect("zscore");
    let oldest_expiry = then.timestamp_millis() as f64 + entities::chat::MESSAGE_TTL_MS as f64;
    assert_eq!(at, Some(oldest_expiry));
    a.say(resonance, "new-2", "still today").await;
    let len: i64 = app.state.redis.xlen(&stream).await.expect("xlen");
    assert_eq!(len, 2, "only today's messages are left");
    assert_eq!(
        remaining(&app).await,
        0,
        "every trimmed message's record is gone"
    );
    let new_record: bool = app
        .state
        .redis
        .hexists(&clients, format!("{}:new-1", alice.id))
        .await
        .expect("hexists");
    assert!(new_record);
    // So an old client id is a new message now; today's is still de-duplicated.
    let again = a.say(resonance, "old-0", "yesterday, again").await;
    assert_eq!(again["duplicate"], false, "{again}");
    assert_ne!(again["message_id"], first_old.as_str());
    let retry = a.say(resonance, "new-1", "today").await;
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["message_id"], fresh["message_id"]);
}

#[tokio::test]
async fn the_worker_trims_conversations_nobody_writes_to_any_more() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let (carol, dave) = (app.person(json!({})).await, app.person(json!({})).await);
    let quiet = app.resonance(&alice, &bob).await;
    let busy = app.resonance(&carol, &dave).await;
    let keys = &app.state.keys;
    // A message today: its send schedules the conversation's trim for 24 h later.
    let mut c = ChatClient::connect(&gateway.url, &carol).await;
    c.say(busy, "b-1", "today").await;
    let now = chrono::Utc::now().timestamp_millis() as f64;
    let at: Option<f64> = app
        .state
        .redis
        .zscore(keys.chat_trim_due(), busy.to_string())
        .await
        .expect("zscore");
    let day = entities::chat::MESSAGE_TTL_MS as f64;
    let at = at.expect("scheduled");
    assert!((at - (now + day)).abs() < 60_000.0, "{at} vs {now}");

    // 250 messages sent 25 hours ago in a conversation nobody writes to any more.
    let (stream, clients) = (keys.chat_stream(&quiet), keys.chat_clients(&quiet));
    let (then, _) = store_expired_messages(&app, quiet, &alice, "q", 250).await;
    let _: i64 = app
        .state
        .redis
        .zadd(
            keys.chat_trim_due(),
            None,
            None,
            false,
            false,
            (then.timestamp_millis() as f64 + day, quiet.to_string()),
        )
        .await
        .expect("zadd");
    // A broken conversation (a key of the wrong type), due first, does not stop the others.
    let broken = Uuid::new_v4();
    let _: () = app
        .state
        .redis
        .set(keys.chat_stream(&broken), "not a stream", None, None, false)
        .await
        .expect("set");
    let _: i64 = app
        .state
        .redis
        .zadd(
            keys.chat_trim_due(),
            None,
            None,
            false,
            false,
            (then.timestamp_millis() as f64, broken.to_string()),
        )
        .await
        .expect("zadd");

    let passes = api::worker::trim_expired_messages(&app.state)
        .await
        .expect("trim");
    assert_eq!(
        passes, 3,
        "the broken one once, then 200 messages per pass: two passes"
    );
    let retry_at: f64 = app
        .state
        .redis
        .zscore::<Option<f64>, _, _>(keys.chat_trim_due(), broken.to_string())
        .await
        .expect("zscore")
        .expect("still scheduled");
    let now = chrono::Utc::now().timestamp_millis() as f64;
    assert!(
        retry_at > now + 500_000.0,
        "retried in 10 minutes: {retry_at}"
    );
    let len: i64 = app.state.redis.xlen(&stream).await.expect("xlen");
    assert_eq!(len, 0, "every expired message is gone");
    let records: i64 = app.state.redis.hlen(&clients).await.expect("hlen");
    assert_eq!(records, 0, "and so are their de-duplication records");
    let scheduled: Option<f64> = app
        .state
        .redis
        .zscore(keys.chat_trim_due(), quiet.to_string())
        .await
        .expect("zscore");
    assert_eq!(scheduled, None, "nothing left to trim there");
    // Resuming from before says the history is incomplete.
    let mut b = ChatClient::connect(&gateway.url, &bob).await;
    b.send(json!({"type": "resume", "positions": {quiet.to_string(): null}}))
        .await;
    let resumed = b.next_of("resumed", &[]).await;
    assert_eq!(resumed["replayed"], 0);
    assert_eq!(resumed["recovered"], false, "{resumed}");
    // Today's conversation is untouched and stays scheduled.
    let len: i64 = app
        .state
        .redis
        .xlen(keys.chat_stream(&busy))
        .await
        .expect("xlen");
    assert_eq!(len, 1);
    let still: Option<f64> = app
        .state
        .redis
        .zscore(keys.chat_trim_due(), busy.to_string())
        .await
        .expect("zscore");
    assert_eq!(still, Some(at));
}

#[tokio::test]
async fn a_killed_gateway_loses_no_acked_message() {
    let app = spawn_app().await;
    let mut g1 = app.spawn_gateway(&[("RATE_LIMITS", "messages_per_minute=10000/60")]);
    let g2 = app.spawn_gateway(&[("RATE_LIMITS", "messages_per_minute=10000/60")]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = ChatClient::connect(&g1.url, &alice).await;
    let mut b = ChatClient::connect(&g1.url, &bob).await;

    // Alice sends 40 messages without waiting; the gateway is killed after 20 acks.
    for i in 0..40 {
        a.send(json!({"type": "send", "resonance_id": resonance, "client_id": format!("k-{i}"), "body": format!("{i}")}))
            .await;
    }
    let mut acked: HashMap<String, String> = HashMap::new();
    while acked.len() < 20 {
        let ack = a.next_of("ack", LIVE).await;
        acked.insert(
            ack["client_id"].as_str().expect("c").to_owned(),
            ack["message_id"].as_str().expect("id").to_owned(),
        );
    }
    g1.kill();
    // Whatever else was acked before the socket died counts too.
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        futures_util::StreamExt::next(&mut a.ws),
    )
    .await
    {
        let frame: Value = serde_json::from_str(&text).expect("json");
        if frame["type"] == "ack" {
            acked.insert(
                frame["client_id"].as_str().expect("c").to_owned(),
                frame["message_id"].as_str().expect("id").to_owned(),
            );
        }
    }
    // Bob saw some messages live before the crash; his last seen id is his position.
    let mut bob_seen: Vec<String> = Vec::new();
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        futures_util::StreamExt::next(&mut b.ws),
    )
    .await
    {
        let frame: Value = serde_json::from_str(&text).expect("json");
        if frame["type"] == "message" {
            bob_seen.push(frame["message_id"].as_str().expect("id").to_owned());
        }
    }

    // Both reconnect to the surviving gateway. Alice re-sends what was not acked (same client
    // ids); Bob resumes from his last seen id.
    let mut a = ChatClient::connect(&g2.url, &alice).await;
    for i in 0..40 {
        let client_id = format!("k-{i}");
        if let std::collections::hash_map::Entry::Vacant(slot) = acked.entry(client_id.clone()) {
            let ack = a.say(resonance, &client_id, &format!("{i}")).await;
            slot.insert(ack["message_id"].as_str().expect("id").to_owned());
        }
    }
    let mut b = ChatClient::connect(&g2.url, &bob).await;
    let position = bob_seen
        .last()
        .cloned()
        .map(Value::from)
        .unwrap_or(Value::Null);
    b.send(json!({"type": "resume", "positions": {resonance.to_string(): position}}))
        .await;
    loop {
        let frame = b.next().await;
        match frame["type"].as_str() {
            Some("message") => bob_seen.push(frame["message_id"].as_str().expect("id").to_owned()),
            Some("resumed") => break,
            _ => {}
        }
    }
    let unique: HashSet<&String> = bob_seen.iter().collect();
    assert_eq!(unique.len(), bob_seen.len(), "no message twice");
    let missing: Vec<&String> = acked.values().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "acked but never delivered: {missing:?}");
    assert_eq!(acked.len(), 40);
    assert_eq!(unique.len(), 40, "each message stored once despite retries");
}

#[tokio::test]
async fn unmatch_and_block_close_the_conversation_at_once() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = ChatClient::connect(&g1.url, &alice).await;
    let mut b = ChatClient::connect(&g2.url, &bob).await;
    a.say(resonance, "u-1", "hello").await;
    assert_eq!(b.next_of("message", LIVE).await["body"], "hello");

    let resp = app
        .delete_authed(&format!("/v1/resonances/{resonance}"), &bob.access)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for client in [&mut a, &mut b] {
        let closed = client.next_of("closed", LIVE).await;
        assert_eq!(closed["resonance_id"], resonance.to_string());
    }
    // Writing to it now fails, on any gateway, and nothing is stored or delivered.
    a.send(json!({"type": "send", "resonance_id": resonance, "client_id": "u-2", "body": "still there?"}))
        .await;
    let error = a.next_of("error", LIVE).await;
    assert_eq!(error["code"], "not_member");
    assert_eq!(error["client_id"], "u-2");
    let resp = app
        .get_authed(
            &format!("/v1/resonances/{resonance}/messages"),
            &alice.access,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let len: i64 = app
        .state
        .redis
        .xlen(app.state.keys.chat_stream(&resonance))
        .await
        .expect("xlen");
    assert_eq!(len, 0, "the history is deleted");

    // A block ends a conversation the same way: the blocked person can no longer write.
    let (carol, dan) = (app.person(json!({})).await, app.person(json!({})).await);
    let second = app.resonance(&carol, &dan).await;
    let mut c = ChatClient::connect(&g1.url, &carol).await;
    let mut d = ChatClient::connect(&g2.url, &dan).await;
    let resp = app
        .post_authed("/v1/blocks", &carol.access, json!({"user_id": dan.id}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        d.next_of("closed", LIVE).await["resonance_id"],
        second.to_string()
    );
    assert_eq!(
        c.next_of("closed", LIVE).await["resonance_id"],
        second.to_string()
    );
    d.send(json!({"type": "resume", "positions": {second.to_string(): null}}))
        .await;
    assert_eq!(d.next_of("error", LIVE).await["code"], "not_member");
    drop((g1, g2));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let stranger = app.person(json!({})).await;
    let mut a = ChatClient::connect(&gateway.url, &alice).await;

    let cases: Vec<(Message, &str, Option<&str>)> = vec![
        (Message::Text("not json".into()), "bad_frame", None),
        (Message::Text("[1,2]".into()), "bad_frame", None),
        (Message::Text(r#"{"body":"no type"}"#.into()), "bad_frame", Some("type")),
        (Message::Text(r#"{"type":"dance"}"#.into()), "unknown_type", Some("type")),
        (Message::Text(json!({"type": "send", "resonance_id": resonance, "body": "x"}).to_string().into()), "invalid_field", Some("client_id")),
        (Message::Text(json!({"type": "send", "resonance_id": "nope", "client_id": "1", "body": "x"}).to_string().into()), "invalid_field", Some("resonance_id")),
        (Message::Text(json!({"type": "send", "resonance_id": resonance, "client_id": "1", "body": "   "}).to_string().into()), "invalid_field", Some("body")),
        (Message::Text(json!({"type": "send", "resonance_id": resonance, "client_id": "1", "body": "é".repeat(4001)}).to_string().into()), "too_big", Some("body")),
        (Message::Text(json!({"type": "resume", "positions": {resonance.to_string(): "last-tuesday"}}).to_string().into()), "invalid_field", Some("positions")),
        (Message::Text(json!({"type": "read", "resonance_id": resonance, "message_id": "x"}).to_string().into()), "invalid_field", Some("message_id")),
        (Message::Binary(vec![1, 2, 3].into()), "bad_frame", None),
    ];
    for (message, code, field) in cases {
        a.send_raw(message).await;
        let error = a.next_of("error", LIVE).await;
        assert_eq!(error["code"], code, "{error}");
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{error}");
        }
    }
    // Someone else's conversation, or one that does not exist.
    let mut s = ChatClient::connect(&gateway.url, &stranger).await;
    for id in [resonance, Uuid::new_v4()] {
        s.send(json!({"type": "send", "resonance_id": id, "client_id": "s-1", "body": "hi"}))
            .await;
        let error = s.next_of("error", LIVE).await;
        assert_eq!(error["code"], "not_member");
        assert_eq!(error["resonance_id"], id.to_string());
        s.send(json!({"type": "typing", "resonance_id": id})).await;
        assert_eq!(s.next_of("error", LIVE).await["code"], "not_member");
    }
    // Resumes are limited per connection (each may replay a lot): 10 a minute — one was
    // already sent above, so the tenth here is refused.
    for _ in 0..10 {
        a.send(json!({"type": "resume", "positions": {}})).await;
    }
    let error = a.next_of("error", LIVE).await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    assert!(error["retry_after"].as_u64().is_some_and(|s| s >= 1));
    // Still connected and working after all that.
    let ack = a.say(resonance, "ok-1", "still here").await;
    assert_eq!(ack["duplicate"], false);
    // A frame over 16 KiB closes with 1009.
    a.send_raw(Message::Text("x".repeat(17 * 1024).into()))
        .await;
    let (code, _) = a.closed().await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn the_message_rate_limit_answers_with_retry_after_and_keeps_the_connection() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[("RATE_LIMITS", "messages_per_minute=3/60")]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    let ready_limit = {
        let mut other = ChatClient::open(&gateway.url, Auth::Header(&alice.access)).await;
        other.next().await["messages_per_minute"].clone()
    };
    assert_eq!(ready_limit, 3);
    for i in 0..3 {
        a.say(resonance, &format!("r-{i}"), "hi").await;
    }
    a.send(json!({"type": "send", "resonance_id": resonance, "client_id": "r-3", "body": "one too many"}))
        .await;
    let error = a.next_of("error", LIVE).await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["client_id"], "r-3");
    let retry = error["retry_after"].as_u64().expect("retry_after");
    assert!((1..=60).contains(&retry), "{retry}");
    // A retry of a stored message is still acked (it is not a new message).
    assert_eq!(a.say(resonance, "r-0", "hi").await["duplicate"], true);
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.next_of("pong", LIVE).await["type"], "pong");
}

#[tokio::test]
async fn authentication_failures_and_revocations_close_with_clear_codes() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[("CHAT_AUTH_TIMEOUT_S", "1")]);
    let alice = app.person(json!({})).await;

    // No token and no auth frame in time.
    let mut c = ChatClient::open(&gateway.url, Auth::None).await;
    assert_eq!(c.closed().await, (4001, "no auth frame in time".to_owned()));
    // A forged token.
    let mut c = ChatClient::open(&gateway.url, Auth::Header("eyJhbGciOiJFZERTQSJ9.e30.c2ln")).await;
    assert_eq!(c.closed().await, (4001, "invalid token".to_owned()));
    // An expired token, signed with the right key.
    let now = chrono::Utc::now().timestamp();
    let expired = app
        .state
        .jwt
        .issue(&entities::auth::AccessClaims {
            sub: alice.id,
            sid: alice.session_id,
            role: entities::auth::Role::User,
            iss: entities::auth::ISSUER.into(),
            aud: entities::auth::AUDIENCE.into(),
            iat: now - 1000,
            exp: now - 100,
            auth_time: now - 1000,
            jti: Uuid::new_v4(),
        })
        .expect("token");
    let mut c = ChatClient::open(&gateway.url, Auth::Header(&expired)).await;
    assert_eq!(c.closed().await, (4001, "token expired".to_owned()));

    // Browsers: the subprotocol offer (the token is never echoed) or a first auth frame.
    let mut c = ChatClient::open(&gateway.url, Auth::Subprotocol(&alice.access)).await;
    assert_eq!(c.protocol.as_deref(), Some("despacio.v1"));
    assert_eq!(c.next().await["type"], "ready");
    let mut f = ChatClient::open(&gateway.url, Auth::Frame(&alice.access)).await;
    let ready = f.next().await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["session_id"], alice.session_id.to_string());

    // Signing out this session disconnects it within seconds, with 4003.
    sign_out(&app, &alice).await;
    assert_eq!(c.closed().await, (4003, "session revoked".to_owned()));
    assert_eq!(f.closed().await.0, 4003);
    // And the revoked session's still-unexpired token cannot connect again.
    let mut c = ChatClient::open(&gateway.url, Auth::Header(&alice.access)).await;
    assert_eq!(c.closed().await.0, 4003);
    // A forged copy of it learns nothing about the session: its signature is what is wrong.
    let forged = with_signature(&alice.access, &alice.access, Some(0));
    let mut c = ChatClient::open(&gateway.url, Auth::Header(&forged)).await;
    assert_eq!(c.closed().await, (4001, "invalid token".to_owned()));
}

#[tokio::test]
async fn a_revoked_session_that_connects_never_shows_as_online() {
    let app = spawn_app().await;
    let (_g1, g2, alice, bob, resonance, mut b) = bob_watching_alice(&app).await;

    // Alice signs out; her still-unexpired token is refused on the other gateway...
    sign_out(&app, &alice).await;
    let mut c = ChatClient::open(&g2.url, Auth::Header(&alice.access)).await;
    assert_eq!(c.closed().await, (4003, "session revoked".to_owned()));
    // ...and Bob was told nothing about her.
    told_nothing_until_his_tablet_speaks(&g2.url, &bob, resonance, &mut b).await;
}

#[tokio::test]
async fn a_token_verified_by_one_gateway_is_remembered_by_all_and_no_altered_copy_is() {
    let app = spawn_app().await;
    let (g1, g2, alice, bob, resonance, mut b) = bob_watching_alice(&app).await;
    assert_eq!(tokens_accepted(&app, &g1.base).await, (1, 0));

    // Alice's header and claims with Bob's signature, and her token with one signature character
    // changed: refused with 4001 (their claims are fine: only their signatures tell).
    let spliced = with_signature(&alice.access, &bob.access, None);
    let altered = with_signature(&alice.access, &alice.access, Some(10));
    for forged in [&spliced, &altered] {
        let mut c = ChatClient::open(&g2.url, Auth::Header(forged)).await;
        assert_eq!(c.closed().await, (4001, "invalid token".to_owned()));
    }
    // Nobody was told Alice came online; Bob's tablet, with the token g1 verified, was taken by
    // g2 without checking its signature.
    told_nothing_until_his_tablet_speaks(&g2.url, &bob, resonance, &mut b).await;
    assert_eq!(tokens_accepted(&app, &g2.base).await, (0, 1));

    // Alice's real token: verified on g2, then remembered on g1; an altered copy of it is still
    // refused there.
    let _a2 = ChatClient::connect(&g2.url, &alice).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], true);
    let _a1 = ChatClient::connect(&g1.url, &alice).await;
    assert_eq!(tokens_accepted(&app, &g2.base).await, (1, 1));
    assert_eq!(tokens_accepted(&app, &g1.base).await, (1, 1));
    let mut c = ChatClient::open(&g1.url, Auth::Header(&altered)).await;
    assert_eq!(c.closed().await, (4001, "invalid token".to_owned()));
    assert_eq!(tokens_accepted(&app, &g1.base).await, (1, 1));
}

#[tokio::test]
async fn forged_tokens_arriving_together_never_move_anyones_presence() {
    let app = spawn_app().await;
    let (_g1, g2, alice, bob, resonance, mut b) = bob_watching_alice(&app).await;

    // Twenty copies of Alice's token, each with another wrong signature, all at once on g2
    // (Alice herself is connected nowhere): each is listed while its signature is checked, and
    // refused.
    let forged: Vec<String> = (0..20)
        .map(|i| with_signature(&alice.access, &bob.access, Some(i)))
        .collect();
    let closes = futures_util::future::join_all(forged.iter().map(|token| {
        let url = g2.url.clone();
        async move {
            ChatClient::open(&url, Auth::Header(token))
                .await
                .closed()
                .await
        }
    }))
    .await;
    for close in closes {
        assert_eq!(close, (4001, "invalid token".to_owned()));
    }
    // Nothing about Alice changed: no presence, no "last seen", and Bob was told nothing (the
    // next frame he gets is the message his tablet sends now).
    let redis = app.state.redis.next();
    let present: i64 = redis
        .exists(app.state.keys.chat_presence(&alice.id))
        .await
        .expect("exists");
    let seen: i64 = redis
        .exists(app.state.keys.chat_last_seen(&alice.id))
        .await
        .expect("exists");
    assert_eq!((present, seen), (0, 0));
    told_nothing_until_his_tablet_speaks(&g2.url, &bob, resonance, &mut b).await;
}

/// `user` signs out of their session through the API (the gateway hears of the revocation).
async fn sign_out(app: &crate::helpers::TestApp, user: &crate::helpers::TestUser) {
    let resp = app
        .delete_authed(
            &format!("/v1/auth/sessions/{}", user.session_id),
            &user.access,
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// Two gateways, Alice and Bob in a résonance, Bob connected to the first, resumed, and told
/// Alice is offline.
async fn bob_watching_alice(
    app: &crate::helpers::TestApp,
) -> (
    crate::chat_client::GatewayProcess,
    crate::chat_client::GatewayProcess,
    crate::helpers::TestUser,
    crate::helpers::TestUser,
    Uuid,
    ChatClient,
) {
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut b = connect_and_resume(&g1.url, &bob, resonance).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], false);
    (g1, g2, alice, bob, resonance, b)
}

/// Bob's tablet connects to `url` and sends a message: the next frame Bob's `b` gets must be it
/// (pub/sub keeps the order, so a presence published before would have come first).
pub(crate) async fn told_nothing_until_his_tablet_speaks(
    url: &str,
    bob: &crate::helpers::TestUser,
    resonance: Uuid,
    b: &mut ChatClient,
) {
    let mut tablet = ChatClient::connect(url, bob).await;
    tablet.say(resonance, "t-1", "tu es là ?").await;
    let next = b.next().await;
    assert_eq!(next["type"], "message", "{next}");
    assert_eq!(next["client_id"], "t-1");
}

/// `token`'s header and claims with `signer`'s signature, one character of it changed at `at`.
fn with_signature(token: &str, signer: &str, at: Option<usize>) -> String {
    let (signed, _) = token.rsplit_once('.').expect("jwt");
    let mut signature: Vec<char> = signer.rsplit_once('.').expect("jwt").1.chars().collect();
    if let Some(i) = at {
        signature[i] = if signature[i] == 'A' { 'B' } else { 'A' };
    }
    format!("{signed}.{}", signature.into_iter().collect::<String>())
}

/// A gateway's accepted tokens: (signature checked there, remembered).
async fn tokens_accepted(app: &crate::helpers::TestApp, base: &str) -> (u64, u64) {
    let metrics = gateway_metrics(app, base).await;
    let count = |how: &str| {
        let line = format!("despacio_gateway_tokens_accepted_total{{how=\"{how}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (count("signature"), count("remembered"))
}

#[tokio::test]
async fn admission_control_queues_connections_and_slow_clients_hold_no_place() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[("CHAT_ADMISSIONS", "8"), ("CHAT_AUTH_TIMEOUT_S", "30")]);
    // Ten clients that connect and never send their token: they hold no admission place.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(ChatClient::open(&gateway.url, Auth::None).await);
    }
    // Sixty people connecting at once, through 8 places: some wait their turn, and every one of
    // them gets `ready` (each `connect` fails after 10 s without it, well before the silent
    // ones' 30 s authentication deadline).
    let mut people = Vec::new();
    for _ in 0..60 {
        people.push(app.person(json!({})).await);
    }
    futures_util::future::join_all(
        people
            .iter()
            .map(|person| ChatClient::connect(&gateway.url, person)),
    )
    .await;
    let metrics = gateway_metrics(&app, &gateway.base).await;
    let waits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("despacio_gateway_admission_waits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("admission waits in {metrics}"));
    assert!(waits > 0, "nobody waited for a place: {metrics}");
    // The places were given back: one more person still gets in.
    let late = app.person(json!({})).await;
    ChatClient::connect(&gateway.url, &late).await;
    drop(silent);
}

#[tokio::test]
async fn presence_typing_and_read_receipts_reach_the_other_member() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut a = connect_and_resume(&g1.url, &alice, resonance).await;
    let presence = a.next_of("presence", &[]).await;
    assert_eq!(presence["user_id"], bob.id.to_string());
    assert_eq!(presence["online"], false);

    // Bob comes online on the other gateway: Alice is told.
    let mut b = ChatClient::connect(&g2.url, &bob).await;
    let online = a.next_of("presence", &[]).await;
    assert_eq!(
        (online["user_id"].clone(), online["online"].clone()),
        (json!(bob.id), json!(true))
    );

    // Typing (throttled to one per 3 s per conversation) and read receipts.
    b.send(json!({"type": "typing", "resonance_id": resonance}))
        .await;
    b.send(json!({"type": "typing", "resonance_id": resonance}))
        .await;
    let typing = a.next_of("typing", &[]).await;
    assert_eq!(typing["user_id"], bob.id.to_string());
    let sent = a.say(resonance, "p-1", "lu ?").await;
    b.next_of("message", &[]).await;
    let mut b_tablet = ChatClient::connect(&g1.url, &bob).await;
    b.send(json!({"type": "read", "resonance_id": resonance, "message_id": sent["message_id"]}))
        .await;
    let read = a.next_of("read", &[]).await;
    assert_eq!(read["user_id"], bob.id.to_string());
    assert_eq!(read["message_id"], sent["message_id"]);
    // The reader's other device learns it too.
    assert_eq!(
        b_tablet.next_of("read", &[]).await["message_id"],
        sent["message_id"]
    );
    // Only one typing frame came through the throttle.
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.next().await["type"], "pong");

    // Bob leaves on every device: offline, with a last-seen time.
    drop(b);
    drop(b_tablet);
    let offline = a.next_of("presence", &[]).await;
    assert_eq!(offline["online"], false);
    assert!(offline["last_seen"].is_string(), "{offline}");

    // Alice leaves too: her gateway stops listening to Bob's presence (nothing else watches it).
    let channel = app.state.keys.chat_presence_channel(&bob.id);
    assert_eq!(presence_listeners(&app, &channel).await, 1);
    drop(a);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while presence_listeners(&app, &channel).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still subscribed to {channel}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How many Redis connections subscribe to `channel`.
async fn presence_listeners(app: &crate::helpers::TestApp, channel: &str) -> i64 {
    use fred::prelude::PubsubInterface;
    let answer: Vec<fred::types::Value> = app
        .state
        .redis
        .next()
        .pubsub_numsub(channel)
        .await
        .expect("pubsub numsub");
    answer.get(1).and_then(|v| v.as_i64()).expect("a count")
}

#[tokio::test]
async fn a_burst_of_sends_is_stored_in_batches_and_each_message_stays_its_own() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let bob = app.person(json!({})).await;
    let mut b = ChatClient::connect(&g2.url, &bob).await;
    let mut senders = Vec::new();
    for _ in 0..6 {
        let someone = app.person(json!({})).await;
        let resonance = app.resonance(&someone, &bob).await;
        let client = ChatClient::connect(&g1.url, &someone).await;
        senders.push((someone, resonance, client));
    }
    // Every sender writes 20 frames without waiting, the fifth one twice (a retry; a connection
    // reads its next frame after the previous ack, so batches mix the six senders' messages —
    // messages of one conversation within one call are covered by
    // `every_message_of_a_send_batch_gets_its_own_answer`): whatever queues up while a call is
    // in flight goes to Redis together.
    let clients = |n: usize| (0..n).map(|i| format!("c-{i}")).collect::<Vec<_>>();
    for (_, resonance, client) in &mut senders {
        for (i, id) in clients(20).iter().enumerate() {
            let frame = json!({"type": "send", "resonance_id": resonance, "client_id": id, "body": format!("n°{i}")});
            client.send(frame.clone()).await;
            if i == 4 {
                client.send(frame).await;
            }
        }
    }
    let mut stored: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (_, resonance, client) in &mut senders {
        let mut last: Option<entities::chat::StreamId> = None;
        for (i, id) in clients(20).iter().enumerate() {
            let ack = client.next_of("ack", LIVE).await;
            assert_eq!(ack["client_id"], id.as_str(), "acks come in the order sent");
            assert_eq!(ack["duplicate"], false, "{ack}");
            let message_id = ack["message_id"].as_str().expect("id").to_owned();
            let parsed: entities::chat::StreamId = message_id.parse().expect("stream id");
            assert!(
                last.is_none_or(|l| parsed > l),
                "ids grow within a conversation"
            );
            last = Some(parsed);
            if i == 4 {
                let again = client.next_of("ack", LIVE).await;
                assert_eq!(again["duplicate"], true, "{again}");
                assert_eq!(again["message_id"], message_id.as_str());
            }
            stored.entry(*resonance).or_default().push(message_id);
        }
    }
    // The recipient, on the other gateway, gets each stored message once, in order per
    // conversation.
    let mut received: HashMap<Uuid, Vec<String>> = HashMap::new();
    for _ in 0..6 * 20 {
        let message = b.next_of("message", LIVE).await;
        let resonance: Uuid = message["resonance_id"]
            .as_str()
            .expect("resonance")
            .parse()
            .expect("uuid");
        received
            .entry(resonance)
            .or_default()
            .push(message["message_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(received, stored);
    b.send(json!({"type": "ping"})).await;
    assert_eq!(
        b.next_of("pong", LIVE).await["type"],
        "pong",
        "no duplicate delivered"
    );
    // Some calls of the send script carried several messages.
    let metrics = gateway_metrics(&app, &g1.base).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let (calls, messages) = (
        value("despacio_gateway_send_batch_messages_count"),
        value("despacio_gateway_send_batch_messages_sum"),
    );
    assert_eq!(messages, 126.0, "every send went through the batcher");
    assert!(calls < messages, "{calls} calls for {messages} messages");
}

#[tokio::test]
async fn every_message_of_a_send_batch_gets_its_own_answer() {
    // The send script itself, with a batch built by hand: what one call must answer for each
    // message, whatever the others do.
    let app = spawn_app().await;
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let (carol, dave) = (app.person(json!({})).await, app.person(json!({})).await);
    let eve = app.person(json!({})).await;
    let ours = app.resonance(&alice, &bob).await;
    let broken = app.resonance(&carol, &dave).await;
    let unknown = Uuid::new_v4();
    let keys = &app.state.keys;
    // A key of the wrong type makes that message's commands fail.
    let _: () = app
        .state
        .redis
        .set(keys.chat_clients(&broken), "not a hash", None, None, false)
        .await
        .expect("set");
    let batch: Vec<(&crate::helpers::TestUser, Uuid, &str)> = vec![
        (&alice, ours, "c1"),
        (&alice, ours, "c1"),
        (&bob, ours, "c2"),
        (&eve, ours, "c3"),
        (&carol, broken, "c4"),
        (&alice, ours, "c5"),
        (&alice, ours, "c6"),
        (&alice, ours, "c7"),
        (&alice, unknown, "c8"),
    ];
    let mut script_keys = Vec::new();
    let mut args = vec![
        chrono::Utc::now().timestamp_millis().to_string(),
        entities::chat::MESSAGE_TTL_MS.to_string(),
        entities::chat::MAX_MESSAGES.to_string(),
        "3".to_owned(), // three messages per person and minute
        "60000".to_owned(),
        keys.prefix().to_owned(),
        "test-instance".to_owned(),
    ];
    for (who, resonance, client) in &batch {
        script_keys.extend([
            keys.chat_meta(resonance),
            keys.chat_stream(resonance),
            keys.chat_clients(resonance),
            keys.rate_limit("messages_per_minute", &who.id.to_string()),
            keys.chat_presence(&who.id),
        ]);
        args.extend([
            who.id.to_string(),
            (*client).to_owned(),
            format!("body {client}"),
            "2026-11-25T10:00:00.000Z".to_owned(),
            r#"{"type":"message","message_id":""#.to_owned(),
            "test-origin".to_owned(),
            "0".to_owned(),
            resonance.to_string(),
        ]);
    }
    let answer: Vec<String> = app
        .state
        .redis
        .eval(entities::chat::send_script(), script_keys, args)
        .await
        .expect("the script answers even when one message fails");
    let answers: Vec<&[String]> = answer.chunks(3).collect();
    assert_eq!(answers.len(), batch.len(), "{answer:?}");
    let status: Vec<&str> = answers.iter().map(|a| a[0].as_str()).collect();
    assert_eq!(
        status,
        [
            "ok",
            "dup",
            "ok",
            "notmember",
            "err",
            "ok",
            "ok",
            "rate",
            "nometa"
        ],
        "{answer:?}"
    );
    assert_eq!(
        answers[1][1], answers[0][1],
        "the retry in the same call gets the first id"
    );
    assert!(answers[4][1].contains("WRONGTYPE"), "{:?}", answers[4]);
    assert!(answers[7][1].parse::<u64>().expect("retry after ms") > 0);
    // Stored in batch order, ids growing; nothing stored for the refused ones.
    let ids: Vec<entities::chat::StreamId> = [0, 2, 5, 6]
        .iter()
        .map(|&i| answers[i][1].parse().expect("stream id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let len: i64 = app
        .state
        .redis
        .xlen(keys.chat_stream(&ours))
        .await
        .expect("xlen");
    assert_eq!(len, 4);
}

#[tokio::test]
async fn sigterm_closes_connections_with_1012_and_the_other_gateway_takes_over() {
    let app = spawn_app().await;
    let (g1, g2) = (app.spawn_gateway(&[]), app.spawn_gateway(&[]));
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut b = connect_and_resume(&g2.url, &bob, resonance).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], false);
    let mut a = ChatClient::connect(&g1.url, &alice).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], true);
    let sent = a.say(resonance, "t-1", "before the restart").await;
    assert_eq!(
        b.next_of("message", LIVE).await["message_id"],
        sent["message_id"]
    );
    g1.terminate();
    let (code, reason) = a.closed().await;
    assert_eq!(code, 1012, "{reason}");
    // The stopping gateway says its people went offline (Alice does not come back yet).
    let offline = b.next_of("presence", &[]).await;
    assert_eq!(offline["online"], false, "{offline}");
    assert!(offline["last_seen"].is_string(), "{offline}");
    // She reconnects to the other gateway and resumes: nothing is lost.
    let mut a = ChatClient::connect(&g2.url, &alice).await;
    a.send(json!({"type": "resume", "positions": {resonance.to_string(): null}}))
        .await;
    let replayed = a.next_of("message", &[]).await;
    assert_eq!(replayed["message_id"], sent["message_id"]);
    a.next_of("resumed", &[]).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], true);
    // The gateway's metrics count what happened.
    let metrics = gateway_metrics(&app, &g2.base).await;
    assert!(
        metrics.contains("despacio_gateway_connections 2"),
        "{metrics}"
    );
    // The live message to Bob, and Alice's own message replayed to her.
    assert!(
        metrics.contains("despacio_gateway_messages_out_total 2"),
        "{metrics}"
    );
    // Both connections got ready, and both resumes were answered.
    assert!(
        metrics.contains("despacio_gateway_setup_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("despacio_gateway_resume_seconds_count 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn people_not_connected_to_any_gateway_get_a_message_new_event() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut events = Sse::open(&app.address, &bob.access, None).await;
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    let ack = a.say(resonance, "o-1", "tu es là ?").await;
    let event = events.next_of("message.new").await;
    let data = event.data.expect("data");
    assert_eq!(data["data"]["resonance_id"], resonance.to_string());
    assert_eq!(data["data"]["message_id"], ack["message_id"]);
    assert_eq!(data["data"]["sender_id"], alice.id.to_string());
}

#[tokio::test]
async fn people_held_by_a_crashed_gateway_go_offline_for_their_matches() {
    let app = spawn_app().await;
    // Heartbeats every second: presence entries live 2.4 s without one.
    let fast = [("CHAT_HEARTBEAT_S", "1")];
    let g1 = app.spawn_gateway(&fast);
    let mut g2 = app.spawn_gateway(&fast);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let _b = ChatClient::connect(&g2.url, &bob).await;
    let mut a = ChatClient::connect(&g1.url, &alice).await;
    a.send(json!({"type": "resume", "positions": {resonance.to_string(): null}}))
        .await;
    let presence = a.next_of("presence", &["resumed"]).await;
    assert_eq!(presence["online"], true, "{presence}");
    // Bob's gateway dies without a word: no "offline" is ever published for him...
    g2.kill();
    // ...yet Alice's gateway notices his entry expire and tells her.
    let offline = a.next_of("presence", &[]).await;
    assert_eq!(offline["user_id"], bob.id.to_string());
    assert_eq!(offline["online"], false, "{offline}");
}

/// The text of a gateway's `/metrics`.
async fn gateway_metrics(app: &crate::helpers::TestApp, base: &str) -> String {
    app.client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Connects `user` and resumes `resonance` from the start (the partner's presence follows).
pub(crate) async fn connect_and_resume(
    url: &str,
    user: &crate::helpers::TestUser,
    resonance: Uuid,
) -> ChatClient {
    let mut client = ChatClient::connect(url, user).await;
    client
        .send(json!({"type": "resume", "positions": {resonance.to_string(): null}}))
        .await;
    client.next_of("resumed", &[]).await;
    client
}
