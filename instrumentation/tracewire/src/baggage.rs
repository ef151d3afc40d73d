//! W3C Baggage: user-defined key/value pairs that travel with a request.

use std::fmt;
use std::sync::Arc;

/// Most members propagated in one `baggage` header.
pub const MAX_MEMBERS: usize = 64;
/// Most bytes of one `baggage` header.
pub const MAX_BYTES: usize = 8192;

/// One baggage member: a key, its (decoded) value and its raw properties.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaggageEntry {
    key: Box<str>,
    value: Box<str>,
    properties: Box<str>,
}

impl BaggageEntry {
    /// The key (an HTTP token).
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The value, percent-decoded.
    pub fn value(&self) -> &str {
        &self.value
    }
    /// The member's properties as received (`;`-separated, without the
    /// leading `;`), or empty.
    pub fn properties(&self) -> &str {
        &self.properties
    }
}

impl fmt::Debug for BaggageEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}", self.key, self.value)?;
        if !self.properties.is_empty() {
            write!(f, ";{}", self.properties)?;
        }
        Ok(())
    }
}

/// An ordered set of baggage members. Cloning is cheap (a reference count);
/// changes return a new value.
///
/// ```
/// use tracewire::Baggage;
///
/// let baggage = Baggage::from_header("userId=alice, region = eu%20west;ttl=60").unwrap();
/// assert_eq!(baggage.get("region"), Some("eu west"));
/// assert_eq!(baggage.header(), "userId=alice,region=eu%20west;ttl=60");
///
/// let more = baggage.insert("tier", "gold").unwrap();
/// assert_eq!(more.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Baggage(Option<Arc<[BaggageEntry]>>);

/// Why a baggage key or header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageError {
    /// The key is empty or not an HTTP token.
    #[error("invalid baggage key {0:?}")]
    InvalidKey(String),
    /// A member is not of the form `key=value[;properties]` or its value is
    /// not valid percent-encoded UTF-8.
    #[error("invalid baggage member {0:?}")]
    InvalidMember(String),
}

