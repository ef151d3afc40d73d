//! The OpenTelemetry RPC semantic conventions for gRPC (release
//! candidate): span names and attributes from the request path, and the
//! status from `grpc-status`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, Request};
use tracewire::error::record_error;
use tracewire::http::ClientOptions;
use tracewire::{SpanExt as _, with_remote_parent_recording};
use tracing::Span;
use tracing::field::Empty;

use crate::TARGET;
use crate::hooks::{LazyName, SpanName};
use crate::layer::Server;
use crate::protocol::Side;
use crate::semconv::server_host;

/// The gRPC-only options of a preset (server or client).
#[derive(Clone, Debug, Default)]
pub struct RpcOptions {
    /// Also record the older RPC attribute names (`rpc/dup`).
    pub(crate) legacy: bool,
    /// Request metadata keys recorded as `rpc.request.metadata.<key>`.
    pub(crate) request_metadata: Vec<HeaderName>,
    /// Response metadata keys recorded as `rpc.response.metadata.<key>`
    /// (shared with the response bodies that read the trailers).
    pub(crate) response_metadata: Arc<[HeaderName]>,
    /// Whether response streams add `rpc.message` events.
    pub(crate) message_events: bool,
}

impl RpcOptions {
    /// The defaults, with `legacy` from `OTEL_SEMCONV_STABILITY_OPT_IN`.
    pub(crate) fn from_env() -> Self {
        RpcOptions {
            legacy: rpc_dup_opt_in_from_env(),
            ..RpcOptions::default()
        }
    }
}

/// The allow-list of metadata keys `keys` keeps: binary keys (`-bin`
/// suffix, base64 of arbitrary bytes) are left out, since their values
/// are not text and are often credentials or serialized messages.
pub(crate) fn metadata_keys(keys: impl IntoIterator<Item = HeaderName>) -> Vec<HeaderName> {
    keys.into_iter()
        .filter(|key| !key.as_str().ends_with("-bin"))
        .collect()
}

/// The attribute prefix of captured request metadata.
pub(crate) const REQUEST_METADATA: &str = "rpc.request.metadata.";
/// The attribute prefix of captured response metadata.
pub(crate) const RESPONSE_METADATA: &str = "rpc.response.metadata.";

/// The response metadata recorded from the response headers (initial
/// metadata), kept until the trailers (trailing metadata) are merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailingMetadata {
    keys: Arc<[HeaderName]>,
    /// The header values of each key of `keys`, in the same order.
    from_headers: Vec<Vec<String>>,
}

/// Records the allow-listed response metadata of the response
/// `headers` on a recorded span; returns what the trailers must be merged
/// with (`None` without keys or when the span is not recorded).
pub(crate) fn record_response_metadata(
    span: &Span,
    keys: &Arc<[HeaderName]>,
    headers: &HeaderMap,
) -> Option<Box<TrailingMetadata>> {
    if keys.is_empty() || !span.is_recording() {
        return None;
    }
    let from_headers: Vec<Vec<String>> = keys
        .iter()
        .map(|key| tracewire::http::header_values(headers, key))
        .collect();
    for (key, values) in keys.iter().zip(&from_headers) {
        if !values.is_empty() {
            span.set_attribute(
                format!("{RESPONSE_METADATA}{}", key.as_str()),
                values.clone(),
            );
        }
    }
    Some(Box::new(TrailingMetadata {
        keys: keys.clone(),
        from_headers,
    }))
}

impl TrailingMetadata {
    /// Records the keys found in `trailers`: the header values first, then
    /// the trailer values, as one string array per key.
    pub(crate) fn record(self, span: &Span, trailers: &HeaderMap) {
        for (key, mut values) in self.keys.iter().zip(self.from_headers) {
            let from_headers = values.len();
            values.extend(tracewire::http::header_values(trailers, key));
            if values.len() > from_headers {
                span.set_attribute(format!("{RESPONSE_METADATA}{}", key.as_str()), values);
            }
        }
    }
}

/// The `OTEL_SEMCONV_STABILITY_OPT_IN` token asking for the older RPC
/// attribute names next to the stable ones.
const RPC_DUP: &str = "rpc/dup";

/// Whether the process's `OTEL_SEMCONV_STABILITY_OPT_IN` lists [`RPC_DUP`].
pub(crate) fn rpc_dup_opt_in_from_env() -> bool {
    tracewire::http::stability_opt_in_from_env(RPC_DUP)
}

/// The service and method of a gRPC path `/package.Service/Method`; `None`
/// for a path of another shape (its span is named `_OTHER`).
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let ok = !service.is_empty() && !method.is_empty() && !method.contains('/');
    ok.then_some((service, method))
}

/// The status names of codes 0 to 16, in order.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const UNKNOWN: u8 = 2;
const DEADLINE_EXCEEDED: u8 = 4;
const UNAVAILABLE: u8 = 14;

/// The code of a `grpc-status` value: a decimal number; anything else (or
/// a code above 16) is `UNKNOWN`, as the gRPC spec asks of clients.
fn parse_code(value: &[u8]) -> u8 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .filter(|&c| usize::from(c) < NAMES.len())
        .unwrap_or(UNKNOWN)
}

