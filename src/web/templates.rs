//! Handlebars templates from `templates/`, embedded into the binary (read from disk in debug
//! builds, so template edits show without a rebuild). Handlebars escapes HTML by default;
//! strict mode turns a misspelt variable into an error instead of an empty string.
//! Files under `templates/partials/` are partials, e.g. `{{#> layout}}…{{/layout}}`.

use actix_web::http::StatusCode;
use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde_json::json;

use super::i18n::{message, Lang};

#[derive(RustEmbed)]
#[folder = "templates/"]
struct TemplateFiles;

pub struct Templates;

impl Templates {
    pub fn load() -> anyhow::Result<Handlebars<'static>> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_helper("t", Box::new(super::i18n::t_helper));
        hb.register_helper("asset", Box::new(super::assets::asset_helper));
        for path in TemplateFiles::iter() {
            let Some(name) = path.strip_suffix(".hbs") else {
                continue;
            };
            let file = TemplateFiles::get(&path)
                .ok_or_else(|| anyhow::anyhow!("template {path} vanished"))?;
            let text = std::str::from_utf8(&file.data)?;
            match name.strip_prefix("partials/") {
                Some(partial) => hb.register_partial(partial, text),
                None => hb.register_template_string(name, text),
            }
            .map_err(|e| anyhow::anyhow!("template {path}: {e}"))?;
        }
        Ok(hb)
    }
}

pub trait RenderError {
    fn render_error(&self, lang: Lang, status: StatusCode, code: &str, message: &str) -> String;
}

impl RenderError for Handlebars<'static> {
    /// The HTML error page, in the visitor's language where the code has a message; if even
    /// that fails, plain escaped text still tells the user.
    fn render_error(&self, lang: Lang, status: StatusCode, code: &str, detail: &str) -> String {
        let key = format!("error.{code}");
        let localized = message(lang, &key);
        let text = if localized == key {
            if status.is_server_error() {
                message(lang, "error.generic")
            } else {
                detail.to_string()
            }
        } else {
            localized
        };
        let data = json!({
            "lang": lang.code(), "status": status.as_u16(), "code": code, "message": text,
            "csrf": "", "theme_css": null, "switch_lang_url": null,
        });
        self.render("error", &data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "error template failed");
            format!(
                "<!doctype html><title>{}</title><p>{}</p>",
                status.as_u16(),
                handlebars::html_escape(&text)
            )
        })
    }
}
