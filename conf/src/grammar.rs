//! Lexer and parser of SHISA's configuration language (KAME `shisad/cftoken.l`,
//! `cfparse.y`), generalised so that our own keys use the same grammar.
//!
//! ```text
//! file       = statement*
//! statement  = value+ ( ";" | "{" statement* "}" ";" )
//! value      = word | "quoted string" | 'quoted string'
//! comment    = "#" up to the end of the line, where a token could start
//! ```
//!
//! A statement is its values (the first is its name: `home-registration-lifetime 10;`),
//! optionally followed by a block (`interface mip0 { ... };`). Rows of the SHISA tables
//! (`prefixtable`, `static-tunnel`, `ipv4-dummy-tunnel`) are statements too, whose first
//! value is an address or interface name. Inside those table blocks a row may also end at
//! the end of its line, because SHISA's own samples sometimes leave out the `;`; the
//! statement then records [`Terminator::Newline`].
//!
//! Words are runs of anything but white space, `{`, `}`, `;` and quotes, so addresses
//! (`2001:db8::1`), prefixes (`192.0.2.16/28`), paths and NAIs are single values. Each
//! value is classified ([`ValueKind`]) but keeps its text, so the typed layer can say
//! exactly what was wrong with it. The parser never panics and bounds block nesting.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ConfError;

/// Blocks deeper than this are refused (SHISA nests at most 2: `interface { prefixtable {} }`).
pub const MAX_DEPTH: usize = 8;

/// Names of the blocks whose rows may end at a line end instead of `;`.
pub const TABLE_BLOCKS: &[&str] = &["prefixtable", "static-tunnel", "ipv4-dummy-tunnel"];

/// A place in a file: 1-based line and column (columns count characters, a tab is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What a value looks like. The text is always kept in [`Value::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// Decimal digits only, fitting in a u64.
    Number(u64),
    /// An IPv6 or IPv4 address.
    Address(IpAddr),
    /// `address/length` with a valid length (host bits may be set; the typed layer checks).
    Prefix(IpNet),
    /// A quoted string (`"..."` or `'...'`), with escapes resolved.
    Quoted,
    /// Anything else: keywords, interface names, paths, NAIs, hex keys.
    Word,
}

/// One value of a statement, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The text, without quotes for a quoted string.
    pub text: String,
    /// Its classification.
    pub kind: ValueKind,
    /// Where it starts (the opening quote for a quoted string).
    pub location: Location,
}

impl Value {
    fn new(text: String, quoted: bool, location: Location) -> Self {
        let kind = if quoted {
            ValueKind::Quoted
        } else {
            classify(&text)
        };
        Value {
            text,
            kind,
            location,
        }
    }

    /// True for a quoted string.
    pub fn is_quoted(&self) -> bool {
        self.kind == ValueKind::Quoted
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_quoted() {
            write!(f, "\"{}\"", self.text.escape_default())
        } else {
            f.write_str(&self.text)
        }
    }
}

fn classify(text: &str) -> ValueKind {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse() {
            return ValueKind::Number(n);
        }
        return ValueKind::Word;
    }
    if let Ok(a) = text.parse::<IpAddr>() {
        return ValueKind::Address(a);
    }
    if let Ok(p) = text.parse::<IpNet>() {
        return ValueKind::Prefix(p);
    }
    ValueKind::Word
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// With `;` (after the block's `}` for a block statement).
    Semicolon,
    /// At the end of its line: only for rows of a table block (SHISA samples omit `;`).
    Newline,
}

/// A `{ ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The statements (or table rows) inside.
    pub statements: Vec<Statement>,
    /// Where `{` is.
    pub open: Location,
    /// Where `}` is.
    pub close: Location,
}

/// One statement: `name value...;` or `name value... { ... };`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The values; never empty. The first is the statement's name (or a row's first field).
    pub values: Vec<Value>,
    /// The block, for `name [args] { ... };`.
    pub block: Option<Block>,
    /// How the statement ended.
    pub terminator: Terminator,
}

impl Statement {
    /// The statement's name: its first value's text.
    pub fn name(&self) -> &str {
        &self.values[0].text
    }

    /// The values after the name.
    pub fn args(&self) -> &[Value] {
        &self.values[1..]
    }

    /// Where the statement starts.
    pub fn location(&self) -> Location {
        self.values[0].location
    }

    /// The statement's values as written, for messages (`home-registration-lifetime 100`).
    pub fn words(&self) -> String {
        words(&self.values)
    }
}

fn words(values: &[Value]) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&v.to_string());
    }
    // Keep messages readable on absurd input.
    if s.chars().count() > 60 {
        s = s.chars().take(57).collect::<String>() + "...";
    }
    s
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The file name used in messages.
    pub file: String,
    /// Top-level statements, in order.
    pub statements: Vec<Statement>,
}