/// Whether `code` makes a span of `side` an error: every code but `OK` on
/// a client; `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
/// `UNAVAILABLE` and `DATA_LOSS` on a server.
fn is_error(code: u8, side: Side) -> bool {
    match side {
        Side::Client => code != 0,
        Side::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
    }
}

/// Records the status `code` (and its `grpc-message`, when an error).
fn record_code(span: &Span, code: u8, side: Side, legacy: bool, message: Option<&str>) {
    let name = NAMES[usize::from(code)];
    span.record("rpc.response.status_code", name);
    if legacy {
        span.record("rpc.grpc.status_code", i64::from(code));
    }
    if is_error(code, side) {
        record_error(span, name, message.as_ref().map(|m| m as &dyn fmt::Display));
    }
}

/// Records the status in `headers` (response headers of a trailers-only
/// response, or trailers) when there is one; tells whether there was.
pub(crate) fn record_status_from(
    span: &Span,
    headers: &HeaderMap,
    side: Side,
    legacy: bool,
) -> bool {
    let Some(status) = headers.get("grpc-status") else {
        return false;
    };
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .filter(|m| !m.is_empty());
    record_code(
        span,
        parse_code(status.as_bytes()),
        side,
        legacy,
        message.as_deref(),
    );
    true
}

/// `grpc-message` is percent-encoded UTF-8; a malformed escape is kept as
/// it is, invalid UTF-8 becomes U+FFFD.
fn percent_decode(value: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&byte, tail)) = rest.split_first() {
        if let [b'%', h, l, after @ ..] = rest
            && let Some((h, l)) = hex(*h).zip(hex(*l))
        {
            // Two hex digits: below 256.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            rest = after;
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The response ended without a `grpc-status`: `UNKNOWN` (an error) on a
/// client, as gRPC clients report it; nothing on a server, whose span
/// keeps an unset status (the server did not send a status at all, e.g.
/// the inner service is not gRPC).
pub(crate) fn missing_status(span: &Span, side: Side, legacy: bool) {
    if side == Side::Client {
        record_code(
            span,
            UNKNOWN,
            side,
            legacy,
            Some("no grpc-status in the response"),
        );
    }
}

/// An error of the inner client service (no response): `UNAVAILABLE`, with
/// the error as the status message.
pub(crate) fn transport_error<E: fmt::Display>(span: &Span, legacy: bool, error: &E) {
    let name = NAMES[usize::from(UNAVAILABLE)];
    span.record("rpc.response.status_code", name);
    if legacy {
        span.record("rpc.grpc.status_code", i64::from(UNAVAILABLE));
    }
    record_error(span, name, Some(error));
}

/// How early before its deadline a call may end and still count as past
/// it, at least: the server's timer (tonic's `grpc-timeout` enforcement)
/// starts before the layer sees the request, by more on a busy machine, so
/// the slack is also a tenth of the timeout ([`Deadline::passed`]).
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// The `grpc-timeout` of a call: when it started and how long it may take.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: Instant,
    timeout: Duration,
    side: Side,
    legacy: bool,
}

impl Deadline {
    /// The deadline of a call whose request has `headers` and starts now;
    /// `None` without a valid `grpc-timeout`.
    pub(crate) fn of(headers: &HeaderMap, side: Side, legacy: bool) -> Option<Deadline> {
        let timeout = parse_timeout(headers.get("grpc-timeout")?.as_bytes())?;
        Some(Deadline {
            start: Instant::now(),
            timeout,
            side,
            legacy,
        })
    }

    /// Whether the deadline has passed, within a slack of a tenth of the
    /// timeout (at least [`DEADLINE_SLACK`]): a call dropped that close to
    /// its deadline ended because of it.
    pub(crate) fn passed(&self) -> bool {
        let slack = (self.timeout / 10).max(DEADLINE_SLACK);
        self.start.elapsed() + slack >= self.timeout
    }

    /// Records `DEADLINE_EXCEEDED` (an error on both sides).
    pub(crate) fn record(&self, span: &Span) {
        record_code(
            span,
            DEADLINE_EXCEEDED,
            self.side,
            self.legacy,
            Some("deadline exceeded (grpc-timeout)"),
        );
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`), as the gRPC spec says; anything else is `None`.
fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A gRPC span of `kind` with every RPC attribute the layer may record:
/// those known at the start set, the others declared empty.
macro_rules! rpc_span {
    ($name:literal, $kind:literal, $otel_name:expr, $full:expr, $parts:expr, $uri:expr, $host:expr) => {
        tracing::info_span!(
            target: TARGET,
            $name,
            otel.name = $otel_name,
            otel.kind = $kind,
            otel.status_code = Empty,
            otel.status_message = Empty,
            rpc.system.name = "grpc",
            rpc.method = $full.unwrap_or("_OTHER"),
            rpc.method_original = $parts.is_none().then(|| $uri.path()),
            server.address = $host.map(|(h, _)| h),
            server.port = $host.and_then(|(_, p)| p),
            rpc.response.status_code = Empty,
            error.type = Empty,
            rpc.system = Empty,
            rpc.service = Empty,
            rpc.grpc.status_code = Empty,
        )
    };
}

/// Creates the SERVER span of a gRPC request under `parent`, and tells
/// whether it is recorded.
pub(crate) fn server_span<F, N, Req, Res, P, B>(
    server: &Server<F, N, Req, Res, P>,
    request: &Request<B>,
    parent: &tracewire::Context,
) -> (Span, bool)
where
    N: SpanName<B>,
{
    let uri = request.uri();
    let parts = split_path(uri.path());
    // `split_path` only accepts a path that starts with '/'.
    let full = parts.and(uri.path().get(1..));
    let scheme = uri
        .scheme_str()
        .or(server.scheme.as_deref())
        .unwrap_or("http");
    let host = server_host(uri, request.headers(), scheme);
    let name = LazyName {
        hook: &server.name,
        request,
        route: full,
    };
    let (span, recording) = with_remote_parent_recording(parent, || {
        rpc_span!(
            "gRPC request",
            "server",
            tracing::field::display(&name),
            full,
            parts,
            uri,
            host
        )
    });
    if recording {
        let rpc = &server.common.rpc;
        if rpc.legacy {
            record_legacy(&span, parts);
        }
        tracewire::http::record_headers(
            &span,
            REQUEST_METADATA,
            &rpc.request_metadata,
            request.headers(),
        );
    }
    (span, recording)
}

/// The `rpc/dup` names known at the start: `rpc.system`, `rpc.service`.
/// The older `rpc.method` (the method alone) would overwrite the stable,
/// fully qualified one of the same name, so the stable value is kept.
fn record_legacy(span: &Span, parts: Option<(&str, &str)>) {
    span.record("rpc.system", "grpc");
    if let Some((service, _)) = parts {
        span.record("rpc.service", service);
    }
}

/// Creates the CLIENT span of a gRPC request (a child of the current
/// span) and writes its context into the request's metadata, as the HTTP
/// client does (the current context when the span is filtered out).
pub(crate) fn client_span<B>(
    options: &ClientOptions,
    rpc: &RpcOptions,
    request: &mut Request<B>,
) -> Span {
    let uri = request.uri();
    let parts = split_path(uri.path());
    // `split_path` only accepts a path that starts with '/'.
    let full = parts.and(uri.path().get(1..));
    let host = tracewire::http::server_address(uri);
    let span = rpc_span!(
        "gRPC client request",
        "client",
        full.unwrap_or("_OTHER"),
        full,
        parts,
        uri,
        host
    );
    if rpc.legacy {
        record_legacy(&span, parts);
    }
    if options.propagates(request.extensions()) {
        options.inject_context(&span, request.headers_mut());
    }
    tracewire::http::record_headers(
        &span,
        REQUEST_METADATA,
        &rpc.request_metadata,
        request.headers(),
    );
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            split_path("/shop.Payments/Charge"),
            Some(("shop.Payments", "Charge"))
        );
        assert_eq!(split_path("/Charge"), None);
        assert_eq!(split_path("//Charge"), None);
        assert_eq!(split_path("/a/b/c"), None);
        assert_eq!(split_path("/a/"), None);
        assert_eq!(split_path("a/b"), None);
    }

    #[test]
    fn codes() {
        assert_eq!(parse_code(b"0"), 0);
        assert_eq!(parse_code(b"5"), 5);
        assert_eq!(parse_code(b"16"), 16);
        assert_eq!(parse_code(b"17"), UNKNOWN);
        assert_eq!(parse_code(b"x"), UNKNOWN);
        assert_eq!(NAMES[5], "NOT_FOUND");
        assert!(is_error(5, Side::Client) && !is_error(5, Side::Server));
        assert!(is_error(13, Side::Server) && !is_error(0, Side::Client));
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(
            parse_timeout(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse_timeout(b"30000000u"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout(b"123456789S"), None);
        assert_eq!(parse_timeout(b"m"), None);
        assert_eq!(parse_timeout(b"-1S"), None);
        assert_eq!(parse_timeout(b"10x"), None);
        assert_eq!(parse_timeout(b""), None);
    }

    #[test]
    fn messages() {
        assert_eq!(percent_decode(b"it%20went%20wrong"), "it went wrong");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz%e2%82%ac"), "%zz\u{20ac}");
    }

    #[test]
    fn opt_in() {
        assert!(tracewire::http::stability_opt_in(
            Some("http/dup, rpc/dup"),
            RPC_DUP
        ));
        assert!(tracewire::http::stability_opt_in(
            Some(" RPC/DUP "),
            RPC_DUP
        ));
        assert!(!tracewire::http::stability_opt_in(Some("rpc"), RPC_DUP));
        assert!(!tracewire::http::stability_opt_in(
            Some("http/dup"),
            RPC_DUP
        ));
        assert!(!tracewire::http::stability_opt_in(None, RPC_DUP));
    }
}
