//! The gateway starts, answers its probes and stops on its shutdown signal.
use ws_gateway::{config::Settings, server::Gateway};

#[tokio::test]
async fn the_gateway_serves_its_probes_and_stops_gracefully() {
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let settings = Settings::from_lookup(|k| match k {
        "GATEWAY_ADDR" => Some("127.0.0.1:0".into()),
        "REDIS_URL" => Some(redis.clone()),
        _ => None,
    })
    .expect("settings");
    let gateway = Gateway::build(&settings).await.expect("build");
    let base = format!("http://{}", gateway.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let health: serde_json::Value = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("despacio_gateway_connections"),
        "{metrics}"
    );

    stop.send(()).expect("signal");
    server.await.expect("join").expect("clean stop");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "the listener is closed"
    );
}
