//! Reports (`POST /v1/reports`) and the moderators' queue, a person's file and the audit trail.
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    admin::{acted, with_role},
    chat_client::ChatClient,
    helpers::{assert_problem, spawn_app, spawn_app_with, TestApp, TestUser},
    photos::{jpeg, upload_ok},
};

async fn report(app: &TestApp, from: &TestUser, body: Value) -> reqwest::Response {
    app.post_authed("/v1/reports", &from.access, body).await
}

async fn filed(app: &TestApp, from: &TestUser, body: Value) -> Value {
    let resp = report(app, from, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn a_report_keeps_the_conversation_and_refuses_what_is_not_ours() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (ana, max, zoe) = (
        app.person(json!({})).await,
        app.person(json!({})).await,
        app.person(json!({})).await,
    );
    let resonance = app.resonance(&ana, &max).await;
    let other = app.resonance(&zoe, &max).await;
    let photo = upload_ok(&app, &max, jpeg(200, 150)).await;
    let zoes_photo = upload_ok(&app, &zoe, jpeg(200, 150)).await;
    let mut a = ChatClient::connect(&gateway.url, &ana).await;
    let mut m = ChatClient::connect(&gateway.url, &max).await;
    a.say(resonance, "r-1", "on prend le temps ?").await;
    m.say(resonance, "r-2", "something rude").await;

    let answer = filed(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "harassment", "details": "  rude  ",
               "resonance_id": resonance, "photo_id": photo["id"]}),
    )
    .await;
    assert_eq!(answer["status"], "open");
    assert_eq!(answer["user_id"], max.id.to_string());
    assert_eq!(answer["evidence_messages"], 2);
    let stored = app
        .sql_value::<String>(&format!(
            "SELECT concat_ws('|', reporter_id, reported_user_id, reason, details, status)
             FROM reports WHERE id = '{}'",
            answer["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        stored,
        Some(format!("{}|{}|harassment|rude|open", ana.id, max.id))
    );

    // Not ours: someone else's résonance, someone else's photo, ourselves, nobody.
    let resp = report(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "spam", "resonance_id": other}),
    )
    .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "resonance_id");
    let resp = report(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "spam", "photo_id": zoes_photo["id"]}),
    )
    .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "photo_id");
    let resp = report(&app, &ana, json!({"user_id": ana.id, "reason": "spam"})).await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "user_id");
    let resp = report(
        &app,
        &ana,
        json!({"user_id": Uuid::new_v4(), "reason": "spam"}),
    )
    .await;
    assert_problem(resp, 404, "not-found").await;
    let resp = report(&app, &ana, json!({"user_id": max.id, "reason": "boring"})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // After a block the conversation is gone: a report still works, without evidence.
    let resp = app
        .post_authed("/v1/blocks", &ana.access, json!({"user_id": max.id}))
        .await;
    assert!(resp.status().is_success());
    let answer = filed(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "harassment", "resonance_id": resonance}),
    )
    .await;
    assert_eq!(answer["evidence_messages"], 0);
}

#[tokio::test]
async fn reports_are_limited_per_reporter() {
    let app = spawn_app_with(&[(
        "RATE_LIMITS",
        "register_per_ip=1000/3600,reports_per_day=2/86400",
    )])
    .await;
    let (ana, max) = (app.person(json!({})).await, app.person(json!({})).await);
    for _ in 0..2 {
        filed(&app, &ana, json!({"user_id": max.id, "reason": "spam"})).await;
    }
    let resp = report(&app, &ana, json!({"user_id": max.id, "reason": "spam"})).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "rate-limited").await;
}

