//! `GET /v1/events` (SSE): fan-out across API processes, resume, resync, heartbeats.
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Sse};

#[tokio::test]
async fn a_resonance_made_on_one_api_process_reaches_a_listener_on_another() {
    let app = spawn_app().await;
    let other_process = app.spawn_process();
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    let mut ana_events = Sse::open(&other_process.base, &ana.access, None).await;
    let mut ben_events = Sse::open(&app.address, &ben.access, None).await;

    app.swipe(&ana, &ben, "like").await;
    let back = app.swipe(&ben, &ana, "like").await;

    let resonance_id = back["resonance"]["id"].clone();
    let event = ana_events.next_of("resonance.created").await;
    let data = event.data.expect("data");
    assert_eq!(data["data"]["resonance_id"], resonance_id);
    assert_eq!(data["data"]["user_id"], ben.id.to_string());
    assert_eq!(data["id"].as_str(), event.id.as_deref());
    let event = ben_events.next_of("resonance.created").await;
    assert_eq!(
        event.data.expect("data")["data"]["user_id"],
        ana.id.to_string()
    );
}

#[tokio::test]
async fn likes_and_unmatches_are_announced() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    let mut ben_events = Sse::open(&app.address, &ben.access, None).await;

    app.swipe(&ana, &ben, "like").await;
    let likes = ben_events.next_of("likes.changed").await;
    assert_eq!(likes.data.expect("data")["data"]["count"], 1);
    let back = app.swipe(&ben, &ana, "like").await;
    ben_events.next_of("resonance.created").await;
    let id = back["resonance"]["id"].as_str().expect("id").to_owned();
    app.delete_authed(&format!("/v1/resonances/{id}"), &ana.access)
        .await;

    let removed = ben_events.next_of("resonance.removed").await;
    let data = removed.data.expect("data");
    assert_eq!(
        data["data"],
        json!({"resonance_id": id}),
        "no reason is given to the other side"
    );
}

#[tokio::test]
async fn last_event_id_replays_what_was_missed_in_order() {
    let app = spawn_app().await;
    let me = app.person_at(48.85, 2.35).await;
    let mut likers = Vec::new();
    for _ in 0..3 {
        likers.push(app.person_at(48.86, 2.36).await);
    }
    let mut events = Sse::open(&app.address, &me.access, None).await;
    app.swipe(&likers[0], &me, "like").await;
    let seen = events.next_of("likes.changed").await;
    drop(events);

    app.swipe(&likers[1], &me, "like").await;
    app.swipe(&likers[2], &me, "like").await;
    let mut resumed = Sse::open(&app.address, &me.access, seen.id.as_deref()).await;

    let second = resumed.next_event().await;
    let third = resumed.next_event().await;
    assert_eq!(second.data.expect("data")["data"]["count"], 2);
    assert_eq!(third.data.expect("data")["data"]["count"], 3);
}

#[tokio::test]
async fn an_id_older_than_the_buffer_asks_the_client_to_resync() {
    let app = spawn_app().await;
    let me = app.person_at(48.85, 2.35).await;
    let liker = app.person_at(48.86, 2.36).await;
    app.swipe(&liker, &me, "like").await;

    let mut events = Sse::open(&app.address, &me.access, Some("1-0")).await;

    assert_eq!(events.next_event().await.event.as_deref(), Some("resync"));
}

#[tokio::test]
async fn heartbeats_keep_idle_streams_alive() {
    let app = spawn_app_with(&[("SSE_HEARTBEAT_S", "1")]).await;
    let me = app.register().await;
    let mut events = Sse::open(&app.address, &me.access, None).await;
    let frame = events.next_frame().await;
    assert!(frame.comment && frame.event.is_none(), "{frame:?}");
}
