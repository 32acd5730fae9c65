//! Integration tests: the real server over real HTTP against real PostgreSQL.
//! One binary for all of them, so the build links once.

mod auth;
mod cli;
mod health;
mod helpers;
mod metrics;
mod campaigns;
mod claims;
mod redemptions;
mod flash_sale;
