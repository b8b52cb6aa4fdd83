//! The linter: what a UDF author gets wrong, found before registering.
//!
//! Lua 5.4 itself compiles the module (without running it): it alone
//! decides what is a syntax error. Parsing for the rules is `full_moon`'s
//! (Lua 5.4); what it cannot read of a module Lua compiles gets no rule
//! (see [`tree`]). The usual Lua
//! rules come from `selene-lib` (those that need no scope analysis, see `selene_lints!`)
//! and from our walk in [`udf`], which knows the UDF environment ([`std`])
//! and also holds the UDF rules of our own. Both the `check` command and the console call [`lint`];
//! the console calls it off its UI thread.
//!
//! Errors are kept for what certainly fails on the server; everything else,
//! selene's rules included, is a warning.

mod config;
mod std;
mod udf;

use serde::{Deserialize, Serialize};

pub use crate::sandbox::LuaLibs;
pub use config::{CONFIG_FILE, Config, Level, find_config};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding. Lines and columns are 1-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub severity: Severity,
    pub rule: String,
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl Diagnostic {
    /// Whether this says the module lacks the function [`Options::function`]
    /// names: a fault of that call (the console's form), not of the module.
    pub fn is_missing_function(&self) -> bool {
        self.rule == "missing_function"
    }
}

/// A rule of our own: its name, what it costs on the server, and the fix.
pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    pub why: &'static str,
    pub fix: &'static str,
}

/// Our UDF rules, in the order the README lists them.
pub const RULES: &[Rule] = &[
    Rule {
        name: "syntax_error",
        severity: Severity::Error,
        why: "the module does not compile: registering it fails",
        fix: "correct the syntax at the position shown",
    },
    Rule {
        name: "local_udf",
        severity: Severity::Error,
        why: "the server only calls global functions: a `local function` gives \"function not found\"",
        fix: "drop `local` from the function the apply calls, or define it as a global",
    },
    Rule {
        name: "missing_function",
        severity: Severity::Error,
        why: "the module defines no global of the name the apply calls when it loads: the server answers \"function not found\"",
        fix: "define the function as a global at the module's top level, or call one it defines",
    },
    Rule {
        name: "table_in_bin",
        severity: Severity::Error,
        why: "a Lua table cannot be stored in a bin: \"can't set bin to unsupported type\"",
        fix: "use list{...} or map{...} instead of a table",
    },
    Rule {
        name: "record_method",
        severity: Severity::Error,
        why: "a record has no methods: `rec:ttl()` calls the value of bin 'ttl', which is never a function (\"attempt to call a nil value (method 'ttl')\")",
        fix: "call the library function: `record.ttl(rec)`",
    },
    Rule {
        name: "stream_not_returned",
        severity: Severity::Error,
        why: "a stream UDF must return the stream it was given, or the query fails",
        fix: "return the stream: `return s : map(f)`",
    },
    Rule {
        name: "unavailable_library",
        severity: Severity::Error,
        why: "the server's Lua library mode removes this library: the call fails at run time",
        fix: "use what the mode keeps (os.time/clock/date/difftime under default)",
    },
    Rule {
        name: "no_record_param",
        severity: Severity::Warning,
        why: "a record UDF receives the record as its first parameter",
        fix: "add it: `function f(rec, ...)`",
    },
    Rule {
        name: "global_in_function",
        severity: Severity::Warning,
        why: "a global set in a function persists between calls on pooled Lua states",
        fix: "declare it `local`",
    },
    Rule {
        name: "record_write_in_stream",
        severity: Severity::Warning,
        why: "records in a stream are read-only: the server ignores writes",
        fix: "write records in a record or background UDF",
    },
    Rule {
        name: "long_bin_name",
        severity: Severity::Warning,
        why: "bin names longer than 15 bytes are silently ignored (reads give nil)",
        fix: "use a bin name of 15 bytes or less",
    },
    Rule {
        name: "undefined_variable",
        severity: Severity::Warning,
        why: "a global nothing defines is nil at run time: indexing or calling it fails",
        fix: "check the spelling, or define it (`local`)",
    },
    Rule {
        name: "unknown_field",
        severity: Severity::Warning,
        why: "a member a library table does not have is nil at run time: calling it fails (\"attempt to call a nil value (field 'x')\")",
        fix: "check the spelling against the library",
    },
    Rule {
        name: "unused_variable",
        severity: Severity::Warning,
        why: "a local nothing reads is dead code, or a typo elsewhere",
        fix: "remove it, or name it `_`",
    },
    Rule {
        name: "shadowing",
        severity: Severity::Warning,
        why: "a local hides another of the same name: later reads get the new one",
        fix: "rename one of them",
    },
    Rule {
        name: "unreachable_code",
        severity: Severity::Warning,
        why: "code after an error() call in the same block never runs",
        fix: "remove it, or make the error conditional",
    },
    Rule {
        name: "module_name",
        severity: Severity::Warning,
        why: "the server refuses a name with no '.' (or one it starts with or ends at), newer servers one outside [A-Za-z0-9._$-]; a name without .lua is never callable",
        fix: "name the module like `my_module.lua`",
    },
    Rule {
        name: "unknown_rule",
        severity: Severity::Warning,
        why: "an `asudf: allow(…)` comment names no rule: it silences nothing",
        fix: "name a rule `asudf check` reports (a typo?)",
    },
];

pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// The fix for a finding of rule `name`: ours in [`RULES`], else selene's
/// in [`SELENE_RULES`].
fn fix(name: &str) -> String {
    rule(name)
        .map(|r| r.fix)
        .or_else(|| {
            SELENE_RULES
                .iter()
                .find(|(r, _)| *r == name)
                .map(|(_, fix)| *fix)
        })
        .expect("the rules that run are in RULES or SELENE_RULES")
        .into()
}

/// One of our rules or one of selene's that run: what `--allow` and a
/// config file may name.
pub fn is_rule(name: &str) -> bool {
    rule(name).is_some() || SELENE_RULES.iter().any(|(r, _)| *r == name)
}

/// What to lint for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub libs: LuaLibs,
    /// The module's registered name (`counter.lua`), for `module_name`.
    pub module: Option<String>,
    /// The function an apply will call, for `local_udf` and `missing_function`.
    pub function: Option<String>,
    /// Rules switched off or re-levelled by a config file.
    pub config: Config,
}

// Selene's scope analysis is quadratic in a file's references (about
// 270 ms for the 10,000-line bench module, over the 200 ms budget), so the
// scope rules (undefined and unused variables, shadowing) are ours, in
// `udf`'s walk, and only selene's rules that do not need it run: they get
// the scope analysis of an empty chunk.
macro_rules! selene_lints {
    ($($lint:ty),* $(,)?) => {
        fn selene_pass(ast: &full_moon::ast::Ast) -> Vec<selene_lib::lints::Diagnostic> {
            use selene_lib::lints::{AstContext, Context, Lint};
            thread_local! {
                static SHARED: (Context, AstContext) = (
                    Context {
                        standard_library: std::udf_standard_library(),
                        user_set_standard_library: None,
                    },
                    AstContext::from_ast(
                        full_moon::parse_fallible("", full_moon::LuaVersion::lua54()).ast(),
                    ),
                );
            }
            SHARED.with(|(context, empty)| {
                let mut out = Vec::new();
                $(
                    let lint = <$lint>::new(Default::default())
                        .expect("selene's default lint configs are valid");
                    out.extend(lint.pass(ast, context, empty));
                )*
                out
            })
        }
    };
}

/// The selene rules that run (a config or `--allow` may name them), each
/// with its fix: selene's notes are not all fixes ("note: same as this").
pub const SELENE_RULES: &[(&str, &str)] = &[
    ("almost_swapped", "swap in one assignment: `a, b = b, a`"),
    (
        "bad_string_escape",
        "drop the backslash: this quote needs none",
    ),
    ("compare_nan", "test for NaN with `x ~= x`"),
    (
        "constant_table_comparison",
        "test for an empty table with `next(t) == nil`",
    ),
    (
        "divide_by_zero",
        "divide by something else, or use math.huge",
    ),
    ("duplicate_keys", "remove one of the keys, or rename it"),
    ("empty_if", "fill the block, or remove the if"),
    ("empty_loop", "fill the loop, or remove it"),
    (
        "if_same_then_else",
        "change one of the blocks, or merge them",
    ),
    (
        "ifs_same_cond",
        "change one of the conditions, or merge the blocks",
    ),
    ("mixed_table", "make the table a list or a map, not both"),
    (
        "parenthese_conditions",
        "remove the parentheses around the condition",
    ),
    (
        "suspicious_reverse_loop",
        "count down with a step: `for i = #t, 1, -1`",
    ),
    (
        "type_check_inside_call",
        "compare the result: `type(x) == \"string\"`",
    ),
    (
        "unbalanced_assignments",
        "give each name on the left one value on the right",
    ),
];

