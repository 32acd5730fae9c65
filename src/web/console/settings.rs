//! `GET/POST /merchant/settings`: the tenant's theme colours (with their contrast against
//! white shown), logo, check-code and MFA requirements, accepted consumer sign-in
//! providers, and the IP allow-list for the console and the API.
//!
//! The form is one multipart post (it carries the logo) saved in one transaction: a
//! refused field leaves every setting as it was. A list that would shut out the very
//! address saving it is refused unless the user confirms it.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{field_errors, Console};
use crate::domain::image::{ImageError, ImageKind, MAX_IMAGE_BYTES};
use crate::domain::merchant::{AllowListError, IpAllowList, Permission};
use crate::domain::theme::{BrandColor, ColorError, MIN_CONTRAST};
use crate::store::{SettingsUpdate, TenantSettings};
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::images::image_url;
use crate::web::AppState;

/// Text fields are short (the allow-list, at most 100 lines, is the longest).
const MAX_TEXT_BYTES: usize = 16 * 1024;
const MAX_FIELDS: usize = 64;

/// The form as posted, before any checking.
#[derive(Default)]
struct Posted {
    text: HashMap<String, Vec<String>>,
    /// The logo's bytes; None when no file was chosen.
    logo: Option<Vec<u8>>,
    /// The logo was larger than allowed (reading stopped there).
    logo_too_large: bool,
}

impl Posted {
    fn one(&self, name: &str) -> &str {
        self.text
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }

    fn all(&self, name: &str) -> &[String] {
        self.text.get(name).map_or(&[], Vec::as_slice)
    }

    fn ticked(&self, name: &str) -> bool {
        !self.one(name).is_empty()
    }
}

fn too_large() -> AppError {
    AppError::new(ErrorCode::PayloadTooLarge, "the form is too large")
}

/// Reads the multipart form with bounded memory. The logo comes last in the form, so a
/// logo too large to read still leaves every other field to show again.
async fn read_form(mut payload: Multipart) -> AppResult<Posted> {
    let bad = |e: actix_multipart::MultipartError| {
        AppError::new(
            ErrorCode::Rejected("bad_form"),
            format!("the form could not be read: {e}"),
        )
    };
    let mut posted = Posted::default();
    let mut fields = 0;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(bad)?;
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(too_large());
        }
        let name = field.name().unwrap_or("").to_owned();
        let is_file = field
            .content_disposition()
            .is_some_and(|cd| cd.get_filename().is_some());
        let limit = if name == "logo" {
            MAX_IMAGE_BYTES
        } else {
            MAX_TEXT_BYTES
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad)?;
            if bytes.len() + chunk.len() > limit {
                if name == "logo" {
                    posted.logo_too_large = true;
                    return Ok(posted);
                }
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if name == "logo" {
            // A file input left empty still sends a part, with no name and no bytes.
            if is_file && !bytes.is_empty() {
                posted.logo = Some(bytes);
            }
        } else if !is_file {
            let text = String::from_utf8(bytes).map_err(|_| {
                AppError::new(ErrorCode::Rejected("bad_form"), "the form is not UTF-8")
            })?;
            posted.text.entry(name).or_default().push(text);
        }
    }
    Ok(posted)
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn index(
    console: Console,
    state: web::Data<AppState>,
    query: web::Query<SavedQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageSettings)?;
    let current = load(&console, &state).await?;
    let form = FormView {
        brand_color: current.brand_color.clone(),
        accent_color: current.accent_color.clone(),
        providers: current.signin_providers.clone(),
        require_check_code: current.require_check_code,
        require_mfa: current.require_mfa,
        allowlist: current.ip_allowlist.entries().join("\n"),
        lockout: false,
    };
    let saved = query.saved.is_some();
    settings_page(
        &console,
        &state,
        StatusCode::OK,
        &current,
        &form,
        saved,
        &[],
    )
}

async fn load(console: &Console, state: &AppState) -> AppResult<TenantSettings> {
    state
        .store
        .tenant_settings(console.user.tenant_id)
        .await?
        .ok_or_else(|| AppError::not_found("tenant"))
}

