//! QR codes of a campaign's claim URL, for merchants to print: `/c/{slug}/qr.svg` and
//! `/c/{slug}/qr.png`.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

use super::AppState;
use crate::web::error::{AppError, AppResult};

/// Modules of white border the QR specification asks for.
const QUIET_ZONE: usize = 4;
/// Pixels per module in the PNG: 8 prints sharply at a few centimetres.
const SCALE: usize = 8;

async fn claim_url(state: &AppState, slug: &str) -> AppResult<String> {
    let campaign = state
        .store
        .campaign_by_slug(slug)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    Ok(format!(
        "{}/c/{}",
        state.settings.public_url(),
        campaign.slug
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    Png,
    Svg,
}

/// The QR code of `url` as an image response: the one renderer behind the public
/// `/c/{slug}/qr.*` and the console's per-campaign and per-store posters.
pub fn image_response(url: &str, format: QrFormat, cache_control: &str) -> AppResult<HttpResponse> {
    // Medium error correction survives a crease or a smudge on a printed poster.
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(AppError::internal)?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, cache_control));
    Ok(match format {
        QrFormat::Svg => {
            let image = code
                .render::<svg::Color>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            res.content_type("image/svg+xml").body(image)
        }
        QrFormat::Png => {
            let bytes = encode_png(&code).map_err(AppError::internal)?;
            res.content_type("image/png").body(bytes)
        }
    })
}

/// Public posters: the same for everyone, so shared caches may keep them.
const PUBLIC_CACHE: &str = "public, max-age=3600";

pub async fn svg(state: web::Data<AppState>, slug: web::Path<String>) -> AppResult<HttpResponse> {
    image_response(
        &claim_url(&state, &slug).await?,
        QrFormat::Svg,
        PUBLIC_CACHE,
    )
}

pub async fn png(state: web::Data<AppState>, slug: web::Path<String>) -> AppResult<HttpResponse> {
    image_response(
        &claim_url(&state, &slug).await?,
        QrFormat::Png,
        PUBLIC_CACHE,
    )
}

/// A 1-bit greyscale PNG of the code, quiet zone included.
fn encode_png(code: &QrCode) -> Result<Vec<u8>, png::EncodingError> {
    let modules = code.width();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == Color::Dark {
            let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}
