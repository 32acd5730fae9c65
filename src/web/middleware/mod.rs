//! Cross-cutting request handling, applied to every route in `startup.rs`.

mod errors;
mod rate_limit;
mod request_metrics;
mod request_span;
mod security_headers;

pub use errors::uniform_errors;
pub use rate_limit::{rate_limit, RateLimits};
pub use request_metrics::record_metrics;
pub use request_span::QuietRootSpan;
pub use security_headers::security_headers;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing_actix_web::RequestId;

/// Echoes tracing-actix-web's request id as `X-Request-Id`, so a user's report can be
/// matched with the log lines of that request.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(id) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    Ok(res)
}
