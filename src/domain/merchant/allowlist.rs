//! A tenant's IP allow-list for the console and the API: CIDRs, IPv4 and IPv6. Empty
//! means everyone. An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) counts as
//! its IPv4 address.

use std::net::IpAddr;

use ipnet::IpNet;

/// Lines beyond this are refused: the list is checked on every request.
const MAX_ENTRIES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowList(Vec<IpNet>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("{0:?} is not an IP address or a CIDR such as 203.0.113.0/24 or 2001:db8::/32")]
    Invalid(String),
    #[error("at most {MAX_ENTRIES} entries")]
    TooMany,
}

impl IpAllowList {
    /// One entry a line (or comma-separated); blank lines and `#` comments are ignored. A
    /// bare address is a /32 or /128.
    pub fn parse(text: &str) -> Result<IpAllowList, AllowListError> {
        let mut nets = Vec::new();
        for raw in text.split(['\n', ',']) {
            let entry = raw.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| AllowListError::Invalid(entry.to_owned()))?;
            nets.push(net.trunc());
        }
        if nets.len() > MAX_ENTRIES {
            return Err(AllowListError::TooMany);
        }
        nets.dedup();
        Ok(IpAllowList(nets))
    }

    /// From stored CIDR strings (written by `parse`, so each parses again).
    pub fn from_stored(entries: &[String]) -> IpAllowList {
        IpAllowList(entries.iter().filter_map(|e| e.parse().ok()).collect())
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(|n| n.to_string()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_matches_and_refuses() {
        let list =
            IpAllowList::parse("203.0.113.0/24\n2001:db8::/32 # office\n\n198.51.100.7").unwrap();
        assert_eq!(
            list.entries(),
            ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(list.allows(ip("203.0.113.99")) && list.allows(ip("::ffff:203.0.113.5")));
        assert!(list.allows(ip("2001:db8:1::1")) && list.allows(ip("198.51.100.7")));
        assert!(!list.allows(ip("198.51.100.8")) && !list.allows(ip("2001:db9::1")));
        assert!(IpAllowList::parse("").unwrap().allows(ip("192.0.2.1")));
        assert_eq!(
            IpAllowList::parse("10.0.0.300"),
            Err(AllowListError::Invalid("10.0.0.300".into()))
        );
        assert_eq!(
            IpAllowList::parse("10.0.0.1/24").unwrap().entries(),
            ["10.0.0.0/24"]
        );
        assert_eq!(IpAllowList::from_stored(&list.entries()), list);
        let many = (0..101)
            .map(|i| format!("10.0.{i}.0/24"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(IpAllowList::parse(&many), Err(AllowListError::TooMany));
    }
}
