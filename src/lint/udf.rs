//! Our UDF rules: one walk over the tree that knows which names are local
//! where, which functions are record UDFs, stream UDFs or stream callbacks.
//!
//! Each rule errs on the side of silence: an error only where the server
//! certainly fails, and a construct the walk cannot follow is let through.

use std::collections::{HashMap, HashSet};

use full_moon::ast::{
    Ast, Block, Call, Expression, Field, FunctionArgs, FunctionBody, FunctionCall, Index, LastStmt,
    Parameter, Prefix, Stmt, Suffix, Var,
};
use full_moon::node::Node;
use full_moon::tokenizer::{TokenReference, TokenType};
use full_moon::visitors::Visitor;

use super::{LuaLibs, Options};

/// A finding with byte offsets; [`super::lint`] turns it into a diagnostic.
pub struct Finding {
    pub rule: &'static str,
    pub start: usize,
    pub end: usize,
    pub message: String,
    /// A fix for this finding alone, else the rule's.
    pub fix: Option<String>,
}

/// Longest bin name the server keeps (`AS_BIN_NAME_MAX_SZ` less the NUL).
const BIN_NAME_MAX: usize = 15;
const STREAM_OPS: &[&str] = &["filter", "map", "aggregate", "reduce", "groupby"];
const OS_DEFAULT: &[&str] = &["clock", "date", "difftime", "time"];

pub fn check(ast: &Ast, options: &Options) -> Vec<Finding> {
    let mut idents = IdentCounter::default();
    idents.visit_ast(ast);
    let mut globals = GlobalsSet::default();
    globals.visit_ast(ast);
    let mut walk = Walk {
        options,
        idents: idents.0,
        globals: globals.names,
        fields: globals.fields,
        replaced: globals.replaced,
        roles: HashMap::new(),
        scopes: vec![Scope::default()],
        fns: Vec::new(),
        out: Vec::new(),
    };
    walk.find_roles(ast.nodes());
    walk.top_level(ast.nodes());
    walk.block(ast.nodes());
    walk.out
}

/// Why a module name is a problem, if it is, and what the server does
/// with it (udf-runtime §6.1, its checks in the server's order).
pub fn module_name_problem(name: &str, libs: LuaLibs) -> Option<String> {
    const MAX_BYTES: usize = 128;
    const REFUSED: &str = "the server refuses it (invalid_filename)";
    if name.len() >= MAX_BYTES {
        return Some(format!(
            "module name is {} bytes: the server refuses a name of {MAX_BYTES} bytes or more (invalid_filename)",
            name.len()
        ));
    }
    let problem = match name.find('.') {
        None => Some("has no '.'"),
        Some(0) => Some("starts with '.'"),
        Some(i) if i + 1 == name.len() => Some("has nothing after its first '.'"),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        return Some(format!("module name '{name}' {problem}: {REFUSED}"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._$-".contains(c);
    if name.contains("..") || !name.chars().all(allowed) {
        return Some(format!(
            "module name '{name}': newer servers (8.1.2.2, 8.0.0.17, 7.2.0.19, 7.1.0.25 on) refuse a name outside [A-Za-z0-9._$-] or holding '..' (invalid_filename)"
        ));
    }
    if !name.ends_with(".lua") {
        // The runtime finds a module as `?.lua`.
        let fate = match libs {
            LuaLibs::Hardened => "the server refuses it in hardened mode (invalid_filename)",
            _ => "the server accepts it but can never call it",
        };
        return Some(format!("module name '{name}' does not end in .lua: {fate}"));
    }
    None
}

/// Counts identifier tokens, so "is this name used anywhere else" is cheap.
#[derive(Default)]
struct IdentCounter(HashMap<String, usize>);

impl Visitor for IdentCounter {
    fn visit_identifier(&mut self, token: &full_moon::tokenizer::Token) {
        if let TokenType::Identifier { identifier } = token.token_type() {
            *self.0.entry(identifier.to_string()).or_default() += 1;
        }
    }
}

/// Names assigned anywhere as a global (`name`, `_G.name`), and global
/// function names: a read of one is not undefined (the module sets it).
/// Also the fields the module sets on a table (`T.name = …`, `function
/// T.name`, `function T:name`), which `unknown_field` takes as members.
#[derive(Default)]
struct GlobalsSet {
    names: HashSet<String>,
    /// `T.name` for each field set.
    fields: HashSet<String>,
    /// Globals set whole (`T = …`): their members are the module's.
    replaced: HashSet<String>,
}

impl Visitor for GlobalsSet {
    fn visit_assignment(&mut self, node: &full_moon::ast::Assignment) {
        for var in node.variables() {
            if let Some(name) = assigned_global(var) {
                self.names.insert(name.clone());
                self.replaced.insert(name);
            }
            if let Var::Expression(v) = var
                && let Prefix::Name(base) = v.prefix()
                && let mut suffixes = v.suffixes()
                && let (Some(Suffix::Index(index)), None) = (suffixes.next(), suffixes.next())
            {
                self.field(&name_of(base), index_member(index).map(|(f, _)| f));
            }
        }
    }
    fn visit_function_declaration(&mut self, node: &full_moon::ast::FunctionDeclaration) {
        let names: Vec<String> = node.name().names().iter().map(name_of).collect();
        if let Some(first) = names.first() {
            self.names.insert(first.clone());
        }
        if let Some(name) = declared_global(node.name()) {
            self.names.insert(name.clone());
            self.replaced.insert(name);
        }
        match (&names[..], node.name().method_name()) {
            ([table, field], None) => self.field(table, Some(field.clone())),
            ([table], Some(method)) => self.field(table, Some(name_of(method))),
            _ => {}
        }
    }
}

impl GlobalsSet {
    /// A field set on `table`, kept if `unknown_field` checks that table.
    /// `Aerospike` is the class of the `aerospike` object: what it gets,
    /// the object has.
    fn field(&mut self, table: &str, field: Option<String>) {
        let table = if table == "Aerospike" {
            "aerospike"
        } else {
            table
        };
        let checked = super::std::members(table).is_some();
        if let Some(field) = field.filter(|_| checked) {
            self.fields.insert(format!("{table}.{field}"));
        }
    }
}

/// What a function is to the server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Receives a stream as its first parameter and must return it.
    Stream,
    /// Passed to a stream operation: the parameter at this index is a
    /// read-only record.
    Callback { record: Option<usize> },
}

/// A local variable: where it is named, and whether anything reads it.
struct Local {
    start: usize,
    end: usize,
    read: bool,
    /// Reported when never read (not parameters or top-level functions).
    report: bool,
}

#[derive(Default)]
struct Scope {
    locals: HashMap<String, Local>,
    /// Locals last set from a table constructor: storing one in a bin fails.
    tables: HashSet<String>,
}

/// The function being walked.
struct Fn {
    record: Option<String>,
    stream: Option<String>,
    in_callback: bool,
    returns_stream: bool,
    /// Names holding the stream (the parameter and locals made from it).
    stream_names: HashSet<String>,
    /// Index of the scope holding the parameters.
    scope: usize,
}

struct Walk<'a> {
    options: &'a Options,
    idents: HashMap<String, usize>,
    /// Names the module assigns as globals somewhere (defined for reads).
    globals: HashSet<String>,
    /// `T.name` for each field the module sets on a table.
    fields: HashSet<String>,
    /// Globals the module sets whole.
    replaced: HashSet<String>,
    /// Roles by function body address.
    roles: HashMap<usize, Role>,
    scopes: Vec<Scope>,
    fns: Vec<Fn>,
    out: Vec<Finding>,
}

fn key(body: &FunctionBody) -> usize {
    body as *const FunctionBody as usize
}

/// Whether the module defines global `name` when it loads: `function
/// name(…)`, `name = …` or `_G.name = …` at its top level or in a block
/// there (not in a function), or a top-level `local function name`
/// (`local_udf` flags that one, so `missing_function` does not too).
fn defines(block: &Block, name: &str, top: bool) -> bool {
    let defines = |b: &Block| defines(b, name, false);
    block.stmts().any(|stmt| match stmt {
        Stmt::LocalFunction(f) => top && name_of(f.name()) == name,
        Stmt::FunctionDeclaration(d) => declared_global(d.name()).as_deref() == Some(name),
        Stmt::Assignment(a) => a
            .variables()
            .iter()
            .any(|v| assigned_global(v).as_deref() == Some(name)),
        Stmt::Do(d) => defines(d.block()),
        Stmt::While(w) => defines(w.block()),
        Stmt::Repeat(r) => defines(r.block()),
        Stmt::NumericFor(n) => defines(n.block()),
        Stmt::GenericFor(g) => defines(g.block()),
        Stmt::If(i) => {
            defines(i.block())
                || i.else_if()
                    .into_iter()
                    .flatten()
                    .any(|e| defines(e.block()))
                || i.else_block().is_some_and(defines)
        }
        _ => false,
    })
}

/// The global a `function` statement defines: `name` or `_G.name`.
fn declared_global(name: &full_moon::ast::FunctionName) -> Option<String> {
    if name.method_name().is_some() {
        return None;
    }
    match name
        .names()
        .iter()
        .map(name_of)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [single] => Some(single.clone()),
        [g, field] if g == "_G" => Some(field.clone()),
        _ => None,
    }
}

