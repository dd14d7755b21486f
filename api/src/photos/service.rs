//! Photos: upload (processing off the runtime, bounded), list, delete, reorder, serve.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use uuid::Uuid;

use super::{
    processing::{self, Refusal},
    storage::object_key,
};
use crate::{error::AppError, error::FieldProblem, state::AppState};

/// Most photos per profile.
pub const MAX_PHOTOS: i64 = 6;

#[derive(Clone, Debug, FromQueryResult)]
pub struct PhotoRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub position: i16,
    pub status: String,
    pub storage_key: String,
    pub content_hash: String,
    pub width: i32,
    pub height: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, user_id, position, status, storage_key, content_hash, width, height, created_at";

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

fn too_many() -> AppError {
    AppError::Conflict {
        kind: "too-many-photos",
        detail: format!("a profile holds at most {MAX_PHOTOS} photos; delete one first"),
    }
}

async fn count_photos(db: &impl ConnectionTrait, me: Uuid) -> Result<i64, AppError> {
    let row = db
        .query_one(stmt(
            "SELECT count(*) AS n FROM photos WHERE user_id = $1",
            vec![me.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// `POST /v1/me/photos`.
pub async fn upload(state: &AppState, me: Uuid, bytes: Vec<u8>) -> Result<PhotoRow, AppError> {
    if bytes.len() > processing::MAX_UPLOAD_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: processing::MAX_UPLOAD_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(AppError::Validation(vec![FieldProblem {
            field: "file".into(),
            code: "empty".into(),
            message: "the file is empty".into(),
        }]));
    }
    if count_photos(&state.db, me).await? >= MAX_PHOTOS {
        return Err(too_many());
    }
    state
        .limiter
        .hit("uploads_per_hour", &me.to_string())
        .await?;

    // Decode and encode on a blocking thread, a bounded number at a time.
    let permit = state
        .photo_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let processed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        processing::process(&bytes)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(|refusal| match refusal {
        Refusal::Unsupported(detail) => AppError::UnsupportedMediaType { detail },
        Refusal::Invalid(message) => AppError::Validation(vec![FieldProblem {
            field: "file".into(),
            code: "invalid_image".into(),
            message,
        }]),
    })?;

    let id = Uuid::new_v4();
    let storage_key = format!("photos/{id}/{}", &processed.hash[..16]);
    for variant in &processed.variants {
        state
            .photos
            .put(
                &object_key(&storage_key, variant.name),
                variant.webp.clone(),
            )
            .await
            .map_err(AppError::Internal)?;
    }
    let status = if state.settings.photo_review_before {
        "pending"
    } else {
        "approved"
    };
    match insert_row(state, me, id, status, &storage_key, &processed).await {
        Ok(row) => {
            tracing::info!(photo_id = %row.id, "photo stored");
            Ok(row)
        }
        Err(e) => {
            // No row, no objects: nothing is left behind in the store.
            remove_objects(state, &storage_key).await;
            Err(e)
        }
    }
}

async fn lock_photos(txn: &impl ConnectionTrait, me: Uuid) -> Result<(), AppError> {
    txn.execute(stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))",
        vec![me.to_string().into()],
    ))
    .await?;
    Ok(())
}