#[tokio::test]
async fn moderators_work_the_queue_oldest_first_and_an_action_closes_its_report() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let moderator = with_role(&app, "moderator").await;
    let (ana, max, zoe) = (
        app.person(json!({})).await,
        app.person(json!({})).await,
        app.person(json!({})).await,
    );
    let resonance = app.resonance(&ana, &max).await;
    let mut m = ChatClient::connect(&gateway.url, &max).await;
    m.say(resonance, "q-1", "something rude").await;
    let first = filed(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "harassment", "resonance_id": resonance}),
    )
    .await;
    let second = filed(&app, &zoe, json!({"user_id": max.id, "reason": "spam"})).await;
    let third = filed(&app, &max, json!({"user_id": zoe.id, "reason": "other"})).await;

    // People without the role are refused.
    let resp = app.get_authed("/v1/admin/reports", &ana.access).await;
    assert_problem(resp, 403, "insufficient-role").await;
    // Oldest first, a page at a time, with the count of open reports about the same person.
    let page = app
        .get_json("/v1/admin/reports?limit=2", &moderator.access)
        .await;
    let ids: Vec<&Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, vec![&first["id"], &second["id"]]);
    assert_eq!(page["items"][0]["open_reports_about_user"], 2);
    let next = page["next_cursor"].as_str().expect("cursor");
    let page = app
        .get_json(
            &format!("/v1/admin/reports?limit=2&cursor={next}"),
            &moderator.access,
        )
        .await;
    assert_eq!(page["items"][0]["id"], third["id"]);
    assert_eq!(page["next_cursor"], Value::Null);
    // The detail keeps the messages the chat has since forgotten... or will.
    let detail = app
        .get_json(
            &format!("/v1/admin/reports/{}", first["id"].as_str().expect("id")),
            &moderator.access,
        )
        .await;
    assert_eq!(detail["reason"], "harassment");
    assert_eq!(detail["evidence"][0]["body"], "something rude");
    assert_eq!(detail["evidence"][0]["sender_id"], max.id.to_string());
    let resp = app
        .get_authed(
            &format!("/v1/admin/reports/{}", Uuid::new_v4()),
            &moderator.access,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;

    // Taken: in review, assigned, a note; an assignee must be a moderator.
    let path = format!("/v1/admin/reports/{}", second["id"].as_str().expect("id"));
    let resp = app
        .patch_authed(
            &path,
            &moderator.access,
            json!({"status": "in_review", "assignee_id": moderator.id, "note": "checking"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let patched: Value = resp.json().await.expect("json");
    assert_eq!(patched["status"], "in_review");
    assert_eq!(patched["assignee_id"], moderator.id.to_string());
    assert_eq!(patched["note"], "checking");
    let resp = app
        .patch_authed(&path, &moderator.access, json!({"assignee_id": ana.id}))
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "assignee_id");
    let resp = app
        .patch_authed(&path, &moderator.access, json!({"note": null}))
        .await;
    let cleared: Value = resp.json().await.expect("json");
    assert_eq!(cleared["note"], Value::Null);
    assert_eq!(cleared["status"], "in_review", "untouched");

    // An action that names the report closes it; a report about someone else is refused.
    let resp = app
        .post_authed(
            &format!("/v1/admin/users/{}/actions", zoe.id),
            &moderator.access,
            json!({"action": "warn", "reason": "r", "report_id": first["id"]}),
        )
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "report_id");
    acted(
        &app,
        &moderator,
        &max,
        json!({"action": "warn", "reason": "Be kind.", "report_id": first["id"]}),
    )
    .await;
    let actioned = app
        .get_json("/v1/admin/reports?status=actioned", &moderator.access)
        .await;
    assert_eq!(actioned["items"][0]["id"], first["id"]);
    let queue = app.get_json("/v1/admin/reports", &moderator.access).await;
    let left: Vec<&Value> = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(left, vec![&second["id"], &third["id"]]);
}

#[tokio::test]
async fn a_persons_file_shows_reports_actions_and_the_email_to_admins_only() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let admin = with_role(&app, "admin").await;
    let (ana, max) = (
        app.person(json!({"bio": "slow"})).await,
        app.person(json!({})).await,
    );
    upload_ok(&app, &ana, jpeg(200, 150)).await;
    app.resonance(&ana, &max).await;
    filed(&app, &max, json!({"user_id": ana.id, "reason": "spam"})).await;
    acted(
        &app,
        &moderator,
        &ana,
        json!({"action": "warn", "reason": "First warning."}),
    )
    .await;
    let path = format!("/v1/admin/users/{}", ana.id);
    let file = app.get_json(&path, &moderator.access).await;
    assert_eq!(file["id"], ana.id.to_string());
    assert_eq!(file["email"], Value::Null);
    assert_eq!(file["bio"], "slow");
    assert_eq!(file["status"], "active");
    assert_eq!(file["photos"].as_array().expect("photos").len(), 1);
    assert_eq!(file["open_reports_about"], 1);
    assert_eq!(file["reports_filed"], 0);
    assert_eq!(file["active_resonances"], 1);
    assert_eq!(file["recent_actions"][0]["reason"], "First warning.");
    assert!(file.get("location").is_none());
    let file = app.get_json(&path, &admin.access).await;
    assert_eq!(file["email"], ana.email);
    assert_problem(
        app.get_authed(&path, &max.access).await,
        403,
        "insufficient-role",
    )
    .await;
    let resp = app
        .get_authed(
            &format!("/v1/admin/users/{}", Uuid::new_v4()),
            &moderator.access,
        )
        .await;
    assert_problem(resp, 404, "not-found").await;
}

