//! Refresh rotation, reuse detection, logout and the sessions list.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_refresh_rotates_both_tokens() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app
        .post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    let new_refresh = body["refresh_token"].as_str().expect("refresh");
    assert_ne!(new_refresh, user.refresh);
    assert_eq!(body["session_id"], user.session_id.to_string());
    let access = body["access_token"].as_str().expect("access");
    assert_eq!(
        app.get_authed("/v1/me", access).await.status(),
        StatusCode::OK
    );
    // The new refresh token works once more.
    let again = app
        .post("/v1/auth/refresh", json!({"refresh_token": new_refresh}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let user = app.register().await;
    let first: Value = app
        .post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await
        .json()
        .await
        .expect("json");
    let second: Value = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await
        .json()
        .await
        .expect("json");

    // The original token, spent long ago, shows up again: it leaked.
    let resp = app
        .post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await;
    assert_problem(resp, 401, "refresh-token-reused").await;

    // Every descendant is dead, and so are the access tokens of the session.
    let resp = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 401, "invalid-refresh-token").await;
    let resp = app
        .get_authed("/v1/me", second["access_token"].as_str().expect("t"))
        .await;
    assert_problem(resp, 401, "session-revoked").await;
    let reason: String = app
        .sql_value(&format!(
            "SELECT revoked_reason FROM sessions WHERE id = '{}'",
            user.session_id
        ))
        .await
        .expect("row");
    assert_eq!(reason, "refresh_token_reused");
}

#[tokio::test]
async fn reuse_in_one_session_leaves_other_sessions_alone() {
    let app = spawn_app().await;
    let user = app.register().await;
    let laptop: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .expect("json");
    app.post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await;
    app.post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await;

    let resp = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": laptop["refresh_token"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_or_missing_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let resp = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": "this-token-was-never-issued-by-us-at-all"}),
        )
        .await;
    assert_problem(resp, 401, "invalid-refresh-token").await;
    let body = assert_problem(
        app.post("/v1/auth/refresh", json!({})).await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "refresh_token");
}

#[tokio::test]
async fn an_expired_session_cannot_be_refreshed() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = '{}'",
        user.session_id
    ))
    .await;
    let resp = app
        .post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await;
    assert_problem(resp, 401, "invalid-refresh-token").await;
}

#[tokio::test]
async fn a_banned_account_cannot_refresh() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        user.id
    ))
    .await;
    assert_problem(
        app.post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
            .await,
        403,
        "account-banned",
    )
    .await;
}

#[tokio::test]
async fn refreshes_are_rate_limited_per_ip() {
    let app = spawn_app_with(&[("RATE_LIMITS", "refresh_per_ip=1/60")]).await;
    let user = app.register().await;
    let body: Value = app
        .post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
        .await
        .json()
        .await
        .expect("json");
    let resp = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": body["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 429, "rate-limited").await;
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app
        .post_authed("/v1/auth/logout", &user.access, json!({}))
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/v1/me", &user.access).await,
        401,
        "session-revoked",
    )
    .await;
    assert_problem(
        app.post("/v1/auth/refresh", json!({"refresh_token": user.refresh}))
            .await,
        401,
        "invalid-refresh-token",
    )
    .await;
    assert_problem(
        app.client
            .post(app.url("/v1/auth/logout"))
            .send()
            .await
            .expect("request"),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn my_sessions_list_my_devices_and_one_can_be_revoked() {
    let app = spawn_app().await;
    let user = app.register().await;
    let phone: Value = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", "DespacioApp/1.0 (iPhone)")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    let list: Value = app
        .get_authed("/v1/auth/sessions", &user.access)
        .await
        .json()
        .await
        .expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(list["next_cursor"].is_null());
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], user.session_id.to_string());
    let phone_row = items
        .iter()
        .find(|s| s["id"] == phone["session_id"])
        .expect("phone session");
    assert_eq!(phone_row["user_agent"], "DespacioApp/1.0 (iPhone)");
    assert_eq!(phone_row["auth_method"], "password");
    assert!(phone_row["created_at"].is_string() && phone_row["last_used_at"].is_string());

    let resp = app
        .delete_authed(
            &format!(
                "/v1/auth/sessions/{}",
                phone["session_id"].as_str().expect("id")
            ),
            &user.access,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/v1/me", phone["access_token"].as_str().expect("t"))
            .await,
        401,
        "session-revoked",
    )
    .await;
    assert_eq!(
        app.get_authed("/v1/me", &user.access).await.status(),
        StatusCode::OK
    );
    let list: Value = app
        .get_authed("/v1/auth/sessions", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn nobody_can_revoke_someone_elses_session() {
    let app = spawn_app().await;
    let alice = app.register().await;
    let mallory = app.register().await;

    let resp = app
        .delete_authed(
            &format!("/v1/auth/sessions/{}", alice.session_id),
            &mallory.access,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;
    assert_eq!(
        app.get_authed("/v1/me", &alice.access).await.status(),
        StatusCode::OK
    );
    let body = assert_problem(
        app.delete_authed("/v1/auth/sessions/not-a-uuid", &mallory.access)
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "id");
}

#[tokio::test]
async fn signing_out_everywhere_revokes_every_session() {
    let app = spawn_app().await;
    let user = app.register().await;
    let other: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .expect("json");

    assert_eq!(
        app.delete_authed("/v1/auth/sessions", &user.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    assert_problem(
        app.get_authed("/v1/me", &user.access).await,
        401,
        "session-revoked",
    )
    .await;
    assert_problem(
        app.get_authed("/v1/me", other["access_token"].as_str().expect("t"))
            .await,
        401,
        "session-revoked",
    )
    .await;
}
