//! The SERVER span of a request: its parent from the caller's context, its
//! name and its attributes.

use std::fmt;
use std::net::SocketAddr;

use http::Request;
use tracewire::http::{RedactedQuery, method_attributes, protocol_version, record_request_headers};
use tracewire::{SpanExt as _, with_remote_parent_recording};
use tracing::Span;
use tracing::field::{Empty, display};

use crate::hooks::{LazyName, SpanName};
use crate::layer::{Server, TrustBoundary};
use crate::protocol::Protocol;
use crate::semconv::{forwarded_client, forwarded_proto, server_host, single_header};
use crate::{HttpRoute, TARGET};

/// The route template of a request: axum's `MatchedPath`, else an
/// [`HttpRoute`] extension.
fn route_of<B>(request: &Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    request
        .extensions()
        .get::<HttpRoute>()
        .map(HttpRoute::as_str)
}

/// The peer of the connection, when the server put it in the extensions.
fn peer_of<B>(request: &Request<B>) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0);
    }
    request.extensions().get::<SocketAddr>().copied()
}

impl<F, N, Req, Res, P: Protocol> Server<F, N, Req, Res, P> {
    /// Creates the SERVER span of `request` under the context it carries
    /// (the protocol names it and gives its attributes), and tells whether
    /// it is recorded.
    pub(super) fn make_span<B>(&self, request: &Request<B>) -> (Span, bool)
    where
        N: SpanName<B>,
    {
        if !tracing::span_enabled!(target: TARGET, tracing::Level::INFO) {
            return (Span::none(), false);
        }
        let extracted = self.common.propagator().extract(request.headers());
        let (cx, link) = match self.trust {
            TrustBoundary::Trust => (extracted, None),
            TrustBoundary::IgnoreSampledFlag => match extracted.span_context() {
                Some(_) => (extracted.with_resampling(), None),
                // A bare sampling decision (B3's `b3: 0`) is ignored too.
                None => (
                    tracewire::Context::new().with_baggage(extracted.baggage().clone()),
                    None,
                ),
            },
            TrustBoundary::Restart => {
                (tracewire::Context::new(), extracted.span_context().cloned())
            }
        };
        let (span, recording) = P::server_span(self, request, &cx);
        if recording && let Some(link) = link {
            span.add_link(&link);
        }
        (span, recording)
    }
}

impl<F, N, Req, Res, P> Server<F, N, Req, Res, P> {
    /// The HTTP SERVER span of `request` under `cx`, and whether it is
    /// recorded.
    pub(crate) fn http_span<B>(&self, request: &Request<B>, cx: &tracewire::Context) -> (Span, bool)
    where
        N: SpanName<B>,
    {
        let headers = request.headers();
        let uri = request.uri();
        let scheme = uri
            .scheme_str()
            .or_else(|| self.forwarded.then(|| forwarded_proto(headers)).flatten())
            .or(self.scheme.as_deref())
            .unwrap_or("http");
        let (method, method_original) = method_attributes(request.method());
        let route = route_of(request);
        let host = server_host(uri, headers, scheme);
        let peer = peer_of(request);
        let forwarded = if self.forwarded {
            forwarded_client(headers)
        } else {
            None
        };
        let client_address = match (forwarded, peer) {
            (Some(f), _) => Some(display(ClientAddress::Forwarded(f))),
            (None, Some(p)) => Some(display(ClientAddress::Peer(p))),
            (None, None) => None,
        };
        let name = LazyName {
            hook: &self.name,
            request,
            route,
        };

        let (span, recording) = with_remote_parent_recording(cx, || {
            tracing::info_span!(
                target: TARGET,
                "HTTP request",
                otel.name = %name,
                otel.kind = "server",
                otel.status_code = Empty,
                otel.status_message = Empty,
                http.request.method = method,
                http.request.method_original = method_original,
                http.route = route,
                url.path = uri.path(),
                url.query = uri.query().map(|q| display(RedactedQuery(q))),
                url.scheme = scheme,
                server.address = host.map(|(h, _)| h),
                server.port = host.and_then(|(_, p)| p),
                client.address = client_address,
                network.peer.address = peer.map(|p| display(p.ip())),
                network.peer.port = peer.map(|p| p.port()),
                user_agent.original = single_header(headers, &http::header::USER_AGENT),
                network.protocol.version = protocol_version(request.version()),
                http.response.status_code = Empty,
                error.type = Empty,
                http.method = Empty,
                http.target = Empty,
                net.host.name = Empty,
                http.status_code = Empty,
            )
        });
        // An unsampled span records nothing: skip what only feeds attributes.
        if recording {
            if self.common.legacy {
                span.record("http.method", request.method().as_str());
                let target = match uri.query() {
                    Some(q) => format!("{}?{}", uri.path(), RedactedQuery(q)),
                    None => uri.path().to_owned(),
                };
                span.record("http.target", target);
                span.record("net.host.name", host.map(|(h, _)| h));
            }
            record_request_headers(&span, &self.common.request_headers, headers);
        }
        (span, recording)
    }
}

/// `client.address`: the forwarded client, or the peer's IP.
enum ClientAddress<'a> {
    Forwarded(&'a str),
    Peer(SocketAddr),
}

impl fmt::Display for ClientAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddress::Forwarded(a) => f.write_str(a),
            ClientAddress::Peer(p) => p.ip().fmt(f),
        }
    }
}
