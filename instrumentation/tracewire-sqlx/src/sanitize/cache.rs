//! A bounded cache of [`QueryInfo`] per distinct SQL string, so a repeated
//! query costs one hash and one lookup.

use std::collections::HashMap;
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
    // foldhash: SQL strings come from the application, and SipHash (or a
    // hash whose every 8-byte step waits for the last multiplication) would
    // cost more than the rest of the lookup.
    map: RwLock<HashMap<Box<str>, Arc<QueryInfo>, foldhash::fast::RandomState>>,
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
