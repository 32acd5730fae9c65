//! Logging: tracing to stderr (stdout stays clean for CLI output scripts read), human-readable
//! on a terminal and JSON lines otherwise.

use std::io::IsTerminal;

use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. A second call (tests spawn many apps) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Both must let an event through: the configured filter, and the caps below.
    let filter = filter.and(secret_carrier_caps());
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if json {
        tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_filter(filter))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init()
    };
}

/// Crates whose debug lines carry request data: tokio-postgres logs every statement's
/// parameters (coupon codes, token hashes), and the HTTP clients log what they send to
/// sign-in providers, and handlebars logs every helper's data while rendering (a page's
/// CSRF token, the API key shown once on the console's keys page). They are capped at `info` whatever the filter says (never raised to
/// it), so turning on `debug` to chase a problem never writes secrets to the log
/// (tests/api/log_secrets.rs).
fn secret_carrier_caps() -> Targets {
    const CAPPED: [&str; 8] = [
        "tokio_postgres",
        "reqwest",
        "hyper",
        "hyper_util",
        "openidconnect",
        "oauth2",
        "lettre",
        "handlebars",
    ];
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED.map(|target| (target, LevelFilter::INFO)))
}
