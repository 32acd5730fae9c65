//! The client's address, for rate limits, the IP allow-list and the audit log. Behind a
//! reverse proxy (`pages.trust_forwarded_for`) it comes from `X-Forwarded-For`; otherwise
//! from the socket, because a client could write any header it likes.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::HttpRequest;

use crate::config::Settings;

pub fn client_ip(req: &HttpRequest, settings: &Settings) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !settings.pages.trust_forwarded_for {
        return peer;
    }
    // The header may carry "ip" or "ip:port"; an unparsable value counts as the peer.
    req.connection_info()
        .realip_remote_addr()
        .and_then(|a| {
            a.parse::<IpAddr>()
                .ok()
                .or_else(|| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        })
        .unwrap_or(peer)
}
