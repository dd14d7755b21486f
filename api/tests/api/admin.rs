//! Moderation actions: `POST /v1/admin/users/{id}/actions` and the `moderation.notice` event.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, Sse, TestApp, TestUser};

pub(crate) async fn with_role(app: &TestApp, role: &str) -> TestUser {
    let person = app.register().await;
    app.sql(&format!(
        "UPDATE users SET role = '{role}' WHERE id = '{}'",
        person.id
    ))
    .await;
    person
}

/// Acts and expects 201; returns the audit entry.
pub(crate) async fn acted(
    app: &TestApp,
    actor: &TestUser,
    target: &TestUser,
    body: Value,
) -> Value {
    let resp = act(app, actor, target, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.expect("json")
}

/// The `data` of the next `moderation.notice` event.
async fn notice(events: &mut Sse) -> Value {
    events
        .next_of("moderation.notice")
        .await
        .data
        .expect("data")["data"]
        .clone()
}

/// Whether `key` exists in the test's Redis.
async fn redis_has(app: &TestApp, key: String) -> bool {
    use fred::prelude::KeysInterface;
    app.state.redis.exists(key).await.expect("exists")
}

async fn act(app: &TestApp, actor: &TestUser, target: &TestUser, body: Value) -> reqwest::Response {
    app.post_authed(
        &format!("/v1/admin/users/{}/actions", target.id),
        &actor.access,
        body,
    )
    .await
}

#[tokio::test]
async fn a_suspension_is_announced_ends_the_sessions_and_hides_the_person_until_reinstated() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let eve = app.person_at(48.85, 2.35).await;
    let viewer = app.person_at(48.86, 2.36).await;
    let mut events = Sse::open(&app.address, &eve.access, None).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();

    let entry = acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "suspend", "reason": "Insults reported twice.", "until": until}),
    )
    .await;
    assert_eq!(entry["action"], "suspend");
    assert_eq!(entry["actor_id"], moderator.id.to_string());
    assert_eq!(entry["target_id"], eve.id.to_string());
    assert!(entry["until"].is_string(), "{entry}");

    // Told, then the stream ends (the sessions are gone).
    let data = notice(&mut events).await;
    assert_eq!(data["action"], "suspend");
    assert_eq!(data["reason"], "Insults reported twice.");
    assert!(data["until"].is_string(), "{data}");
    events.ends().await;

    // Signed out everywhere, cannot sign in, invisible to others.
    assert_problem(
        app.get_authed("/v1/me", &eve.access).await,
        401,
        "session-revoked",
    )
    .await;
    let refused = assert_problem(
        app.login(&eve.email, &eve.password).await,
        403,
        "account-suspended",
    )
    .await;
    assert!(refused["until"].is_string(), "{refused}");
    assert_eq!(
        app.get_authed(&format!("/v1/profiles/{}", eve.id), &viewer.access)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let audit: Option<i64> = app
        .sql_value(&format!(
            "SELECT count(*) FROM moderation_actions WHERE target_id = '{}' AND action = 'suspend' AND actor_id = '{}'",
            eve.id, moderator.id
        ))
        .await;
    assert_eq!(audit, Some(1));

    // Reinstated: signs in again and is visible again.
    acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "reinstate", "reason": "Appeal accepted."}),
    )
    .await;
    assert_eq!(
        app.login(&eve.email, &eve.password).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_authed(&format!("/v1/profiles/{}", eve.id), &viewer.access)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_warning_is_a_notice_only_and_a_ban_is_for_good() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let eve = app.person_at(48.85, 2.35).await;
    let mut events = Sse::open(&app.address, &eve.access, None).await;

    acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "warn", "reason": "Be kind."}),
    )
    .await;
    let data = notice(&mut events).await;
    assert_eq!(data["action"], "warn");
    assert_eq!(data["reason"], "Be kind.");
    assert!(data["until"].is_null());
    // Still signed in, stream still open.
    assert_eq!(
        app.get_authed("/v1/me", &eve.access).await.status(),
        StatusCode::OK
    );

    acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "ban", "reason": "Scam."}),
    )
    .await;
    assert_eq!(notice(&mut events).await["action"], "ban");
    events.ends().await;
    assert_problem(
        app.login(&eve.email, &eve.password).await,
        403,
        "account-banned",
    )
    .await;
    assert_problem(
        app.get_authed("/v1/me", &eve.access).await,
        401,
        "session-revoked",
    )
    .await;
}

