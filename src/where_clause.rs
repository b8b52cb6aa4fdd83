//! The `where` clause of queries, aggregations and background jobs: one
//! syntax for the commands, the console and test files. Values are in the
//! literal syntax of [`crate::value`].
//!
//! | clause | selects records whose |
//! |---|---|
//! | `BIN = V` | bin equals V (an integer, string or bytes) |
//! | `BIN BETWEEN A AND B` | integer bin is in A..=B |
//! | `LIST BIN = V`, `MAPKEYS BIN = V`, `MAPVALUES BIN = V` | list element / map key / map value equals V (`BETWEEN` too) |
//! | `BIN WITHIN geo'{…}'` | GeoJSON point lies in the region |
//! | `BIN WITHIN RADIUS(lng, lat, meters)` | point lies within the circle |
//! | `BIN CONTAINS geo'{point}'` | region contains the point |
//!
//! Keywords are case-insensitive. Each needs the matching secondary index.

use std::fmt;

use aerospike::query::Filter;
use aerospike::{CollectionIndexType, Value};

use crate::value;

/// Longest bin name the server accepts, in bytes.
const MAX_BIN_NAME: usize = 15;

/// Which part of the bin an index covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// The bin's own value.
    Scalar,
    List,
    MapKeys,
    MapValues,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// An integer, string or bytes value.
    Equal(Value),
    Between(i64, i64),
    /// GeoJSON text of a region.
    WithinRegion(String),
    WithinRadius {
        lng: f64,
        lat: f64,
        meters: f64,
    },
    /// GeoJSON text of a point.
    Contains(String),
}

/// A parsed `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    pub bin: String,
    pub collection: Collection,
    pub predicate: Predicate,
}

/// A clause that does not parse: where (1-based, in characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhereError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for WhereError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for WhereError {}

/// Reads a clause left to right over its characters.
struct Cursor<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> WhereError {
        WhereError {
            column: at + 1,
            message: message.into(),
        }
    }

    /// The next word (letters, digits, `_`, `-`, `$`), not consumed.
    fn peek_word(&mut self) -> (usize, String) {
        self.skip_ws();
        let start = self.pos;
        let word: String = self.chars[start..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$'))
            .collect();
        (start, word)
    }

    fn word(&mut self) -> (usize, String) {
        let (start, word) = self.peek_word();
        self.pos += word.chars().count();
        (start, word)
    }

    fn keyword(&mut self, expected: &str) -> Result<(), WhereError> {
        let (at, word) = self.word();
        if word.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(self.error(
                at,
                format!("expected {expected}, found {}", self.found(&word)),
            ))
        }
    }

    /// What stands where `word` was just read: the word, else the
    /// character that starts no word (`>`), else the end.
    fn found(&self, word: &str) -> String {
        match (word, self.chars.get(self.pos)) {
            ("", Some(c)) => format!("'{c}'"),
            ("", None) => "the end".into(),
            _ => format!("'{word}'"),
        }
    }

    fn punct(&mut self, expected: char) -> Result<(), WhereError> {
        self.skip_ws();
        match self.chars.get(self.pos) {
            Some(&c) if c == expected => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error(
                self.pos,
                format!("expected '{expected}', found {}", self.found("")),
            )),
        }
    }

    /// A literal value; errors point into the clause.
    fn value(&mut self) -> Result<(usize, Value), WhereError> {
        self.skip_ws();
        let start = self.pos;
        let byte_start: usize = self.chars[..start].iter().map(|c| c.len_utf8()).sum();
        match value::parse_prefix(&self.text[byte_start..]) {
            Ok((v, used)) => {
                self.pos += used;
                Ok((start, v))
            }
            Err(e) => Err(self.error(start + e.column - 1, e.message)),
        }
    }

    fn number(&mut self) -> Result<f64, WhereError> {
        match self.value()? {
            (_, Value::Int(i)) => Ok(i as f64),
            (_, Value::Float(f)) => Ok(f64::from(&f)),
            (at, v) => Err(self.error(
                at,
                format!("expected a number, found {}", value::type_name(&v)),
            )),
        }
    }

    fn integer(&mut self) -> Result<i64, WhereError> {
        match self.value()? {
            (_, Value::Int(i)) => Ok(i),
            (at, v) => Err(self.error(
                at,
                format!("BETWEEN takes integers, found {}", value::type_name(&v)),
            )),
        }
    }

    fn geo(&mut self, what: &str) -> Result<String, WhereError> {
        match self.value()? {
            (_, Value::GeoJson(text)) => Ok(text),
            (at, v) => Err(self.error(
                at,
                format!(
                    "expected {what} as geo'{{…}}', found {}",
                    value::type_name(&v)
                ),
            )),
        }
    }
}