async fn insert_row(
    state: &AppState,
    me: Uuid,
    id: Uuid,
    status: &str,
    storage_key: &str,
    processed: &processing::Processed,
) -> Result<PhotoRow, AppError> {
    let txn = state.db.begin().await?;
    lock_photos(&txn, me).await?;
    if count_photos(&txn, me).await? >= MAX_PHOTOS {
        return Err(too_many());
    }
    let row = PhotoRow::find_by_statement(stmt(
        &format!(
            "INSERT INTO photos (id, user_id, position, status, storage_key, content_hash, width, height)
             VALUES ($1, $2, (SELECT COALESCE(max(position) + 1, 0) FROM photos WHERE user_id = $2), $3, $4, $5, $6, $7)
             RETURNING {COLUMNS}"
        ),
        vec![
            id.into(),
            me.into(),
            status.into(),
            storage_key.to_owned().into(),
            processed.hash.clone().into(),
            (processed.width as i32).into(),
            (processed.height as i32).into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("photo insert returned nothing")))?;
    txn.commit().await?;
    Ok(row)
}

/// Deletes every variant of a photo from the object store (a missing one counts as deleted).
async fn delete_objects(state: &AppState, storage_key: &str) -> anyhow::Result<()> {
    for (variant, _) in processing::VARIANTS {
        state
            .photos
            .delete(&object_key(storage_key, variant))
            .await?;
    }
    Ok(())
}

async fn remove_objects(state: &AppState, storage_key: &str) {
    if let Err(e) = delete_objects(state, storage_key).await {
        tracing::warn!(error = %e, "photo object not deleted");
    }
}

/// Records, in the transaction that deletes their rows, photos whose objects must go: if the
/// store fails afterwards, the worker deletes them later ([`purge_objects`]).
pub async fn schedule_object_deletions(
    txn: &impl ConnectionTrait,
    storage_keys: &[String],
) -> Result<(), AppError> {
    if storage_keys.is_empty() {
        return Ok(());
    }
    txn.execute(stmt(
        "INSERT INTO object_deletions (storage_key) SELECT unnest($1::text[])
         ON CONFLICT (storage_key) DO NOTHING",
        vec![storage_keys.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// Deletes the objects of scheduled photos and forgets those that went; the others stay
/// scheduled (logged) for the worker. Returns how many went.
pub async fn purge_objects(state: &AppState, storage_keys: &[String]) -> Result<u64, AppError> {
    let (mut gone, mut failed) = (Vec::new(), Vec::new());
    for key in storage_keys {
        match delete_objects(state, key).await {
            Ok(()) => gone.push(key.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "photo objects not deleted yet (retried)");
                failed.push(key.clone());
            }
        }
    }
    for (sql, keys) in [
        (
            "DELETE FROM object_deletions WHERE storage_key = ANY($1)",
            &gone,
        ),
        (
            "UPDATE object_deletions SET attempts = attempts + 1 WHERE storage_key = ANY($1)",
            &failed,
        ),
    ] {
        if !keys.is_empty() {
            state
                .db
                .execute(stmt(sql, vec![keys.clone().into()]))
                .await?;
        }
    }
    Ok(gone.len() as u64)
}

/// The worker's pass: retries the oldest scheduled deletions (100 at most).
pub async fn purge_scheduled_objects(state: &AppState) -> Result<u64, AppError> {
    let keys: Vec<String> = state
        .db
        .query_all(stmt(
            "SELECT storage_key FROM object_deletions ORDER BY created_at LIMIT 100",
            vec![],
        ))
        .await?
        .iter()
        .filter_map(|row| row.try_get::<String>("", "storage_key").ok())
        .collect();
    purge_objects(state, &keys).await
}

/// `GET /v1/me/photos`.
pub async fn list(state: &AppState, me: Uuid) -> Result<Vec<PhotoRow>, AppError> {
    Ok(PhotoRow::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM photos WHERE user_id = $1 ORDER BY position, created_at"),
        vec![me.into()],
    ))
    .all(&state.db)
    .await?)
}

/// `DELETE /v1/me/photos/{id}`: the row, then its objects; positions stay contiguous.
pub async fn delete(state: &AppState, me: Uuid, id: Uuid) -> Result<(), AppError> {
    let txn = state.db.begin().await?;
    let row = PhotoRow::find_by_statement(stmt(
        &format!("DELETE FROM photos WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"),
        vec![id.into(), me.into()],
    ))
    .one(&txn)
    .await?
    .ok_or(AppError::NotFound("no photo of yours has this id"))?;
    txn.execute(stmt(
        "UPDATE photos SET position = position - 1 WHERE user_id = $1 AND position > $2",
        vec![me.into(), row.position.into()],
    ))
    .await?;
    let keys = [row.storage_key];
    schedule_object_deletions(&txn, &keys).await?;
    txn.commit().await?;
    purge_objects(state, &keys).await?;
    Ok(())
}

/// `PUT /v1/me/photos/order`: `ids` must be exactly my photos, in the new order.
pub async fn reorder(state: &AppState, me: Uuid, ids: &[Uuid]) -> Result<Vec<PhotoRow>, AppError> {
    let txn = state.db.begin().await?;
    // Under the upload lock, and checked inside it: a concurrent upload or delete cannot slip
    // between the check and the update.
    lock_photos(&txn, me).await?;
    let mine = PhotoRow::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM photos WHERE user_id = $1"),
        vec![me.into()],
    ))
    .all(&txn)
    .await?;
    let mut wanted: Vec<Uuid> = ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let mut have: Vec<Uuid> = mine.iter().map(|p| p.id).collect();
    have.sort();
    if wanted.len() != ids.len() || wanted != have {
        return Err(AppError::Validation(vec![FieldProblem {
            field: "ids".into(),
            code: "not_a_permutation".into(),
            message: "list each of your photos exactly once".into(),
        }]));
    }
    // Two steps so the (user, position) uniqueness never sees a duplicate midway.
    txn.execute(stmt(
        "UPDATE photos SET position = position + 1000 WHERE user_id = $1",
        vec![me.into()],
    ))
    .await?;
    for (i, id) in ids.iter().enumerate() {
        txn.execute(stmt(
            "UPDATE photos SET position = $3 WHERE id = $1 AND user_id = $2",
            vec![(*id).into(), me.into(), (i as i16).into()],
        ))
        .await?;
    }
    txn.commit().await?;
    list(state, me).await
}