/// Whether `key` is an HTTP token (RFC 9110 `tchar`s, at least one).
pub fn is_token(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything outside the W3C `baggage-octet` range (and `%`).
fn percent_encode(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        let plain =
            matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e) && b != b'%';
        if plain {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

impl Baggage {
    /// Empty baggage.
    pub const fn new() -> Self {
        Baggage(None)
    }

    fn entries(&self) -> &[BaggageEntry] {
        self.0.as_deref().unwrap_or(&[])
    }

    fn from_vec(list: Vec<BaggageEntry>) -> Self {
        if list.is_empty() {
            Baggage(None)
        } else {
            Baggage(Some(list.into()))
        }
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries()
            .iter()
            .find(|e| &*e.key == key)
            .map(|e| &*e.value)
    }

    /// The members in order.
    pub fn iter(&self) -> std::slice::Iter<'_, BaggageEntry> {
        self.entries().iter()
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// A new baggage with `key` set to `value` (replacing an earlier value
    /// in place, or appended at the end).
    pub fn insert(&self, key: &str, value: &str) -> Result<Self, BaggageError> {
        self.insert_with_properties(key, value, "")
    }

    /// Like [`insert`](Self::insert), with raw properties (e.g. `ttl=60`).
    pub fn insert_with_properties(
        &self,
        key: &str,
        value: &str,
        properties: &str,
    ) -> Result<Self, BaggageError> {
        if !is_token(key) {
            return Err(BaggageError::InvalidKey(key.to_owned()));
        }
        let entry = BaggageEntry {
            key: key.into(),
            value: value.into(),
            properties: properties.into(),
        };
        let mut list = self.entries().to_vec();
        match list.iter_mut().find(|e| &*e.key == key) {
            Some(existing) => *existing = entry,
            None => list.push(entry),
        }
        Ok(Self::from_vec(list))
    }

    /// A new baggage without `key`.
    pub fn remove(&self, key: &str) -> Self {
        Self::from_vec(
            self.entries()
                .iter()
                .filter(|e| &*e.key != key)
                .cloned()
                .collect(),
        )
    }

    /// Parses a `baggage` header value (several header lines joined with
    /// `,`). Spaces and tabs around keys, values and members are not part of
    /// them; values are percent-decoded; a later duplicate key wins. Any
    /// malformed member rejects the whole header.
    pub fn from_header(header: &str) -> Result<Self, BaggageError> {
        let mut list: Vec<BaggageEntry> = Vec::new();
        for member in header.split(',') {
            if trim_ows(member).is_empty() {
                continue;
            }
            let (pair, properties) = match member.split_once(';') {
                Some((pair, props)) => (pair, trim_ows(props)),
                None => (member, ""),
            };
            let Some((key, value)) = pair.split_once('=') else {
                return Err(BaggageError::InvalidMember(member.to_owned()));
            };
            let (key, value) = (trim_ows(key), trim_ows(value));
            if !is_token(key) {
                return Err(BaggageError::InvalidMember(member.to_owned()));
            }
            let Some(value) = percent_decode(value) else {
                return Err(BaggageError::InvalidMember(member.to_owned()));
            };
            let entry = BaggageEntry {
                key: key.into(),
                value: value.into(),
                properties: properties.into(),
            };
            match list.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => *existing = entry,
                None => list.push(entry),
            }
        }
        Ok(Self::from_vec(list))
    }

    /// The header value: members in order, values percent-encoded, limited
    /// to 64 members and 8192 bytes by leaving out whole members.
    pub fn header(&self) -> String {
        let mut out = String::new();
        let mut count = 0;
        let mut member = String::new();
        for e in self.entries() {
            if count == MAX_MEMBERS {
                break;
            }
            member.clear();
            member.push_str(&e.key);
            member.push('=');
            percent_encode(&e.value, &mut member);
            if !e.properties.is_empty() {
                member.push(';');
                member.push_str(&e.properties);
            }
            let sep = usize::from(!out.is_empty());
            if out.len() + sep + member.len() > MAX_BYTES {
                continue;
            }
            if sep == 1 {
                out.push(',');
            }
            out.push_str(&member);
            count += 1;
        }
        out
    }
}

impl fmt::Debug for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let b = Baggage::from_header(" a = 1 ;p=1; q ,b=%E2%9C%93,c=x%2Cy").unwrap();
        assert_eq!(b.get("a"), Some("1"));
        assert_eq!(b.iter().next().unwrap().properties(), "p=1; q");
        assert_eq!(b.get("b"), Some("✓"));
        assert_eq!(b.get("c"), Some("x,y"));
    }

    #[test]
    fn encodes_on_write() {
        let b = Baggage::new().insert("k", "a b,c;d=é%").unwrap();
        assert_eq!(b.header(), "k=a%20b%2Cc%3Bd=%C3%A9%25");
        assert_eq!(Baggage::from_header(&b.header()).unwrap(), b);
    }

    #[test]
    fn rejects_malformed_members() {
        for bad in ["novalue", "=v", "k y=v", "k=%zz", "k=%FF"] {
            assert!(Baggage::from_header(bad).is_err(), "{bad}");
        }
        assert!(Baggage::new().insert("bad key", "v").is_err());
    }

    #[test]
    fn empty_members_are_skipped() {
        assert_eq!(Baggage::from_header(" , a=1,,").unwrap().len(), 1);
        assert!(Baggage::from_header("").unwrap().is_empty());
    }

    #[test]
    fn header_keeps_at_most_64_members() {
        let mut b = Baggage::new();
        for i in 0..70 {
            b = b.insert(&format!("k{i}"), "v").unwrap();
        }
        let header = b.header();
        assert_eq!(header.split(',').count(), 64);
        assert!(header.starts_with("k0=v,"));
        assert!(header.ends_with("k63=v"));
    }

    #[test]
    fn header_keeps_at_most_8192_bytes_dropping_whole_members() {
        let big = "x".repeat(3000);
        let b = Baggage::new()
            .insert("a", &big)
            .unwrap()
            .insert("b", &big)
            .unwrap()
            .insert("c", &big)
            .unwrap()
            .insert("d", "small")
            .unwrap();
        let header = b.header();
        assert!(header.len() <= MAX_BYTES);
        let keys: Vec<_> = header
            .split(',')
            .map(|m| m.split('=').next().unwrap())
            .collect();
        assert_eq!(keys, ["a", "b", "d"]);
    }
}
