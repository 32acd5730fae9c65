//! Handlebars templates from `templates/`, embedded into the binary (read from disk in debug
//! builds, so template edits show without a rebuild). Handlebars escapes HTML by default;
//! strict mode turns a misspelt variable into an error instead of an empty string.

use actix_web::http::StatusCode;
use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde_json::json;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct TemplateFiles;

pub struct Templates;

impl Templates {
    pub fn load() -> anyhow::Result<Handlebars<'static>> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        for path in TemplateFiles::iter() {
            let Some(name) = path.strip_suffix(".hbs") else {
                continue;
            };
            let file = TemplateFiles::get(&path)
                .ok_or_else(|| anyhow::anyhow!("template {path} vanished"))?;
            let text = std::str::from_utf8(&file.data)?;
            hb.register_template_string(name, text)
                .map_err(|e| anyhow::anyhow!("template {path}: {e}"))?;
        }
        Ok(hb)
    }
}

pub trait RenderError {
    fn render_error(&self, status: StatusCode, code: &str, message: &str) -> String;
}

impl RenderError for Handlebars<'static> {
    /// The HTML error page; if even that fails, plain escaped text still tells the user.
    fn render_error(&self, status: StatusCode, code: &str, message: &str) -> String {
        let data = json!({"status": status.as_u16(), "reason": status.canonical_reason(), "code": code, "message": message});
        self.render("error", &data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "error template failed");
            format!(
                "<!doctype html><title>{}</title><p>{}</p>",
                status.as_u16(),
                handlebars::html_escape(message)
            )
        })
    }
}
