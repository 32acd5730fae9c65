//! The public API's OpenAPI 3.1 document, generated from the handlers and their types by
//! utoipa, served at `/api/v1/openapi.json` and shown at `/api/docs` (assets/api-docs.js
//! renders it in the browser; no CDN, no inline script).
//!
//! # How to document an endpoint
//!
//! 1. Put `#[utoipa::path]` on the handler, with a unique camelCase `operation_id`, e.g.
//!    ```text
//!    #[utoipa::path(post, path = "/api/v1/campaigns/{id}/claims", operation_id = "createClaim", tag = "claims",
//!        params(("id" = Uuid, Path, description = "The campaign")),
//!        request_body = ClaimRequest,
//!        responses(
//!            (status = 201, description = "Claimed", body = Claimed),
//!            (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
//!            (status = 409, description = "`sold_out`, `consumer_limit_reached`: …", body = ErrorBody),
//!        ),
//!        security(("api_key" = ["claims:write"])))]
//!    ```
//!    - `security` names the scope the handler asks for with `require_scope` (an empty
//!      list `("api_key" = [])` for a key of any scope).
//!    - Every error code the endpoint itself can answer is listed, in backticks, in the
//!      description of its status: the contract tests check each error they see against
//!      these lists (`x-error-codes` is derived from them). The answers every keyed
//!      endpoint shares (401, 403 `insufficient_scope`/`ip_not_allowed`, 429, 503, and
//!      400/413 for a JSON body) are added by [`SharedAnswers`]: do not repeat them.
//! 2. `#[derive(ToSchema)]` on its request and response types (borrowed views too; a
//!    domain type shown through another type takes `#[schema(value_type = …)]`). Answer
//!    with those types, not `json!`, so the document cannot drift from the response.
//! 3. Add the handler to `paths(…)` in [`ApiDoc`] (types it names are picked up).
//! 4. In its contract test, pass real responses to `OpenApiCheck` (tests/api/helpers/openapi.rs),
//!    which validates them against the served document.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    assets, campaigns, claims, codes, coupons, images, keys, redemptions, stores, tenant, webhooks,
};

/// Every error answer's body.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // a schema only: error.rs writes the body
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Stable snake_case code; see each operation's answers for the codes it can give.
    code: String,
    /// For people; may change.
    message: String,
    /// Validation errors only: what is wrong with each named field.
    fields: Option<BTreeMap<String, String>>,
}

/// The scopes a key can hold, as the document's security scheme describes them.
pub const SCOPES: &[(&str, &str)] = &[
    (
        "campaigns:read",
        "Read campaigns, coupons, redemptions and stores",
    ),
    (
        "campaigns:write",
        "Create and change campaigns, stores and tenant settings",
    ),
    ("claims:write", "Claim coupons for consumers"),
    ("redemptions:write", "Redeem coupons and undo redemptions"),
    ("export:read", "Export data"),
    ("keys:admin", "Create, list and revoke API keys"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecoupon API",
        version = "1",
        description = "The merchant API: campaigns, claims, coupons and redemptions. \
            Authenticate with `Authorization: Bearer <key>`; each operation names the scope it needs. \
            Errors answer `{\"error\":{\"code\",\"message\"}}` with a stable `code`."
    ),
    paths(
        tenant::show,
        tenant::update,
        images::put_logo,
        images::put_campaign_image,
        campaigns::list,
        campaigns::create,
        campaigns::show,
        campaigns::update,
        claims::create,
        coupons::show,
        coupons::for_consumer,
        redemptions::create,
        redemptions::undo,
        redemptions::list,
        stores::list,
        stores::create,
        keys::create,
        keys::list,
        keys::revoke,
        webhooks::list,
        webhooks::create,
        webhooks::show,
        webhooks::delete,
        webhooks::deliveries,
        codes::create,
        codes::show_job,
        codes::job_csv,
        codes::import,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SharedAnswers),
    tags(
        (name = "tenant", description = "The merchant the key belongs to"),
        (name = "campaigns", description = "Campaigns and their rules"),
        (name = "claims", description = "Claiming coupons (the flash-sale path)"),
        (name = "coupons", description = "Looking coupons up"),
        (name = "redemptions", description = "Using coupons in store, and the list of uses"),
        (name = "stores", description = "The merchant's stores, where coupons are used"),
        (name = "keys", description = "The merchant's API keys (`keys:admin`)"),
        (name = "webhooks", description = "Signed event deliveries to the merchant's endpoints (Standard Webhooks)"),
        (name = "codes", description = "Bulk codes for print or online, and codes imported from CSV"),
    )
)]
pub struct ApiDoc;