selene_lints!(
    selene_lib::lints::almost_swapped::AlmostSwappedLint,
    selene_lib::lints::bad_string_escape::BadStringEscapeLint,
    selene_lib::lints::compare_nan::CompareNanLint,
    selene_lib::lints::constant_table_comparison::ConstantTableComparisonLint,
    selene_lib::lints::divide_by_zero::DivideByZeroLint,
    selene_lib::lints::duplicate_keys::DuplicateKeysLint,
    selene_lib::lints::empty_if::EmptyIfLint,
    selene_lib::lints::empty_loop::EmptyLoopLint,
    selene_lib::lints::if_same_then_else::IfSameThenElseLint,
    selene_lib::lints::ifs_same_cond::IfsSameCondLint,
    selene_lib::lints::mixed_table::MixedTableLint,
    selene_lib::lints::parenthese_conditions::ParentheseConditionsLint,
    selene_lib::lints::suspicious_reverse_loop::SuspiciousReverseLoopLint,
    selene_lib::lints::type_check_inside_call::TypeCheckInsideCallLint,
    selene_lib::lints::unbalanced_assignments::UnbalancedAssignmentsLint,
);

/// Lints one module's source. Never fails: bad input is a diagnostic.
pub fn lint(source: &str, options: &Options) -> Vec<Diagnostic> {
    let out = lint_source(source, options);
    if source.len() >= RELEASE_AFTER_BYTES {
        release_freed_memory();
    }
    out
}

/// Sources from this size on leave enough freed memory behind to hand back.
/// A 10,000-line module's syntax tree and rule passes take about a hundred
/// MiB at their peak, all freed when the lint ends; glibc keeps freed pages
/// in its arenas, where they would count in the console's resident size for
/// as long as it runs.
const RELEASE_AFTER_BYTES: usize = 16 * 1024;

/// Returns the allocator's free pages to the system.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What Lua 5.4's own compiler refuses in `source`: its line and message.
/// The server registers a module with `luaL_loadbuffer`, which refuses more
/// than the syntax tree does (a `#!` first line, a `goto` into a local's
/// scope, assigning a `<const>`); loading without running is that check.
fn compile_error(source: &str) -> Option<(u32, String)> {
    const NAME: &str = "module";
    let lua = mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default()).ok()?;
    let error = lua
        .load(source)
        .set_name(format!("={NAME}"))
        .set_mode(mlua::ChunkMode::Text)
        .into_function()
        .err()?;
    // Anything else (out of memory) says nothing about the module.
    let mlua::Error::SyntaxError { message, .. } = error else {
        return None;
    };
    // `module:LINE: message`
    let (line, text) = message
        .strip_prefix(NAME)?
        .strip_prefix(':')?
        .split_once(':')?;
    Some((line.parse().ok()?, text.trim_start().to_string()))
}

fn syntax_error(line: u32, col: u32, end: (u32, u32), message: String) -> Diagnostic {
    Diagnostic {
        line,
        col,
        end_line: end.0,
        end_col: end.1,
        severity: Severity::Error,
        rule: "syntax_error".into(),
        message: format!("syntax error: {message}"),
        fix: fix("syntax_error"),
    }
}

