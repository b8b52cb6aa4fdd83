//! Name completion for the console's form fields, from what the console has
//! seen: bin names in records it read, indexes and their bins, modules and
//! their functions. Pure: text and cursor in, candidates out.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::IndexInfo;
use crate::where_clause::collection_of;

/// What the console knows of names on the server, fed from the answers it gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    /// Bin names seen in records the console read.
    pub bins: BTreeSet<String>,
    /// Index name → the bin it covers.
    pub indexes: BTreeMap<String, String>,
    /// Module name (no `.lua`) → its global functions.
    pub modules: BTreeMap<String, Vec<String>>,
}

impl Known {
    pub fn add_bins<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if !self.bins.contains(name) {
                self.bins.insert(name.to_string());
            }
        }
    }

    pub fn set_indexes(&mut self, list: &[IndexInfo]) {
        self.indexes = list
            .iter()
            .map(|ix| (ix.name.clone(), ix.bin.clone()))
            .collect();
    }

    /// The registered modules now; functions already known are kept.
    pub fn set_modules<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let mut modules = BTreeMap::new();
        for name in names {
            let name = name.strip_suffix(".lua").unwrap_or(name);
            let functions = self.modules.remove(name).unwrap_or_default();
            modules.insert(name.to_string(), functions);
        }
        self.modules = modules;
    }

    pub fn set_functions(&mut self, module: &str, functions: Vec<String>) {
        let module = module.strip_suffix(".lua").unwrap_or(module);
        self.modules.insert(module.to_string(), functions);
    }

    /// The index covering `bin`, if one is known.
    fn index_on(&self, bin: &str) -> Option<&str> {
        self.indexes
            .iter()
            .find(|(_, b)| *b == bin)
            .map(|(name, _)| name.as_str())
    }
}

/// Which field is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context<'a> {
    Module,
    /// A function of this module.
    Function {
        module: &'a str,
    },
    /// A bin name.
    Bin,
    /// A `where` clause: bins, collection words, operators.
    Where,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub text: String,
    /// Why it is offered ("index test_sales_amount", "seen in a record").
    pub detail: String,
}

/// The start of the word before the cursor (in characters, `start..cursor`)
/// and what may take its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub start: usize,
    pub cursor: usize,
    /// The part of the word before the cursor, which candidates start with.
    pub prefix: String,
    pub candidates: Vec<Candidate>,
}

/// Characters that end a name.
fn separates(c: char) -> bool {
    c.is_whitespace() || "=(),'\"[]{}:".contains(c)
}

/// Proposes names for the word at `cursor` (a character index) of `text`.
pub fn complete(context: Context, text: &str, cursor: usize, known: &Known) -> Completion {
    let chars: Vec<char> = text.chars().collect();
    let cursor = cursor.min(chars.len());
    let mut start = cursor;
    while start > 0 && !separates(chars[start - 1]) {
        start -= 1;
    }
    let prefix: String = chars[start..cursor].iter().collect();
    let before: String = chars[..start].iter().collect();
    let mut candidates = match context {
        Context::Module => known
            .modules
            .keys()
            .map(|m| candidate(m, "module"))
            .collect(),
        Context::Function { module } => {
            let module = module.trim();
            let module = module.strip_suffix(".lua").unwrap_or(module);
            known
                .modules
                .get(module)
                .map(|fs| fs.iter().map(|f| candidate(f, module)).collect())
                .unwrap_or_default()
        }
        Context::Bin => bins(known),
        Context::Where => where_words(&before, &prefix, known),
    };
    candidates.retain(|c| c.text.starts_with(&prefix) || keyword_match(&c.text, &prefix));
    Completion {
        start,
        cursor,
        prefix,
        candidates,
    }
}

fn candidate(text: &str, detail: &str) -> Candidate {
    Candidate {
        text: text.to_string(),
        detail: detail.to_string(),
    }
}

/// Keywords match in any case.
fn keyword_match(keyword: &str, prefix: &str) -> bool {
    keyword.chars().all(|c| c.is_ascii_uppercase())
        && keyword
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
}

