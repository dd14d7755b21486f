//! Turning an upload into the stored variants, off the async runtime:
//!
//! 1. the real format comes from the bytes (magic numbers), never from the name or header:
//!    JPEG, PNG and WebP are taken; HEIC/AVIF (no packaged decoder here) and anything else → 415;
//! 2. structural checks: a JPEG must end with its end-of-image marker (a truncated file, or one
//!    with data appended — a polyglot — is refused), the declared dimensions are checked before
//!    anything is allocated, and the decoder runs under `image::Limits` (a decompression bomb
//!    fails fast with a 422, never an OOM);
//! 3. EXIF orientation is applied (to the resized variants: peak memory stays one decoded
//!    picture), and the pixels are re-encoded: nothing of the original file (EXIF, GPS, XMP,
//!    ICC, comments, trailing data) survives;
//! 4. resized (Catmull-Rom, SIMD; see bench/RESULTS.md for why not Lanczos3) to [`VARIANTS`]
//!    from the decoded image once — the small variant
//!    is made from the large one — and encoded to lossy WebP by libwebp at [`QUALITY`].
use std::io::Cursor;

use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{metadata::Orientation, DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

/// Largest upload, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 15 * 1024 * 1024;
/// Largest accepted picture, in pixels (a 48-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Longest accepted side, in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// Most memory the decoder may allocate (a 50 MP 8-bit RGB picture takes 150 MB; 16-bit or
/// alpha pictures that large are refused).
pub const MAX_DECODER_ALLOC: u64 = 256 * 1024 * 1024;
/// WebP quality (libwebp, lossy, 0–100), as `cwebp -q`.
pub const QUALITY: f32 = 80.0;
/// The variants: name and longest side in pixels (never upscaled).
pub const VARIANTS: [(&str, u32); 2] = [("full", 1280), ("thumb", 320)];

/// Why an upload was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a format we take (415).
    Unsupported(String),
    /// A format we take, but not a valid, safe picture (422).
    Invalid(String),
}

/// One encoded variant.
pub struct Variant {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub webp: Vec<u8>,
}

/// What an upload becomes.
pub struct Processed {
    /// The oriented picture's size.
    pub width: u32,
    pub height: u32,
    /// Hex SHA-256 of the variants' bytes (content address of this photo's objects).
    pub hash: String,
    pub variants: Vec<Variant>,
}

/// The real format, from the first bytes.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, Refusal> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(ImageFormat::WebP);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = String::from_utf8_lossy(&bytes[8..12]).to_string();
        let what = match brand.as_str() {
            "heic" | "heix" | "hevc" | "hevx" | "mif1" | "msf1" | "heim" | "heis" => "HEIC",
            "avif" | "avis" => "AVIF",
            _ => "this ISO media file",
        };
        return Err(Refusal::Unsupported(format!(
            "{what} is not supported yet (no packaged decoder on our servers): send JPEG, PNG or WebP"
        )));
    }
    Err(Refusal::Unsupported(
        "the file is not a JPEG, PNG or WebP picture".into(),
    ))
}

fn invalid(e: impl std::fmt::Display) -> Refusal {
    Refusal::Invalid(format!("the picture cannot be read: {e}"))
}

/// Decodes, orients, strips, resizes and encodes one upload. CPU-bound: call it from a
/// blocking thread.
pub fn process(bytes: &[u8]) -> Result<Processed, Refusal> {
    let format = sniff(bytes)?;
    if format == ImageFormat::Jpeg {
        // A complete JPEG ends with EOI (FF D9), possibly followed by a little padding.
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        let end = tail
            .iter()
            .rposition(|&b| b != 0 && b != 0x0A && b != 0x0D && b != 0x20);
        let complete = end.is_some_and(|i| i >= 1 && tail[i - 1] == 0xFF && tail[i] == 0xD9);
        if !complete {
            return Err(Refusal::Invalid(
                "the JPEG is truncated or has data after its end".into(),
            ));
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(refusal_of)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Refusal::Invalid("the picture has no pixels".into()));
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Refusal::Invalid(format!(
            "the picture has {} megapixels; at most {} are accepted",
            u64::from(w) * u64::from(h) / 1_000_000,
            MAX_PIXELS / 1_000_000
        )));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // 8-bit RGB at once (a move for most JPEGs), then resize *before* orienting: the long side
    // does not change with a rotation, and only the small variants get rotated — peak memory is
    // the decoded picture, never two full-size copies of it.
    let rgb = DynamicImage::from_decoder(decoder)
        .map_err(refusal_of)?
        .into_rgb8();
    let (w0, h0) = rgb.dimensions();
    let swaps = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if swaps { (h0, w0) } else { (w0, h0) };

    let mut resizer = Resizer::new();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    let mut source =
        Image::from_vec_u8(w0, h0, rgb.into_raw(), PixelType::U8x3).map_err(invalid)?;
    let mut variants = Vec::with_capacity(VARIANTS.len());
    let mut hasher = Sha256::new();
    for (name, long_side) in VARIANTS {
        let (sw, sh) = (source.width(), source.height());
        let scale = f64::from(long_side) / f64::from(sw.max(sh));
        let (vw, vh) = if scale >= 1.0 {
            (sw, sh)
        } else {
            (
                ((f64::from(sw) * scale).round() as u32).max(1),
                ((f64::from(sh) * scale).round() as u32).max(1),
            )
        };
        let resized = if (vw, vh) == (sw, sh) {
            source.copy()
        } else {
            let mut target = Image::new(vw, vh, PixelType::U8x3);
            resizer
                .resize(&source, &mut target, &options)
                .map_err(invalid)?;
            target
        };
        let upright = image::RgbImage::from_raw(vw, vh, resized.buffer().to_vec())
            .ok_or_else(|| Refusal::Invalid("internal resize size mismatch".into()))?;
        let mut upright = DynamicImage::ImageRgb8(upright);
        upright.apply_orientation(orientation);
        let upright = upright.into_rgb8();
        let (ow, oh) = upright.dimensions();
        let webp = webp::Encoder::from_rgb(upright.as_raw(), ow, oh)
            .encode(QUALITY)
            .to_vec();
        hasher.update(&webp);
        variants.push(Variant {
            name,
            width: ow,
            height: oh,
            webp,
        });
        // The next (smaller) variant is made from this one: cheaper, same quality.
        source = resized;
    }
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Processed {
        width,
        height,
        hash,
        variants,
    })
}

fn refusal_of(e: image::ImageError) -> Refusal {
    match e {
        image::ImageError::Limits(l) => Refusal::Invalid(format!(
            "the picture is too large to decode safely ({l}); at most {MAX_SIDE} px a side"
        )),
        image::ImageError::Unsupported(u) => Refusal::Unsupported(format!("{u}")),
        other => invalid(other),
    }
}
