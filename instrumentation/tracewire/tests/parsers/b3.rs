//! B3: single and multiple headers, the single one winning when valid.

use proptest::prelude::*;
use tracewire::Context;
use tracewire::propagation::{B3Propagator, Propagator};

use crate::{any_text, config, is_lower_hex};

/// A trace id, a span id and the sampled flag.
type Ids = (String, String, bool);

/// The B3 rules for the single header, written plainly: `None` when
/// invalid, else `Some(None)` for a lone sampling decision or the ids
/// (the trace id padded to 32 digits).
fn reference_single(value: &str) -> Option<Option<Ids>> {
    let value = value.trim_ascii();
    let sampled = |s: &str| match s {
        "1" | "d" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    };
    let id = |s: &str, lens: &[usize]| {
        (lens.contains(&s.len()) && is_lower_hex(s.as_bytes()) && s.bytes().any(|c| c != b'0'))
            .then(|| format!("{s:0>width$}", width = lens[0]))
    };
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        [decision] => sampled(decision).map(|_| None),
        [trace, span, rest @ ..] if rest.len() <= 2 => {
            let trace = id(trace, &[32, 16])?;
            let span = id(span, &[16])?;
            let flag = match rest.first() {
                Some(flag) => sampled(flag)?,
                None => false,
            };
            if let Some(parent) = rest.get(1) {
                id(parent, &[16])?;
            }
            Some(Some((trace, span, flag)))
        }
        _ => None,
    }
}

fn ids(cx: &Context) -> Option<Ids> {
    cx.span_context().map(|s| {
        (
            s.trace_id().to_string(),
            s.span_id().to_string(),
            s.is_sampled(),
        )
    })
}

/// Single values near the valid form.
fn single() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]?([0-9a-f]{16}|[0-9a-f]{32}|0{16}|[0-9a-fA-F]{32})-([0-9a-f]{16}|0{16}|[0-9a-f]{15})(-[01dx])?(-[0-9a-f]{16})?(-x)?[ \t]?",
        "[01d]|true|false|2",
        any_text(70),
    ]
}

const MULTI_TRACE: &str = "11111111111111111111111111111111";
const MULTI_SPAN: &str = "2222222222222222";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn single_header_as_specified_falling_back_to_multi(value in single(), with_multi in any::<bool>()) {
        let mut headers = vec![("b3".to_owned(), value.clone())];
        if with_multi {
            headers.push(("X-B3-TraceId".to_owned(), MULTI_TRACE.to_owned()));
            headers.push(("X-B3-SpanId".to_owned(), MULTI_SPAN.to_owned()));
            headers.push(("X-B3-Sampled".to_owned(), "1".to_owned()));
        }
        let cx = B3Propagator::new().extract(&headers);
        let multi = with_multi.then(|| (MULTI_TRACE.to_owned(), MULTI_SPAN.to_owned(), true));
        match reference_single(&value) {
            Some(Some(single)) => prop_assert_eq!(ids(&cx), Some(single)),
            Some(None) => {
                prop_assert_eq!(ids(&cx), None);
                prop_assert!(cx.sampling_hint().is_some());
            }
            None => prop_assert_eq!(ids(&cx), multi),
        }
    }

    #[test]
    fn arbitrary_multi_headers_never_panic(
        trace in any_text(40),
        span in any_text(20),
        sampled in any_text(4),
        flags in any_text(2),
    ) {
        let headers = vec![
            ("x-b3-traceid".to_owned(), trace.into_bytes()),
            ("x-b3-spanid".to_owned(), span.into_bytes()),
            ("x-b3-sampled".to_owned(), sampled.into_bytes()),
            ("x-b3-flags".to_owned(), flags.into_bytes()),
        ];
        let cx = B3Propagator::new().extract(&headers);
        if let Some(span) = cx.span_context() {
            prop_assert!(span.is_valid() && span.is_remote());
        }
    }
}
