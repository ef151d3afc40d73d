//! Kafka message headers as propagation carriers.
//!
//! # Reading headers without panicking
//!
//! rdkafka (0.39, the newest release, and its main branch) turns a header
//! name into `&str` with `CStr::to_str().unwrap()` in `Headers::try_get`,
//! and every public way to read a header goes through it (`get`, `get_as`,
//! `try_get_as`, `iter`); there is no lookup by name and no accessor for
//! the raw name. A message whose header name is not UTF-8 would make every
//! read panic, and since the message is never committed, the consumer would
//! crash again on it after each restart. Without `unsafe` (librdkafka's own
//! `rd_kafka_header_get_all` is only reachable through rdkafka-sys), the only
//! way around it is to contain that panic: [`header_at`] calls `try_get`
//! under [`std::panic::catch_unwind`] and treats such a header as
//! unreadable. The panic hook still runs for it (the default hook prints a
//! line on stderr), so at most [`MAX_UNREADABLE`] of them are read per
//! message. In a program built with `panic = "abort"` nothing can be caught
//! and such a message still aborts the process. When rdkafka offers a
//! non-panicking accessor, `header_at` should call it instead.
//!
//! # Bounded work
//!
//! A message's headers are read once, in one pass, keeping those named
//! after one of the propagator's fields; every line of a field is handed to
//! the propagator, in order, and counted (two `traceparent` lines are
//! invalid). How much of a value is looked at is the propagators' business:
//! tracewire's read at most 8192 bytes and 64 members of `baggage` and
//! 32 KiB of `tracestate`, and reject an oversized `traceparent` or `b3` by
//! its length.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracewire::Context;
use tracewire::propagation::{Extractor, Injector, Propagator};

/// Most header names that are not UTF-8 one read of a message goes
/// through; the headers after them are not read.
const MAX_UNREADABLE: usize = 8;

/// The header at `index`, `Err` when its name is not UTF-8 (see the module
/// docs for why this catches a panic), `Ok(None)` past the end.
fn header_at<H: Headers>(headers: &H, index: usize) -> Result<Option<Header<'_, &[u8]>>, ()> {
    // `try_get` only reads the headers: a panic inside it leaves nothing of
    // ours, or of rdkafka's, half-updated.
    catch_unwind(AssertUnwindSafe(|| headers.try_get(index))).map_err(drop)
}

/// Calls `each` with the index and the header, in order, for every header
/// whose name is UTF-8, until `each` breaks. Stops after
/// [`MAX_UNREADABLE`] headers whose name is not.
fn for_each_header<'h, H: Headers>(
    headers: &'h H,
    mut each: impl FnMut(usize, Header<'h, &'h [u8]>) -> ControlFlow<()>,
) {
    let mut unreadable = 0;
    for index in 0..headers.count() {
        match header_at(headers, index) {
            Ok(Some(header)) => {
                if each(index, header).is_break() {
                    return;
                }
            }
            Ok(None) => return,
            Err(()) => {
                unreadable += 1;
                if unreadable == MAX_UNREADABLE {
                    return;
                }
            }
        }
    }
}

/// Reads trace headers from any rdkafka [`Headers`] (a received message's
/// `BorrowedHeaders`, or `OwnedHeaders`). Names compare case-insensitively;
/// a header without a value counts as absent.
///
/// Unlike rdkafka's own accessors, it never panics: a header whose name is
/// not UTF-8 is skipped (after eight of them, the rest of the headers are
/// not read).
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
        first_value(self.0, key)
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        each_value(self.0, key, f)
    }
}

