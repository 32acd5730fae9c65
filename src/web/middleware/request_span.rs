//! The per-request span, as tracing-actix-web's default but quiet about answers that are
//! business as usual: a redirect to the sign-in page, a 404, a 409 `sold_out` in a flash
//! sale. Those are recorded on the span and logged at debug; only 5xx log an error line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

pub struct QuietRootSpan;

impl RootSpanBuilder for QuietRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        DefaultRootSpanBuilder::on_request_start(request)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        if status.is_server_error() {
            return DefaultRootSpanBuilder::on_request_end(span, outcome);
        }
        span.record("http.status_code", i32::from(status.as_u16()));
        span.record("otel.status_code", "OK");
        if status.is_client_error() {
            let _enter = span.enter();
            tracing::debug!(status = status.as_u16(), "request refused");
        }
    }
}
