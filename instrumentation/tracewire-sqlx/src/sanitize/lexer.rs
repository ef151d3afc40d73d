//! A byte-level SQL tokenizer: just enough of SQL's lexical rules to find
//! every literal, comment, identifier and placeholder. It never fails: an
//! unterminated string or comment runs to the end of the input.
//!
//! Whitespace is not a token: the gaps between tokens are whitespace.

use super::Dialect;
use super::words::{self, Keyword};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `-- …`, `/* … */` and (MySQL) `# …`.
    Comment,
    /// A bare word: a keyword or an identifier.
    Word,
    /// `"ident"`, `` `ident` `` or (SQLite) `[ident]`.
    QuotedIdent,
    /// A string, number, hex, boolean or dollar-quoted literal.
    Literal,
    /// `?`, `?1`, `$1`, `:name`, `@name`, `$name`.
    Placeholder,
    /// Any other single byte, or `::`.
    Punct,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    /// For a [`Kind::Word`], the keyword it is, if any; otherwise `None`.
    pub(crate) word: Option<Keyword>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Byte classes, in [`CLASS`].
const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT: u8 = 4;
const DIGIT: u8 = 8;

/// The class bits of every byte value.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            class |= SPACE;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            class |= IDENT_START | IDENT;
        }
        if c.is_ascii_digit() {
            class |= DIGIT | IDENT;
        }
        if c == b'$' {
            class |= IDENT;
        }
        t[b] = class;
        b += 1;
    }
    t
};

#[inline]
fn is_ident_start(b: u8) -> bool {
    CLASS[b as usize] & IDENT_START != 0
}

#[inline]
fn is_ident(b: u8) -> bool {
    CLASS[b as usize] & IDENT != 0
}

/// Whether a token can end an operand, so that a following `+`/`-` is a
/// binary operator rather than a sign. A literal does not count: the
/// conventions' cases read `99+100` as two literals.
fn ends_operand(src: &[u8], tok: &Token) -> bool {
    match tok.kind {
        Kind::Word => !words::is_reserved(tok.word),
        Kind::QuotedIdent | Kind::Placeholder => true,
        Kind::Punct => matches!(src[tok.start], b')' | b']' | b'}'),
        Kind::Literal | Kind::Comment => false,
    }
}

