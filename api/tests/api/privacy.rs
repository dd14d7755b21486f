//! GDPR: `GET /v1/me/export` and `DELETE /v1/me`.
use fred::prelude::KeysInterface;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    admin::{acted, with_role},
    chat::{connect_and_resume, told_nothing_until_his_tablet_speaks},
    chat_client::Auth,
    chat_client::ChatClient,
    helpers::{assert_problem, spawn_app, spawn_app_with, Sse, TestApp, TestUser},
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
pub(crate) async fn rows_mentioning(app: &TestApp, needle: &str) -> Vec<String> {
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

/// Alice (with a bio and a photo), three other people and a moderator.
struct Cast {
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    dan: TestUser,
    moderator: TestUser,
    photo: Value,
}

async fn cast(app: &TestApp) -> Cast {
    let alice = app
        .person(json!({"bio": "slow mornings, long letters"}))
        .await;
    let photo = upload_ok(app, &alice, jpeg(640, 480)).await;
    Cast {
        alice,
        bob: app.person(json!({})).await,
        carol: app.person(json!({})).await,
        dan: app.person(json!({})).await,
        moderator: with_role(app, "moderator").await,
        photo,
    }
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
    assert_eq!(keys_naming(&app, alice.id).await.len(), 0);
}

#[tokio::test]
async fn erasure_removes_the_person_everywhere_and_tells_their_matches() {
    let app = spawn_app().await;
    let Cast {
        alice,
        bob,
        carol,
        dan,
        moderator,
        photo,
    } = cast(&app).await;
    let photo_id = photo["id"].as_str().expect("photo id").to_owned();
    assert_eq!(local_objects(&app, &photo_id).len(), 2);
    // Bob likes back with an idempotency key of his own that names her: his stored answer.
    app.swipe(&alice, &bob, "like").await;
    let bobs_key = format!("like-{}", alice.id);
    let resp = app
        .client
        .post(app.url("/v1/swipes"))
        .bearer_auth(&bob.access)
        .header("Idempotency-Key", &bobs_key)
        .json(&json!({"target_id": alice.id, "action": "like"}))
        .send()
        .await
        .expect("swipe");
    assert!(resp.status().is_success(), "{}", resp.status());
    let answer: Value = resp.json().await.expect("json");
    let resonance: Uuid = answer["resonance"]["id"]
        .as_str()
        .expect("résonance")
        .parse()
        .expect("uuid");
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
    let link = app.magic_token(&alice.email);
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
    // Her tokens, password and sign-in link no longer work (the link does not make a new account).
    assert_problem(
        app.get_authed("/v1/me", &alice.access).await,
        401,
        "session-revoked",
    )
    .await;
    assert_problem(erase(&app, &alice.access).await, 401, "session-revoked").await;
    let resp = app.login(&alice.email, &alice.password).await;
    assert_problem(resp, 401, "invalid-credentials").await;
    let resp = app
        .post("/v1/auth/magic-link/verify", json!({"token": link}))
        .await;
    assert_problem(resp, 401, "invalid-magic-link").await;
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM users").await,
        Some(4)
    );
    // No row of any table mentions her; reports and the moderation decision stay, naming
    // nobody, without what she wrote.
    assert_eq!(
        rows_mentioning(&app, &alice.id.to_string()).await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM magic_links")
            .await,
        Some(0)
    );
    // (reporter | reported | details, nulls left out)
    for (reason, expected) in [
        ("spam", dan.id.to_string()),
        ("other", format!("{} | Carol says Alice was rude", carol.id)),
    ] {
        assert_eq!(
            app.sql_value::<String>(&format!(
                "SELECT concat_ws(' | ', reporter_id, reported_user_id, details) FROM reports
                 WHERE reason = '{reason}'"
            ))
            .await,
            Some(expected)
        );
    }
    assert_eq!(
        app.sql_value::<i64>(
            "SELECT count(*) FROM moderation_actions
             WHERE action = 'warn' AND target_id IS NULL AND reason IS NULL"
        )
        .await,
        Some(1)
    );
    // The others are untouched, Bob's stored answer that names her included.
    for person in [&bob, &carol, &dan] {
        app.get_json("/v1/me", &person.access).await;
    }
    assert_eq!(
        app.sql_value::<i64>(&format!(
            "SELECT count(*) FROM swipes WHERE swiper_id = '{}'",
            dan.id
        ))
        .await,
        Some(0),
        "Dan's pass on her went with her"
    );
    let bobs_answer: i64 = app
        .state
        .redis
        .exists(
            app.state
                .keys
                .idempotency(&format!("user:{}", bob.id), &bobs_key),
        )
        .await
        .expect("exists");
    assert_eq!(bobs_answer, 1);
    // Her photos' objects are gone from the store; Bob's conversation with her too.
    assert_eq!(local_objects(&app, &photo_id), Vec::<String>::new());
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM object_deletions")
            .await,
        Some(0)
    );
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
    // In Redis only the erasure mark and Bob's answer name her; the mark for an hour at most.
    let mark = keys.erased_user(&alice.id);
    let mut expected = vec![
        mark.clone(),
        keys.idempotency(&format!("user:{}", bob.id), &bobs_key),
    ];
    expected.sort();
    assert_eq!(keys_naming(&app, alice.id).await, expected);
    let ttl: i64 = app.state.redis.ttl(&mark).await.expect("ttl");
    assert!((1..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn erasure_closes_the_chat_and_refuses_every_token_even_from_a_new_session() {
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
    // A token of a session opened while the erasure ran (no revocation mark of its own) is
    // refused by the API and by the gateway.
    let late = forge(&app, alice.id, Uuid::new_v4(), |_| {});
    assert_problem(
        app.get_authed("/v1/me", &late).await,
        401,
        "session-revoked",
    )
    .await;
    assert_problem(
        app.get_authed("/v1/events", &late).await,
        401,
        "session-revoked",
    )
    .await;
    let mut refused = ChatClient::open(&gateway.url, Auth::Header(&late)).await;
    let (code, reason) = refused.closed().await;
    assert_eq!(code, 4003, "{reason}");
}

#[tokio::test]
async fn a_gateway_closing_a_connection_during_erasure_leaves_no_presence_and_says_nothing() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&alice, &bob).await;
    let mut b = connect_and_resume(&gateway.url, &bob, resonance).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], false);
    let a = ChatClient::connect(&gateway.url, &alice).await;
    assert_eq!(b.next_of("presence", &[]).await["online"], true);
    let keys = &app.state.keys;
    let (presence, last_seen) = (
        keys.chat_presence(&alice.id),
        keys.chat_last_seen(&alice.id),
    );
    assert_eq!(
        app.state
            .redis
            .exists::<i64, _>(&presence)
            .await
            .expect("exists"),
        1
    );
    // Her erasure has begun (its mark is set) when her connection drops: the gateway's
    // "offline" must remove her presence, write no "last seen" and tell nobody.
    let _: () = app
        .state
        .redis
        .set(keys.erased_user(&alice.id), "1", None, None, false)
        .await
        .expect("mark");
    drop(a);
    // The presence set goes in the same script call that would write the "last seen".
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .state
        .redis
        .exists::<i64, _>(&presence)
        .await
        .expect("exists")
        == 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence never left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.state
            .redis
            .exists::<i64, _>(&last_seen)
            .await
            .expect("exists"),
        0
    );
    told_nothing_until_his_tablet_speaks(&gateway.url, &bob, resonance, &mut b).await;
}

