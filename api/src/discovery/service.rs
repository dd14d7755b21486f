//! The discovery engine: who I see next.
//!
//! **Design: a per-person candidate queue.** Scoring everyone inside my radius on every page is
//! exact but slow at a million profiles; nearest-first is fast but ranks badly. So the ranking
//! is computed once per batch and stored: [`prepare`] appends my next [`BATCH`] best candidates,
//! exactly scored, to `discovery_queue` (ranks ascending). A page walks that queue in rank order
//! from the cursor and stops after `limit` survivors of the **read-time re-check** — blocks,
//! swipes, account state, snooze, incognito and the two-way filters are evaluated again on every
//! read, so the queue can be stale in its ranking but never in what it lets through.
//!
//! - **Scoring window**: a preparation scores the [`WINDOW`] nearest not-yet-queued people that
//!   pass the index-level filters (found by a KNN scan of the composite GiST index) and keeps the
//!   best [`BATCH`]. Where fewer than [`WINDOW`] people are in range (most places) the ranking is
//!   exact; in a dense hotspot it is exact within the nearest [`WINDOW`], and farther people
//!   enter with later batches. This bounds the cost of a preparation (at 1M profiles a hotspot
//!   person has ~50,000 people in a 50 km radius).
//! - **Cursor** = (queue generation, last rank seen), signed. Ranks never move, new candidates
//!   are only appended (or slotted between ranks, see fresh likers), so pages have no duplicates
//!   and no skips whatever happens between them. A first page (no cursor) rebuilds a queue older
//!   than [`QUEUE_MAX_AGE_S`]; a cursor from a rebuilt generation answers 410 `cursor-expired`.
//!   Each generation ranks from its own base ([`generation_base`]), above every older one, so
//!   reads never step over the dead entries a rebuild leaves until vacuum.
//! - **End of the queue**: the next batch is prepared on demand (excluding everyone already
//!   queued); when none is left, the page says `exhausted: true`. A first page rebuilds an
//!   exhausted queue after [`EXHAUSTED_RETRY_S`].
//! - **Fresh likers**: people who liked me after my queue was prepared are slotted right after
//!   the cursor (fractional ranks) on my next page; they do not wait for a rebuild.
//! - **New profiles** reach existing queues when those are rebuilt (at most one hour), and get a
//!   first-exposure bonus in the score for 72 hours.
//!
//! **Score** (higher is better, 0 to 120):
//! `40 × (1 − distance / my max distance)` + `15 × shared intentions (at most 2)`
//! + `25 if they liked me` + `15 × (1 − days since last active / 14)⁺` + `10 if the profile is
//! less than 72 hours old`. Ties go to the smaller user id.
use chrono::{DateTime, NaiveDate, Utc};
use entities::discovery_state;
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    cursor,
    error::AppError,
    profiles::{
        cards::{card_columns, to_public, CardRow},
        types::PublicProfile,
    },
    state::AppState,
};

/// Candidates appended per preparation.
pub const BATCH: i64 = 200;
/// How many of the nearest candidates one preparation scores (see the module docs).
pub const WINDOW: i64 = 1000;
/// Set inside preparation transactions so the candidate window is read by a KNN index scan.
const KNN_ONLY: &str = "SET LOCAL enable_bitmapscan = off";
/// A first page rebuilds a queue older than this.
pub const QUEUE_MAX_AGE_S: i64 = 3600;
/// A first page rebuilds an exhausted queue prepared longer ago than this.
pub const EXHAUSTED_RETRY_S: i64 = 300;
/// A pass hides someone for this long; a like hides them for good.
pub const PASS_COOLDOWN_DAYS: i32 = 30;

/// The parameters every discovery query shares: who I am and what I seek, as constants so the
/// planner can use the composite GiST index.
struct Me {
    id: Uuid,
    longitude: f64,
    latitude: f64,
    max_distance_m: f64,
    genders: Vec<String>,
    /// Youngest and oldest birthdates I accept.
    born_after: NaiveDate,
    born_before: NaiveDate,
    gender: String,
    birthdate: NaiveDate,
    intentions: Vec<String>,
}

