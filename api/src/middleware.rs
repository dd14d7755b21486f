//! The outermost layer of every request: request id, body-size limit, problem+json for every
//! error, metrics and one log line.
use std::{sync::Arc, time::Instant};

use poem::{
    http::{header, HeaderValue},
    Body, Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result,
};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::{
    error::{problem_from_poem_error, AppError, FieldHint},
    metrics::Metrics,
    spec_index::SpecIndex,
};

pub const REQUEST_ID: &str = "x-request-id";

/// See the module docs.
pub struct Observe {
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub spec: Arc<SpecIndex>,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            metrics: self.metrics.clone(),
            max_body_bytes: self.max_body_bytes,
            spec: self.spec.clone(),
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    spec: Arc<SpecIndex>,
}

/// Resolves field names for one failed request.
struct Hint<'a> {
    spec: &'a SpecIndex,
    method: &'a str,
    route: Option<&'a str>,
    body: Option<&'a [u8]>,
}

impl FieldHint for Hint<'_> {
    fn path_param(&self, internal: &str) -> Option<String> {
        self.spec.param_name(self.method, self.route?, internal)
    }

    fn body_field(&self) -> Option<(String, String)> {
        let body: serde_json::Value = serde_json::from_slice(self.body?).ok()?;
        self.spec.diagnose(self.method, self.route?, &body)
    }
}

/// A client's request id is kept when it is short and plain; otherwise a new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Refuses bodies over the limit, whether announced by `Content-Length` or streamed. JSON
/// bodies (small by that limit) are read here and kept, to name the faulty field if parsing fails.
async fn read_body(req: &mut Request, max: usize) -> Result<Option<Vec<u8>>, Response> {
    let too_large = || AppError::PayloadTooLarge { limit: max }.into_response();
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A declared length is enforced by the server as the body is read; a body of unknown length
    // (chunked, or any HTTP/2 request) is read here, up to the limit, whatever its type.
    if !json && length.is_some() {
        return Ok(None);
    }
    let mut buf = Vec::new();
    let mut reader = req.take_body().into_async_read().take(max as u64 + 1);
    if reader.read_to_end(&mut buf).await.is_err() {
        return Err(AppError::BadRequest {
            detail: "the request body could not be read".into(),
            field: None,
        }
        .into_response());
    }
    if buf.len() > max {
        return Err(too_large());
    }
    if !json {
        req.set_body(Body::from(buf));
        return Ok(None);
    }
    req.set_body(Body::from(buf.clone()));
    Ok(Some(buf))
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let started = Instant::now();
        let _in_flight = self.metrics.in_flight();
        let id = request_id(&req);
        let method = req.method().to_string();
        let span = tracing::info_span!("request", request_id = %id, method = %method, path = %req.uri().path());
        // Photo uploads are the one route with a larger body limit.
        let limit =
            if req.method() == poem::http::Method::POST && req.uri().path() == "/v1/me/photos" {
                crate::photos::processing::MAX_UPLOAD_BYTES + 64 * 1024
            } else {
                self.max_body_bytes
            };
        let (mut resp, route) = match read_body(&mut req, limit).await {
            Err(resp) => (resp, None),
            Ok(body) => match self.inner.call(req).instrument(span.clone()).await {
                Ok(resp) => {
                    let resp = resp.into_response();
                    let route = resp.data::<PathPattern>().map(|p| p.0.to_string());
                    (resp, route)
                }
                Err(err) => {
                    let route = err.data::<PathPattern>().map(|p| p.0.to_string());
                    let hint = Hint {
                        spec: &self.spec,
                        method: &method,
                        route: route.as_deref(),
                        body: body.as_deref(),
                    };
                    (problem_from_poem_error(err, &hint), route)
                }
            },
        };
        let status = resp.status().as_u16();
        // Label with the spec's template (`/v1/profiles/{user_id}`), not poem's internal one.
        let route = match route {
            Some(route) => self.spec.spec_path(&method, &route).unwrap_or(route),
            None => "unmatched".into(),
        };
        let elapsed = started.elapsed();
        self.metrics
            .observe(&method, &route, status, elapsed.as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID, value);
        }
        span.in_scope(|| {
            tracing::info!(status, route = %route, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
        });
        Ok(resp)
    }
}