/// The tree of a module Lua compiles, if full_moon reads it. Lua takes an
/// empty statement (`;`) wherever a statement may stand, full_moon only
/// right after one. When the first read stops on a `;`, one pass over the
/// tokens blanks each `;` that stands where no statement has ended: at the
/// start of the chunk, after another `;`, or after what opens a block
/// (`do`, `then`, `else`, `repeat`, the `)` closing a function's
/// parameters). None of these follows an expression, so a `(` after it
/// starts a statement either way (`a = b; (f)()` keeps its `;`). A space
/// keeps every offset, and the module is read once more. Should full_moon
/// still stop on a `;`, that one is blanked and the module read again, a
/// few times at most.
fn tree(source: &str, mut parsed: full_moon::ast::AstResult) -> Option<full_moon::ast::Ast> {
    const MAX_BLANKED: usize = 16;
    let mut text: Option<String> = None;
    let mut blanked = 0;
    loop {
        let token = match parsed.errors().first() {
            None => return Some(parsed.into_ast()),
            Some(full_moon::Error::AstError(error)) => error.token(),
            Some(_) => return None,
        };
        if !is_semicolon(token.token_type()) || blanked == MAX_BLANKED {
            return None;
        }
        let at = token.start_position().bytes();
        let text = match &mut text {
            Some(text) => {
                text.replace_range(at..at + 1, " ");
                blanked += 1;
                text
            }
            None => {
                let mut spaced = source.to_string();
                for at in empty_statements(source) {
                    spaced.replace_range(at..at + 1, " ");
                }
                if spaced.as_bytes()[at] == b';' {
                    // Not one the pass knows: blank it alone.
                    spaced.replace_range(at..at + 1, " ");
                    blanked += 1;
                }
                text.insert(spaced)
            }
        };
        parsed = full_moon::parse_fallible(text, full_moon::LuaVersion::lua54());
    }
}

fn is_semicolon(token: &full_moon::tokenizer::TokenType) -> bool {
    use full_moon::tokenizer::{Symbol, TokenType};
    matches!(
        token,
        TokenType::Symbol {
            symbol: Symbol::Semicolon
        }
    )
}

/// Byte offsets of the `;`s that stand where no statement has ended (see
/// [`tree`]): Lua reads each as an empty statement, full_moon refuses it.
fn empty_statements(source: &str) -> Vec<usize> {
    use full_moon::tokenizer::{Symbol, TokenType};
    let tokens =
        match full_moon::tokenizer::Lexer::new(source, full_moon::LuaVersion::lua54()).collect() {
            full_moon::tokenizer::LexerResult::Ok(tokens) => tokens,
            _ => return Vec::new(),
        };
    let mut out = Vec::new();
    // Whether a statement may begin here with nothing before it ended.
    let mut opened = true;
    // After `function`, up to its parameters' `(`: only a name stands
    // between, and the module compiled.
    let mut to_params = false;
    // Inside a function's parameters (which hold no parentheses).
    let mut params = false;
    for token in tokens.iter().filter(|t| !t.token_type().is_trivia()) {
        let TokenType::Symbol { symbol } = token.token_type() else {
            opened = false;
            continue;
        };
        opened = match symbol {
            Symbol::Semicolon => {
                if opened {
                    out.push(token.start_position().bytes());
                }
                true
            }
            Symbol::Do | Symbol::Then | Symbol::Else | Symbol::Repeat => true,
            Symbol::Function => {
                to_params = true;
                false
            }
            Symbol::LeftParen => {
                params = ::std::mem::take(&mut to_params);
                false
            }
            Symbol::RightParen if params => {
                params = false;
                true
            }
            _ => false,
        };
    }
    out
}

/// Selene's escape rule knows Lua 5.1's escapes (Luau's are a parser
/// feature away), so `\x41`, `\z` and `\u{48}` "do not exist" to it. A
/// module the rules see has compiled: Lua 5.4 took every escape in it, and
/// only the rule's needless quote escapes (`'\"'`) stand.
fn lua51_escape(d: &selene_lib::lints::Diagnostic, source: &str) -> bool {
    let at = d.primary_label.range.0 as usize;
    d.code == "bad_string_escape"
        && !source
            .get(at..)
            .is_some_and(|s| s.starts_with("\\'") || s.starts_with("\\\""))
}