/// The global an assignment sets: `name`, `_G.name` or `_G["name"]`.
fn assigned_global(var: &Var) -> Option<String> {
    match var {
        Var::Name(t) => Some(name_of(t)),
        Var::Expression(v) => {
            let Prefix::Name(base) = v.prefix() else {
                return None;
            };
            let mut suffixes = v.suffixes();
            let field = match (suffixes.next(), suffixes.next()) {
                (Some(Suffix::Index(Index::Dot { name, .. })), None) => Some(name_of(name)),
                (
                    Some(Suffix::Index(Index::Brackets {
                        expression: Expression::String(t),
                        ..
                    })),
                    None,
                ) => string_literal(t),
                _ => None,
            };
            field.filter(|_| name_of(base) == "_G")
        }
        _ => None,
    }
}

fn name_of(token: &TokenReference) -> String {
    token.token().to_string()
}

fn span(node: &impl Node) -> (usize, usize) {
    node.range()
        .map(|(a, b)| (a.bytes(), b.bytes()))
        .unwrap_or((0, 0))
}

fn params(body: &FunctionBody) -> Vec<Option<String>> {
    body.parameters()
        .iter()
        .map(|p| match p {
            Parameter::Name(t) => Some(name_of(t)),
            _ => None,
        })
        .collect()
}

/// The member an index names: `.name`, or `["name"]` with no escape.
fn index_member(index: &Index) -> Option<(String, &TokenReference)> {
    match index {
        Index::Dot { name, .. } => Some((name_of(name), name)),
        Index::Brackets {
            expression: Expression::String(t),
            ..
        } => string_literal(t)
            .filter(|s| !s.contains('\\'))
            .map(|s| (s, t)),
        _ => None,
    }
}

fn string_literal(token: &TokenReference) -> Option<String> {
    match token.token().token_type() {
        TokenType::StringLiteral { literal, .. } => Some(literal.to_string()),
        _ => None,
    }
}

/// The name an expression is rooted at (`s` in `s:map(f)`, `x` in `x.y`).
fn root_name(expr: &Expression) -> Option<String> {
    match expr {
        Expression::Var(Var::Name(t)) => Some(name_of(t)),
        Expression::Var(Var::Expression(v)) => prefix_name(v.prefix()),
        Expression::FunctionCall(call) => prefix_name(call.prefix()),
        Expression::Parentheses { expression, .. } => root_name(expression),
        _ => None,
    }
}

fn prefix_name(prefix: &Prefix) -> Option<String> {
    match prefix {
        Prefix::Name(t) => Some(name_of(t)),
        Prefix::Expression(e) => root_name(e),
        _ => None,
    }
}

