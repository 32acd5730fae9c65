//! The client's address, for rate limits, the IP allow-list and the audit log: one
//! function, so every part of the service agrees on who is asking.
//!
//! `X-Forwarded-For` is believed only when the socket peer is a configured trusted proxy
//! (`pages.trusted_proxies`; the deprecated `pages.trust_forwarded_for` trusts any peer).
//! Otherwise a client could name any address it likes, and with it slip past the
//! allow-list or the rate limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::{PageSettings, Settings};

pub fn client_ip(req: &HttpRequest, settings: &Settings) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // A request may carry the header more than once; together they are one list.
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    resolve(peer, &forwarded, &settings.pages)
}

/// Who the client is, given the socket `peer` and the `X-Forwarded-For` entries in header
/// order. Each proxy appends the address it saw, so the header is read right to left: the
/// first address that is not itself a trusted proxy is the client. Anything to its left
/// was written by the client and proves nothing.
fn resolve(peer: IpAddr, forwarded: &[&str], pages: &PageSettings) -> IpAddr {
    let peer = canonical(peer);
    let trusted = |ip: IpAddr| {
        pages
            .trusted_proxies
            .iter()
            .any(|n: &IpNet| n.contains(&ip))
    };
    if forwarded.is_empty() || !(pages.trust_forwarded_for || trusted(peer)) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        // A trusted proxy wrote this entry; if it cannot be read, nothing to its left can
        // be trusted either, so the answer is the peer, the one address known for sure.
        let Some(ip) = parse_entry(entry) else {
            return peer;
        };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// "ip", "ip:port" or "[v6]:port" (proxies differ).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pages(trusted: &[&str], any: bool) -> PageSettings {
        PageSettings {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            trust_forwarded_for: any,
            ..PageSettings::default()
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let none = pages(&[], false);
        let proxy = pages(&["10.0.0.0/8"], false);
        let client = ip("203.0.113.9");
        // No proxy configured, or the peer is not one: the header is the client's own claim.
        assert_eq!(resolve(client, &["198.51.100.1"], &none), client);
        assert_eq!(resolve(client, &["198.51.100.1"], &proxy), client);
        // From the proxy: the address it appended.
        assert_eq!(resolve(ip("10.0.0.2"), &["203.0.113.9"], &proxy), client);
        assert_eq!(resolve(ip("10.0.0.2"), &[], &proxy), ip("10.0.0.2"));
    }

    #[test]
    fn the_walk_goes_right_to_left_past_trusted_proxies_only() {
        let proxies = pages(&["10.0.0.0/8", "2001:db8::/32"], false);
        let peer = ip("10.0.0.2");
        // A forged entry at the left is never reached.
        assert_eq!(
            resolve(peer, &["6.6.6.6", " 203.0.113.9", " 10.1.1.1"], &proxies),
            ip("203.0.113.9")
        );
        // A client claiming to be a proxy only gets as far as the first untrusted hop.
        assert_eq!(
            resolve(peer, &["10.9.9.9", "203.0.113.9"], &proxies),
            ip("203.0.113.9")
        );
        // Ports and IPv6 forms, and IPv4 through IPv6.
        assert_eq!(
            resolve(peer, &["203.0.113.9:4711"], &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(peer, &["[2001:db9::5]:443", "2001:db8::1"], &proxies),
            ip("2001:db9::5")
        );
        assert_eq!(
            resolve(ip("::ffff:10.0.0.2"), &["::ffff:203.0.113.9"], &proxies),
            ip("203.0.113.9")
        );
        // Every hop a proxy: the farthest one is the client.
        assert_eq!(
            resolve(peer, &["10.3.3.3", "10.4.4.4"], &proxies),
            ip("10.3.3.3")
        );
    }

    #[test]
    fn an_unreadable_entry_counts_as_the_peer() {
        let proxies = pages(&["10.0.0.0/8"], false);
        let peer = ip("10.0.0.2");
        assert_eq!(resolve(peer, &["203.0.113.9", "unknown"], &proxies), peer);
        assert_eq!(resolve(peer, &["", "10.0.0.3"], &proxies), peer);
        // Left of the client it is never read.
        assert_eq!(
            resolve(peer, &["garbage", "203.0.113.9"], &proxies),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_deprecated_switch_trusts_any_peer_but_still_walks_from_the_right() {
        let any = pages(&[], true);
        assert_eq!(
            resolve(ip("192.0.2.1"), &["6.6.6.6", "203.0.113.9"], &any),
            ip("203.0.113.9")
        );
        assert_eq!(resolve(ip("192.0.2.1"), &[], &any), ip("192.0.2.1"));
    }
}
