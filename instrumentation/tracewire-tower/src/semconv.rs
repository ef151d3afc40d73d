//! OpenTelemetry HTTP semantic conventions: the pieces of a request that
//! become attributes, read without allocating where possible.

use std::fmt;
use std::net::IpAddr;

use http::{HeaderMap, Method, Uri, Version, header};

/// The `http.request.method` value of `method`: the method itself when it
/// is one of the nine the conventions know, else `None` (the caller uses
/// `_OTHER` and records `http.request.method_original`).
pub(crate) fn known_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return None,
    })
}

/// The method attributes: (`http.request.method`, `http.request.method_original`).
pub(crate) fn method_attributes(method: &Method) -> (&'static str, Option<&str>) {
    match known_method(method) {
        Some(m) => (m, None),
        None => ("_OTHER", Some(method.as_str())),
    }
}

/// The method part of a span name: the method, or `HTTP` for an unknown one.
pub(crate) fn method_for_name(method: &Method) -> &'static str {
    known_method(method).unwrap_or("HTTP")
}

/// `network.protocol.version` for an HTTP version.
pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// The default port of a URL scheme.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else {
        None
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the host (without
/// brackets) and the port. `None` when the value is not a plausible host.
pub(crate) fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let value = value.trim_matches([' ', '\t']);
    let plausible = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b))
    };
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return plausible(host).then_some((host, port));
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse().ok()?)),
        _ => (value, None),
    };
    (plausible(host) && !host.contains(':')).then_some((host, port))
}

/// `server.address` and `server.port` of a request seen by a server: the
/// URI authority (HTTP/2 `:authority`, absolute-form requests), else the
/// `Host` header; the port defaults to the scheme's.
pub(crate) fn server_host<'a>(
    uri: &'a Uri,
    headers: &'a HeaderMap,
    scheme: &str,
) -> Option<(&'a str, Option<u16>)> {
    let (host, port) = match uri.authority() {
        Some(authority) => (authority.host(), authority.port_u16()),
        None => {
            let value = single_header(headers, &header::HOST)?;
            split_host_port(value)?
        }
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.or_else(|| default_port(scheme))))
}

/// The value of a header that appears exactly once and is visible ASCII.
pub(crate) fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The original client of a request that went through proxies: the first
/// `for=` of `Forwarded` (RFC 7239), else the first `X-Forwarded-For`
/// entry. Obfuscated identifiers (`_hidden`) and `unknown` are skipped.
pub(crate) fn forwarded_client(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        let first = value.split(',').next().unwrap_or("");
        for pair in first.split(';') {
            let Some((key, raw)) = pair.trim().split_once('=') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("for") {
                continue;
            }
            let node = raw.trim().trim_matches('"');
            return node_address(node);
        }
    }
    let value = headers.get("x-forwarded-for")?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    node_address(first)
}

/// The address of a `Forwarded` node (`192.0.2.1`, `192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, `2001:db8::1`).
fn node_address(node: &str) -> Option<&str> {
    if node.is_empty() || node.starts_with('_') || node.eq_ignore_ascii_case("unknown") {
        return None;
    }
    if node.parse::<IpAddr>().is_ok() {
        return Some(node);
    }
    let (host, _) = split_host_port(node)?;
    Some(host)
}

/// The scheme a proxy says the client used (`Forwarded: proto=`, else
/// `X-Forwarded-Proto`).
pub(crate) fn forwarded_proto(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        let first = value.split(',').next().unwrap_or("");
        for pair in first.split(';') {
            if let Some((key, raw)) = pair.trim().split_once('=')
                && key.trim().eq_ignore_ascii_case("proto")
            {
                return valid_scheme(raw.trim().trim_matches('"'));
            }
        }
    }
    valid_scheme(headers.get("x-forwarded-proto")?.to_str().ok()?.trim())
}

fn valid_scheme(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 16
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    ok.then_some(s)
}

/// Query parameters whose values are replaced by `REDACTED` in `url.full`.
pub(crate) const SENSITIVE_QUERY_KEYS: [&str; 5] = [
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "sig",
    "X-Goog-Signature",
];

/// Whether the value of query parameter `key` is replaced by `REDACTED` in
/// `url.full` (one of [`SENSITIVE_QUERY_KEYS`], ignoring case).
pub(crate) fn is_sensitive_query_key(key: &str) -> bool {
    SENSITIVE_QUERY_KEYS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(key))
}