/// Indexed bins first (a `where` needs an index), then the others seen.
fn bins(known: &Known) -> Vec<Candidate> {
    let mut indexed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for bin in known.indexes.values() {
        if indexed.insert(bin.as_str()) {
            let name = known.index_on(bin).unwrap_or_default();
            out.push(candidate(bin, &format!("index {name}")));
        }
    }
    for bin in &known.bins {
        if !indexed.contains(bin.as_str()) {
            out.push(candidate(bin, "seen in a record, no index"));
        }
    }
    out
}

/// What may come next in a `where` clause after the words `before`.
fn where_words(before: &str, prefix: &str, known: &Known) -> Vec<Candidate> {
    let words: Vec<&str> = before.split_whitespace().collect();
    let keyword = |k: &str, detail: &str| {
        // Follow the case the user types in.
        let lower = !prefix.is_empty() && prefix.chars().all(|c| !c.is_ascii_uppercase());
        let text = if lower {
            k.to_ascii_lowercase()
        } else {
            k.to_string()
        };
        candidate(&text, detail)
    };
    let has_collection = words.first().is_some_and(|w| collection_of(w).is_some());
    let bin_words = usize::from(has_collection) + 1;
    match words.len() {
        0 => {
            let mut out = bins(known);
            for k in ["LIST", "MAPKEYS", "MAPVALUES"] {
                out.push(keyword(k, "collection index"));
            }
            out
        }
        1 if has_collection => bins(known),
        n if n == bin_words => [
            ("BETWEEN", "A AND B"),
            ("WITHIN", "geo region or RADIUS(lng, lat, m)"),
            ("CONTAINS", "geo point"),
        ]
        .iter()
        .map(|(k, d)| keyword(k, d))
        .collect(),
        n if n == bin_words + 2 && words[bin_words].eq_ignore_ascii_case("BETWEEN") => {
            vec![keyword("AND", "upper bound")]
        }
        n if n == bin_words + 1 && words[bin_words].eq_ignore_ascii_case("WITHIN") => {
            vec![keyword("RADIUS", "(lng, lat, meters)")]
        }
        _ => Vec::new(),
    }
}

impl Completion {
    /// The longest text every candidate starts with.
    pub fn common(&self) -> Option<String> {
        let first = &self.candidates.first()?.text;
        let mut len = first.len();
        for c in &self.candidates[1..] {
            len = first
                .char_indices()
                .zip(c.text.chars())
                .find(|((_, a), b)| a != b)
                .map_or(len.min(c.text.len()), |((i, _), _)| i)
                .min(len);
        }
        Some(first[..len].to_string())
    }

    /// `text` with the word's start replaced by `with` (what follows the
    /// cursor is kept), and the cursor after it.
    pub fn replace(&self, text: &str, with: &str) -> (String, usize) {
        let chars: Vec<char> = text.chars().collect();
        let mut out: String = chars[..self.start].iter().collect();
        out.push_str(with);
        let cursor = self.start + with.chars().count();
        out.extend(&chars[self.cursor.min(chars.len())..]);
        (out, cursor)
    }
}

/// What Tab does in a field: the word before the cursor completed as far as
/// the candidates agree (a space after a sole `where` word at the end of the
/// line), and the candidates; `None` when that would add nothing.
pub fn tab(
    context: Context,
    text: &str,
    cursor: usize,
    known: &Known,
) -> Option<(String, usize, Vec<Candidate>)> {
    let completion = complete(context, text, cursor, known);
    let common = completion.common()?;
    if common.chars().count() <= completion.prefix.chars().count() {
        return None;
    }
    let sole = completion.candidates.len() == 1;
    let at_end = completion.cursor >= text.chars().count();
    let (mut out, mut cursor) = completion.replace(text, &common);
    if sole && at_end && context == Context::Where {
        out.push(' ');
        cursor += 1;
    }
    Some((out, cursor, completion.candidates))
}

