//! W3C Trace Context: the `traceparent` and `tracestate` headers.

use super::Propagator;
use super::carrier::{Extractor, Injector};
use crate::baggage::trim_ows;
use crate::id::{decode_lower_hex, encode_hex};
use crate::trace_state::TraceStateReader;
use crate::{Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// The longest `tracestate` we send before removing whole members (W3C:
/// propagate at least 512 characters).
const TRACESTATE_SEND_LIMIT: usize = 512;

/// Propagates W3C Trace Context (`traceparent`, `tracestate`), Level 2.
///
/// Extraction follows every parsing rule of the recommendation: a header
/// with uppercase or non-hex digits, a wrong length, a zero id, version `ff`,
/// trailing data after a version-00 value, or a second `traceparent` header
/// yields no span context (the request starts a new trace); a higher version
/// is read by its first four fields. `tracestate` is read only next to a
/// valid `traceparent`, as [`TraceState::from_header`] reads it (all lines
/// as one list, at most 32 KiB, the first of duplicate keys kept), and a
/// bad one is dropped without affecting the `traceparent`. Injection always
/// writes version 00 with the unknown flag bits cleared.
///
/// ```
/// use std::collections::HashMap;
/// use tracewire::propagation::{Propagator, TraceContextPropagator};
///
/// let propagator = TraceContextPropagator::new();
/// let incoming = HashMap::from([
///     ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_owned()),
///     ("tracestate".to_owned(), "vendor=abc".to_owned()),
/// ]);
/// let cx = propagator.extract(&incoming);
/// let mut outgoing = HashMap::new();
/// propagator.inject(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
/// assert_eq!(outgoing["tracestate"], "vendor=abc");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextPropagator {
    _private: (),
}

impl TraceContextPropagator {
    /// The W3C Trace Context propagator.
    pub const fn new() -> Self {
        TraceContextPropagator { _private: () }
    }
}

/// Parses a `traceparent` value into its trace id, parent id and flags
/// (unknown flag bits cleared). `None` when the value is invalid. Spaces and
/// tabs around the value are ignored. Never allocates.
///
/// ```
/// use tracewire::propagation::parse_traceparent;
///
/// let (trace_id, span_id, flags) =
///     parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert_eq!(span_id.to_string(), "00f067aa0ba902b7");
/// assert!(flags.is_sampled());
/// assert!(parse_traceparent(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
/// // A future version may append fields.
/// assert!(parse_traceparent(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").is_some());
/// ```
pub fn parse_traceparent(value: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    let value = trim_ows(value);
    if value.len() < 55 {
        return None;
    }
    let mut version = [0u8; 1];
    if !decode_lower_hex(&value[0..2], &mut version) || version[0] == 0xff {
        return None;
    }
    let well_ended = match version[0] {
        0 => value.len() == 55,
        _ => value.len() == 55 || value[55] == b'-',
    };
    if !well_ended || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flags = [0u8; 1];
    let valid = decode_lower_hex(&value[3..35], &mut trace_id)
        && decode_lower_hex(&value[36..52], &mut span_id)
        && decode_lower_hex(&value[53..55], &mut flags);
    let (trace_id, span_id) = (TraceId::from_bytes(trace_id), SpanId::from_bytes(span_id));
    (valid && trace_id.is_valid() && span_id.is_valid())
        .then(|| (trace_id, span_id, TraceFlags::from_bits(flags[0]).known()))
}

/// Writes the version-00 `traceparent` of `cx` into a stack buffer (the
/// value is always 55 ASCII bytes; unknown flag bits are cleared).
///
/// ```
/// use tracewire::propagation::format_traceparent;
/// use tracewire::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
///
/// let cx = SpanContext::new(
///     TraceId::from_u128(1),
///     SpanId::from_u64(2),
///     TraceFlags::from_bits(0xff),
///     false,
///     TraceState::new(),
/// );
/// let header = format_traceparent(&cx);
/// assert_eq!(
///     std::str::from_utf8(&header).unwrap(),
///     "00-00000000000000000000000000000001-0000000000000002-03"
/// );
/// ```
pub fn format_traceparent(cx: &SpanContext) -> [u8; 55] {
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    encode_hex(&cx.trace_id().to_bytes(), &mut out[3..35]);
    encode_hex(&cx.span_id().to_bytes(), &mut out[36..52]);
    encode_hex(&[cx.flags().known().bits()], &mut out[53..55]);
    out
}