impl Me {
    /// `$1`..`$10` of the queries below.
    fn values(&self) -> Vec<Value> {
        vec![
            self.id.into(),
            self.longitude.into(),
            self.latitude.into(),
            self.max_distance_m.into(),
            self.genders.clone().into(),
            self.born_after.into(),
            self.born_before.into(),
            self.gender.clone().into(),
            self.birthdate.into(),
            self.intentions.clone().into(),
        ]
    }
}

/// Who may appear to `$1`, both ways. `c` is the candidate's profile row, which mirrors their
/// preferences (`pref_*`), account status and settings (migration 000010, kept exact by
/// triggers), so the whole two-way check reads one row. The first line repeats the partial
/// index's predicate.
const FILTERS: &str = r#"
    c.location IS NOT NULL AND c.display_name IS NOT NULL AND c.birthdate IS NOT NULL
    AND c.gender IS NOT NULL AND cardinality(c.intentions) > 0 AND c.incognito IS NOT NULL
    AND ST_DWithin(c.location, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, $4)
    AND c.gender = ANY($5::text[])
    AND c.birthdate BETWEEN $6 AND $7
    AND c.user_id <> $1
    AND $8 = ANY(c.pref_genders)
    AND $9 BETWEEN ((current_date - make_interval(years => c.pref_age_max + 1))::date + 1)
               AND (current_date - make_interval(years => c.pref_age_min))::date
    AND ST_DWithin(c.location, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, c.pref_max_distance_km * 1000.0)
    AND (c.account_status = 'active' OR (c.account_status = 'suspended' AND c.suspended_until <= now()))
    AND (c.snoozed_until IS NULL OR c.snoozed_until <= now())
    AND (NOT c.incognito
         OR EXISTS (SELECT 1 FROM swipes l WHERE l.swiper_id = c.user_id AND l.target_id = $1 AND l.action = 'like'))
    AND NOT EXISTS (SELECT 1 FROM swipes sw WHERE sw.swiper_id = $1 AND sw.target_id = c.user_id
                    AND (sw.action = 'like' OR sw.created_at > now() - make_interval(days => 30)))
    AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = c.user_id)
    AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = c.user_id AND b.blocked_id = $1)
"#;

const SCORE: &str = r#"(
      40.0 * GREATEST(0.0, 1.0 - ST_Distance(c.location, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography) / $4)
    + 15.0 * LEAST(2, cardinality(ARRAY(SELECT unnest(c.intentions) INTERSECT SELECT unnest($10::text[]))))
    + CASE WHEN EXISTS (SELECT 1 FROM swipes l WHERE l.swiper_id = c.user_id AND l.target_id = $1 AND l.action = 'like')
           THEN 25.0 ELSE 0.0 END
    + 15.0 * GREATEST(0.0, 1.0 - extract(epoch FROM now() - u.last_active_at) / (14 * 86400.0))
    + CASE WHEN u.created_at > now() - interval '72 hours' THEN 10.0 ELSE 0.0 END
)"#;

fn prepare_sql() -> String {
    // The scored set is the `WINDOW` nearest not-yet-queued candidates that pass the filters the
    // composite GiST index can check (radius, gender, birthdate, complete profile), taken in
    // distance order by a KNN index scan that stops after `WINDOW` rows; everything else is then
    // checked and scored exactly. Run it with bitmap scans off ([`KNN_ONLY`]): otherwise the
    // planner, underestimating a dense radius, reads all of it and sorts.
    format!(
        "INSERT INTO discovery_queue (user_id, rank, candidate_id, score)
         SELECT $1, $11 + row_number() OVER (ORDER BY score DESC, user_id), user_id, score
         FROM (SELECT c.user_id, {SCORE}::real AS score
               FROM (SELECT * FROM profiles n
                     WHERE n.location IS NOT NULL AND n.display_name IS NOT NULL AND n.birthdate IS NOT NULL
                       AND n.gender IS NOT NULL AND cardinality(n.intentions) > 0
                       AND ST_DWithin(n.location, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, $4)
                       AND n.gender = ANY($5::text[]) AND n.birthdate BETWEEN $6 AND $7 AND n.user_id <> $1
                       AND NOT EXISTS (SELECT 1 FROM discovery_queue q WHERE q.user_id = $1 AND q.candidate_id = n.user_id)
                     ORDER BY n.location <-> ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography
                     LIMIT {WINDOW}) c
               JOIN users u ON u.id = c.user_id
               WHERE {FILTERS}
               ORDER BY score DESC, c.user_id LIMIT {BATCH}) ranked"
    )
}

