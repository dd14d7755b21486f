//! `Idempotency-Key` on POSTs.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, header, spawn_app};

#[tokio::test]
async fn a_retried_post_gets_the_first_answer_without_acting_twice() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    let send = || {
        app.client
            .post(app.url("/v1/swipes"))
            .bearer_auth(&ana.access)
            .header("idempotency-key", "swipe-ben-1")
            .json(&json!({"target_id": ben.id, "action": "like"}))
            .send()
    };

    let first = send().await.expect("request");
    let first_status = first.status();
    let first_body: Value = first.json().await.expect("json");
    let retry = send().await.expect("request");

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(
        retry.status(),
        StatusCode::CREATED,
        "the same answer, not 200"
    );
    assert_eq!(
        header(retry.headers(), "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(retry.json::<Value>().await.expect("json"), first_body);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    let post = |action: &'static str| {
        app.client
            .post(app.url("/v1/swipes"))
            .bearer_auth(&ana.access)
            .header("idempotency-key", "k-1")
            .json(&json!({"target_id": ben.id, "action": action}))
            .send()
    };
    assert!(post("like").await.expect("request").status().is_success());
    let body = assert_problem(
        post("pass").await.expect("request"),
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "Idempotency-Key");
    // Another person's identical key is theirs alone.
    let resp = app
        .client
        .post(app.url("/v1/swipes"))
        .bearer_auth(&ben.access)
        .header("idempotency-key", "k-1")
        .json(&json!({"target_id": ana.id, "action": "like"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        header(resp.headers(), "idempotent-replayed").as_deref(),
        Some("false")
    );
}
