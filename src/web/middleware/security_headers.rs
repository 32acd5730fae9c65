//! Headers every response carries. The CSP allows no inline script or style: pages load
//! their code from `/assets`, so an injected `<script>` cannot run. The Permissions-Policy
//! leaves only the camera, to this origin (the staff screen scans QR codes); the opener
//! policy keeps a page we link to from reaching back into ours through `window.opener`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(), geolocation=(), payment=(), \
usb=(), serial=(), bluetooth=(), hid=(), midi=(), display-capture=(), browsing-topics=()";

pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .add((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .add((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .add((
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .add((
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
        .add((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
}
