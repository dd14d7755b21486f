//! Profiles, preferences and settings: storage and visibility rules.
//!
//! Visibility of someone else's profile (`GET /v1/profiles/{id}`): hidden (404, as if it did not
//! exist) when either person blocked the other, when the account is suspended or banned, or when
//! the person is incognito and has neither liked me nor matched with me.
use chrono::Utc;
use entities::{preferences, profiles, settings, users};
use poem_openapi::types::MaybeUndefined;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set, Statement};
use uuid::Uuid;

use super::types::{
    Gender, Location, Me, Preferences, Profile, ProfilePatch, PublicProfile, Settings,
    SettingsPatch,
};
use crate::{auth::service::email_of, error::AppError, state::AppState, validation::age_on};

fn bio_context(user_id: Uuid) -> String {
    format!("profiles.bio:{user_id}")
}

fn to_profile(state: &AppState, p: &profiles::Model) -> Result<Profile, AppError> {
    let bio = p
        .bio_ciphertext
        .as_deref()
        .map(|c| state.cipher.decrypt_string(c, &bio_context(p.user_id)))
        .transpose()?;
    let location = match (p.latitude, p.longitude) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
        }),
        _ => None,
    };
    let intentions = super::cards::intentions(&p.intentions);
    Ok(Profile {
        complete: p.display_name.is_some()
            && p.birthdate.is_some()
            && p.gender.is_some()
            && location.is_some()
            && !intentions.is_empty(),
        display_name: p.display_name.clone(),
        birthdate: p.birthdate.map(crate::validation::Date),
        age: p.birthdate.map(|b| age_on(b, Utc::now().date_naive())),
        gender: p.gender.as_deref().and_then(Gender::parse),
        bio,
        intentions,
        location,
        updated_at: p.updated_at,
    })
}

fn to_preferences(p: &preferences::Model) -> Preferences {
    Preferences {
        age_min: p.age_min,
        age_max: p.age_max,
        max_distance_km: p.max_distance_km,
        genders: p.genders.iter().filter_map(|g| Gender::parse(g)).collect(),
    }
}

fn to_settings(s: &settings::Model) -> Settings {
    Settings {
        incognito: s.incognito,
        snoozed_until: s.snoozed_until,
        notify_resonances: s.notify_resonances,
        notify_messages: s.notify_messages,
        notify_likes: s.notify_likes,
    }
}

fn missing(what: &'static str) -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "the {what} row of an existing user is missing"
    ))
}

async fn load_profile(state: &AppState, user_id: Uuid) -> Result<profiles::Model, AppError> {
    profiles::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| missing("profile"))
}

async fn load_preferences(state: &AppState, user_id: Uuid) -> Result<preferences::Model, AppError> {
    preferences::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| missing("preferences"))
}

async fn load_settings(state: &AppState, user_id: Uuid) -> Result<settings::Model, AppError> {
    settings::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| missing("settings"))
}

/// `GET /v1/me`.
pub async fn me(state: &AppState, user_id: Uuid) -> Result<Me, AppError> {
    let user = users::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::Unauthorized {
            kind: "unauthorized",
            detail: "this account no longer exists",
        })?;
    let (profile, prefs, sets) = tokio::try_join!(
        load_profile(state, user_id),
        load_preferences(state, user_id),
        load_settings(state, user_id)
    )?;
    Ok(Me {
        id: user.id,
        email: email_of(state, &user)?,
        email_verified: user.email_verified_at.is_some(),
        role: user.role.clone(),
        status: user.status.clone(),
        created_at: user.created_at,
        profile: to_profile(state, &profile)?,
        preferences: to_preferences(&prefs),
        settings: to_settings(&sets),
    })
}

/// `PATCH /v1/me/profile`.
pub async fn update_profile(
    state: &AppState,
    user_id: Uuid,
    patch: ProfilePatch,
) -> Result<Profile, AppError> {
    patch.check()?;
    let mut row = load_profile(state, user_id).await?.into_active_model();
    if let Some(name) = patch.display_name {
        row.display_name = Set(Some(name.trim().to_owned()));
    }
    if let Some(birthdate) = patch.birthdate {
        row.birthdate = Set(Some(birthdate.0));
    }
    if let Some(gender) = patch.gender {
        row.gender = Set(Some(gender.as_str().to_owned()));
    }
    match patch.bio {
        MaybeUndefined::Value(bio) if !bio.trim().is_empty() => {
            row.bio_ciphertext = Set(Some(
                state
                    .cipher
                    .encrypt(bio.trim().as_bytes(), &bio_context(user_id)),
            ))
        }
        MaybeUndefined::Value(_) | MaybeUndefined::Null => row.bio_ciphertext = Set(None),
        MaybeUndefined::Undefined => {}
    }
    if let Some(list) = patch.intentions {
        row.intentions = Set(list.iter().map(|i| i.as_str().to_owned()).collect());
    }
    match patch.location {
        MaybeUndefined::Value(Location {
            latitude,
            longitude,
        }) => {
            row.latitude = Set(Some(latitude));
            row.longitude = Set(Some(longitude));
        }
        MaybeUndefined::Null => {
            row.latitude = Set(None);
            row.longitude = Set(None);
        }
        MaybeUndefined::Undefined => {}
    }
    row.updated_at = Set(Utc::now());
    let saved = row.update(&state.db).await?;
    to_profile(state, &saved)
}

