//! Each rule of our own with a module that trips it and one that does not.

use super::*;

fn rules_in(source: &str, options: &Options) -> Vec<(String, Severity, u32)> {
    lint(source, options)
        .into_iter()
        .map(|d| (d.rule, d.severity, d.line))
        .collect()
}

fn has(source: &str, rule: &str) -> bool {
    has_with(source, rule, &Options::default())
}

fn has_with(source: &str, rule: &str, options: &Options) -> bool {
    rules_in(source, options).iter().any(|(r, _, _)| r == rule)
}

fn libs(libs: LuaLibs) -> Options {
    Options {
        libs,
        ..Options::default()
    }
}

#[test]
fn syntax_error_is_an_error_with_its_position() {
    let found = lint(
        "function f(rec)\n  return rec.a + * 2\nend\n",
        &Options::default(),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, "syntax_error");
    assert_eq!(found[0].severity, Severity::Error);
    // Lua's line and message (the server's), the tree parser's column.
    assert_eq!((found[0].line, found[0].col), (2, 16));
    assert!(
        found[0].message.contains("unexpected symbol near '*'"),
        "{}",
        found[0].message
    );
    assert!(!has(
        "function f(rec)\n  return rec.a + 1\nend\n",
        "syntax_error"
    ));
}

#[test]
fn local_udf_the_form_calls_or_nothing_uses() {
    let called = Options {
        function: Some("bump".into()),
        ..Options::default()
    };
    let src = "local function bump(rec)\n  return 1\nend\n";
    let found = lint(src, &called);
    let d = found
        .iter()
        .find(|d| d.rule == "local_udf")
        .expect("flagged");
    assert_eq!((d.severity, d.line, d.col), (Severity::Error, 1, 16));
    assert!(d.message.contains("'bump' is local"), "{}", d.message);
    // Unused and uncallable, even with no form.
    assert!(has(src, "local_udf"));
    // No duplicate from selene's unused_variable.
    assert!(
        !found
            .iter()
            .any(|d| d.rule == "unused_variable" && d.message.contains("bump"))
    );
    // A local helper a global function uses is fine; so is a global UDF.
    let fine = "local function helper(x)\n  return x + 1\nend\nfunction bump(rec)\n  return helper(1)\nend\n";
    assert!(!has_with(fine, "local_udf", &called));
    assert!(!has_with(
        "bump = function(rec) end\n",
        "local_udf",
        &called
    ));
}

#[test]
fn missing_function_a_function_the_module_does_not_define() {
    let called = Options {
        function: Some("bump".into()),
        ..Options::default()
    };
    // A method or a field of that name is not a global the server calls.
    let src = "function bumped(rec) end\nfunction t.bump(rec) end\nlocal x = 1\n";
    let found = lint(src, &called);
    let d = found
        .iter()
        .find(|d| d.rule == "missing_function")
        .expect("flagged");
    assert_eq!((d.severity, d.line, d.col), (Severity::Error, 1, 1));
    assert_eq!(
        d.message,
        "the module has no function 'bump': the server answers \"function not found\""
    );
    assert!(d.is_missing_function());
    let local = lint("local function bump(rec) end\n", &called);
    assert!(local.iter().all(|d| !d.is_missing_function()), "{local:?}");
    let d = local
        .iter()
        .find(|d| d.rule == "local_udf")
        .expect("flagged as local");
    assert!(d.message.contains("'bump' is local"), "{d:?}");
    // A rule of its own: `--allow`, a config file and a comment name it.
    assert!(is_rule("missing_function"));
    let allowed = format!("-- asudf: allow(missing_function)\n{src}");
    assert!(
        !lint(&allowed, &called)
            .iter()
            .any(|d| d.is_missing_function())
    );
}

#[test]
fn table_in_bin() {
    let bad = "function f(rec)\n  rec.tags = {1, 2}\n  aerospike:update(rec)\nend\n";
    let found = lint(bad, &Options::default());
    let d = found
        .iter()
        .find(|d| d.rule == "table_in_bin")
        .expect("flagged");
    assert_eq!((d.severity, d.line), (Severity::Error, 2));
    let via_local = "function f(rec)\n  local t = {}\n  rec['tags'] = t\nend\n";
    assert!(has(via_local, "table_in_bin"));
    let fine = "function f(rec)\n  local t = {}\n  rec.tags = list(t)\n  rec.m = map{a = 1}\n  aerospike:update(rec)\nend\n";
    assert!(!has(fine, "table_in_bin"));
    // A helper the module calls: its first parameter need not be a record.
    let helper = "function fill(t)\n  t.items = {}\nend\nfunction f(rec)\n  local t = {}\n  fill(t)\n  return #t.items\nend\n";
    assert!(!has(helper, "table_in_bin"));
    // Reassigned before the write: not followed, not flagged.
    let reassigned = "function f(rec)\n  local t = {}\n  t = list()\n  rec.tags = t\nend\n";
    assert!(!has(reassigned, "table_in_bin"));
}

