//! Cross-cutting request handling, applied to every route in `startup.rs`.

mod body_deadline;
mod errors;
mod notices;
mod observe;
mod rate_limit;
mod security_headers;

pub use body_deadline::body_deadline;
pub use errors::uniform_errors;
pub use notices::notice_gate;
pub use observe::observe;
pub use rate_limit::{rate_limit, RateLimits};
pub use security_headers::security_headers;
