//! Every metric the service exports, described in one place, and the Prometheus recorder.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` units) so that
//! `promtool check metrics` passes; the CI test runs it against a live `/metrics`. The rules
//! and dashboards in `dashboards/` use these names; a test checks that each name they use is
//! exported after a small sale.
//!
//! Most values are recorded where things happen (engine, middleware); [`sampler`] fills in
//! what has to be looked at instead (database pool, readiness, leases, disk, process).

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// 503s answered during an announced maintenance window: kept out of HTTP_REQUESTS, so
/// the availability SLI does not count a window merchants were told about.
pub const MAINTENANCE_ANSWERS: &str = "http_maintenance_responses_total";
pub const BUILD_INFO: &str = "ecoupon_build_info";
pub const CLAIMS: &str = "ecoupon_claims_total";
pub const REDEMPTIONS: &str = "ecoupon_redemptions_total";
/// Sold-out answers given by the HTTP worker from the actor's published view (see
/// `engine/sold_out.rs`); also counted in CLAIMS.
pub const SOLD_OUT_WITHOUT_ACTOR: &str = "ecoupon_claims_sold_out_without_actor_total";
pub const CLAIM_DURATION: &str = "ecoupon_claim_duration_seconds";
pub const BATCH_SIZE: &str = "ecoupon_batch_size";
pub const COMMIT_DURATION: &str = "ecoupon_commit_duration_seconds";
pub const WRITE_CAMPAIGNS: &str = "ecoupon_claim_write_campaigns";
pub const ACTIVE_ACTORS: &str = "ecoupon_active_campaign_actors";
pub const MAILBOX_DEPTH: &str = "ecoupon_campaign_queue_depth";
pub const LEASES_TAKEN: &str = "ecoupon_leases_taken_total";
pub const LEASE_UNITS_RETURNED: &str = "ecoupon_lease_units_returned_total";
pub const LEASES_REAPED: &str = "ecoupon_leases_reaped_total";
pub const CLOCK_SKEW: &str = "ecoupon_clock_skew_seconds";
pub const AUTH_FAILURES: &str = "ecoupon_auth_failures_total";
pub const RATE_LIMITED: &str = "ecoupon_rate_limited_total";
pub const API_KEY_LOOKUPS: &str = "ecoupon_api_key_lookups_total";
pub const LIVE_SOCKETS: &str = "ecoupon_live_sockets";
pub const QUEUE_CAPACITY: &str = "ecoupon_campaign_queue_capacity";
pub const SOLD_OUT: &str = "ecoupon_campaigns_sold_out";
pub const LEASES_HELD: &str = "ecoupon_leases_held";
pub const DB_POOL_MAX: &str = "ecoupon_db_pool_max_connections";
pub const DB_POOL_OPEN: &str = "ecoupon_db_pool_connections";
pub const DB_POOL_IN_USE: &str = "ecoupon_db_pool_connections_in_use";
pub const DB_POOL_WAITING: &str = "ecoupon_db_pool_waiting_requests";
pub const DB_POOL_WAIT: &str = "ecoupon_db_pool_wait_seconds";
pub const DB_UP: &str = "ecoupon_db_up";
pub const READY: &str = "ecoupon_ready";
pub const DB_SIZE: &str = "ecoupon_db_size_bytes";
pub const DATA_DIR_FREE: &str = "ecoupon_data_dir_free_bytes";
pub const DATA_DIR_SIZE: &str = "ecoupon_data_dir_size_bytes";
// Set by the operations jobs (backups, the audit-chain check) and by features still to
// land (the outbox: webhooks and mail; the certificate: built-in TLS). Declared here so
// the alert rules and that code agree on the names; each has a setter below.
pub const BACKUP_LAST_SUCCESS: &str = "ecoupon_backup_last_success_timestamp_seconds";
pub const AUDIT_CHAIN_OK: &str = "ecoupon_audit_chain_ok";
pub const OUTBOX_LAG: &str = "ecoupon_outbox_lag_seconds";
pub const TLS_CERT_EXPIRY: &str = "ecoupon_tls_certificate_expiry_timestamp_seconds";

