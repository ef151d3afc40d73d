//! Zipkin B3 propagation, single (`b3`) and multiple (`X-B3-*`) headers.

use super::Propagator;
use super::carrier::{Extractor, Injector};
use crate::id::decode_lower_hex;
use crate::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";
const PARENT_SPAN_ID: &str = "x-b3-parentspanid";

/// Which B3 headers [`B3Propagator`] writes. Both forms are always read:
/// a valid single header wins, an invalid one falls back to the multiple
/// headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum B3Encoding {
    /// `b3: {trace}-{span}-{sampled}` (the default).
    #[default]
    SingleHeader,
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`.
    MultipleHeader,
    /// Both forms.
    SingleAndMultipleHeader,
}

/// Propagates Zipkin B3 context.
///
/// 64-bit trace ids are left-padded with zeros; a debug flag (`d`,
/// `X-B3-Flags: 1`) counts as sampled; a lone `b3: 0` means "do not sample"
/// and becomes a [sampling hint](Context::sampling_hint) for a new trace.
/// The parent span id is never propagated.
///
/// Extraction reads the single `b3` header first; when it is absent or
/// invalid, the `X-B3-*` headers. Parsing is bounded: a `b3` value longer
/// than its longest valid form (68 characters after trimming) is invalid
/// unread, ids are checked by length before their digits, and only the
/// first line of each header is read.
///
/// ```
/// use std::collections::HashMap;
/// use tracewire::propagation::{B3Propagator, Propagator};
///
/// let incoming = HashMap::from([("b3".to_owned(), "a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned())]);
/// let cx = B3Propagator::new().extract(&incoming);
/// let span = cx.span_context().unwrap();
/// assert_eq!(span.trace_id().to_string(), "0000000000000000a3ce929d0e0e4736");
/// assert!(span.is_sampled());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct B3Propagator {
    encoding: B3Encoding,
}

impl B3Propagator {
    /// A B3 propagator writing the single `b3` header.
    pub const fn new() -> Self {
        Self::with_encoding(B3Encoding::SingleHeader)
    }

    /// A B3 propagator writing the given headers.
    pub const fn with_encoding(encoding: B3Encoding) -> Self {
        B3Propagator { encoding }
    }

    /// The headers this propagator writes.
    pub const fn encoding(&self) -> B3Encoding {
        self.encoding
    }
}

/// What a B3 carrier said.
enum B3State {
    Context(SpanContext),
    /// Only a sampling decision.
    Decision(bool),
}

fn parse_trace_id(hex: &[u8]) -> Option<TraceId> {
    let mut bytes = [0u8; 16];
    let ok = match hex.len() {
        32 => decode_lower_hex(hex, &mut bytes),
        16 => decode_lower_hex(hex, &mut bytes[8..]),
        _ => false,
    };
    let id = TraceId::from_bytes(bytes);
    (ok && id.is_valid()).then_some(id)
}

fn parse_span_id(hex: &[u8]) -> Option<SpanId> {
    let mut bytes = [0u8; 8];
    let ok = decode_lower_hex(hex, &mut bytes);
    let id = SpanId::from_bytes(bytes);
    (ok && id.is_valid()).then_some(id)
}

/// `1`/`d` (and the legacy `true`) sample, `0` (and `false`) does not.
fn parse_sampled(value: &[u8]) -> Option<bool> {
    match value {
        b"1" | b"d" | b"true" => Some(true),
        b"0" | b"false" => Some(false),
        _ => None,
    }
}

fn remote(trace_id: TraceId, span_id: SpanId, sampled: bool) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::NONE.with_sampled(sampled),
        true,
        TraceState::new(),
    )
}

/// `{trace 32}-{span 16}-{sampled 1}-{parent 16}`.
const MAX_SINGLE_LEN: usize = 32 + 1 + 16 + 1 + 1 + 1 + 16;

