//! Bulk codes for print or online, and codes imported from CSV:
//!
//! - `POST /api/v1/campaigns/{id}/codes` `{count, pattern?, charset?, prefix?}`: up to
//!   10,000 answered at once (201, JSON or, with `Accept: text/csv`, CSV); more become a
//!   job (202 with its status URL).
//! - `GET /api/v1/code-jobs/{id}` (status) and `GET /api/v1/code-jobs/{id}/codes.csv`.
//! - `POST /api/v1/campaigns/{id}/codes/import` with a CSV body (one code per line):
//!   all or nothing, with every bad line reported.
//!
//! Codes are issued coupons: unique per tenant, counted against the campaign's limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::json::ApiJson;
use super::AppState;
use crate::domain::bulk_codes::{
    import_text, parse_import, BulkSpec, LineError, IMPORT_MAX, SYNC_MAX,
};
use crate::store::bulk_codes::{CodeJob, CodeSource, IssueOutcome, IssuedBatch};
use crate::web::error::{AppError, AppResult, ErrorCode, RenderedError};
use crate::web::openapi::ErrorBody;

/// The largest import body (100,000 codes of up to 32 characters, with room to spare).
pub const IMPORT_BODY_LIMIT: usize = 8 << 20;
/// Bad lines listed in one answer; the count says how many there were in all.
const LINES_SHOWN: usize = 1_000;

/// Codes to make. Unset fields follow the campaign's code format.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodesRequest {
    /// 1 to 100,000; more than 10,000 become a job.
    count: u32,
    /// `#` is one random character of `charset`; A-Z and 0-9 are kept; `-` and spaces only
    /// group (stored codes have none). 6 to 32 `#`.
    pattern: Option<String>,
    /// `unambiguous`, `digits`, or 10 to 64 distinct characters of A-Z and 0-9.
    charset: Option<String>,
    /// Up to 8 characters of A-Z and 0-9 before each code.
    prefix: Option<String>,
}

pub fn import_limit() -> web::PayloadConfig {
    web::PayloadConfig::new(IMPORT_BODY_LIMIT)
}

fn refused(outcome: &IssueOutcome) -> AppError {
    let (code, message) = outcome
        .refusal()
        .unwrap_or(("internal_error", String::new()));
    match code {
        "not_found" => AppError::not_found("campaign"),
        code => AppError::conflict(code, message),
    }
}

/// A batch of issued codes.
#[derive(Serialize, ToSchema)]
#[schema(as = CodeBatch)]
pub struct BatchView<'a> {
    batch_id: Uuid,
    count: usize,
    /// The codes (not in the answer to an import).
    #[serde(skip_serializing_if = "Option::is_none")]
    codes: Option<&'a [String]>,
    valid_from: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    uses_left: i32,
}