#[tokio::test]
async fn admins_read_the_audit_trail_newest_first_and_filtered() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let admin = with_role(&app, "admin").await;
    let (ana, max) = (app.person(json!({})).await, app.person(json!({})).await);
    let one = acted(
        &app,
        &moderator,
        &ana,
        json!({"action": "warn", "reason": "1"}),
    )
    .await;
    let two = acted(&app, &admin, &max, json!({"action": "warn", "reason": "2"})).await;
    let three = acted(
        &app,
        &moderator,
        &ana,
        json!({"action": "warn", "reason": "3"}),
    )
    .await;
    let resp = app.get_authed("/v1/admin/audit", &moderator.access).await;
    assert_problem(resp, 403, "insufficient-role").await;
    let page = app.get_json("/v1/admin/audit?limit=2", &admin.access).await;
    assert_eq!(page["items"][0]["id"], three["id"]);
    assert_eq!(page["items"][1]["id"], two["id"]);
    let next = page["next_cursor"].as_str().expect("cursor");
    let page = app
        .get_json(
            &format!("/v1/admin/audit?limit=2&cursor={next}"),
            &admin.access,
        )
        .await;
    assert_eq!(page["items"][0]["id"], one["id"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let about_ana = app
        .get_json(
            &format!("/v1/admin/audit?target_id={}", ana.id),
            &admin.access,
        )
        .await;
    let ids: Vec<&Value> = about_ana["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, vec![&three["id"], &one["id"]]);
    let by_admin = app
        .get_json(
            &format!("/v1/admin/audit?actor_id={}", admin.id),
            &admin.access,
        )
        .await;
    assert_eq!(by_admin["items"].as_array().expect("items").len(), 1);
    let resp = app
        .get_authed("/v1/admin/audit?cursor=forged", &admin.access)
        .await;
    assert_problem(resp, 400, "bad-request").await;
}

#[tokio::test]
async fn a_report_outlives_the_erasure_of_either_person_naming_nobody() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (ana, max) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&ana, &max).await;
    let mut m = ChatClient::connect(&gateway.url, &max).await;
    m.say(resonance, "g-1", "something rude").await;
    let answer = filed(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "harassment", "details": "he was rude",
               "resonance_id": resonance}),
    )
    .await;
    assert_eq!(answer["evidence_messages"], 1);
    let resp = app.delete_authed("/v1/me", &max.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        crate::privacy::rows_mentioning(&app, &max.id.to_string()).await,
        Vec::<String>::new()
    );
    // The report stays for the moderators: her words, no longer his messages nor his id.
    assert_eq!(
        app.sql_value::<String>(
            "SELECT concat_ws('|', reporter_id, reported_user_id, details,
                              evidence_ciphertext::text, status)
             FROM reports"
        )
        .await,
        Some(format!("{}|he was rude|dismissed", ana.id))
    );
    // When the reporter goes too, her words go with her; the report stays, naming nobody.
    let resp = app.delete_authed("/v1/me", &ana.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.sql_value::<String>(
            "SELECT concat_ws('|', reporter_id, reported_user_id, details, reason, status)
             FROM reports"
        )
        .await,
        Some("harassment|dismissed".to_owned())
    );
}