fn parse_single(value: &[u8]) -> Option<B3State> {
    let value = value.trim_ascii();
    if value.len() > MAX_SINGLE_LEN {
        return None;
    }
    let mut parts = value.split(|&b| b == b'-');
    let first = parts.next()?;
    let Some(span) = parts.next() else {
        return parse_sampled(first).map(B3State::Decision);
    };
    let trace_id = parse_trace_id(first)?;
    let span_id = parse_span_id(span)?;
    let sampled = match parts.next() {
        Some(flag) => parse_sampled(flag)?,
        None => false,
    };
    if let Some(parent) = parts.next() {
        parse_span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(B3State::Context(remote(trace_id, span_id, sampled)))
}

fn parse_multi(extractor: &dyn Extractor) -> Option<B3State> {
    let debug = extractor.get_value(FLAGS).map(<[u8]>::trim_ascii) == Some(b"1");
    let sampled = match extractor.get_value(SAMPLED) {
        Some(v) => Some(parse_sampled(v.trim_ascii())?),
        None => None,
    };
    let sampled = sampled.unwrap_or(false) || debug;
    let Some(trace_id) = extractor.get_value(TRACE_ID) else {
        let said = extractor.get_value(SAMPLED).is_some() || debug;
        return said.then_some(B3State::Decision(sampled));
    };
    let trace_id = parse_trace_id(trace_id.trim_ascii())?;
    let span_id = parse_span_id(extractor.get_value(SPAN_ID)?.trim_ascii())?;
    Some(B3State::Context(remote(trace_id, span_id, sampled)))
}

impl Propagator for B3Propagator {
    fn inject(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(span) = cx.span_context().filter(|s| s.is_valid()) else {
            return;
        };
        let sampled = if span.is_sampled() { "1" } else { "0" };
        let (trace_id, span_id) = (span.trace_id().to_hex(), span.span_id().to_hex());
        if self.encoding != B3Encoding::MultipleHeader {
            let mut value = [0u8; 32 + 1 + 16 + 2];
            value[..32].copy_from_slice(trace_id.as_str().as_bytes());
            value[32] = b'-';
            value[33..49].copy_from_slice(span_id.as_str().as_bytes());
            value[49] = b'-';
            value[50] = sampled.as_bytes()[0];
            if let Ok(value) = std::str::from_utf8(&value) {
                injector.set_value(B3, value);
            }
        }
        if self.encoding != B3Encoding::SingleHeader {
            injector.set_value(TRACE_ID, trace_id.as_str());
            injector.set_value(SPAN_ID, span_id.as_str());
            injector.set_value(SAMPLED, sampled);
        }
    }

    fn extract_into(&self, extractor: &dyn Extractor, cx: Context) -> Context {
        let state = extractor
            .get_value(B3)
            .and_then(parse_single)
            .or_else(|| parse_multi(extractor));
        match state {
            Some(B3State::Context(span)) => cx.with_span_context(span),
            Some(B3State::Decision(sampled)) if cx.span_context().is_none() => {
                cx.with_sampling_hint(sampled)
            }
            _ => cx,
        }
    }

    fn fields(&self) -> &[&'static str] {
        match self.encoding {
            B3Encoding::SingleHeader => &[B3],
            B3Encoding::MultipleHeader => &[TRACE_ID, SPAN_ID, SAMPLED, FLAGS, PARENT_SPAN_ID],
            B3Encoding::SingleAndMultipleHeader => {
                &[B3, TRACE_ID, SPAN_ID, SAMPLED, FLAGS, PARENT_SPAN_ID]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn extract(list: &[(&str, &str)]) -> Context {
        let headers: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        B3Propagator::new().extract(&headers)
    }

    #[test]
    fn single_header_forms() {
        let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}-1-0000000000000001"))]);
        let span = cx.span_context().unwrap();
        assert_eq!(
            (span.trace_id().to_string(), span.span_id().to_string()),
            (TRACE.into(), SPAN.into())
        );
        assert!(span.is_sampled() && span.is_remote());

        let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}-d"))]);
        assert!(cx.span_context().unwrap().is_sampled(), "debug samples");

        let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}-0"))]);
        assert!(!cx.span_context().unwrap().is_sampled());

        let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}"))]);
        assert!(cx.span_context().is_some(), "deferred decision");
    }

    #[test]
    fn lone_deny_is_a_sampling_hint() {
        let cx = extract(&[("b3", "0")]);
        assert!(cx.span_context().is_none());
        assert_eq!(cx.sampling_hint(), Some(false));
    }

    #[test]
    fn invalid_single_headers_yield_nothing() {
        for bad in [
            "",
            "x",
            &format!("{TRACE}-{SPAN}-2"),
            &format!("{}-{SPAN}-1", TRACE.to_uppercase()),
            &format!("{TRACE}-0000000000000000-1"),
            &format!("00000000000000000000000000000000-{SPAN}-1"),
            &format!("{TRACE}-{SPAN}-1-{SPAN}-extra"),
            &format!("abc-{SPAN}-1"),
        ] {
            let cx = extract(&[("b3", bad)]);
            assert!(
                cx.span_context().is_none() && cx.sampling_hint().is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn invalid_single_header_falls_back_to_multi_headers() {
        let other = "11111111111111111111111111111111";
        let huge = format!("{TRACE}-{SPAN}-1-{}", "0".repeat(400_000));
        for bad in ["", "garbage", &format!("{TRACE}-{SPAN}-x"), &huge] {
            let cx = extract(&[
                ("b3", bad),
                ("X-B3-TraceId", other),
                ("X-B3-SpanId", SPAN),
                ("X-B3-Sampled", "1"),
            ]);
            let span = cx.span_context().expect("multi headers read");
            assert_eq!(span.trace_id().to_string(), other, "{bad:?}");
            assert!(span.is_sampled());
        }
        let cx = extract(&[("b3", "garbage"), ("X-B3-Sampled", "0")]);
        assert_eq!(cx.sampling_hint(), Some(false), "a multi-header decision");
    }

    #[test]
    fn oversized_and_repeated_values_are_bounded() {
        let longest = format!("{TRACE}-{SPAN}-1-{SPAN}");
        assert_eq!(longest.len(), MAX_SINGLE_LEN);
        assert!(extract(&[("b3", &longest)]).span_context().is_some());
        let padded = format!("  {longest}\t");
        assert!(extract(&[("b3", &padded)]).span_context().is_some());
        let huge = "-".repeat(400_000);
        assert!(extract(&[("b3", &huge)]).span_context().is_none());
        let huge_id = "a".repeat(400_000);
        let cx = extract(&[("X-B3-TraceId", &huge_id), ("X-B3-SpanId", &huge_id)]);
        assert!(cx.span_context().is_none());
        // Only the first line of each header is read.
        let single = format!("{TRACE}-{SPAN}-1");
        let cx = extract(&[("b3", single.as_str()), ("b3", "garbage")]);
        assert!(cx.span_context().is_some());
    }

    #[test]
    fn multi_headers_and_padding() {
        let cx = extract(&[
            ("X-B3-TraceId", "a3ce929d0e0e4736"),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "1"),
        ]);
        let span = cx.span_context().unwrap();
        assert_eq!(
            span.trace_id().to_string(),
            "0000000000000000a3ce929d0e0e4736"
        );
        assert!(span.is_sampled());

        let cx = extract(&[
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Flags", "1"),
        ]);
        assert!(
            cx.span_context().unwrap().is_sampled(),
            "debug flag samples"
        );

        let cx = extract(&[("X-B3-TraceId", TRACE)]);
        assert!(cx.span_context().is_none(), "span id required");
    }

    #[test]
    fn single_header_wins_over_multi() {
        let other = "11111111111111111111111111111111";
        let cx = extract(&[
            ("b3", &format!("{TRACE}-{SPAN}-1")),
            ("x-b3-traceid", other),
            ("x-b3-spanid", SPAN),
        ]);
        assert_eq!(cx.span_context().unwrap().trace_id().to_string(), TRACE);
    }

    #[test]
    fn injection_never_sends_a_parent_id() {
        let cx = Context::from_span_context(remote(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            true,
        ));
        let mut out = Vec::<(String, String)>::new();
        B3Propagator::with_encoding(B3Encoding::SingleAndMultipleHeader).inject(&cx, &mut out);
        assert_eq!(
            out,
            vec![
                ("b3".into(), format!("{TRACE}-{SPAN}-1")),
                ("x-b3-traceid".into(), TRACE.into()),
                ("x-b3-spanid".into(), SPAN.into()),
                ("x-b3-sampled".into(), "1".into()),
            ]
        );
    }
}