#[tokio::test]
async fn force_logout_ends_every_session_but_sign_in_works() {
    let app = spawn_app().await;
    let admin = with_role(&app, "admin").await;
    let eve = app.register().await;
    let second = app.login(&eve.email, &eve.password).await;
    let second: Value = second.json().await.expect("json");
    let second_access = second["access_token"].as_str().expect("token").to_owned();

    acted(
        &app,
        &admin,
        &eve,
        json!({"action": "force_logout", "reason": "Your account was used elsewhere."}),
    )
    .await;
    assert_problem(
        app.get_authed("/v1/me", &eve.access).await,
        401,
        "session-revoked",
    )
    .await;
    assert_problem(
        app.get_authed("/v1/me", &second_access).await,
        401,
        "session-revoked",
    )
    .await;
    assert_eq!(
        app.login(&eve.email, &eve.password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_moderators_act_and_only_admins_act_on_staff() {
    let app = spawn_app().await;
    let user = app.register().await;
    let moderator = with_role(&app, "moderator").await;
    let other_moderator = with_role(&app, "moderator").await;
    let admin = with_role(&app, "admin").await;
    let warn = json!({"action": "warn", "reason": "Be kind."});

    assert_problem(
        act(&app, &user, &moderator, warn.clone()).await,
        403,
        "insufficient-role",
    )
    .await;
    assert_problem(
        act(&app, &moderator, &other_moderator, warn.clone()).await,
        403,
        "insufficient-role",
    )
    .await;
    assert_problem(
        act(
            &app,
            &moderator,
            &admin,
            json!({"action": "ban", "reason": "x"}),
        )
        .await,
        403,
        "insufficient-role",
    )
    .await;
    assert_eq!(
        act(&app, &admin, &other_moderator, warn.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    // A demoted moderator's token is not enough: the stored role counts.
    app.sql(&format!(
        "UPDATE users SET role = 'user' WHERE id = '{}'",
        moderator.id
    ))
    .await;
    assert_problem(
        act(&app, &moderator, &user, warn.clone()).await,
        403,
        "insufficient-role",
    )
    .await;

    let problem = assert_problem(
        act(&app, &admin, &admin, warn.clone()).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["field"], "id");
    let resp = app
        .post_authed(
            &format!("/v1/admin/users/{}/actions", uuid::Uuid::new_v4()),
            &admin.access,
            warn,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;
    let count: Option<i64> = app
        .sql_value("SELECT count(*) FROM moderation_actions")
        .await;
    assert_eq!(count, Some(1), "only the admin's warning was recorded");
}

#[tokio::test]
async fn bad_action_bodies_name_the_field() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let eve = app.register().await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (json!({"action": "suspend", "reason": "x"}), "until"),
        (
            json!({"action": "suspend", "reason": "x", "until": past}),
            "until",
        ),
        (
            json!({"action": "warn", "reason": "x", "until": future}),
            "until",
        ),
        (json!({"action": "warn", "reason": "   "}), "reason"),
        (json!({"action": "warn", "reason": ""}), "reason"),
        (json!({"action": "smite", "reason": "x"}), "action"),
        (json!({"reason": "x"}), "action"),
    ] {
        let resp = act(&app, &moderator, &eve, body.clone()).await;
        let status = resp.status().as_u16();
        let problem: Value = resp.json().await.expect("json");
        assert!(
            status == 400 || status == 422,
            "{body} → {status} {problem}"
        );
        assert_eq!(problem["field"], field, "{body} → {problem}");
    }
    assert_eq!(
        app.get_authed("/v1/me", &eve.access).await.status(),
        StatusCode::OK
    );
    let count: Option<i64> = app
        .sql_value("SELECT count(*) FROM moderation_actions")
        .await;
    assert_eq!(count, Some(0));
}

#[tokio::test]
async fn a_banned_person_is_disconnected_from_the_chat_gateway() {
    use crate::chat_client::{Auth, ChatClient};
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let moderator = with_role(&app, "moderator").await;
    let eve = app.person(json!({})).await;
    let mut chat = ChatClient::open(&gateway.url, Auth::Header(&eve.access)).await;
    assert_eq!(chat.next().await["type"], "ready");

    acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "ban", "reason": "Scam."}),
    )
    .await;
    assert_eq!(chat.closed().await, (4003, "session revoked".to_owned()));
    let mut again = ChatClient::open(&gateway.url, Auth::Header(&eve.access)).await;
    assert_eq!(again.closed().await.0, 4003);
}

#[tokio::test]
async fn a_ban_ends_the_persons_resonances_and_their_matches_see_them_go() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let eve = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    let cy = app.person_at(48.86, 2.36).await;
    app.swipe(&eve, &ben, "like").await;
    app.swipe(&ben, &eve, "like").await;
    app.swipe(&cy, &ben, "like").await;
    app.swipe(&ben, &cy, "like").await;
    let listed = app.get_json("/v1/resonances", &ben.access).await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 2);
    let mut ben_events = Sse::open(&app.address, &ben.access, None).await;
    let eves = app.get_json("/v1/resonances", &eve.access).await;
    let eve_ben: uuid::Uuid = eves["items"][0]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let meta_before = redis_has(&app, app.state.keys.chat_meta(&eve_ben)).await;
    assert!(meta_before, "the conversation is open for the gateways");

    acted(
        &app,
        &moderator,
        &eve,
        json!({"action": "ban", "reason": "Scam attempts."}),
    )
    .await;

    let removed = ben_events.next_of("resonance.removed").await;
    let resonance_id = removed.data.expect("data")["data"]["resonance_id"].clone();
    assert_eq!(resonance_id, eve_ben.to_string());
    let listed = app.get_json("/v1/resonances", &ben.access).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1,
        "only the résonance with Cy is left: {listed}"
    );
    assert_ne!(items[0]["id"], resonance_id);
    let reason: Option<String> = app
        .sql_value(&format!(
            "SELECT ended_reason FROM resonances WHERE id = '{}'",
            resonance_id.as_str().expect("id")
        ))
        .await;
    assert_eq!(reason.as_deref(), Some("moderation"));
    // The conversation is gone for the chat gateways (metadata deleted, tombstone left; the
    // résonance's creation had written the metadata).
    let id = eve_ben;
    let meta_left = redis_has(&app, app.state.keys.chat_meta(&id)).await;
    assert!(!meta_left);
    let tombstone = redis_has(&app, app.state.keys.chat_closed(&id)).await;
    assert!(tombstone);
}
