//! Trace and span identifiers, their hex forms and their generation.

use std::fmt;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

/// Marks a byte that is not a lowercase hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0xff;

/// The value of each byte as a lowercase hex digit, or [`NOT_HEX`].
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes lowercase hex from `input` into `out` (`input` is twice as long).
/// Returns `false` on any character that is not a lowercase hex digit.
///
/// Table-driven and branch-free per digit: every digit is looked up, bad
/// ones are collected in one mask checked at the end (a valid digit is at
/// most 15, [`NOT_HEX`] has the high bits set).
#[inline]
pub(crate) fn decode_lower_hex(input: &[u8], out: &mut [u8]) -> bool {
    if input.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(input.chunks_exact(2)) {
        let hi = HEX_VALUE[usize::from(pair[0])];
        let lo = HEX_VALUE[usize::from(pair[1])];
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    bad & 0xf0 == 0
}

/// What trace and span ids share: an id of `$len` bytes (`$digits` hex
/// digits), also seen as the integer `$int` (big-endian byte order), whose
/// all-zero value is invalid.
macro_rules! w3c_id {
    ($name:ident, $what:literal, $len:literal, $digits:literal, $int:ident, $from_int:ident, $to_int:ident) => {
        impl $name {
            #[doc = concat!("The all-zero, invalid ", $what, ".")]
            pub const INVALID: $name = $name([0; $len]);

            #[doc = concat!("A ", $what, " from its ", $len, " bytes, most significant first.")]
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            #[doc = concat!("The ", $len, " bytes of this id, most significant first.")]
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            #[doc = concat!("A ", $what, " from a `", stringify!($int), "` (big-endian byte order).")]
            pub const fn $from_int(value: $int) -> Self {
                $name(value.to_be_bytes())
            }

            #[doc = concat!("This id as a `", stringify!($int), "` (big-endian byte order).")]
            pub const fn $to_int(self) -> $int {
                $int::from_be_bytes(self.0)
            }

            /// Whether this id is not all zeros.
            pub const fn is_valid(self) -> bool {
                self.$to_int() != 0
            }

            /// A new random, valid id: every bit comes from a fast
            /// thread-local generator (so the W3C "random" flag applies to
            /// a trace id made this way).
            pub fn random() -> Self {
                loop {
                    let v = fastrand::$int(..);
                    if v != 0 {
                        return Self::$from_int(v);
                    }
                }
            }

            #[doc = concat!("Parses ", $digits, " lowercase hex digits. Uppercase or any other")]
            /// character is an error, as W3C Trace Context requires. The
            /// all-zero id parses (check [`is_valid`](Self::is_valid)).
            pub fn from_hex(hex: &str) -> Option<Self> {
                let mut bytes = [0u8; $len];
                decode_lower_hex(hex.as_bytes(), &mut bytes).then_some($name(bytes))
            }

            #[doc = concat!("Writes the ", $digits, " lowercase hex digits of this id into a stack buffer.")]
            pub fn to_hex(self) -> HexBuf<$digits> {
                let mut out = [0u8; $digits];
                encode_hex(&self.0, &mut out);
                HexBuf(out)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.to_hex().as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

/// A 16-byte W3C trace id. The all-zero id is invalid and means "no trace".
///
/// ```
/// use tracewire::TraceId;
///
/// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(id.is_valid());
/// assert!(!TraceId::INVALID.is_valid());
/// assert_eq!(TraceId::from_u128(id.to_u128()), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId([u8; 16]);

w3c_id!(TraceId, "trace id", 16, 32, u128, from_u128, to_u128);

/// An 8-byte W3C span id (the `parent-id` of `traceparent`). The all-zero
/// id is invalid.
///
/// ```
/// use tracewire::SpanId;
///
/// let id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
/// assert_eq!(id.to_u64(), 0x00f0_67aa_0ba9_02b7);
/// assert_eq!(format!("{id:?}"), "SpanId(00f067aa0ba902b7)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId([u8; 8]);

w3c_id!(SpanId, "span id", 8, 16, u64, from_u64, to_u64);

/// Lowercase hex digits on the stack, returned by `to_hex` so that ids can be
/// written without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexBuf<const N: usize>([u8; N]);

impl<const N: usize> HexBuf<N> {
    pub(crate) const fn from_raw(digits: [u8; N]) -> Self {
        HexBuf(digits)
    }

    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Debug for HexBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for HexBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> AsRef<str> for HexBuf<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_accepts_exactly_the_lowercase_hex_digits() {
        for c in 0..=u8::MAX {
            let expected = match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            for (input, at) in [([c, b'0'], 0), ([b'0', c], 1)] {
                let mut out = [0u8; 1];
                let ok = decode_lower_hex(&input, &mut out);
                assert_eq!(ok, expected.is_some(), "byte {c:#04x} at {at}");
                if let Some(v) = expected {
                    assert_eq!(out[0], if at == 0 { v << 4 } else { v });
                }
            }
        }
        let mut out = [0u8; 2];
        assert!(!decode_lower_hex(b"abc", &mut out));
        assert!(decode_lower_hex(b"ff00", &mut out) && out == [0xff, 0x00]);
    }

    #[test]
    fn hex_round_trip() {
        let t = TraceId::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(t.to_string(), "0123456789abcdeffedcba9876543210");
        assert_eq!(TraceId::from_hex(t.to_hex().as_str()), Some(t));
        let s = SpanId::from_u64(0xdead_beef_0000_0001);
        assert_eq!(s.to_string(), "deadbeef00000001");
        assert_eq!(SpanId::from_hex("deadbeef00000001"), Some(s));
    }

    #[test]
    fn rejects_uppercase_and_wrong_length() {
        assert_eq!(SpanId::from_hex("DEADBEEF00000001"), None);
        assert_eq!(SpanId::from_hex("deadbeef0000001"), None);
        assert_eq!(TraceId::from_hex("0123456789abcdeffedcba987654321g"), None);
        assert_eq!(TraceId::from_hex(""), None);
    }

    #[test]
    fn random_ids_are_valid_and_differ() {
        let a = TraceId::random();
        let b = TraceId::random();
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a, b);
        assert!(SpanId::random().is_valid());
    }
}
