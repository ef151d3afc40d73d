//! The words the lexer and the summary care about, recognized once per
//! word token (generated list; ids 1 to [`LAST_KEYWORD`] are the reserved
//! words of [`is_keyword`]).
//!
//! A word of 2 to 12 bytes (the words' lengths) is read as a little-endian
//! `u128`, zero padded (no word token holds a zero byte, so a key stands
//! for one word) and ASCII-uppercased eight bytes at a time; a
//! multiplicative hash of the key picks a slot of [`SLOTS`], collision-free
//! for these words (checked when the table is built, at compile time), and
//! one compare with the slot's key decides.

// Every word has an id; only some are named elsewhere.
#![allow(dead_code)]

/// Not one of the words below.
pub(crate) const OTHER: u8 = 0;

pub(crate) const SELECT: u8 = 1;
pub(crate) const FROM: u8 = 2;
pub(crate) const WHERE: u8 = 3;
pub(crate) const AND: u8 = 4;
pub(crate) const OR: u8 = 5;
pub(crate) const NOT: u8 = 6;
pub(crate) const IN: u8 = 7;
pub(crate) const IS: u8 = 8;
pub(crate) const NULL: u8 = 9;
pub(crate) const LIKE: u8 = 10;
pub(crate) const ILIKE: u8 = 11;
pub(crate) const BETWEEN: u8 = 12;
pub(crate) const EXISTS: u8 = 13;
pub(crate) const JOIN: u8 = 14;
pub(crate) const INNER: u8 = 15;
pub(crate) const LEFT: u8 = 16;
pub(crate) const RIGHT: u8 = 17;
pub(crate) const FULL: u8 = 18;
pub(crate) const OUTER: u8 = 19;
pub(crate) const CROSS: u8 = 20;
pub(crate) const NATURAL: u8 = 21;
pub(crate) const ON: u8 = 22;
pub(crate) const USING: u8 = 23;
pub(crate) const AS: u8 = 24;
pub(crate) const GROUP: u8 = 25;
pub(crate) const BY: u8 = 26;
pub(crate) const ORDER: u8 = 27;
pub(crate) const HAVING: u8 = 28;
pub(crate) const LIMIT: u8 = 29;
pub(crate) const OFFSET: u8 = 30;
pub(crate) const FETCH: u8 = 31;
pub(crate) const UNION: u8 = 32;
pub(crate) const INTERSECT: u8 = 33;
pub(crate) const EXCEPT: u8 = 34;
pub(crate) const ALL: u8 = 35;
pub(crate) const ANY: u8 = 36;
pub(crate) const SOME: u8 = 37;
pub(crate) const DISTINCT: u8 = 38;
pub(crate) const SET: u8 = 39;
pub(crate) const VALUES: u8 = 40;
pub(crate) const INTO: u8 = 41;
pub(crate) const INSERT: u8 = 42;
pub(crate) const UPDATE: u8 = 43;
pub(crate) const DELETE: u8 = 44;
pub(crate) const MERGE: u8 = 45;
pub(crate) const RETURNING: u8 = 46;
pub(crate) const WITH: u8 = 47;
pub(crate) const CASE: u8 = 48;
pub(crate) const WHEN: u8 = 49;
pub(crate) const THEN: u8 = 50;
pub(crate) const ELSE: u8 = 51;
pub(crate) const END: u8 = 52;
pub(crate) const FOR: u8 = 53;
pub(crate) const DO: u8 = 54;
pub(crate) const LATERAL: u8 = 55;
pub(crate) const ONLY: u8 = 56;
pub(crate) const WINDOW: u8 = 57;
pub(crate) const DEFAULT: u8 = 58;
pub(crate) const CONFLICT: u8 = 59;
pub(crate) const NOTHING: u8 = 60;
pub(crate) const RECURSIVE: u8 = 61;
pub(crate) const ASC: u8 = 62;
pub(crate) const DESC: u8 = 63;
pub(crate) const NULLS: u8 = 64;
pub(crate) const OVER: u8 = 65;
pub(crate) const PARTITION: u8 = 66;
pub(crate) const FILTER: u8 = 67;
pub(crate) const ESCAPE: u8 = 68;
pub(crate) const COLLATE: u8 = 69;
pub(crate) const ARRAY: u8 = 70;
pub(crate) const ROW: u8 = 71;
pub(crate) const IF: u8 = 72;
pub(crate) const INTERVAL: u8 = 73;
pub(crate) const RETURN: u8 = 74;
pub(crate) const SIMILAR: u8 = 75;
pub(crate) const REGEXP: u8 = 76;
pub(crate) const RLIKE: u8 = 77;
pub(crate) const DIV: u8 = 78;
pub(crate) const MOD: u8 = 79;
pub(crate) const XOR: u8 = 80;
pub(crate) const REPLACE: u8 = 81;
pub(crate) const UPSERT: u8 = 82;
pub(crate) const KEY: u8 = 83;
pub(crate) const CREATE: u8 = 84;
pub(crate) const ALTER: u8 = 85;
pub(crate) const DROP: u8 = 86;
pub(crate) const TRUNCATE: u8 = 87;
pub(crate) const EXPLAIN: u8 = 88;
pub(crate) const TABLE: u8 = 89;
pub(crate) const CALL: u8 = 90;
pub(crate) const EXEC: u8 = 91;
pub(crate) const EXECUTE: u8 = 92;
pub(crate) const IGNORE: u8 = 93;
pub(crate) const LOW_PRIORITY: u8 = 94;
pub(crate) const TEMP: u8 = 95;
pub(crate) const TEMPORARY: u8 = 96;
pub(crate) const UNLOGGED: u8 = 97;
pub(crate) const UNIQUE: u8 = 98;
pub(crate) const GLOBAL: u8 = 99;
pub(crate) const LOCAL: u8 = 100;
pub(crate) const CONCURRENTLY: u8 = 101;
pub(crate) const ANALYZE: u8 = 102;
pub(crate) const VERBOSE: u8 = 103;
pub(crate) const QUERY: u8 = 104;
pub(crate) const PLAN: u8 = 105;
pub(crate) const INDEX: u8 = 106;
pub(crate) const VIEW: u8 = 107;
pub(crate) const MATERIALIZED: u8 = 108;
pub(crate) const SEQUENCE: u8 = 109;
pub(crate) const SCHEMA: u8 = 110;
pub(crate) const DATABASE: u8 = 111;
pub(crate) const FUNCTION: u8 = 112;
pub(crate) const PROCEDURE: u8 = 113;
pub(crate) const TRIGGER: u8 = 114;
pub(crate) const TYPE: u8 = 115;
pub(crate) const EXTENSION: u8 = 116;
pub(crate) const DOMAIN: u8 = 117;
pub(crate) const ROLE: u8 = 118;
pub(crate) const USER: u8 = 119;
pub(crate) const TRUE: u8 = 120;
pub(crate) const FALSE: u8 = 121;

