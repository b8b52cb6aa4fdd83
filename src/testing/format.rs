//! The scenario file (`*.udftest.toml`): read into a [`Scenario`], with the
//! line and column of anything wrong.
//!
//! Keys are read like the command line's (a bare word is a string); every
//! other value (arguments, expected results, bins) is a literal of
//! [`crate::value`], kept in a TOML string.

use std::ops::Range;
use std::path::{Path, PathBuf};

use aerospike::Value;
use toml_edit::{Document, Item, Table, TableLike};

use crate::cli::{Call, NsSet};
use crate::client::{IndexSpec, RecordKey, Scope};
use crate::text::plural;
use crate::value;
use crate::where_clause::{self, Collection};

/// The suffix that marks a scenario file.
pub const SUFFIX: &str = ".udftest.toml";

/// A place in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The line and column of byte `offset` in `text`.
    pub fn at(text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// A file that cannot be run: where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    pub path: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.pos.line,
            self.pos.column,
            self.message
        )
    }
}

/// Where a module's source came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(PathBuf),
    /// The scenario file's line of each line of the source.
    Inline(Vec<usize>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// The registered name, `counter.lua`.
    pub name: String,
    pub source: String,
    pub origin: Origin,
    pub pos: Pos,
}

/// A record written before the steps run.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub key: RecordKey,
    pub bins: Vec<(String, Value)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Apply {
        key: RecordKey,
        call: Call,
        args: Vec<Value>,
    },
    /// One record UDF on many keys in one batch request (never empty).
    BatchApply {
        keys: Vec<RecordKey>,
        call: Call,
        args: Vec<Value>,
    },
    Get {
        key: RecordKey,
    },
    Put {
        key: RecordKey,
        bins: Vec<(String, Value)>,
    },
    Remove {
        key: RecordKey,
    },
    /// A stream UDF over the scope's records.
    Aggregate {
        scope: Scope,
        call: Call,
        args: Vec<Value>,
    },
    /// A background UDF job over the scope, waited for until it is done.
    Execute {
        scope: Scope,
        call: Call,
        args: Vec<Value>,
    },
    /// The scope's records (`bins`: only these).
    Query {
        scope: Scope,
        bins: Option<Vec<String>>,
    },
}

impl Action {
    /// The one record a step is about (none for a batch or the query path).
    pub fn key(&self) -> Option<&RecordKey> {
        match self {
            Action::Apply { key, .. }
            | Action::Get { key }
            | Action::Put { key, .. }
            | Action::Remove { key } => Some(key),
            Action::BatchApply { .. }
            | Action::Aggregate { .. }
            | Action::Execute { .. }
            | Action::Query { .. } => None,
        }
    }

    /// The records a query-path step reads.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Action::Aggregate { scope, .. }
            | Action::Execute { scope, .. }
            | Action::Query { scope, .. } => Some(scope),
            _ => None,
        }
    }

    /// One line saying what the step does, in the console's words.
    pub fn describe(&self) -> String {
        match self {
            Action::Apply { key, call, args } => format!(
                "{}.{}({}) @ {}",
                call.module,
                call.function,
                args.iter().map(value::print).collect::<Vec<_>>().join(", "),
                value::print(&key.key)
            ),
            Action::BatchApply { keys, call, args } => {
                // A long batch is named by its first keys and its size.
                let mut named: Vec<String> =
                    keys.iter().take(3).map(|k| value::print(&k.key)).collect();
                if keys.len() > 3 {
                    named.push(format!("… ({} keys)", keys.len()));
                }
                format!(
                    "{}.{}({}) @ {}",
                    call.module,
                    call.function,
                    print_list(args),
                    named.join(", ")
                )
            }
            Action::Get { key } => format!("get {}", value::print(&key.key)),
            Action::Put { key, .. } => format!("put {}", value::print(&key.key)),
            Action::Remove { key } => format!("remove {}", value::print(&key.key)),
            Action::Aggregate { scope, call, args } => format!(
                "aggregate {}.{}({}) on {}",
                call.module,
                call.function,
                print_list(args),
                scope_text(scope)
            ),
            Action::Execute { scope, call, args } => format!(
                "execute {}.{}({}) on {}",
                call.module,
                call.function,
                print_list(args),
                scope_text(scope)
            ),
            Action::Query { scope, .. } => format!("query {}", scope_text(scope)),
        }
    }
}

fn print_list(values: &[Value]) -> String {
    values
        .iter()
        .map(value::print)
        .collect::<Vec<_>>()
        .join(", ")
}

fn scope_text(scope: &Scope) -> String {
    let mut text = scope.ns.clone();
    if let Some(set) = &scope.set {
        text.push('.');
        text.push_str(set);
    }
    if let Some(clause) = &scope.where_clause {
        text.push_str(&format!(" where {clause}"));
    }
    text
}

/// How an error message is matched.
#[derive(Debug, Clone)]
pub enum MessageMatch {
    Exact(String),
    Pattern(regex::Regex),
}

impl PartialEq for MessageMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (MessageMatch::Exact(a), MessageMatch::Exact(b)) => a == b,
            (MessageMatch::Pattern(a), MessageMatch::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorExpect {
    pub code: Option<i32>,
    pub message: Option<MessageMatch>,
}

/// What one key of a batch apply answers: a value or an error.
#[derive(Debug, Clone, PartialEq)]
pub enum RowExpect {
    Value(Value),
    Error(ErrorExpect),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordExpect {
    Absent,
    Present {
        /// `None`: the bins are not compared.
        bins: Option<Vec<(String, Value)>>,
        generation: Option<u32>,
        /// `Some(None)`: never expires.
        ttl: Option<Option<u32>>,
    },
}

/// A background job's counts and status when it is done (each optional).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobExpect {
    pub succeeded: Option<u64>,
    pub failed: Option<u64>,
    pub filtered: Option<u64>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expect {
    pub value: Option<Value>,
    pub error: Option<ErrorExpect>,
    pub record: Option<RecordExpect>,
    pub existed: Option<bool>,
    /// An aggregation's values, or a query's records as bin maps: compared
    /// as a multiset (neither comes in a defined order).
    pub values: Option<Vec<Value>>,
    /// How many records a query returns.
    pub count: Option<u64>,
    pub job: Option<JobExpect>,
    /// A batch apply's answers, one per key in the step's order.
    pub rows: Option<Vec<RowExpect>>,
}

/// A secondary index created before the records are written.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub spec: IndexSpec,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Index in the file's `[[step]]` array.
    pub index: usize,
    pub name: Option<String>,
    pub pos: Pos,
    pub action: Action,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub path: PathBuf,
    pub modules: Vec<Module>,
    pub records: Vec<Seed>,
    pub indexes: Vec<IndexDef>,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Whether a step runs a stream UDF.
    pub fn aggregates(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Aggregate { .. }))
    }
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_path_buf(),
        pos: Pos { line: 1, column: 1 },
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Parses a scenario; module paths are relative to `path`'s folder.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, FileError> {
    Reader { path, text }.scenario()
}