#[test]
fn stream_not_returned() {
    let bad = "local function one(r)\n  return 1\nend\nfunction count(s)\n  s : map(one)\nend\n";
    let found = lint(bad, &Options::default());
    let d = found
        .iter()
        .find(|d| d.rule == "stream_not_returned")
        .expect("flagged");
    assert_eq!(d.severity, Severity::Error);
    let fine =
        "local function one(r)\n  return 1\nend\nfunction count(s)\n  return s : map(one)\nend\n";
    assert!(!has(fine, "stream_not_returned"));
    let via_local =
        "function count(s)\n  local out = s : map(function(r) return 1 end)\n  return out\nend\n";
    assert!(!has(via_local, "stream_not_returned"));
}

#[test]
fn unavailable_library_by_mode() {
    let io = "function f(rec)\n  io.write('x')\nend\n";
    assert!(has_with(io, "unavailable_library", &libs(LuaLibs::Default)));
    assert!(!has_with(io, "unavailable_library", &libs(LuaLibs::All)));
    let os_time = "function f(rec)\n  return os.time()\nend\n";
    assert!(!has_with(
        os_time,
        "unavailable_library",
        &libs(LuaLibs::Default)
    ));
    assert!(has_with(
        os_time,
        "unavailable_library",
        &libs(LuaLibs::Hardened)
    ));
    let exit = "function f(rec)\n  os.exit(1)\nend\n";
    assert!(has_with(
        exit,
        "unavailable_library",
        &libs(LuaLibs::Default)
    ));
    let dbg = "function f(rec)\n  local d = require 'debug'\n  return d.traceback()\nend\n";
    assert!(has_with(
        dbg,
        "unavailable_library",
        &libs(LuaLibs::Default)
    ));
    assert!(!has_with(dbg, "unavailable_library", &libs(LuaLibs::All)));
    let loaded = "function f(rec)\n  return package.loaded.debug\nend\n";
    assert!(has_with(
        loaded,
        "unavailable_library",
        &libs(LuaLibs::Default)
    ));
    let load = "function f(rec)\n  return load('return 1')()\nend\n";
    assert!(has_with(
        load,
        "unavailable_library",
        &libs(LuaLibs::Hardened)
    ));
    assert!(!has_with(
        load,
        "unavailable_library",
        &libs(LuaLibs::Default)
    ));
    // The log helper `debug(...)` is never flagged, in any mode.
    for mode in [LuaLibs::Default, LuaLibs::All, LuaLibs::Hardened] {
        let log = "function f(rec)\n  debug('x %s', 1)\n  return 1\nend\n";
        assert!(rules_in(log, &libs(mode)).is_empty(), "{mode:?}");
    }
    // Only indexing or calling fails: `type(io)` is nil, not an error.
    let probe = "function f(rec)\n  return type(io), type(load)\nend\n";
    assert!(!has_with(
        probe,
        "unavailable_library",
        &libs(LuaLibs::Hardened)
    ));
    // A local of the same name is not the library.
    let local = "function f(rec)\n  local io = {write = print}\n  io.write('x')\nend\n";
    assert!(!has_with(
        local,
        "unavailable_library",
        &libs(LuaLibs::Hardened)
    ));
    let found = lint(io, &libs(LuaLibs::Hardened));
    assert!(found.iter().any(|d| d.severity == Severity::Error));
}

#[test]
fn no_record_param() {
    assert!(has(
        "function hello()\n  return 'hi'\nend\n",
        "no_record_param"
    ));
    assert!(!has(
        "function hello(rec)\n  return 'hi'\nend\n",
        "no_record_param"
    ));
    // A global the module calls itself is a helper.
    let helper = "function two()\n  return 2\nend\nfunction f(rec)\n  return two()\nend\n";
    assert!(!has(helper, "no_record_param"));
}

#[test]
fn global_in_function() {
    let bad = "function f(rec)\n  total = (total or 0) + 1\n  return total\nend\n";
    let found = lint(bad, &Options::default());
    let d = found
        .iter()
        .find(|d| d.rule == "global_in_function")
        .expect("flagged");
    assert_eq!((d.severity, d.line), (Severity::Warning, 2));
    let fine = "local total = 0\nfunction f(rec)\n  total = total + 1\n  local x = 1\n  x = x + total\n  return x\nend\n";
    assert!(!has(fine, "global_in_function"));
    // Top level runs once per Lua state: not flagged.
    assert!(!has(
        "LIMIT = 10\nfunction f(rec)\n  return LIMIT\nend\n",
        "global_in_function"
    ));
}

#[test]
fn record_write_in_stream() {
    let bad = "local function touch(r)\n  r.seen = 1\n  aerospike:update(r)\n  return r\nend\nfunction run(s)\n  return s : map(touch)\nend\n";
    let found: Vec<_> = lint(bad, &Options::default())
        .into_iter()
        .filter(|d| d.rule == "record_write_in_stream")
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|d| d.severity == Severity::Warning));
    let fine = "local function read(r)\n  return r.seen\nend\nfunction run(s)\n  return s : map(read)\nend\n";
    assert!(!has(fine, "record_write_in_stream"));
    // The aggregate function gets the record second.
    let agg = "local function add(acc, r)\n  r.x = 1\n  return acc + 1\nend\nfunction run(s)\n  return s : aggregate(0, add)\nend\n";
    assert!(has(agg, "record_write_in_stream"));
}

