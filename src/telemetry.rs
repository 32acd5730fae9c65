//! Logging: tracing to stderr (stdout stays clean for CLI output scripts read), human-readable
//! on a terminal and JSON lines otherwise.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. A second call (tests spawn many apps) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = quiet_secret_carriers(filter);
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Crates whose debug lines carry request data: tokio-postgres logs every statement's
/// parameters (coupon codes, token hashes), and the HTTP clients log what they send to
/// sign-in providers. They stay at `info` whatever the filter says, so turning on `debug`
/// to chase a problem never writes secrets to the log (tests/api/log_secrets.rs).
fn quiet_secret_carriers(filter: EnvFilter) -> EnvFilter {
    [
        "tokio_postgres",
        "reqwest",
        "hyper",
        "hyper_util",
        "openidconnect",
        "oauth2",
        "lettre",
    ]
    .iter()
    .filter_map(|target| format!("{target}=info").parse().ok())
    .fold(filter, |filter, directive| filter.add_directive(directive))
}
