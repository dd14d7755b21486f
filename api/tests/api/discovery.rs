//! `GET /v1/discovery`: two-way filters, exclusions, ranking, cursors.
use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, TestApp, TestUser};

/// Paris, and points at a given distance east of it.
const PARIS: (f64, f64) = (48.8566, 2.3522);
fn km_east(km: f64) -> Value {
    json!({"latitude": PARIS.0, "longitude": PARIS.1 + km / 73.3})
}

async fn page(app: &TestApp, user: &TestUser, cursor: Option<&str>, limit: u32) -> Value {
    let mut path = format!("/v1/discovery?limit={limit}");
    if let Some(c) = cursor {
        path.push_str(&format!("&cursor={c}"));
    }
    app.get_json(&path, &user.access).await
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["user_id"].as_str().expect("id").parse().expect("uuid"))
        .collect()
}

/// Everyone `user` can discover, paging to the end.
async fn everyone(app: &TestApp, user: &TestUser) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = page(app, user, cursor.as_deref(), 50).await;
        seen.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert_eq!(p["exhausted"], true);
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn filters_apply_both_ways() {
    let app = spawn_app().await;
    let me = app
        .person(json!({"gender": "woman", "birthdate": "1990-01-01"}))
        .await;
    app.put_authed(
        "/v1/me/preferences",
        &me.access,
        json!({"age_min": 30, "age_max": 40, "max_distance_km": 20, "genders": ["man"]}),
    )
    .await;
    let fits = app
        .person(json!({"gender": "man", "birthdate": "1989-06-01", "location": km_east(5.0)}))
        .await;
    let wrong_gender = app
        .person(json!({"gender": "woman", "location": km_east(5.0)}))
        .await;
    let too_old = app
        .person(json!({"gender": "man", "birthdate": "1970-01-01", "location": km_east(5.0)}))
        .await;
    let too_far = app
        .person(json!({"gender": "man", "location": km_east(40.0)}))
        .await;
    // I fit none of these people's own preferences.
    let seeks_men = app
        .person(json!({"gender": "man", "location": km_east(5.0)}))
        .await;
    app.put_authed(
        "/v1/me/preferences",
        &seeks_men.access,
        json!({"age_min": 18, "age_max": 99, "max_distance_km": 50, "genders": ["man"]}),
    )
    .await;
    let seeks_younger = app
        .person(json!({"gender": "man", "location": km_east(5.0)}))
        .await;
    app.put_authed(
        "/v1/me/preferences",
        &seeks_younger.access,
        json!({"age_min": 18, "age_max": 30, "max_distance_km": 50, "genders": ["woman"]}),
    )
    .await;
    let short_radius = app
        .person(json!({"gender": "man", "location": km_east(8.0)}))
        .await;
    app.put_authed(
        "/v1/me/preferences",
        &short_radius.access,
        json!({"age_min": 18, "age_max": 99, "max_distance_km": 5, "genders": ["woman"]}),
    )
    .await;

    let seen = everyone(&app, &me).await;

    assert_eq!(
        seen,
        vec![fits.id],
        "wrong gender {}, too old {}, too far {}, seeks men {}, seeks younger {}, short radius {}",
        wrong_gender.id,
        too_old.id,
        too_far.id,
        seeks_men.id,
        seeks_younger.id,
        short_radius.id
    );
}

