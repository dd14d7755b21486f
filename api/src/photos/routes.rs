//! `POST/GET /v1/me/photos`, `DELETE /v1/me/photos/{id}`, `PUT /v1/me/photos/order`,
//! `GET /v1/photos/{id}/{variant}`.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::{Binary, Json},
    types::{multipart::Upload, Example},
    ApiResponse, Multipart, Object, OpenApi,
};
use uuid::Uuid;

use super::service::{self, PhotoRow};
use crate::{
    auth::extract::BearerAuth, error::ApiError, error_set, openapi::ApiTags, state::AppState,
};

error_set!(UploadErrors: [400, 401, 403, 409, 413, 415, 422, 429]);
error_set!(MineErrors: [400, 401, 403, 404, 422]);
error_set!(ServeErrors: [400, 401, 403, 404]);
error_set!(SignedErrors: [400, 403, 404]);

/// A photo upload.
#[derive(Multipart)]
pub struct PhotoUpload {
    /// The picture: JPEG, PNG or WebP (the real format is read from the bytes), at most 15 MiB,
    /// 50 megapixels and 12,000 px a side.
    pub file: Upload,
}

/// The URLs of a photo's variants.
#[derive(Object)]
pub struct PhotoUrls {
    /// Longest side 1280 px, WebP.
    pub full: String,
    /// Longest side 320 px, WebP.
    pub thumb: String,
}

/// One of my photos.
#[derive(Object)]
#[oai(example)]
pub struct Photo {
    pub id: Uuid,
    /// 0 is the main photo.
    pub position: i16,
    /// `pending` (waiting for a moderator; only you see it), `approved` (visible to others) or
    /// `rejected` (only you see it).
    pub status: String,
    /// The picture's size after orientation (the variants keep its proportions).
    pub width: i32,
    pub height: i32,
    /// Variant name → URL (each needs my credentials; see `getPhoto`).
    pub variants: PhotoUrls,
    pub created_at: DateTime<Utc>,
}

