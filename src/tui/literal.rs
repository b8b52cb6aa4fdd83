//! The console's use of the literal value syntax (`crate::value`, DESIGN §4):
//! a key, an argument list with the column of any error, results printed
//! one-line, pretty or folded, and JSON for saved results.

use aerospike::Value;

use crate::value;

/// A parse error at a 1-based column of the field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    pub column: usize,
    pub message: String,
}

fn error(e: value::ParseError) -> LiteralError {
    LiteralError {
        column: e.column,
        message: e.message,
    }
}

/// Parses one value (a record key).
pub fn parse_value(text: &str) -> Result<Value, LiteralError> {
    value::parse(text).map_err(error)
}

/// Parses a comma-separated argument list (`'count', 5`); empty = no arguments.
pub fn parse_args(text: &str) -> Result<Vec<Value>, LiteralError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let args = parse_separated(text, "an argument", "arguments")?;
    Ok(args.into_iter().map(|(_, v)| v).collect())
}

/// Literals separated by commas at the top level of a one-line field, each
/// with the column it starts at. `one` and `many` name them in errors ("a
/// key", "keys"): no brackets were typed, so none are named.
pub fn parse_separated(
    text: &str,
    one: &str,
    many: &str,
) -> Result<Vec<(usize, Value)>, LiteralError> {
    let chars: Vec<char> = text.chars().collect();
    let error = |column: usize, message: String| LiteralError { column, message };
    let skip_ws = |mut at: usize| {
        while chars.get(at).is_some_and(|c| c.is_whitespace()) {
            at += 1;
        }
        at
    };
    let mut values = Vec::new();
    let mut at = 0;
    loop {
        at = skip_ws(at);
        if at >= chars.len() {
            return Err(error(at + 1, format!("expected {one}")));
        }
        // Columns count from the field's start: the field is one line.
        let (value, end) =
            value::parse_prefix_at(&chars, at).map_err(|e| error(e.column, e.message))?;
        values.push((at + 1, value));
        at = skip_ws(end);
        match chars.get(at) {
            None => return Ok(values),
            Some(',') => at += 1,
            Some(_) => return Err(error(at + 1, format!("expected ',' between {many}"))),
        }
    }
}

pub fn print(v: &Value) -> String {
    value::print(v)
}

/// The value over lines no wider than `width` where it can.
pub fn pretty(v: &Value, width: usize) -> Vec<String> {
    value::pretty(v, width)
        .lines()
        .map(str::to_string)
        .collect()
}

/// About `max_chars` of the value, and whether anything was left out.
pub fn fold(v: &Value, max_chars: usize) -> (String, bool) {
    let folded = value::fold(v, max_chars);
    (folded.text, folded.folded)
}

pub fn to_json(v: &Value) -> serde_json::Value {
    value::to_plain_json(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_with_error_columns_of_the_field() {
        assert_eq!(
            parse_args("'count', 5").unwrap(),
            vec![Value::String("count".into()), Value::Int(5)]
        );
        assert_eq!(parse_args("  ").unwrap(), vec![]);
        assert_eq!(parse_args("'count', 5 6").unwrap_err().column, 12);
        assert_eq!(parse_args("count").unwrap_err().column, 1);
        assert_eq!(parse_args("1, 'a").unwrap_err().column, 4);
        // No '[' was typed: the error names what the field holds.
        let e = parse_args("'count', 5 5").unwrap_err();
        assert_eq!(e.column, 12);
        assert_eq!(e.message, "expected ',' between arguments");
        // Inside a list typed in the field, the list's own words.
        let e = parse_args("[1 2]").unwrap_err();
        assert_eq!(e.message, "expected ',' or ']' after list element");
        assert_eq!(
            parse_args("1,").unwrap_err().message,
            "expected an argument"
        );
        assert_eq!(parse_value("'k1'").unwrap(), Value::String("k1".into()));
    }

    #[test]
    fn pretty_breaks_wide_values_and_fold_cuts() {
        let v = parse_value("{'name': 'aaaaaaaaaa', 'list': [1, 2, 3]}").unwrap();
        assert_eq!(pretty(&v, 80).len(), 1);
        assert!(pretty(&v, 20).len() > 2);
        let long = parse_value(&format!("[{}]", vec!["1"; 200].join(", "))).unwrap();
        let (text, cut) = fold(&long, 20);
        assert!(cut);
        assert!(text.chars().count() < 60, "{text}");
    }
}
