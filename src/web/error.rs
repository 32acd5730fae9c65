//! The one error type of the HTTP layer. Each [`ErrorCode`] is a stable, documented
//! snake_case string with exactly one HTTP status; the table is [`ErrorCode::status`].
//!
//! Responses are JSON `{"error":{"code","message"}}`, with `"fields": {name: message}` when
//! the error is about named input fields. The `html_errors` middleware turns them into an
//! HTML page for browsers.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // 400 / 413 / 422: the request itself is wrong.
    InvalidJson,
    /// 400 with its own code: a sign-in callback or link that cannot be honoured.
    Rejected(&'static str),
    InvalidInput(&'static str),
    PayloadTooLarge,
    // 401 / 403: who is asking.
    MissingApiKey,
    MalformedAuthorization,
    InvalidApiKey,
    Forbidden,
    /// 403 with its own code: refused for a reason the caller can act on.
    Denied(&'static str),
    CsrfFailed,
    // 404 / 405.
    NotFound,
    UnknownCode,
    MethodNotAllowed,
    // 409: the request is fine but the state of things says no.
    Conflict(&'static str),
    // 429 / 503.
    RateLimited,
    /// 429 with its own code: a limit on one kind of attempt (check-code guesses).
    Limited(&'static str),
    Busy,
    /// 503: the request reached the database and its answer was lost; it may have taken
    /// effect. Retry with the same `Idempotency-Key`.
    OutcomeUnknown,
    NotReady,
    // 500 / 502.
    Internal,
    /// 502: a service we depend on (a sign-in provider) failed or is unreachable.
    Upstream(&'static str),
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidJson | Rejected(_) => StatusCode::BAD_REQUEST,
            InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            MissingApiKey | MalformedAuthorization | InvalidApiKey => StatusCode::UNAUTHORIZED,
            Forbidden | Denied(_) | CsrfFailed => StatusCode::FORBIDDEN,
            NotFound | UnknownCode => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict(_) => StatusCode::CONFLICT,
            RateLimited | Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Busy | OutcomeUnknown | NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            InvalidInput(code) | Conflict(code) | Rejected(code) | Upstream(code)
            | Denied(code) | Limited(code) => code,
            PayloadTooLarge => "payload_too_large",
            MissingApiKey => "missing_api_key",
            MalformedAuthorization => "malformed_authorization",
            InvalidApiKey => "invalid_api_key",
            Forbidden => "forbidden",
            CsrfFailed => "csrf_failed",
            NotFound => "not_found",
            UnknownCode => "unknown_code",
            MethodNotAllowed => "method_not_allowed",
            RateLimited => "rate_limited",
            Busy => "busy",
            OutcomeUnknown => "outcome_unknown",
            NotReady => "not_ready",
            Internal => "internal_error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// Validation errors: what is wrong with each named input field.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// A per-key rate limit's state, sent as `RateLimit-*` headers: (limit, remaining,
    /// seconds until reset).
    pub rate_limit: Option<Box<(u32, u32, u64)>>,
    /// The underlying failure of a 500; logged, never sent.
    #[source]
    source: Option<anyhow::Error>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
            retry_after: None,
            fields: None,
            rate_limit: None,
            source: None,
        }
    }

    /// Names the input field this error is about: the answer gets
    /// `"fields": {name: message}`.
    pub fn field(mut self, name: &str) -> AppError {
        let message = self.message.clone();
        self.fields
            .get_or_insert_with(Default::default)
            .insert(name.to_string(), message);
        self
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::InvalidInput(code), message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Conflict(code), message)
    }

    pub fn not_found(what: &str) -> AppError {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn busy(retry_after: u64) -> AppError {
        AppError {
            retry_after: Some(retry_after),
            ..AppError::new(ErrorCode::Busy, "the service is busy; retry shortly")
        }
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> AppError {
        AppError {
            source: Some(source.into()),
            ..AppError::new(ErrorCode::Internal, "internal error")
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> AppError {
        self.retry_after = Some(seconds);
        self
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// Left in the response extensions so middleware can re-render the error for browsers.
#[derive(Debug, Clone)]
pub struct RenderedError {
    pub code: &'static str,
    pub message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(source) = &self.source {
            tracing::error!(error = ?source, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some((limit, remaining, reset)) = self.rate_limit.as_deref().copied() {
            response.insert_header(("RateLimit-Limit", limit.to_string()));
            response.insert_header(("RateLimit-Remaining", remaining.to_string()));
            response.insert_header(("RateLimit-Reset", reset.to_string()));
        }
        let mut response = response.json(Body {
            error: Detail {
                code: self.code.as_str(),
                message: &self.message,
                fields: self.fields.as_ref(),
            },
        });
        response.extensions_mut().insert(RenderedError {
            code: self.code.as_str(),
            message: self.message.clone(),
        });
        response
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> AppError {
        match e {
            // Every connection is busy: tell the client to come back rather than queue forever.
            crate::store::StoreError::Pool(deadpool_postgres::PoolError::Timeout(_)) => {
                AppError::busy(1)
            }
            // The database is away (restarting, unreachable): a clean 503, never a 500.
            other if other.is_unavailable() => AppError::busy(1),
            other => AppError::internal(other),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
