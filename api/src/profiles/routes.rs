//! `/v1/me`, `/v1/me/profile`, `/v1/me/preferences`, `/v1/me/settings`, `/v1/profiles/{id}`.
use poem::web::{cookie::CookieJar, Data};
use poem_openapi::{param::Path, payload::Json, types::Example, ApiResponse, Object, OpenApi};
use uuid::Uuid;
use validator::Validate;

use super::{
    service,
    types::{Me, Preferences, Profile, ProfilePatch, PublicProfile, Settings, SettingsPatch},
};
use crate::{
    auth::extract::BearerAuth, error::ApiError, error_set, openapi::ApiTags, state::AppState,
    validation::check,
};

error_set!(ReadErrors: [401, 403]);
error_set!(WriteErrors: [400, 401, 403, 413, 422]);
error_set!(ViewErrors: [400, 401, 403, 404]);
error_set!(PasswordErrors: [400, 401, 403, 413, 422]);

/// A new password.
#[derive(Object, Validate)]
#[oai(example, deny_unknown_fields)]
pub struct PasswordChange {
    /// 8 to 128 characters.
    #[validate(length(min = 8, max = 128))]
    #[oai(write_only)]
    pub new_password: String,
}

impl Example for PasswordChange {
    fn example() -> Self {
        Self {
            new_password: "an-even-slower-pace-2027".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// Changed; every other session is signed out.
    #[oai(status = 204)]
    NoContent,
}

pub struct MeApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Me")]
impl MeApi {
    /// Who am I
    ///
    /// My account (id, email, role, status), profile, preferences and settings in one call.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Me>, ApiError<ReadErrors>> {
        Ok(Json(service::me(&state, auth.0.user_id).await?))
    }

    /// Erase my account
    ///
    /// Deletes the account for good, everywhere: profile, photos (from the object store too),
    /// swipes, résonances and their conversations (each match is told, as for an unmatch),
    /// blocks, sessions, and my keys in Redis. Moderation decisions and reports stay for the
    /// moderators, naming nobody (what I wrote in my reports is removed). Every token of mine
    /// is refused at once (chat connections close with 4003, event streams end with
    /// `account.erased`). Needs a recent authentication (login, registration, magic link or
    /// `POST /v1/auth/reauthenticate` within `REAUTH_WINDOW_S`), otherwise 403
    /// `reauthentication-required`. A 503 means nothing was erased: retry.
    #[oai(path = "/me", method = "delete", operation_id = "eraseMe")]
    async fn erase(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        jar: &CookieJar,
    ) -> Result<crate::privacy::routes::Erased, ApiError<crate::privacy::routes::EraseErrors>> {
        crate::privacy::routes::erase(&state, &auth, jar).await
    }

    /// Edit my profile
    ///
    /// Changes only the fields present. Discovery needs a complete profile: display name,
    /// birthdate (18+), gender, location and at least one intention (`complete` says so). The
    /// bio is stored encrypted; the location is never shown to others.
    #[oai(path = "/me/profile", method = "patch", operation_id = "updateProfile")]
    async fn update_profile(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<ProfilePatch>,
    ) -> Result<Json<Profile>, ApiError<WriteErrors>> {
        Ok(Json(
            service::update_profile(&state, auth.0.user_id, body.0).await?,
        ))
    }

    /// My preferences
    ///
    /// Whom I want to meet: ages, genders, maximum distance.
    #[oai(
        path = "/me/preferences",
        method = "get",
        operation_id = "getPreferences"
    )]
    async fn preferences(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Preferences>, ApiError<ReadErrors>> {
        Ok(Json(service::preferences(&state, auth.0.user_id).await?))
    }

    /// Replace my preferences
    ///
    /// Replaces all preferences at once. Discovery applies them both ways.
    #[oai(
        path = "/me/preferences",
        method = "put",
        operation_id = "replacePreferences"
    )]
    async fn replace_preferences(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<Preferences>,
    ) -> Result<Json<Preferences>, ApiError<WriteErrors>> {
        check(&body.0)?;
        Ok(Json(
            service::replace_preferences(&state, auth.0.user_id, body.0).await?,
        ))
    }

    /// Change my password
    ///
    /// Needs a recent authentication (login, registration, magic link or
    /// `POST /v1/auth/reauthenticate` within `REAUTH_WINDOW_S`), otherwise 403
    /// `reauthentication-required`. Signs out every other session. Works for accounts created by
    /// magic link too (it sets their first password).
    #[oai(path = "/me/password", method = "put", operation_id = "changePassword")]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<PasswordChange>,
    ) -> Result<PasswordChanged, ApiError<PasswordErrors>> {
        check(&body.0)?;
        crate::auth::service::change_password(
            &state,
            &auth.0,
            secrecy::SecretString::from(body.0.new_password),
        )
        .await?;
        Ok(PasswordChanged::NoContent)
    }

    /// My settings
    ///
    /// Incognito, snooze and notification switches.
    #[oai(path = "/me/settings", method = "get", operation_id = "getSettings")]
    async fn settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Settings>, ApiError<ReadErrors>> {
        Ok(Json(service::settings(&state, auth.0.user_id).await?))
    }

    /// Change my settings
    ///
    /// Changes only the fields present. Incognito hides me from discovery and from profile views
    /// of anyone I have not liked.
    #[oai(
        path = "/me/settings",
        method = "patch",
        operation_id = "updateSettings"
    )]
    async fn update_settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<SettingsPatch>,
    ) -> Result<Json<Settings>, ApiError<WriteErrors>> {
        Ok(Json(
            service::update_settings(&state, auth.0.user_id, body.0).await?,
        ))
    }
}

pub struct ProfilesApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::People")]
impl ProfilesApi {
    /// See someone's profile
    ///
    /// A public view: no email, no coordinates; the distance between us rounded to the
    /// kilometre. 404 when the person does not exist, blocked me or was blocked by me, is
    /// suspended or banned, or is incognito and has not liked me.
    #[oai(
        path = "/profiles/:user_id",
        method = "get",
        operation_id = "getProfile"
    )]
    async fn profile(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        user_id: Path<Uuid>,
    ) -> Result<Json<PublicProfile>, ApiError<ViewErrors>> {
        Ok(Json(
            service::public_profile(&state, auth.0.user_id, user_id.0).await?,
        ))
    }
}
