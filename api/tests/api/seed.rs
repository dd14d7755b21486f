//! `despacio-api seed`.
use crate::helpers::spawn_app;

#[tokio::test]
async fn seeded_people_can_log_in_and_discover_each_other() {
    let app = spawn_app().await;
    let out = app.run_cli(&[
        "seed",
        "--profiles",
        "400",
        "--swiper-share",
        "0.2",
        "--swipes-per-swiper",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let profiles: i64 = app
        .sql_value("SELECT count(*) FROM profiles WHERE location IS NOT NULL")
        .await
        .expect("count");
    assert_eq!(profiles, 400);
    let swipes: i64 = app
        .sql_value("SELECT count(*) FROM swipes")
        .await
        .expect("count");
    assert!(swipes > 400, "{swipes}");
    let photos: i64 = app
        .sql_value("SELECT count(DISTINCT user_id) FROM photos")
        .await
        .expect("count");
    assert_eq!(photos, 400);
    let login = app
        .login("seed-7@despacio.test", api::seed::SEED_PASSWORD)
        .await;
    assert_eq!(login.status(), reqwest::StatusCode::OK);
    let token: serde_json::Value = login.json().await.expect("json");
    let page = app
        .get_json(
            "/v1/discovery",
            token["access_token"].as_str().expect("token"),
        )
        .await;
    assert!(
        page["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{page}"
    );
}