/// Tab in a `where` line, for the form's `where` field.
pub fn tab_where(text: &str, cursor: usize, known: &Known) -> Option<(String, usize)> {
    tab(Context::Where, text, cursor, known).map(|(text, cursor, _)| (text, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let mut k = Known::default();
        k.add_bins(["amount", "region", "count"]);
        k.set_indexes(&[IndexInfo {
            ns: "test".into(),
            name: "test_sales_amount".into(),
            set: Some("sales".into()),
            bin: "amount".into(),
            kind: "numeric".into(),
            collection: "default".into(),
            state: "RW".into(),
        }]);
        k.set_modules(["counter.lua", "sum.lua", "stamp.lua"]);
        k.set_functions("sum.lua", vec!["total".into(), "to_amount".into()]);
        k
    }

    fn k_counter() -> Vec<Candidate> {
        vec![candidate("counter", "module")]
    }

    fn texts(c: &Completion) -> Vec<&str> {
        c.candidates.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn modules_and_their_functions() {
        let k = known();
        let c = complete(Context::Module, "s", 1, &k);
        assert_eq!(texts(&c), ["stamp", "sum"]);
        assert_eq!(c.common().as_deref(), Some("s"));
        assert_eq!(tab(Context::Module, "su", 2, &k).unwrap().0, "sum");
        assert_eq!(tab(Context::Module, "s", 1, &k), None, "nothing to add");
        let f = Context::Function { module: "sum" };
        assert_eq!(texts(&complete(f, "t", 1, &k)), ["total", "to_amount"]);
        assert_eq!(tab(f, "t", 1, &k).unwrap().0, "to");
        assert_eq!(tab(f, "tot", 3, &k).unwrap().0, "total");
        let none = Context::Function { module: "nope" };
        assert!(complete(none, "", 0, &k).candidates.is_empty());
        assert_eq!(
            tab(Context::Module, "cou", 3, &k).unwrap(),
            ("counter".into(), 7, k_counter())
        );
        assert_eq!(tab(Context::Module, "counter", 7, &k), None);
        // What follows the cursor is kept.
        assert_eq!(tab(Context::Module, "cx", 1, &k).unwrap().0, "counterx");
    }

    #[test]
    fn bins_put_indexed_ones_first() {
        let k = known();
        let c = complete(Context::Bin, "", 0, &k);
        assert_eq!(texts(&c), ["amount", "count", "region"]);
        assert_eq!(c.candidates[0].detail, "index test_sales_amount");
        assert_eq!(c.candidates[1].detail, "seen in a record, no index");
        assert_eq!(texts(&complete(Context::Bin, "co", 2, &k)), ["count"]);
    }

    #[test]
    fn where_clause_words_follow_the_syntax() {
        let k = known();
        let first = complete(Context::Where, "", 0, &k);
        assert_eq!(
            texts(&first),
            ["amount", "count", "region", "LIST", "MAPKEYS", "MAPVALUES"]
        );
        assert_eq!(tab_where("am", 2, &k).unwrap(), ("amount ".into(), 7));
        assert_eq!(
            texts(&complete(Context::Where, "map", 3, &k)),
            ["mapkeys", "mapvalues"]
        );
        assert_eq!(
            texts(&complete(Context::Where, "LIST r", 6, &k)),
            ["region"]
        );
        assert_eq!(
            texts(&complete(Context::Where, "amount ", 7, &k)),
            ["BETWEEN", "WITHIN", "CONTAINS"]
        );
        assert_eq!(tab_where("amount be", 9, &k).unwrap().0, "amount between ");
        assert_eq!(
            tab_where("amount BETWEEN 10 A", 19, &k).unwrap().0,
            "amount BETWEEN 10 AND "
        );
        assert_eq!(
            texts(&complete(Context::Where, "MAPKEYS m WITHIN R", 18, &k)),
            ["RADIUS"]
        );
        assert!(
            complete(Context::Where, "amount = 5 ", 11, &k)
                .candidates
                .is_empty()
        );
        // Completing in the middle keeps what follows the word.
        assert_eq!(
            tab_where("reg BETWEEN 1 AND 2", 3, &k).unwrap(),
            ("region BETWEEN 1 AND 2".into(), 6)
        );
    }

    #[test]
    fn known_names_follow_the_answers() {
        let mut k = known();
        k.set_modules(["sum.lua", "new.lua"]);
        assert_eq!(k.modules.keys().collect::<Vec<_>>(), ["new", "sum"]);
        assert_eq!(k.modules["sum"], ["total", "to_amount"], "functions kept");
        k.set_indexes(&[]);
        assert_eq!(
            complete(Context::Bin, "a", 1, &k).candidates[0].detail,
            "seen in a record, no index"
        );
    }
}
