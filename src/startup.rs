//! Builds the application: database, migrations, shared state and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::config::{Secrets, Settings};
use crate::engine::Engine;
use crate::private_cluster::EmbeddedPostgres;
use crate::store::{run_migrations, Store};
use crate::web::error::{AppError, ErrorCode};
use crate::web::middleware;
use crate::web::templates::Templates;
use crate::web::{routes, AppState};

/// Requests bodies above this are refused with 413 before being read.
const JSON_LIMIT: usize = 64 * 1024;
/// The largest url-encoded form any page posts (the console's settings form is the
/// biggest, well under this); above it, 413.
const FORM_LIMIT: usize = 16 * 1024;

pub struct Application {
    server: Server,
    port: u16,
    store: Store,
    engine: Engine,
    live: crate::live::Broker,
    jobs: crate::ops::jobs::Jobs,
    embedded: Option<EmbeddedPostgres>,
    /// `/metrics` on `metrics_listen`: its handle and port.
    metrics: Option<(actix_web::dev::ServerHandle, u16)>,
    sampler: crate::metrics::sampler::Sampler,
    /// The certificate being served, with `[tls]`; reloaded on SIGHUP.
    certs: Option<Arc<crate::tls::CertStore>>,
    /// The plain-HTTP listener that redirects to https (`tls.redirect_listen`): handle, port.
    redirect: Option<(actix_web::dev::ServerHandle, u16)>,
}

/// Opens the configured database, or starts the private cluster when none is configured.
pub async fn open_database(
    settings: &Settings,
) -> anyhow::Result<(Store, Option<EmbeddedPostgres>)> {
    match &settings.database_url {
        Some(url) => {
            let config = url.parse().map_err(|e| {
                anyhow::anyhow!("DATABASE_URL is not a valid connection string: {e}")
            })?;
            Ok((Store::connect(config, &settings.database).await?, None))
        }
        None => {
            let root = settings.data_dir.join("postgres");
            tracing::info!(dir = %root.display(), "no DATABASE_URL: using the private PostgreSQL cluster");
            let cluster = EmbeddedPostgres::start(&root).await?;
            let store =
                Store::connect(cluster.connect_config("ecoupon"), &settings.database).await?;
            Ok((store, Some(cluster)))
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let metrics_listener = crate::web::metrics_endpoint::bind(settings.metrics_listen)?;
        let (store, embedded) = open_database(&settings).await?;
        let secrets = Secrets::resolve(&settings.secrets, &settings.data_dir)?;
        run_migrations(&store).await?;
        let local = listener.local_addr()?;
        let port = local.port();
        let mut settings = settings;
        // Without a configured public URL, links point at the address really bound
        // (which matters with port 0).
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        settings
            .public_url
            .get_or_insert_with(|| format!("{scheme}://{local}"));
        // Certificates first: a bad file stops start-up with its name.
        let certs = settings
            .tls
            .as_ref()
            .map(crate::tls::CertStore::load)
            .transpose()?;
        let redirect_listener = settings
            .tls
            .as_ref()
            .and_then(|t| t.redirect_listen)
            .map(|addr| {
                TcpListener::bind(addr).map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (tls.redirect_listen): {e}")
                })
            })
            .transpose()?;
        let cookie_key = actix_web::cookie::Key::from(&secrets.cookie_key);
        let limits = middleware::RateLimits::new(&settings.pages, &settings.console);
        let secure_cookies = settings.public_url().starts_with("https://");
        let session_lifetime = settings.pages.session_lifetime;
        let signin =
            crate::oidc::Providers::from_settings(&settings.signin, &settings.public_url())?;
        let engine = Engine::start(store.clone(), settings.engine.clone()).await;
        let live = crate::live::Broker::start(
            store.clone(),
            engine.clone(),
            settings.console.idle_timeout,
        );
        // Daily backup, retention and the audit-chain check (one node of many does each).
        let board = crate::ops::notices::NoticeBoard::default();
        let jobs = crate::ops::jobs::Jobs::start(store.clone(), &settings, &secrets, board.clone());
        let board = web::Data::new(board);
        let api_keys = crate::web::auth::ApiKeyCache::new(&settings.api);
        let key_reads = crate::store::KeyReads::start(
            store.clone(),
            crate::web::idempotency::settle_after(&settings),
        );
        let state = web::Data::new(AppState {
            store: store.clone(),
            settings,
            secrets,
            templates: Arc::new(Templates::load()?),
            metrics: crate::metrics::install(),
            engine: engine.clone(),
            sessions: crate::web::session::SessionCookies {
                key: cookie_key.clone(),
                secure: secure_cookies,
                lifetime: session_lifetime,
            },
            cookie_key,
            secure_cookies,
            limits,
            images: Default::default(),
            api_keys,
            tenants: Default::default(),
            signin,
            live: live.clone(),
            key_reads,
        });
        let sampler =
            crate::metrics::sampler::Sampler::start(store.clone(), &engine, &state.settings);
        let metrics =
            crate::web::metrics_endpoint::serve_apart(metrics_listener, &state.metrics, &store)?;
        let http = state.settings.http.clone();
        let hsts = state
            .settings
            .tls
            .as_ref()
            .map(|t| t.hsts_max_age.as_secs())
            .filter(|secs| *secs > 0)
            .map(|secs| format!("max-age={secs}; includeSubDomains"));
        let redirect = redirect_listener
            .map(|l| redirect_server(l, &state.settings.public_url(), &http))
            .transpose()?;
        let server = HttpServer::new(move || {
            // Runs once on each worker thread: the campaign actors its claims start live here.
            crate::engine::host_actors_on_this_thread();
            App::new()
                .app_data(state.clone())
                .app_data(board.clone())
                .app_data(json_config())
                .app_data(form_config())
                .app_data(path_config())
                .app_data(query_config())
                .configure(routes::configure)
                .default_service(web::to(not_found))
                // Innermost: maintenance 503s and banners see the handlers' own answers.
                .wrap(from_fn(crate::web::auth::rate_limit_headers))
                .wrap(from_fn(middleware::notice_gate))
                .wrap(from_fn(middleware::body_deadline))
                .wrap(from_fn(middleware::rate_limit))
                // Outermost last: the tracing span and request id cover everything inside.
                .wrap(from_fn(middleware::uniform_errors))
                .wrap(middleware::security_headers())
                .wrap(actix_web::middleware::Condition::new(
                    hsts.is_some(),
                    actix_web::middleware::DefaultHeaders::new().add((
                        actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                        hsts.clone().unwrap_or_default(),
                    )),
                ))
                .wrap(from_fn(middleware::observe))
        })
        // Slow clients: the headers must arrive in time (else 408), idle connections close.
        .client_request_timeout(http.header_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(http.keep_alive);
        let server = match &certs {
            Some(certs) => {
                server.listen_rustls_0_23(listener, crate::tls::server_config(certs.clone())?)?
            }
            None => server.listen(listener)?,
        }
        .disable_signals()
        .run();
        Ok(Application {
            server,
            port,
            store,
            engine,
            live,
            jobs,
            embedded,
            metrics,
            sampler,
            certs,
            redirect,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// The port of `tls.redirect_listen`, when set.
    pub fn redirect_port(&self) -> Option<u16> {
        self.redirect.as_ref().map(|(_, port)| *port)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A handle to stop the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            server: self.server.handle(),
            live: self.live.clone(),
        }
    }

    /// Serves until SIGINT/SIGTERM (actix drains in-flight requests), then stops the private
    /// cluster if this process started it.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.handle();
        let signals = tokio::spawn(async move {
            stop_signal().await;
            tracing::info!("stop signal received; draining");
            handle.stop(true).await;
        });
        let reloads = self
            .certs
            .clone()
            .map(|certs| tokio::spawn(reload_on_hangup(certs)));
        let served = self.server.await;
        self.jobs.stop();
        if let Some((metrics, _)) = &self.metrics {
            metrics.stop(true).await;
        }
        if let Some((redirect, _)) = &self.redirect {
            redirect.stop(true).await;
        }
        if let Some(reloads) = reloads {
            reloads.abort();
        }
        self.sampler.stop();
        signals.abort();
        self.live.stop();
        // Requests have drained; now commit what the actors hold and return unused stock.
        self.engine.shutdown().await;
        // Close our connections before the server goes, rather than have it cut them.
        self.store.close();
        if let Some(cluster) = &self.embedded {
            tracing::info!("stopping the private PostgreSQL cluster");
            if let Err(e) = cluster.stop().await {
                tracing::warn!(error = %e, "private cluster did not stop cleanly");
            }
        }
        served.map_err(Into::into)
    }
}

/// Stops the server. Dashboard sockets are told to reconnect first: they are responses that
/// never end by themselves, so a graceful stop would otherwise wait out its timeout on them.
#[derive(Clone)]
pub struct AppHandle {
    server: actix_web::dev::ServerHandle,
    live: crate::live::Broker,
}

impl AppHandle {
    /// `graceful`: let in-flight requests finish (as on SIGTERM).
    pub async fn stop(&self, graceful: bool) {
        self.live.stop();
        self.server.stop(graceful).await;
    }
}

/// SIGHUP: read the certificate and key again. New connections get the new pair; open
/// ones keep theirs. A pair that does not load leaves the old one in place.
async fn reload_on_hangup(certs: Arc<crate::tls::CertStore>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; certificates will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match certs.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; serving the old one")
            }
        }
    }
}

