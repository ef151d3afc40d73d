//! The CLIENT span of an outgoing request, and its context written into the
//! request's headers.

use http::Request;
use tracewire::http::{ClientOptions, ClientRequest};
use tracing::Span;

use crate::TARGET;

/// Creates the CLIENT span of an outgoing request (a child of the current
/// span) and writes its context into the request's headers, unless
/// propagation is off or the request carries
/// [`DisablePropagation`](tracewire::http::DisablePropagation).
pub(crate) fn http_span<B>(options: &ClientOptions, request: &mut Request<B>) -> Span {
    let span = tracewire::http_client_span!(
        target: TARGET,
        ClientRequest::new(request).with_legacy_attributes(options.records_legacy_attributes()),
    );
    if options.propagates(request.extensions()) {
        options.inject_context(&span, request.headers_mut());
    }
    options.record_request_headers(&span, request.headers());
    span
}
