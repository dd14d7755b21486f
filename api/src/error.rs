//! One error type for the whole API, answered as RFC 9457 `application/problem+json`.
//!
//! Handlers return `Result<T, ApiError<S>>`, where `S` is an [`ErrorSet`] listing the statuses the
//! operation can answer; the spec documents exactly those (plus 500), each with the [`Problem`]
//! schema. Inside, code uses [`AppError`] and `?`. Errors that poem or poem-openapi raise before a
//! handler runs (bad JSON, unknown fields, wrong content type, no such route, body too large) are
//! turned into the same problem shape by [`problem_from_poem_error`].
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{Example, ToJSON, Type},
    ApiResponse, Object,
};

/// Where problem `type` URIs start; the README lists every type.
pub const PROBLEM_BASE: &str = "https://despacio.app/problems/";

/// An RFC 9457 problem: what went wrong, for people and for programs.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(example)]
pub struct Problem {
    /// A URI naming the kind of problem; programs switch on its last segment
    /// (`validation-failed`, `token-expired`, `account-suspended`, ...).
    #[oai(rename = "type")]
    pub ty: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, in words.
    pub detail: String,
    /// The request field at fault, as a JSON path (`location.latitude`), when there is one.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// For `validation-failed`: every invalid field.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldProblem>>,
    /// For `rate-limited`: seconds to wait (also in the `Retry-After` header).
    #[oai(skip_serializing_if_is_none)]
    pub retry_after: Option<u64>,
    /// For `account-suspended`: when the suspension ends.
    #[oai(skip_serializing_if_is_none)]
    pub until: Option<DateTime<Utc>>,
}

impl Example for Problem {
    fn example() -> Self {
        Problem {
            ty: format!("{PROBLEM_BASE}validation-failed"),
            title: "Invalid input".into(),
            status: 422,
            detail: "`birthdate`: you must be at least 18 years old".into(),
            field: Some("birthdate".into()),
            errors: Some(vec![FieldProblem {
                field: "birthdate".into(),
                code: "underage".into(),
                message: "you must be at least 18 years old".into(),
            }]),
            retry_after: None,
            until: None,
        }
    }
}

/// One invalid field.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct FieldProblem {
    /// JSON path of the field (`email`, `location.latitude`).
    pub field: String,
    /// A stable machine-readable code (`length`, `range`, `email`, `underage`, ...).
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request cannot be read (bad parameter, bad cursor, ...).
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    /// 401: no valid credentials. `kind` is the problem type's slug.
    #[error("{detail}")]
    Unauthorized {
        kind: &'static str,
        detail: &'static str,
    },
    /// 403: authenticated but not allowed.
    #[error("{detail}")]
    Forbidden {
        kind: &'static str,
        detail: String,
        until: Option<DateTime<Utc>>,
    },
    /// 404: no such resource, or hidden from the caller.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409: conflicts with the current state.
    #[error("{detail}")]
    Conflict { kind: &'static str, detail: String },
    /// 410: something the client holds (a cursor) no longer applies.
    #[error("{detail}")]
    Gone { kind: &'static str, detail: String },
    /// 413: body over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: a media type we do not take (an upload's real format, or a `Content-Type`).
    #[error("{detail}")]
    UnsupportedMediaType { detail: String },
    /// 422: well-formed input with invalid values.
    #[error("invalid input")]
    Validation(Vec<FieldProblem>),
    /// 429: over a rate limit.
    #[error("rate limit {name} exceeded")]
    RateLimited {
        name: &'static str,
        limit: u64,
        period_s: u64,
        retry_after_s: u64,
    },
    /// 503: a dependency (Redis, PostgreSQL) does not answer.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 500: anything unexpected; logged with its cause chain, answered opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if database_unreachable(&err) {
            tracing::error!(error = %err, "database unreachable");
            return AppError::Unavailable("a backing service is unavailable; retry shortly");
        }
        AppError::Internal(anyhow::Error::new(err).context("database"))
    }
}

