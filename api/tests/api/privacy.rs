//! GDPR: `GET /v1/me/export` and `DELETE /v1/me`.
use fred::prelude::{KeysInterface, LuaInterface, SortedSetsInterface};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    admin::{acted, with_role},
    chat::connect_and_resume,
    chat_client::ChatClient,
    helpers::{assert_problem, spawn_app, Sse, TestApp},
    photos::{jpeg, local_objects, upload_ok},
    tokens::forge,
};

async fn erase(app: &TestApp, token: &str) -> reqwest::Response {
    app.delete_authed("/v1/me", token).await
}

/// The keys of the test's Redis whose name contains `id`.
async fn keys_naming(app: &TestApp, id: Uuid) -> Vec<String> {
    use futures_util::TryStreamExt;
    let mut keys: Vec<String> = app
        .state
        .redis
        .next()
        .scan_buffered(format!("{}*{id}*", app.prefix), Some(1000), None)
        .map_ok(|k| k.into_string().unwrap_or_default())
        .try_collect()
        .await
        .expect("scan");
    keys.sort();
    keys
}

/// Every row of every table of ours whose text mentions `needle`, as `table: row`.
async fn rows_mentioning(app: &TestApp, needle: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let tables = app
        .db
        .query_all(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name NOT IN ('spatial_ref_sys', 'seaql_migrations')"
                .to_owned(),
        ))
        .await
        .expect("tables");
    let mut found = Vec::new();
    for table in tables {
        let name: String = table.try_get_by_index(0).expect("name");
        let rows = app
            .db
            .query_all(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT t::text FROM {name} t WHERE t::text LIKE '%{needle}%'"),
            ))
            .await
            .expect("rows");
        for row in rows {
            let text: String = row.try_get_by_index(0).expect("row");
            found.push(format!("{name}: {text}"));
        }
    }
    found
}

#[tokio::test]
async fn erasure_needs_a_recent_authentication_and_a_token() {
    let app = spawn_app().await;
    let alice = app.person(json!({})).await;
    let stale = forge(&app, alice.id, alice.session_id, |c| c.auth_time -= 3600);
    let problem = assert_problem(erase(&app, &stale).await, 403, "reauthentication-required").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("reauthenticate")),
        "{problem}"
    );
    let resp = app
        .client
        .delete(app.url("/v1/me"))
        .send()
        .await
        .expect("delete");
    assert_problem(resp, 401, "unauthorized").await;
    // Nothing happened: she is still here and signed in.
    let me = app.get_json("/v1/me", &alice.access).await;
    assert_eq!(me["id"], alice.id.to_string());
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        Some(1)
    );
}

