//! The one literal syntax for keys, arguments and results, over [`aerospike::Value`].
//!
//! Anything [`print`] writes, [`parse`] reads back to the same value:
//!
//! | form | value |
//! |---|---|
//! | `nil` (also `null`) | nil |
//! | `true`, `false` | boolean |
//! | `5`, `-12` | integer (64-bit) |
//! | `5.0`, `-0.0`, `1e300`, `2.5E-3`, `inf`, `-inf`, `nan` | float (a `.` or an exponent makes a float) |
//! | `'text'`, `"text"` | string; escapes `\\ \' \" \n \r \t \0 \b \f \/ \uXXXX \u{X…}` |
//! | `x'0a1b'` | bytes, as hex digits |
//! | `geo'{"type":"Point","coordinates":[1,2]}'` | GeoJSON text (must be JSON) |
//! | `hll'0a1b'` | a HyperLogLog blob |
//! | `[1, 'a']` | list; a trailing comma is allowed |
//! | `{1: 'a', 'b': 2, x'01': 3}` | map keyed by integers, strings or bytes |
//!
//! Printing is deterministic: strings in single quotes, maps sorted by key in
//! the server's order (integers, then strings, then bytes). The few client
//! values that have no literal (`INF` and `*` bounds, particles the client
//! does not know) print in a readable form that does not parse.
//!
//! [`parse_arg`] is the command-line form: a bare word that is not a number,
//! `nil`, `true` or `false` is a string. [`pretty`] breaks big values over
//! lines, [`fold`] shortens them with `…` markers, and [`to_plain_json`],
//! [`to_typed_json`] and [`from_typed_json`] convert to and from JSON.

use std::fmt;

use aerospike::{IndexMap, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

/// How deep lists and maps may nest in parsed text (keeps the parser's stack bounded).
pub const MAX_DEPTH: usize = 128;

/// A literal that does not parse: where (1-based, in characters) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(f, "line {}, ", self.line)?;
        }
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// Where the error is in `text` (the text parsed), in characters from 0.
    pub fn offset(&self, text: &str) -> usize {
        let lines_before: usize = text
            .split('\n')
            .take(self.line - 1)
            .map(|line| line.chars().count() + 1)
            .sum();
        lines_before + self.column - 1
    }
}

/// Parses one value in the literal syntax (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut parser = Parser::new(&chars);
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.peek().is_some() {
        return Err(parser.error("unexpected text after the value"));
    }
    Ok(value)
}

/// Parses one value at the start of `text` (leading whitespace allowed) and
/// says how many characters it took: for grammars that embed literals.
pub fn parse_prefix(text: &str) -> Result<(Value, usize), ParseError> {
    let chars: Vec<char> = text.chars().collect();
    parse_prefix_at(&chars, 0)
}

/// Parses one value starting at `chars[start]` (leading whitespace allowed)
/// and says where it ended, for grammars that read many literals from one
/// text: no copy of the rest is made per value, so reading a list stays
/// linear. Errors count lines and columns from the start of `chars`.
pub fn parse_prefix_at(chars: &[char], start: usize) -> Result<(Value, usize), ParseError> {
    let mut parser = Parser::new(chars);
    parser.pos = start;
    parser.skip_ws();
    let value = parser.value(0)?;
    Ok((value, parser.pos))
}

/// Parses one command-line word: a literal when it looks like one (a number,
/// `nil`, `null`, `true`, `false`, `inf`, `-inf`, `nan`, or text starting with
/// a quote, `[`, `{`, `x'`, `geo'` or `hll'`), otherwise the word itself as a
/// string. So `count` → `'count'`, `5` → `5`, `'5'` → `'5'`, `[1,2]` → a list.
pub fn parse_arg(word: &str) -> Result<Value, ParseError> {
    if looks_like_literal(word.trim()) {
        parse(word)
    } else {
        Ok(Value::String(word.to_owned()))
    }
}

fn looks_like_literal(word: &str) -> bool {
    const WORDS: [&str; 8] = ["nil", "null", "true", "false", "inf", "-inf", "nan", "+inf"];
    const PREFIXES: [&str; 8] = ["x'", "x\"", "X'", "X\"", "geo'", "geo\"", "hll'", "hll\""];
    if WORDS.contains(&word) || PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    if word.starts_with(['[', '{', '\'', '"']) {
        return true;
    }
    let chars: Vec<char> = word.chars().collect();
    number_len(&chars, 0) == Some(chars.len()) && !chars.is_empty()
}

