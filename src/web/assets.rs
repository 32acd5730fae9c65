//! Static files from `assets/`, served locally (no CDN) under fingerprinted names
//! (`app.3f2a1b9c.css`), so they can be cached for a year and still change on deploy.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use rust_embed::RustEmbed;

use crate::web::error::{AppError, AppResult};

#[derive(RustEmbed)]
#[folder = "assets/"]
#[exclude = "i18n/*"]
#[exclude = "passwords/*"]
struct AssetFiles;

struct Index {
    /// "app.css" → "app.3f2a1b9c.css"
    public: HashMap<String, String>,
    /// "app.3f2a1b9c.css" → "app.css"
    original: HashMap<String, String>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut public = HashMap::new();
        let mut original = HashMap::new();
        for name in AssetFiles::iter() {
            let Some(file) = AssetFiles::get(&name) else {
                continue;
            };
            let hash = hex::encode(&file.metadata.sha256_hash()[..4]);
            let fingerprinted = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                None => format!("{name}.{hash}"),
            };
            public.insert(name.to_string(), fingerprinted.clone());
            original.insert(fingerprinted, name.to_string());
        }
        Index { public, original }
    })
}

/// The URL of an asset, e.g. `/assets/app.3f2a1b9c.css`.
pub fn url(name: &str) -> String {
    match index().public.get(name) {
        Some(public) => format!("/assets/{public}"),
        None => format!("/assets/{name}"),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `GET /assets/{name}`: only fingerprinted names, cached for a year.
pub async fn serve(name: web::Path<String>) -> AppResult<HttpResponse> {
    let original = index()
        .original
        .get(name.as_str())
        .ok_or_else(|| AppError::not_found("asset"))?;
    let file = AssetFiles::get(original).ok_or_else(|| AppError::not_found("asset"))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type(original))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(file.data.into_owned()))
}

/// `{{asset "app.css"}}`
pub fn asset_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let name = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("asset", 0))?;
    out.write(&url(name))?;
    Ok(())
}
