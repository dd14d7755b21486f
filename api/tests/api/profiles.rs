//! `/v1/me/...` and `/v1/profiles/{id}`.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_full_profile_is_saved_and_complete() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app
        .patch_authed(
            "/v1/me/profile",
            &user.access,
            json!({
                "display_name": "Ana", "birthdate": "1994-05-17", "gender": "woman",
                "bio": "Slow mornings.", "intentions": ["long_term", "friendship"],
                "location": {"latitude": 48.8566, "longitude": 2.3522}
            }),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let profile: Value = resp.json().await.expect("json");
    assert_eq!(profile["complete"], true);
    assert_eq!(profile["bio"], "Slow mornings.");
    assert!(profile["age"].as_i64().expect("age") >= 32);
    let me: Value = app
        .get_authed("/v1/me", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["profile"]["location"]["latitude"], 48.8566);
    assert_eq!(
        me["profile"]["intentions"],
        json!(["long_term", "friendship"])
    );
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_null_clears() {
    let app = spawn_app().await;
    let user = app.person_at(45.764, 4.8357).await;
    app.patch_authed("/v1/me/profile", &user.access, json!({"bio": "hello"}))
        .await;

    let profile: Value = app
        .patch_authed(
            "/v1/me/profile",
            &user.access,
            json!({"display_name": "Sami"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(profile["display_name"], "Sami");
    assert_eq!(profile["bio"], "hello");
    assert_eq!(profile["gender"], "non_binary");

    let profile: Value = app
        .patch_authed(
            "/v1/me/profile",
            &user.access,
            json!({"bio": null, "location": null}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(profile["bio"].is_null());
    assert!(profile["location"].is_null());
    assert_eq!(profile["complete"], false);
    let stored: Option<f64> = app
        .sql_value(&format!(
            "SELECT latitude FROM profiles WHERE user_id = '{}'",
            user.id
        ))
        .await;
    assert_eq!(stored, None);
}

#[tokio::test]
async fn invalid_profile_values_are_422_naming_every_field() {
    let app = spawn_app().await;
    let user = app.register().await;
    let minor = (chrono::Utc::now().date_naive() - chrono::Days::new(17 * 365)).to_string();

    let resp = app
        .patch_authed(
            "/v1/me/profile",
            &user.access,
            json!({
                "display_name": "", "birthdate": minor, "bio": "b".repeat(501),
                "intentions": ["casual", "casual"], "location": {"latitude": 91.0, "longitude": -181.0}
            }),
        )
        .await;

    let body = assert_problem(resp, 422, "validation-failed").await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .collect();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "bio",
            "birthdate",
            "display_name",
            "intentions",
            "location.latitude",
            "location.longitude"
        ]
    );
    let underage = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["field"] == "birthdate")
        .expect("birthdate");
    assert_eq!(underage["code"], "underage");
    // Nothing was written.
    let me: Value = app
        .get_authed("/v1/me", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(me["profile"]["birthdate"].is_null());
}

#[tokio::test]
async fn unknown_enum_values_and_fields_are_400_naming_the_field() {
    let app = spawn_app().await;
    let user = app.register().await;

    let body = assert_problem(
        app.patch_authed("/v1/me/profile", &user.access, json!({"gender": "dragon"}))
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "gender");
    let body = assert_problem(
        app.patch_authed("/v1/me/profile", &user.access, json!({"email": "x@y.z"}))
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "email");
    let body = assert_problem(
        app.patch_authed(
            "/v1/me/profile",
            &user.access,
            json!({"birthdate": "17/05/1994"}),
        )
        .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "birthdate");
}

#[tokio::test]
async fn preferences_are_replaced_whole_and_validated() {
    let app = spawn_app().await;
    let user = app.register().await;

    let resp = app
        .put_authed(
            "/v1/me/preferences",
            &user.access,
            json!({"age_min": 30, "age_max": 40, "max_distance_km": 25, "genders": ["woman"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let prefs: Value = app
        .get_authed("/v1/me/preferences", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        prefs,
        json!({"age_min": 30, "age_max": 40, "max_distance_km": 25, "genders": ["woman"]})
    );

    let resp = app
        .put_authed(
            "/v1/me/preferences",
            &user.access,
            json!({"age_min": 45, "age_max": 40, "max_distance_km": 0, "genders": []}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation-failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .collect();
    assert!(
        fields.contains(&"genders")
            && fields.contains(&"max_distance_km")
            && fields.contains(&"age_min"),
        "{fields:?}"
    );
    let body = assert_problem(
        app.put_authed("/v1/me/preferences", &user.access, json!({"age_min": 30}))
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "age_max");
}

#[tokio::test]
async fn settings_toggle_and_refuse_a_snooze_in_the_past() {
    let app = spawn_app().await;
    let user = app.register().await;

    let settings: Value = app
        .patch_authed(
            "/v1/me/settings",
            &user.access,
            json!({"incognito": true, "notify_likes": false}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(settings["incognito"], true);
    assert_eq!(settings["notify_likes"], false);
    assert_eq!(settings["notify_messages"], true);
    let again: Value = app
        .get_authed("/v1/me/settings", &user.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(settings, again);

    let body = assert_problem(
        app.patch_authed(
            "/v1/me/settings",
            &user.access,
            json!({"snoozed_until": "2001-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(body["field"], "snoozed_until");
}

#[tokio::test]
async fn a_public_profile_shows_a_rounded_distance_and_nothing_private() {
    let app = spawn_app().await;
    let paris = app.person_at(48.8566, 2.3522).await;
    let versailles = app.person_at(48.8049, 2.1204).await;
    app.patch_authed(
        "/v1/me/profile",
        &versailles.access,
        json!({"bio": "Gardens", "intentions": ["long_term", "casual"]}),
    )
    .await;

    let resp = app
        .get_authed(&format!("/v1/profiles/{}", versailles.id), &paris.access)
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["user_id"], versailles.id.to_string());
    assert_eq!(body["distance_km"], 18);
    assert_eq!(body["shared_intentions"], json!(["long_term"]));
    assert_eq!(body["bio"], "Gardens");
    let text = body.to_string();
    assert!(
        !text.contains("48.80") && !text.contains("latitude") && !text.contains("email"),
        "{text}"
    );
}

#[tokio::test]
async fn blocks_in_either_direction_hide_the_profile() {
    let app = spawn_app().await;
    let a = app.person_at(48.85, 2.35).await;
    let b = app.person_at(48.86, 2.36).await;
    let c = app.person_at(48.87, 2.37).await;
    app.sql(&format!(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES ('{}', '{}')",
        a.id, b.id
    ))
    .await;

    assert_problem(
        app.get_authed(&format!("/v1/profiles/{}", b.id), &a.access)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_authed(&format!("/v1/profiles/{}", a.id), &b.access)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        app.get_authed(&format!("/v1/profiles/{}", a.id), &c.access)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn incognito_people_are_visible_only_to_those_they_liked() {
    let app = spawn_app().await;
    let shy = app.person_at(48.85, 2.35).await;
    let liked = app.person_at(48.86, 2.36).await;
    let stranger = app.person_at(48.87, 2.37).await;
    app.patch_authed("/v1/me/settings", &shy.access, json!({"incognito": true}))
        .await;
    app.sql(&format!(
        "INSERT INTO swipes (swiper_id, target_id, action) VALUES ('{}', '{}', 'like')",
        shy.id, liked.id
    ))
    .await;

    assert_eq!(
        app.get_authed(&format!("/v1/profiles/{}", shy.id), &liked.access)
            .await
            .status(),
        StatusCode::OK
    );
    assert_problem(
        app.get_authed(&format!("/v1/profiles/{}", shy.id), &stranger.access)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_eq!(
        app.get_authed(&format!("/v1/profiles/{}", shy.id), &shy.access)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn suspended_unknown_and_malformed_ids_are_not_found_or_bad() {
    let app = spawn_app().await;
    let viewer = app.person_at(48.85, 2.35).await;
    let banned = app.person_at(48.86, 2.36).await;
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        banned.id
    ))
    .await;

    assert_problem(
        app.get_authed(&format!("/v1/profiles/{}", banned.id), &viewer.access)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_authed(
            &format!("/v1/profiles/{}", uuid::Uuid::new_v4()),
            &viewer.access,
        )
        .await,
        404,
        "not-found",
    )
    .await;
    let body = assert_problem(
        app.get_authed("/v1/profiles/42", &viewer.access).await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "user_id");
}

#[tokio::test]
async fn distance_is_unknown_without_a_location() {
    let app = spawn_app().await;
    let viewer = app.register().await;
    let other = app.person_at(48.85, 2.35).await;
    let body: Value = app
        .get_authed(&format!("/v1/profiles/{}", other.id), &viewer.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(body["distance_km"].is_null());
}
