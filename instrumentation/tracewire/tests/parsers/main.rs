//! The parsers of external input as an attacker sees them: arbitrary,
//! oversized and repeated header values never panic, give bounded results,
//! and are accepted only when the standards say so (checked against small
//! reference predicates written here). Each property runs 10,000 cases.

mod b3;
mod baggage;
mod carriers;
mod traceparent;
mod tracestate;

use proptest::prelude::*;

/// Cases per property.
const CASES: u32 = 10_000;

/// The configuration of every property here.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

/// Arbitrary text, control characters and non-ASCII included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// Arbitrary bytes, not necessarily UTF-8.
fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Spaces and tabs.
fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

/// Cheap strings from one seed that proptest picks: generating long
/// values character by character makes 10,000 cases slow in debug builds.
struct Seeded(u64);

impl Seeded {
    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `min..=max`.
    fn between(&mut self, min: usize, max: usize) -> usize {
        let span = u64::try_from(max - min + 1).expect("a small range");
        min + usize::try_from(self.next() % span).expect("a small number")
    }

    /// One of `items`.
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.between(0, items.len() - 1)]
    }

    /// `min..=max` characters of `alphabet`.
    fn text(&mut self, alphabet: &str, min: usize, max: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        let len = self.between(min, max);
        (0..len)
            .map(|_| chars[self.between(0, chars.len() - 1)])
            .collect()
    }
}

/// Characters of every kind: printable ASCII, controls, non-ASCII.
const ANY_CHARS: &str = " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\t\r\n\0\u{1}\u{7f}é✓\u{feff}";

/// `value` without the spaces and tabs around it.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Whether every byte is a lowercase hex digit.
fn is_lower_hex(value: &[u8]) -> bool {
    value
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}