#[test]
fn long_bin_name() {
    let bad =
        "function f(rec)\n  rec.abcdefghijklmnop = 1\n  return rec['abcdefghijklmnop']\nend\n";
    let found: Vec<_> = lint(bad, &Options::default())
        .into_iter()
        .filter(|d| d.rule == "long_bin_name")
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    let fine = "function f(rec)\n  rec.abcdefghijklmno = 1\n  local t = {abcdefghijklmnopqrs = 1}\n  return t.abcdefghijklmnopqrs\nend\n";
    assert!(!has(fine, "long_bin_name"));
}

#[test]
fn unreachable_code() {
    let bad = "function f(rec)\n  error('no')\n  return 1\nend\n";
    let found = lint(bad, &Options::default());
    let d = found
        .iter()
        .find(|d| d.rule == "unreachable_code")
        .expect("flagged");
    assert_eq!((d.severity, d.line), (Severity::Warning, 3));
    let fine = "function f(rec)\n  if not rec.a then\n    error('no')\n  end\n  return 1\nend\n";
    assert!(!has(fine, "unreachable_code"));
}

#[test]
fn module_name() {
    let with = |m: &str| Options {
        module: Some(m.into()),
        ..Options::default()
    };
    let src = "function f(rec)\n  return 1\nend\n";
    assert!(has_with(src, "module_name", &with("my module.lua")));
    assert!(has_with(src, "module_name", &with("tools.txt")));
    assert!(has_with(src, "module_name", &with("a..b.lua")));
    assert!(!has_with(src, "module_name", &with("my_mod-2.lua")));
}

#[test]
fn module_name_says_what_the_server_does_with_the_name() {
    let message = |name: &str, libs: LuaLibs| {
        let options = Options {
            libs,
            module: Some(name.into()),
            ..Options::default()
        };
        let found = lint("function f(rec)\n  return 1\nend\n", &options);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].rule, "module_name");
        found[0].message.clone()
    };
    let default = |name: &str| message(name, LuaLibs::Default);
    // Every server refuses these (udf-runtime §6.1).
    assert_eq!(
        default("noext"),
        "module name 'noext' has no '.': the server refuses it (invalid_filename)"
    );
    assert_eq!(
        default(".hidden.lua"),
        "module name '.hidden.lua' starts with '.': the server refuses it (invalid_filename)"
    );
    assert_eq!(
        default("dot."),
        "module name 'dot.' has nothing after its first '.': the server refuses it (invalid_filename)"
    );
    let long = format!("{}.lua", "m".repeat(124));
    assert_eq!(
        default(&long),
        "module name is 128 bytes: the server refuses a name of 128 bytes or more (invalid_filename)"
    );
    let fits = Options {
        module: Some(long[1..].into()),
        ..Options::default()
    };
    assert!(!has_with("return 1\n", "module_name", &fits));
    // Newer servers only.
    for name in ["my module.lua", "a..b.lua"] {
        assert_eq!(
            default(name),
            format!(
                "module name '{name}': newer servers (8.1.2.2, 8.0.0.17, 7.2.0.19, 7.1.0.25 on) refuse a name outside [A-Za-z0-9._$-] or holding '..' (invalid_filename)"
            )
        );
    }
    // Without .lua: accepted but never callable, refused in hardened mode.
    assert_eq!(
        default("tools.txt"),
        "module name 'tools.txt' does not end in .lua: the server accepts it but can never call it"
    );
    assert_eq!(
        message("tools.txt", LuaLibs::Hardened),
        "module name 'tools.txt' does not end in .lua: the server refuses it in hardened mode (invalid_filename)"
    );
}

#[test]
fn scope_rules() {
    // undefined_variable: a typo'd global; locals, UDF globals and globals
    // the module sets are defined.
    let found = lint(
        "function f(rec)\n  return ldte.now()\nend\n",
        &Options::default(),
    );
    let d = found
        .iter()
        .find(|d| d.rule == "undefined_variable")
        .expect("flagged");
    assert_eq!((d.severity, d.line, d.col), (Severity::Warning, 2, 10));
    let fine = "LIMIT = 3\nfunction f(rec)\n  local n = LIMIT\n  repeat local m = n until m\n  return record.ttl(rec) + n\nend\n";
    assert!(
        !has(fine, "undefined_variable"),
        "{:?}",
        lint(fine, &Options::default())
    );
    // unused_variable: a local nothing reads (not `_`, not parameters).
    assert!(has(
        "function f(rec)\n  local x = 1\n  return 2\nend\n",
        "unused_variable"
    ));
    let fine = "function f(rec, unused_arg)\n  local _ = 1\n  local y = 2\n  return y\nend\n";
    assert!(!has(fine, "unused_variable"));
    // shadowing: a local redeclaring one in scope.
    assert!(has(
        "function f(rec)\n  local x = 1\n  do\n    local x = 2\n    return x\n  end\nend\n",
        "shadowing"
    ));
    assert!(!has(
        "function f(rec)\n  do\n    local x = 2\n    return x\n  end\nend\n",
        "shadowing"
    ));
}