/// PostgreSQL could not be reached, or dropped the connection (the pool hands connections out
/// without a ping, so a restart surfaces here once per stale connection): a 503, not a 500.
/// (A connection lost during a `COMMIT` also lands here: the write may have happened, which is
/// why POSTs take an `Idempotency-Key`.)
fn database_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{sqlx::Error as Sqlx, DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e {
            Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
            // 57P01-03: the server is shutting down or restarting; 08xxx: connection exceptions
            // (but 08P01, a protocol violation, is our bug: a 500).
            Sqlx::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("57P") || (code.starts_with("08") && code != "08P01")
            }),
            _ => false,
        },
        _ => false,
    }
}

impl From<fred::error::Error> for AppError {
    fn from(err: fred::error::Error) -> Self {
        tracing::error!(error = %err, "redis error");
        AppError::Unavailable("a backing service is unavailable; retry shortly")
    }
}

impl From<crate::crypto::DecryptError> for AppError {
    fn from(err: crate::crypto::DecryptError) -> Self {
        AppError::Internal(anyhow::Error::new(err))
    }
}

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

impl AppError {
    /// A 400 about one field.
    pub fn bad_field(field: &str, detail: impl Into<String>) -> Self {
        AppError::BadRequest {
            detail: detail.into(),
            field: Some(field.to_owned()),
        }
    }

    /// A 422 about one field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldProblem {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Gone { .. } => StatusCode::GONE,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, title) = match self {
            AppError::BadRequest { .. } => ("bad-request", "Malformed request"),
            AppError::Unauthorized { kind, .. } => (*kind, "Not authenticated"),
            AppError::Forbidden { kind, .. } => (*kind, "Not allowed"),
            AppError::NotFound(_) => ("not-found", "Not found"),
            AppError::Conflict { kind, .. } => (*kind, "Conflict"),
            AppError::Gone { kind, .. } => (*kind, "Gone"),
            AppError::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            AppError::UnsupportedMediaType { .. } => {
                ("unsupported-media-type", "Unsupported media type")
            }
            AppError::Validation(_) => ("validation-failed", "Invalid input"),
            AppError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            AppError::Unavailable(_) => ("service-unavailable", "Service unavailable"),
            AppError::Internal(_) => ("internal", "Internal error"),
        };
        let mut problem = Problem {
            ty: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field: None,
            errors: None,
            retry_after: None,
            until: None,
        };
        match self {
            AppError::BadRequest { field, .. } => problem.field = field.clone(),
            AppError::UnsupportedMediaType { .. } => problem.field = Some("file".into()),
            AppError::Forbidden { until, .. } => problem.until = *until,
            AppError::Validation(errors) => {
                problem.field = errors.first().map(|e| e.field.clone());
                problem.detail = errors
                    .iter()
                    .map(|e| format!("`{}`: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                problem.errors = Some(errors.clone());
            }
            AppError::RateLimited { retry_after_s, .. } => {
                problem.detail = format!("too many requests; retry in {retry_after_s} s");
                problem.retry_after = Some(*retry_after_s);
            }
            AppError::Internal(_) => {
                problem.detail =
                    "an unexpected error occurred; the X-Request-Id header identifies it".into()
            }
            _ => {}
        }
        problem
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let problem = self.problem();
        let mut resp = problem_response(&problem);
        if let AppError::RateLimited {
            limit,
            period_s,
            retry_after_s,
            ..
        } = self
        {
            let headers = resp.headers_mut();
            let pairs = [
                ("retry-after", retry_after_s.to_string()),
                ("ratelimit-limit", limit.to_string()),
                ("ratelimit-remaining", "0".to_owned()),
                ("ratelimit-reset", retry_after_s.to_string()),
                ("ratelimit-policy", format!("{limit};w={period_s}")),
            ];
            for (name, value) in pairs {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
        }
        resp
    }
}

/// Renders a problem as an `application/problem+json` response.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(problem.to_json_string())
}

/// The statuses an operation may answer with a problem (500 is always added).
pub trait ErrorSet: Send + Sync + 'static {
    const STATUSES: &'static [u16];
}

