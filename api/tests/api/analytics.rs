//! Anonymous analytics: the worker's roll-up and `GET /v1/admin/analytics/{metric}`.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    admin::with_role,
    helpers::{assert_problem, spawn_app},
};

#[tokio::test]
async fn admins_see_counts_per_bucket_zero_filled_that_erasure_does_not_lower() {
    let app = spawn_app().await;
    let admin = with_role(&app, "admin").await;
    let moderator = with_role(&app, "moderator").await;
    let (ana, max, zoe) = (
        app.person(json!({})).await,
        app.person(json!({})).await,
        app.person(json!({})).await,
    );
    app.resonance(&ana, &max).await;
    app.swipe(&zoe, &ana, "pass").await;
    app.swipe(&zoe, &max, "like").await;
    let resp = app
        .post_authed(
            "/v1/reports",
            &ana.access,
            json!({"user_id": zoe.id, "reason": "spam"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    api::analytics::roll_up(&app.db).await.expect("roll-up");

    let hours = app
        .get_json("/v1/admin/analytics/swipes?bucket=hour", &admin.access)
        .await;
    assert_eq!(hours["metric"], "swipes");
    assert_eq!(hours["bucket"], "hour");
    let points = hours["points"].as_array().expect("points");
    // 48 hours back by default, every hour present, the last one holding today's swipes.
    assert!((49..=50).contains(&points.len()), "{}", points.len());
    assert!(points[..points.len() - 1].iter().all(|p| p["value"] == 0));
    let now = points.last().expect("last");
    assert_eq!(now["value"], 4);
    assert_eq!(now["by"], json!({"like": 3, "pass": 1}));
    let days = app
        .get_json("/v1/admin/analytics/signups", &admin.access)
        .await;
    assert_eq!(days["points"].as_array().expect("points").len(), 8);
    assert_eq!(days["points"][7]["value"], 5, "three people, two staff");
    let matches = app
        .get_json("/v1/admin/analytics/resonances", &admin.access)
        .await;
    assert_eq!(matches["points"][7]["value"], 1);
    let reports = app
        .get_json("/v1/admin/analytics/reports", &admin.access)
        .await;
    assert_eq!(reports["points"][7]["by"], json!({"spam": 1}));

    // Zoe erases her account: her swipes go, the counts stay.
    let resp = app.delete_authed("/v1/me", &zoe.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    api::analytics::roll_up(&app.db).await.expect("roll-up");
    let again = app
        .get_json("/v1/admin/analytics/swipes?bucket=hour", &admin.access)
        .await;
    assert_eq!(
        again["points"].as_array().expect("points").last(),
        Some(now)
    );
    // No person is named anywhere in the aggregates.
    for person in [&ana, &max, &zoe] {
        assert_eq!(
            app.sql_value::<i64>(&format!(
                "SELECT count(*) FROM analytics_aggregates t WHERE t::text LIKE '%{}%'",
                person.id
            ))
            .await,
            Some(0)
        );
    }

    // Admins only; bad ranges are named.
    let resp = app
        .get_authed("/v1/admin/analytics/swipes", &moderator.access)
        .await;
    assert_problem(resp, 403, "insufficient-role").await;
    let resp = app
        .get_authed(
            "/v1/admin/analytics/active_people?bucket=hour",
            &admin.access,
        )
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "bucket");
    let resp = app
        .get_authed(
            "/v1/admin/analytics/swipes?from=2026-12-07T10:00:00Z&to=2026-12-01T00:00:00Z",
            &admin.access,
        )
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "from");
    let resp = app
        .get_authed(
            "/v1/admin/analytics/swipes?bucket=hour&from=2020-01-01T00:00:00Z",
            &admin.access,
        )
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "from");
    let resp = app
        .get_authed("/v1/admin/analytics/heartbeats", &admin.access)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let active: Value = app
        .get_json("/v1/admin/analytics/active_people", &admin.access)
        .await;
    assert!(active["points"][7]["value"].as_i64().expect("value") >= 2);
}
