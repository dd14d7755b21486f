//! Registration and password login.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, header, spawn_app, spawn_app_with, unique_email};

#[tokio::test]
async fn registering_returns_tokens_and_the_account_is_mine() {
    let app = spawn_app().await;
    let email = unique_email();

    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": email, "password": "slow-and-steady-2026", "display_name": "Ana"}),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().expect("refresh").len() >= 43);
    let me: Value = app
        .get_authed("/v1/me", body["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], body["user_id"]);
    assert_eq!(me["email"], email);
    assert_eq!(me["role"], "user");
    assert_eq!(me["profile"]["display_name"], "Ana");
    assert_eq!(me["preferences"]["age_min"], 18);
    assert_eq!(me["settings"]["incognito"], false);
}

#[tokio::test]
async fn an_email_can_register_only_once_whatever_its_case() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": user.email.to_uppercase(), "password": "another-password"}),
        )
        .await;

    assert_problem(resp, 409, "email-taken").await;
}

#[tokio::test]
async fn registration_names_each_invalid_field() {
    let app = spawn_app().await;

    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": "not-an-email", "password": "seven77"}),
        )
        .await;

    let body = assert_problem(resp, 422, "validation-failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(fields, ["email", "password"]);
    let too_long = "x".repeat(129);
    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": unique_email(), "password": too_long}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(body["field"], "password");
}

