//! Access-token verification: what a client or an attacker can send.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use entities::auth::{AccessClaims, Role, AUDIENCE, ISSUER};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// Signs a token with the app's real key after `edit` changed its claims.
pub fn forge(
    app: &TestApp,
    user: Uuid,
    session: Uuid,
    edit: impl FnOnce(&mut AccessClaims),
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = AccessClaims {
        sub: user,
        sid: session,
        role: Role::User,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + 600,
        auth_time: now,
        jti: Uuid::new_v4(),
    };
    edit(&mut claims);
    app.state.jwt.issue(&claims).expect("sign")
}

#[tokio::test]
async fn no_token_is_a_401_problem() {
    let app = spawn_app().await;
    let resp = app.get("/v1/me").await;
    assert_problem(resp, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_expired_token_says_so() {
    let app = spawn_app().await;
    let user = app.register().await;
    let expired = forge(&app, user.id, user.session_id, |c| {
        c.iat -= 3600;
        c.exp = c.iat + 900;
    });
    assert_problem(
        app.get_authed("/v1/me", &expired).await,
        401,
        "token-expired",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let app = spawn_app().await;
    let user = app.register().await;
    let other = app.register().await;
    // Swap in another user's id, keep the signature.
    let parts: Vec<&str> = user.access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&B64URL.decode(parts[1]).expect("b64")).expect("json");
    claims["sub"] = json!(other.id);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(claims.to_string()),
        parts[2]
    );

    assert_problem(
        app.get_authed("/v1/me", &tampered).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get_authed("/v1/me", "not.a.jwt").await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn alg_none_and_hmac_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.register().await;
    let payload = user.access.split('.').nth(1).expect("payload").to_owned();
    let kid = app.state.jwt.jwks().keys[0].kid.clone();

    let none_header = B64URL.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let unsigned = format!("{none_header}.{payload}.");
    assert_problem(
        app.get_authed("/v1/me", &unsigned).await,
        401,
        "unauthorized",
    )
    .await;

    // The classic confusion: HS256 keyed with the public key.
    let x = app.state.jwt.jwks().keys[0].x.clone();
    let claims: Value =
        serde_json::from_slice(&B64URL.decode(&payload).expect("b64")).expect("json");
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    let hmac = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .expect("sign");
    assert_problem(app.get_authed("/v1/me", &hmac).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn tokens_for_another_audience_or_key_are_refused() {
    let app = spawn_app().await;
    let user = app.register().await;
    let wrong_aud = forge(&app, user.id, user.session_id, |c| {
        c.aud = "someone-else".into()
    });
    assert_problem(
        app.get_authed("/v1/me", &wrong_aud).await,
        401,
        "unauthorized",
    )
    .await;

    let foreign = jsonwebtoken::EncodingKey::from_ed_der(&ed25519_pkcs8([9u8; 32]));
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some(app.state.jwt.jwks().keys[0].kid.clone());
    let claims: Value = serde_json::from_slice(
        &B64URL
            .decode(user.access.split('.').nth(1).expect("p"))
            .expect("b64"),
    )
    .expect("json");
    let forged = jsonwebtoken::encode(&header, &claims, &foreign).expect("sign");
    assert_problem(app.get_authed("/v1/me", &forged).await, 401, "unauthorized").await;
}

fn ed25519_pkcs8(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

#[tokio::test]
async fn a_partner_verifies_access_tokens_with_the_published_jwks() {
    let app = spawn_app().await;
    let user = app.register().await;

    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");

    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    let header = jsonwebtoken::decode_header(&user.access).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding = DecodingKey::from_ed_components(key["x"].as_str().expect("x")).expect("key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    let claims = jsonwebtoken::decode::<AccessClaims>(&user.access, &decoding, &validation)
        .expect("verifies")
        .claims;
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.sid, user.session_id);
    assert_eq!(claims.role, Role::User);
    assert!(claims.exp - claims.iat <= 900);
}

#[tokio::test]
async fn the_role_travels_in_the_token() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.sql(&format!(
        "UPDATE users SET role = 'moderator' WHERE id = '{}'",
        user.id
    ))
    .await;

    let body: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .expect("json");

    let payload = body["access_token"]
        .as_str()
        .expect("token")
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    let claims: Value =
        serde_json::from_slice(&B64URL.decode(payload).expect("b64")).expect("json");
    assert_eq!(claims["role"], "moderator");
    let me: Value = app
        .get_authed("/v1/me", body["access_token"].as_str().expect("t"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "moderator");
    assert_eq!(
        StatusCode::OK,
        app.get_authed("/v1/me", &user.access).await.status()
    );
}

/// Every operation the spec marks as authenticated, as `(method, path)` with ids filled in.
fn secured_operations() -> Vec<(reqwest::Method, String)> {
    let spec: Value =
        serde_json::from_str(&api::openapi::spec_json().expect("spec")).expect("json");
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if op.get("security").is_some() {
                let concrete = path
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            Uuid::new_v4().to_string()
                        } else {
                            s.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((method.to_uppercase().parse().expect("method"), concrete));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_authenticated_operation_refuses_missing_and_revoked_tokens() {
    let app = spawn_app().await;
    let user = app.register().await;
    app.post_authed("/v1/auth/logout", &user.access, json!({}))
        .await;
    let operations = secured_operations();
    assert!(operations.len() >= 12, "{operations:?}");

    for (method, path) in operations {
        let anonymous = app
            .client
            .request(method.clone(), app.url(&path))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        let body = assert_problem(anonymous, 401, "unauthorized").await;
        assert!(body["detail"].is_string(), "{method} {path}");
        let revoked = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&user.access)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_problem(revoked, 401, "session-revoked").await;
    }
}

#[tokio::test]
async fn the_cli_creates_the_first_admin_who_can_then_log_in() {
    let app = spawn_app().await;

    let out = app.run_cli(&[
        "create-admin",
        "--email",
        "Root@Example.com",
        "--password",
        "a-long-admin-password",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("created"));

    let body: Value = app
        .login("root@example.com", "a-long-admin-password")
        .await
        .json()
        .await
        .expect("json");
    let me: Value = app
        .get_authed("/v1/me", body["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "admin");

    // Run again as moderator on the same address: the account is promoted (here, demoted), not duplicated.
    let out = app.run_cli(&[
        "create-admin",
        "--email",
        "root@example.com",
        "--password",
        "a-long-admin-password",
        "--role",
        "moderator",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("promoted"));
    let users: i64 = app
        .sql_value("SELECT count(*) FROM users")
        .await
        .expect("count");
    assert_eq!(users, 1);
}
