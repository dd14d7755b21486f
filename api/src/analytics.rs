//! Anonymous engagement analytics: the worker rolls the activity tables up into counts per
//! metric and hour / day (`analytics_aggregates`, no user id), and admins read them with
//! `GET /v1/admin/analytics/{metric}`.
//!
//! Choices:
//! - Each pass (every minute) recomputes the buckets from the last one it wrote (or the last 30
//!   days the first time) up to now. A count never goes down (`GREATEST` on upsert): erasing an
//!   account deletes its swipes, but the aggregates keep what happened, anonymously; and
//!   `active_people` (people whose last activity falls in the day) only grows as the day goes.
//! - Metrics: `signups`, `swipes` (by `like` / `pass`), `resonances` (matches made),
//!   `resonances_ended` (by `unmatch` / `block` / `moderation`), `reports` (by reason),
//!   `active_people` (per day only). Chat volumes are the gateway's `/metrics` (Prometheus).
//! - Buckets are UTC hours and days. The activity tables carry BRIN indexes on their time
//!   columns (tiny, cheap to keep) so a pass reads only the recent rows.
//! - Answers are zero-filled between `from` and `to` (at most 2,000 buckets), so a dashboard
//!   draws them as they come.
use chrono::{DateTime, Duration, DurationRound, Utc};
use entities::auth::Role;
use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::Example,
    Enum, Object, OpenApi,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement};
use std::collections::{BTreeMap, HashMap};

use crate::{
    admin::require_role,
    auth::extract::BearerAuth,
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    state::AppState,
};

error_set!(AnalyticsErrors: [400, 401, 403, 422]);

/// The most buckets one answer holds.
const MAX_BUCKETS: i64 = 2_000;

/// What is counted.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum Metric {
    /// Accounts created.
    Signups,
    /// Swipes made (`by`: `like`, `pass`).
    Swipes,
    /// Résonances (mutual likes) made.
    Resonances,
    /// Résonances ended (`by`: `unmatch`, `block`, `moderation`).
    ResonancesEnded,
    /// Reports filed (`by`: reason).
    Reports,
    /// People active during the day (day buckets only).
    ActivePeople,
}

impl Metric {
    fn as_str(self) -> &'static str {
        match self {
            Metric::Signups => "signups",
            Metric::Swipes => "swipes",
            Metric::Resonances => "resonances",
            Metric::ResonancesEnded => "resonances_ended",
            Metric::Reports => "reports",
            Metric::ActivePeople => "active_people",
        }
    }
}

/// Bucket width.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    fn width(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }
}

/// How each metric is counted: (metric, time column, dimension expression, table, condition).
const SOURCES: &[(&str, &str, &str, &str, &str)] = &[
    ("signups", "created_at", "''", "users", "true"),
    ("swipes", "created_at", "action", "swipes", "true"),
    ("resonances", "created_at", "''", "resonances", "true"),
    (
        "resonances_ended",
        "ended_at",
        "coalesce(ended_reason, '')",
        "resonances",
        "ended_at IS NOT NULL",
    ),
    ("reports", "created_at", "reason", "reports", "true"),
    ("active_people", "last_active_at", "''", "users", "true"),
];

/// One roll-up pass (the worker's, every minute); returns how many aggregate rows it wrote.
pub async fn roll_up(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let mut written = 0;
    for bucket in ["hour", "day"] {
        for (metric, at, dimension, table, condition) in SOURCES {
            if *metric == "active_people" && bucket == "hour" {
                continue;
            }
            // From the last bucket written (it may have grown since), or 30 days back.
            let sql = format!(
                "WITH since AS (
                   SELECT coalesce(max(bucket_start), date_trunc('{bucket}', now() - interval '30 days', 'UTC')) AS t
                   FROM analytics_aggregates WHERE metric = '{metric}' AND bucket = '{bucket}')
                 INSERT INTO analytics_aggregates (metric, bucket, bucket_start, dimension, value)
                 SELECT '{metric}', '{bucket}', date_trunc('{bucket}', {at}, 'UTC') AS b, {dimension}, count(*)
                 FROM {table}, since
                 WHERE {condition} AND {at} >= since.t
                 GROUP BY 3, 4
                 ON CONFLICT (metric, bucket, bucket_start, dimension) DO UPDATE
                   SET value = GREATEST(analytics_aggregates.value, EXCLUDED.value),
                       updated_at = now()"
            );
            written += db.execute_unprepared(&sql).await?.rows_affected();
        }
    }
    Ok(written)
}

