//! Who the client is: the peer address, or — only when the peer is a
//! trusted proxy — the nearest untrusted address in `X-Forwarded-For`.
//! `X-Forwarded-*` from anyone else is never believed.

use std::net::IpAddr;

use ipnet::IpNet;

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client address for rate limits and logs. `xff` is every
/// `X-Forwarded-For` value in order. Walking right to left, trusted hops are
/// skipped; the first untrusted address is the client. An unparsable entry
/// stops the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, xff: &[&str], trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut current = peer;
    for entry in xff.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry) else {
            return current;
        };
        current = canonical(ip);
        if !is_trusted(current, trusted) {
            return current;
        }
    }
    current
}

fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse() {
        return Some(ip);
    }
    // "[v6]:port" or "v4:port"
    e.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["1.2.3.4"], &t),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["6.6.6.6, 198.51.100.7, 10.0.0.2"], &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["6.6.6.6", "198.51.100.7"], &t),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &[], &t), ip("10.0.0.1"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["garbage, 10.0.0.3"], &t),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &["198.51.100.7"], &t),
            ip("198.51.100.7")
        );
    }
}
