//! Integration tests: the real server over real HTTP against real PostgreSQL.
//! One binary for all of them, so the build links once.

mod auth;
mod backpressure;
mod browser;
mod campaigns;
mod claims;
mod cli;
mod console_helpers;
mod console_login;
mod flash_sale;
mod health;
mod helpers;
mod merchant_settings;
mod metrics;
mod pages;
mod redemptions;
mod signin;