fn csv_of(codes: impl Iterator<Item = (String, Option<DateTime<Utc>>)>) -> AppResult<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["code", "expires_at"])
        .map_err(AppError::internal)?;
    for (code, expires) in codes {
        let expires = expires.map(|t| t.to_rfc3339()).unwrap_or_default();
        out.write_record([code.as_str(), expires.as_str()])
            .map_err(AppError::internal)?;
    }
    out.into_inner().map_err(AppError::internal)
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// Make codes for print or online: issued coupons, unique per merchant, counted against
/// the campaign's limit. Up to 10,000 are answered at once (JSON, or CSV with
/// `Accept: text/csv`); more become a job. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/codes", operation_id = "createCodes", tag = "codes",
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = CodesRequest,
    responses(
        (status = 201, description = "Issued", content((BatchView = "application/json"), (String = "text/csv"))),
        (status = 202, description = "More than 10,000: a job makes them (see its `status_url`)", body = JobBody,
            headers(("Location" = String, description = "The job's status URL"))),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 409, description = "`not_enough_stock`: fewer are left under the limit; `ended`: the campaign has ended; \
            `code_space_exhausted`: new codes keep clashing with existing ones; `idempotency_key_in_use`", body = ErrorBody),
        (status = 422, description = "`invalid_count`, `invalid_pattern`, `invalid_charset`, `invalid_code_prefix`, \
            `code_space_too_small`: fewer than a million possible codes per code asked for; `invalid_idempotency_key`, \
            `idempotency_key_reused`", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: ApiJson<CodesRequest>,
) -> AppResult<HttpResponse> {
    let csv = wants_csv(&req);
    match idempotency::key(&req)? {
        None => create_codes(auth, state, campaign_id, body, csv).await,
        Some(key) => {
            let fingerprint =
                serde_json::to_vec(&(body.count, &body.pattern, &body.charset, &body.prefix, csv))
                    .map_err(AppError::internal)?;
            let (a, s) = (auth.clone(), state.clone());
            let go = move || create_codes(auth, state, campaign_id, body, csv);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

async fn create_codes(
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: ApiJson<CodesRequest>,
    csv: bool,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let campaign = state
        .engine
        .campaign(auth.tenant_id, *campaign_id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let spec = BulkSpec::parse(
        body.count,
        body.pattern.as_deref(),
        body.charset.as_deref(),
        body.prefix.as_deref(),
        &campaign.codes,
    )
    .map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
    if spec.count() > SYNC_MAX {
        let job = state
            .store
            .insert_code_job(auth.tenant_id, *campaign_id, &spec)
            .await?
            .ok_or_else(|| AppError::not_found("campaign"))?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, format!("/api/v1/code-jobs/{}", job.id)))
            .json(JobBody {
                job: JobView::from(&job),
            }));
    }
    let outcome = state
        .store
        .issue_codes(auth.tenant_id, *campaign_id, CodeSource::Generate(&spec))
        .await?;
    let IssueOutcome::Issued(batch) = outcome else {
        return Err(refused(&outcome));
    };
    if csv {
        let expires = batch.expires_at;
        let body = csv_of(batch.codes.into_iter().map(|c| (c, expires)))?;
        return Ok(HttpResponse::Created()
            .content_type("text/csv; charset=utf-8")
            .body(body));
    }
    Ok(HttpResponse::Created().json(batch_view(&batch, true)))
}

fn batch_view(batch: &IssuedBatch, with_codes: bool) -> BatchView<'_> {
    BatchView {
        batch_id: batch.batch_id,
        count: batch.codes.len(),
        codes: with_codes.then_some(batch.codes.as_slice()),
        valid_from: batch.valid_from,
        expires_at: batch.expires_at,
        uses_left: batch.uses_left,
    }
}

/// A bulk code job.
#[derive(Serialize, ToSchema)]
pub struct JobBody<'a> {
    job: JobView<'a>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CodeJob)]
pub struct JobView<'a> {
    id: Uuid,
    campaign_id: Uuid,
    count: i32,
    /// `pending`, `done` or `failed`.
    status: &'a str,
    error: Option<JobError<'a>>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    status_url: String,
    csv_url: String,
}

/// Why a job failed.
#[derive(Serialize, ToSchema)]
pub struct JobError<'a> {
    /// `not_enough_stock`, `ended`, `not_found`, `code_space_exhausted`, `internal_error`.
    code: &'a str,
    message: &'a str,
}

impl<'a> From<&'a CodeJob> for JobView<'a> {
    fn from(j: &'a CodeJob) -> JobView<'a> {
        JobView {
            id: j.id,
            campaign_id: j.campaign_id,
            count: j.count,
            status: &j.status,
            error: j.error_code.as_deref().map(|code| JobError {
                code,
                message: j.error.as_deref().unwrap_or_default(),
            }),
            created_at: j.created_at,
            finished_at: j.finished_at,
            status_url: format!("/api/v1/code-jobs/{}", j.id),
            csv_url: format!("/api/v1/code-jobs/{}/codes.csv", j.id),
        }
    }
}

/// A bulk code job's status.
#[utoipa::path(get, path = "/api/v1/code-jobs/{id}", operation_id = "showCodeJob", tag = "codes",
    params(("id" = Uuid, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 404, description = "`not_found`: the merchant has no such job", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn show_job(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    let job = state
        .store
        .code_job(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("code job"))?;
    Ok(HttpResponse::Ok().json(JobBody {
        job: JobView::from(&job),
    }))
}

/// A done job's codes as CSV (`code,expires_at`). The codes are bearer secrets: the scope
/// that makes them is needed.
#[utoipa::path(get, path = "/api/v1/code-jobs/{id}/codes.csv", operation_id = "downloadCodeJob", tag = "codes",
    params(("id" = Uuid, Path, description = "The job")),
    responses(
        (status = 200, description = "The codes", body = String, content_type = "text/csv"),
        (status = 404, description = "`not_found`: the merchant has no such job", body = ErrorBody),
        (status = 409, description = "`job_not_done`: still making codes (see `Retry-After`); `job_failed`: it failed", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn job_csv(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let job = state
        .store
        .code_job(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("code job"))?;
    match job.status.as_str() {
        "done" => {}
        "failed" => {
            return Err(AppError::conflict(
                "job_failed",
                format!(
                    "the job failed: {}",
                    job.error.as_deref().unwrap_or("unknown")
                ),
            ))
        }
        _ => {
            return Err(AppError::conflict(
                "job_not_done",
                "the job is still making codes; ask its status_url",
            )
            .with_retry_after(2))
        }
    }
    let codes = state.store.code_job_codes(&job).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"codes-{}.csv\"", job.id),
        ))
        .body(csv_of(codes.into_iter())?))
}