/// The findings of `unknown_field` in `source`: (line, col, message, fix).
fn unknown_fields(source: &str, options: &Options) -> Vec<(u32, u32, String, String)> {
    lint(source, options)
        .into_iter()
        .filter(|d| d.rule == "unknown_field")
        .map(|d| (d.line, d.col, d.message, d.fix))
        .collect()
}

#[test]
fn unknown_field_a_library_table_lacks() {
    let src = "function f(rec)\n  local s = string.fmt('a')\n  if record.exists(rec) then return s end\n  return aerospike:exists(rec)\nend\n";
    let found = lint(src, &Options::default());
    let flagged: Vec<_> = found
        .iter()
        .filter(|d| d.rule == "unknown_field")
        .map(|d| (d.line, d.col, d.end_col, d.severity, d.message.as_str()))
        .collect();
    assert_eq!(
        flagged,
        [
            (
                2,
                20,
                23,
                Severity::Warning,
                "'string' has no field 'fmt': it is nil at run time"
            ),
            (
                3,
                13,
                19,
                Severity::Warning,
                "'record' has no field 'exists': it is nil at run time"
            ),
        ],
        "{found:?}"
    );
    // `record.exists` is a known mistake: the fix names the real one.
    let d = found.iter().find(|d| d.line == 3).unwrap();
    assert_eq!(d.fix, "use `aerospike:exists(rec)`");
    // A method the `aerospike` object lacks, and a string index.
    let src = "function f(rec)\n  aerospike:updat(rec)\n  return string['fmt']\nend\n";
    let found: Vec<_> = unknown_fields(src, &Options::default())
        .into_iter()
        .map(|(line, col, message, _)| (line, col, message))
        .collect();
    assert_eq!(
        found,
        [
            (
                2,
                13,
                "'aerospike' has no method 'updat': it is nil at run time".into()
            ),
            (
                3,
                17,
                "'string' has no field 'fmt': it is nil at run time".into()
            ),
        ]
    );
    // A computed index may be anything.
    let computed =
        "function f(rec, k)\n  local name = 'fmt'\n  return string[name], math[k]\nend\n";
    assert!(!has(computed, "unknown_field"));
    // Lua 5.1 names gone from 5.4, and what only the UDF sheet says is not there.
    for gone in [
        "table.getn(t)",
        "list.get(t, 1)",
        "map.set(t, 1, 2)",
        "utf8.offest('a', 1)",
    ] {
        let src = format!("function f(rec)\n  local t = rec.t\n  return {gone}\nend\n");
        assert!(has(&src, "unknown_field"), "{gone}");
    }
}

#[test]
fn unknown_field_passes_what_the_libraries_have() {
    let src = "function f(rec)
  local l, m, b = list{1}, map{a = 1}, bytes(4)
  list.append(l, 2)
  table.insert({}, 1)
  bytes.set_int32_le(b, 1, 7)
  aerospike:update(rec)
  record.set_ttl(rec, 100)
  for k in map.keys(m) do info(k) end
  local t = table.move({1}, 1, 1, 1, {})
  return string.format('%d', math.floor(1.5)), record.ttl(rec), list.clone(l),
    map.diff(m, m), bytes.size(b), bytes.get_int64_be(b, 1), string.pack('i4', 1),
    math.tointeger(2.0), math.sum(1, 2), utf8.char(65), coroutine.isyieldable(),
    os.time(), package.searchpath, stream.tostring, aerospike:get_current_time(), t,
    geojson.anything, iterator.anything
end
";
    let found = lint(src, &Options::default());
    assert!(!has(src, "unknown_field"), "{found:?}");
    // The standard tables have Lua 5.4's members (as `lua5.4` lists them,
    // with LUA_COMPAT_5_3 as upstream builds it), plus math.sum/product.
    let lua54 = [
        (
            "string",
            "byte char dump find format gmatch gsub len lower match pack packsize rep reverse sub unpack upper",
        ),
        ("table", "concat insert move pack remove sort unpack"),
        (
            "math",
            "abs acos asin atan atan2 ceil cos cosh deg exp floor fmod frexp huge ldexp log log10 max maxinteger min mininteger modf pi pow rad random randomseed sin sinh sqrt tan tanh tointeger type ult sum product",
        ),
        (
            "os",
            "clock date difftime execute exit getenv remove rename setlocale time tmpname",
        ),
        (
            "io",
            "close flush input lines open output popen read stderr stdin stdout tmpfile type write",
        ),
        (
            "coroutine",
            "close create isyieldable resume running status wrap yield",
        ),
        ("utf8", "char charpattern codepoint codes len offset"),
        (
            "package",
            "config cpath loaded loadlib path preload searchers searchpath",
        ),
    ];
    for (table, names) in lua54 {
        let mut want: Vec<&str> = names.split(' ').collect();
        let mut have: Vec<&str> = super::std::members(table)
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{table}");
    }
}