/// Splits `sql` into tokens, in order; whatever lies between two tokens
/// (or before the first, or after the last) is whitespace. Returns whether
/// any token is a comment.
pub(crate) fn tokenize(sql: &str, dialect: Dialect, out: &mut Vec<Token>) -> bool {
    let src = sql.as_bytes();
    let n = src.len();
    let mut i = 0;
    let mut comments = false;
    // The last token that is not a comment.
    let mut last_sig: Option<Token> = None;
    loop {
        while i < n && CLASS[src[i] as usize] & SPACE != 0 {
            i += 1;
        }
        if i >= n {
            return comments;
        }
        let start = i;
        let b = src[i];
        let next = src.get(i + 1).copied();
        let mut word_id = None;
        let kind = match b {
            _ if is_ident_start(b) => word(src, i, dialect, &mut i, &mut word_id),
            b'-' if next == Some(b'-') => {
                i = line_end(src, i);
                Kind::Comment
            }
            b'#' if dialect == Dialect::MySql => {
                i = line_end(src, i);
                Kind::Comment
            }
            b'/' if next == Some(b'*') => {
                i = block_comment_end(src, i, dialect == Dialect::Postgres);
                Kind::Comment
            }
            b'\'' => {
                i = quoted_end(src, i + 1, b'\'', dialect == Dialect::MySql);
                Kind::Literal
            }
            b'"' if dialect == Dialect::MySql => {
                i = quoted_end(src, i + 1, b'"', true);
                Kind::Literal
            }
            b'"' => {
                i = quoted_end(src, i + 1, b'"', false);
                Kind::QuotedIdent
            }
            b'`' => {
                i = quoted_end(src, i + 1, b'`', false);
                Kind::QuotedIdent
            }
            b'[' if dialect == Dialect::Sqlite => {
                i = src[i + 1..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(n, |p| i + 2 + p);
                Kind::QuotedIdent
            }
            b'$' => {
                let (end, kind) = dollar(src, i);
                i = end;
                kind
            }
            b'?' => {
                i += 1;
                while i < n && src[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Placeholder
            }
            b':' if next == Some(b':') => {
                i += 2;
                Kind::Punct
            }
            b':' if next.is_some_and(is_ident_start) => {
                i = ident_end(src, i + 1);
                Kind::Placeholder
            }
            b'@' => {
                i += 1;
                if i < n && src[i] == b'@' {
                    i += 1;
                }
                i = ident_end(src, i);
                Kind::Placeholder
            }
            b'0'..=b'9' => {
                i = number_end(src, i);
                Kind::Literal
            }
            b'.' if next.is_some_and(|c| c.is_ascii_digit()) => {
                i = number_end(src, i);
                Kind::Literal
            }
            b'+' | b'-'
                if starts_number(src, i + 1)
                    && !last_sig.is_some_and(|t| ends_operand(src, &t)) =>
            {
                i = number_end(src, i + 1);
                Kind::Literal
            }
            _ => {
                i += 1;
                Kind::Punct
            }
        };
        let tok = Token {
            kind,
            word: word_id,
            start,
            end: i,
        };
        out.push(tok);
        if kind == Kind::Comment {
            comments = true;
        } else {
            last_sig = Some(tok);
        }
    }
}

fn starts_number(src: &[u8], i: usize) -> bool {
    match src.get(i) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.') => src.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn line_end(src: &[u8], i: usize) -> usize {
    src[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(src.len(), |p| i + p)
}

fn block_comment_end(src: &[u8], mut i: usize, nested: bool) -> usize {
    let n = src.len();
    let mut depth = 0usize;
    while i < n {
        if src[i] == b'/' && src.get(i + 1) == Some(&b'*') {
            if depth == 0 || nested {
                depth += 1;
            }
            i += 2;
        } else if src[i] == b'*' && src.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    n
}

/// The end (exclusive) of a quoted run whose opening quote is just before
/// `i`; a doubled quote is an escaped quote, and with `backslash` so is
/// `\` before any byte.
fn quoted_end(src: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    let n = src.len();
    while i < n {
        let c = src[i];
        if backslash && c == b'\\' {
            i += 2;
        } else if c == quote {
            if src.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    n
}

fn ident_end(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && is_ident(src[i]) {
        i += 1;
    }
    i
}

/// `$1` (placeholder), `$tag$…$tag$` or `$$…$$` (literal), `$name`
/// (placeholder), or a lone `$`.
fn dollar(src: &[u8], i: usize) -> (usize, Kind) {
    let n = src.len();
    let mut j = i + 1;
    if j < n && src[j].is_ascii_digit() {
        while j < n && src[j].is_ascii_digit() {
            j += 1;
        }
        return (j, Kind::Placeholder);
    }
    while j < n && (src[j].is_ascii_alphanumeric() || src[j] == b'_' || src[j] >= 0x80) {
        j += 1;
    }
    if j < n && src[j] == b'$' {
        let tag = &src[i..=j];
        let body = j + 1;
        let end = src[body..]
            .windows(tag.len())
            .position(|w| w == tag)
            .map_or(n, |p| body + p + tag.len());
        return (end, Kind::Literal);
    }
    if j > i + 1 {
        (j, Kind::Placeholder)
    } else {
        (i + 1, Kind::Punct)
    }
}

/// The end of a number starting at `i` (digits, or `.` then digits): hex
/// `0x…`, decimals, exponents, `_` separators, and any letters glued to it
/// (so nothing of a malformed literal survives).
fn number_end(src: &[u8], mut i: usize) -> usize {
    let n = src.len();
    if src[i] == b'0' && matches!(src.get(i + 1), Some(b'x' | b'X')) {
        return ident_end(src, i + 2);
    }
    while i < n && (src[i].is_ascii_digit() || src[i] == b'_') {
        i += 1;
    }
    if i < n && src[i] == b'.' && src.get(i + 1).is_none_or(|c| !is_ident_start(*c)) {
        i += 1;
        while i < n && (src[i].is_ascii_digit() || src[i] == b'_') {
            i += 1;
        }
    }
    if i < n && matches!(src[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < n && matches!(src[j], b'+' | b'-') {
            j += 1;
        }
        if j < n && src[j].is_ascii_digit() {
            i = j;
            while i < n && src[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    ident_end(src, i)
}

/// A word (its keyword, if any, in `id`), a prefixed string (`E'…'`, `X'…'`, `B'…'`,
/// `N'…'`, `U&'…'`) or a boolean literal.
fn word(
    src: &[u8],
    start: usize,
    dialect: Dialect,
    end: &mut usize,
    id: &mut Option<Keyword>,
) -> Kind {
    let n = src.len();
    let mut i = ident_end(src, start);
    let w = &src[start..i];
    if i < n && src[i] == b'\'' && w.len() == 1 {
        let backslash = matches!(w[0], b'e' | b'E') || dialect == Dialect::MySql;
        if matches!(w[0], b'e' | b'E' | b'x' | b'X' | b'b' | b'B' | b'n' | b'N') {
            *end = quoted_end(src, i + 1, b'\'', backslash);
            return Kind::Literal;
        }
    }
    if w.len() == 1
        && matches!(w[0], b'u' | b'U')
        && src.get(i) == Some(&b'&')
        && matches!(src.get(i + 1), Some(b'\'' | b'"'))
    {
        let quote = src[i + 1];
        i = quoted_end(src, i + 2, quote, false);
        *end = i;
        return if quote == b'\'' {
            Kind::Literal
        } else {
            Kind::QuotedIdent
        };
    }
    *end = i;
    match words::keyword(&src[start..i]) {
        Some(Keyword::True | Keyword::False) => Kind::Literal,
        word => {
            *id = word;
            Kind::Word
        }
    }
}
