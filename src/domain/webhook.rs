//! Webhooks: the events merchants can subscribe to, which destinations are allowed, and
//! the signature (the Standard Webhooks scheme, <https://www.standardwebhooks.com>).

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Every event type, as merchants name them when subscribing.
pub const EVENT_TYPES: &[&str] = &[
    "coupon.claimed",
    "coupon.redeemed",
    "redemption.undone",
    "campaign.sold_out",
    "campaign.ended",
];

pub const COUPON_CLAIMED: &str = "coupon.claimed";
pub const COUPON_REDEEMED: &str = "coupon.redeemed";
pub const REDEMPTION_UNDONE: &str = "redemption.undone";
pub const CAMPAIGN_SOLD_OUT: &str = "campaign.sold_out";
pub const CAMPAIGN_ENDED: &str = "campaign.ended";

/// Endpoints a tenant may register.
pub const MAX_ENDPOINTS_PER_TENANT: i64 = 20;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvents {
    #[error("events: give at least one event type")]
    Empty,
    #[error("events: {0:?} is not an event type (one of coupon.claimed, coupon.redeemed, redemption.undone, campaign.sold_out, campaign.ended)")]
    Unknown(String),
}

/// The subscribed events, checked, without duplicates, in the order given.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, InvalidEvents> {
    let mut events: Vec<String> = Vec::new();
    for e in raw {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(InvalidEvents::Unknown(e.clone()));
        }
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    if events.is_empty() {
        return Err(InvalidEvents::Empty);
    }
    Ok(events)
}

/// Which destinations the installation allows besides public HTTPS addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    pub allow_http: bool,
    pub allow_loopback: bool,
    pub allow_private: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("url: not a valid absolute URL")]
    Malformed,
    #[error("url: must use https")]
    NotHttps,
    #[error("url: must not carry a user name or password")]
    Credentials,
    #[error("url: {0} is a loopback address; webhooks go to the merchant's public servers")]
    Loopback(IpAddr),
    #[error("url: {0} is a private, link-local or reserved address; webhooks go to the merchant's public servers")]
    Private(IpAddr),
}

/// A destination URL as registered: absolute, https (unless allowed otherwise), no
/// credentials. A literal IP address is judged here; a host name when it is resolved.
pub fn parse_destination(
    raw: &str,
    policy: DestinationPolicy,
) -> Result<url::Url, DestinationError> {
    let url = url::Url::parse(raw.trim()).map_err(|_| DestinationError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(DestinationError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    match url.host() {
        None => return Err(DestinationError::Malformed),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), policy)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(url)
}

/// Whether a (resolved) address may be sent to.
pub fn check_address(ip: IpAddr, policy: DestinationPolicy) -> Result<(), DestinationError> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return if policy.allow_loopback {
            Ok(())
        } else {
            Err(DestinationError::Loopback(ip))
        };
    }
    if !policy.allow_private && !is_public(ip) {
        return Err(DestinationError::Private(ip));
    }
    Ok(())
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// A new signing secret: `whsec_` and 24 random bytes in base64, as Standard Webhooks
/// libraries expect it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", B64.encode(bytes))
}

/// The `webhook-signature` value: `v1,` and base64 of HMAC-SHA256 over
/// `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's decoded bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| B64.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Wait before the next try after `attempts` failed ones: `base`, doubling, at most 2 h.
/// (With a 5 s base: 5 s, 10 s, 20 s … about 17 tries in the first 24 hours.)
pub fn backoff(base: std::time::Duration, attempts: i32) -> std::time::Duration {
    let exp = attempts.clamp(0, 20) as u32;
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(std::time::Duration::from_secs(7200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STRICT: DestinationPolicy = DestinationPolicy {
        allow_http: false,
        allow_loopback: false,
        allow_private: false,
    };

    #[test]
    fn events_are_checked_and_deduplicated() {
        let ok = parse_events(&["coupon.claimed".into(), "coupon.claimed".into()]).unwrap();
        assert_eq!(ok, vec!["coupon.claimed"]);
        assert_eq!(parse_events(&[]), Err(InvalidEvents::Empty));
        assert!(matches!(
            parse_events(&["coupon.deleted".into()]),
            Err(InvalidEvents::Unknown(_))
        ));
    }

    #[test]
    fn destinations_must_be_public_https() {
        assert!(parse_destination("https://hooks.example.com/x", STRICT).is_ok());
        assert_eq!(
            parse_destination("http://hooks.example.com/x", STRICT),
            Err(DestinationError::NotHttps)
        );
        assert_eq!(
            parse_destination("https://u:p@hooks.example.com/", STRICT),
            Err(DestinationError::Credentials)
        );
        for bad in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                matches!(
                    parse_destination(bad, STRICT),
                    Err(DestinationError::Loopback(_))
                ),
                "{bad}"
            );
        }
        for bad in [
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://172.16.5.5/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
        ] {
            assert!(
                matches!(
                    parse_destination(bad, STRICT),
                    Err(DestinationError::Private(_))
                ),
                "{bad}"
            );
        }
        assert!(parse_destination("https://8.8.8.8/", STRICT).is_ok());
        let loopback = DestinationPolicy {
            allow_http: true,
            allow_loopback: true,
            allow_private: false,
        };
        assert!(parse_destination("http://127.0.0.1:9/", loopback).is_ok());
        assert!(parse_destination("http://10.0.0.1/", loopback).is_err());
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks reference libraries.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(new_secret().starts_with("whsec_"));
        assert_ne!(new_secret(), new_secret());
    }

    #[test]
    fn backoff_doubles_up_to_two_hours() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 0), Duration::from_secs(5));
        assert_eq!(backoff(base, 3), Duration::from_secs(40));
        assert_eq!(backoff(base, 40), Duration::from_secs(7200));
    }
}