#[test]
fn unknown_field_only_for_the_global_library() {
    // A local, a parameter, or a global the module sets whole is not the library.
    let shadowed =
        "function f(rec, math)\n  local string = {}\n  return string.fmt, math.flor\nend\n";
    assert!(!has(shadowed, "unknown_field"));
    let replaced = "record = {}\nfunction f(rec)\n  return record.exists(rec)\nend\n";
    assert!(!has(replaced, "unknown_field"));
    // Members the module adds itself, anywhere in it.
    let own = "function string.trim(s)\n  return s\nend\nfunction f(rec)\n  table.first = function(t) return t[1] end\n  function list:last() return self end\n  return string.trim(' a '), table.first({1}), list.last(rec.l), table['first']\nend\n";
    assert!(
        !has(own, "unknown_field"),
        "{:?}",
        lint(own, &Options::default())
    );
    assert!(has(
        "function string.trim(s)\n  return s\nend\nfunction f(rec)\n  return string.trimm(rec.s)\nend\n",
        "unknown_field"
    ));
}

#[test]
fn unknown_field_names_a_near_member() {
    let src =
        "function f(rec)\n  return math.flor(1.5), aerospike:exist(rec), string.fmt('a')\nend\n";
    let fixes: Vec<String> = unknown_fields(src, &Options::default())
        .into_iter()
        .map(|(_, _, _, fix)| fix)
        .collect();
    assert_eq!(
        fixes,
        [
            "did you mean `math.floor`?",
            "did you mean `aerospike:exists`?",
            // Three edits from `format`: no guess.
            "check the spelling against the library",
        ]
    );
}

#[test]
fn unknown_field_leaves_a_removed_library_to_its_rule() {
    // Under default, io is unavailable_library's alone, typo or not.
    for src in [
        "function f(rec)\n  io.opn('x')\nend\n",
        "function f(rec)\n  io.open('x')\nend\n",
    ] {
        let found = rules_in(src, &libs(LuaLibs::Default));
        assert_eq!(
            found,
            [("unavailable_library".into(), Severity::Error, 2)],
            "{src}"
        );
    }
    // With every library open, only the typo is flagged.
    let found = rules_in("function f(rec)\n  io.opn('x')\nend\n", &libs(LuaLibs::All));
    assert_eq!(found, [("unknown_field".into(), Severity::Warning, 2)]);
    assert!(!has_with(
        "function f(rec)\n  io.open('x')\nend\n",
        "unknown_field",
        &libs(LuaLibs::All)
    ));
}

#[test]
fn unknown_field_is_switched_off_like_any_rule() {
    let src = "function f(rec)\n  return string.fmt('a')\nend\n";
    assert!(has(src, "unknown_field"));
    let silenced = format!("-- asudf: allow(unknown_field)\n{src}");
    assert_eq!(lint(&silenced, &Options::default()), []);
    let mut config = Config::default();
    config.set("unknown_field", Level::Allow);
    let options = Options {
        config,
        ..Options::default()
    };
    assert!(!has_with(src, "unknown_field", &options));
}

#[test]
fn selene_rules_are_warnings_in_the_udf_environment() {
    // Undefined globals warn; UDF globals and Lua 5.4 names are known.
    let src = "function f(rec)\n  local d = ldte.now()\n  info('%s', d)\n  return list{1} , map{}, bytes(2), math.type(1), utf8.char(65), table.unpack({1})\nend\n";
    let found = lint(src, &Options::default());
    let rules: Vec<_> = found
        .iter()
        .map(|d| (d.rule.as_str(), d.severity))
        .collect();
    assert_eq!(
        rules,
        [("undefined_variable", Severity::Warning)],
        "{found:?}"
    );
    // Lua 5.1 names are gone in 5.4.
    assert!(has(
        "function f(rec)\n  return unpack({1})\nend\n",
        "undefined_variable"
    ));
}

/// A typo in an allow comment silences nothing, and says so at its line.
#[test]
fn an_allow_comment_naming_no_rule_is_a_warning_at_its_line() {
    let src = "function f(rec)\n  total = 1 -- asudf: allow(global_in_fuction)\nend\n";
    let found = rules_in(src, &Options::default());
    assert!(
        found.contains(&("unknown_rule".into(), Severity::Warning, 2)),
        "{found:?}"
    );
    assert!(has(src, "global_in_function"), "nothing was silenced");
    let right = src.replace("fuction", "function");
    assert!(!has(&right, "unknown_rule"));
    assert!(!has(&right, "global_in_function"));
}