#[tokio::test]
async fn exclusions_are_exact() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let visible = app.person(json!({"location": km_east(1.0)})).await;
    let liked = app.person(json!({"location": km_east(1.0)})).await;
    let passed = app.person(json!({"location": km_east(1.0)})).await;
    let passed_long_ago = app.person(json!({"location": km_east(1.0)})).await;
    let blocked_by_me = app.person(json!({"location": km_east(1.0)})).await;
    let blocks_me = app.person(json!({"location": km_east(1.0)})).await;
    let banned = app.person(json!({"location": km_east(1.0)})).await;
    let snoozed = app.person(json!({"location": km_east(1.0)})).await;
    let incognito = app.person(json!({"location": km_east(1.0)})).await;
    let incognito_liker = app.person(json!({"location": km_east(1.0)})).await;
    let incomplete = app.register().await;
    app.patch_authed(
        "/v1/me/profile",
        &incomplete.access,
        json!({"location": km_east(1.0)}),
    )
    .await;

    app.swipe(&me, &liked, "like").await;
    app.swipe(&me, &passed, "pass").await;
    app.swipe(&me, &passed_long_ago, "pass").await;
    app.sql(&format!(
        "UPDATE swipes SET created_at = now() - interval '31 days' WHERE target_id = '{}'",
        passed_long_ago.id
    ))
    .await;
    app.post_authed(
        "/v1/blocks",
        &me.access,
        json!({"user_id": blocked_by_me.id}),
    )
    .await;
    app.post_authed("/v1/blocks", &blocks_me.access, json!({"user_id": me.id}))
        .await;
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        banned.id
    ))
    .await;
    app.patch_authed(
        "/v1/me/settings",
        &snoozed.access,
        json!({"snoozed_until": "2099-01-01T00:00:00Z"}),
    )
    .await;
    app.patch_authed(
        "/v1/me/settings",
        &incognito.access,
        json!({"incognito": true}),
    )
    .await;
    app.patch_authed(
        "/v1/me/settings",
        &incognito_liker.access,
        json!({"incognito": true}),
    )
    .await;
    app.swipe(&incognito_liker, &me, "like").await;

    let seen: HashSet<Uuid> = everyone(&app, &me).await.into_iter().collect();

    let expected: HashSet<Uuid> = [visible.id, passed_long_ago.id, incognito_liker.id]
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn pages_never_repeat_or_skip_while_things_change() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let mut pool = Vec::new();
    for i in 0..23 {
        pool.push(
            app.person(json!({"location": km_east(1.0 + f64::from(i) * 0.5)}))
                .await,
        );
    }

    let mut shown: Vec<Uuid> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let p = page(&app, &me, cursor.as_deref(), 5).await;
        let got = ids(&p);
        shown.extend(&got);
        // Between pages: I swipe someone I saw, a newcomer arrives, someone not yet seen moves.
        if let Some(first) = got.first() {
            app.post_authed(
                "/v1/swipes",
                &me.access,
                json!({"target_id": first, "action": "pass"}),
            )
            .await;
        }
        app.person(json!({"location": km_east(0.5)})).await;
        if let Some(unseen) = pool.iter().find(|u| !shown.contains(&u.id)) {
            app.patch_authed(
                "/v1/me/profile",
                &unseen.access,
                json!({"location": km_east(2.0 + f64::from(round))}),
            )
            .await;
        }
        round += 1;
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(round < 20, "pagination never ended");
    }

    let unique: HashSet<Uuid> = shown.iter().copied().collect();
    assert_eq!(unique.len(), shown.len(), "a person was shown twice");
    let expected: HashSet<Uuid> = pool.iter().map(|u| u.id).collect();
    assert!(expected.is_subset(&unique), "someone eligible was skipped");
}

#[tokio::test]
async fn the_ranking_favours_likers_shared_intentions_and_proximity() {
    let app = spawn_app().await;
    let me = app.person(json!({"intentions": ["marriage"]})).await;
    let far = app
        .person(json!({"location": km_east(30.0), "intentions": ["casual"]}))
        .await;
    let near = app
        .person(json!({"location": km_east(2.0), "intentions": ["casual"]}))
        .await;
    let far_liker = app
        .person(json!({"location": km_east(30.0), "intentions": ["casual"]}))
        .await;
    let far_shared = app
        .person(json!({"location": km_east(30.0), "intentions": ["marriage"]}))
        .await;
    app.swipe(&far_liker, &me, "like").await;
    // Make activity and novelty equal for everyone.
    app.sql("UPDATE users SET last_active_at = now(), created_at = now() - interval '30 days'")
        .await;

    let order = everyone(&app, &me).await;

    assert_eq!(order, vec![far_liker.id, near.id, far_shared.id, far.id]);
}

#[tokio::test]
async fn someone_who_likes_me_mid_pagination_shows_up_on_my_next_page() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    for i in 0..6 {
        app.person(json!({"location": km_east(1.0 + f64::from(i))}))
            .await;
    }
    let first = page(&app, &me, None, 3).await;
    let newcomer = app.person(json!({"location": km_east(40.0)})).await;
    app.swipe(&newcomer, &me, "like").await;

    let second = page(&app, &me, first["next_cursor"].as_str(), 3).await;

    assert_eq!(ids(&second).first(), Some(&newcomer.id));
}