/// One bucket of a series.
#[derive(Object)]
pub struct Point {
    /// The bucket's start (UTC).
    pub at: DateTime<Utc>,
    /// The count in this bucket (every dimension together).
    pub value: i64,
    /// The count by dimension, for metrics that have one (`like` / `pass`…); empty otherwise.
    pub by: HashMap<String, i64>,
}

/// A metric over time.
#[derive(Object)]
#[oai(example)]
pub struct Series {
    pub metric: String,
    /// `hour` or `day`.
    pub bucket: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every bucket from `from` to `to`, oldest first, zero-filled.
    pub points: Vec<Point>,
}

impl Example for Series {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_800, 0).unwrap_or_default();
        Self {
            metric: "swipes".into(),
            bucket: "day".into(),
            from: at,
            to: at + Duration::days(1),
            points: vec![Point {
                at,
                value: 1_204,
                by: HashMap::from([("like".into(), 431), ("pass".into(), 773)]),
            }],
        }
    }
}

#[derive(FromQueryResult)]
struct Row {
    bucket_start: DateTime<Utc>,
    dimension: String,
    value: i64,
}

pub struct AnalyticsApi;

#[OpenApi(prefix_path = "/v1/admin", tag = "ApiTags::Admin")]
impl AnalyticsApi {
    /// Engagement over time
    ///
    /// Role: admin. Anonymous counts per hour or day (no person is ever named): `signups`,
    /// `swipes` (by `like` / `pass`), `resonances`, `resonances_ended` (by reason), `reports`
    /// (by reason), `active_people` (days only). Zero-filled from `from` (default: 7 days or 48
    /// hours before `to`) to `to` (default: now), at most 2,000 buckets. Rolled up by the
    /// worker every minute.
    #[oai(
        path = "/analytics/:metric",
        method = "get",
        operation_id = "adminAnalytics"
    )]
    async fn series(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        metric: Path<Metric>,
        /// Start (RFC 3339), rounded down to the bucket.
        from: Query<Option<DateTime<Utc>>>,
        /// End (RFC 3339), included.
        to: Query<Option<DateTime<Utc>>>,
        /// `hour` or `day` (default `day`).
        bucket: Query<Option<Bucket>>,
    ) -> Result<Json<Series>, ApiError<AnalyticsErrors>> {
        require_role(&state, &auth.0, Role::Admin).await?;
        let metric = metric.0;
        let bucket = bucket.0.unwrap_or(Bucket::Day);
        if metric == Metric::ActivePeople && bucket == Bucket::Hour {
            return Err(AppError::invalid(
                "bucket",
                "day_only",
                "active_people is counted per day",
            )
            .into());
        }
        let to = to.0.unwrap_or_else(Utc::now);
        let default_span = match bucket {
            Bucket::Hour => Duration::hours(48),
            Bucket::Day => Duration::days(7),
        };
        let from = from.0.unwrap_or(to - default_span);
        if from > to {
            return Err(
                AppError::invalid("from", "after_to", "`from` must not be after `to`").into(),
            );
        }
        let width = bucket.width();
        let start = from
            .duration_trunc(width)
            .map_err(|e| AppError::Internal(e.into()))?;
        let buckets = (to - start).num_seconds() / width.num_seconds() + 1;
        if buckets > MAX_BUCKETS {
            return Err(AppError::invalid(
                "from",
                "too_wide",
                format!("at most {MAX_BUCKETS} buckets per answer; narrow the range or use days"),
            )
            .into());
        }
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT bucket_start, dimension, value FROM analytics_aggregates
             WHERE metric = $1 AND bucket = $2 AND bucket_start >= $3 AND bucket_start <= $4",
            vec![
                metric.as_str().into(),
                bucket.as_str().into(),
                start.into(),
                to.into(),
            ],
        ))
        .all(&state.db)
        .await?;
        let mut points: BTreeMap<DateTime<Utc>, Point> = (0..buckets)
            .map(|i| {
                let at = start + width * i as i32;
                (
                    at,
                    Point {
                        at,
                        value: 0,
                        by: HashMap::new(),
                    },
                )
            })
            .collect();
        for row in rows {
            if let Some(point) = points.get_mut(&row.bucket_start) {
                point.value += row.value;
                if !row.dimension.is_empty() {
                    *point.by.entry(row.dimension).or_default() += row.value;
                }
            }
        }
        Ok(Json(Series {
            metric: metric.as_str().into(),
            bucket: bucket.as_str().into(),
            from: start,
            to,
            points: points.into_values().collect(),
        }))
    }
}