/// A table and where it starts.
type Spanned<'t> = (&'t dyn TableLike, Option<Range<usize>>);

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
}

const TOP_KEYS: [&str; 5] = ["ns", "modules", "record", "index", "step"];
const KINDS: [&str; 7] = [
    "apply",
    "get",
    "put",
    "remove",
    "aggregate",
    "execute",
    "query",
];
const STEP_KEYS: [&str; 19] = [
    "name",
    "ns",
    "apply",
    "get",
    "put",
    "remove",
    "aggregate",
    "execute",
    "query",
    "key",
    "keys",
    "args",
    "bins",
    "where",
    "expect",
    "error",
    "record",
    "records",
    "job",
];

impl Reader<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> FileError {
        FileError {
            path: self.path.to_path_buf(),
            pos: Pos::at(self.text, span.map_or(0, |s| s.start)),
            message: message.into(),
        }
    }

    fn scenario(&self) -> Result<Scenario, FileError> {
        let doc = Document::parse(self.text).map_err(|e| self.error(e.span(), e.message()))?;
        let root = doc.as_table();
        self.known_keys(root, &TOP_KEYS, "at the top")?;
        let ns = match root.get("ns") {
            Some(item) => self.ns(item)?,
            None => NsSet::parse("test").expect("a valid namespace"),
        };
        let modules = match root.get("modules") {
            Some(item) => self.modules(item)?,
            None => Vec::new(),
        };
        let mut records = Vec::new();
        for (table, span) in self.tables(root, "record")? {
            self.known_keys(table, &["ns", "key", "bins"], "in a [[record]]")?;
            let ns = self.ns_or(table, &ns)?;
            records.push(Seed {
                key: self.key(table, "key", &ns)?,
                bins: self.bins(table, true)?,
                pos: self.pos(span),
            });
        }
        let mut indexes = Vec::new();
        for (table, span) in self.tables(root, "index")? {
            indexes.push(self.index(table, span, &ns)?);
        }
        let mut steps = Vec::new();
        for (index, (table, span)) in self.tables(root, "step")?.into_iter().enumerate() {
            steps.push(self.step(index, table, span, &ns)?);
        }
        if steps.is_empty() {
            return Err(self.error(None, "no [[step]] in the file"));
        }
        Ok(Scenario {
            path: self.path.to_path_buf(),
            modules,
            records,
            indexes,
            steps,
        })
    }

    fn index(
        &self,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
        default_ns: &NsSet,
    ) -> Result<IndexDef, FileError> {
        self.known_keys(
            table,
            &["ns", "bin", "type", "collection", "name"],
            "in an [[index]]",
        )?;
        let ns = self.ns_or(table, default_ns)?;
        let field = |name: &str| -> Result<Option<(&Item, String)>, FileError> {
            match table.get(name) {
                None => Ok(None),
                Some(item) => Ok(Some((item, self.string(item, name)?.to_string()))),
            }
        };
        let (_, bin) = field("bin")?
            .ok_or_else(|| self.error(span.clone(), "an [[index]] needs bin = \"NAME\""))?;
        let (kind_item, kind) = field("type")?.ok_or_else(|| {
            self.error(
                span.clone(),
                "an [[index]] needs type = \"numeric\", \"string\", \"blob\" or \"geo2dsphere\"",
            )
        })?;
        let kind = kind.to_ascii_lowercase();
        if !["numeric", "string", "blob", "geo2dsphere"].contains(&kind.as_str()) {
            return Err(self.error(
                kind_item.span(),
                format!("index type '{kind}': numeric, string, blob or geo2dsphere"),
            ));
        }
        let collection = match field("collection")? {
            None => Collection::Scalar,
            Some((item, c)) => match crate::where_clause::collection_of(&c) {
                Some(collection) => collection,
                None => {
                    return Err(self.error(
                        item.span(),
                        format!("collection '{c}': list, mapkeys or mapvalues"),
                    ));
                }
            },
        };
        let name = match field("name")? {
            Some((_, name)) => name,
            None => format!(
                "{}_{}_{bin}",
                ns.namespace,
                ns.set.as_deref().unwrap_or("all")
            ),
        };
        Ok(IndexDef {
            spec: IndexSpec {
                ns: ns.namespace.clone(),
                set: ns.set.clone(),
                bin,
                kind,
                collection,
                name,
            },
            pos: self.pos(span),
        })
    }

    /// A query-path step's records: its namespace and set with an optional `where`.
    fn scope(&self, table: &dyn TableLike, ns: &NsSet) -> Result<Scope, FileError> {
        let where_clause = match table.get("where") {
            None => None,
            Some(item) => {
                let text = self.string(item, "where")?;
                Some(where_clause::parse(text).map_err(|e| FileError {
                    path: self.path.to_path_buf(),
                    pos: self.string_pos(item, e.column - 1),
                    message: format!("where: {}", e.message),
                })?)
            }
        };
        Ok(Scope {
            ns: ns.namespace.clone(),
            set: ns.set.clone(),
            where_clause,
        })
    }

    fn args(&self, table: &dyn TableLike) -> Result<Vec<Value>, FileError> {
        match table.get("args") {
            None => Ok(Vec::new()),
            Some(item) => {
                let text = self.string(item, "args")?;
                self.literal_list(item, "args", text)
            }
        }
    }

    fn call(&self, item: &Item, what: &str) -> Result<Call, FileError> {
        let text = self.string(item, what)?;
        Call::parse(text).map_err(|e| self.error(item.span(), e))
    }

    fn count(&self, item: &Item, what: &str) -> Result<u64, FileError> {
        self.integer(item, &format!("{what} must be a whole number"))
    }

    /// An integer that fits `T`, or `problem` at the item.
    fn integer<T: TryFrom<i64>>(&self, item: &Item, problem: &str) -> Result<T, FileError> {
        item.as_integer()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| self.error(item.span(), problem))
    }

    fn job_expect(&self, item: &Item) -> Result<JobExpect, FileError> {
        let table = item.as_table_like().ok_or_else(|| {
            self.error(
                item.span(),
                "job is { succeeded = N, failed = N, filtered = N, status = \"done(ok)\" }",
            )
        })?;
        self.known_keys(
            table,
            &["succeeded", "failed", "filtered", "status"],
            "in job",
        )?;
        let number = |name: &str| match table.get(name) {
            None => Ok(None),
            Some(n) => self.count(n, name).map(Some),
        };
        Ok(JobExpect {
            succeeded: number("succeeded")?,
            failed: number("failed")?,
            filtered: number("filtered")?,
            status: match table.get("status") {
                None => None,
                Some(s) => Some(self.string(s, "status")?.to_string()),
            },
        })
    }

    fn pos(&self, span: Option<Range<usize>>) -> Pos {
        Pos::at(self.text, span.map_or(0, |s| s.start))
    }

    fn known_keys(&self, table: &dyn TableLike, known: &[&str], at: &str) -> Result<(), FileError> {
        for (name, _) in table.iter() {
            if !known.contains(&name) {
                let span = table.key(name).and_then(|k| k.span());
                return Err(self.error(
                    span,
                    format!("unknown key '{name}' {at} (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The tables of an array of tables (`[[step]]`), with their spans.
    fn tables<'t>(&self, root: &'t Table, name: &str) -> Result<Vec<Spanned<'t>>, FileError> {
        match root.get(name) {
            None => Ok(Vec::new()),
            Some(Item::ArrayOfTables(array)) => Ok(array
                .iter()
                .map(|t| (t as &dyn TableLike, t.span()))
                .collect()),
            Some(item) => Err(self.error(
                item.span(),
                format!("'{name}' is a list of tables: write [[{name}]]"),
            )),
        }
    }

    fn string<'i>(&self, item: &'i Item, what: &str) -> Result<&'i str, FileError> {
        item.as_str()
            .ok_or_else(|| self.error(item.span(), format!("{what} must be a string")))
    }

    fn ns(&self, item: &Item) -> Result<NsSet, FileError> {
        let text = self.string(item, "ns")?;
        NsSet::parse(text).map_err(|e| self.error(item.span(), e))
    }

    fn ns_or(&self, table: &dyn TableLike, default: &NsSet) -> Result<NsSet, FileError> {
        match table.get("ns") {
            Some(item) => self.ns(item),
            None => Ok(default.clone()),
        }
    }

    /// A literal in a TOML string; an error points at its place in the file.
    fn literal(&self, item: &Item, what: &str) -> Result<Value, FileError> {
        let text = self.string(item, what)?;
        value::parse(text).map_err(|e| self.literal_error(item, what, &e, e.offset(text)))
    }

    /// Comma-separated literals (`args`, `keys`), `text` being `item`'s string.
    fn literal_list(&self, item: &Item, what: &str, text: &str) -> Result<Vec<Value>, FileError> {
        let list = format!("[{text}]");
        match value::parse(&list) {
            Ok(Value::List(values)) => Ok(values),
            Ok(_) => unreachable!("brackets make a list"),
            // Less the `[` put in front; past the end is the closing quote.
            Err(e) => Err(self.literal_error(item, what, &e, e.offset(&list).saturating_sub(1))),
        }
    }

    /// A literal error at character `index` of `item`'s string.
    fn literal_error(
        &self,
        item: &Item,
        what: &str,
        e: &value::ParseError,
        index: usize,
    ) -> FileError {
        FileError {
            path: self.path.to_path_buf(),
            pos: self.string_pos(item, index),
            message: format!("{what}: {}", e.message),
        }
    }

    /// Where character `index` of a string item's value is in the file (an
    /// index past its end: the closing quote).
    fn string_pos(&self, item: &Item, index: usize) -> Pos {
        let Some(span) = item.span() else {
            return self.pos(None);
        };
        let offsets = string_offsets(self.text, span);
        Pos::at(self.text, offsets[index.min(offsets.len() - 1)])
    }

    /// The file's line of each line of a string item's value: an error in
    /// an inline module is shown at its line in the scenario file.
    fn file_lines(&self, item: &Item) -> Vec<usize> {
        let (Some(span), Some(value)) = (item.span(), item.as_str()) else {
            return Vec::new();
        };
        let offsets = string_offsets(self.text, span);
        let starts = std::iter::once(0).chain(
            value
                .chars()
                .enumerate()
                .filter_map(|(i, c)| (c == '\n').then_some(i + 1)),
        );
        let (mut line, mut last) = (1, 0);
        starts
            .map(|start| {
                let at = offsets[start.min(offsets.len() - 1)];
                line += self.text[last..at].matches('\n').count();
                last = at;
                line
            })
            .collect()
    }

    fn key(&self, table: &dyn TableLike, name: &str, ns: &NsSet) -> Result<RecordKey, FileError> {
        let item = table.get(name).ok_or_else(|| {
            self.error(
                table_span(table),
                format!("'{name}' is missing (the record's key)"),
            )
        })?;
        let key = match item {
            Item::Value(toml_edit::Value::Integer(i)) => Value::Int(*i.value()),
            _ => {
                let text = self.string(item, "a key")?;
                value::parse_arg(text)
                    .map_err(|e| self.literal_error(item, "key", &e, e.offset(text)))?
            }
        };
        self.record_key(item, key, ns)
    }

    /// A key value checked for its type, in the step's namespace and set.
    fn record_key(&self, item: &Item, key: Value, ns: &NsSet) -> Result<RecordKey, FileError> {
        if !matches!(key, Value::Int(_) | Value::String(_) | Value::Blob(_)) {
            return Err(self.error(
                item.span(),
                format!(
                    "a key is an integer, a string or bytes, not {}",
                    value::type_name(&key)
                ),
            ));
        }
        Ok(RecordKey {
            ns: ns.namespace.clone(),
            set: ns.set.clone(),
            key,
        })
    }

    /// A batch's keys: `"'a', 'b', 3"` (literals, as `args`) or
    /// `["a", "b", 3]` (each read as `key` is, so a bare word is a string).
    fn keys(&self, item: &Item, ns: &NsSet) -> Result<Vec<RecordKey>, FileError> {
        let keys = if let Some(array) = item.as_array() {
            let mut keys = Vec::new();
            for entry in array.iter() {
                // An entry as an item of its own keeps its span for errors.
                let entry = Item::Value(entry.clone());
                let key = match &entry {
                    Item::Value(toml_edit::Value::Integer(i)) => Value::Int(*i.value()),
                    Item::Value(toml_edit::Value::String(text)) => {
                        let text = text.value();
                        value::parse_arg(text)
                            .map_err(|e| self.literal_error(&entry, "key", &e, e.offset(text)))?
                    }
                    _ => {
                        return Err(self.error(
                            entry.span(),
                            "a key in keys is an integer or a string (\"a\", \"x'0a'\")",
                        ));
                    }
                };
                keys.push(self.record_key(&entry, key, ns)?);
            }
            keys
        } else {
            let text = self.string(item, "keys (\"'a', 'b'\" or [\"a\", \"b\"])")?;
            self.literal_list(item, "keys", text)?
                .into_iter()
                .map(|key| self.record_key(item, key, ns))
                .collect::<Result<_, _>>()?
        };
        if keys.is_empty() {
            return Err(self.error(item.span(), "keys is empty: give at least one key"));
        }
        Ok(keys)
    }

    /// A batch step's `expect`: one entry per key, a value literal or an
    /// error table (`{ code = 2, pattern = "…" }`).
    fn row_expects(&self, item: &Item, keys: usize) -> Result<Vec<RowExpect>, FileError> {
        let array = item.as_array().ok_or_else(|| {
            self.error(
                item.span(),
                "for a batch apply, expect is a list with an entry per key: [\"5\", { code = 100, pattern = \"…\" }]",
            )
        })?;
        if array.len() != keys {
            return Err(self.error(
                item.span(),
                format!(
                    "expect has {} for {}",
                    plural(array.len(), "entry", "entries"),
                    plural(keys, "key", "keys")
                ),
            ));
        }
        array
            .iter()
            .map(|entry| {
                let entry = Item::Value(entry.clone());
                if entry.is_str() {
                    Ok(RowExpect::Value(self.literal(&entry, "expect")?))
                } else if entry.is_inline_table() {
                    Ok(RowExpect::Error(self.error_expect(&entry)?))
                } else {
                    Err(self.error(
                        entry.span(),
                        "an entry of expect is a value literal \"…\" or an error { code = N, message = \"…\" }",
                    ))
                }
            })
            .collect()
    }

    fn bins(
        &self,
        table: &dyn TableLike,
        required: bool,
    ) -> Result<Vec<(String, Value)>, FileError> {
        let Some(item) = table.get("bins") else {
            if required {
                return Err(self.error(table_span(table), "'bins' is missing"));
            }
            return Ok(Vec::new());
        };
        let bins = item.as_table_like().ok_or_else(|| {
            self.error(item.span(), "bins is a table: bins = { name = \"value\" }")
        })?;
        let mut out = Vec::new();
        for (name, v) in bins.iter() {
            if name.is_empty() || name.len() > 15 {
                let span = bins.key(name).and_then(|k| k.span());
                return Err(self.error(span, format!("bin name '{name}' must be 1 to 15 bytes")));
            }
            out.push((name.to_string(), self.literal(v, &format!("bin {name}"))?));
        }
        Ok(out)
    }

    fn modules(&self, item: &Item) -> Result<Vec<Module>, FileError> {
        let table = item.as_table_like().ok_or_else(|| {
            self.error(
                item.span(),
                "modules is a table: [modules] name = \"path.lua\"",
            )
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut modules = Vec::new();
        for (name, entry) in table.iter() {
            let pos = self.pos(table.key(name).and_then(|k| k.span()));
            let file = crate::client::module_file(name);
            let (source, origin) = if let Some(rel) = entry.as_str() {
                let full = dir.join(rel);
                let source = std::fs::read_to_string(&full).map_err(|e| {
                    self.error(entry.span(), format!("cannot read {}: {e}", full.display()))
                })?;
                (source, Origin::File(full))
            } else if let Some(inline) = entry.as_table_like() {
                let (item, source) = inline
                    .get("source")
                    .and_then(|item| Some((item, item.as_str()?)))
                    .ok_or_else(|| {
                        self.error(entry.span(), "an inline module is { source = '''…''' }")
                    })?;
                (source.to_string(), Origin::Inline(self.file_lines(item)))
            } else {
                return Err(self.error(
                    entry.span(),
                    format!("module {name}: a path (\"{name}.lua\") or {{ source = '''…''' }}"),
                ));
            };
            modules.push(Module {
                name: file,
                source,
                origin,
                pos,
            });
        }
        Ok(modules)
    }

    fn step(
        &self,
        index: usize,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
        default_ns: &NsSet,
    ) -> Result<Step, FileError> {
        self.known_keys(table, &STEP_KEYS, "in a [[step]]")?;
        let ns = self.ns_or(table, default_ns)?;
        let kinds: Vec<&str> = KINDS
            .into_iter()
            .filter(|k| table.contains_key(k))
            .collect();
        let kind = match kinds.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.error(span, format!("a step needs one of {}", KINDS.join(", "))));
            }
            [_, second, ..] => {
                let span = table.key(second).and_then(|k| k.span());
                return Err(
                    self.error(span, format!("a step does one thing: {}", KINDS.join(", ")))
                );
            }
        };
        let kind_item = table.get(kind).expect("present");
        let action = match kind {
            "apply" => {
                let call = self.call(kind_item, "apply")?;
                let args = self.args(table)?;
                match (table.contains_key("key"), table.get("keys")) {
                    (true, Some(_)) => {
                        let span = table.key("keys").and_then(|k| k.span());
                        return Err(
                            self.error(span, "give key (one record) or keys (a batch), not both")
                        );
                    }
                    (false, Some(item)) => Action::BatchApply {
                        keys: self.keys(item, &ns)?,
                        call,
                        args,
                    },
                    _ => Action::Apply {
                        key: self.key(table, "key", &ns)?,
                        call,
                        args,
                    },
                }
            }
            "aggregate" => Action::Aggregate {
                call: self.call(kind_item, "aggregate")?,
                args: self.args(table)?,
                scope: self.scope(table, &ns)?,
            },
            "execute" => Action::Execute {
                call: self.call(kind_item, "execute")?,
                args: self.args(table)?,
                scope: self.scope(table, &ns)?,
            },
            "query" => {
                let ns = match kind_item.as_bool() {
                    Some(true) => ns.clone(),
                    Some(false) => {
                        return Err(self.error(kind_item.span(), "query is \"NS.SET\" or true"));
                    }
                    None => self.ns(kind_item)?,
                };
                let bins = match table.get("bins") {
                    None => None,
                    Some(item) => Some(self.bin_names(item)?),
                };
                Action::Query {
                    scope: self.scope(table, &ns)?,
                    bins,
                }
            }
            "put" => Action::Put {
                key: self.key(table, "put", &ns)?,
                bins: self.bins(table, true)?,
            },
            "get" => Action::Get {
                key: self.key(table, "get", &ns)?,
            },
            _ => Action::Remove {
                key: self.key(table, "remove", &ns)?,
            },
        };
        // Keys that belong to another kind of step are mistakes, not options.
        let batch = matches!(action, Action::BatchApply { .. });
        let allowed: &[&str] = match kind {
            "apply" if batch => &["keys", "args", "expect"],
            "apply" => &["key", "args", "expect", "error", "record"],
            "get" => &["record"],
            "put" => &["bins", "record"],
            "aggregate" => &["args", "where", "expect", "error"],
            "execute" => &["args", "where", "job", "error"],
            "query" => &["where", "bins", "expect", "records", "error"],
            _ => &["expect", "record"],
        };
        for (name, _) in table.iter() {
            if !["name", "ns", kind].contains(&name) && !allowed.contains(&name) {
                let span = table.key(name).and_then(|k| k.span());
                let message = match (batch, name) {
                    (true, "error") => "'error' does not go with a batch apply: each key's error is an entry of expect, e.g. expect = [\"1\", { code = 100 }]".into(),
                    (true, _) => format!("'{name}' does not go with a batch apply (keys)"),
                    _ => format!("'{name}' does not go with {kind}"),
                };
                return Err(self.error(span, message));
            }
        }
        let mut expect = Expect::default();
        if let Some(item) = table.get("expect") {
            if batch {
                expect.rows = Some(self.row_expects(item, action_keys(&action))?);
            } else if kind == "remove" {
                expect.existed = Some(item.as_bool().ok_or_else(|| {
                    self.error(item.span(), "for remove, expect is true or false (existed)")
                })?);
            } else if kind == "aggregate" || kind == "query" {
                let what = if kind == "query" {
                    "expect (a list of records as bin maps)"
                } else {
                    "expect (a list of values)"
                };
                match self.literal(item, what)? {
                    Value::List(list) => expect.values = Some(list),
                    other => {
                        return Err(self.error(
                            item.span(),
                            format!(
                                "{what}: a list in any order, \"[…]\", not {}",
                                value::type_name(&other)
                            ),
                        ));
                    }
                }
            } else {
                expect.value = Some(self.literal(item, "expect")?);
            }
        }
        if let Some(item) = table.get("records") {
            expect.count = Some(self.count(item, "records")?);
        }
        if let Some(item) = table.get("job") {
            expect.job = Some(self.job_expect(item)?);
        }
        if let Some(item) = table.get("error") {
            expect.error = Some(self.error_expect(item)?);
        }
        let answer = expect.value.is_some()
            || expect.rows.is_some()
            || expect.values.is_some()
            || expect.count.is_some()
            || expect.job.is_some();
        if answer && expect.error.is_some() {
            let span = table.key("error").and_then(|k| k.span());
            return Err(self.error(span, "a step expects a value or an error, not both"));
        }
        if let Some(item) = table.get("record") {
            expect.record = Some(self.record_expect(item)?);
        }
        if kind == "get" && expect.record.is_none() {
            return Err(self.error(span, "a get step needs record = {…} or record = \"none\""));
        }
        let name = match table.get("name") {
            Some(item) => Some(self.string(item, "name")?.to_string()),
            None => None,
        };
        Ok(Step {
            index,
            name,
            pos: self.pos(span),
            action,
            expect,
        })
    }

    /// `bins = ["a", "b"]` of a query.
    fn bin_names(&self, item: &Item) -> Result<Vec<String>, FileError> {
        let wrong = || self.error(item.span(), "bins is a list of bin names: [\"a\", \"b\"]");
        let array = item.as_array().ok_or_else(wrong)?;
        array
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
            .collect()
    }

    fn error_expect(&self, item: &Item) -> Result<ErrorExpect, FileError> {
        if let Some(text) = item.as_str() {
            return Ok(ErrorExpect {
                code: None,
                message: Some(MessageMatch::Exact(text.to_string())),
            });
        }
        let table = item.as_table_like().ok_or_else(|| {
            self.error(
                item.span(),
                "error is a message or { code = 100, message = \"…\" } (or pattern = \"regex\")",
            )
        })?;
        self.known_keys(table, &["code", "message", "pattern"], "in error")?;
        let code = match table.get("code") {
            Some(c) => Some(self.integer(c, "code must be an integer")?),
            None => None,
        };
        let message = match (table.get("message"), table.get("pattern")) {
            (Some(_), Some(p)) => {
                return Err(self.error(p.span(), "give message or pattern, not both"));
            }
            (Some(m), None) => Some(MessageMatch::Exact(self.string(m, "message")?.to_string())),
            (None, Some(p)) => {
                let text = self.string(p, "pattern")?;
                let re = regex::Regex::new(text)
                    .map_err(|e| self.error(p.span(), format!("bad pattern: {e}")))?;
                Some(MessageMatch::Pattern(re))
            }
            (None, None) => None,
        };
        Ok(ErrorExpect { code, message })
    }

    fn record_expect(&self, item: &Item) -> Result<RecordExpect, FileError> {
        if item.as_str() == Some("none") {
            return Ok(RecordExpect::Absent);
        }
        let table = item.as_table_like().ok_or_else(|| {
            self.error(
                item.span(),
                "record is \"none\" or { bins = {…}, gen = N, ttl = N or \"never\" }",
            )
        })?;
        self.known_keys(table, &["bins", "gen", "ttl"], "in record")?;
        let generation = match table.get("gen") {
            Some(g) => Some(self.integer(g, "gen must be a whole number")?),
            None => None,
        };
        let ttl = match table.get("ttl") {
            None => None,
            Some(t) if t.as_str() == Some("never") => Some(None),
            Some(t) => Some(Some(self.integer(t, "ttl is seconds or \"never\"")?)),
        };
        let bins = match table.get("bins") {
            Some(_) => Some(self.bins(table, false)?),
            None => None,
        };
        Ok(RecordExpect::Present {
            bins,
            generation,
            ttl,
        })
    }
}