/// One known candidate's profile row as `c` (what [`FILTERS`] expects): the `OFFSET 0` fence
/// makes PostgreSQL fetch it by its primary key first (otherwise it may prefer the GiST index
/// for the radius condition and scan a whole city per candidate).
fn from_one(id: &str) -> String {
    format!("(SELECT * FROM profiles WHERE user_id = {id} OFFSET 0) c")
}

fn fresh_likers_sql() -> String {
    // Driven by my recent likes (a handful of rows, `swipes_target_like_idx`), each re-checked
    // by primary-key lookups in a LATERAL subquery (its LIMIT keeps the planner from merging it
    // into one big join that would start from the radius scan).
    format!(
        "WITH fresh AS MATERIALIZED (
             SELECT swiper_id FROM swipes WHERE target_id = $1 AND action = 'like' AND created_at > $11
             ORDER BY created_at DESC LIMIT 200)
         SELECT v.user_id, v.score FROM fresh
         CROSS JOIN LATERAL (
             SELECT c.user_id, {SCORE}::real AS score FROM {from} JOIN users u ON u.id = c.user_id
             WHERE {FILTERS}
               AND NOT EXISTS (SELECT 1 FROM discovery_queue q WHERE q.user_id = $1 AND q.candidate_id = c.user_id)
             LIMIT 1) v
         ORDER BY v.score DESC, v.user_id LIMIT 50",
        from = from_one("fresh.swiper_id")
    )
}

/// The page read: take the next `$13` queue entries in rank order (an index range scan on the
/// primary key), re-check each on its profile row (LATERAL, so the planner cannot reorder the
/// joins; the same row gives the card), keep the first `$12` survivors. The window is a plain
/// subquery, not a materialised CTE: its rows then come out of the index already in rank order,
/// so no sort is needed and the nested loop **stops after the `$12`-th survivor** instead of
/// re-checking the whole window. [`read`] walks on, window after window, while too few survive.
fn read_sql() -> String {
    format!(
        "SELECT q.rank, {card}
         FROM (SELECT rank, candidate_id FROM discovery_queue WHERE user_id = $1 AND rank > $11
               ORDER BY rank LIMIT $13) q
         CROSS JOIN LATERAL (
             SELECT c.user_id, c.display_name, c.birthdate, c.gender, c.bio_ciphertext, c.intentions, c.location
             FROM {from} WHERE {FILTERS} LIMIT 1) p
         ORDER BY q.rank LIMIT $12",
        card = card_columns("ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography", "$10::text[]"),
        from = from_one("q.candidate_id")
    )
}

