//! `traceparent`: accepted exactly when W3C Trace Context says so.

use proptest::prelude::*;
use tracewire::propagation::{Propagator, TraceContextPropagator, parse_traceparent};
use tracewire::{SpanContext, TraceState};

use crate::{any_bytes, config, is_lower_hex, ows, trim_ows};

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The W3C rules, written plainly: the trace id, parent id and known flags
/// of a valid value.
fn reference(value: &[u8]) -> Option<(String, String, u8)> {
    let v = trim_ows(value);
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let (version, trace, parent, flags) = (&v[..2], &v[3..35], &v[36..52], &v[53..55]);
    let well_ended = if version == b"00" {
        v.len() == 55
    } else {
        v.len() == 55 || v[55] == b'-'
    };
    let valid = is_lower_hex(version)
        && version != b"ff"
        && well_ended
        && is_lower_hex(trace)
        && trace.iter().any(|&c| c != b'0')
        && is_lower_hex(parent)
        && parent.iter().any(|&c| c != b'0')
        && is_lower_hex(flags);
    if !valid {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("hex is ASCII");
    let flags = u8::from_str_radix(&text(flags), 16).expect("hex");
    Some((text(trace), text(parent), flags & 0x03))
}

/// Values near the valid form: right shape, wrong details.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let hex = |n: usize| format!("(0{{{n}}}|[0-9a-f]{{{n}}}|[0-9a-fA-F]{{{n}}}|[0-9a-g]{{{n}}})");
    let pattern = format!(
        "[ \t]{{0,2}}(00|01|cc|fe|ff|0F|[0-9a-z]{{2}})[-_]{}-{}-({}|[0-9a-f]{{1,3}})(-[ -~]{{0,8}}|[ -~]{{0,3}})[ \t]{{0,2}}",
        hex(32),
        hex(16),
        hex(2)
    );
    proptest::string::string_regex(&pattern)
        .expect("a valid pattern")
        .prop_map(String::into_bytes)
}

/// A valid value with one byte changed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (0usize..55, any::<u8>()).prop_map(|(pos, byte)| {
        let mut value = VALID.as_bytes().to_vec();
        value[pos] = byte;
        value
    })
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![any_bytes(80), near_valid(), mutated()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accepted_exactly_when_w3c_valid(value in inputs()) {
        let parsed = parse_traceparent(&value)
            .map(|(t, s, f)| (t.to_string(), s.to_string(), f.bits()));
        prop_assert_eq!(parsed, reference(&value), "{:?}", String::from_utf8_lossy(&value));
    }

    #[test]
    fn accepted_values_round_trip_as_version_00(value in inputs(), pad in ows()) {
        if let Some((trace_id, span_id, flags)) = parse_traceparent(&value) {
            let cx = SpanContext::new(trace_id, span_id, flags, true, TraceState::new());
            let sent = tracewire::propagation::format_traceparent(&cx);
            prop_assert_eq!(&sent[..3], b"00-");
            let mut padded = pad.into_bytes();
            padded.extend_from_slice(&sent);
            prop_assert_eq!(parse_traceparent(&padded), Some((trace_id, span_id, flags)));
        }
    }

    #[test]
    fn extraction_needs_exactly_one_valid_line(
        lines in proptest::collection::vec(inputs(), 0..4),
        tracestate in any_bytes(40),
    ) {
        let mut headers: Vec<(String, Vec<u8>)> =
            lines.iter().map(|v| ("traceparent".to_owned(), v.clone())).collect();
        headers.push(("tracestate".to_owned(), tracestate));
        let cx = TraceContextPropagator::new().extract(&headers);
        let expected = match lines.as_slice() {
            [only] => reference(only),
            _ => None,
        };
        let got = cx.span_context().map(|s| {
            prop_assert!(s.is_remote() && s.is_valid());
            prop_assert!(s.trace_state().len() <= 32);
            Ok((s.trace_id().to_string(), s.span_id().to_string(), s.flags().bits()))
        });
        prop_assert_eq!(got.transpose()?, expected);
    }
}

#[test]
fn oversized_values_are_read_by_their_first_fields_only() {
    let tail = "-x".repeat(200_000);
    assert_eq!(parse_traceparent(format!("{VALID}{tail}").as_bytes()), None);
    let future = format!("cc{}{tail}", &VALID[2..]);
    assert!(parse_traceparent(future.as_bytes()).is_some());
    assert_eq!(reference(future.as_bytes()).map(|r| r.2), Some(1));
}