impl Example for Photo {
    fn example() -> Self {
        let id = Uuid::nil();
        Photo {
            id,
            position: 0,
            status: "approved".into(),
            width: 3024,
            height: 4032,
            variants: PhotoUrls {
                full: format!("https://api.despacio.example/v1/photos/{id}/full"),
                thumb: format!("https://api.despacio.example/v1/photos/{id}/thumb"),
            },
            created_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

/// My photos, in display order.
#[derive(Object)]
#[oai(example)]
pub struct PhotoList {
    pub items: Vec<Photo>,
}

impl Example for PhotoList {
    fn example() -> Self {
        PhotoList {
            items: vec![Photo::example()],
        }
    }
}

/// The new order of my photos.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct PhotoOrder {
    /// Every one of my photo ids, once, main photo first.
    pub ids: Vec<Uuid>,
}

impl Example for PhotoOrder {
    fn example() -> Self {
        PhotoOrder {
            ids: vec![Uuid::nil()],
        }
    }
}

#[derive(ApiResponse)]
pub enum Uploaded {
    /// Stored: both variants are in the object store.
    #[oai(status = 201)]
    Created(Json<Photo>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted, with its stored variants.
    #[oai(status = 204)]
    NoContent,
}

/// Variants never change (new content gets a new key), so they may be cached for a year.
const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

#[derive(ApiResponse)]
pub enum PhotoBytes {
    /// The variant, as WebP. `ETag` is its content hash; `Cache-Control` says who may keep it
    /// and for how long.
    #[oai(status = 200, content_type = "image/webp")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// `If-None-Match` matched: use your copy.
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

pub(crate) fn to_api(state: &AppState, row: PhotoRow) -> Photo {
    let base = &state.settings.public_base_url;
    Photo {
        variants: PhotoUrls {
            full: format!("{base}/v1/photos/{}/full", row.id),
            thumb: format!("{base}/v1/photos/{}/thumb", row.id),
        },
        id: row.id,
        position: row.position,
        status: row.status,
        width: row.width,
        height: row.height,
        created_at: row.created_at,
    }
}

pub struct PhotosApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Photos")]
impl PhotosApi {
    /// Add a photo
    ///
    /// `multipart/form-data` with one field, `file`. The format is read from the bytes (JPEG, PNG,
    /// WebP; HEIC/AVIF → 415). The picture is turned upright (EXIF orientation), every piece of
    /// metadata is dropped (EXIF, GPS, XMP, ICC, comments), and two WebP variants are stored:
    /// `full` (1280 px on the long side) and `thumb` (320 px), lossy quality 80. Limits: 15 MiB
    /// (413), 50 megapixels and 12,000 px a side (422), 6 photos per profile (409),
    /// `uploads_per_hour` (429). New photos are visible to others at once unless the deployment
    /// reviews them first (`PHOTO_REVIEW=before`: `pending` until a moderator approves them).
    #[oai(path = "/me/photos", method = "post", operation_id = "uploadPhoto")]
    async fn upload(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        form: PhotoUpload,
    ) -> Result<Uploaded, ApiError<UploadErrors>> {
        let bytes = form
            .file
            .into_vec()
            .await
            .map_err(|_| crate::error::AppError::BadRequest {
                detail: "the uploaded file could not be read".into(),
                field: Some("file".into()),
            })?;
        let row = service::upload(&state, auth.0.user_id, bytes).await?;
        Ok(Uploaded::Created(Json(to_api(&state, row))))
    }

    /// My photos
    ///
    /// Every photo of mine, in display order, whatever its moderation status.
    #[oai(path = "/me/photos", method = "get", operation_id = "listMyPhotos")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<PhotoList>, ApiError<MineErrors>> {
        let rows = service::list(&state, auth.0.user_id).await?;
        Ok(Json(PhotoList {
            items: rows.into_iter().map(|r| to_api(&state, r)).collect(),
        }))
    }

    /// Delete a photo
    ///
    /// Removes the photo and its stored variants; the photos after it move up.
    #[oai(
        path = "/me/photos/:id",
        method = "delete",
        operation_id = "deletePhoto"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError<MineErrors>> {
        service::delete(&state, auth.0.user_id, id.0).await?;
        Ok(Deleted::NoContent)
    }

    /// Reorder my photos
    ///
    /// Sends every one of my photo ids once, main photo first (422 otherwise).
    #[oai(
        path = "/me/photos/order",
        method = "put",
        operation_id = "reorderPhotos"
    )]
    async fn reorder(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<PhotoOrder>,
    ) -> Result<Json<PhotoList>, ApiError<MineErrors>> {
        let rows = service::reorder(&state, auth.0.user_id, &body.0.ids).await?;
        Ok(Json(PhotoList {
            items: rows.into_iter().map(|r| to_api(&state, r)).collect(),
        }))
    }

    /// A photo
    ///
    /// One variant (`full` or `thumb`) as WebP. Mine whatever their status; someone else's only
    /// when approved and when they are visible to me (no block either way, account active) —
    /// 404 otherwise. Variants are content-addressed and never change: `ETag` is their hash,
    /// `Cache-Control: private, max-age=31536000, immutable`, and `If-None-Match` answers 304.
    /// Browsers authenticate with their cookies (`<img src>` sends them).
    #[oai(
        path = "/photos/:id/:variant",
        method = "get",
        operation_id = "getPhoto"
    )]
    async fn photo(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// `full` (1280 px) or `thumb` (320 px).
        variant: Path<String>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<PhotoBytes, ApiError<ServeErrors>> {
        let (bytes, hash) = service::variant(&state, auth.0.user_id, id.0, &variant.0).await?;
        let etag = format!("\"{hash}\"");
        if etag_matches(if_none_match.0.as_deref(), &etag) {
            return Ok(PhotoBytes::NotModified(etag, CACHE_CONTROL.into()));
        }
        Ok(PhotoBytes::Ok(
            Binary(bytes.to_vec()),
            etag,
            CACHE_CONTROL.into(),
        ))
    }

    /// A photo, by signed link
    ///
    /// What the photo URLs of profile cards point to: a link signed by the API, valid until the
    /// end of the next full hour, that needs no credentials (an `<img src>` works anywhere) and is
    /// the same for every viewer within an hour, so a CDN can cache it: `Cache-Control: public,
    /// max-age=<seconds left>, immutable`, `ETag`, 304 on `If-None-Match`. Access was checked
    /// when the card was served (blocks, incognito, account state); the photo must still be
    /// approved and its owner's account active. An altered link → 403 `invalid-signature`; an
    /// expired one → 403 `link-expired` (fetch the card again).
    #[oai(
        path = "/photos/:id/:variant/signed",
        method = "get",
        operation_id = "getSignedPhoto"
    )]
    async fn signed_photo(
        &self,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// `full` (1280 px) or `thumb` (320 px).
        variant: Path<String>,
        /// Expiry (Unix seconds), from the link.
        exp: Query<i64>,
        /// Signature, from the link.
        sig: Query<String>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<PhotoBytes, ApiError<SignedErrors>> {
        let (bytes, hash, left) =
            service::signed_variant(&state, id.0, &variant.0, exp.0, &sig.0).await?;
        let etag = format!("\"{hash}\"");
        let cache = format!("public, max-age={left}, immutable");
        if etag_matches(if_none_match.0.as_deref(), &etag) {
            return Ok(PhotoBytes::NotModified(etag, cache));
        }
        Ok(PhotoBytes::Ok(Binary(bytes.to_vec()), etag, cache))
    }
}