#[tokio::test]
async fn passwords_have_no_composition_rules_and_count_characters() {
    let app = spawn_app().await;
    // Eight characters, multi-byte, no digits or symbols: acceptable (NIST SP 800-63B).
    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": unique_email(), "password": "ééééééée"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_fields_and_malformed_json_are_400_problems() {
    let app = spawn_app().await;

    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": unique_email(), "password": "slow-and-steady", "nickname": "x"}),
        )
        .await;
    let body = assert_problem(resp, 400, "bad-request").await;
    assert_eq!(body["field"], "nickname");

    let resp = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("request");
    assert_problem(resp, 400, "bad-request").await;

    let resp = app
        .post("/v1/auth/login", json!({"email": unique_email()}))
        .await;
    let body = assert_problem(resp, 400, "bad-request").await;
    assert_eq!(body["field"], "password");

    let resp = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .expect("request");
    assert_problem(resp, 415, "unsupported-media-type").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let huge = json!({"email": unique_email(), "password": "x".repeat(100 * 1024)});

    let resp = app.post("/v1/auth/register", huge.clone()).await;
    assert_problem(resp, 413, "payload-too-large").await;

    // Streamed without a Content-Length: still refused.
    let bytes = serde_json::to_vec(&huge).expect("json");
    let stream = futures_util::stream::iter(
        bytes
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = app
        .client
        .post(app.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("request");
    assert_problem(resp, 413, "payload-too-large").await;
}

#[tokio::test]
async fn registrations_are_rate_limited_per_ip_with_retry_after() {
    let app = spawn_app_with(&[("RATE_LIMITS", "register_per_ip=2/60")]).await;
    app.register().await;
    app.register().await;

    let resp = app
        .post(
            "/v1/auth/register",
            json!({"email": unique_email(), "password": "slow-and-steady"}),
        )
        .await;

    let headers = resp.headers().clone();
    let body = assert_problem(resp, 429, "rate-limited").await;
    let retry: u64 = header(&headers, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    assert_eq!(header(&headers, "ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(
        header(&headers, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(body["retry_after"], retry);
}

#[tokio::test]
async fn login_with_the_right_password_opens_a_new_session() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app.login(&user.email.to_uppercase(), &user.password).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["user_id"], user.id.to_string());
    assert_ne!(body["session_id"], user.session_id.to_string());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let user = app.register().await;

    let wrong_password = assert_problem(
        app.login(&user.email, "not-the-password").await,
        401,
        "invalid-credentials",
    )
    .await;
    let unknown_email = assert_problem(
        app.login(&unique_email(), "not-the-password").await,
        401,
        "invalid-credentials",
    )
    .await;

    assert_eq!(wrong_password, unknown_email);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let app = spawn_app_with(&[("RATE_LIMITS", "login_per_account=3/600")]).await;
    let user = app.register().await;
    for _ in 0..3 {
        assert_problem(
            app.login(&user.email, "wrong-password").await,
            401,
            "invalid-credentials",
        )
        .await;
    }

    let resp = app.login(&user.email, &user.password).await;

    let headers = resp.headers().clone();
    assert_problem(resp, 429, "rate-limited").await;
    assert!(header(&headers, "retry-after").is_some());
    // Another account from the same IP is not affected.
    let other = app.register().await;
    assert_eq!(
        app.login(&other.email, &other.password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = spawn_app_with(&[("RATE_LIMITS", "login_per_account=3/600")]).await;
    let user = app.register().await;
    for _ in 0..2 {
        app.login(&user.email, "wrong-password").await;
    }
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        app.login(&user.email, "wrong-password").await;
    }
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_ip() {
    let app = spawn_app_with(&[("RATE_LIMITS", "login_per_ip=2/60")]).await;
    let user = app.register().await;
    app.login(&user.email, &user.password).await;
    app.login(&user.email, &user.password).await;

    assert_problem(
        app.login(&user.email, &user.password).await,
        429,
        "rate-limited",
    )
    .await;
}

#[tokio::test]
async fn suspended_and_banned_accounts_cannot_log_in() {
    let app = spawn_app().await;
    let suspended = app.register().await;
    let banned = app.register().await;
    app.sql(&format!("UPDATE users SET status = 'suspended', suspended_until = now() + interval '2 days' WHERE id = '{}'", suspended.id)).await;
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        banned.id
    ))
    .await;

    let body = assert_problem(
        app.login(&suspended.email, &suspended.password).await,
        403,
        "account-suspended",
    )
    .await;
    assert!(body["until"].is_string());
    assert_problem(
        app.login(&banned.email, &banned.password).await,
        403,
        "account-banned",
    )
    .await;
}

#[tokio::test]
async fn a_suspension_that_has_ended_no_longer_blocks_login() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(&format!("UPDATE users SET status = 'suspended', suspended_until = now() - interval '1 minute' WHERE id = '{}'", user.id)).await;

    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn emails_and_bios_are_not_stored_in_clear() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.patch_authed(
        "/v1/me/profile",
        &user.access,
        json!({"bio": "I love slow mornings and jazz"}),
    )
    .await;

    let raw: Vec<u8> = app
        .sql_value(&format!(
            "SELECT email_ciphertext FROM users WHERE id = '{}'",
            user.id
        ))
        .await
        .expect("row");
    let raw_hash: Vec<u8> = app
        .sql_value(&format!(
            "SELECT email_hash FROM users WHERE id = '{}'",
            user.id
        ))
        .await
        .expect("row");
    let bio: Vec<u8> = app
        .sql_value(&format!(
            "SELECT bio_ciphertext FROM profiles WHERE user_id = '{}'",
            user.id
        ))
        .await
        .expect("row");
    let whole_row: String = app.sql_value(&format!("SELECT u::text || p::text FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id = '{}'", user.id)).await.expect("row");

    let local_part = user.email.split('@').next().expect("local part");
    assert!(!String::from_utf8_lossy(&raw).contains(local_part));
    assert!(!String::from_utf8_lossy(&raw_hash).contains(local_part));
    assert!(!String::from_utf8_lossy(&bio).contains("jazz"));
    assert!(
        !whole_row.contains(local_part) && !whole_row.contains("jazz"),
        "{whole_row}"
    );
    // The key id prefix says which key encrypted it.
    assert_eq!(&raw[..2], &[0, 1]);
}

#[tokio::test]
async fn changing_the_password_needs_a_recent_login_and_signs_out_other_devices() {
    let app = spawn_app_with(&[("REAUTH_WINDOW_S", "300")]).await;
    let user = app.register().await;
    let other_device: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .expect("json");

    let resp = app
        .put_authed(
            "/v1/me/password",
            &user.access,
            json!({"new_password": "a-brand-new-pace"}),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.login(&user.email, &user.password).await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(
        app.login(&user.email, "a-brand-new-pace").await.status(),
        StatusCode::OK
    );
    let other = app
        .get_authed(
            "/v1/me",
            other_device["access_token"].as_str().expect("token"),
        )
        .await;
    assert_problem(other, 401, "session-revoked").await;
    assert_eq!(
        app.get_authed("/v1/me", &user.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_old_login_must_reauthenticate_before_a_sensitive_change() {
    let app = spawn_app().await;
    let user = app.register().await;
    let stale = crate::tokens::forge(&app, user.id, user.session_id, |c| c.auth_time -= 3600);

    let resp = app
        .put_authed(
            "/v1/me/password",
            &stale,
            json!({"new_password": "a-brand-new-pace"}),
        )
        .await;
    assert_problem(resp, 403, "reauthentication-required").await;

    let wrong = app
        .post_authed(
            "/v1/auth/reauthenticate",
            &stale,
            json!({"password": "nope-nope"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid-credentials").await;
    let resp = app
        .post_authed(
            "/v1/auth/reauthenticate",
            &stale,
            json!({"password": user.password}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh: Value = resp.json().await.expect("json");
    assert!(fresh.get("refresh_token").is_none());
    let fresh = fresh["access_token"].as_str().expect("token");
    let resp = app
        .put_authed(
            "/v1/me/password",
            fresh,
            json!({"new_password": "a-brand-new-pace"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}
