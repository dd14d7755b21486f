//! Sign-in links.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, unique_email};

#[tokio::test]
async fn the_answer_is_the_same_for_known_and_unknown_addresses() {
    let app = spawn_app().await;
    let user = app.register().await;

    let known = app
        .post("/v1/auth/magic-link", json!({"email": user.email}))
        .await;
    let unknown = app
        .post("/v1/auth/magic-link", json!({"email": unique_email()}))
        .await;

    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let known: Value = known.json().await.expect("json");
    let unknown: Value = unknown.json().await.expect("json");
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn a_link_signs_an_existing_account_in_once() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.post("/v1/auth/magic-link", json!({"email": user.email}))
        .await;
    let mail = app.mails_to(&user.email).pop().expect("mail");
    assert!(mail.contains("Subject: Your DESPACIO sign-in link"));
    let token = app.magic_token(&user.email);
    assert!(token.len() >= 43, "256-bit token");

    let resp = app
        .post("/v1/auth/magic-link/verify", json!({"token": token}))
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["user_id"], user.id.to_string());
    assert_eq!(body["account_created"], false);
    let me: Value = app
        .get_authed("/v1/me", body["access_token"].as_str().expect("t"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email_verified"], true);
    // Single use.
    let again = app
        .post("/v1/auth/magic-link/verify", json!({"token": token}))
        .await;
    assert_problem(again, 401, "invalid-magic-link").await;
}

#[tokio::test]
async fn a_link_for_a_new_address_creates_the_account() {
    let app = spawn_app().await;
    let email = unique_email();
    app.post("/v1/auth/magic-link", json!({"email": email}))
        .await;

    let resp = app
        .post(
            "/v1/auth/magic-link/verify",
            json!({"token": app.magic_token(&email)}),
        )
        .await;

    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["account_created"], true);
    let me: Value = app
        .get_authed("/v1/me", body["access_token"].as_str().expect("t"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], email);
    // A second link for the same address signs into the same account.
    app.post("/v1/auth/magic-link", json!({"email": email}))
        .await;
    let again: Value = app
        .post(
            "/v1/auth/magic-link/verify",
            json!({"token": app.magic_token(&email)}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["user_id"], body["user_id"]);
    assert_eq!(again["account_created"], false);
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_expire() {
    let app = spawn_app().await;
    let email = unique_email();
    app.post("/v1/auth/magic-link", json!({"email": email}))
        .await;
    let token = app.magic_token(&email);

    let stored: Vec<u8> = app
        .sql_value("SELECT token_hash FROM magic_links")
        .await
        .expect("row");
    assert_ne!(stored, token.as_bytes());
    let lifetime: f64 = app
        .sql_value("SELECT extract(epoch FROM expires_at - created_at)::float8 FROM magic_links")
        .await
        .expect("row");
    assert!(lifetime <= 900.0);

    app.sql("UPDATE magic_links SET expires_at = now() - interval '1 second'")
        .await;
    assert_problem(
        app.post("/v1/auth/magic-link/verify", json!({"token": token}))
            .await,
        401,
        "invalid-magic-link",
    )
    .await;
    assert_problem(
        app.post(
            "/v1/auth/magic-link/verify",
            json!({"token": "x".repeat(43)}),
        )
        .await,
        401,
        "invalid-magic-link",
    )
    .await;
}

#[tokio::test]
async fn a_banned_account_cannot_use_a_link() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        user.id
    ))
    .await;
    app.post("/v1/auth/magic-link", json!({"email": user.email}))
        .await;
    let resp = app
        .post(
            "/v1/auth/magic-link/verify",
            json!({"token": app.magic_token(&user.email)}),
        )
        .await;
    assert_problem(resp, 403, "account-banned").await;
}

#[tokio::test]
async fn requests_are_limited_per_address_and_per_ip() {
    let app = spawn_app_with(&[(
        "RATE_LIMITS",
        "magic_link_per_email=2/900,magic_link_per_ip=4/3600",
    )])
    .await;
    let email = unique_email();
    for _ in 0..2 {
        assert_eq!(
            app.post("/v1/auth/magic-link", json!({"email": email}))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    assert_problem(
        app.post("/v1/auth/magic-link", json!({"email": email}))
            .await,
        429,
        "rate-limited",
    )
    .await;
    assert_eq!(app.mails_to(&email).len(), 2);

    assert_eq!(
        app.post("/v1/auth/magic-link", json!({"email": unique_email()}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_problem(
        app.post("/v1/auth/magic-link", json!({"email": unique_email()}))
            .await,
        429,
        "rate-limited",
    )
    .await;
}

#[tokio::test]
async fn bad_addresses_are_422() {
    let app = spawn_app().await;
    let body = assert_problem(
        app.post("/v1/auth/magic-link", json!({"email": "nope"}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "email");
    let body = assert_problem(
        app.post("/v1/auth/magic-link/verify", json!({"token": "short"}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "token");
}
