//! The W3C `tracestate`: vendor-specific entries that travel with a trace.

use std::fmt;
use std::sync::Arc;

/// Most members a valid `tracestate` may hold.
pub const MAX_MEMBERS: usize = 32;
/// Longest value of one member.
const MAX_VALUE_LEN: usize = 256;
/// Longest key (1 leading character plus up to 255 more).
const MAX_KEY_LEN: usize = 256;
/// Most bytes of a `tracestate` (all header lines joined with `,`) that
/// parsing reads: about twice the 16,447 bytes of 32 members with the
/// longest keys and values, leaving room for optional spaces and empty
/// members. A longer value is rejected unread.
pub const MAX_HEADER_LEN: usize = 32 * 1024;

/// An ordered, immutable list of `key=value` members. Cloning is a reference
/// count increment (or nothing, when empty); every change returns a new value
/// and follows the W3C mutation rules: a key that is added or updated moves to
/// the front, the others keep their order, and a key never appears twice.
///
/// ```
/// use tracewire::TraceState;
///
/// let state = TraceState::default()
///     .insert("rojo", "00f067aa0ba902b7").unwrap()
///     .insert("congo", "t61rcWkgMzE").unwrap();
/// assert_eq!(state.header(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
///
/// let updated = state.insert("rojo", "new").unwrap();
/// assert_eq!(updated.header(), "rojo=new,congo=t61rcWkgMzE");
/// assert_eq!(updated.get("congo"), Some("t61rcWkgMzE"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TraceState(Option<Arc<[Member]>>);

/// One `key=value` member.
type Member = (Box<str>, Box<str>);

/// Why a `tracestate` key, value or header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    /// The key is empty, too long or has a character W3C does not allow.
    #[error("invalid tracestate key {0:?}")]
    InvalidKey(String),
    /// The value is empty, too long, ends with a space or has `,`, `=` or a
    /// non-printable character.
    #[error("invalid tracestate value {0:?}")]
    InvalidValue(String),
    /// A member is not of the form `key=value`.
    #[error("invalid tracestate member {0:?}")]
    InvalidMember(String),
    /// The same key given twice to [`TraceState::from_key_values`]. (A
    /// parsed header keeps the first of duplicate keys instead.)
    #[error("duplicate tracestate key {0:?}")]
    DuplicateKey(String),
    /// More than 32 members.
    #[error("tracestate has more than {MAX_MEMBERS} members")]
    TooManyMembers,
    /// The header value, all lines together, is longer than
    /// [`MAX_HEADER_LEN`] bytes.
    #[error("tracestate is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
}

/// Reads `tracestate` header lines as if joined with `,`, stopping at the
/// first error. Each line is read at most once, and nothing past
/// [`MAX_HEADER_LEN`] bytes or the 33rd member is looked at.
#[derive(Debug, Default)]
pub(crate) struct TraceStateReader {
    list: Vec<Member>,
    /// Non-empty members read, duplicates included.
    members: usize,
    bytes: usize,
    lines: usize,
    error: Option<TraceStateError>,
}

impl TraceStateReader {
    /// Reads one header line (a no-op after an error).
    pub(crate) fn read_line(&mut self, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        // With the `,` that joins this line to the previous one.
        self.bytes += usize::from(self.lines > 0) + line.len();
        self.lines += 1;
        if self.bytes > MAX_HEADER_LEN {
            self.error = Some(TraceStateError::TooLong);
            return;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            let lossy = String::from_utf8_lossy(line).into_owned();
            self.error = Some(TraceStateError::InvalidMember(lossy));
            return;
        };
        for member in line.split(',') {
            if let Err(error) = self.read_member(member) {
                self.error = Some(error);
                return;
            }
        }
    }