/// Every identifier in an expression (for "does this return mention the stream").
fn mentions(expr: &Expression, names: &HashSet<String>) -> bool {
    struct Find<'n>(&'n HashSet<String>, bool);
    impl Visitor for Find<'_> {
        fn visit_identifier(&mut self, token: &full_moon::tokenizer::Token) {
            if let TokenType::Identifier { identifier } = token.token_type() {
                self.1 |= self.0.contains(identifier.as_str());
            }
        }
    }
    let mut find = Find(names, false);
    full_moon::visitors::Visit::visit(expr, &mut find);
    find.1
}

/// Stream operation calls on `param` in a body: `(op name, its arguments)`.
fn stream_ops<'b>(block: &'b Block, param: &str) -> Vec<(String, Vec<&'b Expression>)> {
    struct Find<'p, 'b> {
        param: &'p str,
        found: Vec<(String, Vec<&'b Expression>)>,
    }
    impl<'b> Find<'_, 'b> {
        fn call(&mut self, call: &'b FunctionCall) {
            if prefix_name(call.prefix()).as_deref() != Some(self.param) {
                return;
            }
            for suffix in call.suffixes() {
                if let Suffix::Call(Call::MethodCall(m)) = suffix {
                    let op = name_of(m.name());
                    if STREAM_OPS.contains(&op.as_str()) {
                        let args = match m.args() {
                            FunctionArgs::Parentheses { arguments, .. } => {
                                arguments.iter().collect()
                            }
                            _ => Vec::new(),
                        };
                        self.found.push((op, args));
                    }
                }
            }
        }
    }
    // The Visitor trait hands out short-lived references; walk by hand.
    let mut find = Find {
        param,
        found: Vec::new(),
    };
    for_each_call(block, &mut |c| find.call(c));
    find.found
}

/// Calls `f` on every function call in a block (nested functions included).
fn for_each_call<'b>(block: &'b Block, f: &mut dyn FnMut(&'b FunctionCall)) {
    for stmt in block.stmts() {
        match stmt {
            Stmt::FunctionCall(c) => call_exprs(c, f),
            Stmt::Assignment(a) => {
                for v in a.variables() {
                    var_exprs(v, f);
                }
                a.expressions().iter().for_each(|e| expr_calls(e, f));
            }
            Stmt::LocalAssignment(a) => a.expressions().iter().for_each(|e| expr_calls(e, f)),
            Stmt::LocalFunction(l) => for_each_call(l.body().block(), f),
            Stmt::FunctionDeclaration(d) => for_each_call(d.body().block(), f),
            Stmt::Do(d) => for_each_call(d.block(), f),
            Stmt::While(w) => {
                expr_calls(w.condition(), f);
                for_each_call(w.block(), f);
            }
            Stmt::Repeat(r) => {
                for_each_call(r.block(), f);
                expr_calls(r.until(), f);
            }
            Stmt::If(i) => {
                expr_calls(i.condition(), f);
                for_each_call(i.block(), f);
                for e in i.else_if().into_iter().flatten() {
                    expr_calls(e.condition(), f);
                    for_each_call(e.block(), f);
                }
                if let Some(b) = i.else_block() {
                    for_each_call(b, f);
                }
            }
            Stmt::NumericFor(n) => {
                expr_calls(n.start(), f);
                expr_calls(n.end(), f);
                if let Some(s) = n.step() {
                    expr_calls(s, f);
                }
                for_each_call(n.block(), f);
            }
            Stmt::GenericFor(g) => {
                g.expressions().iter().for_each(|e| expr_calls(e, f));
                for_each_call(g.block(), f);
            }
            _ => {}
        }
    }
    if let Some(LastStmt::Return(r)) = block.last_stmt() {
        r.returns().iter().for_each(|e| expr_calls(e, f));
    }
}

fn call_exprs<'b>(call: &'b FunctionCall, f: &mut dyn FnMut(&'b FunctionCall)) {
    f(call);
    if let Prefix::Expression(e) = call.prefix() {
        expr_calls(e, f);
    }
    suffix_exprs(call.suffixes(), f);
}

fn var_exprs<'b>(var: &'b Var, f: &mut dyn FnMut(&'b FunctionCall)) {
    if let Var::Expression(v) = var {
        if let Prefix::Expression(e) = v.prefix() {
            expr_calls(e, f);
        }
        suffix_exprs(v.suffixes(), f);
    }
}

fn suffix_exprs<'b>(
    suffixes: impl Iterator<Item = &'b Suffix>,
    f: &mut dyn FnMut(&'b FunctionCall),
) {
    for suffix in suffixes {
        match suffix {
            Suffix::Index(Index::Brackets { expression, .. }) => expr_calls(expression, f),
            Suffix::Call(Call::AnonymousCall(args)) => args_exprs(args, f),
            Suffix::Call(Call::MethodCall(m)) => args_exprs(m.args(), f),
            _ => {}
        }
    }
}

fn args_exprs<'b>(args: &'b FunctionArgs, f: &mut dyn FnMut(&'b FunctionCall)) {
    match args {
        FunctionArgs::Parentheses { arguments, .. } => {
            arguments.iter().for_each(|e| expr_calls(e, f))
        }
        FunctionArgs::TableConstructor(t) => table_exprs(t, f),
        _ => {}
    }
}

fn table_exprs<'b>(
    table: &'b full_moon::ast::TableConstructor,
    f: &mut dyn FnMut(&'b FunctionCall),
) {
    for field in table.fields() {
        match field {
            Field::ExpressionKey { key, value, .. } => {
                expr_calls(key, f);
                expr_calls(value, f);
            }
            Field::NameKey { value, .. } => expr_calls(value, f),
            Field::NoKey(value) => expr_calls(value, f),
            _ => {}
        }
    }
}