#[test]
fn comments_and_config_switch_rules_off() {
    let src = "function f(rec)\n  total = 1\nend\n";
    assert!(has(src, "global_in_function"));
    let silenced = format!("-- asudf: allow(global_in_function)\n{src}");
    assert!(!has(&silenced, "global_in_function"));
    let mut config = Config::default();
    config.set("global_in_function", Level::Allow);
    let options = Options {
        config,
        ..Options::default()
    };
    assert!(!has_with(src, "global_in_function", &options));
    let mut config = Config::default();
    config.set("global_in_function", Level::Error);
    let options = Options {
        config,
        ..Options::default()
    };
    let found = lint(src, &options);
    assert!(found.iter().any(|d| d.severity == Severity::Error));
}

#[test]
fn positions_count_characters() {
    let found = lint(
        "-- é\nfunction f(rec)\n  x = 'é'; y = 1\nend\n",
        &Options::default(),
    );
    let d = found
        .iter()
        .find(|d| d.rule == "global_in_function")
        .expect("flagged");
    assert_eq!((d.line, d.col), (3, 3));
    assert_eq!(
        format_line("m.lua", d),
        format!("m.lua:3:3: warning: {} [global_in_function]", d.message)
    );
}

#[test]
fn what_lua_refuses_to_compile_is_a_syntax_error_at_its_line() {
    let refused = [
        // luaL_loadbuffer does not skip a `#!` line as the lua program does.
        (
            "#!/usr/bin/lua\nfunction f(rec)\n  return 1\nend\n",
            1,
            "unexpected symbol near '#'",
        ),
        (
            "function f(rec)\n  goto done\n  local x = 1\n  ::done::\n  return x\nend\n",
            // Lua names the goto's line in the message, at the line after the label.
            5,
            "<goto done> at line 2 jumps into the scope of local 'x'",
        ),
        (
            "function f(rec)\n  local n <const> = 1\n  n = 2\n  return n\nend\n",
            3,
            "attempt to assign to const variable 'n'",
        ),
    ];
    for (source, line, message) in refused {
        let found = lint(source, &Options::default());
        assert_eq!(found.len(), 1, "{source}: {found:?}");
        let d = &found[0];
        assert_eq!(
            (d.rule.as_str(), d.severity, d.line, d.col),
            ("syntax_error", Severity::Error, line, 1),
            "{source}"
        );
        assert!(d.message.contains(message), "{source}: {}", d.message);
        let text = source.lines().nth(line as usize - 1).unwrap();
        assert_eq!(
            (d.end_line, d.end_col),
            (line, text.chars().count() as u32 + 1)
        );
    }
    // What both parsers refuse is reported once.
    let found = lint(
        "function f(rec)\n  return rec.a +\nend\n",
        &Options::default(),
    );
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_syntax_error_is_at_the_line_lua_gives_not_where_the_tree_parser_stopped() {
    // A paste joined `end` to the next function: the tree's parser stops on
    // line 2, the server (Lua's compiler) names line 3.
    let source =
        "function greet(rec)\n  return 'hi'\nendfunction hello(rec, name)\n  return name\nend\n";
    let found = lint(source, &Options::default());
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert_eq!(
        (d.rule.as_str(), d.line, d.col),
        ("syntax_error", 3, 1),
        "{d:?}"
    );
    assert!(
        d.message.contains("'end' expected") && d.message.contains("near 'endfunction'"),
        "{}",
        d.message
    );
    // The whole line is marked: the tree's span was on another line.
    assert_eq!((d.end_line, d.end_col), (3, 29));
    // An operand missing before `end`: Lua names the `end`, as the server does.
    let found = lint(
        "function f(rec)\n  return rec.a +\nend\n",
        &Options::default(),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].col), (3, 1), "{found:?}");
    assert!(found[0].message.contains("near 'end'"), "{found:?}");
}

#[test]
fn empty_statements_lua_compiles_are_no_syntax_error() {
    // Lua takes `;` wherever a statement may stand; full_moon only after one.
    // Each also holds an unread local: the rules ran, so the tree was read.
    for source in [
        "function f(rec)\n  local a = 1;;\n  local unread = 2\n  return a\nend\n",
        ";\nfunction g(rec) local unread = 1 end",
        "do ; end\nfunction g(rec) local unread = 1 end",
        "function f(rec) ; local unread = 1; return 1 end",
        "local i = 1 ; ;\nfunction g(rec) local unread = 1 end\nreturn i",
        "while true do ; end\nif x then ; elseif y then ; else ; end\nrepeat ; until true\nfunction g(rec) local unread = 1 end",
    ] {
        let found = lint(source, &Options::default());
        assert!(
            !found.iter().any(|d| d.rule == "syntax_error"),
            "{source:?}: {found:?}"
        );
        assert!(
            found
                .iter()
                .any(|d| d.rule == "unused_variable" && d.message.contains("unread")),
            "{source:?}: {found:?}"
        );
    }
    // The rules still run, at the source's own positions.
    let found = rules_in(
        "function f(rec)\n  ;; local unread = 1\n  local a = 1;;\n  return a\nend\n",
        &Options::default(),
    );
    assert_eq!(
        found,
        [("unused_variable".to_string(), Severity::Warning, 2)],
        "{found:?}"
    );
    let found = lint("function f(rec) ; local u = 1 end", &Options::default());
    assert_eq!(
        found
            .iter()
            .map(|d| (d.col, d.rule.as_str()))
            .collect::<Vec<_>>(),
        [(25, "unused_variable")]
    );
}