/// Length of the number lexeme at `start` (`-?digits(.digits)?([eE][+-]?digits)?`),
/// or `None` when no number starts there. Only the shape: range is checked later.
fn number_len(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    if chars.get(i) == Some(&'-') {
        i += 1;
    }
    let digits = |from: usize| {
        chars[from.min(chars.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let int_digits = digits(i);
    if int_digits == 0 {
        return None;
    }
    i += int_digits;
    if chars.get(i) == Some(&'.') {
        let frac = digits(i + 1);
        if frac == 0 {
            return None;
        }
        i += 1 + frac;
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        let exp = digits(j);
        if exp == 0 {
            return None;
        }
        i = j + exp;
    }
    Some(i - start)
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(chars: &'a [char]) -> Self {
        Parser { chars, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let before = &self.chars[..pos.min(self.chars.len())];
        let line = 1 + before.iter().filter(|&&c| c == '\n').count();
        let line_start = before.iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
        ParseError {
            line,
            column: pos - line_start + 1,
            message: message.into(),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            None => Err(self.error("expected a value, found the end of the input")),
            Some('[') => self.list(depth),
            Some('{') => self.map(depth),
            Some(q @ ('\'' | '"')) => Ok(Value::String(self.quoted(q)?)),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' || c == '+' => self.word(),
            Some(c) => Err(self.error(format!("expected a value, found {}", describe(c)))),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("values nest deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn list(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                Some(',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(']') {
                        self.pos += 1;
                        return Ok(Value::List(items));
                    }
                }
                _ => return Err(self.error("expected ',' or ']' after list element")),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut entries = IndexMap::new();
        self.skip_ws();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Value::OrderedMap(entries));
        }
        loop {
            let key_pos = self.pos;
            let key = self.value(depth + 1)?;
            if !key.is_valid_map_key() {
                return Err(self.error_at(
                    key_pos,
                    format!(
                        "map keys must be integers, strings or bytes, not {}",
                        type_name(&key)
                    ),
                ));
            }
            self.skip_ws();
            if self.peek() != Some(':') {
                return Err(self.error("expected ':' after map key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            if entries.contains_key(&key) {
                return Err(self.error_at(key_pos, format!("duplicate map key {}", print(&key))));
            }
            entries.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::OrderedMap(entries));
                }
                Some(',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some('}') {
                        self.pos += 1;
                        return Ok(Value::OrderedMap(entries));
                    }
                }
                _ => return Err(self.error("expected ',' or '}' after map value")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some('-') && self.peek_at(1).is_some_and(char::is_alphabetic) {
            self.pos += 1;
            let word = self.ident();
            if word == "inf" {
                return Ok(Value::from(f64::NEG_INFINITY));
            }
            return Err(self.error_at(
                start,
                format!("expected a number after '-', found '{word}'"),
            ));
        }
        let Some(len) = number_len(self.chars, start) else {
            return Err(self.number_shape_error(start));
        };
        self.pos = start + len;
        if let Some(c) = self
            .peek()
            .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        {
            return Err(self.error(format!("unexpected {} after the number", describe(c))));
        }
        let lexeme: String = self.chars[start..self.pos].iter().collect();
        if lexeme.contains(['.', 'e', 'E']) {
            let float: f64 = lexeme
                .parse()
                .map_err(|_| self.error_at(start, format!("'{lexeme}' is not a valid float")))?;
            // Rust rounds a float past f64's range to infinity; `inf` says that.
            if float.is_infinite() {
                return Err(self.error_at(
                    start,
                    format!("float {lexeme} is out of range (write inf or -inf for an infinity)"),
                ));
            }
            Ok(Value::from(float))
        } else {
            let int: i64 = lexeme.parse().map_err(|_| {
                self.error_at(start, format!("integer {lexeme} does not fit in 64 bits"))
            })?;
            Ok(Value::Int(int))
        }
    }

    /// Says which part of a malformed number is missing, pointing at it.
    fn number_shape_error(&self, start: usize) -> ParseError {
        let mut i = start;
        if self.chars.get(i) == Some(&'-') {
            i += 1;
        }
        if !self.chars.get(i).is_some_and(char::is_ascii_digit) {
            return self.error_at(i, "expected a digit after '-'");
        }
        while self.chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        if self.chars.get(i) == Some(&'.') {
            i += 1;
            if !self.chars.get(i).is_some_and(char::is_ascii_digit) {
                return self.error_at(i, "expected a digit after '.'");
            }
            while self.chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
        i += 1; // 'e' or 'E'
        if matches!(self.chars.get(i), Some('+' | '-')) {
            i += 1;
        }
        self.error_at(i, "expected a digit in the exponent")
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn word(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some('+') {
            self.pos += 1;
            if self.ident() == "inf" {
                return Ok(Value::from(f64::INFINITY));
            }
            return Err(self.error_at(start, "expected a value, found '+'"));
        }
        let word = self.ident();
        if let Some(q @ ('\'' | '"')) = self.peek() {
            match word.as_str() {
                "x" | "X" => return Ok(Value::Blob(self.hex(q)?)),
                "hll" => return Ok(Value::Hll(self.hex(q)?)),
                "geo" => {
                    let text = self.quoted(q)?;
                    if let Err(e) = serde_json::from_str::<Json>(&text) {
                        return Err(
                            self.error_at(start, format!("geo'…' holds no valid JSON: {e}"))
                        );
                    }
                    return Ok(Value::GeoJson(text));
                }
                _ => {}
            }
        }
        match word.as_str() {
            "nil" | "null" => Ok(Value::Nil),
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "inf" => Ok(Value::from(f64::INFINITY)),
            "nan" => Ok(Value::from(f64::NAN)),
            _ => Err(self.error_at(
                start,
                format!(
                    "unknown word '{word}' (strings need quotes: {})",
                    print_str(&word)
                ),
            )),
        }
    }

    /// A quoted string starting at the quote under the cursor.
    fn quoted(&mut self, quote: char) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        self.error_at(open, format!("string is not closed (no closing {quote})"))
                    );
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some('\\') => text.push(self.escape()?),
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, ParseError> {
        let backslash = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.error_at(backslash, "escape '\\' at the end of the input"));
        };
        self.pos += 1;
        Ok(match c {
            '\\' | '\'' | '"' | '/' => c,
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' if self.peek() == Some('{') => self.unicode_braced(backslash)?,
            'u' => self.unicode_json(backslash)?,
            _ => return Err(self.error_at(backslash, format!("unknown escape '\\{c}'"))),
        })
    }

    /// `\u{1F600}`: 1 to 6 hex digits naming a Unicode scalar value.
    fn unicode_braced(&mut self, backslash: usize) -> Result<char, ParseError> {
        self.pos += 1; // '{'
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        if self.peek() != Some('}') || digits.is_empty() || digits.len() > 6 {
            return Err(self.error_at(backslash, "expected 1 to 6 hex digits and '}' in '\\u{…}'"));
        }
        self.pos += 1;
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| {
                self.error_at(
                    backslash,
                    format!("'\\u{{{digits}}}' is not a Unicode character"),
                )
            })
    }

    /// `\uXXXX`, JSON style, with surrogate pairs for characters beyond U+FFFF.
    fn unicode_json(&mut self, backslash: usize) -> Result<char, ParseError> {
        let high = self.hex4(backslash)?;
        if !(0xD800..0xE000).contains(&high) {
            return Ok(char::from_u32(high).expect("not a surrogate"));
        }
        if high >= 0xDC00 || self.peek() != Some('\\') || self.peek_at(1) != Some('u') {
            return Err(self.error_at(backslash, "unpaired surrogate in '\\u' escape"));
        }
        self.pos += 2;
        let low = self.hex4(backslash)?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(self.error_at(backslash, "unpaired surrogate in '\\u' escape"));
        }
        let scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        Ok(char::from_u32(scalar).expect("valid surrogate pair"))
    }

    fn hex4(&mut self, backslash: usize) -> Result<u32, ParseError> {
        let digits: String = self.chars[self.pos..].iter().take(4).collect();
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.error_at(backslash, "expected 4 hex digits after '\\u'"));
        }
        self.pos += 4;
        Ok(u32::from_str_radix(&digits, 16).expect("hex digits"))
    }

    /// Hex digits between quotes, as in `x'0a1b'`.
    fn hex(&mut self, quote: char) -> Result<Vec<u8>, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut digits = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        self.error_at(open, format!("bytes are not closed (no closing {quote})"))
                    );
                }
                Some(c) if c == quote => break,
                Some(c) if c.is_ascii_hexdigit() => digits.push(c),
                Some(c) => return Err(self.error(format!("{} is not a hex digit", describe(c)))),
            }
            self.pos += 1;
        }
        if digits.len() % 2 == 1 {
            return Err(self.error_at(
                open,
                format!(
                    "bytes need an even number of hex digits, found {}",
                    digits.len()
                ),
            ));
        }
        self.pos += 1;
        Ok(hex::decode(&digits).expect("checked hex digits"))
    }
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("'\\u{{{:x}}}'", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// The name of a value's type, as error messages say it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Blob(_) => "bytes",
        Value::List(_) | Value::MultiResult(_) => "a list",
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            "a map"
        }
        Value::GeoJson(_) => "GeoJSON",
        Value::Hll(_) => "an HLL",
        _ => "a value with no literal",
    }
}

