//! OTLP exporter settings and their `OTEL_EXPORTER_OTLP_*` variables.

use std::time::Duration;

use crate::sampling::ConfigWarning;

/// The OTLP transport and encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Protobuf over HTTP (`http/protobuf`, the default).
    #[default]
    HttpProtobuf,
    /// OTLP/JSON over HTTP (`http/json`).
    HttpJson,
    /// gRPC (`grpc`; needs the `grpc` feature).
    Grpc,
}

impl Protocol {
    /// Parses an `OTEL_EXPORTER_OTLP_PROTOCOL` value (case-insensitive).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" => Some(Protocol::HttpJson),
            "grpc" => Some(Protocol::Grpc),
            _ => None,
        }
    }

    /// The endpoint used when none is configured.
    pub const fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf | Protocol::HttpJson => "http://localhost:4318/v1/traces",
        }
    }
}

/// Payload compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// How failed exports are retried: exponential back-off with jitter on
/// retryable failures (HTTP 429, 502, 503, 504, connection errors, gRPC
/// `UNAVAILABLE` and the like), within the export timeout. A `Retry-After`
/// the receiver sends replaces the computed delay; one longer than the time
/// left ends the export at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub initial_backoff: Duration,
    /// The longest computed delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): doubling from the
    /// initial back-off up to the maximum, with jitter drawn from its upper
    /// half so that many exporters do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff)
            // Never near Duration::MAX, where the jitter would overflow.
            .min(OtlpConfig::MAX_TIMEOUT);
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Settings of an [`OtlpExporter`](super::OtlpExporter).
///
/// ```
/// use std::time::Duration;
/// use tracewire::export::otlp::{Compression, OtlpConfig, Protocol};
///
/// let vars = [
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
///     ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret%20value"),
///     ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
///     ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
/// ];
/// let var = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
/// let (config, warnings) = OtlpConfig::from_otel(var);
/// assert!(warnings.is_empty());
/// assert_eq!(config.endpoint, "http://collector:4318/v1/traces");
/// assert_eq!(config.headers, [("api-key".to_owned(), "secret value".to_owned())]);
/// assert_eq!(config.timeout, Duration::from_millis(2500));
/// assert_eq!((config.protocol, config.compression), (Protocol::HttpProtobuf, Compression::Gzip));
/// ```
///
/// Its `Debug` output shows header names but never their values (they are
/// usually credentials), and hides any `user:password@` in the endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Transport and encoding.
    pub protocol: Protocol,
    /// The full URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// Extra request headers (gRPC metadata), such as an API key.
    pub headers: Vec<(String, String)>,
    /// The time one export may take, retries included. The exporter
    /// treats [`Duration::ZERO`] as the default (10 s) and clamps longer
    /// values to [`OtlpConfig::MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Payload compression.
    pub compression: Compression,
    /// Retries of failed exports.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// Header names with their values hidden.
        struct Redacted<'a>(&'a [(String, String)]);
        impl std::fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(k, _)| (k, "<redacted>")))
                    .finish()
            }
        }
        f.debug_struct("OtlpConfig")
            .field("protocol", &self.protocol)
            .field("endpoint", &redact_endpoint(&self.endpoint))
            .field("headers", &Redacted(&self.headers))
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("retry", &self.retry)
            .finish()
    }
}

/// `endpoint` with any `user:password@` replaced by `REDACTED@`, for
/// messages and `Debug` output.
pub(super) fn redact_endpoint(endpoint: &str) -> std::borrow::Cow<'_, str> {
    let rest_start = endpoint.find("://").map_or(0, |i| i + 3);
    let rest = &endpoint[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!(
            "{}REDACTED{}",
            &endpoint[..rest_start],
            &endpoint[rest_start + at..]
        )
        .into(),
        None => endpoint.into(),
    }
}

/// At most this many bytes of an invalid value are repeated in a warning.
const SHOWN_VALUE_BYTES: usize = 128;

