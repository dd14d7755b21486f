//! Probes, metrics, request ids, unknown routes, Swagger UI, a database that drops connections.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, header, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health: Value = app.get("/healthz").await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ready: Value = resp.json().await.expect("json");
    assert_eq!(ready["postgres"], "ok");
    assert_eq!(ready["redis"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.get_authed(
        &format!("/v1/profiles/{}", uuid::Uuid::new_v4()),
        &user.access,
    )
    .await;
    app.get_authed("/v1/me", &user.access).await;

    let text = app.get("/metrics").await.text().await.expect("text");

    assert!(
        text.contains(
            r#"despacio_http_requests_total{method="GET",route="/v1/me",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/profiles/{user_id}",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains("despacio_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // The scrape itself is the one request in flight.
    assert!(
        text.contains("\ndespacio_http_requests_in_flight 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("request");
    assert_eq!(
        header(resp.headers(), "x-request-id").as_deref(),
        Some("abc-123")
    );
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("request");
    let made = header(resp.headers(), "x-request-id").expect("made");
    assert!(uuid::Uuid::parse_str(&made).is_ok());
    let resp = app.get("/v1/nope").await;
    assert!(header(resp.headers(), "x-request-id").is_some());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/nothing-here").await, 404, "not-found").await;
    assert_problem(
        app.client
            .delete(app.url("/v1/auth/login"))
            .send()
            .await
            .expect("request"),
        405,
        "method-not-allowed",
    )
    .await;
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_and_points_at_our_spec() {
    let app = spawn_app().await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        header(resp.headers(), "location").as_deref(),
        Some("/docs/")
    );

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("swagger-ui"));
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .expect("js");
    assert!(init.contains("/openapi.json"), "{init}");
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), StatusCode::OK);

    let spec: Value = app.get("/openapi.json").await.json().await.expect("json");
    assert_eq!(
        spec["components"]["securitySchemes"]["BearerAuth"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn connections_the_database_dropped_answer_503_once_then_requests_succeed() {
    let app = spawn_app().await;
    let user = app.person(json!({})).await;
    // Several pooled connections, then PostgreSQL drops every one but the asking one (as a
    // restart or failover would).
    let warm = (0..6).map(|_| app.get_authed("/v1/me", &user.access));
    for resp in futures_util::future::join_all(warm).await {
        assert_eq!(resp.status(), StatusCode::OK);
    }
    app.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;

    let mut statuses = Vec::new();
    for _ in 0..30 {
        let resp = app.get_authed("/v1/me", &user.access).await;
        let status = resp.status().as_u16();
        if status == 503 {
            assert_problem(resp, 503, "service-unavailable").await;
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "never a 500: {statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "a dropped connection was used: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
}