/// `LIST`, `MAPKEYS` or `MAPVALUES` (any case) as a collection.
pub fn collection_of(word: &str) -> Option<Collection> {
    match word.to_ascii_uppercase().as_str() {
        "LIST" => Some(Collection::List),
        "MAPKEYS" => Some(Collection::MapKeys),
        "MAPVALUES" => Some(Collection::MapValues),
        _ => None,
    }
}

fn is_operator(word: &str) -> bool {
    ["BETWEEN", "WITHIN", "CONTAINS"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// Parses a `where` clause.
pub fn parse(text: &str) -> Result<Where, WhereError> {
    let mut c = Cursor {
        text,
        chars: text.chars().collect(),
        pos: 0,
    };
    let (at, first) = c.word();
    if first.is_empty() {
        return Err(c.error(at, "expected a bin name"));
    }
    // `LIST tags = 'a'`: a collection word followed by the bin; but a bin
    // may itself be called `list` (`list = 5`).
    let (collection, bin_at, bin) = match collection_of(&first) {
        Some(collection) => {
            let (next_at, next) = c.peek_word();
            let operator_next = next.is_empty() || is_operator(&next);
            if operator_next {
                (Collection::Scalar, at, first)
            } else {
                c.word();
                (collection, next_at, next)
            }
        }
        None => (Collection::Scalar, at, first),
    };
    if bin.len() > MAX_BIN_NAME {
        return Err(c.error(
            bin_at,
            format!(
                "bin name '{bin}' is {} bytes; the server allows {MAX_BIN_NAME}",
                bin.len()
            ),
        ));
    }
    c.skip_ws();
    let op_at = c.pos;
    let predicate = if c.chars.get(c.pos) == Some(&'=') {
        c.pos += 1;
        match c.value()? {
            (_, v @ (Value::Int(_) | Value::String(_) | Value::Blob(_))) => Predicate::Equal(v),
            (at, v) => {
                return Err(c.error(
                    at,
                    format!(
                        "an index matches integers, strings or bytes, not {}",
                        value::type_name(&v)
                    ),
                ));
            }
        }
    } else {
        let (_, op) = c.word();
        match op.to_ascii_uppercase().as_str() {
            "BETWEEN" => {
                let low = c.integer()?;
                c.keyword("AND")?;
                let high = c.integer()?;
                Predicate::Between(low, high)
            }
            "WITHIN" => {
                let (_, next) = c.peek_word();
                if next.eq_ignore_ascii_case("RADIUS") {
                    c.word();
                    c.punct('(')?;
                    let lng = c.number()?;
                    c.punct(',')?;
                    let lat = c.number()?;
                    c.punct(',')?;
                    let meters = c.number()?;
                    c.punct(')')?;
                    Predicate::WithinRadius { lng, lat, meters }
                } else {
                    Predicate::WithinRegion(c.geo("a region")?)
                }
            }
            "CONTAINS" => Predicate::Contains(c.geo("a point")?),
            _ => {
                return Err(c.error(
                    op_at,
                    format!(
                        "expected =, BETWEEN, WITHIN or CONTAINS after the bin name, found {}",
                        c.found(&op)
                    ),
                ));
            }
        }
    };
    let geo = matches!(
        predicate,
        Predicate::WithinRegion(_) | Predicate::WithinRadius { .. } | Predicate::Contains(_)
    );
    if geo && collection != Collection::Scalar {
        return Err(c.error(
            at,
            "geo predicates apply to a bin holding GeoJSON, not to list or map parts",
        ));
    }
    c.skip_ws();
    if c.pos < c.chars.len() {
        return Err(c.error(c.pos, "unexpected text after the clause"));
    }
    Ok(Where {
        bin,
        collection,
        predicate,
    })
}

impl Where {
    /// The client's query filter for this clause.
    pub fn to_filter(&self) -> Filter {
        let bin = self.bin.as_str();
        let cit = match self.collection {
            Collection::Scalar => None,
            Collection::List => Some(CollectionIndexType::List),
            Collection::MapKeys => Some(CollectionIndexType::MapKeys),
            Collection::MapValues => Some(CollectionIndexType::MapValues),
        };
        match (&self.predicate, cit) {
            (Predicate::Equal(v), None) => Filter::equal(bin, v.clone()),
            (Predicate::Equal(v), Some(cit)) => Filter::contains(bin, v.clone(), cit),
            (Predicate::Between(a, b), None) => Filter::range(bin, *a, *b),
            (Predicate::Between(a, b), Some(cit)) => Filter::contains_range(bin, *a, *b, cit),
            (Predicate::WithinRegion(region), _) => Filter::geo_within_region(bin, region),
            (Predicate::WithinRadius { lng, lat, meters }, _) => {
                Filter::geo_within_radius(bin, *lng, *lat, *meters)
            }
            (Predicate::Contains(point), _) => Filter::geo_contains(bin, point),
        }
    }
}

impl fmt::Display for Where {
    /// The clause in its canonical form, which [`parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.collection {
            Collection::Scalar => {}
            Collection::List => f.write_str("LIST ")?,
            Collection::MapKeys => f.write_str("MAPKEYS ")?,
            Collection::MapValues => f.write_str("MAPVALUES ")?,
        }
        write!(f, "{} ", self.bin)?;
        match &self.predicate {
            Predicate::Equal(v) => write!(f, "= {}", value::print(v)),
            Predicate::Between(a, b) => write!(f, "BETWEEN {a} AND {b}"),
            Predicate::WithinRegion(region) => {
                write!(
                    f,
                    "WITHIN {}",
                    value::print(&Value::GeoJson(region.clone()))
                )
            }
            Predicate::WithinRadius { lng, lat, meters } => {
                write!(f, "WITHIN RADIUS({lng:?}, {lat:?}, {meters:?})")
            }
            Predicate::Contains(point) => {
                write!(
                    f,
                    "CONTAINS {}",
                    value::print(&Value::GeoJson(point.clone()))
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Where {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> WhereError {
        parse(text).expect_err(text)
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(
            ok("age = 5"),
            Where {
                bin: "age".into(),
                collection: Collection::Scalar,
                predicate: Predicate::Equal(Value::Int(5))
            }
        );
        assert_eq!(
            ok("name = 'bob'").predicate,
            Predicate::Equal(Value::from("bob"))
        );
        assert_eq!(
            ok("b = x'0a1b'").predicate,
            Predicate::Equal(Value::Blob(vec![10, 27]))
        );
        assert_eq!(
            ok("age between -3 and 10").predicate,
            Predicate::Between(-3, 10)
        );
        let w = ok("LIST tags = 'red'");
        assert_eq!((w.bin.as_str(), w.collection), ("tags", Collection::List));
        assert_eq!(
            ok("mapkeys m BETWEEN 1 AND 2").collection,
            Collection::MapKeys
        );
        assert_eq!(ok("MAPVALUES m = 3").collection, Collection::MapValues);
        assert_eq!(
            ok("loc WITHIN RADIUS(-122.5, 37.75, 1000)").predicate,
            Predicate::WithinRadius {
                lng: -122.5,
                lat: 37.75,
                meters: 1000.0
            }
        );
        let region = r#"{"type":"Polygon","coordinates":[[[0,0],[0,1],[1,1],[0,0]]]}"#;
        assert_eq!(
            ok(&format!("loc within geo'{region}'")).predicate,
            Predicate::WithinRegion(region.into())
        );
        let point = r#"{"type":"Point","coordinates":[0.5,0.5]}"#;
        assert_eq!(
            ok(&format!("area CONTAINS geo'{point}'")).predicate,
            Predicate::Contains(point.into())
        );
    }

    #[test]
    fn a_bin_may_be_named_like_a_collection_word() {
        let w = ok("list = 5");
        assert_eq!((w.bin.as_str(), w.collection), ("list", Collection::Scalar));
        let w = ok("list between 1 and 2");
        assert_eq!((w.bin.as_str(), w.collection), ("list", Collection::Scalar));
    }

    #[test]
    fn printed_clauses_parse_back() {
        for text in [
            "age = 5",
            "name = 'a b'",
            "LIST tags BETWEEN 1 AND 9",
            "MAPKEYS m = x'00ff'",
            "loc WITHIN RADIUS(1.5, -2.0, 30.0)",
            r#"loc WITHIN geo'{"type":"Point","coordinates":[1,2]}'"#,
        ] {
            let w = ok(text);
            assert_eq!(ok(&w.to_string()), w, "{text} printed as {w}");
        }
    }

    #[test]
    fn errors_say_the_column_and_what_was_wrong() {
        assert_eq!(err("").message, "expected a bin name");
        let e = err("age BETWEEN 1 OR 2");
        assert_eq!(
            (e.column, e.message.as_str()),
            (15, "expected AND, found 'OR'")
        );
        let e = err("age BETWEEN 1.5 AND 2");
        assert_eq!(e.column, 13);
        assert!(e.message.contains("integers, found a float"), "{e}");
        let e = err("amount > 5");
        assert_eq!(
            (e.column, e.message.as_str()),
            (
                8,
                "expected =, BETWEEN, WITHIN or CONTAINS after the bin name, found '>'"
            )
        );
        let e = err("age");
        assert!(
            e.message.ends_with("after the bin name, found the end"),
            "{e}"
        );
        assert!(
            err("age BETWEEN 1")
                .message
                .ends_with("expected AND, found the end")
        );
        assert!(
            err("age BETWEEN 1 + 2")
                .message
                .ends_with("expected AND, found '+'")
        );
        let e = err("age = [1]");
        assert_eq!(e.column, 7);
        let e = err("age = 'open");
        assert_eq!(e.column, 7, "the string that is not closed: {e}");
        let e = err("age = 5 extra");
        assert_eq!(
            (e.column, e.message.as_str()),
            (9, "unexpected text after the clause")
        );
        let e = err("a_very_long_bin_name = 1");
        assert!(e.message.contains("15"), "{e}");
        let e = err("loc WITHIN RADIUS(1, 2 3)");
        assert_eq!(e.column, 24, "{e}");
        let e = err("LIST loc WITHIN RADIUS(1, 2, 3)");
        assert_eq!(e.column, 1, "{e}");
        let e = err("loc CONTAINS 'x'");
        assert!(e.message.contains("geo'"), "{e}");
    }

    #[test]
    fn clauses_become_the_clients_filters() {
        assert_eq!(ok("age = 5").to_filter(), Filter::equal("age", 5i64));
        assert_eq!(
            ok("age BETWEEN 1 AND 3").to_filter(),
            Filter::range("age", 1i64, 3i64)
        );
        assert_eq!(
            ok("LIST tags = 'x'").to_filter(),
            Filter::contains("tags", "x", CollectionIndexType::List)
        );
        assert_eq!(
            ok("MAPVALUES m BETWEEN 1 AND 3").to_filter(),
            Filter::contains_range("m", 1i64, 3i64, CollectionIndexType::MapValues)
        );
        assert_eq!(
            ok("loc WITHIN RADIUS(1, 2, 3)").to_filter(),
            Filter::geo_within_radius("loc", 1.0, 2.0, 3.0)
        );
    }
}
