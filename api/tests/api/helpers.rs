//! `spawn_app()`: a real API on a random port, over its own PostgreSQL database (cloned from a
//! migrated template) and its own Redis key prefix, with its own outbox folder.
//!
//! Environment: `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`, no database
//! part) and `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`).
use std::{collections::HashMap, path::PathBuf, time::Duration};

use api::{config::Settings, startup::Application, state::AppState};
use reqwest::{header::HeaderMap, Response, StatusCode};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

pub fn pg_base() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn admin_connection() -> DatabaseConnection {
    let mut options = ConnectOptions::new(format!("{}/postgres", pg_base()));
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options)
        .await
        .expect("connect to the postgres maintenance database")
}

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

/// The migrated template database, built once per migration list (under an advisory lock, so
/// parallel test processes build it once).
async fn template() -> String {
    let name = format!("despacio_tpl_{}", migration::fingerprint());
    let admin = admin_connection().await;
    exec(&admin, "SELECT pg_advisory_lock(815001)")
        .await
        .expect("lock");
    let exists = admin
        .query_one(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT 1 AS one FROM pg_database WHERE datname = '{name}'"),
        ))
        .await
        .expect("query")
        .is_some();
    if !exists {
        let building = format!("{name}_building");
        exec(
            &admin,
            &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
        )
        .await
        .expect("drop");
        exec(&admin, &format!("CREATE DATABASE {building}"))
            .await
            .expect("create template");
        {
            let mut options = ConnectOptions::new(format!("{}/{building}", pg_base()));
            options.max_connections(1).sqlx_logging(false);
            let db = Database::connect(options).await.expect("connect template");
            api::startup::migrate(&db).await.expect("migrate template");
            db.close().await.expect("close template");
        }
        exec(
            &admin,
            &format!("ALTER DATABASE {building} RENAME TO {name}"),
        )
        .await
        .expect("rename template");
    }
    exec(&admin, "SELECT pg_advisory_unlock(815001)")
        .await
        .expect("unlock");
    name
}

/// A fresh database cloned from the template.
pub async fn fresh_database() -> String {
    let template = template().await;
    let name = format!("despacio_test_{}", Uuid::new_v4().simple());
    let admin = admin_connection().await;
    exec(
        &admin,
        &format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await
    .expect("clone template");
    name
}

/// Drops a test database (from a plain thread, so it also works while a runtime shuts down).
pub fn drop_database(name: String) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let admin = admin_connection().await;
                let _ = exec(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
            });
        }
    })
    .join();
}

pub struct TestApp {
    pub address: String,
    pub prefix: String,
    pub extra: Vec<(String, String)>,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub db_name: String,
    pub outbox: PathBuf,
    pub state: AppState,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop_database(self.db_name.clone());
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

/// A registered person.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
    pub session_id: Uuid,
}

/// Settings for a test app; `extra` overrides or adds variables.
pub fn test_settings(
    db_name: &str,
    outbox: &std::path::Path,
    prefix: &str,
    extra: &[(&str, &str)],
) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), format!("{}/{db_name}", pg_base())),
        ("REDIS_URL".into(), redis_url()),
        ("REDIS_PREFIX".into(), prefix.to_owned()),
        ("API_ADDR".into(), "127.0.0.1:0".into()),
        ("OUTBOX_DIR".into(), outbox.display().to_string()),
        // Photos go under the test's own folder (removed with it).
        (
            "OBJECT_STORE_URL".into(),
            outbox.join("photos").display().to_string(),
        ),
        ("AUTO_MIGRATE".into(), "false".into()),
        ("PASSWORD_HASH_CONCURRENCY".into(), "2".into()),
        // Tests register many people from one address; tests of this limit set their own.
        ("RATE_LIMITS".into(), "register_per_ip=1000/3600".into()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the API with extra environment variables (for instance `RATE_LIMITS`).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        api::telemetry::init(api::config::LogFormat::Pretty);
    }
    api::telemetry::init_tap_only();
    let db_name = fresh_database().await;
    let outbox = std::env::temp_dir().join(format!("despacio-outbox-{}", Uuid::new_v4().simple()));
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let settings = test_settings(&db_name, &outbox, &prefix, extra);
    let state = AppState::build(settings).await.expect("state");
    let app = Application::with_state(state.clone()).await.expect("bind");
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        prefix: prefix.clone(),
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        db: state.db.clone(),
        db_name,
        outbox,

        state,
    }
}

