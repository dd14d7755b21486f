//! Swipes, résonances, unmatch, likes received.
use fred::prelude::{ClientLike, EventInterface, KeysInterface, PubsubInterface, StreamsInterface};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, header, redis_url, spawn_app, spawn_app_with, TestApp, TestUser,
};

async fn two(app: &TestApp) -> (TestUser, TestUser) {
    (
        app.person_at(48.85, 2.35).await,
        app.person_at(48.86, 2.36).await,
    )
}

#[tokio::test]
async fn a_like_back_creates_the_resonance_and_says_so() {
    let app = spawn_app().await;
    let (ana, ben) = two(&app).await;

    let first = app
        .post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ben.id, "action": "like"}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["resonance_created"], false);
    assert!(first["resonance"].is_null());

    let back = app.swipe(&ben, &ana, "like").await;
    assert_eq!(back["resonance_created"], true);
    assert_eq!(back["resonance"]["user_id"], ana.id.to_string());
    let id = back["resonance"]["id"].as_str().expect("id").to_owned();

    let list = app.get_json("/v1/resonances", &ana.access).await;
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["user_id"], ben.id.to_string());
    assert_eq!(list["items"][0]["profile"]["user_id"], ben.id.to_string());
    assert!(list["items"][0]["last_activity_at"].is_string());
}

#[tokio::test]
async fn repeating_a_swipe_changes_nothing() {
    let app = spawn_app_with(&[("RATE_LIMITS", "likes_per_day=1/86400")]).await;
    let (ana, ben) = two(&app).await;
    app.swipe(&ana, &ben, "like").await;

    let again = app
        .post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ben.id, "action": "like"}),
        )
        .await;

    assert_eq!(
        again.status(),
        StatusCode::OK,
        "unchanged, and not counted against the budget"
    );
    let rows: i64 = app
        .sql_value("SELECT count(*) FROM swipes")
        .await
        .expect("count");
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn simultaneous_likes_on_two_instances_make_exactly_one_resonance() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let mut pairs = Vec::new();
    for _ in 0..8 {
        pairs.push(two(&app).await);
    }

    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (a, b) in &pairs {
        for (from, to, base) in [(a, b, app.address.clone()), (b, a, other.clone())] {
            let req = client
                .post(format!("{base}/v1/swipes"))
                .bearer_auth(&from.access)
                .json(&json!({"target_id": to.id, "action": "like"}));
            tasks.push(tokio::spawn(async move {
                req.send()
                    .await
                    .expect("swipe")
                    .json::<Value>()
                    .await
                    .expect("json")
            }));
        }
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("join"));
    }

    let resonances: i64 = app
        .sql_value("SELECT count(*) FROM resonances")
        .await
        .expect("count");
    assert_eq!(resonances, 8);
    let created = answers
        .iter()
        .filter(|a| a["resonance_created"] == true)
        .count();
    assert_eq!(
        created, 8,
        "exactly one of each pair's two likes created it"
    );
}

#[tokio::test]
async fn swiping_myself_a_stranger_or_someone_blocked_is_refused() {
    let app = spawn_app().await;
    let (ana, ben) = two(&app).await;
    let body = assert_problem(
        app.post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ana.id, "action": "like"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "target_id");
    assert_problem(
        app.post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": uuid::Uuid::new_v4(), "action": "like"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    app.post_authed("/v1/blocks", &ben.access, json!({"user_id": ana.id}))
        .await;
    assert_problem(
        app.post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ben.id, "action": "like"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    let body = assert_problem(
        app.post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ben.id, "action": "wink"}),
        )
        .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "action");
}

#[tokio::test]
async fn the_daily_like_budget_and_the_swipe_rate_are_enforced() {
    let app = spawn_app_with(&[(
        "RATE_LIMITS",
        "likes_per_day=2/86400,swipes_per_minute=4/60",
    )])
    .await;
    let me = app.person_at(48.85, 2.35).await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(app.person_at(48.86, 2.36).await);
    }
    app.swipe(&me, &others[0], "like").await;
    app.swipe(&me, &others[1], "like").await;

    let resp = app
        .post_authed(
            "/v1/swipes",
            &me.access,
            json!({"target_id": others[2].id, "action": "like"}),
        )
        .await;
    let headers = resp.headers().clone();
    assert_problem(resp, 429, "rate-limited").await;
    let retry: u64 = header(&headers, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("number");
    assert!(retry <= 86_400, "resets by midnight UTC");

    // Passes are still possible, up to the per-minute rate.
    app.swipe(&me, &others[3], "pass").await;
    let resp = app
        .post_authed(
            "/v1/swipes",
            &me.access,
            json!({"target_id": others[4].id, "action": "pass"}),
        )
        .await;
    assert_problem(resp, 429, "rate-limited").await;
}

