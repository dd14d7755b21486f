//! The process: configuration errors, graceful shutdown on SIGTERM, migrations, the worker.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::helpers::{drop_database, fresh_database, pg_base, redis_url, spawn_app};

#[test]
fn a_bad_variable_stops_start_up_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_despacio-api"))
        .env("API_ADDR", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("API_ADDR"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_despacio-api"))
        .env("APP_ENV", "production")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_PRIVATE_KEY"));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let db = fresh_database().await;
    let outbox =
        std::env::temp_dir().join(format!("despacio-outbox-{}", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_despacio-api"))
        .env("DATABASE_URL", format!("{}/{db}", pg_base()))
        .env("REDIS_URL", redis_url())
        .env(
            "REDIS_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        )
        .env("API_ADDR", "127.0.0.1:0")
        .env("OUTBOX_DIR", &outbox)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let wait_for = |lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
                    needle: &str| {
        for line in lines.by_ref() {
            if line.expect("line").contains(needle) {
                return;
            }
        }
        panic!("the process ended without logging `{needle}`");
    };
    let addr = crate::helpers::listening_addr(&mut lines, "despacio-api listening");

    // A request whose body has not fully arrived yet.
    let body = br#"{"email":"late@example.com","password":"slow-and-steady-2026"}"#;
    let mut stream = TcpStream::connect(addr.as_str()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(stream, "POST /v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).expect("write");
    stream.write_all(&body[..10]).expect("write");
    stream.flush().expect("flush");
    // SIGTERM only once the server holds the request (a connection still in the listen backlog
    // is not in flight): the in-flight gauge counts it and the scrape itself.
    let in_flight = || {
        let mut scrape = TcpStream::connect(addr.as_str()).expect("connect");
        write!(
            scrape,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut text = String::new();
        let _ = scrape.read_to_string(&mut text);
        text.lines()
            .find_map(|l| l.strip_prefix("despacio_http_requests_in_flight "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while in_flight() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never took the request"
        );
        std::thread::yield_now();
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for(&mut lines, "shutdown signal received");

    stream.write_all(&body[10..]).expect("finish body");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let exit = child.wait().expect("exit");
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(outbox);
    drop_database(db);
}

/// A new database with no migration applied (for migration tests), and a connection to it.
async fn empty_database() -> (String, DatabaseConnection) {
    let name = format!("despacio_mig_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", pg_base()))
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create");
    let db = Database::connect(format!("{}/{name}", pg_base()))
        .await
        .expect("connect");
    (name, db)
}

#[tokio::test]
async fn migrations_roll_back_and_forward_cleanly() {
    let (name, db) = empty_database().await;

    migration::Migrator::up(&db, None).await.expect("up");
    let gist: Option<i64> = db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'profiles' AND indexdef LIKE '%USING gist (location)%'".to_owned(),
        ))
        .await
        .expect("query")
        .and_then(|r| r.try_get_by_index(0).ok());
    assert_eq!(gist, Some(1));
    let location_type: Option<String> = db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'profiles'::regclass AND attname = 'location'".to_owned(),
        ))
        .await
        .expect("query")
        .and_then(|r| r.try_get_by_index(0).ok());
    assert_eq!(location_type.as_deref(), Some("geography(Point,4326)"));

    migration::Migrator::down(&db, None).await.expect("down");
    migration::Migrator::up(&db, None).await.expect("up again");
    db.close().await.expect("close");
    drop_database(name);
}

#[tokio::test]
async fn one_resonance_row_per_pair_is_a_database_guarantee() {
    let app = spawn_app().await;
    let a = app.register().await;
    let b = app.register().await;
    let (low, high) = if a.id < b.id {
        (a.id, b.id)
    } else {
        (b.id, a.id)
    };
    app.sql(&format!(
        "INSERT INTO resonances (id, user_a, user_b) VALUES ('{}', '{low}', '{high}')",
        uuid::Uuid::new_v4()
    ))
    .await;

    let duplicate = app
        .db
        .execute_unprepared(&format!(
            "INSERT INTO resonances (id, user_a, user_b) VALUES ('{}', '{low}', '{high}')",
            uuid::Uuid::new_v4()
        ))
        .await;
    let reversed = app
        .db
        .execute_unprepared(&format!(
            "INSERT INTO resonances (id, user_a, user_b) VALUES ('{}', '{high}', '{low}')",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert!(duplicate.is_err() && reversed.is_err());
}

#[tokio::test]
async fn the_worker_sweeps_expired_links_and_old_sessions() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(
        "INSERT INTO magic_links (id, token_hash, email_hash, email_ciphertext, expires_at)
             VALUES (gen_random_uuid(), 'a', 'b', 'c', now() - interval '2 days'),
                    (gen_random_uuid(), 'd', 'e', 'f', now() + interval '10 minutes')",
    )
    .await;
    app.sql(&format!(
        "UPDATE sessions SET revoked_at = now() - interval '8 days' WHERE id = '{}'",
        user.session_id
    ))
    .await;

    let removed = api::worker::sweep(&app.db).await.expect("sweep");

    assert_eq!(removed, 2);
    let links: i64 = app
        .sql_value("SELECT count(*) FROM magic_links")
        .await
        .expect("count");
    assert_eq!(links, 1);
    let refresh: i64 = app
        .sql_value("SELECT count(*) FROM refresh_tokens")
        .await
        .expect("count");
    assert_eq!(refresh, 0);
}

#[tokio::test]
async fn the_discovery_mirror_migration_copies_existing_rows_and_triggers_keep_them_exact() {
    let (name, db) = empty_database().await;
    let mirror = |db: DatabaseConnection| async move {
        db.query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT array_to_string(pref_genders, ',') || '|' || pref_age_min || '|' || pref_age_max || '|'
                    || pref_max_distance_km || '|' || account_status
                    || '|' || coalesce(to_char(suspended_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-')
                    || '|' || coalesce(incognito::text, '-')
                    || '|' || coalesce(to_char(snoozed_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-')
             FROM profiles"
                .to_owned(),
        ))
        .await
        .expect("query")
        .and_then(|r| r.try_get_by_index::<Option<String>>(0).ok())
        .flatten()
    };

    // A person who exists before the mirror (migrations 1–9 only).
    migration::Migrator::up(&db, Some(9))
        .await
        .expect("up to 9");
    db.execute_unprepared(
        "INSERT INTO users (id, email_hash, email_ciphertext, status, suspended_until)
           VALUES ('00000000-0000-0000-0000-00000000000a', '\\x01', '\\x01', 'suspended', '2099-01-01T00:00:00Z');
         INSERT INTO profiles (user_id, display_name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Ana');
         INSERT INTO preferences (user_id, age_min, age_max, max_distance_km, genders)
           VALUES ('00000000-0000-0000-0000-00000000000a', 25, 40, 30, '{woman,man}');
         INSERT INTO settings (user_id, incognito, snoozed_until)
           VALUES ('00000000-0000-0000-0000-00000000000a', true, '2098-01-01T00:00:00Z');",
    )
    .await
    .expect("seed");
    migration::Migrator::up(&db, None).await.expect("up");
    assert_eq!(
        mirror(db.clone()).await.as_deref(),
        Some("woman,man|25|40|30|suspended|2099-01-01|true|2098-01-01")
    );

    // Later writes to any source row reach the mirror in the same statement.
    db.execute_unprepared(
        "UPDATE users SET status = 'active', suspended_until = NULL;
         UPDATE preferences SET genders = '{non_binary}', max_distance_km = 80;
         UPDATE settings SET incognito = false, snoozed_until = NULL;",
    )
    .await
    .expect("update");
    assert_eq!(
        mirror(db.clone()).await.as_deref(),
        Some("non_binary|25|40|80|active|-|false|-")
    );
    db.execute_unprepared("DELETE FROM settings")
        .await
        .expect("delete");
    assert_eq!(
        mirror(db.clone()).await.as_deref(),
        Some("non_binary|25|40|80|active|-|-|-"),
        "no settings row: no mirrored settings (discovery then leaves the person out)"
    );

    db.close().await.expect("close");
    drop_database(name);
}
