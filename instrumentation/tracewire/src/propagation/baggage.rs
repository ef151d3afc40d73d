//! W3C Baggage: the `baggage` header.

use super::Propagator;
use super::carrier::{Extractor, Injector};
use crate::Context;
use crate::baggage::BaggageReader;

const BAGGAGE: &str = "baggage";

/// Propagates W3C Baggage: application key/value pairs that travel with
/// the trace (`baggage: user=alice,tenant=acme`).
///
/// Values are percent-decoded on extraction and percent-encoded on
/// injection; spaces around keys and values are not part of them; several
/// header lines are read as one list. Extraction reads as
/// [`Baggage::from_header`](crate::Baggage::from_header) does: it looks at
/// no more than the first 8192 bytes and 64 members of all `baggage` lines
/// together, drops a member cut by that limit whole, and skips invalid
/// members. Injection sends at most 64 members and 8192 bytes, leaving out
/// whole members.
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
        let mut reader = BaggageReader::default();
        extractor.for_each_value(BAGGAGE, &mut |line| reader.read_line(line));
        let baggage = reader.finish();
        if baggage.is_empty() {
            cx
        } else {
            cx.with_baggage(baggage)
        }
    }

    fn fields(&self) -> &[&'static str] {
        &[BAGGAGE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Baggage;

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
    fn malformed_members_are_skipped() {
        assert!(extract(&["no-equals-sign"]).baggage().is_empty());
        assert!(extract(&["bad key=1"]).baggage().is_empty());
        let cx = extract(&["a=1,bad key=1", "novalue, b=2"]);
        assert_eq!(cx.baggage().header(), "a=1,b=2");
    }

    #[test]
    fn extraction_reads_64_members_of_all_lines() {
        let line = |from: usize| {
            (from..from + 40)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (first, second) = (line(0), line(40));
        let cx = extract(&[&first, &second]);
        assert_eq!(cx.baggage().len(), 64);
        assert_eq!(cx.baggage().get("k63"), Some("v"));
        assert_eq!(cx.baggage().get("k64"), None);

        let huge = (0..45_000)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(extract(&[&huge, &huge]).baggage().len(), 64);
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map_lines_that_are_not_utf8_lose_their_members_only() {
        let mut headers = http::HeaderMap::new();
        headers.append("baggage", "a=1".parse().unwrap());
        headers.append(
            "baggage",
            http::HeaderValue::from_bytes(b"k=\xff,\xe9=1").unwrap(),
        );
        headers.append("baggage", "b=2".parse().unwrap());
        let cx = BaggagePropagator::new().extract(&headers);
        assert_eq!(cx.baggage().header(), "a=1,b=2");
    }

    #[test]
    fn injection_respects_64_members_and_8192_bytes() {
        let mut many = Baggage::new();
        for i in 0..100 {
            many = many.insert(&format!("k{i}"), "v").unwrap();
        }
        let mut out = Vec::<(String, String)>::new();
        BaggagePropagator::new().inject(&Context::new().with_baggage(many), &mut out);
        assert_eq!(out[0].1.split(',').count(), 64);

        let big = "é".repeat(1000); // 6000 bytes encoded
        let large = Baggage::new()
            .insert("a", &big)
            .unwrap()
            .insert("b", &big)
            .unwrap()
            .insert("c", "small")
            .unwrap();
        let mut out = Vec::<(String, String)>::new();
        BaggagePropagator::new().inject(&Context::new().with_baggage(large), &mut out);
        assert!(out[0].1.len() <= 8192);
        let back = BaggagePropagator::new().extract(&out);
        assert_eq!(back.baggage().get("a"), Some(big.as_str()));
        assert_eq!(back.baggage().get("b"), None, "left out whole");
        assert_eq!(back.baggage().get("c"), Some("small"));
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