/// Import the merchant's own codes from CSV: one code per line (first column; an optional
/// `code` header), read as people type them. All or nothing: any bad line, or a code the
/// merchant already has, imports nothing and is reported by line. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/codes/import", operation_id = "importCodes", tag = "codes",
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body(content = String, content_type = "text/csv", description = "Up to 100,000 codes, 8 MiB"),
    responses(
        (status = 201, description = "Imported", body = BatchView),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 409, description = "`codes_in_use`: codes the merchant already has, by line (nothing imported); \
            `not_enough_stock`, `ended`, `idempotency_key_in_use`", body = ImportReport),
        (status = 413, description = "`payload_too_large`: over 8 MiB", body = ErrorBody),
        (status = 422, description = "`invalid_import`: bad lines, each reported (nothing imported); `empty_import`; \
            `too_many_codes`: over 100,000; `invalid_idempotency_key`, `idempotency_key_reused`", body = ImportReport),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn import(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    match idempotency::key(&req)? {
        None => import_codes(auth, state, campaign_id, body).await,
        Some(key) => {
            let fingerprint = body.to_vec();
            let (a, s) = (auth.clone(), state.clone());
            let go = move || import_codes(auth, state, campaign_id, body);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

/// An error answer; an import's refusals add the lines at fault.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `line_report` writes the body
pub struct ImportReport {
    error: ImportReportDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ImportReportDetail {
    code: String,
    message: String,
    /// How many lines are at fault (only the first 1,000 are listed).
    line_count: Option<usize>,
    lines: Option<Vec<ImportLine>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ImportLine {
    /// 1-based.
    line: usize,
    value: String,
    /// `invalid_code`, `code_too_short`, `duplicate_in_file`, `code_in_use`.
    error: String,
}

/// 422 or 409 with every bad line (the first [`LINES_SHOWN`]) next to the usual error.
fn line_report(
    status: ErrorCode,
    code: &'static str,
    message: String,
    lines: &[LineError],
) -> HttpResponse {
    let shown: Vec<_> = lines
        .iter()
        .take(LINES_SHOWN)
        .map(|l| serde_json::json!({"line": l.line, "value": l.value, "error": l.error}))
        .collect();
    let mut res = HttpResponse::build(status.status()).json(serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "line_count": lines.len(),
            "lines": shown,
        }
    }));
    // Marks it as one of ours, so the uniform-errors middleware keeps the body.
    res.extensions_mut().insert(RenderedError { code, message });
    res
}

async fn import_codes(
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let text = import_text(&body)
        .ok_or_else(|| AppError::invalid("invalid_import", "the CSV must be UTF-8 text"))?;
    let codes = match parse_import(text) {
        Ok(codes) => codes,
        Err(lines) => {
            let message = format!(
                "{} lines cannot be imported; nothing was imported",
                lines.len()
            );
            return Ok(line_report(
                ErrorCode::InvalidInput("invalid_import"),
                "invalid_import",
                message,
                &lines,
            ));
        }
    };
    if codes.is_empty() {
        return Err(AppError::invalid(
            "empty_import",
            "the CSV holds no codes (one code per line, optionally under a `code` header)",
        ));
    }
    if codes.len() > IMPORT_MAX {
        return Err(AppError::invalid(
            "too_many_codes",
            format!("at most {IMPORT_MAX} codes per import"),
        ));
    }
    let plain: Vec<String> = codes.iter().map(|(_, c)| c.clone()).collect();
    let outcome = state
        .store
        .issue_codes(auth.tenant_id, *campaign_id, CodeSource::Given(&plain))
        .await?;
    match outcome {
        IssueOutcome::Issued(batch) => Ok(HttpResponse::Created().json(batch_view(&batch, false))),
        IssueOutcome::CodesInUse(used) => {
            let used: std::collections::HashSet<&String> = used.iter().collect();
            let lines: Vec<LineError> = codes
                .iter()
                .filter(|(_, c)| used.contains(c))
                .map(|(line, c)| LineError {
                    line: *line,
                    value: c.clone(),
                    error: "code_in_use",
                })
                .collect();
            let message = format!(
                "{} codes are already in use; nothing was imported",
                lines.len()
            );
            Ok(line_report(
                ErrorCode::Conflict("codes_in_use"),
                "codes_in_use",
                message,
                &lines,
            ))
        }
        other => Err(refused(&other)),
    }
}