#[test]
fn one_pass_finds_the_empty_statements_full_moon_refuses() {
    let source = ";;a = b; (f)()\ndo ; end\nfunction t.g:h(x) ; end\nif a then ; elseif b then ; else ; end\nrepeat ; until a;\nreturn;";
    let at = super::empty_statements(source);
    let marked: String = source
        .char_indices()
        .map(|(i, c)| if at.contains(&i) { '_' } else { c })
        .collect();
    // Only the `;`s after the statement that ends (`b;`, `until a;`) and
    // `return;` stay: removing `b;` would make `b (f)()` a call.
    assert_eq!(
        marked,
        "__a = b; (f)()\ndo _ end\nfunction t.g:h(x) _ end\nif a then _ elseif b then _ else _ end\nrepeat _ until a;\nreturn;"
    );
    // Blanked, they leave nothing full_moon refuses.
    let mut text = source.to_string();
    for i in &at {
        text.replace_range(*i..*i + 1, " ");
    }
    assert!(full_moon::parse(&text).is_ok(), "{text}");
}

#[test]
fn what_lua_compiles_and_the_tree_cannot_read_gets_no_finding() {
    // Statements after `break` are valid since Lua 5.2; full_moon stops at
    // `break`. No syntax error (Lua is the judge) and no rule's guess.
    let source = "function f(rec)\n  while rec.a do\n    break\n    local x = 1\n  end\n  return undefined_thing\nend\n";
    assert_eq!(lint(source, &Options::default()), []);
    // What does not depend on the tree still does.
    let options = Options {
        module: Some("bad name.lua".into()),
        ..Options::default()
    };
    let found = rules_in(source, &options);
    assert_eq!(found, [("module_name".to_string(), Severity::Warning, 1)]);
    // Any number of empty statements is read in one pass: the rules run.
    let source = format!("{}local unread = 1\n", ";".repeat(20));
    let found = rules_in(&source, &Options::default());
    assert_eq!(
        found,
        [("unused_variable".to_string(), Severity::Warning, 1)],
        "{found:?}"
    );
}

#[test]
fn local_udf_knows_every_way_a_module_defines_a_global_function() {
    let src = "f = function(rec) return 1 end\n_G.g = function(rec) return 2 end\n_G['k'] = function(rec) return 4 end\nfunction _G.m(rec) return 5 end\nif true then\n  function h(rec) return 3 end\nend\ndo\n  local function only_local(rec) return 6 end\n  n = only_local\nend\nlocal function l(rec) return 7 end\nreturn l\n";
    let calling = |name: &str| Options {
        function: Some(name.into()),
        ..Options::default()
    };
    for name in ["f", "g", "k", "m", "h", "n"] {
        let found = lint(src, &calling(name));
        assert_eq!(found, [], "{name}");
    }
    // Local alone, at the top or in a block: still flagged.
    assert!(has_with(src, "local_udf", &calling("l")));
    assert!(has_with(src, "missing_function", &calling("only_local")));
    // At the top it is the local one; in a block the module defines no
    // such function when it loads.
    let found = lint(src, &calling("l"));
    let d = found
        .iter()
        .find(|d| d.rule == "local_udf")
        .expect("flagged");
    assert!(d.message.contains("'l' is local"), "{d:?}");
    assert!(!d.is_missing_function(), "{d:?}");
    let found = lint(src, &calling("only_local"));
    assert!(found.iter().any(|d| d.is_missing_function()), "{found:?}");
    assert!(
        !found.iter().any(|d| d.message.contains("is local")),
        "{found:?}"
    );
    // Set inside a function is not defined when the module loads.
    let late = "function setup(rec)\n  late = function(r) return 1 end\nend\n";
    assert!(has_with(late, "missing_function", &calling("late")));
    // A global set through `_G` is defined for reads too.
    let read = "_G.g = function(rec) return 1 end\nfunction f(rec)\n  return g(rec)\nend\n";
    assert!(!has(read, "undefined_variable"));
}

#[test]
fn self_is_defined_in_a_method_and_its_closures() {
    let src = "local Obj = {n = 1}\nfunction Obj:get()\n  return self.n\nend\nfunction Obj:later()\n  return function()\n    return self.n\n  end\nend\nfunction Obj.plain(x)\n  return x\nend\nfunction f(rec)\n  return Obj:get(), Obj:later()(), Obj.plain(rec)\nend\n";
    let found = lint(src, &Options::default());
    assert_eq!(found, [], "{found:?}");
    // Outside a method it is an ordinary (here undefined) name.
    let found = rules_in(
        "function f(rec)\n  return self.n\nend\n",
        &Options::default(),
    );
    assert_eq!(found, [("undefined_variable".into(), Severity::Warning, 2)]);
}