/// Reads `traceparent`: exactly one header line, valid.
fn extract_traceparent(extractor: &dyn Extractor) -> Option<(TraceId, SpanId, TraceFlags)> {
    let mut parsed = None;
    let lines = extractor.for_each_value(TRACEPARENT, &mut |v| parsed = parse_traceparent(v));
    if lines == 1 { parsed } else { None }
}

/// Reads `tracestate`: all lines as one list; empty when absent or invalid.
/// Bounded as [`TraceState::from_header`] is, across all lines.
fn extract_tracestate(extractor: &dyn Extractor) -> TraceState {
    let mut reader = TraceStateReader::default();
    extractor.for_each_value(TRACESTATE, &mut |line| reader.read_line(line));
    reader.finish().unwrap_or_default()
}

impl Propagator for TraceContextPropagator {
    fn inject(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(span) = cx.span_context().filter(|s| s.is_valid()) else {
            return;
        };
        let traceparent = format_traceparent(span);
        // The buffer holds ASCII hex and dashes only.
        if let Ok(value) = std::str::from_utf8(&traceparent) {
            injector.set_value(TRACEPARENT, value);
        }
        if !span.trace_state().is_empty() {
            let state = span.trace_state().header_within(TRACESTATE_SEND_LIMIT);
            if !state.is_empty() {
                injector.set_value(TRACESTATE, &state);
            }
        }
    }

    fn extract_into(&self, extractor: &dyn Extractor, cx: Context) -> Context {
        let Some((trace_id, span_id, flags)) = extract_traceparent(extractor) else {
            return cx;
        };
        let trace_state = extract_tracestate(extractor);
        cx.with_span_context(SpanContext::new(
            trace_id,
            span_id,
            flags,
            true,
            trace_state,
        ))
    }