/// `tls.redirect_listen`: every request is sent (308) to the same path on the https
/// public URL.
fn redirect_server(
    listener: TcpListener,
    public_url: &str,
    http: &crate::config::HttpSettings,
) -> anyhow::Result<(actix_web::dev::ServerHandle, u16)> {
    let port = listener.local_addr()?.port();
    let base = web::Data::new(public_url.trim_end_matches('/').to_string());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(base.clone())
            .default_service(web::to(redirect_to_https))
    })
    .workers(1)
    .client_request_timeout(http.header_timeout)
    .keep_alive(http.keep_alive)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((handle, port))
}

async fn redirect_to_https(
    req: actix_web::HttpRequest,
    base: web::Data<String>,
) -> actix_web::HttpResponse {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("{}{target}", base.as_str()),
        ))
        .finish()
}

/// SIGINT or SIGTERM. actix-web's own handling is off so that [`AppHandle::stop`] runs.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for stop signals");
            std::future::pending::<()>().await;
        }
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::new(ErrorCode::NotFound, "no such page"))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _| {
            use actix_web::error::JsonPayloadError;
            let error = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => AppError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {JSON_LIMIT} bytes"),
                ),
                JsonPayloadError::ContentType => AppError::new(
                    ErrorCode::InvalidJson,
                    "expected Content-Type: application/json",
                ),
                other => AppError::new(ErrorCode::InvalidJson, other.to_string()),
            };
            error.into()
        })
}

fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|err, _| {
            use actix_web::error::UrlencodedError;
            match &err {
                UrlencodedError::Overflow { .. } => AppError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("form is larger than {FORM_LIMIT} bytes"),
                )
                .into(),
                _ => err.into(),
            }
        })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| AppError::new(ErrorCode::NotFound, err.to_string()).into())
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| AppError::invalid("invalid_query", err.to_string()).into())
}
