//! Integration tests: the real server over real HTTP against real PostgreSQL.
//! One binary for all of them, so the build links once.

mod auth;
mod axe;
mod backpressure;
mod browser;
mod campaigns;
mod check_codes;
mod claims;
mod cli;
mod console_browser;
mod console_campaigns;
mod console_export;
mod console_export_stream;
mod console_helpers;
mod console_live_pages;
mod console_login;
mod console_redeem;
mod console_settings;
mod console_stores;
mod console_users;
mod flash_sale;
mod health;
mod helpers;
mod live;
mod merchant_settings;
mod metrics;
mod monitoring;
mod ops_audit;
mod ops_backup;
mod ops_tenant;
mod pages;
mod prometheus_server;
mod redemptions;
mod report;
mod signin;
mod slo_rules;