/// The first value of `key` in `headers`.
fn first_value<'h, H: Headers>(headers: &'h H, key: &str) -> Option<&'h [u8]> {
    let mut found = None;
    for_each_header(headers, |_, header| {
        if header.key.eq_ignore_ascii_case(key) {
            found = Some(header.value);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found.flatten()
}

/// Calls `f` with every value of `key` in `headers` and returns how many
/// there were.
fn each_value<H: Headers>(headers: &H, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
    let mut n = 0;
    for_each_header(headers, |_, header| {
        if header.key.eq_ignore_ascii_case(key) {
            n += 1;
            f(header.value.unwrap_or_default());
        }
        ControlFlow::Continue(())
    });
    n
}

/// The headers of an outgoing record: the user's `headers` without any
/// earlier value of the propagator's fields, then the fields for `cx`.
///
/// A user header whose name is not UTF-8 (from a consumed message's
/// headers, say) is kept when the user's headers hold no trace header, and
/// left out when they must be copied without the stale ones.
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
            let mut stale = false;
            for_each_header(&headers, |_, h| {
                stale = is_field(h.key);
                if stale {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
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
/// `extra` more. Headers whose name is not UTF-8 cannot be copied.
fn copy_headers(
    headers: &OwnedHeaders,
    extra: usize,
    keep: impl Fn(usize, &Header<'_, &[u8]>) -> bool,
) -> OwnedHeaders {
    let mut out = Some(OwnedHeaders::new_with_capacity(headers.count() + extra));
    for_each_header(headers, |i, header| {
        if keep(i, &header) {
            out = out.take().map(|out| out.insert(header));
        }
        ControlFlow::Continue(())
    });
    out.unwrap_or_default()
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
        let kept = self.kept;
        let mut repeated = false;
        for_each_header(&headers, |i, h| {
            repeated = i >= kept && h.key.eq_ignore_ascii_case(key);
            if repeated {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if repeated {
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
    // Each read of a received message's header is a call into librdkafka
    // (and a `catch_unwind`), and a propagator looks up each of its fields:
    // read the headers once, keeping the trace headers.
    propagator.extract(&TraceHeaders::read(headers, propagator.fields()))
}

/// How many trace headers [`TraceHeaders`] holds without allocating.
const INLINE: usize = 8;

/// A header's name and value.
type Entry<'a> = (&'a str, Option<&'a [u8]>);

/// The headers of a message named after one of a propagator's `fields`,
/// read once; looked up as [`HeaderExtractor`] does (other names are looked
/// up in the message's headers).
struct TraceHeaders<'a, H: Headers> {
    headers: &'a H,
    fields: &'a [&'static str],
    inline: [Entry<'a>; INLINE],
    len: usize,
    more: Vec<Entry<'a>>,
}

impl<'a, H: Headers> TraceHeaders<'a, H> {
    fn read(headers: &'a H, fields: &'a [&'static str]) -> Self {
        let mut found = TraceHeaders {
            headers,
            fields,
            inline: [("", None); INLINE],
            len: 0,
            more: Vec::new(),
        };
        for_each_header(headers, |_, header| {
            if found.is_field(header.key) {
                if found.len < INLINE {
                    found.inline[found.len] = (header.key, header.value);
                    found.len += 1;
                } else {
                    found.more.push((header.key, header.value));
                }
            }
            ControlFlow::Continue(())
        });
        found
    }

    fn is_field(&self, key: &str) -> bool {
        self.fields.iter().any(|f| key.eq_ignore_ascii_case(f))
    }

    fn named(&self, key: &str) -> impl Iterator<Item = Option<&'a [u8]>> {
        self.inline[..self.len]
            .iter()
            .chain(&self.more)
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|&(_, v)| v)
    }
}

impl<H: Headers> Extractor for TraceHeaders<'_, H> {
    fn get_value(&self, key: &str) -> Option<&[u8]> {
        if !self.is_field(key) {
            return first_value(self.headers, key);
        }
        self.named(key).next().flatten()
    }

    fn for_each_value(&self, key: &str, f: &mut dyn FnMut(&[u8])) -> usize {
        if !self.is_field(key) {
            return each_value(self.headers, key, f);
        }
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
    fn the_trace_headers_read_as_the_extractor_does() {
        let mut headers = OwnedHeaders::new()
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
        // More trace headers than are held inline.
        for i in 0..INLINE {
            headers = headers.insert(Header {
                key: "tracestate",
                value: Some(&format!("k{i}=v")),
            });
        }
        let fields = ["b3", "tracestate", "traceparent"];
        let snapshot = TraceHeaders::read(&headers, &fields);
        assert_eq!(snapshot.more.len(), 4);
        let extractor = HeaderExtractor(&headers);
        for key in ["b3", "tracestate", "traceparent", "TRACESTATE", "other"] {
            assert_eq!(snapshot.get_value(key), extractor.get_value(key), "{key}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert_eq!(
                snapshot.for_each_value(key, &mut |v| a.push(v.to_vec())),
                extractor.for_each_value(key, &mut |v| b.push(v.to_vec())),
            );
            assert_eq!(a, b, "{key}");
        }
    }

    #[test]
    fn repeated_trace_headers_all_count() {
        let headers = (0..100).fold(OwnedHeaders::new(), |h, _| {
            h.insert(Header {
                key: "traceparent",
                value: Some(TRACEPARENT),
            })
        });
        let fields = ["traceparent"];
        assert_eq!(
            TraceHeaders::read(&headers, &fields).count("traceparent"),
            100
        );
        assert!(
            TraceContextPropagator::new()
                .extract(&TraceHeaders::read(&headers, &fields))
                .span_context()
                .is_none(),
            "repeated traceparent is invalid"
        );
    }
}
