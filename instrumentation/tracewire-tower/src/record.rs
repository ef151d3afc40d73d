//! Recording outcomes on a span: error status, panics, captured headers.

use std::any::Any;
use std::fmt;

use tracing::Span;

/// Sets status Error with `error.type`, and the error's message as the
/// status message when there is one.
pub(crate) fn error_status(span: &Span, error_type: &str, error: Option<&dyn fmt::Display>) {
    span.record("otel.status_code", "error");
    span.record("error.type", error_type);
    if let Some(error) = error {
        span.record("otel.status_message", tracing::field::display(error));
    }
}

/// Records a panic that unwound through the request's future or body: an
/// `exception` event with the panic message, status Error and
/// `error.type = panic`.
pub(crate) fn panic(span: &Span, payload: &(dyn Any + Send)) {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic with a non-string payload");
    tracing::error!(
        target: crate::server::TARGET,
        parent: span,
        error = message,
        "request handler panicked"
    );
    error_status(span, "panic", Some(&message));
}
