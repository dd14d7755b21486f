//! Operations endpoints: liveness, readiness, metrics, and the Swagger UI files.
use std::{sync::Arc, time::Duration};

use fred::prelude::ClientLike;
use poem::{handler, http::StatusCode, web::Path, IntoResponse, Response};
use poem_openapi::{
    payload::{Json, PlainText},
    types::Example,
    ApiResponse, Object, OpenApi,
};
use utoipa_swagger_ui::Config;

use crate::{metrics::Metrics, openapi::ApiTags, state::AppState};

/// Liveness.
#[derive(Object)]
#[oai(example)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

impl Example for Health {
    fn example() -> Self {
        Health {
            status: "ok".into(),
        }
    }
}

/// Readiness and each dependency's state.
#[derive(Object)]
#[oai(example)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `ok` or the failure, for PostgreSQL.
    pub postgres: String,
    /// `ok` or the failure, for Redis.
    pub redis: String,
}

impl Example for Readiness {
    fn example() -> Self {
        Readiness {
            status: "ready".into(),
            postgres: "ok".into(),
            redis: "ok".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Every dependency answers.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A dependency does not answer; take this instance out of rotation.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

pub struct OpsApi {
    pub metrics: Arc<Metrics>,
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness probe
    ///
    /// 200 while the process runs; checks nothing else.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness probe
    ///
    /// 200 when PostgreSQL and Redis answer within 2 seconds, else 503 with the failing check.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: poem::web::Data<&AppState>) -> ReadyResponse {
        let timeout = Duration::from_secs(2);
        let postgres = match tokio::time::timeout(timeout, state.db.ping()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "timeout".to_owned(),
        };
        let redis = match tokio::time::timeout(timeout, state.redis.ping::<String>(None)).await {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "timeout".to_owned(),
        };
        let ready = postgres == "ok" && redis == "ok";
        let body = Readiness {
            status: if ready { "ready" } else { "not_ready" }.into(),
            postgres,
            redis,
        };
        if ready {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }

    /// Prometheus metrics
    ///
    /// Request counts and latency histograms by method, route template and status.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> MetricsResponse {
        MetricsResponse::Ok(PlainText(self.metrics.render()))
    }
}

/// Swagger UI's configuration: our spec, "Authorize" remembered across reloads.
pub fn swagger_config() -> Arc<Config<'static>> {
    Arc::new(
        Config::new(["/openapi.json"])
            .persist_authorization(true)
            .try_it_out_enabled(true)
            .display_request_duration(true),
    )
}

/// `GET /docs`: Swagger UI lives under `/docs/` (its assets are relative paths).
#[handler]
pub fn docs_redirect() -> Response {
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header("location", "/docs/")
        .finish()
}

/// `GET /docs/*path`: Swagger UI's files, embedded in the binary (nothing is downloaded).
#[handler]
pub fn docs_file(path: Path<String>, config: poem::web::Data<&Arc<Config<'static>>>) -> Response {
    match utoipa_swagger_ui::serve(&path.0, config.0.clone()) {
        Ok(Some(file)) => Response::builder()
            .content_type(file.content_type)
            .header("cache-control", "public, max-age=3600")
            .body(file.bytes.to_vec()),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /docs/`.
#[handler]
pub fn docs_index(config: poem::web::Data<&Arc<Config<'static>>>) -> Response {
    match utoipa_swagger_ui::serve("", config.0.clone()) {
        Ok(Some(file)) => Response::builder()
            .content_type(file.content_type)
            .body(file.bytes.to_vec()),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