/// Declares an [`ErrorSet`]: `error_set!(LoginErrors: [400, 401, 422, 429]);`
#[macro_export]
macro_rules! error_set {
    ($(#[$meta:meta])* $name:ident: [$($status:literal),* $(,)?]) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::error::ErrorSet for $name {
            const STATUSES: &'static [u16] = &[$($status),*];
        }
    };
}

/// An [`AppError`] answered by an operation whose possible statuses are `S`.
pub struct ApiError<S: ErrorSet>(pub AppError, PhantomData<S>);

impl<S: ErrorSet> std::fmt::Debug for ApiError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: ErrorSet> From<AppError> for ApiError<S> {
    fn from(err: AppError) -> Self {
        let status = err.status().as_u16();
        if status != 500 && status != 503 && !S::STATUSES.contains(&status) {
            tracing::warn!(
                status,
                "an operation answered a status its spec does not list"
            );
        }
        ApiError(err, PhantomData)
    }
}

impl<S: ErrorSet> From<sea_orm::DbErr> for ApiError<S> {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::from(err).into()
    }
}

impl<S: ErrorSet> From<fred::error::Error> for ApiError<S> {
    fn from(err: fred::error::Error) -> Self {
        AppError::from(err).into()
    }
}

impl<S: ErrorSet> From<anyhow::Error> for ApiError<S> {
    fn from(err: anyhow::Error) -> Self {
        AppError::from(err).into()
    }
}

impl<S: ErrorSet> From<crate::crypto::DecryptError> for ApiError<S> {
    fn from(err: crate::crypto::DecryptError) -> Self {
        AppError::from(err).into()
    }
}

impl<S: ErrorSet> IntoResponse for ApiError<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S: ErrorSet> From<ApiError<S>> for poem::Error {
    fn from(err: ApiError<S>) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// What each status means, as the spec says it.
fn describe(status: u16) -> &'static str {
    match status {
        400 => "Malformed request: unreadable JSON, a wrong type, an unknown field or a bad parameter (`field` names it).",
        401 => "Missing, expired or invalid credentials; `type` says which (`unauthorized`, `token-expired`, `invalid-credentials`, `invalid-refresh-token`, `refresh-token-reused`).",
        403 => "Authenticated but not allowed; `type` says why (`account-suspended` with `until`, `account-banned`, `reauthentication-required`, `csrf-failed`, `insufficient-role`).",
        404 => "No such resource, or it is hidden from you.",
        409 => "Conflicts with the current state (`email-taken`, `profile-incomplete`, `idempotency-key-in-use`, ...).",
        410 => "The cursor no longer applies (`cursor-expired`): start again without it.",
        413 => "The request body is larger than allowed.",
        415 => "Unsupported media type: the request's `Content-Type`, or an uploaded file whose real format (read from its bytes) is not accepted (`unsupported-media-type`).",
        422 => "Well-formed but invalid values; `errors` lists every invalid field.",
        429 => "Too many requests: wait `Retry-After` seconds (`RateLimit-*` headers describe the limit).",
        503 => "A backing service is unavailable; retry shortly.",
        _ => "Unexpected error; quote the `X-Request-Id` response header when reporting it.",
    }
}

