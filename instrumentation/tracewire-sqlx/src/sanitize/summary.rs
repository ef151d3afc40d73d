//! The query summary (`db.query.summary`): the operations and their targets
//! in the order they appear, e.g. `SELECT orders customers` or
//! `INSERT shipping_details SELECT orders`.

use std::borrow::Cow;

use super::lexer::{Kind, Token};
use super::words::{Keyword, is_reserved};

/// Longest summary kept, per the conventions (255 characters).
const MAX_SUMMARY: usize = 255;

/// What the walk found besides the summary's text.
#[derive(Debug, Default)]
pub(crate) struct Found<'a> {
    /// How many operations (`SELECT`, `CREATE TABLE`, …) were found.
    pub(crate) operations: usize,
    /// The first of them.
    pub(crate) operation: Option<Cow<'a, str>>,
    /// How many collections (tables) were found.
    pub(crate) collections: usize,
    /// The first of them.
    pub(crate) collection: Option<&'a str>,
}

/// The summary's text, written into the end of a buffer that holds other
/// text before it.
struct Text<'b> {
    buf: &'b mut String,
    start: usize,
    full: bool,
}

impl Text<'_> {
    /// Adds a word, unless the summary would grow past [`MAX_SUMMARY`]
    /// (then no later word is added either).
    fn push(&mut self, part: &str) {
        if self.full {
            return;
        }
        let len = self.buf.len() - self.start;
        let extra = usize::from(len > 0) + part.len();
        if len + extra > MAX_SUMMARY {
            self.full = true;
            return;
        }
        if len > 0 {
            self.buf.push(' ');
        }
        self.buf.push_str(part);
    }
}

struct Walker<'a, 't, 'b> {
    sql: &'a str,
    toks: &'t [Token],
    text: Text<'b>,
    found: Found<'a>,
}