/// How many keys a batch step has (none for other steps).
fn action_keys(action: &Action) -> usize {
    match action {
        Action::BatchApply { keys, .. } => keys.len(),
        _ => 0,
    }
}

/// Where each character of the TOML string at `span` of `file` (its quotes
/// included) was read from, as byte offsets in `file`, and last where its
/// closing quote is: errors inside a string name a place in the file, which
/// escapes and a multi-line string's lines make differ from the value's.
fn string_offsets(file: &str, span: Range<usize>) -> Vec<usize> {
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| file[span.clone()].starts_with(q))
        .unwrap_or("");
    let escapes = quote.starts_with('"');
    let end = span.end - quote.len();
    let mut at = span.start + quote.len();
    // A newline right after a multi-line string's opening quotes is not in it.
    if quote.len() == 3 {
        let rest = &file[at..end];
        at += if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        };
    }
    let mut offsets = Vec::new();
    while at < end {
        let c = file[at..end].chars().next().expect("before the end");
        offsets.push(at);
        if !(escapes && c == '\\') {
            at += c.len_utf8();
            continue;
        }
        let after = &file[at + 1..end];
        let next = after.chars().next().unwrap_or(' ');
        at += 1 + match next {
            'x' => 3,
            'u' => 5,
            'U' => 9,
            // A line-ending backslash: it and the white space after it are dropped.
            _ if next.is_whitespace() => {
                offsets.pop();
                after.len() - after.trim_start().len()
            }
            _ => next.len_utf8(),
        };
    }
    offsets.push(end);
    offsets
}

