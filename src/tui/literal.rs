//! The console's view of the literal value syntax (DESIGN §4): parse a key or
//! an argument list with the column of any error, print results one-line or
//! pretty, and convert to JSON for saving.
//!
//! The console goes through these few functions only, so the shared syntax
//! in `crate::value` can take their place without touching the panes. The
//! parser here covers the console's needs: `nil`, booleans, integers vs
//! floats, single- or double-quoted strings, `x'..'` bytes, lists and maps.

use aerospike::Value;

/// A parse error at a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    pub column: usize,
    pub message: String,
}

/// Parses one value (a record key).
pub fn parse_value(text: &str) -> Result<Value, LiteralError> {
    let mut p = Parser::new(text);
    p.skip_ws();
    let value = p.value()?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected text after the value"));
    }
    Ok(value)
}

/// Parses a comma-separated argument list (`"count", 5`); empty = no arguments.
pub fn parse_args(text: &str) -> Result<Vec<Value>, LiteralError> {
    let mut p = Parser::new(text);
    let mut args = Vec::new();
    p.skip_ws();
    if p.pos == p.chars.len() {
        return Ok(args);
    }
    loop {
        args.push(p.value()?);
        p.skip_ws();
        match p.peek() {
            None => return Ok(args),
            Some(',') => {
                p.pos += 1;
                p.skip_ws();
            }
            Some(_) => return Err(p.error("expected ',' between arguments")),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Parser {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn error(&self, message: &str) -> LiteralError {
        LiteralError {
            column: self.pos + 1,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, LiteralError> {
        match self.peek() {
            None => Err(self.error("expected a value")),
            Some('\'') | Some('"') => self.string().map(Value::String),
            Some('[') => self.list(),
            Some('{') => self.map(),
            Some('x') if self.chars.get(self.pos + 1) == Some(&'\'') => self.bytes(),
            Some(c) if c == '-' || c == '+' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_alphabetic() => self.word(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        let quote = self.chars[self.pos];
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => {
                    let Some(escaped) = self.peek() else { break };
                    self.pos += 1;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
        self.pos = start;
        Err(self.error("unterminated string"))
    }

    fn bytes(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        self.pos += 1;
        let digits = self.string()?;
        hex::decode(&digits)
            .map(Value::Blob)
            .map_err(|_| LiteralError {
                column: start + 1,
                message: "bytes need an even number of hex digits".into(),
            })
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let bad = || LiteralError {
            column: start + 1,
            message: format!("'{text}' is not a number"),
        };
        match text.as_str() {
            "-inf" => return Ok(Value::from(f64::NEG_INFINITY)),
            "+inf" => return Ok(Value::from(f64::INFINITY)),
            _ => {}
        }
        let is_float = text.contains(['.', 'e', 'E']) && !text.starts_with("0x");
        if is_float {
            text.parse::<f64>().map(Value::from).map_err(|_| bad())
        } else {
            text.parse::<i64>().map(Value::Int).map_err(|_| bad())
        }
    }

    fn word(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "nil" | "null" => Ok(Value::Nil),
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "inf" => Ok(Value::from(f64::INFINITY)),
            "nan" => Ok(Value::from(f64::NAN)),
            _ => {
                self.pos = start;
                Err(self.error("a string needs quotes: 'text'"))
            }
        }
    }

    fn list(&mut self) -> Result<Value, LiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(']') {
                self.pos += 1;
                return Ok(Value::List(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {}
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn map(&mut self) -> Result<Value, LiteralError> {
        self.pos += 1;
        let mut entries = aerospike::IndexMap::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Value::OrderedMap(entries));
            }
            let key_at = self.pos;
            let key = self.value()?;
            if !matches!(key, Value::Int(_) | Value::String(_) | Value::Blob(_)) {
                self.pos = key_at;
                return Err(self.error("map keys are integers, strings or bytes"));
            }
            self.skip_ws();
            if self.peek() != Some(':') {
                return Err(self.error("expected ':' after a map key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            entries.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }
}

/// One-line form that parses back.
pub fn print(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_string(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        out.push_str(&format!("{f:.1}"));
    } else {
        out.push_str(&format!("{f}"));
    }
}

fn map_entries(value: &Value) -> Option<Vec<(&Value, &Value)>> {
    match value {
        Value::HashMap(m) => Some(m.iter().collect()),
        Value::OrderedMap(m) => Some(m.iter().collect()),
        Value::SortedMap(m) => Some(m.iter().collect()),
        Value::KeyValueList(l) => Some(l.iter().map(|(k, v)| (k, v)).collect()),
        _ => None,
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Nil => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => write_float(f64::from(f), out),
        Value::String(s) => write_string(s, out),
        Value::Blob(b) | Value::Hll(b) => out.push_str(&format!("x'{}'", hex::encode(b))),
        Value::GeoJson(g) => {
            out.push_str("geo");
            write_string(g, out);
        }
        Value::List(items) | Value::MultiResult(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        other => match map_entries(other) {
            Some(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_value(k, out);
                    out.push_str(": ");
                    write_value(v, out);
                }
                out.push('}');
            }
            None => out.push_str(&format!("{other:?}")),
        },
    }
}

/// Multi-line form: nested lists and maps indented when the one-line form is
/// wider than `width`.
pub fn pretty(value: &Value, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    pretty_into(value, 0, width, "", &mut lines);
    lines
}

fn pretty_into(value: &Value, indent: usize, width: usize, prefix: &str, lines: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    let flat = print(value);
    let children: Option<Vec<(Option<&Value>, &Value)>> = match value {
        Value::List(items) => Some(items.iter().map(|v| (None, v)).collect()),
        other => map_entries(other).map(|e| e.into_iter().map(|(k, v)| (Some(k), v)).collect()),
    };
    match children {
        Some(children) if indent + prefix.len() + flat.chars().count() > width => {
            let (open, close) = if matches!(value, Value::List(_)) {
                ("[", "]")
            } else {
                ("{", "}")
            };
            lines.push(format!("{pad}{prefix}{open}"));
            for (key, child) in children {
                let key_prefix = key.map(|k| format!("{}: ", print(k))).unwrap_or_default();
                pretty_into(child, indent + 2, width, &key_prefix, lines);
                if let Some(last) = lines.last_mut() {
                    last.push(',');
                }
            }
            if let Some(last) = lines.last_mut()
                && last.ends_with(',')
            {
                last.pop();
            }
            lines.push(format!("{pad}{close}"));
        }
        _ => lines.push(format!("{pad}{prefix}{flat}")),
    }
}

/// The one-line form cut to `max_chars` with a marker, when it is longer.
pub fn fold(value: &Value, max_chars: usize) -> (String, bool) {
    let flat = print(value);
    if flat.chars().count() <= max_chars {
        return (flat, false);
    }
    let cut: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
    (format!("{cut}…"), true)
}

/// JSON for saved results: strings, numbers, lists and objects as they are,
/// bytes as hex strings, non-string map keys printed in the literal syntax.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(f))
            .map(J::Number)
            .unwrap_or_else(|| J::String(print(value))),
        Value::String(s) => J::String(s.clone()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        other => match map_entries(other) {
            Some(entries) => J::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Value::String(s) => s.clone(),
                            k => print(k),
                        };
                        (key, to_json(v))
                    })
                    .collect(),
            ),
            None => J::String(print(other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_with_error_columns() {
        assert_eq!(
            parse_args("'count', 5").unwrap(),
            vec![Value::String("count".into()), Value::Int(5)]
        );
        assert_eq!(parse_args("  ").unwrap(), vec![]);
        let err = parse_args("'count', 5 6").unwrap_err();
        assert_eq!(err.column, 12);
        let err = parse_args("count").unwrap_err();
        assert_eq!(err.column, 1);
        assert!(err.message.contains("quotes"));
        assert_eq!(parse_args("'a").unwrap_err().column, 1);
    }

    #[test]
    fn print_round_trips() {
        for text in ["[1, 2.0, 'a', nil, true, x'0a1b']", "{1: 'a', 'b': [2]}"] {
            let value = parse_value(text).unwrap();
            assert_eq!(print(&value), text);
        }
    }

    #[test]
    fn pretty_breaks_wide_values_and_fold_cuts() {
        let value = parse_value("{'name': 'aaaaaaaaaa', 'list': [1, 2, 3]}").unwrap();
        assert_eq!(pretty(&value, 80).len(), 1);
        assert_eq!(
            pretty(&value, 20),
            vec!["{", "  'name': 'aaaaaaaaaa',", "  'list': [1, 2, 3]", "}"]
        );
        let (folded, cut) = fold(&value, 10);
        assert!(cut);
        assert_eq!(folded.chars().count(), 10);
    }
}