impl<'a> Walker<'a, '_, '_> {
    fn text(&self, i: usize) -> &'a str {
        let t = self.toks[i];
        &self.sql[t.start..t.end]
    }

    fn kind(&self, i: usize) -> Option<Kind> {
        self.toks.get(i).map(|t| t.kind)
    }

    fn is_punct(&self, i: usize, c: u8) -> bool {
        self.toks.get(i).is_some_and(|t| {
            t.kind == Kind::Punct && t.end - t.start == 1 && self.sql.as_bytes()[t.start] == c
        })
    }

    /// Whether token `i` is the keyword `w`.
    fn is_word(&self, i: usize, w: Keyword) -> bool {
        self.toks.get(i).is_some_and(|t| t.word == Some(w))
    }

    /// Whether token `i` can start a name: an identifier that is not a
    /// reserved word, or a quoted identifier.
    fn is_name(&self, i: usize) -> bool {
        match self.kind(i) {
            Some(Kind::Word) => !is_reserved(self.toks[i].word),
            Some(Kind::QuotedIdent) => true,
            _ => false,
        }
    }

    /// A possibly qualified name (`a`, `dbo.Table`, `"s"."t"`) starting at
    /// `i`: its text and the index after it.
    fn name(&self, i: usize) -> Option<(&'a str, usize)> {
        if !self.is_name(i) {
            return None;
        }
        let mut end = i + 1;
        while self.is_punct(end, b'.')
            && matches!(self.kind(end + 1), Some(Kind::Word | Kind::QuotedIdent))
        {
            end += 2;
        }
        let text = &self.sql[self.toks[i].start..self.toks[end - 1].end];
        Some((text, end))
    }

    fn push_op(&mut self, op: &'a str) {
        self.text.push(op);
        self.add_op(Cow::Borrowed(op));
    }

    fn add_op(&mut self, op: Cow<'a, str>) {
        if self.found.operations == 0 {
            self.found.operation = Some(op);
        }
        self.found.operations += 1;
    }

    fn push_target(&mut self, name: &'a str) {
        self.text.push(name);
        if self.found.collections == 0 {
            self.found.collection = Some(name);
        }
        self.found.collections += 1;
    }

    /// Skips keywords from `skip` starting at `i`.
    fn skip_words(&self, mut i: usize, skip: &[Keyword]) -> usize {
        while self
            .toks
            .get(i)
            .and_then(|t| t.word)
            .is_some_and(|w| skip.contains(&w))
        {
            i += 1;
        }
        i
    }

    /// After `FROM`/`JOIN`/`INTO`/`USING`: a table, or with `list` a
    /// comma-separated list of tables with optional aliases. Returns where
    /// to continue.
    fn tables(&mut self, mut i: usize, list: bool, allow_call: bool) -> usize {
        loop {
            i = self.skip_words(
                i,
                &[
                    Keyword::Only,
                    Keyword::Lateral,
                    Keyword::Ignore,
                    Keyword::LowPriority,
                ],
            );
            let Some((name, end)) = self.name(i) else {
                return i;
            };
            i = end;
            if !allow_call && self.is_punct(i, b'(') {
                // A table function such as generate_series(…): not a table.
            } else {
                self.push_target(name);
            }
            if !list {
                return i;
            }
            if self.is_word(i, Keyword::As) {
                i += 1;
            }
            if self.is_name(i) {
                i += 1;
            }
            if self.is_punct(i, b',') {
                i += 1;
            } else {
                return i;
            }
        }
    }

    /// `CREATE`/`ALTER`/`DROP`/`TRUNCATE` … up to the object's name.
    fn ddl(&mut self, i: usize) -> usize {
        let mut j = self.skip_words(
            i + 1,
            &[
                Keyword::Or,
                Keyword::Replace,
                Keyword::Temp,
                Keyword::Temporary,
                Keyword::Unlogged,
                Keyword::Unique,
                Keyword::Global,
                Keyword::Local,
            ],
        );
        let mut op = Cow::Borrowed(self.text(i));
        self.text.push(self.text(i));
        while self
            .toks
            .get(j)
            .is_some_and(|t| t.word.is_some_and(is_object_type))
        {
            let word = self.text(j);
            self.text.push(word);
            if self.found.operations == 0 {
                let op = op.to_mut();
                op.push(' ');
                op.push_str(word);
            }
            j += 1;
        }
        self.add_op(op);
        j = self.skip_words(
            j,
            &[
                Keyword::If,
                Keyword::Not,
                Keyword::Exists,
                Keyword::Concurrently,
                Keyword::Only,
            ],
        );
        if let Some((name, after)) = self.name(j) {
            self.push_target(name);
            j = after;
        }
        j
    }

    fn walk(&mut self) {
        let n = self.toks.len();
        let mut i = 0;
        let mut stmt_start = true;
        // For each open parenthesis: whether it holds function arguments.
        let mut parens = Parens::default();
        while i < n {
            let kind = self.toks[i].kind;
            if kind == Kind::Punct {
                match self.sql.as_bytes()[self.toks[i].start] {
                    b';' => {
                        stmt_start = true;
                        parens.clear();
                    }
                    b'(' => {
                        let call = i > 0 && self.is_name(i - 1);
                        parens.push(call);
                    }
                    b')' => {
                        parens.pop();
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            if kind != Kind::Word {
                stmt_start = false;
                i += 1;
                continue;
            }
            let in_call = parens.last();
            let word = self.toks[i].word;
            let prev_is = |w: Keyword| i > 0 && self.is_word(i - 1, w);
            let at_start = stmt_start;
            stmt_start = false;
            match word {
                Some(Keyword::Select) => {
                    self.push_op(self.text(i));
                    i += 1;
                }
                Some(Keyword::Insert | Keyword::Merge) => {
                    self.push_op(self.text(i));
                    i += 1;
                }
                Some(Keyword::Replace | Keyword::Upsert) if at_start => {
                    self.push_op(self.text(i));
                    i += 1;
                }
                Some(Keyword::Update) => {
                    if prev_is(Keyword::Do)
                        || prev_is(Keyword::Key)
                        || prev_is(Keyword::For)
                        || prev_is(Keyword::On)
                    {
                        i += 1;
                    } else {
                        self.push_op(self.text(i));
                        i = self.tables(i + 1, false, false);
                    }
                }
                Some(Keyword::Delete) => {
                    if prev_is(Keyword::On) {
                        i += 1;
                    } else {
                        self.push_op(self.text(i));
                        i += 1;
                    }
                }
                Some(Keyword::From | Keyword::Join) if !in_call => {
                    i = self.tables(i + 1, word == Some(Keyword::From), false);
                }
                Some(Keyword::Using) if !in_call => {
                    i = self.tables(i + 1, true, false);
                }
                Some(Keyword::Into) if !in_call => {
                    i = self.tables(i + 1, false, true);
                }
                Some(Keyword::Create | Keyword::Alter | Keyword::Drop | Keyword::Truncate)
                    if at_start =>
                {
                    i = self.ddl(i);
                    i = self.skip_statement(i);
                }
                Some(Keyword::Explain) if at_start => {
                    self.text.push(self.text(i));
                    stmt_start = true;
                    i = self.skip_words(
                        i + 1,
                        &[
                            Keyword::Analyze,
                            Keyword::Verbose,
                            Keyword::Query,
                            Keyword::Plan,
                        ],
                    );
                }
                Some(Keyword::With | Keyword::Values | Keyword::Table) if at_start => {
                    i += 1;
                }
                Some(Keyword::Call | Keyword::Exec | Keyword::Execute) if at_start => {
                    self.push_op(self.text(i));
                    if let Some((name, _)) = self.name(i + 1) {
                        self.text.push(name);
                    }
                    i = self.skip_statement(i + 1);
                }
                _ if at_start => {
                    // BEGIN, COMMIT, SET, SHOW, PRAGMA, VACUUM, …
                    self.push_op(self.text(i));
                    i = self.skip_statement(i + 1);
                }
                _ => i += 1,
            }
        }
    }

    /// The index of the next `;` (or the end).
    fn skip_statement(&self, mut i: usize) -> usize {
        while i < self.toks.len() && !self.is_punct(i, b';') {
            i += 1;
        }
        i
    }
}

/// Summarizes the tokens of `sql` (`comments`: whether any token is a
/// comment), writing the summary at the end of `buf`.
pub(crate) fn summarize<'a>(
    sql: &'a str,
    toks: &[Token],
    comments: bool,
    buf: &mut String,
) -> Found<'a> {
    let filtered: Vec<Token>;
    let toks = if comments {
        filtered = toks
            .iter()
            .filter(|t| t.kind != Kind::Comment)
            .copied()
            .collect();
        &filtered
    } else {
        toks
    };
    let start = buf.len();
    let mut walker = Walker {
        sql,
        toks,
        text: Text {
            buf,
            start,
            full: false,
        },
        found: Found::default(),
    };
    walker.walk();
    walker.found
}

/// The open parentheses, innermost last: whether each holds function
/// arguments. The innermost 64 fit in a word.
#[derive(Default)]
struct Parens {
    bits: u64,
    depth: usize,
    deeper: Vec<bool>,
}

impl Parens {
    fn push(&mut self, call: bool) {
        if self.depth < 64 {
            self.bits = (self.bits & !(1 << self.depth)) | (u64::from(call) << self.depth);
        } else {
            self.deeper.push(call);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn last(&self) -> bool {
        match self.depth {
            0 => false,
            d if d <= 64 => self.bits & (1 << (d - 1)) != 0,
            _ => self.deeper.last().copied().unwrap_or(false),
        }
    }

    fn clear(&mut self) {
        self.depth = 0;
        self.deeper.clear();
    }
}

fn is_object_type(word: Keyword) -> bool {
    matches!(
        word,
        Keyword::Table
            | Keyword::Index
            | Keyword::View
            | Keyword::Materialized
            | Keyword::Sequence
            | Keyword::Schema
            | Keyword::Database
            | Keyword::Function
            | Keyword::Procedure
            | Keyword::Trigger
            | Keyword::Type
            | Keyword::Extension
            | Keyword::Domain
            | Keyword::Role
            | Keyword::User
    )
}
