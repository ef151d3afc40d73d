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
mod words;

use words::Keyword;

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
///
/// One buffer holds the text, then the summary, the operation and the
/// collection, each ending where the next begins (an empty one is absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryInfo {
    buf: String,
    text_end: usize,
    summary_end: usize,
    operation_end: usize,
}

impl QueryInfo {
    /// The sanitized query text.
    pub fn text(&self) -> &str {
        &self.buf[..self.text_end]
    }

    /// `db.query.summary`: operations and their targets in order, e.g.
    /// `SELECT users` or `INSERT orders SELECT carts`.
    pub fn summary(&self) -> Option<&str> {
        self.part(self.text_end, self.summary_end)
    }

    /// `db.operation.name`, when the query has exactly one operation
    /// (`SELECT`, `INSERT`, `CREATE TABLE`, …).
    pub fn operation(&self) -> Option<&str> {
        self.part(self.summary_end, self.operation_end)
    }

    /// `db.collection.name`, when the query has one operation on exactly one
    /// table.
    pub fn collection(&self) -> Option<&str> {
        self.part(self.operation_end, self.buf.len())
    }

    fn part(&self, start: usize, end: usize) -> Option<&str> {
        (end > start).then(|| &self.buf[start..end])
    }
}

/// Sanitizes `sql` and derives its summary, operation and collection.
/// Never panics, whatever the input.
pub fn analyze(sql: &str, dialect: Dialect) -> QueryInfo {
    let mut toks = Vec::with_capacity(sql.len() / 3 + 1);
    let comments = lexer::tokenize(sql, dialect, &mut toks);
    let mut buf = String::with_capacity(sql.len() + 64);
    render(sql, &toks, &mut buf);
    let text_end = buf.len();
    let found = summary::summarize(sql, &toks, comments, &mut buf);
    let summary_end = buf.len();
    if let Some(op) = found.operation.as_deref().filter(|_| found.operations == 1) {
        buf.push_str(op);
    }
    let operation_end = buf.len();
    if let Some(collection) = found
        .collection
        .filter(|_| found.operations == 1 && found.collections == 1)
    {
        buf.push_str(collection);
    }
    QueryInfo {
        buf,
        text_end,
        summary_end,
        operation_end,
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
    let mut out = String::with_capacity(sql.len());
    render(sql, &toks, &mut out);
    out
}

fn tok_is(sql: &str, t: &Token, kind: Kind, text: &str) -> bool {
    t.kind == kind && sql.as_bytes()[t.start..t.end].eq_ignore_ascii_case(text.as_bytes())
}

/// Writes the tokens back into `out`: literals as `?`, comments removed (a
/// space stands in for a comment that separated two tokens), `IN (?, …)`
/// collapsed. Whatever is kept is copied in runs, from the end of what was
/// last replaced or dropped.
fn render(sql: &str, toks: &[Token], out: &mut String) {
    let mut copied = 0;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.kind {
            Kind::Literal => {
                out.push_str(&sql[copied..t.start]);
                out.push('?');
                copied = t.end;
            }
            Kind::Comment => {
                out.push_str(&sql[copied..t.start]);
                let glued_before = out
                    .as_bytes()
                    .last()
                    .is_some_and(|c| !c.is_ascii_whitespace());
                let glued_after = toks
                    .get(i + 1)
                    .is_some_and(|n| n.start == t.end && n.kind != Kind::Comment);
                if glued_before && glued_after {
                    out.push(' ');
                }
                copied = t.end;
            }
            Kind::Word if t.word == Some(Keyword::In) => {
                if let Some(end) = in_list_end(sql, toks, i + 1) {
                    out.push_str(&sql[copied..t.end]);
                    // The whitespace up to the `(`, without the comments.
                    let mut j = i + 1;
                    loop {
                        out.push_str(&sql[toks[j - 1].end..toks[j].start]);
                        if toks[j].kind == Kind::Punct {
                            break;
                        }
                        j += 1;
                    }
                    out.push_str("(?)");
                    copied = toks[end - 1].end;
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&sql[copied..]);
}

/// When tokens from `i` are `( ? , ? … )` with at least two items, each a
/// literal or a bare `?` placeholder: the index after the `)`.
fn in_list_end(sql: &str, toks: &[Token], mut i: usize) -> Option<usize> {
    let skip = |mut i: usize| {
        while toks.get(i).is_some_and(|t| t.kind == Kind::Comment) {
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