// ---------------------------------------------------------------- printing

/// The value on one line, in the literal syntax.
pub fn print(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Nil => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&print_float(f64::from(f))),
        Value::String(s) => write_quoted(out, s),
        Value::Blob(b) => write_hex(out, "x", b),
        Value::Hll(b) => write_hex(out, "hll", b),
        Value::GeoJson(s) => {
            out.push_str("geo");
            write_quoted(out, s);
        }
        Value::List(items) | Value::MultiResult(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            out.push('{');
            for (i, (k, v)) in map_entries(value).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
        Value::Infinity => out.push_str("INF"),
        Value::Wildcard => out.push('*'),
        Value::Unknown(particle, bytes) => {
            out.push_str(&format!("<particle {particle}: "));
            write_hex(out, "x", bytes);
            out.push('>');
        }
        _ => out.push_str(&format!("<{}>", value.as_string())),
    }
}

/// A map's entries in the order they print: sorted by key as the server sorts
/// (integers, strings, bytes); a key-value list keeps the order it came in.
fn map_entries(value: &Value) -> Vec<(&Value, &Value)> {
    let mut entries: Vec<(&Value, &Value)> = match value {
        Value::HashMap(m) => m.iter().collect(),
        Value::OrderedMap(m) => m.iter().collect(),
        Value::SortedMap(m) => return m.iter().collect(),
        Value::KeyValueList(pairs) => return pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    };
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn print_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Debug is the shortest text that reads back to the same bits, and
        // always has a '.' or an exponent, so it stays a float.
        format!("{f:?}")
    }
}

fn print_str(s: &str) -> String {
    let mut out = String::new();
    write_quoted(&mut out, s);
    out
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => write_char(out, c),
        }
    }
    out.push('\'');
}

/// `c` as a string literal writes it: itself, or an escape (`\n`, `\u{1b}`).
fn write_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Characters that would be invisible or reorder the line on a terminal,
/// or that XML 1.0 cannot carry (C0 controls but tab and line ends, U+FFFE/F).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// Free text (a UDF's message or log line, a step's name) as plain output
/// and XML show it: what a string literal escapes is written as it writes
/// it (`\n`, `\u{1b}`), so the text cannot move a terminal's cursor or
/// recolour it, and XML 1.0 can carry it. Tabs stay; backslashes are not
/// doubled (the text is not a literal).
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c != '\t' && needs_escape(c)) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            c => write_char(&mut out, c),
        }
    }
    out.into()
}

fn write_hex(out: &mut String, prefix: &str, bytes: &[u8]) {
    out.push_str(prefix);
    out.push('\'');
    out.push_str(&hex::encode(bytes));
    out.push('\'');
}

/// The value over several lines when it does not fit in `width` columns:
/// each list element and map entry on its own line, indented by two spaces.
/// Parts that fit stay on one line. The result parses back like [`print`]'s.
pub fn pretty(value: &Value, width: usize) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0, 0, width);
    out
}

/// `column` is where the value starts on its line, `indent` the indentation
/// of the line it starts on (for its closing bracket).
fn write_pretty(out: &mut String, value: &Value, column: usize, indent: usize, width: usize) {
    let flat = print(value);
    if column + flat.chars().count() <= width {
        out.push_str(&flat);
        return;
    }
    let inner = indent + 2;
    match value {
        Value::List(items) | Value::MultiResult(items) if items.iter().all(is_scalar) => {
            // Scalars fill lines, like words in a paragraph.
            out.push('[');
            newline(out, inner);
            let mut line_len = inner;
            for (i, item) in items.iter().enumerate() {
                let mut text = print(item);
                if i + 1 < items.len() {
                    text.push(',');
                }
                let len = text.chars().count();
                if line_len > inner && line_len + 1 + len > width {
                    newline(out, inner);
                    line_len = inner;
                } else if line_len > inner {
                    out.push(' ');
                    line_len += 1;
                }
                out.push_str(&text);
                line_len += len;
            }
            newline(out, indent);
            out.push(']');
        }
        Value::List(items) | Value::MultiResult(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                newline(out, inner);
                write_pretty(out, item, inner, inner, width);
                if i + 1 < items.len() {
                    out.push(',');
                }
            }
            newline(out, indent);
            out.push(']');
        }
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            let entries = map_entries(value);
            if entries.is_empty() {
                out.push_str(&flat);
                return;
            }
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                newline(out, inner);
                let key = print(k);
                let value_column = inner + key.chars().count() + 2;
                out.push_str(&key);
                out.push_str(": ");
                write_pretty(out, v, value_column, inner, width);
                if i + 1 < entries.len() {
                    out.push(',');
                }
            }
            newline(out, indent);
            out.push('}');
        }
        _ => out.push_str(&flat),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(
        value,
        Value::List(_)
            | Value::MultiResult(_)
            | Value::HashMap(_)
            | Value::OrderedMap(_)
            | Value::SortedMap(_)
            | Value::KeyValueList(_)
    )
}

fn newline(out: &mut String, indent: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', indent));
}

// ---------------------------------------------------------------- folding

/// A shortened one-line rendering for a summary view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// The text, with `…` markers where parts were left out: `… 997 more`
    /// closing a list or map, `'abc…' (1234 more chars)` for a string,
    /// `x'0a1b…' (500 more bytes)` for bytes.
    pub text: String,
    /// Whether anything was left out (when false, `text` equals [`print`]'s).
    pub folded: bool,
}

/// Folds the value to about `max_chars` characters: long strings and bytes are
/// cut, lists and maps show their first elements and say how many were left
/// out. The markers can make the text a little longer than `max_chars`. A
/// folded text is a summary and does not parse; show [`print`] or [`pretty`]
/// to expand it.
pub fn fold(value: &Value, max_chars: usize) -> Folded {
    let mut folder = Folder {
        out: String::new(),
        len: 0,
        folded: false,
    };
    folder.value(value, max_chars);
    Folded {
        text: folder.out,
        folded: folder.folded,
    }
}

/// Room kept at the end of a list or map for the `… N more` marker.
const MORE_RESERVE: usize = 12;
/// A cut string or blob still shows at least this many characters or digits.
const MIN_KEPT: usize = 8;