/// Rebuilds `user_id`'s queue (the worker's background preparation). Returns how many
/// candidates the first batch holds; people with an incomplete profile are skipped (0).
pub async fn refresh_queue(state: &AppState, user_id: Uuid) -> Result<u64, AppError> {
    let me = match me(state, user_id).await {
        Ok(me) => me,
        Err(AppError::Conflict { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let state_row = rebuild(state, &me).await?;
    Ok((state_row.last_rank - generation_base(state_row.generation)) as u64)
}

/// People active in the last 7 days whose queue is missing or older than
/// [`QUEUE_MAX_AGE_S`] minus a 5-minute margin, most recently active first.
pub async fn stale_queues(state: &AppState, limit: u64) -> Result<Vec<Uuid>, AppError> {
    #[derive(FromQueryResult)]
    struct Row {
        id: Uuid,
    }
    let rows = Row::find_by_statement(statement(
        "SELECT u.id FROM users u
         JOIN profiles p ON p.user_id = u.id
         LEFT JOIN discovery_state d ON d.user_id = u.id
         WHERE u.last_active_at > now() - interval '7 days' AND u.status = 'active'
           AND p.location IS NOT NULL AND p.birthdate IS NOT NULL AND p.gender IS NOT NULL
           AND (d.user_id IS NULL OR d.prepared_at < now() - make_interval(secs => $1))
         ORDER BY u.last_active_at DESC
         LIMIT $2",
        vec![
            ((QUEUE_MAX_AGE_S - 300) as f64).into(),
            (limit as i64).into(),
        ],
    ))
    .all(&state.db)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the preparation (rolled back) and of a first-page read for
/// `user_id`, with the real parameters: proof of which indexes the engine uses.
pub async fn explain(state: &AppState, user_id: Uuid) -> Result<String, AppError> {
    use sea_orm::TransactionTrait;
    let me = me(state, user_id).await?;
    let mut out = String::new();
    let txn = state.db.begin().await?;
    txn.execute_unprepared(KNN_ONLY).await?;
    txn.execute(statement(
        "DELETE FROM discovery_queue WHERE user_id = $1",
        vec![me.id.into()],
    ))
    .await?;
    for (title, sql, extra) in [
        (
            "preparation (one batch, exact score)",
            prepare_sql(),
            vec![sea_orm::Value::from(0.0f64)],
        ),
        (
            "page read (walk the queue, re-check, stop after 20)",
            read_sql(),
            vec![0.0f64.into(), 20i64.into(), 60i64.into()],
        ),
    ] {
        let mut values = me.values();
        values.extend(extra);
        let rows = txn
            .query_all(statement(
                &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
                values,
            ))
            .await?;
        out.push_str(&format!("-- {title}\n"));
        for row in rows {
            let line: String = row.try_get_by_index(0)?;
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    txn.rollback().await?;
    Ok(out)
}

/// A discovery page.
pub struct Page {
    pub items: Vec<PublicProfile>,
    pub next_cursor: Option<String>,
    pub exhausted: bool,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Queue generation.
    g: i32,
    /// Last rank seen.
    r: f64,
}

#[derive(FromQueryResult)]
struct Scored {
    user_id: Uuid,
    score: f32,
}

fn incomplete(what: &str) -> AppError {
    AppError::Conflict {
        kind: "profile-incomplete",
        detail: format!("discovery needs a complete profile: set {what} with PATCH /v1/me/profile"),
    }
}

fn birthdate_bounds(age_min: i16, age_max: i16, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    use chrono::Months;
    let years = |n: i16| Months::new(12 * u32::try_from(n).unwrap_or(0));
    // Age ≤ age_max ⇔ born after (today − (age_max + 1) years); age ≥ age_min ⇔ born on or
    // before (today − age_min years).
    let after = today
        .checked_sub_months(years(age_max + 1))
        .map(|d| d + chrono::Days::new(1))
        .unwrap_or(NaiveDate::MIN);
    let before = today
        .checked_sub_months(years(age_min))
        .unwrap_or(NaiveDate::MIN);
    (after, before)
}

#[derive(FromQueryResult)]
struct MeRow {
    display_name: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    gender: Option<String>,
    birthdate: Option<NaiveDate>,
    intentions: Vec<String>,
    age_min: i16,
    age_max: i16,
    max_distance_km: i32,
    genders: Vec<String>,
    generation: Option<i32>,
    prepared_at: Option<DateTime<Utc>>,
    last_rank: Option<f64>,
    exhausted: Option<bool>,
    /// Someone liked me after the queue was prepared.
    fresh_likes: bool,
}

/// Who I am, what I seek, my queue's state, and whether someone liked me since it was prepared,
/// in one query.
async fn me_and_queue(
    state: &AppState,
    user_id: Uuid,
) -> Result<(Me, Option<discovery_state::Model>, bool), AppError> {
    let row = MeRow::find_by_statement(statement(
        "SELECT p.display_name, p.latitude, p.longitude, p.gender, p.birthdate, p.intentions,
                pr.age_min, pr.age_max, pr.max_distance_km, pr.genders,
                d.generation, d.prepared_at, d.last_rank, d.exhausted,
                COALESCE(EXISTS (SELECT 1 FROM swipes l WHERE l.target_id = p.user_id AND l.action = 'like'
                                 AND l.created_at > d.prepared_at), false) AS fresh_likes
         FROM profiles p JOIN preferences pr ON pr.user_id = p.user_id
         LEFT JOIN discovery_state d ON d.user_id = p.user_id
         WHERE p.user_id = $1",
        vec![user_id.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or_else(|| incomplete("a profile"))?;
    let (Some(latitude), Some(longitude)) = (row.latitude, row.longitude) else {
        return Err(incomplete("`location`"));
    };
    let gender = row.gender.ok_or_else(|| incomplete("`gender`"))?;
    let birthdate = row.birthdate.ok_or_else(|| incomplete("`birthdate`"))?;
    if row.display_name.is_none() {
        return Err(incomplete("`display_name`"));
    }
    if row.intentions.is_empty() {
        return Err(incomplete("`intentions`"));
    }
    let (born_after, born_before) =
        birthdate_bounds(row.age_min, row.age_max, Utc::now().date_naive());
    let queue = match (
        row.generation,
        row.prepared_at,
        row.last_rank,
        row.exhausted,
    ) {
        (Some(generation), Some(prepared_at), Some(last_rank), Some(exhausted)) => {
            Some(discovery_state::Model {
                user_id,
                generation,
                prepared_at,
                last_rank,
                exhausted,
            })
        }
        _ => None,
    };
    let me = Me {
        id: user_id,
        longitude,
        latitude,
        max_distance_m: f64::from(row.max_distance_km) * 1000.0,
        genders: row.genders,
        born_after,
        born_before,
        gender,
        birthdate,
        intentions: row.intentions,
    };
    Ok((me, queue, row.fresh_likes))
}

async fn me(state: &AppState, user_id: Uuid) -> Result<Me, AppError> {
    Ok(me_and_queue(state, user_id).await?.0)
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// Appends the next batch of candidates after `after_rank`; returns how many were added.
async fn prepare<C: ConnectionTrait>(conn: &C, me: &Me, after_rank: f64) -> Result<u64, AppError> {
    let mut values = me.values();
    values.push(after_rank.into());
    Ok(conn
        .execute(statement(&prepare_sql(), values))
        .await?
        .rows_affected())
}

/// Where generation `g`'s ranks start. Each generation's ranks live in their own range, above
/// every older one: a page walks `rank > cursor` in the primary key and so never steps over the
/// dead entries a rebuild leaves behind (until vacuum removes them they would be visited on
/// every read — measured: a tenth of the throughput right after the hourly rebuilds).
pub fn generation_base(generation: i32) -> f64 {
    f64::from(generation) * 10_000_000.0
}

/// Starts a new queue generation for `me` and fills its first batch.
async fn rebuild(state: &AppState, me: &Me) -> Result<discovery_state::Model, AppError> {
    use sea_orm::TransactionTrait;
    let txn = state.db.begin().await?;
    txn.execute_unprepared(KNN_ONLY).await?;
    // The new generation first (its number places the ranks), then the old entries go.
    let row = txn
        .query_one(statement(
            "INSERT INTO discovery_state (user_id, generation, prepared_at, last_rank, exhausted)
             VALUES ($1, 1, now(), 0, false)
             ON CONFLICT (user_id) DO UPDATE SET generation = discovery_state.generation + 1,
                 prepared_at = now()
             RETURNING generation",
            vec![me.id.into()],
        ))
        .await?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("discovery_state upsert returned nothing"))
        })?;
    let generation: i32 = row.try_get("", "generation")?;
    let base = generation_base(generation);
    txn.execute(statement(
        "DELETE FROM discovery_queue WHERE user_id = $1",
        vec![me.id.into()],
    ))
    .await?;
    let added = prepare(&txn, me, base).await?;
    let last_rank = base + added as f64;
    let exhausted = added < BATCH as u64;
    txn.execute(statement(
        "UPDATE discovery_state SET last_rank = $2, exhausted = $3 WHERE user_id = $1",
        vec![me.id.into(), last_rank.into(), exhausted.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(discovery_state::Model {
        user_id: me.id,
        generation,
        prepared_at: Utc::now(),
        last_rank,
        exhausted,
    })
}

/// Appends a batch at the end of the queue (serialised per person by a row lock).
async fn extend(state: &AppState, me: &Me) -> Result<discovery_state::Model, AppError> {
    use sea_orm::{QuerySelect, TransactionTrait};
    let txn = state.db.begin().await?;
    txn.execute_unprepared(KNN_ONLY).await?;
    let current = discovery_state::Entity::find_by_id(me.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("discovery_state missing")))?;
    if current.exhausted {
        txn.commit().await?;
        return Ok(current);
    }
    let added = prepare(&txn, me, current.last_rank).await?;
    let last_rank = current.last_rank + added as f64;
    let exhausted = added < BATCH as u64;
    txn.execute(statement(
        "UPDATE discovery_state SET last_rank = $2, exhausted = $3 WHERE user_id = $1",
        vec![me.id.into(), last_rank.into(), exhausted.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(discovery_state::Model {
        last_rank,
        exhausted,
        ..current
    })
}

/// Slots people who liked me since the queue was prepared right after `after_rank`.
async fn merge_fresh_likers(
    state: &AppState,
    me: &Me,
    prepared_at: DateTime<Utc>,
    after_rank: f64,
) -> Result<(), AppError> {
    let mut values = me.values();
    values.push(prepared_at.into());
    let likers = Scored::find_by_statement(statement(&fresh_likers_sql(), values))
        .all(&state.db)
        .await?;
    if likers.is_empty() {
        return Ok(());
    }
    let next: Option<f64> = state
        .db
        .query_one(statement(
            "SELECT min(rank) AS next FROM discovery_queue WHERE user_id = $1 AND rank > $2",
            vec![me.id.into(), after_rank.into()],
        ))
        .await?
        .and_then(|row| row.try_get::<Option<f64>>("", "next").ok().flatten());
    let span = next.unwrap_or(after_rank + 1.0) - after_rank;
    let step = span / (likers.len() as f64 + 1.0);
    for (i, liker) in likers.iter().enumerate() {
        state
            .db
            .execute(statement(
                "INSERT INTO discovery_queue (user_id, rank, candidate_id, score) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                vec![me.id.into(), (after_rank + step * (i as f64 + 1.0)).into(), liker.user_id.into(), liker.score.into()],
            ))
            .await?;
    }
    Ok(())
}

/// Up to `limit` survivors after `after_rank`, walking the queue in windows of `3 × limit`
/// (at least 30). Returns them and the last rank examined, so that a caller continuing the walk
/// does not read filtered entries again.
async fn read(
    state: &AppState,
    me: &Me,
    after_rank: f64,
    limit: u64,
) -> Result<(Vec<CardRow>, f64), AppError> {
    let window = (limit * 3).max(30);
    let mut out: Vec<CardRow> = Vec::new();
    let mut from = after_rank;
    loop {
        let mut values = me.values();
        values.push(from.into());
        values.push(((limit - out.len() as u64) as i64).into());
        values.push((window as i64).into());
        out.extend(
            CardRow::find_by_statement(statement(&read_sql(), values))
                .all(&state.db)
                .await?,
        );
        if out.len() as u64 >= limit {
            let last = out.last().and_then(|r| r.rank).unwrap_or(from);
            return Ok((out, last));
        }
        // Too few survived: where did this window end (its last entry, kept or not)?
        let end: Option<f64> = state
            .db
            .query_one(statement(
                "SELECT max(rank) AS last FROM (SELECT rank FROM discovery_queue WHERE user_id = $1 AND rank > $2
                 ORDER BY rank LIMIT $3) w",
                vec![me.id.into(), from.into(), (window as i64).into()],
            ))
            .await?
            .and_then(|row| row.try_get::<Option<f64>>("", "last").ok().flatten());
        match end {
            Some(end) if end > from => from = end,
            _ => return Ok((out, from)),
        }
    }
}

/// `GET /v1/discovery`.
pub async fn page(
    state: &AppState,
    user_id: Uuid,
    cursor_text: Option<&str>,
    limit: u64,
) -> Result<Page, AppError> {
    let (me, saved, fresh_likes) = me_and_queue(state, user_id).await?;
    // (queue, last rank seen per the cursor, rebuilt now)
    let (mut current, seen, rebuilt) = match cursor_text {
        None => {
            // Rebuild when old, or when it ran dry more than five minutes ago (newcomers may
            // have arrived since).
            let fresh = saved.filter(|s| {
                let age = (Utc::now() - s.prepared_at).num_seconds();
                age < QUEUE_MAX_AGE_S && (!s.exhausted || age < EXHAUSTED_RETRY_S)
            });
            match fresh {
                Some(s) => (s, None, false),
                None => (rebuild(state, &me).await?, None, true),
            }
        }
        Some(text) => {
            let c: Cursor = cursor::decode(&state.cipher, "discovery", text)?;
            match saved {
                Some(s) if s.generation == c.g => (s, Some(c.r), false),
                _ => {
                    return Err(AppError::Gone {
                        kind: "cursor-expired",
                        detail: "the discovery queue was rebuilt since this cursor was made; start again without a cursor".into(),
                    })
                }
            }
        }
    };
    let after_rank = seen.unwrap_or_else(|| generation_base(current.generation));
    // A rebuilt queue already holds everyone who liked me; otherwise look for likers only when
    // there are some since the preparation (one index probe in the query above).
    if fresh_likes && !rebuilt {
        merge_fresh_likers(state, &me, current.prepared_at, after_rank).await?;
    }

    let (mut rows, mut examined) = read(state, &me, after_rank, limit).await?;
    // Walk on: prepare more while the page is short and the pool is not exhausted.
    for _ in 0..5 {
        if rows.len() as u64 >= limit || current.exhausted {
            break;
        }
        current = extend(state, &me).await?;
        let (more, end) = read(state, &me, examined, limit - rows.len() as u64).await?;
        rows.extend(more);
        examined = end;
    }
    let exhausted = (rows.len() as u64) < limit && current.exhausted;
    let last_rank = rows.last().and_then(|r| r.rank).unwrap_or(after_rank);
    let items = rows
        .into_iter()
        .map(|row| to_public(state, row))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (!exhausted).then(|| {
        cursor::encode(
            &state.cipher,
            "discovery",
            &Cursor {
                g: current.generation,
                r: last_rank,
            },
        )
    });
    Ok(Page {
        items,
        next_cursor,
        exhausted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdate_bounds_match_ages() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let (after, before) = birthdate_bounds(30, 40, today);
        // 40 today (born 1986-11-24) is in; 41 today (born 1985-11-24) is out.
        assert_eq!(after, NaiveDate::from_ymd_opt(1985, 11, 25).expect("date"));
        // 30 today (born 1996-11-24) is in; 30 tomorrow (born 1996-11-25) is out.
        assert_eq!(before, NaiveDate::from_ymd_opt(1996, 11, 24).expect("date"));
    }
}
