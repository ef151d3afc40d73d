//! Every propagator at once over an `http::HeaderMap` of arbitrary values.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tracewire::propagation::{CompositePropagator, Propagator};

use crate::{Seeded, config};

const NAMES: [&str; 8] = [
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Valid values, to exercise injection and the round trip too.
const VALID: [&str; 8] = [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    "user=alice,tier=gold;ttl=60",
    "a3ce929d0e0e4736-00f067aa0ba902b7-1",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7",
    "1",
    "1",
];

/// Bytes of every kind: printable ASCII, obs-text (not UTF-8), controls,
/// and the separators the formats use.
const BYTES: &[u8] =
    b" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\t\r\n\0\x01\x7f\x80\xc3\xa9\xff,,==--";

/// The value of header `name`: valid, valid with one byte changed,
/// oversized, or arbitrary bytes.
fn value(name: usize, kind: u8, seed: u64) -> Vec<u8> {
    let mut g = Seeded(seed);
    let mut bytes = |min, max| -> Vec<u8> {
        let len = g.between(min, max);
        (0..len)
            .map(|_| BYTES[g.between(0, BYTES.len() - 1)])
            .collect()
    };
    match kind % 6 {
        0 | 1 => VALID[name].as_bytes().to_vec(),
        2 => {
            let mut value = VALID[name].as_bytes().to_vec();
            let junk = bytes(1, 1)[0];
            let at = usize::try_from(seed % 64).expect("small") % value.len();
            value[at] = junk;
            value
        }
        // Past the 8192 bytes of the baggage bound.
        3 => VALID[name]
            .repeat(9000 / VALID[name].len() + 1)
            .into_bytes(),
        _ => bytes(0, 100),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn header_maps_of_arbitrary_values_never_panic(
        headers in proptest::collection::vec((0..NAMES.len(), any::<u8>(), any::<u64>()), 0..12),
    ) {
        let mut map = HeaderMap::new();
        for (name, kind, seed) in headers {
            let value = value(name, kind, seed);
            // `HeaderValue` refuses control characters but tab; what it
            // admits (obs-text included) reaches the parsers as bytes.
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(NAMES[name], value);
            }
        }
        let (all, errors) =
            CompositePropagator::from_otel_propagators(Some("b3,b3multi,tracecontext,baggage"));
        prop_assert!(errors.is_empty());
        let cx = all.extract(&map);
        prop_assert!(cx.baggage().len() <= 64);
        if let Some(span) = cx.span_context() {
            prop_assert!(span.is_valid() && span.is_remote());
            prop_assert!(span.trace_state().len() <= 32);
        }
        let mut out = HeaderMap::new();
        all.inject(&cx, &mut out);
        let back = all.extract(&out);
        prop_assert_eq!(back.span_context().map(|s| s.trace_id()), cx.span_context().map(|s| s.trace_id()));
        prop_assert_eq!(back.baggage(), cx.baggage());
    }
}