/// `value` as repeated in a warning: credentials in a URL hidden, and cut
/// to [`SHOWN_VALUE_BYTES`] (a 10 KB value does not become a 10 KB log
/// line).
fn shown(value: &str) -> String {
    let value = redact_endpoint(value);
    if value.len() <= SHOWN_VALUE_BYTES {
        return value.into_owned();
    }
    let mut end = SHOWN_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len())
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            protocol: Protocol::HttpProtobuf,
            endpoint: Protocol::HttpProtobuf.default_endpoint().to_owned(),
            headers: Vec::new(),
            timeout: OtlpConfig::DEFAULT_TIMEOUT,
            compression: Compression::None,
            retry: RetryPolicy::default(),
        }
    }
}

/// The value of `OTEL_EXPORTER_OTLP_TRACES_{setting}`, else of
/// `OTEL_EXPORTER_OTLP_{setting}`; empty values count as unset. Returns the
/// name of the variable used.
fn pick(
    var: &impl Fn(&str) -> Option<String>,
    specific: &'static str,
    generic: &'static str,
) -> Option<(&'static str, String)> {
    let non_empty = |n: &'static str| {
        var(n)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(|v| (n, v))
    };
    non_empty(specific).or_else(|| non_empty(generic))
}

/// Whether `url` is an absolute `http` or `https` URL with a host.
fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    })
}

/// Why an `OTEL_EXPORTER_OTLP_HEADERS` value was not used. Only a header
/// *name* is ever kept for the warning: values are usually credentials, and
/// a malformed pair (say `Authorization: Bearer …`, without `=`) may be one
/// as a whole.
struct BadHeaders {
    /// The name of the offending header, when it is a valid header name.
    key: Option<String>,
    reason: &'static str,
}

/// Parses `k=v,k2=v2` with percent-encoded values, within
/// [`OtlpConfig::MAX_HEADERS`] pairs and [`OtlpConfig::MAX_HEADERS_BYTES`].
fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, BadHeaders> {
    let bad = |key: Option<&str>, reason| BadHeaders {
        key: key.map(str::to_owned),
        reason,
    };
    if raw.len() > OtlpConfig::MAX_HEADERS_BYTES {
        return Err(bad(None, "longer than 8192 bytes; no headers are sent"));
    }
    let mut headers = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if headers.len() == OtlpConfig::MAX_HEADERS {
            return Err(bad(None, "more than 64 headers; no headers are sent"));
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(bad(
                None,
                "a pair without `=` (expected comma-separated key=value pairs); no headers are sent",
            ));
        };
        let key = crate::baggage::percent_decode(key.trim().as_bytes())
            .filter(|k| !k.is_empty() && http::HeaderName::from_bytes(k.as_bytes()).is_ok())
            .ok_or_else(|| {
                bad(
                    None,
                    "a header name that is not a valid HTTP header name; no headers are sent",
                )
            })?;
        let value = crate::baggage::percent_decode(value.trim().as_bytes())
            .filter(|v| http::HeaderValue::from_str(v).is_ok())
            .ok_or_else(|| {
                bad(
                    Some(&key),
                    "this header's value is not valid (percent-encode it); no headers are sent",
                )
            })?;
        headers.push((key.to_ascii_lowercase(), value));
    }
    Ok(headers)
}

/// Parses an `OTEL_EXPORTER_OTLP_TIMEOUT` value (whole milliseconds): the
/// timeout and, when the value was not used as it is, why.
fn parse_timeout(value: &str) -> (Duration, Option<&'static str>) {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let reason = if value.starts_with('-') {
            "a negative timeout"
        } else {
            "expected a whole number of milliseconds"
        };
        return (OtlpConfig::DEFAULT_TIMEOUT, Some(reason));
    }
    // All digits: too many for a u64 is simply very large.
    let ms = digits.parse::<u64>().unwrap_or(u64::MAX);
    if ms == 0 {
        (
            OtlpConfig::DEFAULT_TIMEOUT,
            Some("a zero timeout would fail every export"),
        )
    } else if Duration::from_millis(ms) > OtlpConfig::MAX_TIMEOUT {
        (
            OtlpConfig::MAX_TIMEOUT,
            Some("more than the maximum, 600000 ms (10 minutes), which is used instead"),
        )
    } else {
        (Duration::from_millis(ms), None)
    }
}

