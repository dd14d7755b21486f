//! Browsers: HttpOnly cookies, no refresh token in the body, double-submit CSRF.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, unique_email, TestApp};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

async fn browser_register(app: &TestApp, client: &reqwest::Client) -> (Value, Vec<String>) {
    let resp = client
        .post(app.url("/v1/auth/register"))
        .header("origin", &app.address)
        .json(&json!({"email": unique_email(), "password": "slow-and-steady-2026"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cookies = set_cookies(&resp);
    (resp.json().await.expect("json"), cookies)
}

fn csrf_of(cookies: &[String]) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix("despacio_csrf="))
        .and_then(|rest| rest.split(';').next())
        .expect("csrf cookie")
        .to_owned()
}

#[tokio::test]
async fn browsers_get_httponly_cookies_and_no_refresh_token_in_the_body() {
    let app = spawn_app().await;
    let client = browser();

    let (body, cookies) = browser_register(&app, &client).await;

    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("despacio_refresh="))
        .expect("refresh cookie");
    assert!(refresh.contains("HttpOnly"));
    assert!(refresh.contains("SameSite=Strict"));
    assert!(refresh.contains("Path=/v1/auth"));
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("despacio_csrf="))
        .expect("csrf cookie");
    assert!(
        !csrf.contains("HttpOnly"),
        "the page must read the CSRF cookie"
    );
}

#[tokio::test]
async fn a_cookie_refresh_needs_the_csrf_header() {
    let app = spawn_app().await;
    let client = browser();
    let (_, cookies) = browser_register(&app, &client).await;

    let forged = client
        .post(app.url("/v1/auth/refresh"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_problem(forged, 403, "csrf-failed").await;

    let resp = client
        .post(app.url("/v1/auth/refresh"))
        .header("origin", &app.address)
        .header("x-csrf-token", csrf_of(&cookies))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn the_access_cookie_authenticates_reads_and_csrf_guards_writes() {
    let app = spawn_app().await;
    let client = browser();
    let (body, cookies) = browser_register(&app, &client).await;

    let me = client.get(app.url("/v1/me")).send().await.expect("request");
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["id"], body["user_id"]);

    let forged = client
        .patch(app.url("/v1/me/settings"))
        .json(&json!({"incognito": true}))
        .send()
        .await
        .expect("request");
    assert_problem(forged, 403, "csrf-failed").await;

    let resp = client
        .patch(app.url("/v1/me/settings"))
        .header("x-csrf-token", csrf_of(&cookies))
        .json(&json!({"incognito": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn browser_logout_clears_the_cookies() {
    let app = spawn_app().await;
    let client = browser();
    let (_, cookies) = browser_register(&app, &client).await;

    let resp = client
        .post(app.url("/v1/auth/logout"))
        .header("x-csrf-token", csrf_of(&cookies))
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(&resp);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("despacio_refresh=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_problem(
        client.get(app.url("/v1/me")).send().await.expect("request"),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn an_event_source_authenticates_with_the_cookies() {
    let app = spawn_app().await;
    let client = browser();
    browser_register(&app, &client).await;

    let resp = client
        .get(app.url("/v1/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
}