/// `GET /v1/me/preferences`.
pub async fn preferences(state: &AppState, user_id: Uuid) -> Result<Preferences, AppError> {
    Ok(to_preferences(&load_preferences(state, user_id).await?))
}

/// `PUT /v1/me/preferences`.
pub async fn replace_preferences(
    state: &AppState,
    user_id: Uuid,
    prefs: Preferences,
) -> Result<Preferences, AppError> {
    let mut genders: Vec<String> = prefs
        .genders
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    genders.sort();
    genders.dedup();
    let saved = preferences::ActiveModel {
        user_id: Set(user_id),
        age_min: Set(prefs.age_min),
        age_max: Set(prefs.age_max),
        max_distance_km: Set(prefs.max_distance_km),
        genders: Set(genders),
        updated_at: Set(Utc::now()),
    }
    .update(&state.db)
    .await?;
    Ok(to_preferences(&saved))
}

/// `GET /v1/me/settings`.
pub async fn settings(state: &AppState, user_id: Uuid) -> Result<Settings, AppError> {
    Ok(to_settings(&load_settings(state, user_id).await?))
}

/// `PATCH /v1/me/settings`.
pub async fn update_settings(
    state: &AppState,
    user_id: Uuid,
    patch: SettingsPatch,
) -> Result<Settings, AppError> {
    let mut row = load_settings(state, user_id).await?.into_active_model();
    if let Some(v) = patch.incognito {
        row.incognito = Set(v);
    }
    match patch.snoozed_until {
        MaybeUndefined::Value(until) if until <= Utc::now() => {
            return Err(AppError::invalid(
                "snoozed_until",
                "past",
                "must be in the future (or null to end the snooze)",
            ))
        }
        MaybeUndefined::Value(until) => row.snoozed_until = Set(Some(until)),
        MaybeUndefined::Null => row.snoozed_until = Set(None),
        MaybeUndefined::Undefined => {}
    }
    if let Some(v) = patch.notify_resonances {
        row.notify_resonances = Set(v);
    }
    if let Some(v) = patch.notify_messages {
        row.notify_messages = Set(v);
    }
    if let Some(v) = patch.notify_likes {
        row.notify_likes = Set(v);
    }
    row.updated_at = Set(Utc::now());
    Ok(to_settings(&row.update(&state.db).await?))
}

/// The visibility rules of a profile page (PostGIS and the card query do the rest).
const VISIBLE_SQL: &str = r#"
SELECT p.user_id
FROM profiles p
JOIN users u ON u.id = p.user_id
JOIN settings s ON s.user_id = p.user_id
WHERE p.user_id = $1
  AND (u.status = 'active' OR (u.status = 'suspended' AND u.suspended_until <= now()) OR p.user_id = $2)
  AND NOT EXISTS (
      SELECT 1 FROM blocks b
      WHERE (b.blocker_id = $1 AND b.blocked_id = $2) OR (b.blocker_id = $2 AND b.blocked_id = $1))
  AND (p.user_id = $2
       OR NOT s.incognito
       OR EXISTS (SELECT 1 FROM swipes sw WHERE sw.swiper_id = $1 AND sw.target_id = $2 AND sw.action = 'like')
       OR EXISTS (SELECT 1 FROM resonances r
                  WHERE r.ended_at IS NULL AND r.user_a = LEAST($1, $2) AND r.user_b = GREATEST($1, $2)))
"#;

/// Whether `viewer` may see `target` at all (blocks, account state, incognito).
pub async fn is_visible(state: &AppState, viewer: Uuid, target: Uuid) -> Result<bool, AppError> {
    let stmt = Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        VISIBLE_SQL,
        [target.into(), viewer.into()],
    );
    Ok(state.db.query_one(stmt).await?.is_some())
}

/// `GET /v1/profiles/{user_id}`.
pub async fn public_profile(
    state: &AppState,
    viewer: Uuid,
    target: Uuid,
) -> Result<PublicProfile, AppError> {
    if !is_visible(state, viewer, target).await? {
        return Err(AppError::NotFound("no visible profile has this id"));
    }
    super::cards::load(state, viewer, &[target])
        .await?
        .remove(&target)
        .ok_or(AppError::NotFound("no visible profile has this id"))
}