impl OtlpConfig {
    /// The export timeout when none (or zero) is configured: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest export timeout: 10 minutes. Longer values, from the
    /// environment or from code, are clamped to it.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
    /// The most headers `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` may give.
    pub const MAX_HEADERS: usize = 64;
    /// The longest `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` value, in bytes.
    pub const MAX_HEADERS_BYTES: usize = 8192;
    /// The longest endpoint URL, in bytes.
    pub const MAX_ENDPOINT_BYTES: usize = 4096;

    /// The timeout an exporter uses for `timeout`: zero means the
    /// default, and longer than [`MAX_TIMEOUT`](Self::MAX_TIMEOUT) is
    /// clamped to it.
    pub fn effective_timeout(timeout: Duration) -> Duration {
        if timeout.is_zero() {
            Self::DEFAULT_TIMEOUT
        } else {
            timeout.min(Self::MAX_TIMEOUT)
        }
    }

    /// Settings for `protocol` sending to `endpoint` (for HTTP, the full URL
    /// including `/v1/traces`), other settings at their defaults.
    pub fn new(protocol: Protocol, endpoint: impl Into<String>) -> Self {
        OtlpConfig {
            protocol,
            endpoint: endpoint.into(),
            ..OtlpConfig::default()
        }
    }

    /// Settings from the `OTEL_EXPORTER_OTLP_*` variables (`var` returns a
    /// variable's value), with a warning naming the variable for each
    /// invalid value, which is replaced by its default. A `_TRACES_`
    /// variable wins over the generic one; the generic endpoint is a base
    /// URL that gets `/v1/traces` appended for HTTP, the trace-specific one
    /// is used as is.
    ///
    /// Bounds: the timeout is 1 ms to [`MAX_TIMEOUT`](Self::MAX_TIMEOUT)
    /// (0 or negative: the default, 10 s; more: clamped); the endpoint an
    /// absolute `http`/`https` URL of at most
    /// [`MAX_ENDPOINT_BYTES`](Self::MAX_ENDPOINT_BYTES); headers at most
    /// [`MAX_HEADERS`](Self::MAX_HEADERS) pairs in
    /// [`MAX_HEADERS_BYTES`](Self::MAX_HEADERS_BYTES). A warning about
    /// headers names the variable and at most a header's name, never a
    /// value; other warnings repeat at most 128 bytes of the value, with
    /// credentials in URLs hidden.
    pub fn from_otel(var: impl Fn(&str) -> Option<String>) -> (Self, Vec<ConfigWarning>) {
        let mut warnings = Vec::new();
        let mut config = OtlpConfig::default();
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ) {
            match Protocol::parse(&value) {
                Some(protocol) => config.protocol = protocol,
                None => warnings.push(ConfigWarning {
                    variable: name,
                    value: shown(&value),
                    reason: "expected http/protobuf, http/json or grpc",
                }),
            }
        }
        config.endpoint = config.protocol.default_endpoint().to_owned();
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ) {
            let endpoint =
                if name == "OTEL_EXPORTER_OTLP_ENDPOINT" && config.protocol != Protocol::Grpc {
                    format!("{}/v1/traces", value.trim_end_matches('/'))
                } else {
                    value.clone()
                };
            if endpoint.len() > Self::MAX_ENDPOINT_BYTES {
                warnings.push(ConfigWarning {
                    variable: name,
                    value: shown(&value),
                    reason: "longer than 4096 bytes",
                });
            } else if is_http_url(&endpoint) {
                config.endpoint = endpoint;
            } else {
                warnings.push(ConfigWarning {
                    variable: name,
                    value: shown(&value),
                    reason: "expected an absolute http:// or https:// URL",
                });
            }
        }
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ) {
            // Never the value itself: it carries credentials.
            match parse_headers(&value) {
                Ok(headers) => config.headers = headers,
                Err(bad) => warnings.push(ConfigWarning {
                    variable: name,
                    value: bad.key.unwrap_or_default(),
                    reason: bad.reason,
                }),
            }
        }
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            let (timeout, problem) = parse_timeout(&value);
            config.timeout = timeout;
            if let Some(reason) = problem {
                warnings.push(ConfigWarning {
                    variable: name,
                    value: shown(&value),
                    reason,
                });
            }
        }
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ) {
            match value.to_ascii_lowercase().as_str() {
                "gzip" => config.compression = Compression::Gzip,
                "none" => config.compression = Compression::None,
                _ => warnings.push(ConfigWarning {
                    variable: name,
                    value: shown(&value),
                    reason: "expected gzip or none",
                }),
            }
        }
        (config, warnings)
    }

    /// Settings from this process's environment.
    pub fn from_env() -> (Self, Vec<ConfigWarning>) {
        Self::from_otel(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> (OtlpConfig, Vec<ConfigWarning>) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        OtlpConfig::from_otel(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let (c, w) = config(&[]);
        assert!(w.is_empty());
        assert_eq!(c, OtlpConfig::default());
        assert_eq!(c.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(c.timeout, Duration::from_secs(10));
    }

    #[test]
    fn endpoint_rules() {
        let (c, _) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
        assert_eq!(c.endpoint, "http://c:4318/v1/traces");
        let (c, _) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp/")]);
        assert_eq!(c.endpoint, "https://c/otlp/v1/traces");
        let (c, _) = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://specific:9999/custom",
            ),
        ]);
        assert_eq!(c.endpoint, "http://specific:9999/custom", "used as is");
        let (c, _) = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(c.endpoint, "http://localhost:4317");
        let (c, _) = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ]);
        assert_eq!(
            (c.protocol, c.endpoint.as_str()),
            (Protocol::Grpc, "http://c:4317")
        );
    }

    #[test]
    fn trace_specific_variables_win_and_empty_means_unset() {
        let (c, w) = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ""),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "100"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "200"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2, c = x%2Cy"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.protocol, Protocol::HttpJson);
        assert_eq!(c.timeout, Duration::from_millis(200));
        assert_eq!(
            c.headers,
            [("b".into(), "2".into()), ("c".into(), "x,y".into())]
        );
    }

    #[test]
    fn bad_values_warn_and_keep_defaults() {
        let (c, w) = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ]);
        assert_eq!(c, OtlpConfig::default());
        let vars: Vec<&str> = w.iter().map(|w| w.variable).collect();
        assert_eq!(
            vars,
            [
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_EXPORTER_OTLP_COMPRESSION"
            ]
        );
        assert_eq!(w[3].value, "10s");
    }

    #[test]
    fn timeouts_are_clamped_and_zero_or_negative_is_the_default() {
        for (raw, expected, warned) in [
            ("1", Duration::from_millis(1), false),
            ("+2500", Duration::from_millis(2500), false),
            ("600000", OtlpConfig::MAX_TIMEOUT, false),
            ("0", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("000", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("-5", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("-0", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("1.5", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("+", OtlpConfig::DEFAULT_TIMEOUT, true),
            ("600001", OtlpConfig::MAX_TIMEOUT, true),
            ("18446744073709551615", OtlpConfig::MAX_TIMEOUT, true),
            (
                "99999999999999999999999999999",
                OtlpConfig::MAX_TIMEOUT,
                true,
            ),
        ] {
            let (c, w) = config(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", raw)]);
            assert_eq!(c.timeout, expected, "{raw}");
            assert_eq!(w.len(), usize::from(warned), "{raw}: {w:?}");
            if warned {
                assert_eq!(w[0].variable, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
            }
        }
        assert_eq!(
            OtlpConfig::effective_timeout(Duration::ZERO),
            OtlpConfig::DEFAULT_TIMEOUT
        );
        assert_eq!(
            OtlpConfig::effective_timeout(Duration::MAX),
            OtlpConfig::MAX_TIMEOUT
        );
    }

    #[test]
    fn bad_endpoints_warn_with_a_bounded_value() {
        let long = format!("http://{}", "a".repeat(10 * 1024));
        let garbage = "\u{0}\u{7f}%%%::::////".repeat(500);
        for (variable, raw) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "file:///etc/passwd"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", long.as_str()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", garbage.as_str()),
        ] {
            let (c, w) = config(&[(variable, raw)]);
            assert_eq!(c.endpoint, "http://localhost:4318/v1/traces", "{raw:.40}");
            assert_eq!(w.len(), 1);
            assert_eq!(w[0].variable, variable);
            assert!(w[0].value.len() < 200, "{}", w[0].value.len());
        }
        let (_, w) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:hunter2@c")]);
        assert!(!w[0].to_string().contains("hunter2"), "{}", w[0]);
    }

    #[test]
    fn header_warnings_never_show_a_value() {
        let cases = [
            // A value that is not a valid header value: the key is named.
            ("api-key=top%0Asecret", "api-key"),
            // Bad percent-encoding of the value.
            ("api-key=secret%zz", "api-key"),
            // No `=`: the whole pair may be the secret.
            ("Authorization: Bearer secret", ""),
            ("ok=1,Authorization: Bearer secret=x", ""),
            ("=secret", ""),
        ];
        for (raw, key) in cases {
            let (c, w) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", raw)]);
            assert!(c.headers.is_empty());
            assert_eq!(w.len(), 1, "{raw}");
            assert_eq!(w[0].variable, "OTEL_EXPORTER_OTLP_HEADERS");
            assert_eq!(w[0].value, key);
            let shown = format!("{} {:?}", w[0], w[0]);
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn headers_are_bounded() {
        let many: Vec<String> = (0..=OtlpConfig::MAX_HEADERS)
            .map(|i| format!("k{i}=v"))
            .collect();
        let (c, w) = config(&[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", &many.join(","))]);
        assert!(c.headers.is_empty());
        assert_eq!(w[0].variable, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
        let (c, w) = config(&[(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            &many[..OtlpConfig::MAX_HEADERS].join(","),
        )]);
        assert!(w.is_empty());
        assert_eq!(c.headers.len(), OtlpConfig::MAX_HEADERS);
        let huge = format!("api-key={}", "s".repeat(OtlpConfig::MAX_HEADERS_BYTES));
        let (c, w) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", &huge)]);
        assert!(c.headers.is_empty());
        assert_eq!(w[0].value, "");
        assert!(!w[0].to_string().contains("sss"));
    }

    #[test]
    fn unknown_protocol_and_compression_warn_with_a_bounded_value() {
        let long = "x".repeat(10_000);
        let (c, w) = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &long),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli"),
        ]);
        assert_eq!(
            (c.protocol, c.compression),
            (Protocol::HttpProtobuf, Compression::None)
        );
        assert_eq!(w[0].variable, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert!(w[0].value.len() < 200);
        assert_eq!(w[1].variable, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
        assert_eq!(w[1].value, "brotli");
        // Cut on a character boundary.
        assert!(shown(&"é".repeat(100)).starts_with("éé"));
    }

    #[test]
    fn debug_hides_header_values_and_credentials() {
        let mut c = OtlpConfig::new(Protocol::HttpProtobuf, "https://u:hunter2@c:4318/v1/traces");
        c.headers = vec![("api-key".into(), "s3cr3t".into())];
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("api-key"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            redact_endpoint("http://a:b@h:1/p@q"),
            "http://REDACTED@h:1/p@q"
        );
        assert_eq!(redact_endpoint("http://h/p@q"), "http://h/p@q");
    }

    #[test]
    fn backoff_never_overflows() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
        };
        assert!(p.backoff(u32::MAX) <= OtlpConfig::MAX_TIMEOUT);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let late = p.backoff(10);
            assert!(late >= Duration::from_millis(2500) && late <= Duration::from_secs(5));
        }
    }
}