pub fn unique_email() -> String {
    format!("person-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    /// Another API instance (its own server, connections and Redis subscriber) on the same
    /// database and Redis prefix, as a second pod would be. Returns its base URL.
    pub async fn second_instance(&self) -> String {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let settings = test_settings(&self.db_name, &self.outbox, &self.prefix, &extra);
        let state = AppState::build(settings).await.expect("state");
        let app = Application::with_state(state).await.expect("bind");
        let address = format!("http://{}", app.address());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        address
    }

    /// Liked-by helper: `from` swipes `action` on `to`; returns the JSON answer.
    pub async fn swipe(&self, from: &TestUser, to: &TestUser, action: &str) -> Value {
        let resp = self
            .post_authed(
                "/v1/swipes",
                &from.access,
                json!({"target_id": to.id, "action": action}),
            )
            .await;
        assert!(
            resp.status().is_success(),
            "swipe {action}: {}",
            resp.status()
        );
        resp.json().await.expect("json")
    }

    /// GET as JSON, asserting 200.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let resp = self.get_authed(path, token).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.expect("json")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// An anonymous GET.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_authed(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_authed(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_authed(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Registers a new person with a unique email.
    pub async fn register(&self) -> TestUser {
        self.register_as(&unique_email(), "slow-and-steady-2026")
            .await
    }

    pub async fn register_as(&self, email: &str, password: &str) -> TestUser {
        let resp = self
            .post(
                "/v1/auth/register",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "register {email}");
        let body: Value = resp.json().await.expect("json");
        TestUser {
            id: body["user_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("user_id"),
            email: email.to_lowercase(),
            password: password.into(),
            access: body["access_token"].as_str().expect("access_token").into(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .into(),
            session_id: body["session_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("session_id"),
        }
    }

    /// Logs in and returns the token response.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// A registered person with a complete profile at the given place (non-binary, born
    /// 1992, seeking everyone 18–99 within 50 km).
    pub async fn person_at(&self, latitude: f64, longitude: f64) -> TestUser {
        self.person(json!({"location": {"latitude": latitude, "longitude": longitude}}))
            .await
    }

    /// A registered person whose profile is the default one with `changes` applied.
    pub async fn person(&self, changes: Value) -> TestUser {
        let user = self.register().await;
        let mut profile = json!({
            "display_name": "Sam", "birthdate": "1992-03-04", "gender": "non_binary",
            "intentions": ["long_term", "friendship"],
            "location": {"latitude": 48.8566, "longitude": 2.3522}
        });
        for (k, v) in changes.as_object().expect("object") {
            profile[k] = v.clone();
        }
        let resp = self
            .patch_authed("/v1/me/profile", &user.access, profile)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        user
    }

    /// The mails written to the outbox for `email`, oldest first.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return vec![];
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|text| text.contains(&format!("To: {email}")))
            .collect()
    }

    /// The token of the latest sign-in link mailed to `email`.
    pub fn magic_token(&self, email: &str) -> String {
        let mail = self.mails_to(email).pop().expect("a mail in the outbox");
        let start = mail.find("token=").expect("link in mail") + "token=".len();
        mail[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    /// Runs SQL against the test database.
    pub async fn sql(&self, sql: &str) {
        self.db.execute_unprepared(sql).await.expect("sql");
    }

    /// One value from a query.
    pub async fn sql_value<T: sea_orm::TryGetable>(&self, sql: &str) -> Option<T> {
        let row = self
            .db
            .query_one(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                sql.to_owned(),
            ))
            .await
            .expect("query")?;
        row.try_get_by_index(0).ok()
    }
}

/// Asserts a problem+json answer and returns its body.
pub async fn assert_problem(resp: Response, status: u16, type_suffix: &str) -> Value {
    let actual = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(actual, status, "status; body: {body}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {body}"
    );
    let ty = body["type"].as_str().unwrap_or_default();
    assert!(
        ty.ends_with(type_suffix),
        "type `{ty}` should end with `{type_suffix}`; body: {body}"
    );
    assert_eq!(body["status"], status, "status field; body: {body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "title and detail; body: {body}"
    );
    body
}

/// Header value as text.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A Server-Sent Events reader.
pub struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One SSE frame: its `event:`, `id:` and `data:` (JSON), or a comment.
#[derive(Debug, Clone)]
pub struct SseFrame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: Option<Value>,
    pub comment: bool,
}

impl Sse {
    /// Opens `GET /v1/events` on `base` with `token` (and `Last-Event-ID` when given).
    pub async fn open(base: &str, token: &str, last_event_id: Option<&str>) -> Sse {
        Self::open_at(base, "/v1/events", token, last_event_id).await
    }

    /// Opens the event stream at `path` on `base` with `token`.
    pub async fn open_at(base: &str, path: &str, token: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("events");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(header(resp.headers(), "content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream"));
        Sse {
            stream: Box::pin(resp.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next frame (events and heartbeat comments), within 10 s.
    pub async fn next_frame(&mut self) -> SseFrame {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = SseFrame {
                    event: None,
                    id: None,
                    data: None,
                    comment: false,
                };
                for line in block.lines() {
                    if line.starts_with(':') {
                        frame.comment = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data = serde_json::from_str(v.trim()).ok();
                    }
                }
                return frame;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an SSE frame within 10 s")
                .expect("stream open")
                .expect("chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits (10 s at most) for the server to end the stream, skipping heartbeats; panics on
    /// an event.
    pub async fn ends(&mut self) {
        use futures_util::StreamExt;
        loop {
            assert!(
                !self.buffer.contains("data:"),
                "an event after the end was expected: {}",
                self.buffer
            );
            self.buffer.clear();
            match tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("the stream to end within 10 s")
            {
                None => return,
                Some(chunk) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk.expect("chunk"))),
            }
        }
    }

    /// The next event, skipping heartbeats.
    pub async fn next_event(&mut self) -> SseFrame {
        loop {
            let frame = self.next_frame().await;
            if !frame.comment || frame.event.is_some() {
                return frame;
            }
        }
    }

    /// The next event of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> SseFrame {
        loop {
            let frame = self.next_event().await;
            if frame.event.as_deref() == Some(kind) {
                return frame;
            }
        }
    }
}

/// Reads a process's JSON log lines until the one containing `needle`, and returns its `addr`
/// field: processes bind port 0 themselves, so no two tests ever race for a port.
pub fn listening_addr(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> String {
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.contains(needle) {
            let value: Value = serde_json::from_str(&line).expect("a JSON log line");
            return value["fields"]["addr"]
                .as_str()
                .or_else(|| value["addr"].as_str())
                .unwrap_or_else(|| panic!("no addr in {line}"))
                .to_owned();
        }
    }
    panic!("the process ended without logging `{needle}`");
}

/// A second API as a real separate process (the `despacio-api` binary) on the same database and
/// Redis prefix. Killed when dropped.
pub struct ApiProcess {
    pub base: String,
    child: std::process::Child,
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// Runs a `despacio-api` command against this app's database and Redis.
    pub fn run_cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_despacio-api"))
            .args(args)
            .env("DATABASE_URL", format!("{}/{}", pg_base(), self.db_name))
            .env("REDIS_URL", redis_url())
            .env("REDIS_PREFIX", &self.prefix)
            .env("OUTBOX_DIR", &self.outbox)
            .env("AUTO_MIGRATE", "false")
            .env("RUST_LOG", "error")
            .output()
            .expect("run despacio-api")
    }

    pub fn spawn_process(&self) -> ApiProcess {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_despacio-api"));
        command
            .env("DATABASE_URL", format!("{}/{}", pg_base(), self.db_name))
            .env("REDIS_URL", redis_url())
            .env("REDIS_PREFIX", &self.prefix)
            .env("API_ADDR", "127.0.0.1:0")
            .env("OUTBOX_DIR", &self.outbox)
            .env("AUTO_MIGRATE", "false")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in &self.extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn despacio-api");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let addr = listening_addr(&mut lines, "despacio-api listening");
        // Keep draining the output so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ApiProcess {
            base: format!("http://{addr}"),
            child,
        }
    }
}
