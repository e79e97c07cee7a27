//! HTTP strictness (DESIGN.md §10): requests a backend could read
//! differently from the gateway are refused before routing, and never
//! forwarded.
//!
//! What pingora does before any hook runs: a request line it cannot parse
//! is retried with a space, `<`, `>`, `"` and control bytes in the target
//! percent-encoded, so those arrive as `%20`, `%01`, … (indistinguishable
//! from a client's own escapes); the path normalizer then refuses encoded
//! control characters, and a space is matched and forwarded as the same
//! `%20`. A fragment is cut off the parsed target. What is checked here:
//! a raw `#` in the request line as received (the policy would judge the
//! part before it), `TRACE` and `CONNECT` (405), and a missing, repeated or
//! malformed `Host` on HTTP/1.1.

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use crate::error::GatewayError;

/// What `Allow` names when a method is never served (`TRACE`, `CONNECT`).
const SERVED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Checks the request of `session`, reading its HTTP/1 request line as
/// received; `absolute_form` as for `check`.
pub fn check_session(session: &Session, absolute_form: bool) -> Result<(), GatewayError> {
    let req = session.req_header();
    // A refcounted slice of pingora's read buffer, not a copy.
    let head =
        (req.version < http::Version::HTTP_2).then(|| session.downstream_session.to_h1_raw());
    let request_line = head
        .as_deref()
        .map(|h| h.split(|&b| b == b'\n').next().unwrap_or(h));
    check(req, request_line, absolute_form)
}

/// Checks a request; `request_line` is its HTTP/1 request line as received
/// (pingora cuts a fragment off before the parsed target shows it), and
/// `absolute_form` says its target names the host itself (then `Host` may
/// be absent: the target's authority is what is matched and forwarded).
fn check(
    req: &RequestHeader,
    request_line: Option<&[u8]>,
    absolute_form: bool,
) -> Result<(), GatewayError> {
    if req.method == http::Method::TRACE || req.method == http::Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed(SERVED_METHODS));
    }
    let target = request_line.map_or(req.raw_path(), target_of);
    if target
        .iter()
        .any(|&b| b == b'#' || b == b' ' || b.is_ascii_control())
    {
        return Err(GatewayError::BadRequest(
            "The request target may not contain '#', spaces or control characters",
        ));
    }
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(GatewayError::BadRequest(
            "The request has more than one Host header",
        )),
        (Some(host), None) if !valid_host(host.as_bytes()) => Err(GatewayError::BadRequest(
            "The Host header is not a host with an optional port",
        )),
        (None, _) if req.version == http::Version::HTTP_11 && !absolute_form => Err(
            GatewayError::BadRequest("HTTP/1.1 requests need a Host header"),
        ),
        _ => Ok(()),
    }
}

/// The request-target of a request line: between the method's space and
/// the version's.
fn target_of(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(start) = line.iter().position(|&b| b == b' ').map(|i| i + 1) else {
        return b"";
    };
    let end = line
        .iter()
        .rposition(|&b| b == b' ')
        .filter(|&e| e >= start);
    &line[start..end.unwrap_or(line.len())]
}

/// `host` or `host:port`: a name of letters, digits, `-`, `.`, `_`, an
/// IPv4 address or a bracketed IPv6 one; no userinfo, path or second port.
fn valid_host(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (text, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return false;
    }
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{target_of, valid_host};

    #[test]
    fn targets() {
        assert_eq!(target_of(b"GET /a#b HTTP/1.1\r"), b"/a#b");
        assert_eq!(target_of(b"GET /a b HTTP/1.1"), b"/a b");
        assert_eq!(target_of(b"GET"), b"");
    }

    #[test]
    fn hosts() {
        for ok in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "[::1]",
            "[::1]:8080",
            "localhost",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "example.com/x",
            "example.com:80:81",
            "user@example.com",
            "example.com:port",
            "example.com:99999",
            "::1",
            "exa mple.com",
            "example.com?x",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }
}
