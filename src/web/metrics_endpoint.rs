//! `GET /metrics`: Prometheus text exposition. With `metrics_listen` set it is served on a
//! listener of its own (see [`server`]) and the main listener answers 404, so the metrics
//! need not face the internet. Without it the main listener serves them only to a scraper
//! on this host: a loopback peer whose request came through no proxy (a reverse proxy on
//! the same host would otherwise hand them to the internet).

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;

use super::AppState;
use crate::store::Store;
use crate::web::error::{AppError, ErrorCode};

/// `/metrics` on the main listener.
pub async fn render(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if state.settings.metrics_listen.is_some() {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "no such page (metrics are served on metrics_listen)",
        ));
    }
    if !from_this_host(&req) {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "no such page (metrics are served to this host only; set metrics_listen)",
        ));
    }
    Ok(exposition(&state.metrics, &state.store))
}

/// The socket peer is a loopback address and no proxy header says it relays someone else.
fn from_this_host(req: &HttpRequest) -> bool {
    let loopback = req.peer_addr().is_some_and(|a| match a.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        ip => ip.is_loopback(),
    });
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    loopback && !proxied
}

fn exposition(handle: &PrometheusHandle, store: &Store) -> HttpResponse {
    crate::metrics::sampler::at_scrape(store);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

struct Scrape {
    handle: PrometheusHandle,
    store: Store,
}

async fn render_apart(scrape: web::Data<Scrape>) -> HttpResponse {
    exposition(&scrape.handle, &scrape.store)
}

/// Binds `metrics_listen`, when set, at start-up (so a busy port fails start-up).
pub fn bind(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    addr.map(|addr| {
        TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (metrics_listen): {e}"))
    })
    .transpose()
}

/// The `metrics_listen` server: `GET /metrics` and nothing else, one worker, stopped with
/// the main server (it ignores signals itself).
fn server(
    listener: TcpListener,
    handle: PrometheusHandle,
    store: Store,
) -> std::io::Result<Server> {
    let scrape = web::Data::new(Scrape { handle, store });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(scrape.clone())
            .route("/metrics", web::get().to(render_apart))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Starts the `metrics_listen` server when there is a listener: its handle and port.
pub fn serve_apart(
    listener: Option<TcpListener>,
    handle: &PrometheusHandle,
    store: &Store,
) -> std::io::Result<Option<(actix_web::dev::ServerHandle, u16)>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let port = listener.local_addr()?.port();
    let server = server(listener, handle.clone(), store.clone())?;
    let stop = server.handle();
    actix_web::rt::spawn(server);
    Ok(Some((stop, port)))
}
