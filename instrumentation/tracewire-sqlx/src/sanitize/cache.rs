//! A bounded cache of [`QueryInfo`] per distinct SQL string, so a repeated
//! query costs one hash and one lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use super::{Dialect, QueryInfo, analyze};

/// Queries longer than this are analyzed every time instead of cached, so
/// the cache's memory stays bounded by `capacity × MAX_CACHED_LEN`.
const MAX_CACHED_LEN: usize = 16 * 1024;

/// The results of [`analyze`] per distinct SQL string, for one dialect.
///
/// Holds at most `capacity` entries; when full it starts over empty, so an
/// application that builds unbounded distinct SQL strings (literals inlined)
/// costs bounded memory, and the queries it repeats come back quickly.
///
/// ```
/// use tracewire_sqlx::sanitize::{Dialect, QueryCache};
///
/// let cache = QueryCache::new(Dialect::Sqlite, 1024);
/// let first = cache.get("SELECT name FROM users WHERE id = 1");
/// let again = cache.get("SELECT name FROM users WHERE id = 1");
/// assert!(std::sync::Arc::ptr_eq(&first, &again));
/// assert_eq!(first.text(), "SELECT name FROM users WHERE id = ?");
/// ```
#[derive(Debug)]
pub struct QueryCache {
    dialect: Dialect,
    capacity: usize,
    map: RwLock<HashMap<Box<str>, Arc<QueryInfo>, BuildHasherDefault<FoldHasher>>>,
}

impl QueryCache {
    /// A cache for `dialect` holding at most `capacity` queries.
    pub fn new(dialect: Dialect, capacity: usize) -> Self {
        Self {
            dialect,
            capacity,
            map: RwLock::new(HashMap::default()),
        }
    }

    /// The dialect queries are analyzed with.
    pub const fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// How many queries are cached now.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The analysis of `sql`, from the cache or computed (and cached).
    pub fn get(&self, sql: &str) -> Arc<QueryInfo> {
        if let Some(hit) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(sql) {
            return Arc::clone(hit);
        }
        let info = Arc::new(analyze(sql, self.dialect));
        if sql.len() <= MAX_CACHED_LEN && self.capacity > 0 {
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(sql.into(), Arc::clone(&info));
        }
        info
    }
}

/// A folded-multiply hash (as in foldhash and wyhash) taking 32 bytes per
/// step in two independent lanes: SQL strings come from the application,
/// and SipHash, or a one-word-at-a-time hash whose every step waits for the
/// last multiplication, would cost more than the lookup.
#[derive(Default, Clone, Copy)]
struct FoldHasher {
    hash: u64,
}

const SEEDS: [u64; 3] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
];

#[inline]
const fn fold(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let mut a = self.hash ^ SEEDS[0] ^ len as u64;
        let mut b = self.hash ^ SEEDS[1];
        let mut step = |chunk: &[u8]| {
            a = fold(a ^ word(chunk, 0), word(chunk, 8) ^ SEEDS[2]);
            b = fold(b ^ word(chunk, 16), word(chunk, 24) ^ SEEDS[2]);
        };
        if len >= 32 {
            let mut chunks = bytes.chunks_exact(32);
            for chunk in &mut chunks {
                step(chunk);
            }
            if !chunks.remainder().is_empty() {
                // The last 32 bytes, overlapping: the length is in the hash.
                step(&bytes[len - 32..]);
            }
        } else {
            let mut padded = [0u8; 32];
            padded[..len].copy_from_slice(bytes);
            step(&padded);
        }
        self.hash = fold(a ^ SEEDS[1], b ^ SEEDS[0]);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_usize(usize::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.hash = fold(self.hash ^ i as u64 ^ SEEDS[0], SEEDS[2]);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}
