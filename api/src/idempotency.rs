//! `Idempotency-Key` on every POST: a retried request gets the first answer again instead of
//! acting twice (the IETF `Idempotency-Key` header draft).
//!
//! The key is scoped to the caller (the user of a valid bearer token, else the client IP) and
//! bound to a fingerprint of the request (method, path, body). The first request claims the key
//! in Redis; its answer (unless 5xx or 429, which may be retried) is kept 24 hours and replayed
//! with `Idempotent-Replayed: true`. While the first is still running, a retry gets 409
//! `idempotency-key-in-use`; the same key with a different request gets 422
//! `idempotency-key-reused`.
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use fred::prelude::KeysInterface;
use poem::{
    http::{header, HeaderValue, Method, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::AppError, state::AppState};

pub const HEADER: &str = "idempotency-key";
/// How long answers are kept.
pub const TTL_S: i64 = 86_400;
/// How long a claim lives if its request never finishes.
const PENDING_TTL_S: i64 = 60;

#[derive(Serialize, Deserialize)]
#[serde(tag = "state")]
enum Stored {
    Pending {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        status: u16,
        content_type: Option<String>,
        body: String,
    },
}

pub struct Idempotency;

impl<E: Endpoint> Middleware<E> for Idempotency {
    type Output = IdempotencyEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        IdempotencyEndpoint(ep)
    }
}

pub struct IdempotencyEndpoint<E>(E);

fn fail(err: AppError) -> Result<Response> {
    Ok(err.into_response())
}

impl<E: Endpoint> Endpoint for IdempotencyEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let key = req
            .headers()
            .get(HEADER)
            .map(|v| v.to_str().map(str::to_owned));
        let (Some(key), true) = (key, req.method() == Method::POST) else {
            return self.0.call(req).await.map(IntoResponse::into_response);
        };
        let Some(state) = req.data::<AppState>().cloned() else {
            return self.0.call(req).await.map(IntoResponse::into_response);
        };
        let key = match key {
            Ok(k) if !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()) => {
                k
            }
            _ => {
                return fail(AppError::BadRequest {
                    detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                    field: Some("Idempotency-Key".into()),
                })
            }
        };
        let scope = scope(&state, &req).await;
        let body = req.take_body().into_vec().await.unwrap_or_default();
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(req.method().as_str());
            h.update(b" ");
            h.update(req.uri().path());
            h.update(b"\n");
            h.update(&body);
            B64.encode(h.finalize())
        };
        req.set_body(Body::from(body));
        let redis_key = state.keys.idempotency(&scope, &key);
        let pending = serde_json::to_string(&Stored::Pending {
            fingerprint: fingerprint.clone(),
        })
        .unwrap_or_default();
        let claimed: Option<String> = match state
            .redis
            .set(
                &redis_key,
                pending,
                Some(fred::types::Expiration::EX(PENDING_TTL_S)),
                Some(fred::types::SetOptions::NX),
                false,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => return fail(e.into()),
        };
        if claimed.is_none() {
            let stored: Option<String> = match state.redis.get(&redis_key).await {
                Ok(v) => v,
                Err(e) => return fail(e.into()),
            };
            return match stored.and_then(|s| serde_json::from_str::<Stored>(&s).ok()) {
                Some(Stored::Done { fingerprint: f, status, content_type, body }) if f == fingerprint => {
                    let mut resp = Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
                    if let Some(ct) = content_type {
                        resp = resp.content_type(ct);
                    }
                    Ok(resp.header("idempotent-replayed", "true").body(B64.decode(body).unwrap_or_default()))
                }
                Some(Stored::Pending { fingerprint: f }) if f == fingerprint => fail(AppError::Conflict {
                    kind: "idempotency-key-in-use",
                    detail: "a request with this Idempotency-Key is still being processed; retry shortly".into(),
                }),
                Some(_) => fail(AppError::invalid("Idempotency-Key", "reused", "this key was used for a different request")),
                // The claim expired between SET and GET: act as a first request would.
                None => self.0.call(req).await.map(IntoResponse::into_response),
            };
        }

        let mut resp = self
            .0
            .call(req)
            .await
            .map(IntoResponse::into_response)
            .unwrap_or_else(|e| e.into_response());
        let status = resp.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let _: std::result::Result<i64, _> = state.redis.del(&redis_key).await;
            return Ok(resp);
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.take_body().into_vec().await.unwrap_or_default();
        let done = Stored::Done {
            fingerprint,
            status: status.as_u16(),
            content_type,
            body: B64.encode(&bytes),
        };
        let _: std::result::Result<(), _> = state
            .redis
            .set(
                &redis_key,
                serde_json::to_string(&done).unwrap_or_default(),
                Some(fred::types::Expiration::EX(TTL_S)),
                None,
                false,
            )
            .await;
        resp.set_body(bytes);
        if let Ok(v) = HeaderValue::from_str("false") {
            resp.headers_mut().insert("idempotent-replayed", v);
        }
        Ok(resp)
    }
}

/// The caller: the user of a valid bearer token, else the client address.
async fn scope(state: &AppState, req: &Request) -> String {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(token) = bearer {
        if let Ok(claims) = state.jwt.verify(&token) {
            return format!("user:{}", claims.sub);
        }
    }
    format!("ip:{}", crate::auth::routes::client_info(state, req).ip)
}