/// The values the form shows: the stored ones, or what was just posted.
struct FormView {
    brand_color: String,
    accent_color: String,
    providers: Vec<String>,
    require_check_code: bool,
    require_mfa: bool,
    allowlist: String,
    /// The list shuts out this user: the confirmation box is shown.
    lockout: bool,
}

/// "4.8:1" and whether it is readable, for a colour as typed (the lower of white text on
/// it and it as text on the page, the ratio `BrandColor::parse` judges).
fn contrast_of(console: &Console, raw: &str) -> Value {
    let ratio = match BrandColor::parse("colour", raw) {
        Ok(c) => c.contrast(),
        Err(ColorError::Contrast(_, r)) => r,
        Err(ColorError::Format(_)) => return Value::Null,
    };
    let ok = ratio >= MIN_CONTRAST;
    let verdict = if ok {
        "console.settings.contrast_ok"
    } else {
        "console.settings.contrast_low"
    };
    json!({"ratio": format!("{ratio:.1}:1"), "verdict": console.t(verdict), "ok": ok})
}

fn settings_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    current: &TenantSettings,
    form: &FormView,
    saved: bool,
    errors: &[(&str, String)],
) -> AppResult<HttpResponse> {
    let providers: Vec<Value> = state
        .signin
        .list()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "label": p.label,
                "checked": form.providers.contains(&p.name),
            })
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_settings",
        json!({
            "title": console.t("console.settings.title"),
            "saved": saved,
            "brand_color": form.brand_color,
            "accent_color": form.accent_color,
            "brand_contrast": contrast_of(console, &form.brand_color),
            "accent_contrast": contrast_of(console, &form.accent_color),
            "min_contrast": MIN_CONTRAST,
            "logo_url": current.logo_image_id.map(image_url),
            "max_image_mib": MAX_IMAGE_BYTES / (1024 * 1024),
            "providers": providers,
            "require_check_code": form.require_check_code,
            "require_mfa": form.require_mfa,
            "allowlist": form.allowlist,
            "your_ip": console.ip.to_string(),
            "lockout": form.lockout,
            "errors": field_errors(errors),
        }),
    )
}

