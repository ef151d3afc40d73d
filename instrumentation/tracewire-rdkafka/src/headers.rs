//! Kafka message headers as propagation carriers.

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracewire::Context;
use tracewire::propagation::{Extractor, Propagator};

/// Reads trace headers from any rdkafka [`Headers`] (a received message's
/// `BorrowedHeaders`, or `OwnedHeaders`). Names compare case-insensitively;
/// a header without a value counts as absent.
///
/// ```
/// use rdkafka::message::{Header, OwnedHeaders};
/// use tracewire::propagation::{Propagator, TraceContextPropagator};
/// use tracewire_rdkafka::HeaderExtractor;
///
/// let headers = OwnedHeaders::new().insert(Header {
///     key: "traceparent",
///     value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
/// });
/// let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
/// assert!(cx.span_context().is_some());
/// ```
#[derive(Debug)]
pub struct HeaderExtractor<'a, H: Headers>(pub &'a H);

impl<H: Headers> Extractor for HeaderExtractor<'_, H> {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        (0..self.0.count())
            .filter_map(|i| self.0.try_get(i))
            .find(|h| h.key.eq_ignore_ascii_case(key))
            .and_then(|h| h.value)
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        for header in (0..self.0.count()).filter_map(|i| self.0.try_get(i)) {
            if header.key.eq_ignore_ascii_case(key) {
                n += 1;
                f(header.value.unwrap_or_default());
            }
        }
        n
    }
}

/// The headers of an outgoing record: the user's `headers` without any
/// earlier value of the propagator's fields, then the fields for `cx`.
///
/// ```
/// use rdkafka::message::{Header, Headers, OwnedHeaders};
/// use tracewire::propagation::TraceContextPropagator;
/// use tracewire::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
///
/// let user = OwnedHeaders::new()
///     .insert(Header { key: "tenant", value: Some("acme") })
///     .insert(Header { key: "traceparent", value: Some("stale") });
/// let cx = Context::from_span_context(SpanContext::new(
///     TraceId::from_u128(1), SpanId::from_u64(2), TraceFlags::SAMPLED, false, TraceState::new(),
/// ));
/// let out = tracewire_rdkafka::inject_headers(&TraceContextPropagator::new(), &cx, Some(user));
/// assert_eq!(out.count(), 2);
/// assert_eq!(out.get(0).key, "tenant");
/// assert_eq!(out.get(1).value, Some(&b"00-00000000000000000000000000000001-0000000000000002-01"[..]));
/// ```
pub fn inject_headers(
    propagator: &dyn Propagator,
    cx: &Context,
    headers: Option<OwnedHeaders>,
) -> OwnedHeaders {
    let fields = propagator.fields();
    let mut injected: Vec<(String, Vec<u8>)> = Vec::with_capacity(fields.len());
    propagator.inject(cx, &mut injected);
    let Some(headers) = headers else {
        return to_owned_headers(Vec::new(), &injected);
    };
    let kept: Vec<Header<'_, &[u8]>> = (0..headers.count())
        .filter_map(|i| headers.try_get(i))
        .filter(|h| !fields.iter().any(|f| h.key.eq_ignore_ascii_case(f)))
        .collect();
    if kept.len() == headers.count() && injected.is_empty() {
        return headers;
    }
    to_owned_headers(kept, &injected)
}

fn to_owned_headers(kept: Vec<Header<'_, &[u8]>>, injected: &[(String, Vec<u8>)]) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(kept.len() + injected.len());
    for header in kept {
        out = out.insert(header);
    }
    for (key, value) in injected {
        out = out.insert(Header {
            key: key.as_str(),
            value: Some(value.as_slice()),
        });
    }
    out
}

/// Extracts the context a message carries; no headers is no context.
pub(crate) fn extract(propagator: &dyn Propagator, headers: Option<&impl Headers>) -> Context {
    match headers {
        Some(headers) => propagator.extract(&HeaderExtractor(headers)),
        None => Context::new(),
    }
}
