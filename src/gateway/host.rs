//! Which host a request is for, as route rules match it: the authority of
//! an absolute-form target (`GET http://h/p`), else the `Host` header, without
//! port, trailing dot or case.

/// The authority of an absolute-form request target (`GET http://h/p`),
/// read with pingora's own parser (which keeps it off the parsed URI and has
/// already checked that any `Host` header agrees with it).
pub fn absolute_form_authority(target: &[u8]) -> Option<String> {
    let authority = pingora::http::authority::raw_target_authority(target).authority()?;
    let authority = std::str::from_utf8(authority).ok()?;
    (!authority.is_empty()).then(|| authority.to_string())
}

pub fn host_without_port(host: &str) -> String {
    let h = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']')
            .next()
            .map(|v6| format!("[{v6}]"))
            .unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| host.to_string())
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::{absolute_form_authority, host_without_port};

    #[test]
    fn absolute_form_targets() {
        assert_eq!(
            absolute_form_authority(b"http://api.example.com/x?y").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            absolute_form_authority(b"https://h:8443?q").as_deref(),
            Some("h:8443")
        );
        assert_eq!(absolute_form_authority(b"/x"), None);
        assert_eq!(absolute_form_authority(b"http:///x"), None);
        assert_eq!(
            absolute_form_authority(b"HTTP://Admin.example.com/x").as_deref(),
            Some("Admin.example.com")
        );
    }

    #[test]
    fn hosts_lose_ports_and_case() {
        assert_eq!(host_without_port("API.example.com:8080"), "api.example.com");
        assert_eq!(host_without_port("api.example.com."), "api.example.com");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port(""), "");
    }
}
