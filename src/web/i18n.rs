//! Japanese first, English too. Every user-facing string lives in a catalogue,
//! `assets/i18n/<lang>.toml` for the consumer pages and `assets/i18n/<area>.<lang>.toml`
//! for each console area (merged; a key defined twice is a test failure); templates only
//! name keys: `{{t "claim.button"}}`, with
//! `{name}` placeholders filled from the helper's hash: `{{t "claim.left" n=remaining}}`.
//!
//! The language comes from `?lang=`, then the `lang` cookie, then `Accept-Language`.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::HttpRequest;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for this request, and whether `?lang=` asked to remember it.
    pub fn negotiate(req: &HttpRequest) -> (Lang, bool) {
        let asked = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("lang="))
            .and_then(Lang::parse);
        if let Some(lang) = asked {
            return (lang, true);
        }
        if let Some(lang) = req.cookie("lang").and_then(|c| Lang::parse(c.value())) {
            return (lang, false);
        }
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        (from_accept_language(accept).unwrap_or(Lang::Ja), false)
    }
}

/// The supported language with the highest q-value, ties going to the earlier entry.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Lang::parse) else {
            continue;
        };
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

type Catalogue = HashMap<String, String>;

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/i18n/"]
#[include = "*.toml"]
struct CatalogueFiles;

/// Every catalogue file as (language, file name, text).
fn catalogue_files() -> Vec<(&'static str, String, String)> {
    let mut files = Vec::new();
    for name in CatalogueFiles::iter() {
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        let code = stem.rsplit('.').next().unwrap_or(stem);
        let lang = match code {
            "ja" => "ja",
            "en" => "en",
            _ => continue,
        };
        if let Some(file) = CatalogueFiles::get(&name) {
            files.push((
                lang,
                name.to_string(),
                String::from_utf8_lossy(&file.data).into_owned(),
            ));
        }
    }
    files
}

fn catalogues() -> &'static HashMap<&'static str, Catalogue> {
    static CATALOGUES: OnceLock<HashMap<&'static str, Catalogue>> = OnceLock::new();
    CATALOGUES.get_or_init(|| {
        let mut all: HashMap<&'static str, Catalogue> = HashMap::new();
        for (lang, name, text) in catalogue_files() {
            // The catalogues ship inside the binary and a test parses every one.
            let table: toml::Table = text.parse().unwrap_or_else(|e| {
                tracing::error!(file = %name, error = %e, "message catalogue does not parse");
                toml::Table::new()
            });
            flatten("", &table, all.entry(lang).or_default());
        }
        all
    })
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

/// A message in `lang`, falling back to Japanese, then to the key itself (so a missing
/// string shows up in review instead of an empty space).
pub fn message(lang: Lang, key: &str) -> String {
    let all = catalogues();
    all.get(lang.code())
        .and_then(|c| c.get(key))
        .or_else(|| all.get("ja").and_then(|c| c.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// `{{t "key" name=value}}`: the message for the page's `lang`.
pub fn t_helper(
    h: &Helper,
    _: &Handlebars,
    ctx: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let key = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
    let lang = ctx
        .data()
        .get("lang")
        .and_then(|l| l.as_str())
        .and_then(Lang::parse)
        .unwrap_or(Lang::Ja);
    let mut text = message(lang, key);
    for (name, value) in h.hash() {
        let shown = match value.value() {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text = text.replace(&format!("{{{name}}}"), &shown);
    }
    // Escaped like any other value: catalogues are text, not HTML.
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_have_the_same_keys() {
        let mut seen: HashMap<(&str, String), String> = HashMap::new();
        for (lang, name, text) in catalogue_files() {
            let table = text
                .parse::<toml::Table>()
                .unwrap_or_else(|e| panic!("{name} parses: {e}"));
            let mut flat = Catalogue::new();
            flatten("", &table, &mut flat);
            for key in flat.into_keys() {
                if let Some(other) = seen.insert((lang, key.clone()), name.clone()) {
                    panic!("{key} is defined in both {other} and {name}");
                }
            }
        }
        let all = catalogues();
        let mut ja: Vec<_> = all["ja"].keys().collect();
        let mut en: Vec<_> = all["en"].keys().collect();
        ja.sort();
        en.sort();
        assert_eq!(ja, en, "every key in both languages");
        assert!(ja.len() > 20);
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            from_accept_language("en-US,en;q=0.9,ja;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(
            from_accept_language("fr, ja;q=0.5, en;q=0.4"),
            Some(Lang::Ja)
        );
        assert_eq!(from_accept_language("fr"), None);
        assert_eq!(from_accept_language("en;q=0, ja;q=0.1"), Some(Lang::Ja));
        assert_eq!(from_accept_language(""), None);
    }
}
