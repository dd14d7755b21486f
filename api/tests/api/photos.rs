//! Photos: real decoding and encoding, a local folder and a real S3 API (moto), access rules.
use image::{ImageEncoder, RgbImage};
use reqwest::{multipart, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp, TestUser};

/// A photo-like picture (gradients and texture, so encoders have real work).
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23;
        image::Rgb([
            ((x * 255 / w.max(1)) as u8).wrapping_add(n as u8),
            ((y * 255 / h.max(1)) as u8).wrapping_add(n as u8),
            (((x + y) * 128 / (w + h).max(1)) as u8).wrapping_add(n as u8),
        ])
    })
}

pub(crate) fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(picture(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("jpeg");
    out
}

/// A JPEG with an EXIF block: orientation and a GPS position (which must not survive).
fn jpeg_with_exif(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let plain = jpeg(w, h);
    let mut tiff: Vec<u8> = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    // IFD0: Orientation, GPS IFD pointer.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0x00, 0x04, 0, 0, 0, 1]);
    tiff.extend_from_slice(&38u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD: latitude ref "N" and a latitude marker string we can search for.
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x01, 0x00, 0x02, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(b"SECRET-GPS-48.8566");
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(picture(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("png");
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header announces `w`×`h` pixels (a decompression bomb's shape): a few hundred
/// bytes that would expand to gigabytes.
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    chunk(b"IEND", &[]);
    out
}

async fn upload(
    app: &TestApp,
    user: &TestUser,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
) -> reqwest::Response {
    let part = multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .expect("mime");
    app.client
        .post(app.url("/v1/me/photos"))
        .bearer_auth(&user.access)
        .multipart(multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
}

pub(crate) async fn upload_ok(app: &TestApp, user: &TestUser, bytes: Vec<u8>) -> Value {
    let resp = upload(app, user, bytes, "photo.jpg", "image/jpeg").await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    resp.json().await.expect("json")
}

async fn fetch(app: &TestApp, token: &str, id: &str, variant: &str) -> reqwest::Response {
    app.get_authed(&format!("/v1/photos/{id}/{variant}"), token)
        .await
}

fn webp_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        chunks.push(String::from_utf8_lossy(&bytes[at..at + 4]).to_string());
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        at += 8 + len + (len & 1);
    }
    chunks
}

pub(crate) fn local_objects(app: &TestApp, id: &str) -> Vec<String> {
    let dir = app.outbox.join("photos").join("photos").join(id);
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn an_upload_is_turned_upright_stripped_and_stored_as_two_webp_variants() {
    let app = spawn_app().await;
    let ana = app.person(json!({})).await;
    // A 1600×1200 landscape picture whose EXIF says "rotate 90° clockwise" (orientation 6).
    let photo = upload_ok(&app, &ana, jpeg_with_exif(1600, 1200, 6)).await;
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(1200), Some(1600)),
        "{photo}"
    );
    assert_eq!(photo["status"], "approved");
    assert_eq!(photo["position"], 0);
    let id = photo["id"].as_str().expect("id").to_owned();
    assert!(photo["variants"]["full"]
        .as_str()
        .expect("url")
        .ends_with(&format!("/v1/photos/{id}/full")));

    for (variant, long_side) in [("full", 1280u32), ("thumb", 320u32)] {
        let resp = fetch(&app, &ana.access, &id, variant).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/webp");
        assert_eq!(
            resp.headers()["cache-control"],
            "private, max-age=31536000, immutable"
        );
        let etag = resp.headers()["etag"].to_str().expect("etag").to_owned();
        let bytes = resp.bytes().await.expect("bytes");
        // Lossy WebP, no metadata chunk, upright, long side as documented.
        let chunks = webp_chunks(&bytes);
        assert!(
            chunks
                .iter()
                .all(|c| c == "VP8 " || c == "VP8X" || c == "ALPH"),
            "{chunks:?}"
        );
        assert!(
            !bytes.windows(10).any(|w| w == b"SECRET-GPS"),
            "GPS data survived"
        );
        let decoded = image::load_from_memory(&bytes).expect("a valid WebP");
        assert_eq!(decoded.height(), long_side, "portrait after orientation");
        assert_eq!(decoded.width(), long_side * 3 / 4);
        // Revalidation: same ETag → 304.
        let again = app
            .client
            .get(app.url(&format!("/v1/photos/{id}/{variant}")))
            .bearer_auth(&ana.access)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("get");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"].to_str().expect("etag"), etag);
    }
    // The object keys hold no personal data: the photo id, a content hash, the variant.
    let mut objects = local_objects(&app, &id);
    objects.sort();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects[0].ends_with("-full.webp") && objects[1].ends_with("-thumb.webp"),
        "{objects:?}"
    );
    assert!(!objects.iter().any(|o| o.contains(&ana.id.to_string())));

    // PNG and WebP are taken too; a small picture is never upscaled.
    let from_png = upload_ok(&app, &ana, png(400, 300)).await;
    let full = fetch(
        &app,
        &ana.access,
        from_png["id"].as_str().expect("id"),
        "full",
    )
    .await
    .bytes()
    .await
    .expect("bytes");
    let decoded = image::load_from_memory(&full).expect("webp");
    assert_eq!((decoded.width(), decoded.height()), (400, 300));
    let webp_input = webp::Encoder::from_rgb(picture(640, 480).as_raw(), 640, 480)
        .encode(90.0)
        .to_vec();
    let from_webp = upload_ok(&app, &ana, webp_input).await;
    assert_eq!(from_webp["position"], 2);
}

#[tokio::test]
async fn unsafe_or_unsupported_files_get_clear_problems() {
    let app = spawn_app().await;
    let ana = app.person(json!({})).await;
    // The name and the header say JPEG; the bytes say otherwise.
    let resp = upload(
        &app,
        &ana,
        b"<html>not a picture</html>".to_vec(),
        "cat.jpg",
        "image/jpeg",
    )
    .await;
    let problem = assert_problem(resp, 415, "unsupported-media-type").await;
    assert_eq!(problem["field"], "file");
    // HEIC (an iPhone's default) is detected and refused clearly.
    let mut heic = vec![0, 0, 0, 0x18];
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic.extend_from_slice(&[0u8; 64]);
    let resp = upload(&app, &ana, heic, "IMG_0001.HEIC", "image/heic").await;
    let problem = assert_problem(resp, 415, "unsupported-media-type").await;
    assert!(
        problem["detail"].as_str().expect("detail").contains("HEIC"),
        "{problem}"
    );
    // A truncated JPEG, and a JPEG with something appended (a polyglot).
    let full = jpeg(800, 600);
    let resp = upload(
        &app,
        &ana,
        full[..full.len() / 2].to_vec(),
        "half.jpg",
        "image/jpeg",
    )
    .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "file");
    let mut polyglot = full.clone();
    polyglot.extend_from_slice(b"PK\x03\x04 a zip archive rides along");
    let resp = upload(&app, &ana, polyglot, "poly.jpg", "image/jpeg").await;
    assert_problem(resp, 422, "validation-failed").await;
    // Decompression bombs: a tiny file announcing 20,000 × 20,000 or 8,000 × 8,000 pixels.
    for (w, h) in [(20_000, 20_000), (8_000, 8_000)] {
        let resp = upload(&app, &ana, png_bomb(w, h), "bomb.png", "image/png").await;
        let problem = assert_problem(resp, 422, "validation-failed").await;
        assert_eq!(problem["field"], "file", "{problem}");
    }
    // A PNG whose pixel data is corrupt.
    let mut broken = png(300, 200);
    let n = broken.len();
    for b in &mut broken[60..n - 20] {
        *b = 0x5A;
    }
    let resp = upload(&app, &ana, broken, "broken.png", "image/png").await;
    assert_problem(resp, 422, "validation-failed").await;
    // Over 15 MiB: 413 before anything is decoded.
    let resp = upload(
        &app,
        &ana,
        vec![0xFF; 16 * 1024 * 1024],
        "huge.jpg",
        "image/jpeg",
    )
    .await;
    assert_problem(resp, 413, "payload-too-large").await;
    // The same without a declared length (chunked, as HTTP/2 bodies also are): still 413.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..17).map(|_| Ok(vec![0xFF; 1024 * 1024])).collect();
    let resp = app
        .client
        .post(app.url("/v1/me/photos"))
        .bearer_auth(&ana.access)
        .header("content-type", "multipart/form-data; boundary=x")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("post");
    assert_problem(resp, 413, "payload-too-large").await;
    // No `file` field.
    let resp = app
        .client
        .post(app.url("/v1/me/photos"))
        .bearer_auth(&ana.access)
        .multipart(multipart::Form::new().text("picture", "nope"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Nothing was stored by any of it.
    let mine = app.get_json("/v1/me/photos", &ana.access).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn six_photos_at_most_reorder_and_delete_with_their_objects() {
    let app = spawn_app().await;
    let ana = app.person(json!({})).await;
    let small = jpeg(200, 150);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(
            upload_ok(&app, &ana, small.clone()).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let resp = upload(&app, &ana, small.clone(), "7.jpg", "image/jpeg").await;
    assert_problem(resp, 409, "too-many-photos").await;

    // Reorder: the last becomes the main photo.
    let mut order = ids.clone();
    order.rotate_right(1);
    let resp = app
        .put_authed("/v1/me/photos/order", &ana.access, json!({"ids": order}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.expect("json");
    let got: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, order.iter().map(String::as_str).collect::<Vec<_>>());
    // Not a permutation of mine → 422 naming the field.
    let resp = app
        .put_authed(
            "/v1/me/photos/order",
            &ana.access,
            json!({"ids": [order[0], order[0]]}),
        )
        .await;
    let problem = assert_problem(resp, 422, "validation-failed").await;
    assert_eq!(problem["field"], "ids");

    // Delete the main photo: its objects go, the others move up.
    assert_eq!(local_objects(&app, &order[0]).len(), 2);
    let resp = app
        .delete_authed(&format!("/v1/me/photos/{}", order[0]), &ana.access)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(local_objects(&app, &order[0]).is_empty(), "objects removed");
    assert_eq!(
        fetch(&app, &ana.access, &order[0], "full").await.status(),
        StatusCode::NOT_FOUND
    );
    let list = app.get_json("/v1/me/photos", &ana.access).await;
    let positions: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["position"].as_i64().expect("pos"))
        .collect();
    assert_eq!(positions, vec![0, 1, 2, 3, 4]);
    assert_eq!(list["items"][0]["id"], order[1].as_str());
    // Someone else cannot delete mine.
    let bob = app.person(json!({})).await;
    let resp = app
        .delete_authed(&format!("/v1/me/photos/{}", order[1]), &bob.access)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A seventh fits again now.
    upload_ok(&app, &ana, small).await;
}

#[tokio::test]
async fn objects_whose_deletion_failed_are_deleted_by_the_worker() {
    let app = spawn_app().await;
    let ana = app.person(json!({})).await;
    let id = upload_ok(&app, &ana, jpeg(200, 150)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(local_objects(&app, &id).len(), 2);
    // The row went and its deletion was scheduled, but the store failed then (as an erasure
    // or a photo deletion leaves it when the object store is down).
    app.sql(&format!(
        "WITH gone AS (DELETE FROM photos WHERE id = '{id}' RETURNING storage_key)
         INSERT INTO object_deletions (storage_key) SELECT storage_key FROM gone"
    ))
    .await;
    let purged = api::photos::service::purge_scheduled_objects(&app.state)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert!(local_objects(&app, &id).is_empty(), "objects removed");
    assert_eq!(
        app.sql_value::<i64>("SELECT count(*) FROM object_deletions")
            .await,
        Some(0)
    );
}

#[tokio::test]
async fn others_see_approved_photos_only_and_never_through_a_block() {
    let app = spawn_app_with(&[("PHOTO_REVIEW", "before")]).await;
    let (ana, bob) = (app.person(json!({})).await, app.person(json!({})).await);
    let photo = upload_ok(&app, &ana, jpeg(300, 200)).await;
    assert_eq!(photo["status"], "pending");
    let id = photo["id"].as_str().expect("id").to_owned();
    // Pending: mine to see, nobody else's.
    assert_eq!(
        fetch(&app, &ana.access, &id, "thumb").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, &bob.access, &id, "thumb").await.status(),
        StatusCode::NOT_FOUND
    );
    // Approved (a moderator's decision): visible, and on my card.
    app.sql(&format!(
        "UPDATE photos SET status = 'approved' WHERE id = '{id}'"
    ))
    .await;
    assert_eq!(
        fetch(&app, &bob.access, &id, "thumb").await.status(),
        StatusCode::OK
    );
    let card = app
        .get_json(&format!("/v1/profiles/{}", ana.id), &bob.access)
        .await;
    let link = card["photos"][0].as_str().expect("a photo link").to_owned();
    assert!(
        link.contains(&format!("/v1/photos/{id}/full/signed?exp=")),
        "{link}"
    );
    // The card's link needs no credentials and may be cached by a CDN until it expires.
    let path = link
        .split_once("/v1/")
        .map(|(_, p)| format!("/v1/{p}"))
        .expect("path");
    let signed = app.get(&path).await;
    assert_eq!(signed.status(), StatusCode::OK);
    let cache = signed.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .to_owned();
    assert!(
        cache.starts_with("public, max-age=") && cache.ends_with(", immutable"),
        "{cache}"
    );
    let max_age: i64 = cache["public, max-age=".len()..cache.len() - ", immutable".len()]
        .parse()
        .expect("secs");
    assert!((3600..=7200).contains(&max_age), "{max_age}");
    // An altered link is refused, and so is an expired one.
    let tampered = path.replace("/full/signed", "/thumb/signed");
    assert_problem(app.get(&tampered).await, 403, "invalid-signature").await;
    let past = chrono::Utc::now().timestamp() - 10;
    let sig = {
        use base64::Engine;
        let mac = app
            .state
            .cipher
            .mac("photo-url", format!("{id}/full/{past}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    };
    let expired = format!("/v1/photos/{id}/full/signed?exp={past}&sig={sig}");
    assert_problem(app.get(&expired).await, 403, "link-expired").await;
    // A block, either way, hides it; so does a suspended account.
    let resp = app
        .post_authed("/v1/blocks", &ana.access, json!({"user_id": bob.id}))
        .await;
    assert!(resp.status().is_success());
    assert_eq!(
        fetch(&app, &bob.access, &id, "full").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &ana.access, &id, "full").await.status(),
        StatusCode::OK
    );
    let carol = app.person(json!({})).await;
    assert_eq!(
        fetch(&app, &carol.access, &id, "full").await.status(),
        StatusCode::OK
    );
    app.sql(&format!(
        "UPDATE users SET status = 'banned' WHERE id = '{}'",
        ana.id
    ))
    .await;
    assert_eq!(
        fetch(&app, &carol.access, &id, "full").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&path).await.status(),
        StatusCode::NOT_FOUND,
        "signed links stop too"
    );
    // Unknown variant or photo: 404. No token: 401.
    assert_eq!(
        fetch(&app, &ana.access, &id, "original").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &ana.access, &Uuid::new_v4().to_string(), "full")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let resp = app
        .client
        .get(app.url(&format!("/v1/photos/{id}/full")))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_answers_while_ten_uploads_are_processed() {
    let app = spawn_app_with(&[
        ("PHOTO_WORKERS", "2"),
        (
            "RATE_LIMITS",
            "register_per_ip=1000/3600,uploads_per_hour=100/3600",
        ),
    ])
    .await;
    let ana = app.person(json!({})).await;
    let big = jpeg(2000, 1500);
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..10 {
        // Ten people, one upload each (six photos at most per profile).
        let person = if i == 0 {
            ana.clone()
        } else {
            app.person(json!({})).await
        };
        let (client, url, bytes) = (app.client.clone(), app.url("/v1/me/photos"), big.clone());
        uploads.spawn(async move {
            let part = multipart::Part::bytes(bytes)
                .file_name("big.jpg")
                .mime_str("image/jpeg")
                .expect("mime");
            client
                .post(url)
                .bearer_auth(&person.access)
                .multipart(multipart::Form::new().part("file", part))
                .send()
                .await
                .expect("upload")
                .status()
        });
    }
    // While they run, other requests are answered (processing is off the async runtime).
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let me = app.get_authed("/v1/me", &ana.access).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert!(!uploads.is_empty(), "answered before the uploads finished");
    let mut done = 0;
    while let Some(status) = uploads.join_next().await {
        assert_eq!(status.expect("join"), StatusCode::CREATED);
        done += 1;
    }
    assert_eq!(done, 10);
}

/// The bucket's listing (S3 `ListObjectsV2` XML) of one photo's objects.
async fn bucket_listing(
    client: &reqwest::Client,
    endpoint: &str,
    bucket: &str,
    id: &str,
) -> String {
    client
        .get(format!(
            "{endpoint}/{bucket}?list-type=2&prefix=photos/{id}/"
        ))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("xml")
}

#[tokio::test]
async fn photos_live_in_s3_when_the_store_is_an_s3_bucket() {
    let endpoint = std::env::var("TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:9100".into());
    let bucket = format!("despacio-test-{}", Uuid::new_v4().simple());
    let client = reqwest::Client::new();
    // moto accepts an unsigned bucket creation.
    let created = client
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("S3 server (scripts/services.sh starts moto)");
    assert!(created.status().is_success(), "{}", created.status());
    let store_url = format!("s3://{bucket}");
    let app = spawn_app_with(&[
        ("OBJECT_STORE_URL", store_url.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ])
    .await;
    let ana = app.person(json!({})).await;
    let photo = upload_ok(&app, &ana, jpeg_with_exif(640, 480, 1)).await;
    let id = photo["id"].as_str().expect("id").to_owned();
    // The objects are in the bucket, under the photo's id.
    let listing = bucket_listing(&client, &endpoint, &bucket, &id).await;
    assert_eq!(listing.matches("<Key>").count(), 2, "{listing}");
    assert!(
        listing.contains("-full.webp") && listing.contains("-thumb.webp"),
        "{listing}"
    );
    // Served from S3.
    let resp = fetch(&app, &ana.access, &id, "full").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.expect("bytes");
    assert_eq!(image::load_from_memory(&bytes).expect("webp").width(), 640);
    // Deleting the photo deletes the objects.
    let resp = app
        .delete_authed(&format!("/v1/me/photos/{id}"), &ana.access)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let listing = bucket_listing(&client, &endpoint, &bucket, &id).await;
    assert_eq!(listing.matches("<Key>").count(), 0, "{listing}");
}