    fn fields(&self) -> &[&'static str] {
        &[TRACEPARENT, TRACESTATE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn extract(list: &[(&str, &str)]) -> Context {
        TraceContextPropagator::new().extract(&headers(list))
    }

    #[test]
    fn valid_header_is_a_remote_context() {
        let cx = extract(&[("traceparent", VALID)]);
        let span = cx.span_context().expect("valid");
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span.is_sampled() && span.is_remote() && !span.flags().is_random());
    }

    #[test]
    fn invalid_values_are_ignored() {
        let bad = [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ];
        for value in bad {
            assert!(
                parse_traceparent(value.as_bytes()).is_none(),
                "{value:?} accepted"
            );
            assert!(extract(&[("traceparent", value)]).span_context().is_none());
        }
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert!(parse_traceparent(format!(" \t{VALID}\t ").as_bytes()).is_some());
    }

    #[test]
    fn future_versions_read_four_fields() {
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra-stuff";
        let (_, _, flags) = parse_traceparent(future.as_bytes()).expect("future version");
        assert_eq!(flags.bits(), 0x01, "unknown bit 0x08 cleared");
        let cx = extract(&[("traceparent", future)]);
        let mut out = Vec::<(String, String)>::new();
        TraceContextPropagator::new().inject(&cx, &mut out);
        assert_eq!(out[0].1, VALID, "sent onward as version 00");
    }

    #[test]
    fn two_traceparent_headers_are_invalid() {
        let cx = extract(&[("traceparent", VALID), ("traceparent", VALID)]);
        assert!(cx.span_context().is_none());
    }

    #[test]
    fn tracestate_lines_are_joined_in_order() {
        let cx = extract(&[
            ("traceparent", VALID),
            ("tracestate", "a=1, b=2"),
            ("tracestate", "c=3"),
        ]);
        let state = cx.span_context().unwrap().trace_state();
        assert_eq!(state.header(), "a=1,b=2,c=3");
    }

    #[test]
    fn bad_tracestate_keeps_traceparent() {
        for bad in ["UPPER=1", "a", "k=v,b=2 =x"] {
            let cx = extract(&[("traceparent", VALID), ("tracestate", bad)]);
            let span = cx.span_context().expect("traceparent survives");
            assert!(span.trace_state().is_empty(), "{bad:?} kept");
        }
        let cx = extract(&[
            ("traceparent", VALID),
            ("tracestate", "a=1"),
            ("tracestate", "B=2"),
        ]);
        assert!(cx.span_context().unwrap().trace_state().is_empty());
    }

    /// The official W3C test `test_tracestate_duplicated_keys` (strict,
    /// Level 2): the header is kept; we keep the first of duplicate keys.
    #[test]
    fn duplicated_tracestate_keys_keep_the_header() {
        for lines in [
            &[("tracestate", "foo=1,foo=1")][..],
            &[("tracestate", "foo=1,foo=2")],
            &[("tracestate", "foo=1"), ("tracestate", "foo=1")],
            &[("tracestate", "foo=1"), ("tracestate", "foo=2")],
        ] {
            let mut list = vec![("traceparent", VALID)];
            list.extend_from_slice(lines);
            let cx = extract(&list);
            let mut out = Vec::<(String, String)>::new();
            TraceContextPropagator::new().inject(&cx, &mut out);
            assert_eq!(
                out[1],
                ("tracestate".to_owned(), "foo=1".to_owned()),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn oversized_and_repeated_tracestate_is_dropped_keeping_traceparent() {
        let huge = format!("a=1{}", ",".repeat(400_000));
        for lines in [
            vec![("tracestate", huge.as_str())],
            vec![("tracestate", "a=1"); 40],
        ] {
            let mut list = vec![("traceparent", VALID)];
            list.extend(lines);
            let cx = extract(&list);
            let span = cx.span_context().expect("traceparent survives");
            assert!(span.trace_state().is_empty());
        }
    }

    #[test]
    fn oversized_traceparent_is_invalid() {
        let huge = format!("{VALID}{}", "-0".repeat(200_000));
        assert!(extract(&[("traceparent", &huge)]).span_context().is_none());
        let future = format!("cc{}", &huge[2..]);
        assert!(
            parse_traceparent(future.as_bytes()).is_some(),
            "read by its first four fields"
        );
        let spaces = format!("{VALID}{}", " ".repeat(400_000));
        assert!(
            parse_traceparent(spaces.as_bytes()).is_some(),
            "surrounding spaces are trimmed"
        );
    }

    #[test]
    fn tracestate_without_valid_traceparent_is_ignored() {
        let cx = extract(&[("traceparent", "garbage"), ("tracestate", "a=1")]);
        assert!(cx.span_context().is_none());
    }

    #[test]
    fn injection_is_lowercase_version_00_with_known_flags() {
        let cx = Context::from_span_context(SpanContext::new(
            TraceId::from_u128(0xabc),
            SpanId::from_u64(0xdef),
            TraceFlags::from_bits(0x7f),
            false,
            TraceState::from_key_values([("k", "v")]).unwrap(),
        ));
        let mut out = Vec::<(String, String)>::new();
        TraceContextPropagator::new().inject(&cx, &mut out);
        assert_eq!(
            out,
            vec![
                (
                    "traceparent".to_owned(),
                    "00-00000000000000000000000000000abc-0000000000000def-03".to_owned()
                ),
                ("tracestate".to_owned(), "k=v".to_owned()),
            ]
        );
    }

    #[test]
    fn nothing_is_injected_without_a_span_context() {
        let mut out = Vec::<(String, String)>::new();
        TraceContextPropagator::new().inject(&Context::new(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn long_tracestate_is_cut_by_whole_members() {
        let big = "v".repeat(200);
        let members: Vec<(String, String)> =
            (0..5).map(|i| (format!("k{i}"), big.clone())).collect();
        let state =
            TraceState::from_key_values(members.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap()
                .insert("small", "1")
                .unwrap();
        let cx = Context::from_span_context(SpanContext::new(
            TraceId::from_u128(1),
            SpanId::from_u64(1),
            TraceFlags::SAMPLED,
            false,
            state,
        ));
        let mut out = Vec::<(String, String)>::new();
        TraceContextPropagator::new().inject(&cx, &mut out);
        assert_eq!(out[1].1, "small=1");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_traceparent(&bytes);
        }

        #[test]
        fn round_trip(trace in 1u128.., span in 1u64.., flags in 0u8..4) {
            let cx = SpanContext::new(
                TraceId::from_u128(trace), SpanId::from_u64(span),
                TraceFlags::from_bits(flags), false, TraceState::new(),
            );
            let header = format_traceparent(&cx);
            let (t, s, f) = parse_traceparent(&header).unwrap();
            prop_assert_eq!((t, s, f), (cx.trace_id(), cx.span_id(), cx.flags()));
        }

        #[test]
        fn mutated_valid_header_never_panics(pos in 0usize..55, byte in any::<u8>()) {
            let mut header = VALID.as_bytes().to_vec();
            header[pos] = byte;
            if let Some((t, s, _)) = parse_traceparent(&header) {
                prop_assert!(t.is_valid() && s.is_valid());
            }
        }
    }
}
