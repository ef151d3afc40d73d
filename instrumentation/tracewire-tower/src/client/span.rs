//! The CLIENT span of an outgoing request, and its context written into the
//! request's headers.

use http::Request;
use tracewire::http::{ClientRequest, DisablePropagation, inject_context, record_request_headers};
use tracing::Span;

use crate::TARGET;
use crate::layer::Common;

/// Creates the CLIENT span of an outgoing request (a child of the current
/// span) and writes its context into the request's headers, unless the
/// request carries [`DisablePropagation`].
pub(super) fn start_span<B>(common: &Common, request: &mut Request<B>) -> Span {
    let span = tracewire::http_client_span!(
        target: TARGET,
        ClientRequest::new(request).with_legacy_attributes(common.legacy),
    );
    if !DisablePropagation::is_set(request.extensions()) {
        inject_context(&span, &*common.propagator(), request.headers_mut());
    }
    record_request_headers(&span, &common.request_headers, request.headers());
    span
}