fn expr_calls<'b>(expr: &'b Expression, f: &mut dyn FnMut(&'b FunctionCall)) {
    match expr {
        Expression::BinaryOperator { lhs, rhs, .. } => {
            expr_calls(lhs, f);
            expr_calls(rhs, f);
        }
        Expression::Parentheses { expression, .. }
        | Expression::UnaryOperator { expression, .. } => expr_calls(expression, f),
        Expression::Function(func) => for_each_call(func.body().block(), f),
        Expression::FunctionCall(c) => call_exprs(c, f),
        Expression::TableConstructor(t) => table_exprs(t, f),
        Expression::Var(v) => var_exprs(v, f),
        _ => {}
    }
}

impl Walk<'_> {
    fn find(&mut self, rule: &'static str, node: &impl Node, message: String) {
        self.found(rule, span(node), message, None);
    }

    /// A finding over bytes `start..end`; `fix`: its own, else the rule's.
    fn found(
        &mut self,
        rule: &'static str,
        (start, end): (usize, usize),
        message: String,
        fix: Option<String>,
    ) {
        self.out.push(Finding {
            rule,
            start,
            end,
            message,
            fix,
        });
    }

    fn is_local(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.locals.contains_key(name))
    }

    /// A new local; `report`: say so if nothing reads it.
    fn declare(&mut self, token: &TokenReference, report: bool) {
        let name = name_of(token);
        let (start, end) = span(token);
        if !name.starts_with('_') && self.is_local(&name) {
            self.found(
                "shadowing",
                (start, end),
                format!("'{name}' shadows a local of the same name declared before"),
                None,
            );
        }
        let scope = self.scopes.last_mut().expect("a scope is open");
        scope.tables.remove(&name);
        let old = scope.locals.insert(
            name.clone(),
            Local {
                start,
                end,
                read: false,
                report,
            },
        );
        if let Some(old) = old {
            self.unused(&name, &old);
        }
    }

    fn unused(&mut self, name: &str, local: &Local) {
        if local.report && !local.read && !name.starts_with('_') {
            self.found(
                "unused_variable",
                (local.start, local.end),
                format!("'{name}' is defined, but never used"),
                None,
            );
        }
    }

    /// Closes the innermost scope, reporting its unread locals.
    fn pop_scope(&mut self) {
        if let Some(scope) = self.scopes.pop() {
            let mut unread: Vec<(String, Local)> = scope.locals.into_iter().collect();
            unread.sort_by_key(|(_, l)| l.start);
            for (name, local) in unread {
                self.unused(&name, &local);
            }
        }
    }

    /// A name read: the innermost local of that name, else a global that
    /// must exist (the UDF environment or one the module sets).
    fn read(&mut self, token: &TokenReference) {
        let name = name_of(token);
        for scope in self.scopes.iter_mut().rev() {
            if let Some(local) = scope.locals.get_mut(&name) {
                local.read = true;
                return;
            }
        }
        if !self.globals.contains(&name) && !super::std::global_roots().contains(&name) {
            let (start, end) = span(token);
            self.found(
                "undefined_variable",
                (start, end),
                format!("'{name}' is not defined (nil at run time)"),
                None,
            );
        }
    }

    /// Marks stream functions and the callbacks their operations receive.
    fn find_roles(&mut self, block: &Block) {
        let mut named: HashMap<String, Vec<&FunctionBody>> = HashMap::new();
        let mut bodies: Vec<&FunctionBody> = Vec::new();
        collect_functions(block, &mut named, &mut bodies);
        for body in bodies {
            let Some(Some(first)) = params(body).into_iter().next() else {
                continue;
            };
            let ops = stream_ops(body.block(), &first);
            if ops.is_empty() {
                continue;
            }
            self.roles.insert(key(body), Role::Stream);
            for (op, args) in ops {
                // map/filter/groupby get a value (a record in the first
                // operation); aggregate's function gets it second.
                let (index, record) = match op.as_str() {
                    "aggregate" => (1, Some(1)),
                    "reduce" => (0, None),
                    _ => (0, Some(0)),
                };
                let Some(arg) = args.get(index) else { continue };
                let targets: Vec<&FunctionBody> = match arg {
                    Expression::Function(f) => vec![f.body()],
                    Expression::Var(Var::Name(t)) => {
                        named.get(&name_of(t)).cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                for target in targets {
                    self.roles
                        .entry(key(target))
                        .or_insert(Role::Callback { record });
                }
            }
        }
    }

    /// Module-level checks: top-level local functions nothing can call, and
    /// a wanted function the module does not define.
    fn top_level(&mut self, block: &Block) {
        let wanted = self.options.function.as_deref();
        if let Some(name) = wanted
            && !defines(block, name, true)
        {
            // Nowhere to point in the source: its first line.
            self.found(
                "missing_function",
                (0, 0),
                format!(
                    "the module has no function '{name}': the server answers \"function not found\""
                ),
                None,
            );
        }
        for stmt in block.stmts() {
            if let Stmt::LocalFunction(f) = stmt {
                let name = name_of(f.name());
                let uses = self.idents.get(&name).copied().unwrap_or(0);
                if wanted == Some(name.as_str()) {
                    self.find(
                        "local_udf",
                        f.name(),
                        format!(
                            "'{name}' is local: the server only calls global functions (\"function not found\")"
                        ),
                    );
                } else if uses <= 1 {
                    self.find(
                        "local_udf",
                        f.name(),
                        format!(
                            "local function '{name}' is never used, and the server cannot call a local function"
                        ),
                    );
                }
            }
        }
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(Scope::default());
        self.block_body(block);
        self.pop_scope();
    }

    /// A block's statements in the current scope.
    fn block_body(&mut self, block: &Block) {
        // Report the first unreachable statement only.
        let (mut raised, mut reported) = (false, false);
        for stmt in block.stmts() {
            if raised && !reported {
                self.find(
                    "unreachable_code",
                    stmt,
                    "unreachable: error() above always raises".into(),
                );
                reported = true;
            }
            self.stmt(stmt);
            raised |= self.raises(stmt);
        }
        if raised
            && !reported
            && let Some(last) = block.last_stmt()
        {
            self.find(
                "unreachable_code",
                last,
                "unreachable: error() above always raises".into(),
            );
        }
        if let Some(LastStmt::Return(r)) = block.last_stmt() {
            for e in r.returns() {
                self.expr(e);
            }
            if let Some(f) = self.fns.last_mut()
                && f.stream.is_some()
                && r.returns().iter().any(|e| mentions(e, &f.stream_names))
            {
                f.returns_stream = true;
            }
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::LocalAssignment(a) => {
                for e in a.expressions() {
                    self.expr(e);
                }
                let exprs: Vec<&Expression> = a.expressions().iter().collect();
                for (i, (n, attribute)) in a.names().iter().zip(a.attributes()).enumerate() {
                    let name = name_of(n);
                    // A `<close>` local is there to be closed, not read.
                    let closed = attribute.is_some_and(|at| name_of(at.name()) == "close");
                    self.declare(n, !closed);
                    match exprs.get(i) {
                        Some(Expression::TableConstructor(_)) => {
                            if let Some(s) = self.scopes.last_mut() {
                                s.tables.insert(name);
                            }
                        }
                        Some(e) => self.track_stream(&name, e),
                        None => {}
                    }
                }
            }
            Stmt::LocalFunction(f) => {
                // An unused top-level one is `local_udf`'s.
                let top = self.fns.is_empty();
                self.declare(f.name(), !top);
                self.function(f.body(), false, None);
            }
            Stmt::FunctionDeclaration(d) => {
                let names: Vec<String> = d.name().names().iter().map(name_of).collect();
                let simple = names.len() == 1 && d.name().method_name().is_none();
                if let Some(first) = d.name().names().iter().next()
                    && !simple
                {
                    self.read(first);
                }
                if simple && !self.fns.is_empty() && !self.is_local(&names[0]) {
                    self.find(
                        "global_in_function",
                        d.name(),
                        format!(
                            "function '{}' is defined as a global inside a function: it persists between calls",
                            names[0]
                        ),
                    );
                }
                let top_global = simple && self.fns.is_empty() && !self.is_local(&names[0]);
                // An entry point: a top-level global the module never calls
                // itself (a helper's first parameter need not be a record).
                let entry = top_global && self.idents.get(&names[0]).copied().unwrap_or(0) <= 1;
                self.function(d.body(), entry, d.name().method_name());
                if top_global {
                    self.check_record_param(&names[0], d.body(), d.name());
                }
            }
            Stmt::Assignment(a) => {
                for e in a.expressions() {
                    self.expr(e);
                }
                let exprs: Vec<&Expression> = a.expressions().iter().collect();
                for (i, var) in a.variables().iter().enumerate() {
                    self.assigned(var, exprs.get(i).copied());
                }
            }
            Stmt::FunctionCall(c) => self.call(c),
            Stmt::Do(d) => self.block(d.block()),
            Stmt::While(w) => {
                self.expr(w.condition());
                self.block(w.block());
            }
            Stmt::Repeat(r) => {
                // `until` sees the block's locals.
                self.scopes.push(Scope::default());
                self.block_body(r.block());
                self.expr(r.until());
                self.pop_scope();
            }
            Stmt::If(i) => {
                self.expr(i.condition());
                self.block(i.block());
                for e in i.else_if().into_iter().flatten() {
                    self.expr(e.condition());
                    self.block(e.block());
                }
                if let Some(b) = i.else_block() {
                    self.block(b);
                }
            }
            Stmt::NumericFor(n) => {
                self.expr(n.start());
                self.expr(n.end());
                if let Some(s) = n.step() {
                    self.expr(s);
                }
                self.scopes.push(Scope::default());
                self.declare(n.index_variable(), true);
                self.block(n.block());
                self.pop_scope();
            }
            Stmt::GenericFor(g) => {
                for e in g.expressions() {
                    self.expr(e);
                }
                self.scopes.push(Scope::default());
                for n in g.names() {
                    self.declare(n, true);
                }
                self.block(g.block());
                self.pop_scope();
            }
            _ => {}
        }
    }

    /// A plain `error(...)` call: nothing after it in the block runs.
    fn raises(&self, stmt: &Stmt) -> bool {
        let Stmt::FunctionCall(call) = stmt else {
            return false;
        };
        let mut suffixes = call.suffixes();
        matches!(call.prefix(), Prefix::Name(t) if name_of(t) == "error")
            && !self.is_local("error")
            && matches!(suffixes.next(), Some(Suffix::Call(Call::AnonymousCall(_))))
            && suffixes.next().is_none()
    }

    /// `local x = s : map(f)` keeps the stream in `x`.
    fn track_stream(&mut self, name: &str, expr: &Expression) {
        if let Some(f) = self.fns.last_mut()
            && f.stream.is_some()
            && mentions(expr, &f.stream_names)
        {
            f.stream_names.insert(name.to_string());
        }
    }

    fn assigned(&mut self, var: &Var, value: Option<&Expression>) {
        match var {
            Var::Name(t) => {
                let name = name_of(t);
                if self.is_local(&name) {
                    // Only a table set where it was declared is followed.
                    for s in self.scopes.iter_mut() {
                        s.tables.remove(&name);
                    }
                    if let Some(e) = value {
                        self.track_stream(&name, e);
                    }
                } else if !self.fns.is_empty() {
                    self.find(
                        "global_in_function",
                        t,
                        format!(
                            "'{name}' is a global set inside a function: it persists between calls on pooled Lua states"
                        ),
                    );
                }
            }
            Var::Expression(v) => {
                match v.prefix() {
                    Prefix::Expression(e) => self.expr(e),
                    Prefix::Name(t) => self.read(t),
                    _ => {}
                }
                let suffixes: Vec<&Suffix> = v.suffixes().collect();
                for s in &suffixes {
                    self.suffix(s);
                }
                self.library_use(v.prefix(), &suffixes);
                let Prefix::Name(base) = v.prefix() else {
                    return;
                };
                if suffixes.len() != 1 {
                    return;
                }
                let base = name_of(base);
                let Some(f) = self.fns.last() else { return };
                let in_callback = f.in_callback;
                if f.record.as_deref() != Some(base.as_str()) || self.shadowed_record(&base) {
                    return;
                }
                self.bin_name(suffixes[0]);
                if in_callback {
                    self.find(
                        "record_write_in_stream",
                        var,
                        format!("'{base}' is a stream's record: the server ignores this write"),
                    );
                    return;
                }
                let table = match value {
                    Some(Expression::TableConstructor(_)) => true,
                    Some(Expression::Var(Var::Name(t))) => {
                        let n = name_of(t);
                        self.scopes
                            .iter()
                            .rev()
                            .find(|s| s.locals.contains_key(&n))
                            .is_some_and(|s| s.tables.contains(&n))
                    }
                    _ => false,
                };
                if table {
                    self.find(
                        "table_in_bin",
                        var,
                        "a Lua table cannot be stored in a bin (\"can't set bin to unsupported type\")"
                            .into(),
                    );
                }
            }
            _ => {}
        }
    }

    /// A local declared in the function's body hides the record parameter.
    fn shadowed_record(&self, name: &str) -> bool {
        let from = self.fns.last().map_or(0, |f| f.scope + 1);
        self.scopes
            .get(from..)
            .is_some_and(|inner| inner.iter().any(|s| s.locals.contains_key(name)))
    }

    /// `rec.some_very_long_name` / `rec["…"]`: over 15 bytes is ignored.
    fn bin_name(&mut self, suffix: &Suffix) {
        let name = match suffix {
            Suffix::Index(Index::Dot { name, .. }) => Some(name_of(name)),
            Suffix::Index(Index::Brackets {
                expression: Expression::String(t),
                ..
            }) => string_literal(t),
            _ => None,
        };
        if let Some(name) = name
            && name.len() > BIN_NAME_MAX
        {
            self.find(
                "long_bin_name",
                suffix,
                format!(
                    "bin name '{name}' is {} bytes: the server ignores names over {BIN_NAME_MAX} bytes",
                    name.len()
                ),
            );
        }
    }

    /// A function's body; `method`: the name of a `:` method, which Lua
    /// gives an implicit first parameter `self`.
    fn function(&mut self, body: &FunctionBody, entry: bool, method: Option<&TokenReference>) {
        let role = self.roles.get(&key(body)).copied();
        let names = params(body);
        let first = names.first().cloned().flatten();
        let (record, stream, in_callback) = match role {
            Some(Role::Stream) => (None, first.clone(), false),
            Some(Role::Callback { record }) => (
                record.and_then(|i| names.get(i).cloned().flatten()),
                None,
                true,
            ),
            None if entry => (first, None, false),
            None => (None, None, false),
        };
        self.fns.push(Fn {
            record,
            stream: stream.clone(),
            in_callback,
            returns_stream: false,
            stream_names: stream.iter().cloned().collect(),
            scope: self.scopes.len(),
        });
        let mut scope = Scope::default();
        if let Some(name) = method {
            // Not `declare`d: no one can rename it, so it shadows nothing.
            let (start, end) = span(name);
            let local = Local {
                start,
                end,
                read: false,
                report: false,
            };
            scope.locals.insert("self".into(), local);
        }
        self.scopes.push(scope);
        for p in body.parameters() {
            if let Parameter::Name(t) = p {
                self.declare(t, false);
            }
        }
        self.block(body.block());
        self.pop_scope();
        let f = self.fns.pop().expect("pushed above");
        if let Some(s) = f.stream
            && !f.returns_stream
        {
            self.find(
                "stream_not_returned",
                body,
                format!(
                    "this stream function never returns its stream '{s}': the server needs it returned"
                ),
            );
        }
    }

    fn check_record_param(&mut self, name: &str, body: &FunctionBody, at: &impl Node) {
        if self.roles.contains_key(&key(body)) || body.parameters().iter().next().is_some() {
            return;
        }
        // A function the module calls itself is a helper, not a UDF.
        if self.idents.get(name).copied().unwrap_or(0) > 1 {
            return;
        }
        self.find(
            "no_record_param",
            at,
            format!("record UDF '{name}' has no parameter for the record it is called on"),
        );
    }

    fn call(&mut self, call: &FunctionCall) {
        match call.prefix() {
            Prefix::Expression(e) => self.expr(e),
            Prefix::Name(t) => self.read(t),
            _ => {}
        }
        let suffixes: Vec<&Suffix> = call.suffixes().collect();
        for s in &suffixes {
            self.suffix(s);
        }
        self.library_use(call.prefix(), &suffixes);
        // aerospike:update(rec) in a stream callback writes nothing.
        if let (Prefix::Name(base), Some(Suffix::Call(Call::MethodCall(m)))) =
            (call.prefix(), suffixes.first())
            && name_of(base) == "aerospike"
            && !self.is_local("aerospike")
            && self.fns.last().is_some_and(|f| f.in_callback)
        {
            let method = name_of(m.name());
            if ["update", "create", "remove"].contains(&method.as_str()) {
                self.find(
                    "record_write_in_stream",
                    call,
                    format!("aerospike:{method} in a stream function: the server ignores it"),
                );
            }
        }
        // Reads of a long bin name: rec.long_name inside an expression.
        if let Prefix::Name(base) = call.prefix() {
            self.record_read(&name_of(base), &suffixes);
        }
    }

    fn record_read(&mut self, base: &str, suffixes: &[&Suffix]) {
        let is_record = self
            .fns
            .last()
            .is_some_and(|f| f.record.as_deref() == Some(base));
        if is_record
            && !self.shadowed_record(base)
            && let Some(first) = suffixes.first()
        {
            self.bin_name(first);
            self.record_method(base, suffixes);
        }
    }

    /// `rec:ttl()` or `rec.ttl()` for a `record` function: it calls the
    /// value of bin `ttl` (a record has no methods, and a bin never holds
    /// a function), so it always fails.
    fn record_method(&mut self, base: &str, suffixes: &[&Suffix]) {
        let (name, sep) = match suffixes {
            [Suffix::Call(Call::MethodCall(m)), ..] => (name_of(m.name()), ":"),
            [
                Suffix::Index(index),
                Suffix::Call(Call::AnonymousCall(_)),
                ..,
            ] => match index_member(index) {
                Some((name, _)) => (name, "."),
                None => return,
            },
            _ => return,
        };
        if !super::std::members("record").is_some_and(|m| m.contains(&name)) {
            return;
        }
        let (start, end) = span(suffixes[0]);
        self.found(
            "record_method",
            (start, end),
            format!(
                "'{base}{sep}{name}(…)' calls the value of bin '{name}': a record has no methods"
            ),
            Some(format!(
                "call the library function: `record.{name}({base}, …)`"
            )),
        );
    }

    fn suffix(&mut self, suffix: &Suffix) {
        match suffix {
            Suffix::Index(Index::Brackets { expression, .. }) => self.expr(expression),
            Suffix::Call(Call::AnonymousCall(args)) => self.args(args),
            Suffix::Call(Call::MethodCall(m)) => self.args(m.args()),
            _ => {}
        }
    }

    fn args(&mut self, args: &FunctionArgs) {
        match args {
            FunctionArgs::Parentheses { arguments, .. } => {
                for e in arguments {
                    self.expr(e);
                }
            }
            FunctionArgs::TableConstructor(t) => self.table(t),
            _ => {}
        }
    }

    fn table(&mut self, table: &full_moon::ast::TableConstructor) {
        for field in table.fields() {
            match field {
                Field::ExpressionKey { key, value, .. } => {
                    self.expr(key);
                    self.expr(value);
                }
                Field::NameKey { value, .. } => self.expr(value),
                Field::NoKey(value) => self.expr(value),
                _ => {}
            }
        }
    }

    fn expr(&mut self, expr: &Expression) {
        match expr {
            Expression::BinaryOperator { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expression::Parentheses { expression, .. }
            | Expression::UnaryOperator { expression, .. } => self.expr(expression),
            Expression::Function(f) => self.function(f.body(), false, None),
            Expression::FunctionCall(c) => self.call(c),
            Expression::TableConstructor(t) => self.table(t),
            Expression::Var(Var::Name(t)) => self.read(t),
            Expression::Var(Var::Expression(v)) => {
                match v.prefix() {
                    Prefix::Expression(e) => self.expr(e),
                    Prefix::Name(t) => self.read(t),
                    _ => {}
                }
                let suffixes: Vec<&Suffix> = v.suffixes().collect();
                for s in &suffixes {
                    self.suffix(s);
                }
                self.library_use(v.prefix(), &suffixes);
                if let Prefix::Name(base) = v.prefix() {
                    self.record_read(&name_of(base), &suffixes);
                }
            }
            _ => {}
        }
    }

    /// Library use the chosen mode removes (udf-runtime §1.2).
    fn library_use(&mut self, prefix: &Prefix, suffixes: &[&Suffix]) {
        let Prefix::Name(base) = prefix else { return };
        let name = name_of(base);
        // A bare name (`type(io)`) reads nil and fails nothing; indexing or
        // calling it does.
        if suffixes.is_empty() || self.is_local(&name) {
            return;
        }
        let field = |i: usize| match suffixes.get(i) {
            Some(Suffix::Index(Index::Dot { name, .. })) => Some(name_of(name)),
            Some(Suffix::Index(Index::Brackets {
                expression: Expression::String(t),
                ..
            })) => string_literal(t),
            _ => None,
        };
        let first = field(0);
        let libs = self.options.libs;
        let mode = libs.as_str();
        let removed: Option<String> = match (name.as_str(), libs) {
            // The global `debug` is the log helper in every mode.
            ("debug", _) if first.is_some() => Some(format!(
                "'debug' is the log helper in a UDF, not the debug library: debug.{} fails",
                first.as_deref().unwrap_or("")
            )),
            ("io", LuaLibs::Default | LuaLibs::Hardened) => {
                Some(format!("the io library is not available under --lua-libs {mode}"))
            }
            ("os", LuaLibs::Hardened) => {
                Some("the os library is not available under --lua-libs hardened".into())
            }
            ("os", LuaLibs::Default) => first
                .filter(|f| !OS_DEFAULT.contains(&f.as_str()))
                .map(|f| {
                    format!(
                        "os.{f} is not available under --lua-libs default (only os.clock, os.date, os.difftime, os.time)"
                    )
                }),
            ("load" | "loadfile" | "dofile", LuaLibs::Hardened) => {
                Some(format!("{name} is not available under --lua-libs hardened"))
            }
            ("package", LuaLibs::Default | LuaLibs::Hardened)
                if first.as_deref() == Some("loaded")
                    && field(1).as_deref() == Some("debug") =>
            {
                Some(format!("the debug library is not available under --lua-libs {mode}"))
            }
            ("package", LuaLibs::Hardened)
                if matches!(first.as_deref(), Some("loadlib" | "cpath" | "searchpath")) =>
            {
                Some(format!(
                    "package.{} is not available under --lua-libs hardened",
                    first.as_deref().unwrap_or("")
                ))
            }
            ("require", LuaLibs::Default | LuaLibs::Hardened)
                if require_arg(suffixes).as_deref() == Some("debug") =>
            {
                Some(format!("the debug library is not available under --lua-libs {mode}"))
            }
            _ => None,
        };
        if let Some(message) = removed {
            let (start, _) = span(base);
            let end = suffixes
                .first()
                .map(|s| span(*s).1)
                .unwrap_or_else(|| span(base).1);
            self.found("unavailable_library", (start, end), message, None);
        } else if let Some(first) = suffixes.first() {
            self.unknown_field(&name, first);
        }
    }

    /// `T.name`, `T["name"]` or `T:name(…)` on a library table `T` (a global
    /// the module neither shadows nor sets) that has no such member.
    fn unknown_field(&mut self, table: &str, suffix: &Suffix) {
        let Some(members) = super::std::members(table) else {
            return;
        };
        let (name, token, sep) = match suffix {
            Suffix::Index(index) => match index_member(index) {
                Some((name, token)) => (name, token, "."),
                None => return,
            },
            Suffix::Call(Call::MethodCall(m)) => (name_of(m.name()), m.name(), ":"),
            _ => return,
        };
        // The module's own: `function string.trim`, `Aerospike.f = …`.
        if members.contains(&name)
            || self.replaced.contains(table)
            || self.fields.contains(&format!("{table}.{name}"))
        {
            return;
        }
        let what = if sep == ":" { "method" } else { "field" };
        let fix = FIELD_HINTS
            .iter()
            .find(|(t, n, _)| *t == table && *n == name)
            .map(|(_, _, hint)| hint.to_string())
            .or_else(|| {
                nearest(&name, members).map(|m| format!("did you mean `{table}{sep}{m}`?"))
            });
        let (start, end) = span(token);
        self.found(
            "unknown_field",
            (start, end),
            format!("'{table}' has no {what} '{name}': it is nil at run time"),
            fix,
        );
    }
}

/// Members often looked for where they are not, and where they are.
const FIELD_HINTS: &[(&str, &str, &str)] = &[
    ("record", "exists", "use `aerospike:exists(rec)`"),
    ("record", "remove", "use `aerospike:remove(rec)`"),
    ("list", "get", "index the list: `l[i]`"),
    ("list", "set", "assign to the list's index: `l[i] = v`"),
    ("map", "get", "index the map: `m[k]`"),
    ("map", "set", "assign to the map's key: `m[k] = v`"),
    ("table", "getn", "use the length operator: `#t`"),
    (
        "string",
        "gfind",
        "use `string.gmatch` (Lua 5.1's `gfind` is gone)",
    ),
];

/// The member nearest `name` within two edits, if any (the first by name
/// of those as near).
fn nearest<'m>(name: &str, members: &'m HashSet<String>) -> Option<&'m str> {
    members
        .iter()
        .map(|m| (strsim::levenshtein(name, m), m.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, m)| m)
}