#[tokio::test]
async fn reports_about_staff_are_for_admins_and_every_change_is_audited() {
    let app = spawn_app().await;
    let moderator = with_role(&app, "moderator").await;
    let colleague = with_role(&app, "moderator").await;
    let admin = with_role(&app, "admin").await;
    let (ana, max) = (app.person(json!({})).await, app.person(json!({})).await);
    let about_colleague = filed(
        &app,
        &ana,
        json!({"user_id": colleague.id, "reason": "other"}),
    )
    .await;
    let about_moderator = filed(
        &app,
        &max,
        json!({"user_id": moderator.id, "reason": "other"}),
    )
    .await;
    let about_max = filed(&app, &ana, json!({"user_id": max.id, "reason": "spam"})).await;
    filed(&app, &ana, json!({"user_id": max.id, "reason": "scam"})).await;

    // A moderator sees only reports about ordinary people (one reporter counts once).
    let queue = app.get_json("/v1/admin/reports", &moderator.access).await;
    let ids: Vec<&Value> = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], &about_max["id"]);
    assert_eq!(queue["items"][0]["open_reports_about_user"], 1);
    for report in [&about_colleague, &about_moderator] {
        let path = format!("/v1/admin/reports/{}", report["id"].as_str().expect("id"));
        assert_problem(
            app.get_authed(&path, &moderator.access).await,
            403,
            "insufficient-role",
        )
        .await;
        let resp = app
            .patch_authed(&path, &moderator.access, json!({"status": "dismissed"}))
            .await;
        assert_problem(resp, 403, "insufficient-role").await;
    }
    // Admins see them all, but not one about themselves... there is none here; the colleague's is theirs.
    let queue = app.get_json("/v1/admin/reports", &admin.access).await;
    assert_eq!(queue["items"].as_array().expect("items").len(), 4);
    let path = format!(
        "/v1/admin/reports/{}",
        about_colleague["id"].as_str().expect("id")
    );
    let resp = app
        .patch_authed(
            &path,
            &admin.access,
            json!({"status": "dismissed", "note": "nothing"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // People without the role cannot read or change a report either.
    let path = format!(
        "/v1/admin/reports/{}",
        about_max["id"].as_str().expect("id")
    );
    assert_problem(
        app.get_authed(&path, &ana.access).await,
        403,
        "insufficient-role",
    )
    .await;
    let resp = app
        .patch_authed(&path, &ana.access, json!({"status": "dismissed"}))
        .await;
    assert_problem(resp, 403, "insufficient-role").await;
    // `actioned` comes from an action, not a PATCH; a dismissed report leaves the queue.
    let resp = app
        .patch_authed(&path, &moderator.access, json!({"status": "actioned"}))
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "status");
    let resp = app
        .patch_authed(
            &path,
            &moderator.access,
            json!({"status": "dismissed", "assignee_id": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let queue = app.get_json("/v1/admin/reports", &moderator.access).await;
    assert_eq!(queue["items"].as_array().expect("items").len(), 1);
    // The trail names who changed what, about whom; the person's export does not show it.
    let trail = app
        .get_json(
            &format!("/v1/admin/audit?actor_id={}", moderator.id),
            &admin.access,
        )
        .await;
    assert_eq!(trail["items"][0]["action"], "report_update");
    assert_eq!(trail["items"][0]["target_id"], max.id.to_string());
    assert_eq!(trail["items"][0]["report_id"], about_max["id"]);
    assert_eq!(trail["items"][0]["reason"], "status: dismissed; unassigned");
    let export = app.get_json("/v1/me/export", &max.access).await;
    assert_eq!(export["moderation"], json!([]));
}

#[tokio::test]
async fn evidence_never_holds_a_message_past_its_24_hours() {
    let app = spawn_app().await;
    let (ana, max) = (app.person(json!({})).await, app.person(json!({})).await);
    let resonance = app.resonance(&ana, &max).await;
    // One message past its 24 hours that no trim has removed yet, one fresh.
    for (at, body) in [
        (
            chrono::Utc::now() - chrono::Duration::hours(25),
            "yesterday",
        ),
        (chrono::Utc::now(), "today"),
    ] {
        let _: String = fred::prelude::StreamsInterface::xadd(
            &app.state.redis,
            app.state.keys.chat_stream(&resonance),
            false,
            None,
            format!("{}-0", at.timestamp_millis()),
            vec![
                ("s", max.id.to_string()),
                ("c", body.to_owned()),
                ("b", body.to_owned()),
                ("t", at.to_rfc3339()),
            ],
        )
        .await
        .expect("xadd");
    }
    let answer = filed(
        &app,
        &ana,
        json!({"user_id": max.id, "reason": "harassment", "resonance_id": resonance}),
    )
    .await;
    assert_eq!(answer["evidence_messages"], 1);
}