/// `POST /merchant/settings`
pub async fn save(
    console: Console,
    state: web::Data<AppState>,
    payload: Multipart,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageSettings)?;
    let posted = read_form(payload).await?;
    console.check_csrf(posted.one("csrf"))?;
    let current = load(&console, &state).await?;
    let mut errors: Vec<(&str, String)> = Vec::new();

    let mut color = |field: &'static str| {
        let raw = posted.one(field);
        match BrandColor::parse(field, raw) {
            Ok(c) => Some(c),
            Err(e) => {
                let text = match e {
                    ColorError::Format(_) => console.t("console.settings.color_invalid"),
                    ColorError::Contrast(_, r) => console
                        .t("console.settings.color_unreadable")
                        .replace("{ratio}", &format!("{r:.1}"))
                        .replace("{min}", &format!("{MIN_CONTRAST:.1}")),
                };
                errors.push((field, text));
                None
            }
        }
    };
    let brand = color("brand_color");
    let accent = color("accent_color");

    let logo = match (&posted.logo, posted.logo_too_large) {
        (_, true) => Err(ImageError::TooLarge),
        (None, false) => Ok(None),
        (Some(bytes), false) => {
            ImageKind::sniff(bytes).map(|k| Some((k.content_type(), bytes.as_slice())))
        }
    };
    let logo = logo.unwrap_or_else(|e| {
        let key = match e {
            ImageError::TooLarge => "console.settings.logo_too_large",
            ImageError::Empty | ImageError::NotAnImage => "console.settings.logo_invalid",
        };
        let text = console
            .t(key)
            .replace("{mib}", &(MAX_IMAGE_BYTES / (1024 * 1024)).to_string());
        errors.push(("logo", text));
        None
    });

    let known: Vec<&str> = state
        .signin
        .list()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut providers: Vec<String> = Vec::new();
    for p in posted.all("signin_providers") {
        if !known.contains(&p.as_str()) {
            errors.push((
                "signin_providers",
                console.t("console.settings.provider_unknown"),
            ));
            break;
        }
        if !providers.contains(p) {
            providers.push(p.clone());
        }
    }

    let allowlist_text = posted.one("ip_allowlist");
    let mut lockout = false;
    let allowlist = match IpAllowList::parse(allowlist_text) {
        Ok(list) => {
            // The page is the one place a user can lock themselves (and everyone at the
            // same desk) out; it takes a deliberate tick.
            if !list.allows(console.ip) && !posted.ticked("confirm_lockout") {
                lockout = true;
                let text = console
                    .t("console.settings.lockout")
                    .replace("{ip}", &console.ip.to_string());
                errors.push(("ip_allowlist", text));
            }
            Some(list)
        }
        Err(AllowListError::Invalid(entry)) => {
            let text = console
                .t("console.settings.allowlist_invalid")
                .replace("{entry}", &entry);
            errors.push(("ip_allowlist", text));
            None
        }
        Err(AllowListError::TooMany) => {
            errors.push((
                "ip_allowlist",
                console.t("console.settings.allowlist_too_many"),
            ));
            None
        }
    };

    let form = FormView {
        brand_color: posted.one("brand_color").trim().to_owned(),
        accent_color: posted.one("accent_color").trim().to_owned(),
        providers: providers.clone(),
        require_check_code: posted.ticked("require_check_code"),
        require_mfa: posted.ticked("require_mfa"),
        allowlist: allowlist_text.to_owned(),
        lockout,
    };
    let (Some(brand), Some(accent), Some(allowlist), true) =
        (brand, accent, allowlist, errors.is_empty())
    else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return settings_page(&console, &state, status, &current, &form, false, &errors);
    };

    let update = SettingsUpdate {
        brand_color: brand.as_str(),
        accent_color: accent.as_str(),
        logo,
        signin_providers: &providers,
        require_check_code: form.require_check_code,
        require_mfa: form.require_mfa,
        ip_allowlist: &allowlist,
    };
    let new_logo = state
        .store
        .save_tenant_settings(console.user.tenant_id, &update)
        .await?;
    state.tenants.forget(console.user.tenant_id);
    audit_changes(&console, &state, &current, &update, new_logo).await?;
    Ok(console.redirect("/merchant/settings?saved=1"))
}

/// One audit entry for the settings that changed, and one of its own for the allow-list
/// (the change that decides who can reach the console at all).
async fn audit_changes(
    console: &Console,
    state: &AppState,
    before: &TenantSettings,
    after: &SettingsUpdate<'_>,
    new_logo: Option<uuid::Uuid>,
) -> AppResult<()> {
    let mut changed = serde_json::Map::new();
    let mut note = |key: &str, from: Value, to: Value| {
        if from != to {
            changed.insert(key.to_owned(), json!({"from": from, "to": to}));
        }
    };
    note(
        "brand_color",
        json!(before.brand_color),
        json!(after.brand_color),
    );
    note(
        "accent_color",
        json!(before.accent_color),
        json!(after.accent_color),
    );
    note(
        "logo",
        json!(before.logo_image_id),
        json!(new_logo.or(before.logo_image_id)),
    );
    note(
        "signin_providers",
        json!(before.signin_providers),
        json!(after.signin_providers),
    );
    note(
        "require_check_code",
        json!(before.require_check_code),
        json!(after.require_check_code),
    );
    note(
        "require_mfa",
        json!(before.require_mfa),
        json!(after.require_mfa),
    );
    let tenant = console.user.tenant_id.to_string();
    if !changed.is_empty() {
        console
            .audit(state, "settings.update", &tenant, Value::Object(changed))
            .await?;
    }
    let (from, to) = (before.ip_allowlist.entries(), after.ip_allowlist.entries());
    if from != to {
        let detail = json!({
            "from": from,
            "to": to,
            "own_address_allowed": after.ip_allowlist.allows(console.ip),
        });
        console
            .audit(state, "settings.allowlist", &tenant, detail)
            .await?;
    }
    Ok(())
}