/// Metrics absent from `/metrics` until something happens: the first successful backup,
/// or a feature not in this build yet (outbox, TLS). Their alerts stay silent until then.
pub const NOT_YET_SET: &[&str] = &[BACKUP_LAST_SUCCESS, OUTBOX_LAG, TLS_CERT_EXPIRY];

pub mod sampler;

/// 1 ms to 10 s: a claim is a few ms, a slow page a few hundred.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process and returns the handle `/metrics` renders.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(WRITE_CAMPAIGNS.into()), BATCH_BUCKETS)
                })
                .expect("bucket lists are non-empty constants")
                .build_recorder();
            let handle = recorder.handle();
            start_upkeep(handle.clone());
            // Another recorder may already be installed (only in odd test set-ups); then the
            // handle still renders, just empty.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            start_at_zero();
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Histograms keep each sample until they are folded into buckets, which a scrape does;
/// with no scraper (or a slow one) that is memory growing with every request. A thread
/// of its own, so it runs whatever runtime the process has (tests install this too).
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histogram samples wait for scrapes");
    }
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route pattern and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route pattern."
    );
    describe_counter!(
        MAINTENANCE_ANSWERS,
        "Requests answered 503 because of an announced maintenance window (not in http_requests_total)."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the running build.");
    describe_counter!(
        SOLD_OUT_WITHOUT_ACTOR,
        "Claims answered sold_out without a round trip to the campaign's actor (also in ecoupon_claims_total)."
    );
    describe_counter!(
        CLAIMS,
        "Claim attempts by result (issued or a rejection code)."
    );
    describe_counter!(REDEMPTIONS, "Redemption attempts by result.");
    describe_histogram!(
        CLAIM_DURATION,
        Unit::Seconds,
        "Engine time from claim request to durable answer."
    );
    describe_histogram!(BATCH_SIZE, "Claims per campaign batch.");
    describe_histogram!(
        WRITE_CAMPAIGNS,
        "Campaign batches per claim-writing statement (the node's committer shares commits)."
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time from a campaign batch's flush to its commit (waiting for a statement included)."
    );
    describe_gauge!(ACTIVE_ACTORS, "Campaign actors running on this node.");
    describe_gauge!(LIVE_SOCKETS, "Live dashboard WebSockets open on this node.");
    describe_gauge!(
        MAILBOX_DEPTH,
        "Claims waiting in this node's longest campaign queue."
    );
    describe_counter!(
        LEASES_TAKEN,
        "Stock leases taken from campaigns by this node."
    );
    describe_counter!(
        LEASE_UNITS_RETURNED,
        "Unused leased units given back to campaigns."
    );
    describe_counter!(
        LEASES_REAPED,
        "Leases of dead nodes reclaimed by this node's reaper."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Failed authentications by kind (api_key, login)."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429, by limit (ip, device, sign_in, api_key, auth_failures)."
    );
    describe_counter!(
        API_KEY_LOOKUPS,
        "API keys looked up in the database, by whether the key was known to this node."
    );
    describe_gauge!(
        CLOCK_SKEW,
        Unit::Seconds,
        "This node's clock minus the database clock."
    );
    describe_more();
}

