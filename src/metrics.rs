//! Every metric the service exports, described in one place, and the Prometheus recorder.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` units) so that
//! `promtool check metrics` passes; the CI test runs it against a live `/metrics`.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const BUILD_INFO: &str = "ecoupon_build_info";
pub const CLAIMS: &str = "ecoupon_claims_total";
pub const REDEMPTIONS: &str = "ecoupon_redemptions_total";
pub const CLAIM_DURATION: &str = "ecoupon_claim_duration_seconds";
pub const BATCH_SIZE: &str = "ecoupon_batch_size";
pub const COMMIT_DURATION: &str = "ecoupon_commit_duration_seconds";
pub const ACTIVE_ACTORS: &str = "ecoupon_active_campaign_actors";
pub const MAILBOX_DEPTH: &str = "ecoupon_campaign_queue_depth";
pub const LEASES_TAKEN: &str = "ecoupon_leases_taken_total";
pub const LEASE_UNITS_RETURNED: &str = "ecoupon_lease_units_returned_total";
pub const LEASES_REAPED: &str = "ecoupon_leases_reaped_total";
pub const CLOCK_SKEW: &str = "ecoupon_clock_skew_seconds";
pub const AUTH_FAILURES: &str = "ecoupon_auth_failures_total";
pub const RATE_LIMITED: &str = "ecoupon_rate_limited_total";
pub const LIVE_SOCKETS: &str = "ecoupon_live_sockets";

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
                .expect("bucket lists are non-empty constants")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (only in odd test set-ups); then the
            // handle still renders, just empty.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
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
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the running build.");
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
    describe_histogram!(BATCH_SIZE, "Claims per committed multi-row insert.");
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time to insert and commit one claim batch."
    );
    describe_gauge!(ACTIVE_ACTORS, "Campaign actors running on this node.");
    describe_gauge!(LIVE_SOCKETS, "Live dashboard WebSockets open on this node.");
    describe_gauge!(
        MAILBOX_DEPTH,
        "Claims waiting in campaign queues on this node."
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
    describe_counter!(RATE_LIMITED, "Consumer requests refused with 429.");
    describe_gauge!(
        CLOCK_SKEW,
        Unit::Seconds,
        "This node's clock minus the database clock."
    );
}

/// Counts a refused authentication by kind (`api_key`, `console_password`, `console_totp`,
/// `ip_not_allowed`, `sign_in_throttled`), for the auth-failure alert.
pub fn auth_failure(kind: &'static str) {
    metrics::counter!(AUTH_FAILURES, "kind" => kind).increment(1);
}
