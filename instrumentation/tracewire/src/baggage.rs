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
/// let baggage = Baggage::from_header("userId=alice, region = eu%20west;ttl=60");
/// assert_eq!(baggage.get("region"), Some("eu west"));
/// assert_eq!(baggage.header(), "userId=alice,region=eu%20west;ttl=60");
///
/// let more = baggage.insert("tier", "gold").unwrap();
/// assert_eq!(more.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Baggage(Option<Arc<[BaggageEntry]>>);

/// Why a baggage key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaggageError {
    /// The key is empty or not an HTTP token.
    #[error("invalid baggage key {0:?}")]
    InvalidKey(String),
}

/// Whether `key` is an HTTP token (RFC 9110 `tchar`s, at least one).
pub fn is_token(key: &str) -> bool {
    is_token_bytes(key.as_bytes())
}

fn is_token_bytes(key: &[u8]) -> bool {
    !key.is_empty()
        && key.iter().all(|&c| {
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

/// A W3C `baggage-octet`: visible ASCII but `"`, `,`, `;` and `\`.
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// `s` without the spaces and tabs (HTTP's optional whitespace) around it.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Decodes `%XX` escapes; `None` when an escape is cut short or not two hex
/// digits, or the result is not UTF-8. (The `percent-encoding` crate passes
/// invalid escapes through; baggage and `OTEL_*` values must reject them.)
pub(crate) fn percent_decode(s: &[u8]) -> Option<String> {
    let hex = |d: u8| {
        char::from(d)
            .to_digit(16)
            .and_then(|v| u8::try_from(v).ok())
    };
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c == b'%' {
            let [hi, lo, tail @ ..] = rest else {
                return None;
            };
            out.push((hex(*hi)? << 4) | hex(*lo)?);
            rest = tail;
        } else {
            out.push(c);
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything outside the W3C `baggage-octet` range (and `%`).
fn percent_encode(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// A property: `key` or `key = value` (a `baggage-octet` value, maybe empty).
fn is_valid_property(property: &[u8]) -> bool {
    let property = trim_ows(property);
    match property.iter().position(|&c| c == b'=') {
        Some(eq) => {
            is_token_bytes(trim_ows(&property[..eq]))
                && trim_ows(&property[eq + 1..])
                    .iter()
                    .all(|&c| is_baggage_octet(c))
        }
        None => is_token_bytes(property),
    }
}

/// One OWS-trimmed, non-empty member: `key = value *( ; property )`.
/// `None` when it does not follow the W3C grammar or its value does not
/// decode to UTF-8.
fn parse_member(member: &[u8]) -> Option<BaggageEntry> {
    let (pair, properties) = match member.iter().position(|&c| c == b';') {
        Some(semi) => (&member[..semi], Some(trim_ows(&member[semi + 1..]))),
        None => (member, None),
    };
    let eq = pair.iter().position(|&c| c == b'=')?;
    let (key, value) = (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..]));
    let valid = is_token_bytes(key)
        && value.iter().all(|&c| is_baggage_octet(c))
        && properties.is_none_or(|p| p.split(|&c| c == b';').all(is_valid_property));
    if !valid {
        return None;
    }
    // The key and properties are ASCII now.
    Some(BaggageEntry {
        key: std::str::from_utf8(key).ok()?.into(),
        value: percent_decode(value)?.into(),
        properties: std::str::from_utf8(properties.unwrap_or_default())
            .ok()?
            .into(),
    })
}

/// How much input a baggage parse took in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Examined {
    /// Non-empty members looked at, valid or not.
    pub(crate) members: usize,
    /// Bytes within the parser's reach (the separators joining header lines
    /// included); it reads no byte past them.
    pub(crate) bytes: usize,
}

/// Reads `baggage` header lines as if joined with `,`, within the reading
/// bound: the first [`MAX_BYTES`] bytes and [`MAX_MEMBERS`] non-empty
/// members, whichever comes first. A member whose end (a `,` or the end of
/// a line) is not within those bytes is dropped whole; invalid members are
/// skipped; a later duplicate key replaces the earlier value in place. Each
/// line costs at most a scan of the bytes still within reach, plus a check
/// of each member against the (at most 64) members kept.
#[derive(Debug, Default)]
pub(crate) struct BaggageReader {
    list: Vec<BaggageEntry>,
    examined: Examined,
    lines: usize,
    done: bool,
}

impl BaggageReader {
    /// Reads one header line (a no-op once the bound is reached).
    pub(crate) fn read_line(&mut self, line: &[u8]) {
        if self.done {
            return;
        }
        let mut budget = MAX_BYTES - self.examined.bytes;
        if self.lines > 0 {
            // The `,` that joins this line to the previous one.
            if budget == 0 {
                self.done = true;
                return;
            }
            budget -= 1;
            self.examined.bytes += 1;
        }
        self.lines += 1;
        let window = if line.len() <= budget {
            line
        } else {
            // The limit cuts this line: keep only the members that end
            // (with a `,`) within it.
            self.done = true;
            let cut = &line[..budget];
            let end = cut.iter().rposition(|&c| c == b',').unwrap_or(0);
            &cut[..end]
        };
        self.examined.bytes += line.len().min(budget);
        for member in window.split(|&c| c == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            self.examined.members += 1;
            if let Some(entry) = parse_member(member) {
                match self.list.iter_mut().find(|e| e.key == entry.key) {
                    Some(existing) => *existing = entry,
                    None => self.list.push(entry),
                }
            }
            if self.examined.members == MAX_MEMBERS {
                self.done = true;
                return;
            }
        }
    }

    /// How much input has been taken in so far.
    #[cfg(test)]
    pub(crate) fn examined(&self) -> Examined {
        self.examined
    }

    /// The baggage read.
    pub(crate) fn finish(self) -> Baggage {
        Baggage::from_vec(self.list)
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
    /// `,`). Never fails; what it cannot use it leaves out:
    ///
    /// - Reading is bounded: the parser looks at no more than the first
    ///   8192 bytes ([`MAX_BYTES`]) and the first 64 non-empty members
    ///   ([`MAX_MEMBERS`]) of the value and ignores the rest, so its work
    ///   is linear in at most 8192 bytes however long the header is. A
    ///   member is kept only when it ends within those bytes, with the `,`
    ///   after it or with the end of the value; one cut by the limit is
    ///   dropped whole, never split.
    /// - A member that does not follow the W3C grammar (`key=value`, the key
    ///   an HTTP token, the value `baggage-octet`s that percent-decode to
    ///   UTF-8, properties `key` or `key=value`) is skipped; the others are
    ///   kept.
    /// - Spaces and tabs around keys, values, properties and members are
    ///   not part of them; values are percent-decoded; empty members are
    ///   skipped; a later duplicate key replaces the earlier value in place.
    ///
    /// ```
    /// use tracewire::Baggage;
    ///
    /// let baggage = Baggage::from_header("a=1, bad key=2, b = x%20y ;ttl=60, a=3");
    /// assert_eq!(baggage.header(), "a=3,b=x%20y;ttl=60");
    ///
    /// let huge = (0..45_000).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    /// assert_eq!(Baggage::from_header(&huge).len(), 64);
    /// ```
    pub fn from_header(header: &str) -> Self {
        let mut reader = BaggageReader::default();
        reader.read_line(header.as_bytes());
        reader.finish()
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

    fn keys(b: &Baggage) -> Vec<&str> {
        b.iter().map(BaggageEntry::key).collect()
    }

    fn distinct_keys(n: usize) -> String {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn read(lines: &[&[u8]]) -> (Baggage, Examined) {
        let mut reader = BaggageReader::default();
        for line in lines {
            reader.read_line(line);
        }
        let examined = reader.examined();
        (reader.finish(), examined)
    }

    #[test]
    fn parses_and_decodes() {
        let b = Baggage::from_header(" a = 1 ;p=1; q ,b=%E2%9C%93,c=x%2Cy,d=a=b");
        assert_eq!(b.get("a"), Some("1"));
        assert_eq!(b.iter().next().unwrap().properties(), "p=1; q");
        assert_eq!(b.get("b"), Some("✓"));
        assert_eq!(b.get("c"), Some("x,y"));
        assert_eq!(b.get("d"), Some("a=b"), "a value may hold `=`");
    }

    #[test]
    fn encodes_on_write() {
        let b = Baggage::new().insert("k", "a b,c;d=é%").unwrap();
        assert_eq!(b.header(), "k=a%20b%2Cc%3Bd=%C3%A9%25");
        assert_eq!(Baggage::from_header(&b.header()), b);
    }

    #[test]
    fn invalid_members_are_skipped_and_the_others_kept() {
        for bad in [
            "novalue",
            "=v",
            "k y=v",
            "k=%zz",
            "k=%FF",
            "k=%4",
            "k=a b",
            "k=\"q\"",
            "k=back\\slash",
            "k=v;",
            "k=v;bad key",
            "k=v;p=\"x\"",
            "k=\u{7f}",
            "k=é",
            "ké=v",
            "k=v\u{1}",
        ] {
            let b = Baggage::from_header(&format!("a=1,{bad},z=2"));
            assert_eq!(keys(&b), ["a", "z"], "{bad:?}");
        }
        assert!(Baggage::new().insert("bad key", "v").is_err());
    }

    #[test]
    fn invalid_utf8_members_are_skipped() {
        let (b, _) = read(&[b"a=1,k=\xff\xfe,\xc3=v", b"z=2"]);
        assert_eq!(keys(&b), ["a", "z"]);
    }

    #[test]
    fn empty_members_are_skipped() {
        assert_eq!(Baggage::from_header(" , a=1,,").len(), 1);
        assert!(Baggage::from_header("").is_empty());
    }

    #[test]
    fn a_later_duplicate_replaces_the_value_in_place() {
        let b = Baggage::from_header("a=1,b=2,a=3");
        assert_eq!(b.header(), "a=3,b=2");
    }

    #[test]
    fn reading_45_000_distinct_keys_examines_64_members_only() {
        let header = (0..45_000)
            .map(|i| format!("key{i:05}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(header.len() > 400_000);
        let (b, examined) = read(&[header.as_bytes()]);
        assert_eq!(
            examined,
            Examined {
                members: 64,
                // Every member counts; the bytes are the whole reach.
                bytes: MAX_BYTES,
            }
        );
        assert_eq!(b.len(), 64);
        let expected: Vec<String> = (0..64).map(|i| format!("key{i:05}")).collect();
        assert_eq!(keys(&b), expected);
    }

    #[test]
    fn the_first_64_valid_members_are_kept() {
        let b = Baggage::from_header(&distinct_keys(65));
        assert_eq!(b.len(), 64);
        assert_eq!(b.get("k63"), Some("v"));
        assert_eq!(b.get("k64"), None);
    }

    #[test]
    fn invalid_members_count_toward_the_64_looked_at() {
        let header = format!(
            "{},{}",
            "bad,".repeat(10).trim_end_matches(','),
            distinct_keys(64)
        );
        let (b, examined) = read(&[header.as_bytes()]);
        assert_eq!(examined.members, 64);
        assert_eq!(b.len(), 54);
        assert_eq!(b.get("k53"), Some("v"));
        assert_eq!(b.get("k54"), None);
    }

    #[test]
    fn a_400_kb_header_of_few_long_members_is_read_to_8192_bytes() {
        let member = format!("k={}", "v".repeat(3000));
        let header = vec![member.as_str(); 140].join(",");
        assert!(header.len() > 400_000);
        let (b, examined) = read(&[header.as_bytes()]);
        assert_eq!(examined.bytes, MAX_BYTES);
        assert_eq!(examined.members, 2, "the cut third member is not looked at");
        assert_eq!(b.len(), 1, "a duplicate key");
        let header = (0..140)
            .map(|i| format!("k{i}={}", "v".repeat(3000)))
            .collect::<Vec<_>>()
            .join(",");
        let b = Baggage::from_header(&header);
        assert_eq!(keys(&b), ["k0", "k1"]);
    }

    #[test]
    fn a_member_cut_by_the_byte_limit_is_dropped_whole() {
        // 8190 bytes, then `,b=1`: `b=1` would end at byte 8194.
        let first = format!("a={}", "v".repeat(MAX_BYTES - 4));
        let b = Baggage::from_header(&format!("{first},b=1"));
        assert_eq!(keys(&b), ["a"]);
        // A member ending exactly at byte 8192 is whole.
        let b = Baggage::from_header(&format!("{first},b"));
        assert_eq!(keys(&b), ["a"], "`b` has no `=`");
        let exact = format!("a={}", "v".repeat(MAX_BYTES - 2));
        assert_eq!(Baggage::from_header(&exact).len(), 1);
        let over = format!("a={}", "v".repeat(MAX_BYTES - 1));
        assert!(Baggage::from_header(&over).is_empty());
        // Its end is known only from the `,` at byte 8193, out of reach.
        assert!(Baggage::from_header(&format!("{exact},b=1")).is_empty());
    }

    #[test]
    fn the_bound_applies_to_all_lines_together() {
        let line = distinct_keys(40);
        let (b, examined) = read(&[line.as_bytes(), line.as_bytes(), b"x=1"]);
        assert_eq!(examined.members, 64);
        assert_eq!(b.len(), 40, "the second line repeats the keys");

        let half = format!("a={}", "v".repeat(MAX_BYTES / 2));
        let (b, examined) = read(&[half.as_bytes(), b"b=1", half.as_bytes(), b"c=1"]);
        assert_eq!(keys(&b), ["a", "b"]);
        assert_eq!(examined.bytes, MAX_BYTES);

        let many: Vec<&[u8]> = vec![b"k=v"; 10_000];
        let (_, examined) = read(&many);
        assert_eq!(examined.members, 64);
        assert!(examined.bytes <= MAX_BYTES);
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