/// `url.full` of a client request: credentials become
/// `REDACTED:REDACTED`, values of signature query parameters become
/// `REDACTED`. Written lazily (it is only formatted for recorded spans).
pub(crate) struct RedactedUrl<'a> {
    pub(crate) uri: &'a Uri,
}

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.uri;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            let host_port = match authority.as_str().rsplit_once('@') {
                Some((_, host_port)) => {
                    f.write_str("REDACTED:REDACTED@")?;
                    host_port
                }
                None => authority.as_str(),
            };
            f.write_str(host_port)?;
        }
        f.write_str(uri.path())?;
        if let Some(query) = uri.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _)) if is_sensitive_query_key(key) => {
                        write!(f, "{key}=REDACTED")?;
                    }
                    _ => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

/// `server.address` and `server.port` of a client request, from its URI.
pub(crate) fn client_host(uri: &Uri) -> Option<(&str, Option<u16>)> {
    let authority = uri.authority()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority
        .port_u16()
        .or_else(|| uri.scheme_str().and_then(default_port));
    Some((host, port))
}

/// A low-cardinality `error.type` for an error value of type `E`: the type
/// path without generic arguments (`hyper_util::client::legacy::Error`).
pub(crate) fn error_type_name<E: ?Sized>() -> &'static str {
    let name = std::any::type_name::<E>();
    if name.starts_with("alloc::boxed::Box<") {
        return "_OTHER";
    }
    name.split('<').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(method_attributes(&Method::GET), ("GET", None));
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_attributes(&custom), ("_OTHER", Some("PURGE")));
        assert_eq!(method_for_name(&custom), "HTTP");
    }

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(
            split_host_port("example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(split_host_port("[::1]:3000"), Some(("::1", Some(3000))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("host:99999"), None);
        assert_eq!(split_host_port("host:abc"), None);
        assert_eq!(split_host_port("a b"), None);
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port("::1"), None);
    }

    #[test]
    fn server_host_from_host_header_or_authority() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "shop.example:8443".parse().unwrap());
        let uri: Uri = "/cart".parse().unwrap();
        assert_eq!(
            server_host(&uri, &headers, "https"),
            Some(("shop.example", Some(8443)))
        );
        headers.insert(header::HOST, "shop.example".parse().unwrap());
        assert_eq!(
            server_host(&uri, &headers, "https"),
            Some(("shop.example", Some(443)))
        );
        let absolute: Uri = "http://[::1]:81/x".parse().unwrap();
        assert_eq!(
            server_host(&absolute, &headers, "http"),
            Some(("::1", Some(81)))
        );
        headers.append(header::HOST, "other".parse().unwrap());
        assert_eq!(server_host(&uri, &headers, "http"), None);
    }

    #[test]
    fn forwarded_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.195, 70.41.3.18".parse().unwrap(),
        );
        assert_eq!(forwarded_client(&headers), Some("203.0.113.195"));
        headers.insert(
            header::FORWARDED,
            "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=192.0.2.43"
                .parse()
                .unwrap(),
        );
        assert_eq!(forwarded_client(&headers), Some("2001:db8:cafe::17"));
        assert_eq!(forwarded_proto(&headers), Some("https"));
        headers.insert(header::FORWARDED, "for=_hidden".parse().unwrap());
        assert_eq!(forwarded_client(&headers), None);
        headers.insert(
            header::FORWARDED,
            "for=unknown;proto=\"ht tp\"".parse().unwrap(),
        );
        assert_eq!(forwarded_proto(&headers), None);
    }

    #[test]
    fn url_full_is_redacted() {
        let uri: Uri =
            "https://user:secret@files.example:8443/a/b?X-Amz-Signature=abc&keep=1&sig=zz&x"
                .parse()
                .unwrap();
        assert_eq!(
            RedactedUrl { uri: &uri }.to_string(),
            "https://REDACTED:REDACTED@files.example:8443/a/b?X-Amz-Signature=REDACTED&keep=1&sig=REDACTED&x"
        );
        let plain: Uri = "http://api.example/users?id=7".parse().unwrap();
        assert_eq!(
            RedactedUrl { uri: &plain }.to_string(),
            "http://api.example/users?id=7"
        );
        assert_eq!(client_host(&plain), Some(("api.example", Some(80))));
    }

    #[test]
    fn error_type_names() {
        assert_eq!(error_type_name::<std::io::Error>(), "std::io::error::Error");
        assert_eq!(
            error_type_name::<Box<dyn std::error::Error + Send + Sync>>(),
            "_OTHER"
        );
        assert_eq!(
            error_type_name::<std::convert::Infallible>(),
            "core::convert::Infallible"
        );
    }
}
