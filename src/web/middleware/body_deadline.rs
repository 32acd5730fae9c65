//! A request body must arrive within `http.body_timeout`. actix-web bounds the wait for the
//! headers (`client_request_timeout`) but not for the body, so a client could announce a
//! large body and send it a byte at a time, holding a connection and a handler for as long
//! as it likes. Past the deadline the body ends in an error, the handler answers, and the
//! connection closes. WebSocket upgrades are left alone: their "body" is the socket.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_util::Stream;

use crate::web::AppState;

pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.http.body_timeout);
    if let Some(limit) = limit {
        if !req.headers().contains_key(header::UPGRADE) {
            let inner = actix_web::HttpMessage::take_payload(&mut req);
            let timed = Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(limit)),
                limit,
            };
            let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(timed);
            req.set_payload(Payload::from(boxed));
        }
    }
    next.call(req).await
}

struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let message = format!("the request body did not arrive within {:?}", self.limit);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                message,
            )))));
        }
        Poll::Pending
    }
}
