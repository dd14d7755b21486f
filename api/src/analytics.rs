//! Anonymous engagement analytics: the worker rolls the activity tables up into counts per
//! metric and hour / day (`analytics_aggregates`, no user id), and admins read them with
//! `GET /v1/admin/analytics/{metric}`.
//!
//! Choices:
//! - Each pass (every minute, one worker at a time) recomputes the hours from the one before
//!   the last it wrote (or the last 30 days the first time) up to now, then the days as sums of
//!   their hours. A count never goes down (`GREATEST` on upsert): erasing an account deletes its
//!   swipes, but the aggregates keep what happened, anonymously. A swipe changed later (a pass
//!   turned into a like) is counted where and as it stands at the next pass, and its earlier
//!   count stays.
//! - `active_people` counts the people whose last activity (a sign-in or a token refresh,
//!   recorded at most every ten minutes) falls in the day: exact for the day in progress, which
//!   is the only one a pass counts, so days before the worker first ran are not backfilled.
//! - Metrics: `signups`, `swipes` (by `like` / `pass`), `resonances` (matches made),
//!   `resonances_ended` (by `unmatch` / `block` / `moderation`), `reports` (by reason),
//!   `active_people` (per day only). Chat volumes are the gateway's `/metrics` (Prometheus).
//! - Buckets are UTC hours and days. The activity tables carry indexes on their time columns
//!   (BRIN for creation times, btree for `ended_at` and `last_active_at`) so a pass reads only
//!   the recent rows.
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
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, TransactionTrait};
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

/// How each hourly metric is counted: (metric, time column, dimension expression, table,
/// condition). Day buckets are the sums of their hours.
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
];

const UPSERT: &str = "ON CONFLICT (metric, bucket, bucket_start, dimension) DO UPDATE
    SET value = GREATEST(analytics_aggregates.value, EXCLUDED.value), updated_at = now()";

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// Where a metric's pass starts: one bucket before the last it wrote (a row stamped just
/// before that bucket may have committed after the last pass), or `backfill` back.
async fn since(
    txn: &impl ConnectionTrait,
    metric: &str,
    bucket: &str,
    backfill: &str,
) -> Result<DateTime<Utc>, sea_orm::DbErr> {
    let row = txn
        .query_one(stmt(
            &format!(
                "SELECT coalesce(max(bucket_start) - interval '1 {bucket}',
                                 date_trunc('{bucket}', now() - interval '{backfill}', 'UTC')) AS t
                 FROM analytics_aggregates WHERE metric = $1 AND bucket = $2"
            ),
            vec![metric.into(), bucket.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "t"),
        None => Ok(Utc::now()),
    }
}

/// One roll-up pass (the worker's, every minute); returns how many aggregate rows it wrote.
/// One worker at a time does it (a transaction-scoped advisory lock; the others skip).
pub async fn roll_up(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let txn = db.begin().await?;
    let locked = txn
        .query_one(stmt(
            "SELECT pg_try_advisory_xact_lock(hashtext('despacio:analytics')) AS locked",
            vec![],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false);
    if !locked {
        return Ok(0);
    }
    let mut written = 0;
    for (metric, at, dimension, table, condition) in SOURCES {
        let from = since(&txn, metric, "hour", "30 days").await?;
        written += txn
            .execute(stmt(
                &format!(
                    "INSERT INTO analytics_aggregates (metric, bucket, bucket_start, dimension, value)
                     SELECT $1, 'hour', date_trunc('hour', {at}, 'UTC'), {dimension}, count(*)
                     FROM {table} WHERE {condition} AND {at} >= $2
                     GROUP BY 3, 4 {UPSERT}"
                ),
                vec![(*metric).into(), from.into()],
            ))
            .await?
            .rows_affected();
        let from = since(&txn, metric, "day", "30 days").await?;
        written += txn
            .execute(stmt(
                &format!(
                    "INSERT INTO analytics_aggregates (metric, bucket, bucket_start, dimension, value)
                     SELECT $1, 'day', date_trunc('day', bucket_start, 'UTC'), dimension,
                            sum(value)::bigint
                     FROM analytics_aggregates
                     WHERE metric = $1 AND bucket = 'hour' AND bucket_start >= $2
                     GROUP BY 3, 4 {UPSERT}"
                ),
                vec![(*metric).into(), from.into()],
            ))
            .await?
            .rows_affected();
    }
    // People whose last activity falls in the day: exact for the day in progress, which is
    // all a pass counts (yesterday too, kept at its highest, just after midnight).
    let from = since(&txn, "active_people", "day", "1 day").await?.max(
        Utc::now()
            .duration_trunc(Duration::days(1))
            .unwrap_or_default()
            - Duration::days(1),
    );
    written += txn
        .execute(stmt(
            &format!(
                "INSERT INTO analytics_aggregates (metric, bucket, bucket_start, dimension, value)
                 SELECT 'active_people', 'day', date_trunc('day', last_active_at, 'UTC'), '',
                        count(*)
                 FROM users WHERE last_active_at >= $1
                 GROUP BY 3, 4 {UPSERT}"
            ),
            vec![from.into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
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
        let earliest = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let latest = DateTime::from_timestamp(7_258_118_400, 0).unwrap_or_default(); // 2200
        for (field, at) in [("from", from.0), ("to", Some(to))] {
            if at.is_some_and(|at| at < earliest || at > latest) {
                return Err(
                    AppError::invalid(field, "out_of_range", "between 1970 and 2200").into(),
                );
            }
        }
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