impl Document {
    /// Parses SHISA-grammar text. `file` is used in error messages only.
    pub fn parse(text: &str, file: &str) -> Result<Document, ConfError> {
        let tokens = lex(text, file)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            file,
        };
        let statements = p.statements(0, false, None)?;
        Ok(Document {
            file: file.to_owned(),
            statements,
        })
    }

    /// Parses a file of table rows, one per line, `;` optional: the format of SHISA's
    /// separate `prefixtable.cf` and `statictun.txt`.
    pub fn parse_rows(text: &str, file: &str) -> Result<Document, ConfError> {
        let tokens = lex(text, file)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            file,
        };
        let statements = p.statements(0, true, None)?;
        Ok(Document {
            file: file.to_owned(),
            statements,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Open,
    Close,
    Semi,
    Value(Value),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) location: Location,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "end of file".to_owned(),
        Some(Tok::Open) => "'{'".to_owned(),
        Some(Tok::Close) => "'}'".to_owned(),
        Some(Tok::Semi) => "';'".to_owned(),
        Some(Tok::Value(v)) => format!("'{}'", words(std::slice::from_ref(v))),
    }
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || matches!(c, '{' | '}' | ';' | '"' | '\''))
}

/// Splits text into tokens. `#` starts a comment where a token could start.
pub(crate) fn lex(text: &str, file: &str) -> Result<Vec<Token>, ConfError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u32 = 1;
    let mut column: u32 = 1;
    // Advances one character, keeping line and column.
    macro_rules! bump {
        () => {{
            let c = chars.next();
            if c == Some('\n') {
                line = line.saturating_add(1);
                column = 1;
            } else if c.is_some() {
                column = column.saturating_add(1);
            }
            c
        }};
    }
    while let Some(&c) = chars.peek() {
        let here = Location { line, column };
        match c {
            '#' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    bump!();
                }
            }
            '{' | '}' | ';' => {
                bump!();
                let tok = match c {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    _ => Tok::Semi,
                };
                tokens.push(Token {
                    tok,
                    location: here,
                });
            }
            '"' | '\'' => {
                let quote = c;
                bump!();
                let mut s = String::new();
                loop {
                    match bump!() {
                        None | Some('\n') => {
                            return Err(ConfError::at(
                                file,
                                here,
                                format!("unterminated string: expected a closing {quote}"),
                            ));
                        }
                        Some(c) if c == quote => break,
                        Some('\\') => match bump!() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c @ ('\\' | '"' | '\'')) => s.push(c),
                            other => {
                                let shown = other.map(|c| c.escape_default().to_string());
                                return Err(ConfError::at(
                                    file,
                                    Location { line, column },
                                    format!(
                                        "unknown escape '\\{}' in string: use \\\\, \\\", \\', \\n or \\t",
                                        shown.unwrap_or_default()
                                    ),
                                ));
                            }
                        },
                        Some(c) => s.push(c),
                    }
                }
                tokens.push(Token {
                    tok: Tok::Value(Value::new(s, true, here)),
                    location: here,
                });
            }
            c if c.is_whitespace() => {
                bump!();
            }
            c if c.is_control() => {
                return Err(ConfError::at(
                    file,
                    here,
                    format!("unexpected control character {:?}", c),
                ));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    s.push(c);
                    bump!();
                }
                tokens.push(Token {
                    tok: Tok::Value(Value::new(s, false, here)),
                    location: here,
                });
            }
        }
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    file: &'a str,
}

/// The block being parsed, for messages: its statement's words and where `{` was.
struct Enclosing {
    words: String,
    open: Location,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn here(&self) -> Location {
        match self.peek() {
            Some(t) => t.location,
            // End of file: just after the last token.
            None => self
                .tokens
                .last()
                .map(|t| Location {
                    line: t.location.line,
                    column: t.location.column.saturating_add(1),
                })
                .unwrap_or(Location { line: 1, column: 1 }),
        }
    }

    fn err(&self, message: String) -> ConfError {
        ConfError::at(self.file, self.here(), message)
    }