#[test]
fn lua_5_4_constructs_are_not_warned_about() {
    // Escapes Lua 5.4 has and 5.1 lacks; the `_ENV` upvalue; a `<close>`
    // local, which exists for its closing at the end of its scope.
    let src = "function f(rec)\n  local e = _ENV\n  local f <close> = nil\n  return \"\\u{48}\\x41\\z\n    b\", e\nend\n";
    let found = lint(src, &Options::default());
    assert_eq!(found, [], "{found:?}");
    // A needless quote escape still warns; an unread `<const>` does too.
    let found = rules_in(
        "function f(rec)\n  local c <const> = 1\n  return '\\\"'\nend\n",
        &Options::default(),
    );
    assert_eq!(
        found,
        [
            ("unused_variable".into(), Severity::Warning, 2),
            ("bad_string_escape".into(), Severity::Warning, 3)
        ]
    );
}

#[test]
fn every_finding_has_a_fix() {
    // Each selene rule that runs, once.
    let src = r#"local t = {1, 2, a = 3, b = 1, b = 2}
function f(rec)
  local a, b = rec.a, rec.b
  a = b
  b = a
  if a == 0 / 0 or b == {} then return '\"' end
  if rec.x then end
  while rec.y do end
  if rec.z then a = 1 else a = 1 end
  if rec.v then a = 2 elseif rec.v then a = 3 end
  if (rec.w) then a = 4 end
  for i = #t, 1 do a = i end
  local p, q = 1, 2, 3
  return type(a == "string"), p, q, t, rec.n / 0
end
"#;
    let found = lint(src, &Options::default());
    let mut rules: Vec<&str> = found.iter().map(|d| d.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    let selene: Vec<&str> = SELENE_RULES.iter().map(|(r, _)| *r).collect();
    assert_eq!(rules, selene, "{found:?}");
    let syntax = lint("function f(rec)\n  return +\nend\n", &Options::default());
    assert_eq!(syntax[0].rule, "syntax_error");
    for d in found.iter().chain(&syntax) {
        assert!(!d.fix.is_empty(), "{d:?}");
        let entry = rule(&d.rule).map(|r| r.fix).or_else(|| {
            SELENE_RULES
                .iter()
                .find(|(name, _)| *name == d.rule)
                .map(|(_, fix)| *fix)
        });
        assert_eq!(Some(d.fix.as_str()), entry, "{d:?}");
    }
}

#[test]
fn record_method_a_record_function_called_on_the_record() {
    let src = "function f(rec, s)\n  local t = rec:ttl()\n  local g = rec.gen()\n  local n = rec.count\n  return record.ttl(rec) + t + g + n + s:len() + #rec:bin_names()\nend\n";
    let found = lint(src, &Options::default());
    let flagged: Vec<_> = found
        .iter()
        .filter(|d| d.rule == "record_method")
        .map(|d| {
            (
                d.line,
                d.col,
                d.severity,
                d.message.as_str(),
                d.fix.as_str(),
            )
        })
        .collect();
    assert_eq!(
        flagged,
        [
            (
                2,
                16,
                Severity::Error,
                "'rec:ttl(…)' calls the value of bin 'ttl': a record has no methods",
                "call the library function: `record.ttl(rec, …)`"
            ),
            (
                3,
                16,
                Severity::Error,
                "'rec.gen(…)' calls the value of bin 'gen': a record has no methods",
                "call the library function: `record.gen(rec, …)`"
            ),
            (
                5,
                54,
                Severity::Error,
                "'rec:bin_names(…)' calls the value of bin 'bin_names': a record has no methods",
                "call the library function: `record.bin_names(rec, …)`"
            ),
        ],
        "{found:?}"
    );
    // A name the record library lacks is left alone, and so is a local
    // that hides the record.
    let quiet = |src: &str| {
        assert!(
            lint(src, &Options::default())
                .iter()
                .all(|d| d.rule != "record_method"),
            "{src}"
        );
    };
    quiet("function f(rec)\n  return rec:whatever()\nend\n");
    quiet(
        "function f(rec)\n  local rec = {ttl = function() return 1 end}\n  return rec:ttl()\nend\n",
    );
    quiet(
        "function f(rec)\n  do\n    local rec = {gen = function() return 1 end}\n    return rec:gen()\n  end\nend\n",
    );
}

/// A method a module adds to the `Aerospike` class is one the `aerospike`
/// object has; one it does not add is still flagged.
#[test]
fn unknown_field_knows_the_methods_a_module_adds_to_aerospike() {
    let src = "function Aerospike:stamp(rec)\n  return 1\nend\nfunction f(rec)\n  return aerospike:stamp(rec) + aerospike:stampx(rec)\nend\n";
    let flagged: Vec<String> = lint(src, &Options::default())
        .into_iter()
        .filter(|d| d.rule == "unknown_field")
        .map(|d| d.message)
        .collect();
    assert_eq!(
        flagged,
        ["'aerospike' has no method 'stampx': it is nil at run time"]
    );
}
