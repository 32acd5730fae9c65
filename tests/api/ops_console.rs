//! The operator console (`/ops/…`) over real HTTP against real PostgreSQL: its own sign-in,
//! cookie and CSRF; notices under the CLI's rules; approving and disabling operators (a
//! disabled operator's session ends at once); the outbox page; and the wall between
//! operators and merchants' users in both directions.

mod in_the_browser;
mod maintenance_sli;
mod notices;
mod operators;
mod password;
mod separation;
mod support;
mod two_factor;

pub use support::*;