/// Signed links stay valid until the end of the next full hour: the same link for every viewer
/// within an hour, so a shared cache (CDN) keeps one copy.
pub const SIGNED_URL_HOURS: i64 = 2;

fn signature(state: &AppState, id: Uuid, variant: &str, exp: i64) -> String {
    use base64::Engine;
    let mac = state
        .cipher
        .mac("photo-url", format!("{id}/{variant}/{exp}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// A short-lived link to an approved photo's variant that needs no credentials. Access was
/// checked when the link was handed out (cards respect blocks and account state).
pub fn signed_url(state: &AppState, id: Uuid, variant: &str) -> String {
    let now = Utc::now().timestamp();
    let exp = (now / 3600 + SIGNED_URL_HOURS) * 3600;
    format!(
        "{}/v1/photos/{id}/{variant}/signed?exp={exp}&sig={}",
        state.settings.public_base_url,
        signature(state, id, variant, exp)
    )
}

/// A signed link's variant: bytes, content hash, and seconds the link has left.
pub async fn signed_variant(
    state: &AppState,
    id: Uuid,
    variant: &str,
    exp: i64,
    sig: &str,
) -> Result<(bytes::Bytes, String, i64), AppError> {
    let expected = signature(state, id, variant, exp);
    if !crate::crypto::constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
        return Err(AppError::Forbidden {
            kind: "invalid-signature",
            detail: "this photo link is not valid".into(),
            until: None,
        });
    }
    let left = exp - Utc::now().timestamp();
    if left <= 0 {
        return Err(AppError::Forbidden {
            kind: "link-expired",
            detail: "this photo link has expired; fetch the profile again for a fresh one".into(),
            until: None,
        });
    }
    let hidden = || AppError::NotFound("no such photo, or it is hidden");
    let row = PhotoRow::find_by_statement(stmt(
        &format!(
            "SELECT {} FROM photos ph JOIN users u ON u.id = ph.user_id
             WHERE ph.id = $1 AND ph.status = 'approved'
               AND (u.status = 'active' OR (u.status = 'suspended' AND u.suspended_until <= now()))",
            COLUMNS
                .split(", ")
                .map(|c| format!("ph.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        vec![id.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or_else(hidden)?;
    if !processing::VARIANTS
        .iter()
        .any(|(name, _)| *name == variant)
    {
        return Err(hidden());
    }
    let bytes = state
        .photos
        .get(&object_key(&row.storage_key, variant))
        .await
        .map_err(AppError::Internal)?
        .ok_or_else(hidden)?;
    Ok((
        bytes,
        format!("{}-{variant}", &row.content_hash[..16]),
        left,
    ))
}

/// One variant's bytes for `viewer`, with the photo's content hash (its ETag).
pub async fn variant(
    state: &AppState,
    viewer: Uuid,
    id: Uuid,
    variant: &str,
) -> Result<(bytes::Bytes, String), AppError> {
    if !processing::VARIANTS
        .iter()
        .any(|(name, _)| *name == variant)
    {
        return Err(AppError::NotFound("no such variant (`full` or `thumb`)"));
    }
    let hidden = AppError::NotFound("no such photo, or it is hidden from you");
    let row = PhotoRow::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM photos WHERE id = $1"),
        vec![id.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or(AppError::NotFound(
        "no such photo, or it is hidden from you",
    ))?;
    if row.user_id != viewer
        && (row.status != "approved"
            || !crate::profiles::service::is_visible(state, viewer, row.user_id).await?)
    {
        return Err(hidden);
    }
    let bytes = state
        .photos
        .get(&object_key(&row.storage_key, variant))
        .await
        .map_err(AppError::Internal)?
        .ok_or(AppError::NotFound(
            "no such photo, or it is hidden from you",
        ))?;
    Ok((bytes, format!("{}-{variant}", &row.content_hash[..16])))
}
