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

async fn code_for(state: &AppState, slug: &str) -> AppResult<QrCode> {
    let campaign = state
        .store
        .campaign_by_slug(slug)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let url = format!("{}/c/{}", state.settings.public_url(), campaign.slug);
    // Medium error correction survives a crease or a smudge on a printed poster.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(AppError::internal)
}

fn cached(content_type: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"));
    res
}

pub async fn svg(state: web::Data<AppState>, slug: web::Path<String>) -> AppResult<HttpResponse> {
    let code = code_for(&state, &slug).await?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    Ok(cached("image/svg+xml").body(image))
}

pub async fn png(state: web::Data<AppState>, slug: web::Path<String>) -> AppResult<HttpResponse> {
    let code = code_for(&state, &slug).await?;
    let bytes = encode_png(&code).map_err(AppError::internal)?;
    Ok(cached("image/png").body(bytes))
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
