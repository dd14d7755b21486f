//! Anonymous analytics: the worker's roll-up and `GET /v1/admin/analytics/{metric}`.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    admin::with_role,
    helpers::{assert_problem, spawn_app},
};

/// (total, likes, passes) over a series' points.
fn totals(series: &Value) -> (i64, i64, i64) {
    let points = series["points"].as_array().expect("points");
    let sum = |f: &dyn Fn(&Value) -> i64| points.iter().map(f).sum::<i64>();
    (
        sum(&|p| p["value"].as_i64().unwrap_or(0)),
        sum(&|p| p["by"]["like"].as_i64().unwrap_or(0)),
        sum(&|p| p["by"]["pass"].as_i64().unwrap_or(0)),
    )
}

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
    // 48 hours back by default, every hour present (zero-filled).
    assert_eq!(hours["points"].as_array().expect("points").len(), 49);
    assert_eq!(totals(&hours), (4, 3, 1));
    let days = app
        .get_json("/v1/admin/analytics/swipes", &admin.access)
        .await;
    assert_eq!(days["points"].as_array().expect("points").len(), 8);
    assert_eq!(totals(&days), (4, 3, 1), "days are the sums of their hours");
    let signups = app
        .get_json("/v1/admin/analytics/signups", &admin.access)
        .await;
    assert_eq!(totals(&signups).0, 5, "three people, two staff");
    let matches = app
        .get_json("/v1/admin/analytics/resonances", &admin.access)
        .await;
    assert_eq!(totals(&matches).0, 1);
    let reports = app
        .get_json("/v1/admin/analytics/reports", &admin.access)
        .await;
    let spam: i64 = reports["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["by"]["spam"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(spam, 1);

    // Zoe erases her account: her swipes go, the counts stay.
    let resp = app.delete_authed("/v1/me", &zoe.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    api::analytics::roll_up(&app.db).await.expect("roll-up");
    let again = app
        .get_json("/v1/admin/analytics/swipes?bucket=hour", &admin.access)
        .await;
    assert_eq!(totals(&again), (4, 3, 1));
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
    for (query, field) in [
        ("active_people?bucket=hour", "bucket"),
        (
            "swipes?from=2026-12-07T10:00:00Z&to=2026-12-01T00:00:00Z",
            "from",
        ),
        ("swipes?bucket=hour&from=2020-01-01T00:00:00Z", "from"),
        (
            "swipes?from=1500-01-01T00:00:00Z&to=1500-01-02T00:00:00Z",
            "from",
        ),
    ] {
        let resp = app
            .get_authed(&format!("/v1/admin/analytics/{query}"), &admin.access)
            .await;
        let problem = assert_problem(resp, 422, "validation-failed").await;
        assert_eq!(problem["field"], field, "{query}");
    }
    let resp = app
        .get_authed("/v1/admin/analytics/heartbeats", &admin.access)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signing_in_makes_a_person_active_today() {
    let app = spawn_app().await;
    let admin = with_role(&app, "admin").await;
    let ana = app.person(json!({})).await;
    app.sql(&format!(
        "UPDATE users SET last_active_at = now() - interval '3 days' WHERE id = '{}'",
        ana.id
    ))
    .await;
    let active_today = "SELECT count(*) FROM users
                        WHERE last_active_at >= date_trunc('day', now(), 'UTC')";
    let before = app.sql_value::<i64>(active_today).await.unwrap_or(0);
    let resp = app.login(&ana.email, &ana.password).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after = app.sql_value::<i64>(active_today).await.unwrap_or(0);
    assert_eq!(after, before + 1);
    api::analytics::roll_up(&app.db).await.expect("roll-up");
    let series = app
        .get_json("/v1/admin/analytics/active_people", &admin.access)
        .await;
    let today = series["points"].as_array().expect("points").last().cloned();
    assert_eq!(
        today.map(|p| p["value"].clone()),
        Some(json!(after)),
        "{series}"
    );
}