#[tokio::test]
async fn cards_show_distance_and_shared_intentions_but_no_coordinates() {
    let app = spawn_app().await;
    let me = app
        .person(json!({"intentions": ["long_term", "casual"]}))
        .await;
    let other = app
        .person(json!({"location": km_east(12.0), "intentions": ["casual"]}))
        .await;

    let p = page(&app, &me, None, 20).await;

    let card = &p["items"][0];
    assert_eq!(card["user_id"], other.id.to_string());
    assert_eq!(card["distance_km"], 12);
    assert_eq!(card["shared_intentions"], json!(["casual"]));
    assert!(card["age"].is_number() && card["photos"].is_array());
    let text = card.to_string();
    assert!(
        !text.contains("latitude") && !text.contains("email"),
        "{text}"
    );
}

#[tokio::test]
async fn an_empty_pool_says_exhausted() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let p = page(&app, &me, None, 20).await;
    assert_eq!(p["items"], json!([]));
    assert_eq!(p["exhausted"], true);
    assert!(p["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_cursors_limits_and_incomplete_profiles_are_refused() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    app.person(json!({"location": km_east(1.0)})).await;
    app.person(json!({"location": km_east(2.0)})).await;
    let first = page(&app, &me, None, 1).await;
    let cursor = first["next_cursor"].as_str().expect("cursor");

    let forged = format!("{}x", cursor);
    let body = assert_problem(
        app.get_authed(&format!("/v1/discovery?cursor={forged}"), &me.access)
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_eq!(body["field"], "cursor");
    for limit in [0, 51] {
        let body = assert_problem(
            app.get_authed(&format!("/v1/discovery?limit={limit}"), &me.access)
                .await,
            400,
            "bad-request",
        )
        .await;
        assert_eq!(body["field"], "limit");
    }
    let newcomer = app.register().await;
    assert_problem(
        app.get_authed("/v1/discovery", &newcomer.access).await,
        409,
        "profile-incomplete",
    )
    .await;

    // The queue is rebuilt (it got old): an earlier cursor no longer applies.
    app.sql("UPDATE discovery_state SET prepared_at = now() - interval '2 hours'")
        .await;
    page(&app, &me, None, 1).await;
    assert_problem(
        app.get_authed(&format!("/v1/discovery?cursor={cursor}"), &me.access)
            .await,
        410,
        "cursor-expired",
    )
    .await;
    assert_eq!(
        app.get_authed("/v1/discovery", &me.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_worker_prepares_queues_in_the_background_and_pages_use_them() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let other = app.person(json!({"location": km_east(3.0)})).await;
    app.register().await; // incomplete: skipped

    let prepared = api::worker::prepare_round(&app.state).await.expect("round");

    assert_eq!(prepared, 2);
    let queued: i64 = app
        .sql_value(&format!(
            "SELECT count(*) FROM discovery_queue WHERE user_id = '{}'",
            me.id
        ))
        .await
        .expect("count");
    assert_eq!(queued, 1);
    assert_eq!(
        api::worker::prepare_round(&app.state).await.expect("round"),
        0,
        "fresh queues are left alone"
    );
    let p = page(&app, &me, None, 20).await;
    assert_eq!(ids(&p), vec![other.id]);
    let generation: i32 = app
        .sql_value(&format!(
            "SELECT generation FROM discovery_state WHERE user_id = '{}'",
            me.id
        ))
        .await
        .expect("row");
    assert_eq!(generation, 1, "the prepared queue was used, not rebuilt");
}

#[tokio::test]
async fn a_page_walks_past_long_runs_of_filtered_candidates() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let mut people = Vec::new();
    for i in 0..40 {
        people.push(
            app.person(json!({"location": km_east(1.0 + f64::from(i) * 0.2)}))
                .await,
        );
    }
    api::worker::prepare_round(&app.state).await.expect("round");
    // The 35 best-ranked (nearest) become invisible after the queue was prepared.
    for p in &people[..35] {
        app.sql(&format!(
            "INSERT INTO swipes (swiper_id, target_id, action) VALUES ('{}', '{}', 'pass')",
            me.id, p.id
        ))
        .await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = page(&app, &me, cursor.as_deref(), 1).await;
        seen.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }

    let expected: Vec<Uuid> = people[35..].iter().map(|p| p.id).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn newcomers_get_a_first_exposure_bonus() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let veteran = app.person(json!({"location": km_east(3.0)})).await;
    let newcomer = app.person(json!({"location": km_east(8.0)})).await;
    app.sql(&format!(
        "UPDATE users SET created_at = now() - interval '30 days' WHERE id <> '{}'",
        newcomer.id
    ))
    .await;
    app.sql("UPDATE users SET last_active_at = now()").await;

    let order = everyone(&app, &me).await;

    // 5 km farther costs 4 points of proximity; being under 72 hours old is worth 10.
    assert_eq!(order, vec![newcomer.id, veteran.id]);
}

#[tokio::test]
async fn changes_after_my_queue_was_prepared_take_effect_at_the_next_read() {
    let app = spawn_app().await;
    let me = app.person_at(PARIS.0, PARIS.1).await;
    let stays = app.person(json!({"location": km_east(1.0)})).await;
    let narrows = app.person(json!({"location": km_east(1.0)})).await;
    let snoozes = app.person(json!({"location": km_east(1.0)})).await;
    let goes_incognito = app.person(json!({"location": km_east(1.0)})).await;
    let suspended = app.person(json!({"location": km_east(1.0)})).await;
    let first: HashSet<Uuid> = everyone(&app, &me).await.into_iter().collect();
    let all: HashSet<Uuid> = [
        stays.id,
        narrows.id,
        snoozes.id,
        goes_incognito.id,
        suspended.id,
    ]
    .into_iter()
    .collect();
    assert_eq!(first, all);

    // Each of these changes one row the candidate's profile mirrors (preferences, settings,
    // account status); my queue is not rebuilt in between.
    let resp = app
        .put_authed(
            "/v1/me/preferences",
            &narrows.access,
            json!({"age_min": 18, "age_max": 99, "max_distance_km": 50, "genders": ["woman"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .patch_authed(
            "/v1/me/settings",
            &snoozes.access,
            json!({"snoozed_until": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .patch_authed(
            "/v1/me/settings",
            &goes_incognito.access,
            json!({"incognito": true}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    app.sql(&format!(
        "UPDATE users SET status = 'suspended', suspended_until = now() + interval '1 day' WHERE id = '{}'",
        suspended.id
    ))
    .await;

    assert_eq!(everyone(&app, &me).await, vec![stays.id]);
    let generation: i32 = app
        .sql_value(&format!(
            "SELECT generation FROM discovery_state WHERE user_id = '{}'",
            me.id
        ))
        .await
        .expect("row");
    assert_eq!(generation, 1, "the same queue was read again");

    // And back: the suspension ends, the snooze is lifted.
    app.sql(&format!(
        "UPDATE users SET suspended_until = now() - interval '1 second' WHERE id = '{}'",
        suspended.id
    ))
    .await;
    let resp = app
        .patch_authed(
            "/v1/me/settings",
            &snoozes.access,
            json!({"snoozed_until": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let last: HashSet<Uuid> = everyone(&app, &me).await.into_iter().collect();
    assert_eq!(
        last,
        [stays.id, snoozes.id, suspended.id].into_iter().collect()
    );
}

#[tokio::test]
async fn the_worker_refreshes_the_queue_tables_statistics_when_they_lag_far_behind() {
    let app = spawn_app().await;
    // Autovacuum off for this table in this test's database, so that only the worker analyses
    // it; the planner now believes the table is empty.
    app.sql(
        "ALTER TABLE discovery_queue SET (autovacuum_enabled = false); ANALYZE discovery_queue",
    )
    .await;
    assert!(
        !api::worker::analyze_queue_if_stale(&app.db)
            .await
            .expect("check"),
        "an empty table's statistics are right"
    );
    // 1,200 queue entries written behind the planner's back (this connection's counters are
    // flushed before the statement answers).
    app.sql(
        "INSERT INTO users (id, email_hash, email_ciphertext)
           SELECT gen_random_uuid(), convert_to('x' || g, 'UTF8'), '\\x00'::bytea FROM generate_series(1, 1200) g;
         INSERT INTO discovery_queue (user_id, rank, candidate_id, score)
           SELECT (SELECT min(id::text)::uuid FROM users), row_number() OVER (), id, 1 FROM users;
         SELECT pg_stat_force_next_flush();",
    )
    .await;

    assert!(api::worker::analyze_queue_if_stale(&app.db)
        .await
        .expect("check"));
    let planned: f32 = app
        .sql_value("SELECT reltuples FROM pg_class WHERE relname = 'discovery_queue'")
        .await
        .expect("row");
    assert!(planned >= 1_000.0, "planner rows after ANALYZE: {planned}");
    assert!(
        !api::worker::analyze_queue_if_stale(&app.db)
            .await
            .expect("check"),
        "fresh statistics are left alone"
    );
}
