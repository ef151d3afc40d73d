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
/// the receiver sends replaces the computed delay.
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
            .min(self.max_backoff);
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Transport and encoding.
    pub protocol: Protocol,
    /// The full URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// Extra request headers (gRPC metadata), such as an API key.
    pub headers: Vec<(String, String)>,
    /// The time one export may take, retries included.
    pub timeout: Duration,
    /// Payload compression.
    pub compression: Compression,
    /// Retries of failed exports.
    pub retry: RetryPolicy,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            protocol: Protocol::HttpProtobuf,
            endpoint: Protocol::HttpProtobuf.default_endpoint().to_owned(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
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

/// Parses `k=v,k2=v2` with percent-encoded values.
fn parse_headers(raw: &str) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        let key = crate::export::resource::percent_decode(key.trim())?;
        let value = crate::export::resource::percent_decode(value.trim())?;
        if key.is_empty()
            || http::HeaderName::from_bytes(key.as_bytes()).is_err()
            || http::HeaderValue::from_str(&value).is_err()
        {
            return None;
        }
        headers.push((key.to_ascii_lowercase(), value));
    }
    Some(headers)
}

impl OtlpConfig {
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
    /// variable's value), with a warning for each invalid value, which is
    /// replaced by its default. A `_TRACES_` variable wins over the generic
    /// one; the generic endpoint is a base URL that gets `/v1/traces`
    /// appended for HTTP, the trace-specific one is used as is.
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
                    value,
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
            if is_http_url(&endpoint) {
                config.endpoint = endpoint;
            } else {
                warnings.push(ConfigWarning {
                    variable: name,
                    value,
                    reason: "expected an absolute http:// or https:// URL",
                });
            }
        }
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ) {
            match parse_headers(&value) {
                Some(headers) => config.headers = headers,
                None => warnings.push(ConfigWarning {
                    variable: name,
                    value,
                    reason: "expected comma-separated key=value pairs (values percent-encoded)",
                }),
            }
        }
        if let Some((name, value)) = pick(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            match value.parse::<u64>() {
                Ok(ms) => config.timeout = Duration::from_millis(ms),
                Err(_) => warnings.push(ConfigWarning {
                    variable: name,
                    value,
                    reason: "expected a whole number of milliseconds",
                }),
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
                    value,
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