fn lint_source(source: &str, options: &Options) -> Vec<Diagnostic> {
    let parsed = full_moon::parse_fallible(source, full_moon::LuaVersion::lua54());
    let lines = LineIndex::new(source);
    let mut out = Vec::new();
    // A module that does not compile gives rules nothing sound to say:
    // report the syntax alone, once. Lua's compiler is the server's, so it
    // alone decides, and its line and message stand; the tree's parser adds
    // its column when it stopped on that same line (it often stops a line
    // earlier, at the end of what it could still read).
    if let Some((line, message)) = compile_error(source) {
        let tree_error = parsed.errors().first().map(|error| {
            let (start, end) = error.range();
            (
                lines.at(start.bytes()),
                lines.at(end.bytes().max(start.bytes())),
            )
        });
        let (col, end) = match tree_error {
            Some(((tree_line, col), end)) if tree_line == line => (col, end),
            _ => (1, lines.line_end(line)),
        };
        out.push(syntax_error(line, col, end, message));
    } else if let Some(ast) = tree(source, parsed) {
        let found = udf::check(&ast, options);
        for d in selene_pass(&ast)
            .into_iter()
            .filter(|d| !lua51_escape(d, source))
        {
            let (start, end) = d.primary_label.range;
            let (line, col) = lines.at(start as usize);
            let (end_line, end_col) = lines.at(end as usize);
            let mut message = d.message.clone();
            if let Some(label) = &d.primary_label.message {
                message = format!("{message} ({label})");
            }
            out.push(Diagnostic {
                line,
                col,
                end_line,
                end_col,
                // Selene's rules flag what may fail, never what must.
                severity: Severity::Warning,
                rule: d.code.to_string(),
                message,
                fix: fix(d.code),
            });
        }
        for f in found {
            let (line, col) = lines.at(f.start);
            let (end_line, end_col) = lines.at(f.end.max(f.start));
            let rule = rule(f.rule).expect("udf rules are in RULES");
            out.push(Diagnostic {
                line,
                col,
                end_line,
                end_col,
                severity: rule.severity,
                rule: f.rule.into(),
                message: f.message,
                fix: f.fix.unwrap_or_else(|| rule.fix.into()),
            });
        }
    }
    // Else Lua compiles what the tree cannot read (a statement after
    // `break`): no rule can follow it, so none speaks.
    if let Some(module) = &options.module
        && let Some(message) = udf::module_name_problem(module, options.libs)
    {
        out.push(Diagnostic {
            line: 1,
            col: 1,
            end_line: 1,
            end_col: 1,
            severity: Severity::Warning,
            rule: "module_name".into(),
            message,
            fix: fix("module_name"),
        });
    }
    let allowed = config::allowed_in_source(source);
    for (line, name) in allowed.iter().filter(|(_, name)| !is_rule(name)) {
        out.push(Diagnostic {
            line: *line,
            col: 1,
            end_line: *line,
            end_col: 1,
            severity: Severity::Warning,
            rule: "unknown_rule".into(),
            message: format!("'{name}' is not a rule: this allow comment silences nothing"),
            fix: fix("unknown_rule"),
        });
    }
    out.retain_mut(|d| {
        if allowed.iter().any(|(_, r)| r == &d.rule) {
            return false;
        }
        match options.config.level(&d.rule) {
            Some(Level::Allow) => false,
            Some(Level::Warn) => {
                d.severity = Severity::Warning;
                true
            }
            Some(Level::Error) => {
                d.severity = Severity::Error;
                true
            }
            None => true,
        }
    });
    out.sort_by(|a, b| (a.line, a.col, &a.rule).cmp(&(b.line, b.col, &b.rule)));
    out
}

/// Byte offsets to 1-based lines and character columns.
struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(source: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { source, starts }
    }

    /// The line and column just after the last character of a 1-based line.
    fn line_end(&self, line: u32) -> (u32, u32) {
        let next = self
            .starts
            .get(line as usize)
            .map_or(self.source.len(), |s| s - 1);
        (line, self.at(next).1)
    }

    fn at(&self, byte: usize) -> (u32, u32) {
        let byte = byte.min(self.source.len());
        let line = self
            .starts
            .partition_point(|s| *s <= byte)
            .saturating_sub(1);
        let start = self.starts[line];
        let col = self
            .source
            .get(start..byte)
            .map_or(byte - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }
}

/// `file:line:col: severity: message [rule]`, as `asudf check` prints.
pub fn format_line(file: &str, d: &Diagnostic) -> String {
    format!(
        "{file}:{}:{}: {}: {} [{}]",
        d.line,
        d.col,
        d.severity.as_str(),
        d.message,
        d.rule
    )
}

#[cfg(test)]
mod tests;