    fn read_member(&mut self, member: &str) -> Result<(), TraceStateError> {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            return Ok(());
        }
        let Some((key, value)) = member.split_once('=') else {
            return Err(TraceStateError::InvalidMember(member.to_owned()));
        };
        if !is_valid_key(key) {
            return Err(TraceStateError::InvalidKey(key.to_owned()));
        }
        if !is_valid_value(value) {
            return Err(TraceStateError::InvalidValue(value.to_owned()));
        }
        self.members += 1;
        if self.members > MAX_MEMBERS {
            return Err(TraceStateError::TooManyMembers);
        }
        // A later duplicate is dropped: the first one stays where it is.
        if !self.list.iter().any(|(k, _)| &**k == key) {
            self.list.push((key.into(), value.into()));
        }
        Ok(())
    }

    /// The trace state read, or the first reason to discard it.
    pub(crate) fn finish(self) -> Result<TraceState, TraceStateError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(TraceState::from_vec(self.list)),
        }
    }
}

/// Whether `key` is a valid `tracestate` key: a first character `a-z0-9`,
/// then up to 255 of `a-z 0-9 _ - * / @` (the Level 3 draft's relaxed keys,
/// which include the Level 2 `tenant@system` form).
pub fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= MAX_KEY_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest.iter().all(|&c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

/// Whether `value` is a valid `tracestate` value: 1 to 256 printable ASCII
/// characters other than `,` and `=`, not ending with a space.
pub fn is_valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_LEN
        && bytes.last() != Some(&b' ')
        && bytes
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

impl TraceState {
    /// An empty trace state.
    pub const fn new() -> Self {
        TraceState(None)
    }

    /// A trace state from members in order, validating each key and value and
    /// rejecting duplicates and more than 32 members.
    ///
    /// ```
    /// use tracewire::TraceState;
    ///
    /// let state = TraceState::from_key_values([("a", "1"), ("b", "2")]).unwrap();
    /// assert_eq!(state.header(), "a=1,b=2");
    /// assert!(TraceState::from_key_values([("A", "1")]).is_err());
    /// ```
    pub fn from_key_values<K, V>(
        members: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, TraceStateError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut list: Vec<Member> = Vec::new();
        for (key, value) in members {
            let (key, value) = (key.as_ref(), value.as_ref());
            if !is_valid_key(key) {
                return Err(TraceStateError::InvalidKey(key.to_owned()));
            }
            if !is_valid_value(value) {
                return Err(TraceStateError::InvalidValue(value.to_owned()));
            }
            if list.iter().any(|(k, _)| &**k == key) {
                return Err(TraceStateError::DuplicateKey(key.to_owned()));
            }
            if list.len() == MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            list.push((key.into(), value.into()));
        }
        Ok(Self::from_vec(list))
    }

    fn from_vec(list: Vec<Member>) -> Self {
        if list.is_empty() {
            TraceState(None)
        } else {
            TraceState(Some(list.into()))
        }
    }

    fn members(&self) -> &[Member] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members()
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// The members in order, as `(key, value)` pairs.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.members().iter().map(|(k, v)| (&**k, &**v))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// A new trace state with `key` set to `value` at the front. An existing
    /// member with that key is removed from its old place. When the state is
    /// full, the last member makes room.
    pub fn insert(&self, key: &str, value: &str) -> Result<Self, TraceStateError> {
        if !is_valid_key(key) {
            return Err(TraceStateError::InvalidKey(key.to_owned()));
        }
        if !is_valid_value(value) {
            return Err(TraceStateError::InvalidValue(value.to_owned()));
        }
        let mut list = Vec::with_capacity(self.len() + 1);
        list.push((key.into(), value.into()));
        list.extend(self.members().iter().filter(|(k, _)| &**k != key).cloned());
        list.truncate(MAX_MEMBERS);
        Ok(Self::from_vec(list))
    }

    /// A new trace state without `key`.
    pub fn remove(&self, key: &str) -> Self {
        if self.get(key).is_none() {
            return self.clone();
        }
        Self::from_vec(
            self.members()
                .iter()
                .filter(|(k, _)| &**k != key)
                .cloned()
                .collect(),
        )
    }

    /// Parses a `tracestate` header value (several header lines joined with
    /// `,`). Empty members and spaces or tabs around members are skipped.
    /// Any invalid member or more than 32 members (duplicates counted)
    /// rejects the whole value, as W3C requires. A duplicate key does not:
    /// the first member with that key is kept and the later ones are
    /// dropped (W3C allows keeping or dropping them; dropping keeps the rule
    /// that a key never appears twice).
    ///
    /// Reading is bounded: a value longer than [`MAX_HEADER_LEN`] bytes is
    /// rejected without being read, and parsing stops at the first invalid
    /// or 33rd member.
    ///
    /// ```
    /// use tracewire::TraceState;
    ///
    /// let state = TraceState::from_header("congo=t61rcWkgMzE, ,\trojo=00f067aa0ba902b7").unwrap();
    /// assert_eq!(state.len(), 2);
    /// assert_eq!(TraceState::from_header("a=1,b=2,a=3").unwrap().header(), "a=1,b=2");
    /// assert!(TraceState::from_header("a=1,B=2").is_err());
    /// ```
    pub fn from_header(header: &str) -> Result<Self, TraceStateError> {
        let mut reader = TraceStateReader::default();
        reader.read_line(header.as_bytes());
        reader.finish()
    }

    /// The header value with every member, `key=value` joined by `,`.
    pub fn header(&self) -> String {
        self.header_within(usize::MAX)
    }

    /// The header value cut to at most `max_len` characters by removing whole
    /// members: first those longer than 128 characters, then from the right,
    /// as W3C requires of a vendor that must truncate.
    ///
    /// ```
    /// use tracewire::TraceState;
    ///
    /// let long = "x".repeat(200);
    /// let state = TraceState::from_key_values([("a", "1"), ("big", long.as_str()), ("b", "2")]).unwrap();
    /// assert_eq!(state.header_within(16), "a=1,b=2");
    /// assert_eq!(state.header_within(4), "a=1");
    /// ```
    pub fn header_within(&self, max_len: usize) -> String {
        let member_len = |(k, v): &Member| k.len() + 1 + v.len();
        let members = self.members();
        let mut keep = vec![true; members.len()];
        let total = |keep: &[bool]| -> usize {
            let (n, len) = members
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .fold((0usize, 0usize), |(n, len), (m, _)| {
                    (n + 1, len + member_len(m))
                });
            len + n.saturating_sub(1)
        };
        if total(&keep) > max_len {
            for (i, m) in members.iter().enumerate() {
                if member_len(m) > 128 {
                    keep[i] = false;
                }
            }
        }
        let mut i = members.len();
        while total(&keep) > max_len && i > 0 {
            i -= 1;
            keep[i] = false;
        }
        let mut out = String::new();
        for (m, _) in members.iter().zip(&keep).filter(|(_, k)| **k) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&m.0);
            out.push('=');
            out.push_str(&m.1);
        }
        out
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_w3c_grammar() {
        for ok in [
            "a",
            "0",
            "a1_-*/@",
            "tenant@system",
            "foo/bar",
            &"k".repeat(256),
        ] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in ["", "A", "_a", "a b", "a.b", "ä", &"k".repeat(257), "-a"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn values_follow_w3c_grammar() {
        for ok in [" leading", "x", "a!b~c", &"v".repeat(256)] {
            assert!(is_valid_value(ok), "{ok}");
        }
        for bad in [
            "",
            "trailing ",
            "a,b",
            "a=b",
            "tab\t",
            "\u{7f}",
            &"v".repeat(257),
        ] {
            assert!(!is_valid_value(bad), "{bad}");
        }
    }

    #[test]
    fn parse_skips_empty_members_and_keeps_order() {
        let s = TraceState::from_header(",a=1 ,\t, b= 2,,").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), [("a", "1"), ("b", " 2")]);
        assert_eq!(TraceState::from_header("").unwrap(), TraceState::new());
        assert!(TraceState::from_header(" , ").unwrap().is_empty());
    }

    #[test]
    fn parse_rejects_whole_value_on_any_bad_member() {
        for bad in [
            "a=1,B=2",
            "a=1,b",
            "a=1,b=",
            "a=1,=2",
            "a=1,b=x\u{7f}y",
            "a=1,b=x\ny",
        ] {
            assert!(TraceState::from_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_header_and_the_first_member() {
        let s = TraceState::from_header("foo=1,foo=1").unwrap();
        assert_eq!(s.header(), "foo=1");
        let s = TraceState::from_header("foo=1,bar=2,foo=2, bar=3").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), [("foo", "1"), ("bar", "2")]);
        // Mutation still never duplicates a key.
        assert_eq!(s.insert("bar", "9").unwrap().header(), "bar=9,foo=1");
    }

    #[test]
    fn duplicates_count_toward_the_32_members() {
        let header = vec!["k=v"; 33].join(",");
        assert_eq!(
            TraceState::from_header(&header),
            Err(TraceStateError::TooManyMembers)
        );
        let header = vec!["k=v"; 32].join(",");
        assert_eq!(TraceState::from_header(&header).unwrap().len(), 1);
    }

    #[test]
    fn lines_are_read_as_one_list() {
        let mut reader = TraceStateReader::default();
        for line in [&b"a=1,b=2"[..], b"", b" ,c=3", b"a=4"] {
            reader.read_line(line);
        }
        assert_eq!(reader.finish().unwrap().header(), "a=1,b=2,c=3");

        let mut reader = TraceStateReader::default();
        reader.read_line(b"a=1");
        reader.read_line(b"k=\xff");
        reader.read_line(b"c=3");
        assert!(reader.finish().is_err(), "a line that is not UTF-8");
    }

    #[test]
    fn reading_is_bounded_by_length_across_lines() {
        let spaces = " ".repeat(MAX_HEADER_LEN - 4);
        let within = format!("a=1{spaces}");
        assert_eq!(within.len(), MAX_HEADER_LEN - 1);
        assert_eq!(TraceState::from_header(&within).unwrap().header(), "a=1");
        let over = format!("a=1{spaces}  ");
        assert_eq!(
            TraceState::from_header(&over),
            Err(TraceStateError::TooLong)
        );
        let mut reader = TraceStateReader::default();
        reader.read_line(within.as_bytes());
        reader.read_line(b"");
        reader.read_line(b"b=2");
        assert_eq!(reader.finish(), Err(TraceStateError::TooLong));

        let huge = ",".repeat(400_000);
        assert_eq!(
            TraceState::from_header(&huge),
            Err(TraceStateError::TooLong)
        );
    }

    #[test]
    fn thirty_two_members_allowed_thirty_three_rejected() {
        let header = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(TraceState::from_header(&header(32)).unwrap().len(), 32);
        assert_eq!(
            TraceState::from_header(&header(33)),
            Err(TraceStateError::TooManyMembers)
        );
    }

    #[test]
    fn insert_moves_key_to_front_and_never_duplicates() {
        let s = TraceState::from_header("a=1,b=2,c=3").unwrap();
        assert_eq!(s.insert("b", "9").unwrap().header(), "b=9,a=1,c=3");
        assert_eq!(s.insert("d", "4").unwrap().header(), "d=4,a=1,b=2,c=3");
        assert_eq!(s.remove("a").header(), "b=2,c=3");
        assert!(s.insert("B", "1").is_err());
        assert!(s.insert("b", "x,y").is_err());
        // The original is unchanged.
        assert_eq!(s.header(), "a=1,b=2,c=3");
    }

    #[test]
    fn insert_into_full_state_drops_the_last_member() {
        let full = TraceState::from_key_values((0..32).map(|i| (format!("k{i}"), "v"))).unwrap();
        let s = full.insert("new", "v").unwrap();
        assert_eq!(s.len(), 32);
        assert_eq!(s.iter().next(), Some(("new", "v")));
        assert_eq!(s.get("k31"), None);
    }

    #[test]
    fn truncation_removes_long_members_first_then_from_the_right() {
        let long = "v".repeat(130);
        let s =
            TraceState::from_key_values([("a", "1"), ("l", long.as_str()), ("b", "2"), ("c", "3")])
                .unwrap();
        assert_eq!(s.header_within(512).len(), s.header().len());
        assert_eq!(s.header_within(11), "a=1,b=2,c=3");
        assert_eq!(s.header_within(10), "a=1,b=2");
        assert_eq!(s.header_within(0), "");
    }
}