/// Answers shared by operations, by status: (status, codes, what they mean).
const KEYED: &[(u16, &[&str], &str)] = &[
    (
        401,
        &["missing_api_key", "malformed_authorization", "invalid_api_key"],
        "no usable API key",
    ),
    (
        403,
        &["insufficient_scope", "ip_not_allowed"],
        "the key lacks the operation's scope, or the request comes from outside the merchant's IP allow-list",
    ),
    (
        429,
        &["rate_limited", "too_many_auth_failures"],
        "`rate_limited`: the key is over `api.requests_per_key_per_second` (see the \
         `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers, sent on every \
         keyed answer); `too_many_auth_failures`: too many failed authentications from this \
         address (or unknown keys from all of them); retry after `Retry-After` seconds",
    ),
    (503, &["busy"], "the service is busy; retry after `Retry-After` seconds"),
];
const WITH_JSON_BODY: &[(u16, &[&str], &str)] = &[
    (
        400,
        &["invalid_json"],
        "the body is not the JSON this operation takes; when a member is missing, unknown or \
         of the wrong type, \"fields\" names it (its path when nested, e.g. \"discount.percent\")",
    ),
    (413, &["payload_too_large"], "the body is too large"),
];

/// Adds the bearer scheme with its scopes, the answers every keyed operation shares, and
/// `x-error-codes` on each error answer (from the backticked codes of its description).
pub struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut Document) {
        let scopes: String = SCOPES
            .iter()
            .map(|(s, what)| format!("\n- `{s}`: {what}"))
            .collect();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("eck_…")
                    .description(Some(format!(
                        "An API key, `Authorization: Bearer eck_…`. Keys carry scopes; an \
                         operation's `security` names the one it needs.{scopes}"
                    )))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let mut shared: Vec<&(u16, &[&str], &str)> = Vec::new();
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    shared.extend(KEYED);
                }
                let json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.keys().any(|c| c.starts_with("application/json")));
                if json_body {
                    shared.extend(WITH_JSON_BODY);
                }
                for (status, codes, what) in shared {
                    let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
                    let line = format!("{}: {what}", listed.join(", "));
                    let key = status.to_string();
                    let merged = match op.responses.responses.get(&key) {
                        Some(RefOr::T(r)) => format!("{}\n\n{line}", r.description),
                        _ => line,
                    };
                    op.responses
                        .responses
                        .insert(key, RefOr::T(error_response(merged)));
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    if let (true, RefOr::T(r)) = (status.starts_with(['4', '5']), response) {
                        let codes = backticked(&r.description);
                        let mut ext = r.extensions.take().unwrap_or_default();
                        ext.merge(
                            utoipa::openapi::extensions::ExtensionsBuilder::new()
                                .add("x-error-codes", codes)
                                .build(),
                        );
                        r.extensions = Some(ext);
                    }
                }
            }
        }
    }
}

fn error_response(description: String) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// The `code`s written in backticks in an answer's description.
fn backticked(description: &str) -> Vec<String> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The document as served: built once.
pub fn document_json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_vec(&ApiDoc::openapi()).expect("the OpenAPI document serialises")
    })
}

/// `GET /api/v1/openapi.json`
pub async fn json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(document_json())
}

/// `GET /api/docs`: a page that renders the document (assets/api-docs.js). Nothing in it
/// comes from a request, so it is built once.
pub async fn docs_page() -> HttpResponse {
    static HTML: OnceLock<String> = OnceLock::new();
    let html = HTML.get_or_init(|| {
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>ecoupon API</title>\n<link rel=\"stylesheet\" href=\"{css}\">\n\
             <script src=\"{js}\" defer></script>\n</head>\n<body>\n\
             <main id=\"api-docs\" data-spec=\"/api/v1/openapi.json\">\n\
             <h1>ecoupon API</h1>\n<p>Loading the <a href=\"/api/v1/openapi.json\">OpenAPI \
             document</a>…</p>\n</main>\n</body>\n</html>\n",
            css = assets::url("api-docs.css"),
            js = assets::url("api-docs.js"),
        )
    });
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(html.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_descriptions() {
        assert_eq!(
            backticked("`sold_out`, `not_started`: no. Send `Retry-After` and `a b`"),
            ["sold_out", "not_started"]
        );
    }

    #[test]
    fn every_keyed_operation_names_a_scope_and_the_shared_answers() {
        let doc: serde_json::Value = serde_json::from_slice(document_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let security = &op["security"][0]["api_key"];
                assert!(security.is_array(), "{method} {path}: no security");
                for scope in security.as_array().unwrap() {
                    let scope = scope.as_str().unwrap();
                    assert!(SCOPES.iter().any(|(s, _)| *s == scope), "{scope}");
                }
                let codes = &op["responses"]["401"]["x-error-codes"];
                assert!(
                    codes.as_array().is_some_and(|c| c.len() == 3),
                    "{method} {path}"
                );
            }
        }
    }
}
