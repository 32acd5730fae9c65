//! Makes every error look the same. Errors without a body (actix's own 404/405/413…) get the
//! standard `{"error":{"code","message"}}` JSON; browsers (`Accept: text/html`) get the
//! HTML error page instead of JSON.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use crate::web::error::{AppError, ErrorCode, RenderedError};
use crate::web::templates::RenderError;
use crate::web::AppState;

pub async fn uniform_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    // Successful answers pass untouched, at no cost: nothing below runs for them.
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let wants_html = res
        .request()
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    // A page we rendered ourselves with an error status (a form shown again with its
    // problems, 422) is already what the browser should see.
    let own_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if own_page && res.response().extensions().get::<RenderedError>().is_none() {
        return Ok(res);
    }
    let existing = res.response().extensions().get::<RenderedError>().cloned();
    let (res, rendered) = match existing {
        Some(rendered) => (res, rendered),
        None => {
            // actix answered by itself (no route, wrong method, body too large…): rebuild
            // the answer as one of ours.
            let (req, old) = res.into_parts();
            let mut error = AppError::new(code_for(status), default_message(status));
            if let Some(retry) = old
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
            {
                error.retry_after = retry.parse().ok();
            }
            let rendered = RenderedError {
                code: error.code.as_str(),
                message: error.message.clone(),
            };
            (ServiceResponse::new(req, error.error_response()), rendered)
        }
    };
    if !wants_html {
        return Ok(res);
    }
    let lang = crate::web::i18n::Lang::negotiate(res.request()).0;
    let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res);
    };
    let html = state
        .templates
        .render_error(lang, status, rendered.code, &rendered.message);
    let (req, old) = res.into_parts();
    let mut page = HttpResponse::build(status);
    page.content_type("text/html; charset=utf-8");
    if let Some(retry) = old.headers().get(header::RETRY_AFTER) {
        page.insert_header((header::RETRY_AFTER, retry.clone()));
    }
    Ok(ServiceResponse::new(req, page.body(html)))
}

fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Busy,
        s if s.is_client_error() => ErrorCode::InvalidInput("bad_request"),
        _ => ErrorCode::Internal,
    }
}

fn default_message(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_string()
}
