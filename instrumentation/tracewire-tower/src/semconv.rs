//! OpenTelemetry HTTP semantic conventions on the server side: the pieces
//! of an incoming request that become attributes, read without allocating.
//! What clients share with them is in `tracewire::http`.

use std::net::IpAddr;

use http::{HeaderMap, Uri, header};
use tracewire::http::default_port;

/// The bytes a plausible host (or a port, which is checked by parsing)
/// may contain: alphanumerics and `-._~%!$&'()*+,;=:`.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~%!$&'()*+,;=:";
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
};

fn plausible_host(h: &str) -> bool {
    !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| HOST_BYTES[usize::from(b)])
}

/// `value` without leading and trailing spaces and tabs.
fn trim_ows(value: &str) -> &str {
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    // Both ends are next to ASCII bytes: char boundaries.
    &value[start..end]
}

/// Splits `host[:port]` (IPv6 in brackets) into the host (without
/// brackets) and the port. `None` when the value is not a plausible host.
///
/// Runs for every traced request (the `Host` header): one pass over the
/// bytes rather than pattern searches.
pub(crate) fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let value = trim_ows(value);
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return plausible_host(host).then_some((host, port));
    }
    // Every byte must be a host byte: a byte outside the set in the port
    // would fail its parse anyway. A second `:` makes it no host.
    let mut colon = None;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if b == b':' {
            if colon.is_some() {
                return None;
            }
            colon = Some(i);
        } else if !HOST_BYTES[usize::from(b)] {
            return None;
        }
    }
    let (host, port) = match colon {
        Some(i) => (&value[..i], Some(value[i + 1..].parse().ok()?)),
        None => (value, None),
    };
    (!host.is_empty() && host.len() <= 255).then_some((host, port))
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
        Some(authority) => {
            let host = authority.host();
            (
                host.trim_start_matches('[').trim_end_matches(']'),
                authority.port_u16(),
            )
        }
        // `split_host_port` removes an IPv6 literal's brackets itself.
        None => split_host_port(single_header(headers, &header::HOST)?)?,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(split_host_port("a:b:80"), None);
        assert_eq!(split_host_port(" \thost:+80\t "), Some(("host", Some(80))));
        assert_eq!(split_host_port("host: 80"), None);
        assert_eq!(split_host_port("host:"), None);
        assert_eq!(split_host_port("[[::1]]"), None);
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
}