#[tokio::test]
async fn resonances_are_listed_newest_first_with_a_cursor() {
    let app = spawn_app().await;
    let me = app.person_at(48.85, 2.35).await;
    let mut matched = Vec::new();
    for _ in 0..3 {
        let other = app.person_at(48.86, 2.36).await;
        app.swipe(&other, &me, "like").await;
        app.swipe(&me, &other, "like").await;
        matched.push(other.id.to_string());
    }

    let first = app.get_json("/v1/resonances?limit=2", &me.access).await;
    let second = app
        .get_json(
            &format!(
                "/v1/resonances?limit=2&cursor={}",
                first["next_cursor"].as_str().expect("cursor")
            ),
            &me.access,
        )
        .await;

    let order: Vec<String> = first["items"]
        .as_array()
        .into_iter()
        .chain(second["items"].as_array())
        .flatten()
        .map(|i| i["user_id"].as_str().expect("id").to_owned())
        .collect();
    matched.reverse();
    assert_eq!(order, matched);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn unmatching_deletes_the_conversation_and_tells_the_gateways() {
    let app = spawn_app().await;
    let (ana, ben) = two(&app).await;
    app.swipe(&ana, &ben, "like").await;
    let back = app.swipe(&ben, &ana, "like").await;
    let id = back["resonance"]["id"].as_str().expect("id").to_owned();
    let redis = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(&redis_url()).expect("url"),
    )
    .build()
    .expect("client");
    redis.init().await.expect("redis");
    let stream = format!("{}chat:{id}:messages", app.prefix);
    let _: String = redis
        .xadd(&stream, false, None, "*", vec![("body", "hello")])
        .await
        .expect("xadd");
    let subscriber = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(&redis_url()).expect("url"),
    )
    .build_subscriber_client()
    .expect("sub");
    subscriber.init().await.expect("sub");
    let mut messages = subscriber.message_rx();
    subscriber
        .subscribe(format!("{}events:conversations", app.prefix))
        .await
        .expect("subscribe");

    let resp = app
        .delete_authed(&format!("/v1/resonances/{id}"), &ben.access)
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let exists: bool = redis.exists(&stream).await.expect("exists");
    assert!(!exists, "the chat history is deleted");
    let message = tokio::time::timeout(std::time::Duration::from_secs(5), messages.recv())
        .await
        .expect("announced")
        .expect("message");
    let announced: Value =
        serde_json::from_str(&message.value.as_string().expect("text")).expect("json");
    assert_eq!(announced["resonance_id"], id);
    assert_eq!(
        app.get_json("/v1/resonances", &ana.access).await["items"],
        json!([])
    );
    assert_problem(
        app.delete_authed(&format!("/v1/resonances/{id}"), &ana.access)
            .await,
        404,
        "not-found",
    )
    .await;
    // Old likes never revive it.
    let again = app
        .post_authed(
            "/v1/swipes",
            &ana.access,
            json!({"target_id": ben.id, "action": "like"}),
        )
        .await;
    let again: Value = again.json().await.expect("json");
    assert!(again["resonance"].is_null());
}

#[tokio::test]
async fn only_members_can_unmatch() {
    let app = spawn_app().await;
    let (ana, ben) = two(&app).await;
    let eve = app.person_at(48.85, 2.35).await;
    app.swipe(&ana, &ben, "like").await;
    let id = app.swipe(&ben, &ana, "like").await["resonance"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_problem(
        app.delete_authed(&format!("/v1/resonances/{id}"), &eve.access)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        app.get_json("/v1/resonances", &ana.access).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn likes_received_lists_unanswered_likers_including_incognito_ones() {
    let app = spawn_app().await;
    let me = app.person_at(48.85, 2.35).await;
    let open = app.person_at(48.86, 2.36).await;
    let shy = app.person_at(48.86, 2.36).await;
    let answered = app.person_at(48.86, 2.36).await;
    app.patch_authed("/v1/me/settings", &shy.access, json!({"incognito": true}))
        .await;
    for liker in [&answered, &open, &shy] {
        app.swipe(liker, &me, "like").await;
    }
    app.swipe(&me, &answered, "pass").await;

    let first = app.get_json("/v1/likes/received?limit=1", &me.access).await;
    let second = app
        .get_json(
            &format!(
                "/v1/likes/received?limit=1&cursor={}",
                first["next_cursor"].as_str().expect("cursor")
            ),
            &me.access,
        )
        .await;

    assert_eq!(
        first["items"][0]["profile"]["user_id"],
        shy.id.to_string(),
        "newest first"
    );
    assert!(first["items"][0]["liked_at"].is_string());
    assert_eq!(
        second["items"][0]["profile"]["user_id"],
        open.id.to_string()
    );
    assert!(second["next_cursor"].is_null());
}