fn describe_more() {
    describe_gauge!(
        QUEUE_CAPACITY,
        "Claims one campaign queue holds before answering busy (engine.max_queued_claims)."
    );
    describe_gauge!(
        SOLD_OUT,
        "Active campaigns whose latest counters on this node show no stock left."
    );
    describe_gauge!(LEASES_HELD, "Stock leases this node holds now.");
    describe_gauge!(DB_POOL_MAX, "Largest size of the database pool.");
    describe_gauge!(DB_POOL_OPEN, "Database connections the pool holds open.");
    describe_gauge!(DB_POOL_IN_USE, "Pooled database connections lent out now.");
    describe_gauge!(
        DB_POOL_WAITING,
        "Tasks waiting for a pooled database connection."
    );
    describe_histogram!(
        DB_POOL_WAIT,
        Unit::Seconds,
        "Time to get a connection from the pool (waiting and connecting)."
    );
    describe_gauge!(
        DB_UP,
        "1 when the database answered the last probe (every 5 s), else 0."
    );
    describe_gauge!(
        READY,
        "1 when /readyz would answer 200 (database reachable, schema current), else 0."
    );
    describe_gauge!(DB_SIZE, Unit::Bytes, "Size of the database on disk.");
    describe_gauge!(
        DATA_DIR_FREE,
        Unit::Bytes,
        "Free space (for unprivileged users) on the file system holding data_dir."
    );
    describe_gauge!(
        DATA_DIR_SIZE,
        Unit::Bytes,
        "Size of the file system holding data_dir."
    );
    describe_gauge!(
        BACKUP_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last successful backup."
    );
    describe_gauge!(
        AUDIT_CHAIN_OK,
        "1 when the audit log's hash chain verified intact at the last check, 0 when broken."
    );
    describe_gauge!(
        OUTBOX_LAG,
        Unit::Seconds,
        "Age of the oldest undelivered outbox message, by kind."
    );
    describe_gauge!(
        TLS_CERT_EXPIRY,
        Unit::Seconds,
        "Unix time when the served TLS certificate expires."
    );
}

/// Counters and gauges exist from the start, at 0, so `rate()` and `increase()` see the
/// first event and alerts can tell "none" from "not scraped".
fn start_at_zero() {
    for result in ["issued", "sold_out", "busy", "failed"] {
        metrics::counter!(CLAIMS, "result" => result).absolute(0);
    }
    metrics::counter!(REDEMPTIONS, "result" => "redeemed").absolute(0);
    for kind in [
        "api_key",
        "console_password",
        "console_totp",
        "ip_not_allowed",
        "sign_in_throttled",
    ] {
        metrics::counter!(AUTH_FAILURES, "kind" => kind).absolute(0);
    }
    for kind in ["ip", "device", "sign_in"] {
        metrics::counter!(RATE_LIMITED, "kind" => kind).absolute(0);
    }
    for name in [LEASES_TAKEN, LEASE_UNITS_RETURNED, LEASES_REAPED] {
        metrics::counter!(name).absolute(0);
    }
    for name in [ACTIVE_ACTORS, MAILBOX_DEPTH, LIVE_SOCKETS, SOLD_OUT] {
        metrics::gauge!(name).set(0.0);
    }
}

/// Counts a request refused with 429, by which limit refused it (`ip`, `device`, `sign_in`).
pub fn rate_limited(kind: &'static str) {
    metrics::counter!(RATE_LIMITED, "kind" => kind).increment(1);
}

/// A backup finished and was verified (Unix time, seconds). For the backup-age alert.
pub fn backup_succeeded(at_unix_seconds: f64) {
    metrics::gauge!(BACKUP_LAST_SUCCESS).set(at_unix_seconds);
}

/// The audit log's hash chain was verified: intact or not. For the audit-chain alert.
pub fn audit_chain_checked(intact: bool) {
    metrics::gauge!(AUDIT_CHAIN_OK).set(if intact { 1.0 } else { 0.0 });
}

/// Age of the oldest undelivered outbox message of `kind` (`webhook`, `mail`); 0 when empty.
pub fn outbox_lag(kind: &'static str, seconds: f64) {
    metrics::gauge!(OUTBOX_LAG, "kind" => kind).set(seconds);
}

/// When the served TLS certificate expires (Unix time, seconds).
pub fn tls_certificate_expires(at_unix_seconds: f64) {
    metrics::gauge!(TLS_CERT_EXPIRY).set(at_unix_seconds);
}

/// Counts a refused authentication by kind (`api_key`, `console_password`, `console_totp`,
/// `ip_not_allowed`, `sign_in_throttled`), for the auth-failure alert.
pub fn auth_failure(kind: &'static str) {
    metrics::counter!(AUTH_FAILURES, "kind" => kind).increment(1);
}

/// Counts an API key looked up in the database: `known` (a refresh of a key this node has
/// seen) or `unknown` (a key it has not; bounded by the API's limits).
pub fn api_key_lookup(kind: &'static str) {
    metrics::counter!(API_KEY_LOOKUPS, "kind" => kind).increment(1);
}