struct Folder {
    out: String,
    len: usize,
    folded: bool,
}

impl Folder {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        self.len += s.chars().count();
    }

    fn value(&mut self, value: &Value, budget: usize) {
        if printed_len(value, budget) <= budget {
            self.push(&print(value));
            return;
        }
        match value {
            Value::String(s) => self.text("", s, budget),
            Value::GeoJson(s) => self.text("geo", s, budget),
            Value::Blob(b) => self.bytes("x", b, budget),
            Value::Hll(b) => self.bytes("hll", b, budget),
            Value::List(items) | Value::MultiResult(items) => {
                let entries: Vec<(Option<&Value>, &Value)> =
                    items.iter().map(|v| (None, v)).collect();
                self.sequence('[', ']', &entries, budget);
            }
            Value::HashMap(_)
            | Value::OrderedMap(_)
            | Value::SortedMap(_)
            | Value::KeyValueList(_) => {
                let entries: Vec<(Option<&Value>, &Value)> = map_entries(value)
                    .into_iter()
                    .map(|(k, v)| (Some(k), v))
                    .collect();
                self.sequence('{', '}', &entries, budget);
            }
            _ => self.push(&print(value)),
        }
    }

    fn text(&mut self, prefix: &str, s: &str, budget: usize) {
        let total = s.chars().count();
        let marker = format!("…' ({total} more chars)").chars().count();
        let keep = budget
            .saturating_sub(prefix.len() + 1 + marker)
            .max(MIN_KEPT);
        if keep >= total {
            self.push(&format!("{prefix}{}", print_str(s)));
            return;
        }
        let kept: String = s.chars().take(keep).collect();
        let quoted = print_str(&kept);
        let open = &quoted[..quoted.len() - 1];
        self.push(&format!("{prefix}{open}…' ({} more chars)", total - keep));
        self.folded = true;
    }

    fn bytes(&mut self, prefix: &str, bytes: &[u8], budget: usize) {
        let marker = format!("…' ({} more bytes)", bytes.len()).chars().count();
        let keep = (budget.saturating_sub(prefix.len() + 1 + marker) / 2).max(MIN_KEPT / 2);
        if keep >= bytes.len() {
            let mut full = String::new();
            write_hex(&mut full, prefix, bytes);
            self.push(&full);
            return;
        }
        let shown = hex::encode(&bytes[..keep]);
        self.push(&format!(
            "{prefix}'{shown}…' ({} more bytes)",
            bytes.len() - keep
        ));
        self.folded = true;
    }

    fn sequence(
        &mut self,
        open: char,
        close: char,
        entries: &[(Option<&Value>, &Value)],
        budget: usize,
    ) {
        let start = self.len;
        self.push(&open.to_string());
        for (i, (key, value)) in entries.iter().enumerate() {
            let separator = if i > 0 { 2 } else { 0 };
            let used = self.len - start + separator + 1;
            if used + MORE_RESERVE >= budget {
                if i > 0 {
                    self.push(", ");
                }
                self.push(&format!("… {} more", entries.len() - i));
                self.folded = true;
                break;
            }
            if i > 0 {
                self.push(", ");
            }
            let room = budget - used - MORE_RESERVE;
            if let Some(key) = key {
                // Keys stay whole: a cut key would not say which entry this is.
                let key = print(key);
                self.push(&key);
                self.push(": ");
                self.value(value, room.saturating_sub(key.chars().count() + 2));
            } else {
                self.value(value, room);
            }
        }
        self.push(&close.to_string());
    }
}

/// The length [`print`] would give, counting no further than just past `limit`
/// (so folding a huge value does not print all of it at every level).
fn printed_len(value: &Value, limit: usize) -> usize {
    let over = limit.saturating_add(1);
    match value {
        Value::String(s) | Value::GeoJson(s) => {
            let prefix = if matches!(value, Value::GeoJson(_)) {
                3
            } else {
                0
            };
            let mut len = prefix + 2;
            for c in s.chars() {
                len += match c {
                    '\\' | '\'' | '\n' | '\r' | '\t' | '\0' => 2,
                    c if needs_escape(c) => format!("{:x}", c as u32).len() + 4,
                    _ => 1,
                };
                if len > limit {
                    return over;
                }
            }
            len
        }
        Value::Blob(b) => 3 + b.len().saturating_mul(2),
        Value::Hll(b) => 5 + b.len().saturating_mul(2),
        Value::List(items) | Value::MultiResult(items) => {
            let mut len = 2;
            for (i, item) in items.iter().enumerate() {
                len += if i > 0 { 2 } else { 0 } + printed_len(item, limit);
                if len > limit {
                    return over;
                }
            }
            len
        }
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            let mut len = 2;
            for (i, (k, v)) in map_entries(value).into_iter().enumerate() {
                len +=
                    if i > 0 { 2 } else { 0 } + printed_len(k, limit) + 2 + printed_len(v, limit);
                if len > limit {
                    return over;
                }
            }
            len
        }
        _ => print(value).chars().count(),
    }
}

// ---------------------------------------------------------------- JSON

/// Plain JSON for scripts (`--json`): nil → `null`, booleans, integers and
/// finite floats → numbers, `inf`/`-inf`/`nan` → those strings, strings →
/// strings, bytes and HLLs → lower-case hex strings, lists → arrays, GeoJSON
/// → the JSON document it holds.
///
/// Maps: a map whose keys are all strings becomes an object (keys sorted);
/// any other map becomes an array of `[key, value]` pairs sorted by key,
/// so integer and bytes keys keep their type and nothing collides. An empty
/// map is `{}`.
pub fn to_plain_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Float(f) => float_json(f64::from(f)),
        Value::String(s) => Json::String(s.clone()),
        Value::Blob(b) | Value::Hll(b) => Json::String(hex::encode(b)),
        Value::GeoJson(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
        Value::List(items) | Value::MultiResult(items) => {
            Json::Array(items.iter().map(to_plain_json).collect())
        }
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            let entries = map_entries(value);
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                let mut object = JsonMap::new();
                for (k, v) in entries {
                    if let Value::String(k) = k {
                        object.insert(k.clone(), to_plain_json(v));
                    }
                }
                Json::Object(object)
            } else {
                Json::Array(
                    entries
                        .into_iter()
                        .map(|(k, v)| Json::Array(vec![to_plain_json(k), to_plain_json(v)]))
                        .collect(),
                )
            }
        }
        Value::Unknown(_, bytes) => Json::String(hex::encode(bytes)),
        _ => Json::String(print(value)),
    }
}