impl<S: ErrorSet> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        // Every operation may answer 500 (a bug) and 503 (PostgreSQL or Redis unreachable).
        let mut statuses: Vec<u16> = S::STATUSES.to_vec();
        for status in [500, 503] {
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        MetaResponses {
            responses: statuses
                .into_iter()
                .map(|status| MetaResponse {
                    description: describe(status),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/problem+json",
                        schema: <Problem as Type>::schema_ref(),
                    }],
                    headers: if status == 429 {
                        vec![MetaHeader {
                            name: "Retry-After".into(),
                            description: Some("Seconds to wait before retrying.".into()),
                            required: true,
                            deprecated: false,
                            schema: <u64 as Type>::schema_ref(),
                        }]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as Type>::register(registry);
    }
}

/// What the caller knows about the request, to name the field behind a parse error.
pub trait FieldHint {
    /// The real name of poem-openapi's internal path parameter (`param0`).
    fn path_param(&self, internal: &str) -> Option<String>;
    /// The first faulty body field and why.
    fn body_field(&self) -> Option<(String, String)>;
}

/// Turns any error poem or poem-openapi raised into a problem response (handlers' own errors
/// already are one and pass through unchanged).
pub fn problem_from_poem_error(err: poem::Error, hint: &dyn FieldHint) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let problem = if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        let (field, detail) = match unknown_or_missing_field(&e.reason) {
            Some(field) => (
                Some(field),
                format!("the request body could not be read: {}", e.reason),
            ),
            None => match hint.body_field() {
                Some((field, reason)) => (Some(field.clone()), format!("`{field}` {reason}")),
                None => (
                    None,
                    format!("the request body could not be read: {}", e.reason),
                ),
            },
        };
        AppError::BadRequest { detail, field }.problem()
    } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let name = hint.path_param(e.name).unwrap_or_else(|| e.name.to_owned());
        AppError::BadRequest {
            detail: format!("path parameter `{name}`: {}", e.reason),
            field: Some(name),
        }
        .problem()
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        AppError::BadRequest {
            detail: format!("parameter `{}`: {}", e.name, e.reason),
            field: Some(e.name.to_owned()),
        }
        .problem()
    } else if err.is::<AuthorizationError>() {
        AppError::Unauthorized {
            kind: "unauthorized",
            detail: "a bearer access token is required",
        }
        .problem()
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        generic_problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            e.to_string(),
        )
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        generic_problem(
            413,
            "payload-too-large",
            "Request body too large",
            err.to_string(),
        )
    } else if status == StatusCode::NOT_FOUND {
        generic_problem(404, "not-found", "Not found", "no such resource".into())
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        generic_problem(
            405,
            "method-not-allowed",
            "Method not allowed",
            "this path does not accept that method".into(),
        )
    } else if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        AppError::Internal(anyhow::anyhow!("{err}")).problem()
    } else {
        let slug = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "-");
        generic_problem(
            status.as_u16(),
            &slug,
            status.canonical_reason().unwrap_or("Error"),
            err.to_string(),
        )
    };
    problem_response(&problem)
}

fn generic_problem(status: u16, slug: &str, title: &str, detail: String) -> Problem {
    Problem {
        ty: format!("{PROBLEM_BASE}{slug}"),
        title: title.to_owned(),
        status,
        detail,
        field: None,
        errors: None,
        retry_after: None,
        until: None,
    }
}

/// Pulls a field name out of the parsers' messages: serde's ``unknown field `x` `` and
/// ``missing field `x` ``, poem-openapi's ``field `x` verification failed``.
fn unknown_or_missing_field(reason: &str) -> Option<String> {
    const MARKER: &str = "field `";
    let rest = &reason[reason.find(MARKER)? + MARKER.len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_found_in_parser_messages() {
        assert_eq!(
            unknown_or_missing_field("unknown field `nickname`, expected one of"),
            Some("nickname".into())
        );
        assert_eq!(
            unknown_or_missing_field(
                "failed to parse \"ActionRequest\": field `reason` verification failed. minLength(1)"
            ),
            Some("reason".into())
        );
        assert_eq!(unknown_or_missing_field("expected value at line 1"), None);
    }

    #[test]
    fn validation_problems_name_every_field() {
        let err = AppError::Validation(vec![
            FieldProblem {
                field: "email".into(),
                code: "email".into(),
                message: "not an email".into(),
            },
            FieldProblem {
                field: "password".into(),
                code: "length".into(),
                message: "8 to 128".into(),
            },
        ]);
        let p = err.problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.field.as_deref(), Some("email"));
        assert!(p.detail.contains("`password`"));
        assert!(p.ty.ends_with("validation-failed"));
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let p = AppError::Internal(anyhow::anyhow!("password=hunter2")).problem();
        assert!(!p.detail.contains("hunter2"));
        assert_eq!(p.status, 500);
    }
}
