//! Blocks.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn blocking_ends_the_resonance_and_hides_both_people_everywhere() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    app.swipe(&ana, &ben, "like").await;
    app.swipe(&ben, &ana, "like").await;

    let resp = app
        .post_authed("/v1/blocks", &ana.access, json!({"user_id": ben.id}))
        .await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    for (viewer, other) in [(&ana, &ben), (&ben, &ana)] {
        assert_eq!(
            app.get_json("/v1/resonances", &viewer.access).await["items"],
            json!([])
        );
        assert_problem(
            app.get_authed(&format!("/v1/profiles/{}", other.id), &viewer.access)
                .await,
            404,
            "not-found",
        )
        .await;
        let page = app.get_json("/v1/discovery", &viewer.access).await;
        assert!(!page.to_string().contains(&other.id.to_string()));
        assert_eq!(
            app.get_json("/v1/likes/received", &viewer.access).await["items"],
            json!([])
        );
    }
    let reason: String = app
        .sql_value("SELECT ended_reason FROM resonances")
        .await
        .expect("row");
    assert_eq!(reason, "block");
}

#[tokio::test]
async fn blocks_are_listed_idempotent_and_can_be_lifted() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let ben = app.person_at(48.86, 2.36).await;
    app.post_authed("/v1/blocks", &ana.access, json!({"user_id": ben.id}))
        .await;

    let again = app
        .post_authed("/v1/blocks", &ana.access, json!({"user_id": ben.id}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let list = app.get_json("/v1/blocks", &ana.access).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["user_id"], ben.id.to_string());

    assert_eq!(
        app.delete_authed(&format!("/v1/blocks/{}", ben.id), &ana.access)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.delete_authed(&format!("/v1/blocks/{}", ben.id), &ana.access)
            .await,
        404,
        "not-found",
    )
    .await;
    let profile: Value = app
        .get_json(&format!("/v1/profiles/{}", ben.id), &ana.access)
        .await;
    assert_eq!(profile["user_id"], ben.id.to_string());
}

#[tokio::test]
async fn blocking_myself_or_nobody_is_refused() {
    let app = spawn_app().await;
    let ana = app.person_at(48.85, 2.35).await;
    let body = assert_problem(
        app.post_authed("/v1/blocks", &ana.access, json!({"user_id": ana.id}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "user_id");
    assert_problem(
        app.post_authed(
            "/v1/blocks",
            &ana.access,
            json!({"user_id": uuid::Uuid::new_v4()}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    let body = assert_problem(
        app.post_authed("/v1/blocks", &ana.access, json!({"user_id": "nope"}))
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "user_id");
}