/// The string `require` is called with: `require "x"` or `require("x")`.
fn require_arg(suffixes: &[&Suffix]) -> Option<String> {
    match suffixes.first()? {
        Suffix::Call(Call::AnonymousCall(FunctionArgs::String(t))) => string_literal(t),
        Suffix::Call(Call::AnonymousCall(FunctionArgs::Parentheses { arguments, .. })) => {
            match arguments.iter().next()? {
                Expression::String(t) => string_literal(t),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every function in a block: by name (for callbacks passed by name), and all bodies.
fn collect_functions<'b>(
    block: &'b Block,
    named: &mut HashMap<String, Vec<&'b FunctionBody>>,
    bodies: &mut Vec<&'b FunctionBody>,
) {
    struct Collect<'n, 'b> {
        named: &'n mut HashMap<String, Vec<&'b FunctionBody>>,
        bodies: &'n mut Vec<&'b FunctionBody>,
    }
    fn walk<'b>(block: &'b Block, c: &mut Collect<'_, 'b>) {
        for stmt in block.stmts() {
            match stmt {
                Stmt::LocalFunction(f) => {
                    c.named.entry(name_of(f.name())).or_default().push(f.body());
                    c.bodies.push(f.body());
                    walk(f.body().block(), c);
                }
                Stmt::FunctionDeclaration(d) => {
                    if let Some(last) = d.name().names().iter().last() {
                        c.named.entry(name_of(last)).or_default().push(d.body());
                    }
                    c.bodies.push(d.body());
                    walk(d.body().block(), c);
                }
                Stmt::LocalAssignment(a) => {
                    for (n, e) in a.names().iter().zip(a.expressions().iter()) {
                        if let Expression::Function(f) = e {
                            c.named.entry(name_of(n)).or_default().push(f.body());
                        }
                    }
                    for e in a.expressions() {
                        exprs(e, c);
                    }
                }
                Stmt::Assignment(a) => {
                    for (v, e) in a.variables().iter().zip(a.expressions().iter()) {
                        if let (Var::Name(n), Expression::Function(f)) = (v, e) {
                            c.named.entry(name_of(n)).or_default().push(f.body());
                        }
                    }
                    for e in a.expressions() {
                        exprs(e, c);
                    }
                }
                Stmt::Do(d) => walk(d.block(), c),
                Stmt::While(w) => walk(w.block(), c),
                Stmt::Repeat(r) => walk(r.block(), c),
                Stmt::If(i) => {
                    walk(i.block(), c);
                    for e in i.else_if().into_iter().flatten() {
                        walk(e.block(), c);
                    }
                    if let Some(b) = i.else_block() {
                        walk(b, c);
                    }
                }
                Stmt::NumericFor(n) => walk(n.block(), c),
                Stmt::GenericFor(g) => walk(g.block(), c),
                Stmt::FunctionCall(call) => {
                    let mut found = Vec::new();
                    call_exprs(call, &mut |fc| found.push(fc));
                    for fc in found {
                        for s in fc.suffixes() {
                            if let Suffix::Call(Call::AnonymousCall(FunctionArgs::Parentheses {
                                arguments,
                                ..
                            })) = s
                            {
                                arguments.iter().for_each(|e| exprs(e, c));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(LastStmt::Return(r)) = block.last_stmt() {
            for e in r.returns() {
                exprs(e, c);
            }
        }
    }
    /// Anonymous functions inside expressions (`return function(s) … end`).
    fn exprs<'b>(expr: &'b Expression, c: &mut Collect<'_, 'b>) {
        match expr {
            Expression::Function(f) => {
                c.bodies.push(f.body());
                walk(f.body().block(), c);
            }
            Expression::Parentheses { expression, .. } => exprs(expression, c),
            Expression::TableConstructor(t) => {
                for field in t.fields() {
                    match field {
                        Field::NameKey { value, .. } | Field::ExpressionKey { value, .. } => {
                            exprs(value, c)
                        }
                        Field::NoKey(value) => exprs(value, c),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    walk(block, &mut Collect { named, bodies });
}