/// A finite float as a JSON number, `inf`/`-inf`/`nan` as strings.
fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None => Json::String(print_float(f)),
    }
}

/// Integers beyond this magnitude lose precision as JSON numbers in most readers.
const JSON_SAFE_INT: i64 = 1 << 53;

/// The typed VALUE form of the conformance cases: `{"nil": null}`,
/// `{"bool": true}`, `{"int": 5}` (a decimal string beyond ±2^53),
/// `{"float": 2.5}` (`"inf"`, `"-inf"`, `"nan"` as strings), `{"str": "x"}`,
/// `{"bytes": "0a1b"}`, `{"list": [...]}`, `{"map": [[k, v], ...]}` (pairs
/// sorted by key), `{"geojson": "..."}`. Extensions for values the cases never
/// hold: `{"hll": "0a1b"}`, and for client-only values `{"unknown": "<text>"}`.
pub fn to_typed_json(value: &Value) -> Json {
    match value {
        Value::Nil => json!({ "nil": null }),
        Value::Bool(b) => json!({ "bool": b }),
        Value::Int(i) if (-JSON_SAFE_INT..=JSON_SAFE_INT).contains(i) => json!({ "int": i }),
        Value::Int(i) => json!({ "int": i.to_string() }),
        Value::Float(f) => json!({ "float": float_json(f64::from(f)) }),
        Value::String(s) => json!({ "str": s }),
        Value::Blob(b) => json!({ "bytes": hex::encode(b) }),
        Value::Hll(b) => json!({ "hll": hex::encode(b) }),
        Value::GeoJson(s) => json!({ "geojson": s }),
        Value::List(items) | Value::MultiResult(items) => {
            json!({ "list": items.iter().map(to_typed_json).collect::<Vec<_>>() })
        }
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) | Value::KeyValueList(_) => {
            let pairs: Vec<Json> = map_entries(value)
                .into_iter()
                .map(|(k, v)| Json::Array(vec![to_typed_json(k), to_typed_json(v)]))
                .collect();
            json!({ "map": pairs })
        }
        _ => json!({ "unknown": print(value) }),
    }
}

/// A typed VALUE that does not convert: where (a JSON path like `$.list[2]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedJsonError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for TypedJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "typed value at {}: {}", self.path, self.message)
    }
}

impl std::error::Error for TypedJsonError {}

/// Reads the typed VALUE form written by [`to_typed_json`] (and the
/// conformance cases). Maps become insertion-ordered maps in the pairs' order.
pub fn from_typed_json(json: &Json) -> Result<Value, TypedJsonError> {
    typed_at(json, "$")
}

fn typed_at(json: &Json, path: &str) -> Result<Value, TypedJsonError> {
    let fail = |message: String| TypedJsonError {
        path: path.to_owned(),
        message,
    };
    let Some((tag, body)) = json
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err(fail(format!(
            "expected an object with one type tag like {{\"int\": 5}}, found {json}"
        )));
    };
    let tag_path = format!("{path}.{tag}");
    let fail_in = |message: String| TypedJsonError {
        path: tag_path.clone(),
        message,
    };
    match tag.as_str() {
        "nil" if body.is_null() => Ok(Value::Nil),
        "bool" => body
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| fail_in(format!("expected true or false, found {body}"))),
        "int" => typed_int(body).map(Value::Int).map_err(fail_in),
        "float" => typed_float(body).map(Value::from).map_err(fail_in),
        "str" => body
            .as_str()
            .map(Value::from)
            .ok_or_else(|| fail_in(format!("expected a string, found {body}"))),
        "bytes" | "hll" => {
            let text = body
                .as_str()
                .ok_or_else(|| fail_in(format!("expected a hex string, found {body}")))?;
            let bytes = hex::decode(text).map_err(|e| fail_in(format!("bad hex: {e}")))?;
            Ok(if tag == "hll" {
                Value::Hll(bytes)
            } else {
                Value::Blob(bytes)
            })
        }
        "geojson" => body
            .as_str()
            .map(|s| Value::GeoJson(s.to_owned()))
            .ok_or_else(|| fail_in(format!("expected a string, found {body}"))),
        "list" => {
            let items = body
                .as_array()
                .ok_or_else(|| fail_in(format!("expected an array, found {body}")))?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, item)| typed_at(item, &format!("{tag_path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::List(values))
        }
        "map" => {
            let pairs = body
                .as_array()
                .ok_or_else(|| fail_in(format!("expected an array of pairs, found {body}")))?;
            let mut map = IndexMap::new();
            for (i, pair) in pairs.iter().enumerate() {
                let pair_path = format!("{tag_path}[{i}]");
                let Some([k, v]) = pair
                    .as_array()
                    .map(Vec::as_slice)
                    .and_then(|s| <&[Json; 2]>::try_from(s).ok())
                else {
                    return Err(TypedJsonError {
                        path: pair_path,
                        message: format!("expected a [key, value] pair, found {pair}"),
                    });
                };
                let key = typed_at(k, &format!("{pair_path}[0]"))?;
                if !key.is_valid_map_key() {
                    return Err(TypedJsonError {
                        path: format!("{pair_path}[0]"),
                        message: format!(
                            "map keys must be integers, strings or bytes, not {}",
                            type_name(&key)
                        ),
                    });
                }
                let value = typed_at(v, &format!("{pair_path}[1]"))?;
                if map.insert(key, value).is_some() {
                    return Err(TypedJsonError {
                        path: format!("{pair_path}[0]"),
                        message: "duplicate map key".into(),
                    });
                }
            }
            Ok(Value::OrderedMap(map))
        }
        _ => Err(fail(format!("unknown type tag \"{tag}\" with {body}"))),
    }
}

fn typed_int(body: &Json) -> Result<i64, String> {
    if let Some(i) = body.as_i64() {
        return Ok(i);
    }
    if let Some(text) = body.as_str() {
        return text
            .parse()
            .map_err(|_| format!("\"{text}\" is not a 64-bit integer"));
    }
    Err(format!(
        "expected an integer or a decimal string, found {body}"
    ))
}

fn typed_float(body: &Json) -> Result<f64, String> {
    if let Some(f) = body.as_f64() {
        return Ok(f);
    }
    match body.as_str() {
        Some("inf") => Ok(f64::INFINITY),
        Some("-inf") => Ok(f64::NEG_INFINITY),
        Some("nan") => Ok(f64::NAN),
        _ => Err(format!(
            "expected a number, \"inf\", \"-inf\" or \"nan\", found {body}"
        )),
    }
}

/// Whether a literal's text so far is inside a quoted string (fed one
/// character at a time; in quotes a backslash escapes the next one).
#[derive(Debug, Default)]
pub struct Quotes {
    open: Option<char>,
    escaped: bool,
}