#[tokio::test]
async fn the_export_holds_everything_about_me_and_nothing_of_the_others() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let Cast {
        alice,
        bob,
        carol,
        dan,
        moderator,
        photo,
    } = cast(&app).await;
    let resonance = app.resonance(&alice, &bob).await;
    app.swipe(&alice, &dan, "pass").await;
    app.swipe(&carol, &alice, "pass").await;
    // Erin matched with her, then blocked her: the export must not say it was a block.
    let erin = app.person(json!({})).await;
    app.resonance(&alice, &erin).await;
    let resp = app
        .post_authed("/v1/blocks", &erin.access, json!({"user_id": alice.id}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
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
            (dan.id.to_string(), "pass".to_owned()),
            (erin.id.to_string(), "like".to_owned())
        ]
    );
    assert_eq!(export["resonances"][0]["id"], resonance.to_string());
    assert_eq!(export["resonances"][0]["user_id"], bob.id.to_string());
    assert_eq!(export["resonances"][1]["user_id"], erin.id.to_string());
    assert!(export["resonances"][1]["ended_at"].is_string(), "{export}");
    assert_eq!(export["resonances"][1]["ended_reason"], Value::Null);
    assert!(export["last_active_at"].is_string(), "{export}");
    assert_eq!(export["blocks"][0]["user_id"], carol.id.to_string());
    let reports = export["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 1, "{export}");
    assert_eq!(reports[0]["details"], "sells things");
    assert_eq!(export["moderation"][0]["action"], "warn");
    assert_eq!(export["moderation"][0]["reason"], "be kind");
    let bodies: Vec<&str> = export["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["bonjour", "salut"]);
    // Nothing of the others: not their emails, not who passed on her, not the moderator.
    for other in [&bob, &carol, &dan, &erin] {
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

#[tokio::test]
async fn exports_are_limited_per_person() {
    let app = spawn_app_with(&[(
        "RATE_LIMITS",
        "register_per_ip=1000/3600,exports_per_hour=1/3600",
    )])
    .await;
    let (alice, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let resp = app.get_authed("/v1/me/export", &alice.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.get_authed("/v1/me/export", &alice.access).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "rate-limited").await;
    // Bob's budget is his own.
    let resp = app.get_authed("/v1/me/export", &bob.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_devices_erasing_at_once_erase_once_and_keep_the_mark() {
    let app = spawn_app().await;
    let alice = app.person(json!({})).await;
    let resp = app.login(&alice.email, &alice.password).await;
    let phone: Value = resp.json().await.expect("json");
    let phone = phone["access_token"].as_str().expect("token").to_owned();
    let (first, second) = tokio::join!(erase(&app, &alice.access), erase(&app, &phone));
    let mut statuses = vec![first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![204, 401]);
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM users").await,
        Some(0)
    );
    assert_eq!(
        keys_naming(&app, alice.id).await,
        vec![app.state.keys.erased_user(&alice.id)]
    );
}