/// A table's span, whether it is a `[table]` or an inline `{ … }`.
fn table_span(table: &dyn TableLike) -> Option<Range<usize>> {
    table
        .iter()
        .next()
        .and_then(|(name, _)| table.key(name).and_then(|k| k.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Scenario, FileError> {
        parse(Path::new("t.udftest.toml"), text)
    }

    #[test]
    fn reads_steps_with_values_in_the_literal_syntax() {
        let s = parse_text(
            r#"
ns = "test.demo"
[modules]
m = { source = "function f(r) return 1 end" }

[[record]]
key = "k1"
bins = { n = "5", l = "[1, 'a']" }

[[step]]
apply = "m.f"
key = 7
args = "'count', 5, {1: x'0a'}"
expect = "{'a': 1.5}"
record = { bins = { n = "6" }, gen = 2, ttl = "never" }

[[step]]
remove = "'7'"
expect = false
"#,
        )
        .unwrap();
        assert_eq!(s.modules[0].name, "m.lua");
        assert_eq!(s.records[0].key.key, Value::String("k1".into()));
        assert_eq!(s.records[0].key.set.as_deref(), Some("demo"));
        let Action::Apply { key, call, args } = &s.steps[0].action else {
            panic!("an apply");
        };
        assert_eq!(key.key, Value::Int(7));
        assert_eq!(call.function, "f");
        assert_eq!(
            value::print(&Value::List(args.clone())),
            "['count', 5, {1: x'0a'}]"
        );
        assert_eq!(s.steps[0].pos.line, 10);
        assert_eq!(
            s.steps[0].expect.record,
            Some(RecordExpect::Present {
                bins: Some(vec![("n".into(), Value::Int(6))]),
                generation: Some(2),
                ttl: Some(None)
            })
        );
        assert_eq!(s.steps[1].expect.existed, Some(false));
        assert_eq!(
            s.steps[1].action.key().unwrap().key,
            Value::String("7".into())
        );
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let at = |text: &str| {
            let e = parse_text(text).unwrap_err();
            (e.pos.line, e.pos.column, e.message)
        };
        // A bad literal: the column of the bad character inside the string.
        let (line, column, message) =
            at("[[step]]\napply = \"m.f\"\nkey = 1\nexpect = \"[1, @]\"\n");
        assert_eq!((line, column), (4, 15), "{message}");
        let (line, column, _) = at("[[step]]\napply = \"m.f\"\nkey = 1\nargs = \"1, @\"\n");
        assert_eq!((line, column), (4, 12));
        // TOML syntax.
        let (line, _, _) = at("[[step]]\napply = \n");
        assert_eq!(line, 2);
        // Unknown keys, missing parts, wrong types.
        let (line, column, message) = at("[[step]]\napply = \"m.f\"\nkey = 1\nexpct = \"1\"\n");
        assert_eq!((line, column), (4, 1));
        assert!(message.contains("unknown key 'expct'"), "{message}");
        let (line, _, message) = at("x = 1\n[[step]]\nget = 1\n");
        assert_eq!(line, 1);
        assert!(message.contains("unknown key 'x'"));
        let (_, _, message) = at("[[step]]\nget = 1\n");
        assert!(message.contains("record"), "{message}");
        let (line, _, message) = at("[[step]]\napply = \"m.f\"\nkey = \"[1]\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("not a list"), "{message}");
        let (_, _, message) = at("[[step]]\napply = \"nodot\"\nkey = 1\n");
        assert!(
            message.contains("MODULE.FUNCTION") || message.contains("."),
            "{message}"
        );
        let (_, _, message) = at("ns = \"test\"\n");
        assert!(message.contains("no [[step]]"));
        let (line, _, message) =
            at("[modules]\nm = \"missing.lua\"\n[[step]]\nget = 1\nrecord = \"none\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("cannot read"), "{message}");
        let (line, _, message) =
            at("[[step]]\napply = \"m.f\"\nkey = 1\nerror = { pattern = \"(\" }\n");
        assert_eq!(line, 4);
        assert!(message.contains("bad pattern"));
    }

    #[test]
    fn reads_batch_steps_with_a_value_or_an_error_per_key() {
        let s = parse_text(
            r#"
ns = "test.demo"
[[step]]
apply = "m.f"
keys = "'a', 7, x'0a'"
args = "1"
expect = ["5", { code = 2, pattern = "not f.und" }, "nil"]

[[step]]
apply = "m.f"
keys = ["a", 7, "'8'"]
"#,
        )
        .unwrap();
        let Action::BatchApply { keys, call, args } = &s.steps[0].action else {
            panic!("a batch apply");
        };
        let printed: Vec<String> = keys.iter().map(|k| value::print(&k.key)).collect();
        assert_eq!(printed, ["'a'", "7", "x'0a'"]);
        assert!(keys.iter().all(|k| k.set.as_deref() == Some("demo")));
        assert_eq!(
            (call.function.as_str(), args.as_slice()),
            ("f", &[Value::Int(1)][..])
        );
        let rows = s.steps[0].expect.rows.as_ref().unwrap();
        assert_eq!(rows[0], RowExpect::Value(Value::Int(5)));
        let RowExpect::Error(e) = &rows[1] else {
            panic!("an error row");
        };
        assert_eq!(e.code, Some(2));
        assert!(matches!(&e.message, Some(MessageMatch::Pattern(p)) if p.is_match("not found")));
        assert_eq!(rows[2], RowExpect::Value(Value::Nil));
        assert_eq!(s.steps[0].action.describe(), "m.f(1) @ 'a', 7, x'0a'");
        // The list form reads each key as `key = …` does: a bare word is a string.
        let Action::BatchApply { keys, .. } = &s.steps[1].action else {
            panic!("a batch apply");
        };
        let printed: Vec<String> = keys.iter().map(|k| value::print(&k.key)).collect();
        assert_eq!(printed, ["'a'", "7", "'8'"]);
        assert_eq!(s.steps[1].expect.rows, None);
        // A long batch is named by its first keys and how many there are.
        let long = parse_text("[[step]]\napply = \"m.f\"\nkeys = \"1, 2, 3, 4, 5\"\n").unwrap();
        assert_eq!(
            long.steps[0].action.describe(),
            "m.f() @ 1, 2, 3, … (5 keys)"
        );
    }

    #[test]
    fn batch_step_mistakes_point_at_their_place() {
        let at = |text: &str| {
            let e = parse_text(text).unwrap_err();
            (e.pos.line, e.pos.column, e.message)
        };
        let head = "[[step]]\napply = \"m.f\"\n";
        let (line, column, message) = at(&format!("{head}key = 1\nkeys = \"1, 2\"\n"));
        assert_eq!((line, column), (4, 1));
        assert!(message.contains("not both"), "{message}");
        // A bad literal among the keys: its column inside the string.
        let (line, column, message) = at(&format!("{head}keys = \"1, @\"\n"));
        assert_eq!((line, column), (3, 12), "{message}");
        let (line, column, message) = at(&format!("{head}keys = [1, [2]]\n"));
        assert_eq!((line, column), (3, 12));
        assert!(message.contains("an integer or a string"), "{message}");
        let (line, _, message) = at(&format!("{head}keys = \"\"\n"));
        assert_eq!(line, 3);
        assert!(message.contains("keys is empty"), "{message}");
        let (line, column, message) = at(&format!("{head}keys = \"1, 2\"\nexpect = [\"1\"]\n"));
        assert_eq!((line, column), (4, 10));
        assert!(message.contains("1 entry for 2 keys"), "{message}");
        let (line, column, message) = at(&format!("{head}keys = \"1\"\nexpect = \"1\"\n"));
        assert_eq!((line, column), (4, 10));
        assert!(message.contains("an entry per key"), "{message}");
        let (line, column, message) = at(&format!("{head}keys = \"1, 2\"\nexpect = [\"1\", 2]\n"));
        assert_eq!((line, column), (4, 16));
        assert!(message.contains("an entry of expect"), "{message}");
        let (line, column, message) = at(&format!(
            "{head}keys = \"1, 2\"\nexpect = [\"1\", \"[@\"]\n"
        ));
        assert_eq!((line, column), (4, 18), "{message}");
        let (line, _, message) = at(&format!(
            "{head}keys = \"1\"\nexpect = [{{ code = 1, cod = 2 }}]\n"
        ));
        assert_eq!(line, 4);
        assert!(message.contains("unknown key 'cod'"), "{message}");
        let (line, column, message) = at(&format!("{head}keys = \"1\"\nerror = {{ code = 1 }}\n"));
        assert_eq!((line, column), (4, 1));
        assert!(
            message.contains("each key's error is an entry of expect"),
            "{message}"
        );
        let (line, _, message) = at(&format!("{head}keys = \"1\"\nrecord = \"none\"\n"));
        assert_eq!(line, 4);
        assert!(
            message.contains("does not go with a batch apply"),
            "{message}"
        );
    }

    #[test]
    fn reads_query_path_steps_and_indexes() {
        let s = parse_text(
            r#"
ns = "test.sales"
[[index]]
bin = "tags"
type = "String"
collection = "list"

[[step]]
aggregate = "sum.total"
where = "amount BETWEEN 1 AND 5"
args = "2"
expect = "[1, 1]"

[[step]]
execute = "stamp.mark"
ns = "test.other"
job = { succeeded = 2, status = "done(ok)" }

[[step]]
query = true
bins = ["a"]
records = 3
"#,
        )
        .unwrap();
        let index = &s.indexes[0].spec;
        assert_eq!(
            (index.name.as_str(), index.kind.as_str(), index.collection),
            ("test_sales_tags", "string", Collection::List)
        );
        assert!(s.aggregates());
        let Action::Aggregate { scope, args, .. } = &s.steps[0].action else {
            panic!("an aggregate");
        };
        assert_eq!(scope.set.as_deref(), Some("sales"));
        assert!(scope.where_clause.is_some());
        assert_eq!(args, &[Value::Int(2)]);
        assert_eq!(
            s.steps[0].expect.values,
            Some(vec![Value::Int(1), Value::Int(1)])
        );
        assert_eq!(
            s.steps[1].action.scope().unwrap().set.as_deref(),
            Some("other")
        );
        assert_eq!(s.steps[1].expect.job.as_ref().unwrap().succeeded, Some(2));
        assert_eq!(s.steps[1].expect.job.as_ref().unwrap().failed, None);
        let Action::Query { bins, .. } = &s.steps[2].action else {
            panic!("a query");
        };
        assert_eq!(bins.as_deref(), Some(&["a".to_string()][..]));
        assert_eq!(s.steps[2].expect.count, Some(3));
        assert!(s.steps[2].action.key().is_none());
    }

    #[test]
    fn query_path_mistakes_point_at_their_place() {
        let at = |text: &str| {
            let e = parse_text(text).unwrap_err();
            (e.pos.line, e.pos.column, e.message)
        };
        let (line, column, message) = at("[[step]]\naggregate = \"m.f\"\nexpect = \"5\"\n");
        assert_eq!((line, column), (3, 10));
        assert!(message.contains("a list in any order"), "{message}");
        let (line, _, message) = at("[[step]]\nquery = true\nkey = 1\n");
        assert_eq!(line, 3);
        assert!(
            message.contains("'key' does not go with query"),
            "{message}"
        );
        let (line, _, message) = at("[[step]]\nexecute = \"m.f\"\njob = { done = 1 }\n");
        assert_eq!(line, 3);
        assert!(message.contains("unknown key 'done'"), "{message}");
        let (_, _, message) = at("[[index]]\ntype = \"numeric\"\n[[step]]\nquery = true\n");
        assert!(message.contains("needs bin"), "{message}");
        let (line, column, _) = at("[[step]]\nquery = true\nwhere = \"LIST x = \"\n");
        assert_eq!((line, column), (3, 19));
    }

    /// The line and column of the last `needle` in `text`.
    fn place(text: &str, needle: &str) -> (usize, usize) {
        let pos = Pos::at(text, text.rfind(needle).expect("in the text"));
        (pos.line, pos.column)
    }

    #[test]
    fn errors_inside_strings_point_at_the_file_not_the_decoded_value() {
        let at = |text: &str| {
            let e = parse_text(text).unwrap_err();
            (e.pos.line, e.pos.column)
        };
        let head = "[[step]]\napply = \"m.f\"\nkey = 1\n";
        // Escapes are longer in the file than in the value.
        let text = format!("{head}args = \"\\\"é\\\", \\u00e9, 'x', @\"\n");
        assert_eq!(at(&text), place(&text, "\\u00e9,"), "{text}");
        let text = format!("{head}expect = \"['\\\\n', '\\t\\U0001F600', @]\"\n");
        assert_eq!(at(&text), place(&text, "@"), "{text}");
        // A literal string has no escapes.
        let text = format!("{head}expect = '[\"\\t\", @]'\n");
        assert_eq!(at(&text), place(&text, "@"), "{text}");
        // Multi-line strings: the line of the mistake, past a trimmed first
        // newline, a line-ending backslash and Windows line ends.
        for args in [
            "\"\"\"\n  1,\n  2, @\"\"\"",
            "'''\n  1,\n  \"\\n\", @'''",
            "\"\"\"1, \\\n     2, @\"\"\"",
            "\"\"\"\r\n  1,\r\n  @\"\"\"",
        ] {
            let text = format!("{head}args = {args}\n");
            assert_eq!(at(&text), place(&text, "@"), "{text:?}");
        }
        // A key, a key in a list of keys, a where clause.
        let text = "[[step]]\napply = \"m.f\"\nkey = \"[\\t@\"\n";
        assert_eq!(at(text), place(text, "@"), "{text}");
        let text = "[[step]]\napply = \"m.f\"\nkeys = [\"a\", \"[\\t@\"]\n";
        assert_eq!(at(text), place(text, "@"), "{text}");
        let text = "[[step]]\nquery = true\nwhere = \"\\u0061 = @\"\n";
        assert_eq!(at(text), place(text, "@"), "{text}");
        // The end of the text is the closing quote, for args as for expect.
        let text = format!("{head}args = \"[1, 2\"\n");
        assert_eq!(at(&text), place(&text, "\"\n"), "{text}");
        let text = format!("{head}expect = \"[1, 2\"\n");
        assert_eq!(at(&text), place(&text, "\"\n"), "{text}");
        let text = format!("{head}args = '''\n[1,\n2'''\n");
        assert_eq!(at(&text), place(&text, "'''\n"), "{text}");
    }

    #[test]
    fn each_character_of_a_string_is_found_where_it_was_written() {
        let file = "a = \"x\\\\\\\"\\n\\u00e9\\U0001F600\\x41é\"\nb = 'x\\n'\nc = '''\nx\n'y'''\n\
                    d = \"\"\"\r\nx\\\n   \n  y\"\"\"\"\n";
        let doc = Document::parse(file).unwrap();
        for (name, item) in doc.as_table().iter() {
            let value: Vec<char> = item.as_str().unwrap().chars().collect();
            let offsets = string_offsets(file, item.span().unwrap());
            assert_eq!(offsets.len(), value.len() + 1, "{name}: {value:?}");
            for (c, &at) in value.iter().zip(&offsets) {
                // The character itself, or the backslash of its escape.
                let written = file[at..].chars().next().unwrap();
                assert!(written == *c || written == '\\', "{name}: {c:?} at {at}");
            }
            // The closing quote comes last.
            assert!(file[*offsets.last().unwrap()..].starts_with(['"', '\'']));
        }
    }
}
