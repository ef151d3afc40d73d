//! Kafka message headers as propagation carriers.

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracewire::Context;
use tracewire::propagation::{Extractor, Injector, Propagator};

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
    let is_field = |key: &str| fields.iter().any(|f| key.eq_ignore_ascii_case(f));
    // The fields are written straight into the outgoing headers: into the
    // user's own when none of them is a trace header (the usual case), else
    // into a copy without the stale ones.
    let headers = match headers {
        None => OwnedHeaders::new_with_capacity(fields.len()),
        Some(headers) => {
            let stale = (0..headers.count())
                .filter_map(|i| headers.try_get(i))
                .any(|h| is_field(h.key));
            if stale {
                copy_headers(&headers, fields.len(), |_, h| !is_field(h.key))
            } else {
                headers
            }
        }
    };
    let kept = headers.count();
    let mut injector = HeaderInjector {
        headers: Some(headers),
        kept,
    };
    propagator.inject(cx, &mut injector);
    injector.headers.unwrap_or_default()
}

/// A copy of the headers `keep` accepts (given their index), with room for
/// `extra` more.
fn copy_headers(
    headers: &OwnedHeaders,
    extra: usize,
    keep: impl Fn(usize, &Header<'_, &[u8]>) -> bool,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(headers.count() + extra);
    for (i, header) in (0..headers.count()).filter_map(|i| Some((i, headers.try_get(i)?))) {
        if keep(i, &header) {
            out = out.insert(header);
        }
    }
    out
}

/// Writes a propagator's fields at the end of outgoing headers whose first
/// `kept` entries are the user's.
struct HeaderInjector {
    /// Always `Some` between calls (`OwnedHeaders::insert` takes it by value).
    headers: Option<OwnedHeaders>,
    kept: usize,
}

impl Injector for HeaderInjector {
    fn set_value(&mut self, key: &'static str, value: &str) {
        let Some(mut headers) = self.headers.take() else {
            return;
        };
        // A field written twice keeps only its last value, at the end.
        let repeated = (self.kept..headers.count())
            .filter_map(|i| headers.try_get(i))
            .any(|h| h.key.eq_ignore_ascii_case(key));
        if repeated {
            let kept = self.kept;
            headers = copy_headers(&headers, 1, |i, h| {
                i < kept || !h.key.eq_ignore_ascii_case(key)
            });
        }
        self.headers = Some(headers.insert(Header {
            key,
            value: Some(value),
        }));
    }
}

/// Extracts the context a message carries; no headers is no context.
pub(crate) fn extract(propagator: &dyn Propagator, headers: Option<&impl Headers>) -> Context {
    let Some(headers) = headers else {
        return Context::new();
    };
    // Each `try_get` of a received message's headers is a call into
    // librdkafka, and a propagator looks up each of its fields: read the
    // headers once when there are few.
    match HeaderSnapshot::read(headers) {
        Some(snapshot) => propagator.extract(&snapshot),
        None => propagator.extract(&HeaderExtractor(headers)),
    }
}

/// The headers of a message with at most [`HeaderSnapshot::MAX`] of them,
/// read once; looked up as [`HeaderExtractor`] does.
struct HeaderSnapshot<'a> {
    headers: [(&'a str, Option<&'a [u8]>); HeaderSnapshot::MAX],
    len: usize,
}

impl<'a> HeaderSnapshot<'a> {
    const MAX: usize = 8;

    fn read(headers: &'a impl Headers) -> Option<Self> {
        let count = headers.count();
        if count > Self::MAX {
            return None;
        }
        let mut snapshot = HeaderSnapshot {
            headers: [("", None); Self::MAX],
            len: 0,
        };
        for header in (0..count).filter_map(|i| headers.try_get(i)) {
            snapshot.headers[snapshot.len] = (header.key, header.value);
            snapshot.len += 1;
        }
        Some(snapshot)
    }

    fn named(&self, key: &str) -> impl Iterator<Item = Option<&'a [u8]>> {
        self.headers[..self.len]
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|&(_, v)| v)
    }
}

impl Extractor for HeaderSnapshot<'_> {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        self.named(key).next().flatten()
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        for value in self.named(key) {
            n += 1;
            f(value.unwrap_or_default());
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracewire::propagation::{CompositePropagator, TraceContextPropagator};
    use tracewire::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn pairs(headers: &impl Headers) -> Vec<(String, Option<Vec<u8>>)> {
        (0..headers.count())
            .filter_map(|i| headers.try_get(i))
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    }

    fn cx() -> Context {
        Context::from_span_context(SpanContext::new(
            TraceId::from_u128(1),
            SpanId::from_u64(2),
            TraceFlags::SAMPLED,
            false,
            TraceState::new(),
        ))
    }

    const TRACEPARENT: &str = "00-00000000000000000000000000000001-0000000000000002-01";

    #[test]
    fn user_headers_without_trace_headers_are_kept_in_order() {
        let user = OwnedHeaders::new()
            .insert(Header {
                key: "tenant",
                value: Some("acme"),
            })
            .insert(Header::<&str> {
                key: "empty",
                value: None,
            });
        let out = inject_headers(&TraceContextPropagator::new(), &cx(), Some(user));
        assert_eq!(
            pairs(&out),
            [
                ("tenant".to_owned(), Some(b"acme".to_vec())),
                ("empty".to_owned(), None),
                (
                    "traceparent".to_owned(),
                    Some(TRACEPARENT.as_bytes().to_vec())
                ),
            ]
        );
    }

    #[test]
    fn a_field_written_twice_keeps_its_last_value_only() {
        let twice = CompositePropagator::new(vec![
            Arc::new(TraceContextPropagator::new()),
            Arc::new(TraceContextPropagator::new()),
        ]);
        let user = OwnedHeaders::new().insert(Header {
            key: "tenant",
            value: Some("acme"),
        });
        let out = inject_headers(&twice, &cx(), Some(user));
        assert_eq!(
            pairs(&out),
            [
                ("tenant".to_owned(), Some(b"acme".to_vec())),
                (
                    "traceparent".to_owned(),
                    Some(TRACEPARENT.as_bytes().to_vec())
                ),
            ]
        );
        let out = inject_headers(&twice, &Context::new(), None);
        assert_eq!(out.count(), 0);
    }

    #[test]
    fn the_snapshot_reads_as_the_extractor_does() {
        let headers = OwnedHeaders::new()
            .insert(Header::<&str> {
                key: "B3",
                value: None,
            })
            .insert(Header {
                key: "TraceState",
                value: Some("a=1"),
            })
            .insert(Header {
                key: "b3",
                value: Some("x"),
            })
            .insert(Header {
                key: "tracestate",
                value: Some("b=2"),
            });
        let snapshot = HeaderSnapshot::read(&headers).expect("few headers");
        let extractor = HeaderExtractor(&headers);
        for key in ["b3", "tracestate", "traceparent"] {
            assert_eq!(snapshot.get_value(key), extractor.get_value(key), "{key}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert_eq!(
                snapshot.for_each_value(key, &mut |v| a.push(v.to_vec())),
                extractor.for_each_value(key, &mut |v| b.push(v.to_vec())),
            );
            assert_eq!(a, b, "{key}");
        }
        let many = (0..=HeaderSnapshot::MAX).fold(OwnedHeaders::new(), |h, _| {
            h.insert(Header {
                key: "k",
                value: Some("v"),
            })
        });
        assert!(HeaderSnapshot::read(&many).is_none());
    }
}