#[tokio::test]
async fn erasure_removes_the_person_everywhere_and_tells_their_matches() {
    let app = spawn_app().await;
    let alice = app
        .person(json!({"bio": "slow mornings, long letters"}))
        .await;
    let (bob, carol, dan) = (
        app.person(json!({})).await,
        app.person(json!({})).await,
        app.person(json!({})).await,
    );
    let moderator = with_role(&app, "moderator").await;
    let photo = upload_ok(&app, &alice, jpeg(640, 480)).await;
    let photo_id = photo["id"].as_str().expect("photo id").to_owned();
    assert_eq!(local_objects(&app, &photo_id).len(), 2);
    let resonance = app.resonance(&alice, &bob).await;
    // A like Carol sees in her likes received, sent with an idempotency key (a stored answer).
    let resp = app
        .client
        .post(app.url("/v1/swipes"))
        .bearer_auth(&alice.access)
        .header("Idempotency-Key", "alice-likes-carol")
        .json(&json!({"target_id": carol.id, "action": "like"}))
        .send()
        .await
        .expect("swipe");
    assert!(resp.status().is_success(), "{}", resp.status());
    app.swipe(&dan, &alice, "pass").await;
    let resp = app
        .post_authed("/v1/blocks", &alice.access, json!({"user_id": dan.id}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = app
        .post("/v1/auth/magic-link", json!({"email": alice.email}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    app.sql(&format!(
        "INSERT INTO reports (id, reporter_id, reported_user_id, reason, details) VALUES
           ('{}', '{}', '{}', 'spam', 'Alice says Dan sells things'),
           ('{}', '{}', '{}', 'other', 'Carol says Alice was rude')",
        Uuid::new_v4(),
        alice.id,
        dan.id,
        Uuid::new_v4(),
        carol.id,
        alice.id
    ))
    .await;
    acted(
        &app,
        &moderator,
        &alice,
        json!({"action": "warn", "reason": "Alice, be kind"}),
    )
    .await;
    let mut hers = Sse::open(&app.address, &alice.access, None).await;
    let mut his = Sse::open(&app.address, &bob.access, None).await;
    let mut carols = Sse::open(&app.address, &carol.access, None).await;
    assert!(!rows_mentioning(&app, &alice.id.to_string())
        .await
        .is_empty());
    assert!(keys_naming(&app, alice.id).await.len() > 3);

    let resp = erase(&app, &alice.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // Her open event stream says so and ends; her match and the person she liked are told.
    hers.next_of("account.erased").await;
    hers.ends().await;
    let removed = his.next_of("resonance.removed").await.data.expect("data");
    assert_eq!(removed["data"]["resonance_id"], resonance.to_string());
    let likes = carols.next_of("likes.changed").await.data.expect("data");
    assert_eq!(likes["data"]["count"], 0);
    // Her tokens and password no longer work.
    assert_problem(app.get_authed("/v1/me", &alice.access).await, 401, "").await;
    assert_problem(erase(&app, &alice.access).await, 401, "").await;
    let resp = app.login(&alice.email, &alice.password).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // No row of any table mentions her; the moderation decision stays, naming nobody.
    assert_eq!(
        rows_mentioning(&app, &alice.id.to_string()).await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM magic_links")
            .await,
        Some(0)
    );
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM reports").await,
        Some(0)
    );
    assert_eq!(
        app.sql_value::<i64>(
            "SELECT count(*) FROM moderation_actions
             WHERE action = 'warn' AND target_id IS NULL AND reason IS NULL"
        )
        .await,
        Some(1)
    );
    // The others are untouched.
    for person in [&bob, &carol, &dan] {
        app.get_json("/v1/me", &person.access).await;
    }
    // Her photos' objects are gone from the store; Bob's conversation with her too.
    assert_eq!(local_objects(&app, &photo_id), Vec::<String>::new());
    let keys = &app.state.keys;
    let conversation: i64 = app
        .state
        .redis
        .exists(vec![
            keys.chat_meta(&resonance),
            keys.chat_stream(&resonance),
        ])
        .await
        .expect("exists");
    assert_eq!(conversation, 0);
    assert_eq!(
        app.get_json("/v1/resonances", &bob.access).await["items"],
        json!([])
    );
    // In Redis only the erasure mark names her, for an hour at most.
    let mark = keys.erased_user(&alice.id);
    assert_eq!(keys_naming(&app, alice.id).await, vec![mark.clone()]);
    let ttl: i64 = app.state.redis.ttl(&mark).await.expect("ttl");
    assert!((1..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn erasure_closes_the_chat_and_a_late_offline_leaves_no_trace() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut b = connect_and_resume(&gateway.url, &bob, resonance).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], false);
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], true);
    a.say(resonance, "e-1", "je pars").await;

    let resp = erase(&app, &alice.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (code, reason) = a.closed().await;
    assert_eq!(code, 4003, "{reason}");
    let closed = b.next_of("closed", &["presence", "message"]).await;
    assert_eq!(closed["resonance_id"], resonance.to_string());
    // A gateway that closes one of her connections after the sweep (its "offline" late) runs
    // this script: it must remove her presence and write no "last seen".
    let keys = &app.state.keys;
    let (presence, last_seen) = (
        keys.chat_presence(&alice.id),
        keys.chat_last_seen(&alice.id),
    );
    let _: i64 = app
        .state
        .redis
        .zadd(
            &presence,
            None,
            None,
            false,
            false,
            (f64::MAX, "late-gateway"),
        )
        .await
        .expect("zadd");
    let now = chrono::Utc::now();
    let _: i64 = app
        .state
        .redis
        .eval(
            entities::chat::PRESENCE_DOWN,
            vec![
                presence.clone(),
                last_seen.clone(),
                keys.erased_user(&alice.id),
            ],
            vec![
                "late-gateway".to_owned(),
                now.timestamp_millis().to_string(),
                keys.chat_presence_channel(&alice.id),
                now.to_rfc3339(),
                "{}".to_owned(),
                "2592000".to_owned(),
            ],
        )
        .await
        .expect("presence down");
    let left: i64 = app
        .state
        .redis
        .exists(vec![presence, last_seen])
        .await
        .expect("exists");
    assert_eq!(left, 0);
    // Bob's own presence writes are untouched by her mark.
    assert!(keys_naming(&app, bob.id)
        .await
        .iter()
        .any(|k| k.contains("presence")));
}

#[tokio::test]
async fn the_export_holds_everything_about_me_and_nothing_of_the_others() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let alice = app
        .person(json!({"bio": "slow mornings, long letters"}))
        .await;
    let (bob, carol, dan) = (
        app.person(json!({})).await,
        app.person(json!({})).await,
        app.person(json!({})).await,
    );
    let moderator = with_role(&app, "moderator").await;
    let photo = upload_ok(&app, &alice, jpeg(640, 480)).await;
    let resonance = app.resonance(&alice, &bob).await;
    app.swipe(&alice, &dan, "pass").await;
    app.swipe(&carol, &alice, "pass").await;
    let resp = app
        .post_authed("/v1/blocks", &alice.access, json!({"user_id": carol.id}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    app.sql(&format!(
        "INSERT INTO reports (id, reporter_id, reported_user_id, reason, details) VALUES
           ('{}', '{}', '{}', 'spam', 'sells things'),
           ('{}', '{}', '{}', 'other', 'a report about Alice')",
        Uuid::new_v4(),
        alice.id,
        dan.id,
        Uuid::new_v4(),
        dan.id,
        alice.id
    ))
    .await;
    acted(
        &app,
        &moderator,
        &alice,
        json!({"action": "warn", "reason": "be kind"}),
    )
    .await;
    let mut a = ChatClient::connect(&gateway.url, &alice).await;
    let mut b = ChatClient::connect(&gateway.url, &bob).await;
    a.say(resonance, "x-1", "bonjour").await;
    b.say(resonance, "x-2", "salut").await;

    let resp = app.get_authed("/v1/me/export", &alice.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"despacio-export-{}.json\"", alice.id)
    );
    assert_eq!(header("cache-control"), "no-store");
    let text = resp.text().await.expect("body");
    let export: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(export["format"], "despacio-export/1");
    assert_eq!(export["account"]["id"], alice.id.to_string());
    assert_eq!(export["account"]["email"], alice.email);
    assert_eq!(
        export["account"]["profile"]["bio"],
        "slow mornings, long letters"
    );
    assert_eq!(export["photos"][0]["id"], photo["id"]);
    assert!(
        export["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["id"] == alice.session_id.to_string()),
        "{export}"
    );
    let swipes: Vec<(String, String)> = export["swipes"]
        .as_array()
        .expect("swipes")
        .iter()
        .map(|s| {
            (
                s["user_id"].as_str().unwrap_or_default().to_owned(),
                s["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        swipes,
        vec![
            (bob.id.to_string(), "like".to_owned()),
            (dan.id.to_string(), "pass".to_owned())
        ]
    );
    assert_eq!(export["resonances"][0]["id"], resonance.to_string());
    assert_eq!(export["resonances"][0]["user_id"], bob.id.to_string());
    assert_eq!(export["blocks"][0]["user_id"], carol.id.to_string());
    let reports = export["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 1, "{export}");
    assert_eq!(reports[0]["details"], "sells things");
    assert_eq!(export["moderation"][0]["action"], "warn");
    assert_eq!(export["moderation"][0]["reason"], "be kind");
    assert!(export["moderation"][0].get("actor_id").is_none());
    let bodies: Vec<&str> = export["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["bonjour", "salut"]);
    // Nothing of the others: not their emails, not who passed on her, not the moderator.
    for other in [&bob, &carol, &dan] {
        assert!(!text.contains(&other.email), "{}", other.email);
    }
    assert!(!text.contains(&moderator.id.to_string()));
    assert!(!text.contains("a report about Alice"));
    let resp = app
        .client
        .get(app.url("/v1/me/export"))
        .send()
        .await
        .expect("get");
    assert_problem(resp, 401, "unauthorized").await;
}