    /// Statements up to `}` (inside a block) or end of file (top level).
    fn statements(
        &mut self,
        depth: usize,
        rows: bool,
        enclosing: Option<&Enclosing>,
    ) -> Result<Vec<Statement>, ConfError> {
        let mut out = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                None => {
                    if let Some(e) = enclosing {
                        return Err(self.err(format!(
                            "expected '}}' to close '{}' block opened at {}, found end of file",
                            e.words, e.open
                        )));
                    }
                    return Ok(out);
                }
                Some(Tok::Close) => {
                    if enclosing.is_some() {
                        return Ok(out);
                    }
                    return Err(self.err("unexpected '}' with no open block".to_owned()));
                }
                Some(Tok::Semi) => {
                    return Err(self.err(
                        "expected a statement, found ';' (an empty statement or a doubled ';')"
                            .to_owned(),
                    ));
                }
                Some(Tok::Open) => {
                    return Err(self.err(
                        "expected a statement name before '{' (e.g. 'interface eth0 {')".to_owned(),
                    ));
                }
                Some(Tok::Value(_)) => out.push(self.statement(depth, rows)?),
            }
        }
    }

    fn statement(&mut self, depth: usize, rows: bool) -> Result<Statement, ConfError> {
        let mut values: Vec<Value> = Vec::new();
        loop {
            let next = self.peek().cloned();
            match next.map(|t| (t.tok, t.location)) {
                Some((Tok::Value(v), loc)) => {
                    if rows
                        && let Some(last) = values.last()
                        && loc.line > last.location.line
                    {
                        // A row ended at its line's end, as in SHISA's samples.
                        return Ok(Statement {
                            values,
                            block: None,
                            terminator: Terminator::Newline,
                        });
                    }
                    values.push(v);
                    self.pos += 1;
                }
                Some((Tok::Semi, _)) => {
                    self.pos += 1;
                    return Ok(Statement {
                        values,
                        block: None,
                        terminator: Terminator::Semicolon,
                    });
                }
                Some((Tok::Open, open)) => {
                    if depth + 1 >= MAX_DEPTH {
                        return Err(
                            self.err(format!("blocks nested deeper than {MAX_DEPTH} levels"))
                        );
                    }
                    self.pos += 1;
                    let enclosing = Enclosing {
                        words: words(&values),
                        open,
                    };
                    let table = TABLE_BLOCKS.contains(&values[0].text.as_str());
                    let statements = self.statements(depth + 1, table, Some(&enclosing))?;
                    // statements() returns only at '}' when enclosed.
                    let close = self.here();
                    self.pos += 1;
                    match self.peek().map(|t| &t.tok) {
                        Some(Tok::Semi) => self.pos += 1,
                        _ => {
                            return Err(self.err(format!(
                                "expected ';' after '}}' closing the '{}' block, found {}",
                                enclosing.words,
                                describe(self.peek())
                            )));
                        }
                    }
                    return Ok(Statement {
                        values,
                        block: Some(Block {
                            statements,
                            open,
                            close,
                        }),
                        terminator: Terminator::Semicolon,
                    });
                }
                Some((Tok::Close, _)) | None => {
                    if rows && self.peek().is_some() {
                        // `explicit 800\n};`: the last row of a SHISA table without ';'.
                        return Ok(Statement {
                            values,
                            block: None,
                            terminator: Terminator::Newline,
                        });
                    }
                    if rows && self.peek().is_none() && depth == 0 {
                        return Ok(Statement {
                            values,
                            block: None,
                            terminator: Terminator::Newline,
                        });
                    }
                    return Err(self.err(format!(
                        "expected ';' after '{}', found {}",
                        words(&values),
                        describe(self.peek())
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Document, ConfError> {
        Document::parse(s, "t.conf")
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn statements_blocks_and_positions() {
        let doc = parse(
            "debug 1;\n\ninterface mip0 {\n\thome-registration-lifetime 10; # comment\n\tprefixtable {\n\t\t2001:db8:1::100 2001:db8:100::/48 explicit;\n\t};\n};\n",
        )
        .unwrap();
        assert_eq!(doc.statements.len(), 2);
        let debug = &doc.statements[0];
        assert_eq!(debug.name(), "debug");
        assert_eq!(debug.args()[0].kind, ValueKind::Number(1));
        assert_eq!(debug.location(), Location { line: 1, column: 1 });
        let iface = &doc.statements[1];
        assert_eq!(iface.name(), "interface");
        assert_eq!(iface.args()[0].text, "mip0");
        let block = iface.block.as_ref().unwrap();
        assert_eq!(
            block.open,
            Location {
                line: 3,
                column: 16
            }
        );
        assert_eq!(
            block.statements[0].location(),
            Location { line: 4, column: 2 }
        );
        let pt = &block.statements[1];
        let row = &pt.block.as_ref().unwrap().statements[0];
        assert!(matches!(row.values[0].kind, ValueKind::Address(_)));
        assert!(matches!(row.values[1].kind, ValueKind::Prefix(_)));
        assert_eq!(row.values[2].text, "explicit");
        assert_eq!(
            row.values[1].location,
            Location {
                line: 6,
                column: 19
            }
        );
        assert_eq!(row.terminator, Terminator::Semicolon);
    }

    #[test]
    fn quoted_strings_and_hash_inside_words() {
        let doc = parse("key \"a b;#{}\" 'it''s';\nauth-database /etc/a#b;").unwrap();
        let s = &doc.statements[0];
        assert_eq!(s.args()[0].text, "a b;#{}");
        assert!(s.args()[0].is_quoted());
        assert_eq!(s.args()[1].text, "it");
        assert_eq!(s.args()[2].text, "s");
        assert_eq!(doc.statements[1].args()[0].text, "/etc/a#b");
        let doc = parse("k \"q\\\"x\\\\\";").unwrap();
        assert_eq!(doc.statements[0].args()[0].text, "q\"x\\");
    }

    #[test]
    fn table_rows_without_semicolon() {
        let doc = parse(
            "prefixtable {\n  2001:db8::1 2001:db8:a:: 64 explicit 111\n  2001:db8::1 2001:db8:b::/64 explicit\n};",
        )
        .unwrap();
        let rows = &doc.statements[0].block.as_ref().unwrap().statements;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].values.len(), 5);
        assert_eq!(rows[0].terminator, Terminator::Newline);
        assert_eq!(rows[1].values.len(), 3);
        // Outside tables, a newline does not end a statement.
        // (The typed layer reports the missing ';' when a key gets too many values.)
        assert_eq!(
            parse("debug 1\nnamelookup 0;").unwrap().statements[0]
                .values
                .len(),
            4
        );
    }

    #[test]
    fn row_files() {
        let doc = Document::parse_rows(
            "#NEMO Prefix Table\n2001:db8::1 2001:db8:a:: 64 explicit 111\n2001:db8::1 192.0.2.16/28 implicit;\n",
            "prefixtable.cf",
        )
        .unwrap();
        assert_eq!(doc.statements.len(), 2);
        assert_eq!(doc.statements[1].values.len(), 3);
    }

    #[test]
    fn errors_name_place_and_expectation() {
        assert_eq!(
            err("interface eth0 {\n    home-registration-lifetime 100\n};"),
            "t.conf:3:1: expected ';' after 'home-registration-lifetime 100', found '}'"
        );
        assert_eq!(
            err("debug 1"),
            "t.conf:1:8: expected ';' after 'debug 1', found end of file"
        );
        assert_eq!(
            err("interface eth0 {\n debug 1;\n"),
            "t.conf:2:10: expected '}' to close 'interface eth0' block opened at 1:16, found end of file"
        );
        assert_eq!(
            err("interface eth0 { debug 1; }\ndebug 2;"),
            "t.conf:2:1: expected ';' after '}' closing the 'interface eth0' block, found 'debug'"
        );
        assert_eq!(err("};"), "t.conf:1:1: unexpected '}' with no open block");
        assert_eq!(
            err("debug 1;;"),
            "t.conf:1:9: expected a statement, found ';' (an empty statement or a doubled ';')"
        );
        assert!(err("{ };").contains("expected a statement name before '{'"));
        assert!(err("key \"abc\n\";").starts_with("t.conf:1:5: unterminated string"));
        assert!(err("key \"\\q\";").contains("unknown escape"));
        assert!(err("a\u{1}b;").contains("control character"));
        let deep = "a {".repeat(MAX_DEPTH + 2);
        assert!(err(&deep).contains("nested deeper"));
    }

    #[test]
    fn empty_and_comment_only() {
        assert!(parse("").unwrap().statements.is_empty());
        assert!(parse("# only\n   \n#x").unwrap().statements.is_empty());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn never_panics_on_any_text(s in "\\PC*") {
                let _ = Document::parse(&s, "f");
                let _ = Document::parse_rows(&s, "f");
            }

            #[test]
            fn never_panics_on_grammar_soup(
                parts in proptest::collection::vec(
                    prop_oneof![
                        Just("{"), Just("}"), Just(";"), Just("\n"), Just(" "), Just("#"),
                        Just("\""), Just("'"), Just("interface"), Just("prefixtable"),
                        Just("2001:db8::1"), Just("192.0.2.0/24"), Just("64"), Just("\\"),
                        Just("explicit"), Just("é"), Just("\t"),
                    ],
                    0..64,
                )
            ) {
                let s: String = parts.concat();
                let _ = Document::parse(&s, "f");
                let _ = Document::parse_rows(&s, "f");
            }

            #[test]
            fn errors_point_inside_the_text(s in "[a-z0-9{};#\"' \n]{0,80}") {
                if let Err(ConfError::At { line, column, .. }) = Document::parse(&s, "f") {
                    let lines = s.split('\n').count() as u32;
                    prop_assert!(line >= 1 && line <= lines.max(1));
                    prop_assert!(column >= 1);
                }
            }
        }
    }
}
