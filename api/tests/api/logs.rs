//! Live logs for admins: `GET /v1/admin/logs/stream` (the API instance's) and the gateway's
//! `subscribe_logs` frames (the gateway's).
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    admin::with_role,
    chat_client::ChatClient,
    helpers::{assert_problem, spawn_app, Sse},
};

#[tokio::test]
async fn admins_follow_the_api_logs_live_and_nobody_else_does() {
    let app = spawn_app().await;
    let admin = with_role(&app, "admin").await;
    let moderator = with_role(&app, "moderator").await;
    let resp = app
        .get_authed("/v1/admin/logs/stream", &moderator.access)
        .await;
    assert_problem(resp, 403, "insufficient-role").await;
    let resp = app
        .get_authed("/v1/admin/logs/stream?level=loud", &admin.access)
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);

    let mut logs = Sse::open_at(
        &app.address,
        "/v1/admin/logs/stream?level=info",
        &admin.access,
        None,
    )
    .await;
    // A request made now is logged, with its request id, and streamed.
    let request_id = format!("logs-{}", Uuid::new_v4().simple());
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &request_id)
        .send()
        .await
        .expect("healthz");
    assert!(resp.status().is_success());
    let line = loop {
        let frame = logs.next_of("log").await;
        let data = frame.data.expect("data");
        if data["spans"]["request_id"] == request_id.as_str() {
            break data;
        }
    };
    assert_eq!(line["level"], "info", "{line}");
    assert_eq!(line["message"], "request", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(line["at"].is_string(), "{line}");
}

#[tokio::test]
async fn admins_follow_a_gateways_logs_on_the_websocket() {
    let app = spawn_app().await;
    let gateway = app.spawn_gateway(&[]);
    let (ana, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    app.sql(&format!(
        "UPDATE users SET role = 'admin' WHERE id = '{}'",
        ana.id
    ))
    .await;
    let resonance = app.resonance(&ana, &bob).await;
    // Not an admin (whatever the token says): refused, connection kept.
    let mut b = ChatClient::connect(&gateway.url, &bob).await;
    b.send(json!({"type": "subscribe_logs"})).await;
    let refused = b.next_of("error", &[]).await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    b.send(json!({"type": "ping"})).await;
    b.next_of("pong", &[]).await;
    drop(b);

    let mut a = ChatClient::connect(&gateway.url, &ana).await;
    // (Sent raw: the test client refuses to send what the AsyncAPI document forbids.)
    a.send_raw(Message::Text(
        json!({"type": "subscribe_logs", "level": "loud"})
            .to_string()
            .into(),
    ))
    .await;
    let bad = a.next_of("error", &[]).await;
    assert_eq!(bad["field"], "level", "{bad}");
    a.send(json!({"type": "subscribe_logs", "level": "info"}))
        .await;
    assert_eq!(
        a.next_of("logs_subscribed", &["log"]).await["level"],
        "info"
    );
    // Bob is connected nowhere: the gateway logs that it hands the message to SSE.
    a.send(json!({"type": "send", "resonance_id": resonance, "client_id": "l-1", "body": "hello"}))
        .await;
    let mut acked = false;
    let mut logged: Option<Value> = None;
    while !(acked && logged.is_some()) {
        let frame = a.next().await;
        match frame["type"].as_str() {
            Some("ack") => acked = true,
            Some("log")
                if frame["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("recipient not connected")) =>
            {
                logged = Some(frame)
            }
            Some("log") | Some("presence") => {}
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    let line = logged.expect("log");
    assert_eq!(line["level"], "info", "{line}");
    assert_eq!(line["fields"]["resonance"], resonance.to_string(), "{line}");
    assert!(line["target"]
        .as_str()
        .is_some_and(|t| t.starts_with("ws_gateway")));
}
