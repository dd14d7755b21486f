//! The outermost layer of every request: request id, body-size limit, problem+json for every
//! error, metrics and one log line.
use std::{sync::Arc, time::Instant};

use poem::{
    http::{header, HeaderValue},
    Body, PathPattern, Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::{
    error::{problem_from_poem_error, AppError},
    metrics::Metrics,
};

pub const REQUEST_ID: &str = "x-request-id";

/// See the module docs.
pub struct Observe {
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint { inner, metrics: self.metrics.clone(), max_body_bytes: self.max_body_bytes }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
}

/// A client's request id is kept when it is short and plain; otherwise a new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Refuses bodies over the limit, whether announced by `Content-Length` or streamed.
async fn limit_body(req: &mut Request, max: usize) -> Option<Response> {
    let too_large = || Some(AppError::PayloadTooLarge { limit: max }.into_response());
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        return if len > max as u64 { too_large() } else { None };
    }
    if !req.headers().contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    let mut buf = Vec::new();
    let mut reader = req.take_body().into_async_read().take(max as u64 + 1);
    if reader.read_to_end(&mut buf).await.is_err() {
        return Some(AppError::BadRequest { detail: "the request body could not be read".into(), field: None }.into_response());
    }
    if buf.len() > max {
        return too_large();
    }
    req.set_body(Body::from(buf));
    None
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let started = Instant::now();
        let id = request_id(&req);
        let method = req.method().to_string();
        let span = tracing::info_span!("request", request_id = %id, method = %method, path = %req.uri().path());
        let (mut resp, route) = match limit_body(&mut req, self.max_body_bytes).await {
            Some(resp) => (resp, None),
            None => match self.inner.call(req).instrument(span.clone()).await {
                Ok(resp) => {
                    let resp = resp.into_response();
                    let route = resp.data::<PathPattern>().map(|p| p.0.to_string());
                    (resp, route)
                }
                Err(err) => {
                    let route = err.data::<PathPattern>().map(|p| p.0.to_string());
                    (problem_from_poem_error(err), route)
                }
            },
        };
        let status = resp.status().as_u16();
        let route = route.unwrap_or_else(|| "unmatched".into());
        let elapsed = started.elapsed();
        self.metrics.observe(&method, &route, status, elapsed.as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID, value);
        }
        span.in_scope(|| {
            tracing::info!(status, route = %route, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
        });
        Ok(resp)
    }
}
