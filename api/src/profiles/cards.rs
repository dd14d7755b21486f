//! Profile cards: what one person may see of others (discovery, résonances, likes, profiles).
//! No email, no coordinates: the distance is rounded to the kilometre (at least 1) by PostGIS.
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{FromQueryResult, Statement};
use uuid::Uuid;

use super::types::{Gender, Intention, PublicProfile};
use crate::{error::AppError, state::AppState, validation::age_on};

/// A card as the SQL returns it; `rank` is set when it comes from a discovery queue.
#[derive(FromQueryResult)]
pub(crate) struct CardRow {
    pub(crate) rank: Option<f64>,
    pub(crate) user_id: Uuid,
    display_name: Option<String>,
    birthdate: Option<chrono::NaiveDate>,
    gender: Option<String>,
    bio_ciphertext: Option<Vec<u8>>,
    intentions: Vec<String>,
    shared: Vec<String>,
    distance_km: Option<i32>,
    photo_ids: Vec<Uuid>,
}

/// The card columns over `p` (the person shown), given the viewer's location and intentions as
/// SQL expressions (`me.location`, `me.intentions` from a join, or query parameters).
pub(crate) fn card_columns(my_location: &str, my_intentions: &str) -> String {
    format!(
        "p.user_id, p.display_name, p.birthdate, p.gender, p.bio_ciphertext, p.intentions,
       ARRAY(SELECT unnest(p.intentions) INTERSECT SELECT unnest({my_intentions}) ORDER BY 1) AS shared,
       CASE WHEN p.location IS NULL OR {my_location} IS NULL THEN NULL
            ELSE GREATEST(1, round(ST_Distance(p.location, {my_location}) / 1000.0))::int END AS distance_km,
       ARRAY(SELECT ph.id FROM photos ph WHERE ph.user_id = p.user_id AND ph.status = 'approved'
             ORDER BY ph.position) AS photo_ids"
    )
}

fn cards_sql() -> String {
    format!(
        "SELECT NULL::double precision AS rank, {}
         FROM profiles p LEFT JOIN profiles me ON me.user_id = $1
         WHERE p.user_id = ANY($2)",
        card_columns("me.location", "me.intentions")
    )
}

pub(crate) fn intentions(stored: &[String]) -> Vec<Intention> {
    stored.iter().filter_map(|s| Intention::parse(s)).collect()
}

/// Cards of `ids` as `viewer` sees them (visibility is the caller's business).
pub async fn load(
    state: &AppState,
    viewer: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, PublicProfile>, AppError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        cards_sql(),
        [viewer.into(), ids.to_vec().into()],
    );
    let rows = CardRow::find_by_statement(stmt).all(&state.db).await?;
    rows.into_iter()
        .map(|row| Ok((row.user_id, to_public(state, row)?)))
        .collect()
}

/// Decrypts and shapes one card.
pub(crate) fn to_public(state: &AppState, row: CardRow) -> Result<PublicProfile, AppError> {
    let today = Utc::now().date_naive();
    let bio = row
        .bio_ciphertext
        .as_deref()
        .map(|c| {
            state
                .cipher
                .decrypt_string(c, &format!("profiles.bio:{}", row.user_id))
        })
        .transpose()?;
    Ok(PublicProfile {
        user_id: row.user_id,
        display_name: row.display_name,
        age: row.birthdate.map(|b| age_on(b, today)),
        gender: row.gender.as_deref().and_then(Gender::parse),
        bio,
        intentions: intentions(&row.intentions),
        shared_intentions: intentions(&row.shared),
        distance_km: row.distance_km,
        photos: row
            .photo_ids
            .iter()
            .map(|id| crate::photos::service::signed_url(state, *id, "full"))
            .collect(),
    })
}

/// Cards in the order of `ids` (ids without a profile are skipped).
pub async fn load_ordered(
    state: &AppState,
    viewer: Uuid,
    ids: &[Uuid],
) -> Result<Vec<PublicProfile>, AppError> {
    let mut map = load(state, viewer, ids).await?;
    Ok(ids.iter().filter_map(|id| map.remove(id)).collect())
}