/// The last reserved word's id.
const LAST_KEYWORD: u8 = 80;

/// Reserved words that cannot be a bare alias or a function name, and after
/// which a sign belongs to a following number.
#[inline]
pub(crate) fn is_keyword(id: u8) -> bool {
    id != OTHER && id <= LAST_KEYWORD
}

/// The words' text, by id (index 0: [`OTHER`]).
const WORDS: [&str; 122] = [
    "",
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "EXISTS",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
    "AS",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "FETCH",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "ALL",
    "ANY",
    "SOME",
    "DISTINCT",
    "SET",
    "VALUES",
    "INTO",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "RETURNING",
    "WITH",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "FOR",
    "DO",
    "LATERAL",
    "ONLY",
    "WINDOW",
    "DEFAULT",
    "CONFLICT",
    "NOTHING",
    "RECURSIVE",
    "ASC",
    "DESC",
    "NULLS",
    "OVER",
    "PARTITION",
    "FILTER",
    "ESCAPE",
    "COLLATE",
    "ARRAY",
    "ROW",
    "IF",
    "INTERVAL",
    "RETURN",
    "SIMILAR",
    "REGEXP",
    "RLIKE",
    "DIV",
    "MOD",
    "XOR",
    "REPLACE",
    "UPSERT",
    "KEY",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "EXPLAIN",
    "TABLE",
    "CALL",
    "EXEC",
    "EXECUTE",
    "IGNORE",
    "LOW_PRIORITY",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "UNIQUE",
    "GLOBAL",
    "LOCAL",
    "CONCURRENTLY",
    "ANALYZE",
    "VERBOSE",
    "QUERY",
    "PLAN",
    "INDEX",
    "VIEW",
    "MATERIALIZED",
    "SEQUENCE",
    "SCHEMA",
    "DATABASE",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "TYPE",
    "EXTENSION",
    "DOMAIN",
    "ROLE",
    "USER",
    "TRUE",
    "FALSE",
];

