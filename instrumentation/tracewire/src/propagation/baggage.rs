//! W3C Baggage: the `baggage` header.

use super::Propagator;
use super::carrier::{Extractor, Injector, joined_value};
use crate::{Baggage, Context};

const BAGGAGE: &str = "baggage";

/// Propagates W3C Baggage: application key/value pairs that travel with
/// the trace (`baggage: user=alice,tenant=acme`).
///
/// Values are percent-decoded on extraction and percent-encoded on
/// injection; spaces around keys and values are not part of them; several
/// header lines are joined. A malformed header is ignored. Injection sends
/// at most 64 members and 8192 bytes, leaving out whole members.
///
/// ```
/// use std::collections::HashMap;
/// use tracewire::propagation::{BaggagePropagator, Propagator};
///
/// let incoming = HashMap::from([("baggage".to_owned(), "user = alice%20b , tier=gold;ttl=60".to_owned())]);
/// let cx = BaggagePropagator::new().extract(&incoming);
/// assert_eq!(cx.baggage().get("user"), Some("alice b"));
///
/// let mut outgoing = HashMap::new();
/// BaggagePropagator::new().inject(&cx, &mut outgoing);
/// assert_eq!(outgoing["baggage"], "user=alice%20b,tier=gold;ttl=60");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BaggagePropagator {
    _private: (),
}

impl BaggagePropagator {
    /// The W3C Baggage propagator.
    pub const fn new() -> Self {
        BaggagePropagator { _private: () }
    }
}

impl Propagator for BaggagePropagator {
    fn inject(&self, cx: &Context, injector: &mut dyn Injector) {
        if cx.baggage().is_empty() {
            return;
        }
        let header = cx.baggage().header();
        if !header.is_empty() {
            injector.set_value(BAGGAGE, &header);
        }
    }

    fn extract_into(&self, extractor: &dyn Extractor, cx: Context) -> Context {
        match joined_value(extractor, BAGGAGE).map(|v| Baggage::from_header(&v)) {
            Some(Ok(baggage)) if !baggage.is_empty() => cx.with_baggage(baggage),
            _ => cx,
        }
    }

    fn fields(&self) -> &[&'static str] {
        &[BAGGAGE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(lines: &[&str]) -> Context {
        let headers: Vec<(String, String)> = lines
            .iter()
            .map(|v| ("baggage".to_owned(), (*v).to_owned()))
            .collect();
        BaggagePropagator::new().extract(&headers)
    }

    #[test]
    fn lines_are_joined() {
        let cx = extract(&["a=1", "b=2"]);
        assert_eq!(cx.baggage().get("a"), Some("1"));
        assert_eq!(cx.baggage().get("b"), Some("2"));
    }

    #[test]
    fn malformed_header_is_ignored() {
        assert!(extract(&["no-equals-sign"]).baggage().is_empty());
        assert!(extract(&["bad key=1"]).baggage().is_empty());
    }

    #[test]
    fn special_characters_round_trip() {
        let baggage = Baggage::new().insert("k", "a,b;c=d %é").unwrap();
        let mut out = Vec::<(String, String)>::new();
        BaggagePropagator::new().inject(&Context::new().with_baggage(baggage), &mut out);
        assert!(!out[0].1.contains(' '));
        let back = BaggagePropagator::new().extract(&out);
        assert_eq!(back.baggage().get("k"), Some("a,b;c=d %é"));
    }

    #[test]
    fn empty_baggage_is_not_sent() {
        let mut out = Vec::<(String, String)>::new();
        BaggagePropagator::new().inject(&Context::new(), &mut out);
        assert!(out.is_empty());
    }
}
