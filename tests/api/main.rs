//! Integration tests: the real server over real HTTP against real PostgreSQL.
//! One binary for all of them, so the build links once.

mod api_consumers;
mod api_coupons;
mod api_idempotency;
mod api_key_flood;
mod api_keys;
mod api_openapi;
mod auth;
mod axe;
mod backpressure;
mod browser;
mod bulk_codes;
mod campaigns;
mod check_codes;
mod claims;
mod cli;
mod cli_keys;
mod console_browser;
mod console_campaigns;
mod console_export;
mod console_export_stream;
mod console_helpers;
mod console_live_pages;
mod console_live_restart;
mod console_login;
mod console_redeem;
mod console_settings;
mod console_stores;
mod console_users;
mod faults;
mod faults_network;
mod faults_nodes;
mod flash_sale;
mod fuzz_twins;
mod hardening;
mod health;
mod helpers;
mod injection;
mod invariants;
mod live;
mod live_nodes;
mod log_secrets;
mod merchant_settings;
mod metrics;
mod monitoring;
mod ops_audit;
mod ops_backup;
mod ops_cli_output;
mod ops_console;
mod ops_notices;
mod ops_operators;
mod ops_retention;
mod ops_tenant;
mod pages;
mod prometheus_server;
mod redemptions;
mod report;
mod schemathesis;
mod signin;
mod slo_rules;
<<<<<<< Updated upstream
mod webhooks;
=======
mod tls;
>>>>>>> Stashed changes