/// `s` (at most 16 bytes) as a key.
const fn key(s: &str) -> u128 {
    let s = s.as_bytes();
    let mut buf = [0u8; 16];
    let mut i = 0;
    while i < s.len() {
        buf[i] = s[i];
        i += 1;
    }
    u128::from_le_bytes(buf)
}

const SLOT_BITS: u32 = 11;

#[inline]
const fn slot(key: u128) -> usize {
    let lo = key as u64;
    let hi = (key >> 64) as u64;
    (lo.wrapping_add(hi.rotate_left(32))
        .wrapping_mul(0xd23f0824128b2f33)
        >> (64 - SLOT_BITS)) as usize
}

/// Each word's key, by id (index 0: no word).
static KEYS: [u128; WORDS.len()] = {
    let mut keys = [0u128; WORDS.len()];
    let mut id = 1;
    while id < WORDS.len() {
        assert!(WORDS[id].len() >= 2 && WORDS[id].len() <= MAX_LEN);
        keys[id] = key(WORDS[id]);
        id += 1;
    }
    keys
};

/// The id of the word whose key hashes to each slot, or [`OTHER`].
static SLOTS: [u8; 1 << SLOT_BITS] = {
    let mut slots = [OTHER; 1 << SLOT_BITS];
    let mut id = 1;
    while id < WORDS.len() {
        let s = slot(key(WORDS[id]));
        assert!(slots[s] == OTHER, "two words share a slot");
        slots[s] = id as u8;
        id += 1;
    }
    slots
};

/// The longest word's length.
const MAX_LEN: usize = 12;

/// `x` with every ASCII `a`..=`z` byte uppercased, nothing else changed.
#[inline]
fn upper_lanes(x: u64) -> u64 {
    const LANES: u64 = u64::MAX / 255;
    let low7 = x & (LANES * 0x7f);
    let from_a = low7 + LANES * (0x80 - b'a' as u64);
    let past_z = low7 + LANES * (0x80 - b'z' as u64 - 1);
    x - ((from_a & !past_z & !x & (LANES * 0x80)) >> 2)
}

/// Up to 8 bytes from `bytes` as a little-endian, zero-padded word.
#[inline]
fn lane(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    for (d, s) in buf.iter_mut().zip(bytes) {
        *d = *s;
    }
    u64::from_le_bytes(buf)
}

/// The id of the word `src[start..end]` (any case), or [`OTHER`].
#[inline]
pub(crate) fn classify(src: &[u8], start: usize, end: usize) -> u8 {
    let len = end - start;
    if !(2..=MAX_LEN).contains(&len) {
        return OTHER;
    }
    // The first 8 bytes, read at once when the input has them.
    let lo = match src.get(start..start + 8) {
        Some(bytes) => {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(bytes);
            let v = u64::from_le_bytes(buf);
            if len >= 8 {
                v
            } else {
                v & (u64::MAX >> (64 - 8 * len))
            }
        }
        None => lane(&src[start..end]),
    };
    let mut k = u128::from(upper_lanes(lo));
    if len > 8 {
        k |= u128::from(upper_lanes(lane(&src[start + 8..end]))) << 64;
    }
    let id = SLOTS[slot(k)];
    if KEYS[id as usize] == k { id } else { OTHER }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_in_any_case_and_nothing_else() {
        for (id, w) in WORDS.iter().enumerate().skip(1) {
            let lower = w.to_ascii_lowercase();
            let padded = format!("{lower}                 ");
            assert_eq!(classify(w.as_bytes(), 0, w.len()), id as u8, "{w}");
            assert_eq!(classify(padded.as_bytes(), 0, w.len()), id as u8, "{w}");
            assert_eq!(classify(padded.as_bytes(), 0, w.len() + 1), OTHER, "{w}");
            if w.len() > 1 {
                assert_ne!(classify(w.as_bytes(), 0, w.len() - 1), id as u8, "{w}");
            }
        }
        for w in [
            "", "x", "users", "selectx", "élan", "SELECT_", "`ELECT", "{ROM", "ÉXISTS",
        ] {
            assert_eq!(classify(w.as_bytes(), 0, w.len()), OTHER, "{w}");
        }
        assert_eq!(classify(b"x SeLeCt y", 2, 8), SELECT);
        assert_eq!(classify(b"low_priority", 0, 12), LOW_PRIORITY);
    }
}
