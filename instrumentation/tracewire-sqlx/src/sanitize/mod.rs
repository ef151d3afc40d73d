//! SQL sanitization and summaries: the text recorded as `db.query.text`,
//! and `db.query.summary`, `db.operation.name` and `db.collection.name`
//! derived from it.
//!
//! A small lexer (not a parser) walks the query once:
//!
//! - every literal becomes `?`: strings (`'…'` with `''` escapes, `E'…'`
//!   with backslash escapes, `N'…'`, `X'…'`, `B'…'`, `U&'…'`; MySQL's
//!   backslash escapes and `"…"` strings), numbers (integers, decimals,
//!   exponents, a sign where it is part of the literal), hex (`0x…`),
//!   `TRUE`/`FALSE`, and PostgreSQL dollar-quoted strings (`$$…$$`,
//!   `$tag$…$tag$`);
//! - `IN (?, ?, …)` collapses to `IN (?)`;
//! - placeholders (`$1`, `?`, `?1`, `:name`, `@p1`) and identifiers (bare,
//!   `"quoted"`, `` `quoted` ``) stay as written;
//! - comments (`-- …`, `/* … */`, MySQL `# …`) are removed.
//!
//! ```
//! use tracewire_sqlx::sanitize::{analyze, Dialect};
//!
//! let info = analyze("SELECT * FROM users WHERE id IN (1, 2, 3) AND name = 'bob' -- hi", Dialect::Postgres);
//! assert_eq!(info.text(), "SELECT * FROM users WHERE id IN (?) AND name = ? ");
//! assert_eq!(info.summary(), Some("SELECT users"));
//! assert_eq!(info.operation(), Some("SELECT"));
//! assert_eq!(info.collection(), Some("users"));
//! ```

mod cache;
mod lexer;
mod summary;

pub use cache::QueryCache;

use lexer::{Kind, Token};

/// The SQL dialect whose lexical rules apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// Standard SQL: `''` escapes only, `"…"` identifiers.
    #[default]
    Generic,
    /// PostgreSQL: standard strings, nested block comments.
    Postgres,
    /// MySQL and MariaDB: backslash escapes, `"…"` strings, `#` comments.
    MySql,
    /// SQLite: standard strings, `[…]` identifiers.
    Sqlite,
}

/// What is recorded as `db.query.text`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QueryText {
    /// The query as written, literals included. Use only when queries never
    /// carry sensitive literals.
    Full,
    /// The query with every literal replaced by `?` (the default).
    #[default]
    Sanitized,
    /// No `db.query.text` at all (the summary is still recorded).
    Off,
}

/// What [`analyze`] found in one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryInfo {
    text: Box<str>,
    summary: Option<Box<str>>,
    operation: Option<Box<str>>,
    collection: Option<Box<str>>,
}

impl QueryInfo {
    /// The sanitized query text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `db.query.summary`: operations and their targets in order, e.g.
    /// `SELECT users` or `INSERT orders SELECT carts`.
    pub fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }

    /// `db.operation.name`, when the query has exactly one operation
    /// (`SELECT`, `INSERT`, `CREATE TABLE`, …).
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }

    /// `db.collection.name`, when the query has one operation on exactly one
    /// table.
    pub fn collection(&self) -> Option<&str> {
        self.collection.as_deref()
    }
}

/// Sanitizes `sql` and derives its summary, operation and collection.
/// Never panics, whatever the input.
pub fn analyze(sql: &str, dialect: Dialect) -> QueryInfo {
    let mut toks = Vec::with_capacity(sql.len() / 3 + 1);
    lexer::tokenize(sql, dialect, &mut toks);
    let text = render(sql, &toks);
    let summary = summary::summarize(sql, &toks);
    let single_op = summary.operations.len() == 1;
    let operation = if single_op {
        Some(summary.operations[0].as_ref().into())
    } else {
        None
    };
    let collection = if single_op && summary.collections.len() == 1 {
        Some(summary.collections[0].into())
    } else {
        None
    };
    QueryInfo {
        text: text.into_boxed_str(),
        summary: summary.text().map(String::into_boxed_str),
        operation,
        collection,
    }
}

/// The sanitized text of `sql` (shorthand for `analyze(sql, dialect).text()`).
///
/// ```
/// use tracewire_sqlx::sanitize::{sanitize, Dialect};
/// assert_eq!(sanitize("UPDATE t SET a = 'x', b = 1.5e3 WHERE id = $1", Dialect::Postgres),
///            "UPDATE t SET a = ?, b = ? WHERE id = $1");
/// ```
pub fn sanitize(sql: &str, dialect: Dialect) -> String {
    let mut toks = Vec::with_capacity(sql.len() / 3 + 1);
    lexer::tokenize(sql, dialect, &mut toks);
    render(sql, &toks)
}

fn tok_is(sql: &str, t: &Token, kind: Kind, text: &str) -> bool {
    t.kind == kind && sql[t.start..t.end].eq_ignore_ascii_case(text)
}

/// Writes the tokens back: literals as `?`, comments removed (a space stands
/// in for a comment that separated two tokens), `IN (?, …)` collapsed.
fn render(sql: &str, toks: &[Token]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.kind {
            Kind::Literal => out.push('?'),
            Kind::Comment => {
                let glued_before = out
                    .as_bytes()
                    .last()
                    .is_some_and(|c| !c.is_ascii_whitespace());
                let glued_after = toks
                    .get(i + 1)
                    .is_some_and(|n| !matches!(n.kind, Kind::Space | Kind::Comment));
                if glued_before && glued_after {
                    out.push(' ');
                }
            }
            Kind::Word if tok_is(sql, t, Kind::Word, "IN") => {
                if let Some(end) = in_list_end(sql, toks, i + 1) {
                    out.push_str(&sql[t.start..t.end]);
                    let mut j = i + 1;
                    while toks[j].kind != Kind::Punct {
                        if toks[j].kind == Kind::Space {
                            out.push_str(&sql[toks[j].start..toks[j].end]);
                        }
                        j += 1;
                    }
                    out.push_str("(?)");
                    i = end;
                    continue;
                }
                out.push_str(&sql[t.start..t.end]);
            }
            _ => out.push_str(&sql[t.start..t.end]),
        }
        i += 1;
    }
    out
}

/// When tokens from `i` are `( ? , ? … )` with at least two items, each a
/// literal or a bare `?` placeholder: the index after the `)`.
fn in_list_end(sql: &str, toks: &[Token], mut i: usize) -> Option<usize> {
    let skip = |mut i: usize| {
        while toks
            .get(i)
            .is_some_and(|t| matches!(t.kind, Kind::Space | Kind::Comment))
        {
            i += 1;
        }
        i
    };
    i = skip(i);
    if !tok_is(sql, toks.get(i)?, Kind::Punct, "(") {
        return None;
    }
    let mut items = 0;
    loop {
        i = skip(i + 1);
        let t = toks.get(i)?;
        if !(t.kind == Kind::Literal || tok_is(sql, t, Kind::Placeholder, "?")) {
            return None;
        }
        items += 1;
        i = skip(i + 1);
        let t = toks.get(i)?;
        if tok_is(sql, t, Kind::Punct, ")") {
            return (items >= 2).then_some(i + 1);
        }
        if !tok_is(sql, t, Kind::Punct, ",") {
            return None;
        }
    }
}

#[cfg(test)]
mod tests;