impl Quotes {
    pub fn step(&mut self, c: char) {
        match self.open {
            None if c == '\'' || c == '"' => self.open = Some(c),
            None => {}
            Some(_) if self.escaped => self.escaped = false,
            Some(_) if c == '\\' => self.escaped = true,
            Some(quote) if c == quote => self.open = None,
            Some(_) => {}
        }
    }

    pub fn inside(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: Vec<(Value, Value)>) -> Value {
        Value::OrderedMap(pairs.into_iter().collect())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn scalars() {
        assert_eq!(parse("nil").unwrap(), Value::Nil);
        assert_eq!(parse("null").unwrap(), Value::Nil);
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        assert_eq!(parse(" false ").unwrap(), Value::Bool(false));
        assert_eq!(parse("5").unwrap(), Value::Int(5));
        assert_eq!(parse("-12").unwrap(), Value::Int(-12));
        assert_eq!(parse("9223372036854775807").unwrap(), Value::Int(i64::MAX));
        assert_eq!(parse("-9223372036854775808").unwrap(), Value::Int(i64::MIN));
    }

    #[test]
    fn integers_and_floats_stay_apart() {
        assert_eq!(parse("5.0").unwrap(), Value::from(5.0));
        assert_ne!(parse("5.0").unwrap(), Value::Int(5));
        assert_eq!(parse("1e3").unwrap(), Value::from(1000.0));
        assert_eq!(parse("2.5E-3").unwrap(), Value::from(0.0025));
        assert_eq!(parse("-1.5e+2").unwrap(), Value::from(-150.0));
        assert_eq!(parse("inf").unwrap(), Value::from(f64::INFINITY));
        assert_eq!(parse("-inf").unwrap(), Value::from(f64::NEG_INFINITY));
        assert_eq!(parse("+inf").unwrap(), Value::from(f64::INFINITY));
        assert!(as_f64(&parse("nan").unwrap()).unwrap().is_nan());
        let negative_zero = as_f64(&parse("-0.0").unwrap()).unwrap();
        assert!(negative_zero == 0.0 && negative_zero.is_sign_negative());
        assert_eq!(print(&Value::from(-0.0)), "-0.0");
        assert_eq!(print(&Value::from(5.0)), "5.0");
        assert_eq!(print(&Value::from(1e300)), "1e300");
        assert_eq!(print(&Value::from(f64::NAN)), "nan");
        assert_eq!(print(&Value::from(f64::NEG_INFINITY)), "-inf");
        assert_eq!(print(&Value::Int(5)), "5");
    }

    fn as_f64(value: &Value) -> Option<f64> {
        match value {
            Value::Float(f) => Some(f64::from(f)),
            _ => None,
        }
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(parse("'a b'").unwrap(), s("a b"));
        assert_eq!(parse("\"it's\"").unwrap(), s("it's"));
        assert_eq!(parse(r"'it\'s'").unwrap(), s("it's"));
        assert_eq!(parse(r"'a\nb\t\\\0'").unwrap(), s("a\nb\t\\\0"));
        assert_eq!(
            parse(r#""\u00e9\u{1F600}\ud83d\ude00""#).unwrap(),
            s("é😀😀")
        );
        assert_eq!(print(&s("it's\n")), r"'it\'s\n'");
        assert_eq!(print(&s("say \"hi\" é")), "'say \"hi\" é'");
        assert_eq!(print(&s("\u{1b}[31m\u{202e}")), r"'\u{1b}[31m\u{202e}'");
    }

    #[test]
    fn visible_text_escapes_as_literals_do_but_tabs_and_backslashes() {
        assert_eq!(visible("plain é \\ 'q'"), "plain é \\ 'q'");
        assert_eq!(
            visible("bell\u{7} ctl\u{1b}[0m\u{8}\ttab\nnl\u{fffe}"),
            r"bell\u{7} ctl\u{1b}[0m\u{8}".to_string() + "\t" + r"tab\nnl\u{fffe}"
        );
    }

    #[test]
    fn bytes_geo_and_hll() {
        assert_eq!(parse("x'0a1B'").unwrap(), Value::Blob(vec![0x0a, 0x1b]));
        assert_eq!(parse("x''").unwrap(), Value::Blob(vec![]));
        assert_eq!(print(&Value::Blob(vec![0x0a, 0x1b])), "x'0a1b'");
        let geo = r#"geo'{"type":"Point","coordinates":[1.5,2.5]}'"#;
        assert_eq!(
            parse(geo).unwrap(),
            Value::GeoJson(r#"{"type":"Point","coordinates":[1.5,2.5]}"#.into())
        );
        assert_eq!(print(&parse(geo).unwrap()), geo);
        assert_eq!(parse("hll'00ff'").unwrap(), Value::Hll(vec![0, 255]));
        assert_eq!(print(&Value::Hll(vec![0, 255])), "hll'00ff'");
    }

    #[test]
    fn lists_and_maps() {
        assert_eq!(parse("[]").unwrap(), Value::List(vec![]));
        assert_eq!(
            parse("[1, 'a', [nil]]").unwrap(),
            Value::List(vec![Value::Int(1), s("a"), Value::List(vec![Value::Nil])])
        );
        assert_eq!(
            parse("[1,2,]").unwrap(),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(parse("{}").unwrap(), map(vec![]));
        let parsed = parse("{1: 'a', 'b': 2, x'01': [3]}").unwrap();
        assert_eq!(
            parsed,
            map(vec![
                (Value::Int(1), s("a")),
                (s("b"), Value::Int(2)),
                (Value::Blob(vec![1]), Value::List(vec![Value::Int(3)]))
            ])
        );
        // Printed sorted like the server: integers, strings, bytes.
        let shuffled = parse("{x'01': 1, 'b': 2, 'a': 3, 10: 4, -1: 5}").unwrap();
        assert_eq!(print(&shuffled), "{-1: 5, 10: 4, 'a': 3, 'b': 2, x'01': 1}");
    }

    #[test]
    fn a_parse_error_knows_its_place_in_the_text() {
        for text in ["[1, x]", "[1,\n 'é',\n  x]"] {
            let e = parse(text).unwrap_err();
            let at = e.offset(text);
            assert_eq!(text.chars().nth(at), Some('x'), "{text}: {e}");
        }
    }

    #[test]
    fn parse_errors_name_the_column() {
        assert_eq!(
            err("[1, 2 3]"),
            "column 7: expected ',' or ']' after list element"
        );
        assert_eq!(
            err("[1, 2"),
            "column 6: expected ',' or ']' after list element"
        );
        assert_eq!(err("{1 'a'}"), "column 4: expected ':' after map key");
        assert_eq!(
            err("{1: 'a' 2}"),
            "column 9: expected ',' or '}' after map value"
        );
        assert_eq!(
            err("{1.5: 'a'}"),
            "column 2: map keys must be integers, strings or bytes, not a float"
        );
        assert_eq!(
            err("{[1]: 'a'}"),
            "column 2: map keys must be integers, strings or bytes, not a list"
        );
        assert_eq!(err("{'a': 1, 'a': 2}"), "column 10: duplicate map key 'a'");
        assert_eq!(
            err(""),
            "column 1: expected a value, found the end of the input"
        );
        assert_eq!(err("[1, ]x"), "column 6: unexpected text after the value");
        assert_eq!(
            err("[count]"),
            "column 2: unknown word 'count' (strings need quotes: 'count')"
        );
        assert_eq!(err("'abc"), "column 1: string is not closed (no closing ')");
        assert_eq!(err(r"'a\qb'"), r"column 3: unknown escape '\q'");
        assert_eq!(
            err(r"'\u12'"),
            r"column 2: expected 4 hex digits after '\u'"
        );
        assert_eq!(
            err(r"'\ud800'"),
            r"column 2: unpaired surrogate in '\u' escape"
        );
        assert_eq!(err("x'0g'"), "column 4: 'g' is not a hex digit");
        assert_eq!(
            err("x'abc'"),
            "column 2: bytes need an even number of hex digits, found 3"
        );
        assert_eq!(
            err("99999999999999999999"),
            "column 1: integer 99999999999999999999 does not fit in 64 bits"
        );
        assert_eq!(
            err("[1, -1e400]"),
            "column 5: float -1e400 is out of range (write inf or -inf for an infinity)"
        );
        assert_eq!(parse("1e308").unwrap(), Value::from(1e308));
        assert_eq!(
            parse("1e-400").unwrap(),
            Value::from(0.0),
            "underflow rounds to 0"
        );
        assert_eq!(err("1."), "column 3: expected a digit after '.'");
        assert_eq!(err("1e+"), "column 4: expected a digit in the exponent");
        assert_eq!(err("-"), "column 2: expected a digit after '-'");
        assert_eq!(
            err("-x"),
            "column 1: expected a number after '-', found 'x'"
        );
        assert_eq!(err("12ab"), "column 3: unexpected 'a' after the number");
        assert_eq!(
            err("geo'{bad'"),
            "column 1: geo'…' holds no valid JSON: key must be a string at line 1 column 2"
        );
        assert_eq!(
            err("[1,\n 2 3]"),
            "line 2, column 4: expected ',' or ']' after list element"
        );
        assert_eq!(err("@"), "column 1: expected a value, found '@'");
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            err(&deep),
            format!(
                "column {}: values nest deeper than {MAX_DEPTH} levels",
                MAX_DEPTH + 1
            )
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            err("['é😀', 2 3]"),
            "column 10: expected ',' or ']' after list element"
        );
    }

    #[test]
    fn parse_error_fields() {
        let e = parse("[1 2]").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        assert_eq!(e.message, "expected ',' or ']' after list element");
    }

    #[test]
    fn command_line_words() {
        assert_eq!(parse_arg("count").unwrap(), s("count"));
        assert_eq!(parse_arg("5").unwrap(), Value::Int(5));
        assert_eq!(parse_arg("-5").unwrap(), Value::Int(-5));
        assert_eq!(parse_arg("5.0").unwrap(), Value::from(5.0));
        assert_eq!(parse_arg("'5'").unwrap(), s("5"));
        assert_eq!(
            parse_arg("[1,2]").unwrap(),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(parse_arg("nil").unwrap(), Value::Nil);
        assert_eq!(parse_arg("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_arg("-inf").unwrap(), Value::from(f64::NEG_INFINITY));
        assert_eq!(parse_arg("x'01'").unwrap(), Value::Blob(vec![1]));
        assert_eq!(parse_arg("hello world").unwrap(), s("hello world"));
        assert_eq!(parse_arg("5abc").unwrap(), s("5abc"));
        assert_eq!(parse_arg("1.2.3").unwrap(), s("1.2.3"));
        assert_eq!(parse_arg("").unwrap(), s(""));
        assert_eq!(parse_arg("don't").unwrap(), s("don't"));
        assert_eq!(
            parse_arg("[1,").unwrap_err().to_string(),
            "column 4: expected a value, found the end of the input"
        );
        assert!(parse_arg("99999999999999999999").is_err());
    }

    #[test]
    fn pretty_breaks_only_what_does_not_fit() {
        let value =
            parse("{'name': 'counter', 'list': [1, 2, 3], 'nested': {'a': [10, 20, 30, 40]}}")
                .unwrap();
        assert_eq!(pretty(&value, 200), print(&value));
        let text = pretty(&value, 30);
        assert_eq!(
            text,
            "{\n  'list': [1, 2, 3],\n  'name': 'counter',\n  'nested': {\n    'a': [10, 20, 30, 40]\n  }\n}"
        );
        assert_eq!(parse(&text).unwrap(), value);
        // Scalars fill lines up to the width.
        let list = Value::List((0..12).map(Value::Int).collect());
        assert_eq!(
            pretty(&list, 16),
            "[\n  0, 1, 2, 3, 4,\n  5, 6, 7, 8, 9,\n  10, 11\n]"
        );
        let nested = Value::List(vec![list.clone(), Value::Int(1)]);
        assert_eq!(
            pretty(&nested, 16),
            "[\n  [\n    0, 1, 2, 3,\n    4, 5, 6, 7,\n    8, 9, 10, 11\n  ],\n  1\n]"
        );
    }

    #[test]
    fn fold_cuts_and_says_how_much() {
        let small = parse("[1, 'a']").unwrap();
        assert_eq!(
            fold(&small, 80),
            Folded {
                text: print(&small),
                folded: false
            }
        );

        let long_list = Value::List((0..1000).map(Value::Int).collect());
        let folded = fold(&long_list, 40);
        assert!(folded.folded);
        assert!(folded.text.starts_with("[0, 1, 2, "), "{}", folded.text);
        let shown = folded.text.matches(", ").count();
        assert!(
            folded.text.ends_with(&format!("… {} more]", 1000 - shown)),
            "{}",
            folded.text
        );
        assert!(folded.text.chars().count() <= 40, "{}", folded.text);

        let long_string = s(&"a".repeat(5000));
        let folded = fold(&long_string, 60);
        assert!(folded.folded);
        assert!(folded.text.starts_with("'aaaa"));
        let kept = folded.text[1..].chars().take_while(|&c| c == 'a').count();
        assert!(
            folded
                .text
                .ends_with(&format!("…' ({} more chars)", 5000 - kept)),
            "{}",
            folded.text
        );
        assert!(folded.text.chars().count() <= 60, "{}", folded.text);

        let blob = Value::Blob(vec![0xab; 1000]);
        let folded = fold(&blob, 40);
        assert!(folded.text.starts_with("x'abab"), "{}", folded.text);
        assert!(folded.text.ends_with("more bytes)"), "{}", folded.text);
        assert!(folded.text.chars().count() <= 40, "{}", folded.text);

        let nested = map(vec![
            (s("data"), long_list.clone()),
            (s("id"), Value::Int(7)),
        ]);
        let folded = fold(&nested, 60);
        assert!(folded.folded);
        assert!(
            folded.text.starts_with("{'data': [0, 1, "),
            "{}",
            folded.text
        );
        assert!(folded.text.contains("more]"), "{}", folded.text);
    }

    #[test]
    fn plain_json() {
        let value = parse(
            "{'a': [1, 2.5, nil, true], 'b': x'0a', 'c': inf, 'g': geo'{\"type\":\"Point\"}'}",
        )
        .unwrap();
        assert_eq!(
            to_plain_json(&value),
            json!({"a": [1, 2.5, null, true], "b": "0a", "c": "inf", "g": {"type": "Point"}})
        );
        let int_keys = parse("{2: 'b', 1: 'a'}").unwrap();
        assert_eq!(to_plain_json(&int_keys), json!([[1, "a"], [2, "b"]]));
        assert_eq!(to_plain_json(&map(vec![])), json!({}));
    }

    #[test]
    fn typed_json_forms() {
        assert_eq!(to_typed_json(&Value::Nil), json!({"nil": null}));
        assert_eq!(to_typed_json(&Value::Int(5)), json!({"int": 5}));
        assert_eq!(
            to_typed_json(&Value::Int(1 << 53)),
            json!({"int": 9007199254740992_i64})
        );
        assert_eq!(
            to_typed_json(&Value::Int((1 << 53) + 1)),
            json!({"int": "9007199254740993"})
        );
        assert_eq!(
            to_typed_json(&Value::Int(i64::MIN)),
            json!({"int": "-9223372036854775808"})
        );
        assert_eq!(to_typed_json(&Value::from(2.5)), json!({"float": 2.5}));
        assert_eq!(
            to_typed_json(&Value::from(f64::NAN)),
            json!({"float": "nan"})
        );
        assert_eq!(
            to_typed_json(&Value::from(f64::NEG_INFINITY)),
            json!({"float": "-inf"})
        );
        assert_eq!(
            serde_json::to_string(&to_typed_json(&Value::from(-0.0))).unwrap(),
            r#"{"float":-0.0}"#
        );
        assert_eq!(
            to_typed_json(&Value::Blob(vec![10, 27])),
            json!({"bytes": "0a1b"})
        );
        assert_eq!(
            to_typed_json(&parse("{'b': [1], 'a': 'x'}").unwrap()),
            json!({"map": [[{"str": "a"}, {"str": "x"}], [{"str": "b"}, {"list": [{"int": 1}]}]]})
        );
        assert_eq!(
            from_typed_json(&json!({"int": "9007199254740993"})).unwrap(),
            Value::Int((1 << 53) + 1)
        );
        assert_eq!(
            from_typed_json(&json!({"float": 5})).unwrap(),
            Value::from(5.0)
        );
        assert_eq!(
            from_typed_json(&json!({"geojson": "{}"})).unwrap(),
            Value::GeoJson("{}".into())
        );
    }

    #[test]
    fn typed_json_errors_name_the_path() {
        let bad = |j: Json| from_typed_json(&j).unwrap_err().to_string();
        assert_eq!(
            bad(json!({"list": [{"int": 1}, {"int": 1.5}]})),
            "typed value at $.list[1].int: expected an integer or a decimal string, found 1.5"
        );
        assert_eq!(
            bad(json!({"map": [[{"float": 1.0}, {"nil": null}]]})),
            "typed value at $.map[0][0]: map keys must be integers, strings or bytes, not a float"
        );
        assert_eq!(
            bad(json!({"bytes": "0g"})),
            "typed value at $.bytes: bad hex: Invalid character 'g' at position 1"
        );
        assert_eq!(
            bad(json!(5)),
            "typed value at $: expected an object with one type tag like {\"int\": 5}, found 5"
        );
        assert_eq!(
            bad(json!({"text": "a"})),
            "typed value at $: unknown type tag \"text\" with \"a\""
        );
        assert_eq!(
            bad(json!({"map": [[{"int": 1}]]})),
            "typed value at $.map[0]: expected a [key, value] pair, found [{\"int\":1}]"
        );
    }

    fn float_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            (-1e6f64..1e6).prop_map(|f| (f * 100.0).round() / 100.0),
        ]
    }

    fn key_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            any::<String>().prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Blob),
        ]
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            float_strategy().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Hll),
            (
                float_strategy().prop_filter("finite", |f| f.is_finite()),
                any::<String>()
            )
                .prop_map(|(x, name)| Value::GeoJson(
                    json!({"type": "Point", "coordinates": [x, 1], "name": name}).to_string()
                )),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::vec((key_strategy(), inner), 0..6)
                    .prop_map(|pairs| Value::OrderedMap(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(value in value_strategy()) {
            let text = print(&value);
            let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            // Floats compare by bits (NaNs are canonical), so -0.0 ≠ 0.0 and NaN = NaN.
            prop_assert_eq!(&back, &value, "{}", text);
            prop_assert_eq!(print(&back), text);
        }

        #[test]
        fn pretty_then_parse_is_identity(value in value_strategy(), width in 0usize..60) {
            let text = pretty(&value, width);
            prop_assert_eq!(parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?, value);
        }

        #[test]
        fn typed_json_round_trips(value in value_strategy()) {
            let typed = to_typed_json(&value);
            prop_assert_eq!(&from_typed_json(&typed).unwrap(), &value);
            // And through JSON text, as cases are stored.
            let text = serde_json::to_string(&typed).unwrap();
            let reread: Json = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(from_typed_json(&reread).unwrap(), value);
        }

        #[test]
        fn parse_arg_never_panics(word in any::<String>()) {
            let _ = parse_arg(&word);
        }

        #[test]
        fn fold_never_panics_and_marks_cuts(value in value_strategy(), max in 0usize..80) {
            let folded = fold(&value, max);
            if !folded.folded {
                prop_assert_eq!(folded.text, print(&value));
            }
        }
    }
}
