//! Polling inside a request's span, and recording a panic on it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Poll;

use tracewire::error::record_error;
use tracing::Span;

/// Runs `poll` inside the span of `traced` (what a response future or body
/// keeps of its request; `span_of` finds the span in it) and, when it is
/// ready, `ready` with its output, still inside the span.
///
/// The one place a panic is caught: a panic in `poll` is recorded on the
/// span, `traced` is taken (which ends the span) and the panic unwinds on.
/// Without `traced`, `poll` simply runs.
pub(crate) fn poll_in_span<S, T>(
    traced: &mut Option<S>,
    span_of: fn(&S) -> &Span,
    poll: impl FnOnce() -> Poll<T>,
    ready: impl FnOnce(&S, &mut T),
) -> Poll<T> {
    let Some(state) = traced.as_ref() else {
        return poll();
    };
    let entered = span_of(state).enter();
    match catch_unwind(AssertUnwindSafe(poll)) {
        Ok(Poll::Ready(mut output)) => {
            ready(state, &mut output);
            drop(entered);
            Poll::Ready(output)
        }
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => {
            drop(entered);
            if let Some(state) = traced.take() {
                panic(span_of(&state), payload.as_ref());
            }
            resume_unwind(payload)
        }
    }
}

/// Records a panic that unwound through the request's future or body: an
/// `exception` event with the panic message, status Error and
/// `error.type = panic`.
fn panic(span: &Span, payload: &(dyn Any + Send)) {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic with a non-string payload");
    tracing::error!(
        target: crate::TARGET,
        parent: span,
        error = message,
        "request handler panicked"
    );
    record_error(span, "panic", Some(&message));
}
