//! Engine tests beyond the recorded conformance cases.

use std::time::{Duration, Instant};

use super::*;
use crate::sandbox::store::{Change, Record, digest, now_cf_secs};

fn sandbox_with(libs: LuaLibs) -> Sandbox {
    Sandbox::open(SandboxConfig {
        lua_libs: libs,
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn sandbox() -> Sandbox {
    sandbox_with(LuaLibs::All)
}

fn put_params(file: &str, source: &str) -> String {
    let encoded = STANDARD.encode(source);
    format!(
        "filename={file};content={encoded};content-len={};udf-type=LUA;",
        encoded.len()
    )
}

fn register(sb: &Sandbox, module: &str, source: &str) {
    let reply = sb.info_udf_put(&put_params(&format!("{module}.lua"), source));
    assert_eq!(reply, "ok", "registering {module}");
}

fn request(module: &str, function: &str, key: &str, args: Vec<Value>) -> ApplyRequest {
    let key = Value::Str(key.into());
    ApplyRequest {
        ns: "test".into(),
        set: Some("demo".into()),
        digest: digest(Some("demo"), &key).unwrap(),
        key: None,
        module: module.into(),
        function: function.into(),
        args,
        timeout_ms: 0,
        received: std::time::Instant::now(),
        ttl: 0,
        filter: Default::default(),
    }
}

fn call(sb: &Sandbox, module: &str, function: &str, args: Vec<Value>) -> Result<Value, UdfFailure> {
    sb.apply(request(module, function, "k1", args)).result
}

fn stored(sb: &Sandbox, key: &str) -> Option<Record> {
    let key = Value::Str(key.into());
    sb.store().get("test", &digest(Some("demo"), &key).unwrap())
}

fn failure_text(result: Result<Value, UdfFailure>) -> String {
    match result {
        Err(UdfFailure::Execution(text)) => text,
        other => panic!("expected an execution failure, got {other:?}"),
    }
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

// ---------------------------------------------------------------------------
// containers
// ---------------------------------------------------------------------------

#[test]
fn list_padding_insert_and_negative_index() {
    let sb = sandbox();
    register(
        &sb,
        "l",
        "function pad(r) local l = list{1} l[4] = 'x' list.insert(l, 7, 'y') return l end
         function neg(r) local l = list{1} l[0] = 5 return l end",
    );
    let nil = Value::Nil;
    assert_eq!(
        call(&sb, "l", "pad", vec![]),
        Ok(list(vec![
            Value::Int(1),
            nil.clone(),
            nil.clone(),
            s("x"),
            nil.clone(),
            nil,
            s("y")
        ]))
    );
    let text = failure_text(call(&sb, "l", "neg", vec![]));
    assert!(
        text.starts_with("/opt/aerospike/usr/udf/lua/l.lua:2: list index 0"),
        "{text}"
    );
    assert!(text.contains("real server crashes"), "{text}");
}

#[test]
fn map_keys_sorted_and_nil_values_kept() {
    let sb = sandbox();
    register(
        &sb,
        "m",
        "function f(r)
           local m = map{z = 1, [3] = 'c', a = 2, [-7] = 'n'}
           m.a = nil
           local keys = list()
           for k in map.keys(m) do list.append(keys, k) end
           return list{keys, #m, tostring(m)}
         end",
    );
    assert_eq!(
        call(&sb, "m", "f", vec![]),
        Ok(list(vec![
            list(vec![Value::Int(-7), Value::Int(3), s("a"), s("z")]),
            Value::Int(4),
            s("{-7:\"n\", 3:\"c\", \"a\":NIL, \"z\":1}"),
        ]))
    );
}

#[test]
fn bytes_accessors() {
    let sb = sandbox();
    register(
        &sb,
        "b",
        "function f(r)
           local b = bytes()
           bytes.append_int32_le(b, 1)
           bytes.append_int32_be(b, -2)
           bytes.append_int64(b, 5)
           local n = bytes.set_var_int(b, 17, 300)
           local v, used = bytes.get_var_int(b, 17)
           local appended = bytes.append_var_int(b, 300)
           bytes.set_string(b, 19, 'hi')
           local part = bytes.get_bytes(b, 1, 4)
           return list{bytes.get_int32_le(b, 1), bytes.get_int32(b, 5), bytes.get_int64_be(b, 9),
                       n, v, used, appended, bytes.size(b), bytes.get_string(b, 19, 2),
                       part, bytes.get_bytes(b, 20, 5) == nil, #b, tostring(bytes())}
         end",
    );
    assert_eq!(
        call(&sb, "b", "f", vec![]),
        Ok(list(vec![
            Value::Int(1),
            Value::Int(-2),
            Value::Int(5),
            Value::Int(2),
            Value::Int(300),
            Value::Int(2),
            Value::Int(2),
            Value::Int(20),
            s("hi"),
            Value::Bytes {
                ty: 4,
                data: vec![1, 0, 0, 0]
            },
            Value::Bool(true),
            Value::Int(0),
            s("Bytes()"),
        ]))
    );
}

// ---------------------------------------------------------------------------
// errors and limits
// ---------------------------------------------------------------------------

#[test]
fn missing_function_and_module() {
    let sb = sandbox();
    register(&sb, "m", "function f(r) return 1 end");
    assert_eq!(
        failure_text(call(&sb, "m", "nope", vec![])),
        "function not found"
    );
    assert_eq!(
        failure_text(call(&sb, "nomod", "f", vec![])),
        "UDF: Execution Error 1"
    );
    assert_eq!(
        failure_text(call(&sb, "m.lua", "f", vec![])),
        "UDF: Execution Error 1"
    );
}

#[test]
fn error_values() {
    let sb = sandbox();
    register(
        &sb,
        "e",
        "function empty(r) error('', 0) end
         function number(r) error(42) end",
    );
    assert_eq!(failure_text(call(&sb, "e", "empty", vec![])), "");
    assert_eq!(
        failure_text(call(&sb, "e", "number", vec![])),
        "result value type unexpected"
    );
}

#[test]
fn infinite_loop_times_out_and_pcall_can_catch_it() {
    let sb = sandbox();
    register(
        &sb,
        "t",
        "function spin(r) while true do end end
         function caught(r)
           local ok, err = pcall(function() while true do end end)
           return err
         end
         function in_coroutine(r)
           local co = coroutine.create(function() while true do end end)
           local ok, err = coroutine.resume(co)
           return err
         end",
    );
    let mut req = request("t", "spin", "k1", vec![]);
    req.timeout_ms = 50;
    let started = Instant::now();
    assert_eq!(
        failure_text(sb.apply(req.clone()).result),
        "UDF Execution Timeout"
    );
    let took = started.elapsed();
    // A request's own limit stops the UDF 10 ms early (see `limit`).
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_millis(900),
        "{took:?}"
    );

    req.function = "caught".into();
    assert_eq!(sb.apply(req.clone()).result, Ok(s("UDF Execution Timeout")));
    req.function = "in_coroutine".into();
    assert_eq!(sb.apply(req).result, Ok(s("UDF Execution Timeout")));
}

#[test]
fn the_default_limit_and_the_cap() {
    let sb = Sandbox::open(SandboxConfig {
        max_udf_ms: Some(30),
        ..SandboxConfig::default()
    })
    .unwrap();
    register(&sb, "t", "function spin(r) while true do end end");
    let started = Instant::now();
    // No limit in the request: 1000 ms, capped to 30 ms by the config.
    assert_eq!(
        failure_text(call(&sb, "t", "spin", vec![])),
        "UDF Execution Timeout"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[test]
fn an_update_before_a_timeout_is_discarded() {
    let sb = sandbox();
    register(
        &sb,
        "t",
        "function f(r) r.a = 1 aerospike:create(r) while true do end end",
    );
    let mut req = request("t", "f", "k1", vec![]);
    req.timeout_ms = 20;
    assert!(sb.apply(req).result.is_err());
    assert!(stored(&sb, "k1").is_none());
}

#[test]
fn a_top_level_infinite_loop_is_refused_at_registration() {
    let sb = Sandbox::open(SandboxConfig {
        max_udf_ms: Some(50),
        ..SandboxConfig::default()
    })
    .unwrap();
    let reply = sb.info_udf_put(&put_params("loop.lua", "while true do end"));
    // The timeout error has no position, so no file and line either.
    assert_eq!(
        reply,
        format!(
            "error=compile_error;file=;line=0;message={}",
            STANDARD.encode("UDF Execution Timeout")
        )
    );
}

#[test]
fn memory_bomb_fails_the_call_not_the_process() {
    let sb = Sandbox::open(SandboxConfig {
        lua_memory_limit: 8 << 20,
        ..SandboxConfig::default()
    })
    .unwrap();
    register(
        &sb,
        "mem",
        "function bomb(r) local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end end
         function rep(r) return #string.rep('x', 1 << 30) end
         function grow_list(r) local l = list() while true do list.append(l, 'x' .. #l) end end
         function far_index(r) local l = list() l[1e9] = 1 end
         function grow_map(r) local m = map() local i = 0 while true do i = i + 1 m[i] = i end end
         function grow_bins(r) local i = 0 while true do i = i + 1 r['b' .. (i % 1000)] = string.rep('y', 1000) .. i end end
         function grow_bytes(r) local b = bytes() local z = string.rep('z', 100000) while true do bytes.append_string(b, z) end end
         function fine(r) return 7 end",
    );
    for function in [
        "bomb",
        "rep",
        "grow_list",
        "far_index",
        "grow_map",
        "grow_bins",
        "grow_bytes",
    ] {
        // A generous time limit: memory, not time, must end each call, even
        // on a loaded machine.
        let mut req = request("mem", function, "k1", vec![]);
        req.timeout_ms = 60_000;
        let text = failure_text(sb.apply(req).result);
        assert!(text.contains("not enough memory"), "{function}: {text}");
    }
    assert_eq!(call(&sb, "mem", "fine", vec![]), Ok(Value::Int(7)));
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let sb = sandbox();
    register(
        &sb,
        "d",
        "local function f(n) return 1 + f(n + 1) end\nfunction g(r) return f(1) end",
    );
    let text = failure_text(call(&sb, "d", "g", vec![]));
    assert!(text.ends_with("stack overflow"), "{text}");
}

// ---------------------------------------------------------------------------
// write model
// ---------------------------------------------------------------------------

#[test]
fn write_failures_carry_their_result_codes() {
    let sb = sandbox();
    register(
        &sb,
        "w",
        "function many(r) for i = 1, 513 do r['b' .. i] = i end return aerospike:create(r) end
         function ok512(r) for i = 1, 512 do r['b' .. i] = i end return aerospike:create(r) end
         function rec_bin(r) r.x = r return aerospike:create(r) end
         function big(r) r.s = string.rep('x', 1 << 20) return aerospike:create(r) end
         function nearly(r) r.s = string.rep('x', (1 << 20) - 100) return aerospike:create(r) end
         function bad_ttl(r) r.a = 1 record.set_ttl(r, 400000000) return aerospike:create(r) end",
    );
    let code = |f: &str| sb.apply(request("w", f, f, vec![])).result;
    assert_eq!(code("many"), Err(UdfFailure::Code(21)));
    assert_eq!(code("rec_bin"), Err(UdfFailure::Code(12)));
    assert_eq!(code("big"), Err(UdfFailure::Code(13)));
    assert_eq!(code("bad_ttl"), Err(UdfFailure::Code(4)));
    for f in ["many", "rec_bin", "big", "bad_ttl"] {
        assert!(stored(&sb, f).is_none(), "{f} left a record");
    }
    assert_eq!(code("ok512"), Ok(Value::Int(0)));
    assert_eq!(stored(&sb, "ok512").unwrap().bins.len(), 512);
    assert_eq!(code("nearly"), Ok(Value::Int(0)));
}

/// A record of more than 512 bins (written by a plain put) cannot be
/// loaded by a UDF: 21, and the record is left as it was.
#[test]
fn a_record_of_more_than_512_bins_cannot_be_loaded() {
    let sb = sandbox();
    register(
        &sb,
        "w",
        "function touch(r) r.x = 1 return aerospike:update(r) end
         function read(r) return r.b512 end",
    );
    for (key, bins) in [("k512", 512), ("k513", 513)] {
        let record = Record {
            bins: (1..=bins)
                .map(|i| (format!("b{i}"), Value::Int(i)))
                .collect(),
            generation: 1,
            void_time: 0,
            last_update_ms: 0,
            set: Some("demo".to_string()),
            key: None,
        };
        let digest = request("w", "touch", key, vec![]).digest;
        sb.store()
            .modify("test", &digest, |_| (Change::Put(record), ()))
            .unwrap();
    }
    let run = |f: &str, key: &str| sb.apply(request("w", f, key, vec![])).result;
    assert_eq!(run("read", "k513"), Err(UdfFailure::Code(21)));
    assert_eq!(run("touch", "k513"), Err(UdfFailure::Code(21)));
    assert_eq!(stored(&sb, "k513").unwrap().generation, 1, "left as it was");
    assert_eq!(run("read", "k512"), Ok(Value::Int(512)), "512 bins load");
}

#[test]
fn values_nested_deeper_than_a_store_allows_fail_and_never_crash() {
    let sb = sandbox();
    register(
        &sb,
        "deep",
        "local function nest(n)
           local top = list{}
           local c = top
           for i = 2, n do local x = list{}; list.append(c, x); c = x end
           return top
         end
         function store(r, n) r.d = nest(n) return aerospike:create(r) end
         function give(r, n) return nest(n) end
         function build(r, n) local l = nest(n) return 1 end",
    );
    let run = |f: &str, key: &str, n: i64| {
        sb.apply(request("deep", f, key, vec![Value::Int(n)]))
            .result
    };
    let limit = crate::sandbox::value::MAX_DEPTH as i64;
    assert_eq!(run("store", "ok", limit), Ok(Value::Int(0)));
    let kept = stored(&sb, "ok").unwrap();
    assert_eq!(kept.bin("d").unwrap().depth(), limit as usize);
    for n in [limit + 1, 10_000] {
        let text = failure_text(run("store", "deep", n));
        assert!(
            text.ends_with(
                "deep.lua:7: bin d nests lists and maps deeper than 256 levels, the sandbox's limit"
            ),
            "{text}"
        );
        assert!(stored(&sb, "deep").is_none());
        let text = failure_text(run("give", "deep", n));
        assert!(
            text.starts_with("the result nests lists and maps deeper than 256"),
            "{text}"
        );
    }
    // Built and dropped: freed with a loop, not 10,000 nested drops.
    assert_eq!(run("build", "deep", 10_000), Ok(Value::Int(1)));
    drop(sb);
}

#[test]
fn header_ttl_and_set_ttl() {
    let sb = sandbox();
    register(
        &sb,
        "t",
        "function w(r) r.a = 1 return aerospike:create(r) end
         function touch(r) return aerospike:update(r) end
         function ttl100(r) record.set_ttl(r, 100) return aerospike:update(r) end",
    );
    let mut req = request("t", "w", "k1", vec![]);
    req.ttl = 500;
    let out = sb.apply(req.clone());
    assert_eq!(out.result, Ok(Value::Int(0)));
    assert_eq!(out.generation, 1);
    let void = stored(&sb, "k1").unwrap().void_time;
    assert!(void >= now_cf_secs() + 498 && void <= now_cf_secs() + 500);
    assert_eq!(out.void_time, void);

    req.function = "touch".into();
    req.ttl = u32::MAX - 1; // leave it unchanged
    assert_eq!(sb.apply(req.clone()).generation, 2);
    assert_eq!(stored(&sb, "k1").unwrap().void_time, void);

    req.function = "ttl100".into();
    req.ttl = u32::MAX; // overridden by set_ttl
    sb.apply(req.clone());
    let void = stored(&sb, "k1").unwrap().void_time;
    assert!(void <= now_cf_secs() + 100 && void >= now_cf_secs() + 98);

    req.function = "touch".into();
    sb.apply(req);
    assert_eq!(stored(&sb, "k1").unwrap().void_time, 0);
}

#[test]
fn keys_are_stored_with_writes_and_dropped_on_request() {
    let sb = sandbox();
    register(
        &sb,
        "k",
        "function w(r) r.a = 1 return aerospike:create(r) end
         function touch(r) return aerospike:update(r) end
         function drop(r) record.drop_key(r) return aerospike:update(r) end
         function drop_first(r) record.drop_key(r) r.a = 1 return aerospike:create(r) end",
    );
    let mut req = request("k", "w", "k1", vec![]);
    req.key = Some(s("k1"));
    sb.apply(req.clone());
    assert_eq!(stored(&sb, "k1").unwrap().key, Some(s("k1")));
    req.key = None;
    req.function = "touch".into();
    sb.apply(req.clone());
    assert_eq!(stored(&sb, "k1").unwrap().key, Some(s("k1")));
    req.function = "drop".into();
    sb.apply(req);
    assert_eq!(stored(&sb, "k1").unwrap().key, None);

    // drop_key before create on a new key does nothing.
    let mut req = request("k", "drop_first", "k2", vec![]);
    req.key = Some(s("k2"));
    sb.apply(req);
    assert_eq!(stored(&sb, "k2").unwrap().key, Some(s("k2")));
}

#[test]
fn unknown_namespace_and_long_names() {
    let sb = sandbox();
    register(&sb, "m", "function f(r) return 1 end");
    let mut req = request("m", "f", "k1", vec![]);
    req.ns = "nope".into();
    assert_eq!(sb.apply(req).result, Err(UdfFailure::Code(20)));
    let req = request("m", &"f".repeat(128), "k1", vec![]);
    assert_eq!(sb.apply(req).result, Err(UdfFailure::Code(4)));
}

#[test]
fn concurrent_counter_increments_lose_nothing() {
    let sb = sandbox();
    register(
        &sb,
        "counter",
        "function incr(r)
           if aerospike:exists(r) then r.n = r.n + 1 return aerospike:update(r) end
           r.n = 1
           return aerospike:create(r)
         end",
    );
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..500 {
                    assert_eq!(call(&sb, "counter", "incr", vec![]), Ok(Value::Int(0)));
                }
            });
        }
    });
    let record = stored(&sb, "k1").unwrap();
    assert_eq!(record.bin("n"), Some(&Value::Int(4000)));
    assert_eq!(record.generation, 4000);
}

// ---------------------------------------------------------------------------
// states, globals, logs
// ---------------------------------------------------------------------------

#[test]
fn globals_persist_on_pooled_states_until_reregistration() {
    let sb = sandbox();
    let source = "calls = 0\nfunction count(r) calls = calls + 1 return calls end\nfunction leaked(r) return result end";
    register(&sb, "g", source);
    let counts: Vec<Value> = (0..12)
        .map(|_| call(&sb, "g", "count", vec![]).unwrap())
        .collect();
    let mut want = vec![Value::Int(1); 10];
    want.extend([Value::Int(2), Value::Int(2)]);
    assert_eq!(counts, want);
    // `result` is the previous call's result on that state: the 13th call
    // goes to the third state (first in, first out), whose last call gave 1.
    assert_eq!(call(&sb, "g", "leaked", vec![]), Ok(Value::Int(1)));

    register(&sb, "g", source);
    assert_eq!(call(&sb, "g", "count", vec![]), Ok(Value::Int(1)));
    assert_eq!(sb.info_udf_clear_cache(), "ok");
    let counts: Vec<Value> = (0..11)
        .map(|_| call(&sb, "g", "count", vec![]).unwrap())
        .collect();
    assert_eq!(counts.last(), Some(&Value::Int(2)));
}

#[test]
fn first_call_of_a_state_sees_no_leaked_globals() {
    let sb = sandbox();
    register(
        &sb,
        "g",
        "function f(r) return list{success == nil, result == nil} end",
    );
    assert_eq!(
        call(&sb, "g", "f", vec![]),
        Ok(list(vec![Value::Bool(true), Value::Bool(true)]))
    );
}

#[test]
fn logs_and_print_are_captured() {
    let sb = sandbox();
    register(
        &sb,
        "log",
        "function f(r) info('n=%d', 5) warn('w') print('p', 1, nil) return 0 end
         function quiet(r) return 0 end",
    );
    let out = sb.apply(request("log", "f", "k1", vec![]));
    assert_eq!(
        out.logs,
        vec![
            LogLine {
                level: LogLevel::Info,
                text: "n=5".into()
            },
            LogLine {
                level: LogLevel::Warn,
                text: "w".into()
            },
            LogLine {
                level: LogLevel::Print,
                text: "p\t1\tnil".into()
            },
        ]
    );
    sb.apply(request("log", "quiet", "k1", vec![]));
    sb.apply(request("log", "f", "k2", vec![]));
    // Every call is kept (with its run time), a quiet one without lines.
    let calls = sb.calls_since(0);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].call, "log.f");
    assert_eq!(
        (calls[1].call.as_str(), calls[1].lines.len()),
        ("log.quiet", 0)
    );
    assert!(calls[2].seq > calls[1].seq && calls[1].seq > calls[0].seq);
    assert_eq!(sb.calls_since(calls[1].seq).len(), 1);
    assert!(sb.calls_since(calls[2].seq).is_empty());
    // The calls that logged, with the same sequence numbers.
    let logged: Vec<u64> = sb.logs_since(0).iter().map(|c| c.seq).collect();
    assert_eq!(logged, [calls[0].seq, calls[2].seq]);
}

#[test]
fn quiet_calls_do_not_push_logged_ones_out() {
    let sb = sandbox();
    register(
        &sb,
        "log",
        "function f(r) info('hi') return 0 end
         function quiet(r) return 0 end",
    );
    sb.apply(request("log", "f", "k1", vec![]));
    for _ in 0..super::LOG_RING_CALLS + 10 {
        sb.apply(request("log", "quiet", "k2", vec![]));
    }
    assert_eq!(sb.calls_since(0).len(), super::LOG_RING_CALLS);
    let logged = sb.logs_since(0);
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].call, "log.f");
}

#[test]
fn library_modes() {
    let source = "function f(r)
        return list{type(io), type(os), type(os and os.time), type(os and os.execute),
                    type(load), type(package.loaded.debug), type(debug)}
      end";
    let expect = |libs: LuaLibs, want: [&str; 7]| {
        let sb = sandbox_with(libs);
        register(&sb, "libs", source);
        assert_eq!(
            call(&sb, "libs", "f", vec![]),
            Ok(list(want.iter().map(|t| s(t)).collect())),
            "{libs:?}"
        );
    };
    expect(
        LuaLibs::All,
        [
            "table", "table", "function", "function", "function", "table", "function",
        ],
    );
    expect(
        LuaLibs::Default,
        [
            "nil", "table", "function", "nil", "function", "nil", "function",
        ],
    );
    expect(
        LuaLibs::Hardened,
        ["nil", "nil", "nil", "nil", "nil", "nil", "function"],
    );
}

// ---------------------------------------------------------------------------
// registry and persistence
// ---------------------------------------------------------------------------

#[test]
fn udf_put_checks_in_order() {
    let sb = sandbox();
    let cases = [
        ("content=eA==;content-len=4;", "error=invalid_filename"),
        ("filename=a.lua;content=eA==;", "error=invalid_content_len"),
        (
            "filename=a.lua;content=eA==;content-len=4;udf-type=PY;",
            "error=invalid_udf_type",
        ),
        (
            "filename=a.lua;content=eA==;content-len=3;",
            "error=invalid_content_len",
        ),
        (
            "filename=a.lua;content=eA==;content-len=x;",
            "error=invalid_content_len",
        ),
        (
            "filename=a.lua;content=eA==;content-len=8;",
            "error=invalid_content",
        ),
        ("filename=a.lua;content-len=4;", "error=invalid_content"),
        (
            "filename=a.lua;content=;content-len=0;",
            "error=invalid_base64_content",
        ),
        (
            "filename=a.lua;content=e!==;content-len=4;",
            "error=invalid_base64_content",
        ),
        (
            "filename=../a.lua;content=eA==;content-len=4;",
            "error=invalid_filename",
        ),
    ];
    for (params, want) in cases {
        assert_eq!(sb.info_udf_put(params), want, "{params}");
    }
    assert_eq!(sb.info_udf_list(), "");
}

#[test]
fn a_module_over_one_mebibyte_is_refused() {
    let sb = sandbox();
    let source = format!("-- {}\nfunction f(r) return 1 end\n", "x".repeat(2 << 20));
    assert_eq!(
        sb.info_udf_put(&put_params("big.lua", &source)),
        "error=invalid_udf_content_len,>1M"
    );
    let fits = format!(
        "-- {}\nfunction f(r) return 1 end\n",
        "x".repeat(1000 << 10)
    );
    assert_eq!(sb.info_udf_put(&put_params("fits.lua", &fits)), "ok");
    assert_eq!(call(&sb, "fits", "f", vec![]), Ok(Value::Int(1)));
}

#[test]
fn compile_error_with_a_non_string_value() {
    let sb = sandbox();
    let reply = sb.info_udf_put(&put_params("t.lua", "error({1})"));
    assert_eq!(
        reply,
        format!(
            "error=compile_error;file=;line=0;message={}",
            STANDARD.encode("(Null error message returned by lua)")
        )
    );
}

#[test]
fn list_and_get_replies() {
    let sb = sandbox();
    register(&sb, "a", "function f(r) return 1 end");
    let encoded = STANDARD.encode("function f(r) return 1 end");
    assert_eq!(
        sb.info_udf_get("filename=a.lua;"),
        format!("type=LUA;content={encoded};")
    );
    assert_eq!(
        sb.info_udf_list(),
        format!(
            "filename=a.lua,hash={},type=LUA;",
            registry::list_hash("a.lua", &encoded)
        )
    );
    assert_eq!(sb.info_udf_get(""), "error=invalid_filename");
    assert_eq!(sb.info_udf_remove(""), "error=invalid_filename");
    assert_eq!(sb.info_udf_remove("filename=a.lua;"), "ok");
    assert_eq!(
        failure_text(call(&sb, "a", "f", vec![])),
        "UDF: Execution Error 1"
    );
}

#[test]
fn modules_and_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    {
        let sb = Sandbox::open(config.clone()).unwrap();
        register(
            &sb,
            "c",
            "function incr(r)
               if aerospike:exists(r) then r.n = r.n + 1 return aerospike:update(r) end
               r.n = 1 return aerospike:create(r)
             end",
        );
        for _ in 0..3 {
            call(&sb, "c", "incr", vec![]).unwrap();
        }
    }
    let sb = Sandbox::open(config).unwrap();
    assert_eq!(call(&sb, "c", "incr", vec![]), Ok(Value::Int(0)));
    let record = stored(&sb, "k1").unwrap();
    assert_eq!(record.bin("n"), Some(&Value::Int(4)));
    assert_eq!(record.generation, 4);
    assert!(sb.info_udf_list().starts_with("filename=c.lua,"));
}

#[test]
fn a_sent_key_that_differs_from_the_stored_one_is_refused() {
    let sb = sandbox();
    register(
        &sb,
        "k",
        "function w(r) r.a = 1 return aerospike:create(r) end",
    );
    let mut req = request("k", "w", "k1", vec![]);
    req.key = Some(s("k1"));
    assert_eq!(sb.apply(req.clone()).result, Ok(Value::Int(0)));
    req.key = Some(s("other"));
    assert_eq!(sb.apply(req).result, Err(UdfFailure::Code(19)));
}

#[test]
fn hardened_mode_wants_the_lua_extension() {
    let sb = sandbox_with(LuaLibs::Hardened);
    let source = "function f(r) return 1 end";
    assert_eq!(
        sb.info_udf_put(&put_params("m.txt", source)),
        "error=invalid_filename"
    );
    assert_eq!(
        sb.info_udf_put(&put_params("m.LUA", source)),
        "error=invalid_filename"
    );
    assert_eq!(sb.info_udf_put(&put_params("m.lua", source)), "ok");
}

#[test]
fn log_lines_per_call_are_bounded() {
    let sb = sandbox();
    register(
        &sb,
        "log",
        "function chatty(r) for i = 1, 5000 do info('line %d', i) end print(string.rep('x', 5000)) end",
    );
    let out = sb.apply(request("log", "chatty", "k1", vec![]));
    assert_eq!(out.logs.len(), 1001);
    assert_eq!(out.logs[999].text, "line 1000");
    assert_eq!(out.logs[1000].text, "(4001 more log lines not kept)");
    register(&sb, "p", "function f(r) print(string.rep('x', 5000)) end");
    let out = sb.apply(request("p", "f", "k1", vec![]));
    assert_eq!(out.logs[0].text.len(), 1023);
}

#[test]
fn facts_from_the_runtime_sheet() {
    let sb = sandbox();
    register(
        &sb,
        "facts",
        "function f(r)
           local co = coroutine.wrap(function(a) coroutine.yield(a + 1) end)
           r[1] = 'one'
           return list{math.sum(2, 3), math.product(2, 3), aerospike:set_context(r, 1),
                       aerospike:get_config(r, 'x'), select('#', aerospike:log(2, 'hi')),
                       string.sub(tostring(aerospike), 1, 12), string.sub(tostring(r), 1, 8),
                       co(1), r['1'], type(list.set), type(list.sort), type(map.get),
                       tostring(-0.0), 10 // 3, 7 / 2}
         end
         function custom(r) error('1000: custom message') end",
    );
    assert_eq!(
        call(&sb, "facts", "f", vec![]),
        Ok(list(vec![
            Value::Int(5),
            Value::Int(6),
            Value::Int(2),
            Value::Int(0),
            Value::Int(0),
            s("Aerospike: 0"),
            s("Record: "),
            Value::Int(2),
            s("one"),
            s("nil"),
            s("nil"),
            s("nil"),
            s("-0.0"),
            Value::Int(3),
            Value::Float(3.5),
        ]))
    );
    assert_eq!(
        failure_text(call(&sb, "facts", "custom", vec![])),
        "/opt/aerospike/usr/udf/lua/facts.lua:10: 1000: custom message"
    );
}

#[test]
fn lua_libs_names_round_trip() {
    for libs in [LuaLibs::Default, LuaLibs::All, LuaLibs::Hardened] {
        assert_eq!(libs.to_string().parse::<LuaLibs>(), Ok(libs));
    }
    assert!(
        "unsafe"
            .parse::<LuaLibs>()
            .unwrap_err()
            .contains("expected default")
    );
}

// ---------------------------------------------------------------------------
// type names in error texts (udf-runtime.md §5.2), one test per table row
// ---------------------------------------------------------------------------

/// The probe module of the table: one function per line, so row n fails on line n.
const PROBE_TY: &str = r#"function f1(rec) local l = list(); return l + 1 end
function f2(rec) local m = map(); return m .. "x" end
function f3(rec) local b = bytes(2); return b() end
function f4(rec) return list() < list() end
function f5(rec) return map() == 1 end
function f6(rec) return record.ttl("x") end
function f7(rec) return list.append(map(), 1) end
function f8(rec) return list.append("x", 1) end
function f9(rec) return map.pairs("x") end
function f10(rec) return bytes.size("x") end
function f11(rec) for x in list{1} do end end
function f12(rec) for k in map{a=1} do end end
function f13(rec) return geojson.coordinates("x") end
function f14(rec) return record.bin_names(5) end
function f15(rec) return #rec end
function f16(rec) return rec + 1 end
function f17(rec) return rec .. "x" end
function f18(rec) return list{type(apply_record), type(apply_stream)} end
"#;

/// Row `n` of the table, called on an existing record.
fn probe_ty(n: usize) -> Result<Value, UdfFailure> {
    let sb = sandbox();
    register(&sb, "probe_ty", PROBE_TY);
    sb.store()
        .modify(
            "test",
            &request("probe_ty", "f1", "k1", vec![]).digest,
            |_| {
                let record = Record {
                    bins: vec![("n".to_string(), Value::Int(1))],
                    generation: 1,
                    void_time: 0,
                    last_update_ms: 0,
                    set: Some("demo".to_string()),
                    key: None,
                };
                (Change::Put(record), ())
            },
        )
        .unwrap();
    call(&sb, "probe_ty", &format!("f{n}"), vec![])
}

fn probe_ty_text(n: usize, message: &str) {
    assert_eq!(
        failure_text(probe_ty(n)),
        format!("/opt/aerospike/usr/udf/lua/probe_ty.lua:{n}: {message}")
    );
}

#[test]
fn type_name_arithmetic_on_a_list() {
    probe_ty_text(
        1,
        "attempt to perform arithmetic on a List value (local 'l')",
    );
}

#[test]
fn type_name_concatenating_a_map() {
    probe_ty_text(2, "attempt to concatenate a Map value (local 'm')");
}

#[test]
fn type_name_calling_bytes() {
    probe_ty_text(3, "attempt to call a Bytes value (local 'b')");
}

#[test]
fn type_name_comparing_two_lists() {
    probe_ty_text(4, "attempt to compare two List values");
}

#[test]
fn type_name_a_map_equal_to_a_number_is_false() {
    assert_eq!(probe_ty(5), Ok(Value::Bool(false)));
}

#[test]
fn type_name_record_function_on_a_string() {
    probe_ty_text(
        6,
        "bad argument #1 to 'ttl' (userdata expected, got string)",
    );
}

#[test]
fn type_name_list_append_on_a_map() {
    probe_ty_text(7, "bad argument #1 to 'append' (List expected, got Map)");
}

#[test]
fn type_name_list_append_on_a_string() {
    probe_ty_text(
        8,
        "bad argument #1 to 'append' (userdata expected, got string)",
    );
}

#[test]
fn type_name_map_pairs_on_a_string() {
    probe_ty_text(
        9,
        "bad argument #1 to 'pairs' (userdata expected, got string)",
    );
}

#[test]
fn type_name_bytes_size_on_a_string() {
    probe_ty_text(
        10,
        "bad argument #1 to 'size' (userdata expected, got string)",
    );
}

#[test]
fn type_name_a_list_as_a_for_iterator() {
    probe_ty_text(
        11,
        "attempt to call a List value (for iterator 'for iterator')",
    );
}

#[test]
fn type_name_a_map_as_a_for_iterator() {
    probe_ty_text(
        12,
        "attempt to call a Map value (for iterator 'for iterator')",
    );
}

#[test]
fn type_name_the_geojson_table_has_no_functions() {
    probe_ty_text(13, "attempt to call a nil value (field 'coordinates')");
}

#[test]
fn type_name_bin_names_on_a_number() {
    probe_ty_text(
        14,
        "bad argument #1 to 'bin_names' (userdata expected, got number)",
    );
}

#[test]
fn type_name_length_of_a_record() {
    probe_ty_text(15, "attempt to get length of a Record value (local 'rec')");
}

#[test]
fn type_name_arithmetic_on_a_record() {
    probe_ty_text(
        16,
        "attempt to perform arithmetic on a Record value (local 'rec')",
    );
}

#[test]
fn type_name_concatenating_a_record() {
    probe_ty_text(17, "attempt to concatenate a Record value (local 'rec')");
}

#[test]
fn type_name_the_dispatchers_are_functions_from_the_first_call() {
    assert_eq!(probe_ty(18), Ok(list(vec![s("function"), s("function")])));
}

#[test]
fn wrong_userdata_arguments_name_both_types() {
    let sb = sandbox();
    register(
        &sb,
        "wrong",
        "function f(r) return record.ttl(list()) end
function g(r) return bytes.size(map()) end
function h(r) local l = list{1} return l[map()] end
function k(r) return map.size(bytes()) end",
    );
    let prefix = "/opt/aerospike/usr/udf/lua/wrong.lua";
    for (function, text) in [
        (
            "f",
            "1: bad argument #1 to 'ttl' (Record expected, got List)",
        ),
        (
            "g",
            "2: bad argument #1 to 'size' (Bytes expected, got Map)",
        ),
        (
            "h",
            "3: bad argument #2 to 'index' (number expected, got Map)",
        ),
        (
            "k",
            "4: bad argument #1 to 'size' (Map expected, got Bytes)",
        ),
    ] {
        assert_eq!(
            failure_text(call(&sb, "wrong", function, vec![])),
            format!("{prefix}:{text}"),
            "{function}"
        );
    }
}

// ---------------------------------------------------------------------------
// apply_record, the record dispatcher (udf-runtime.md §1.3)
// ---------------------------------------------------------------------------

#[test]
fn apply_record_calls_a_function_on_the_record() {
    let sb = sandbox();
    register(
        &sb,
        "disp",
        "local function twice(r, a, b) return a * 2, b end
function direct(r) return apply_record(twice, r, 21, 'dropped') end
local function boom(r) error('inner') end
function raised(r)
  local v = apply_record(boom, r) return v
end
function level0(r) local v = apply_record(function(r) error('bare', 0) end, r) return v end
function tail(r) return apply_record(boom, r) end
function caught(r) local ok, e = pcall(apply_record, boom, r) return e end
function leaked(r) apply_record(twice, r, 1, 2) return list{success, result} end",
    );
    assert_eq!(call(&sb, "disp", "direct", vec![]), Ok(Value::Int(42)));
    // The error goes up again at level 2: the caller's position is added.
    let prefix = "/opt/aerospike/usr/udf/lua/disp.lua";
    assert_eq!(
        failure_text(call(&sb, "disp", "raised", vec![])),
        format!("{prefix}:5: {prefix}:3: inner")
    );
    assert_eq!(
        failure_text(call(&sb, "disp", "level0", vec![])),
        format!("{prefix}:7: bare")
    );
    // A tail call leaves no caller frame to name, and from C (pcall)
    // nothing is added either, as when the host calls it.
    assert_eq!(
        failure_text(call(&sb, "disp", "tail", vec![])),
        format!("{prefix}:3: inner")
    );
    assert_eq!(
        call(&sb, "disp", "caught", vec![]),
        Ok(s(&format!("{prefix}:3: inner")))
    );
    assert_eq!(
        call(&sb, "disp", "leaked", vec![]),
        Ok(list(vec![Value::Bool(true), Value::Int(2)]))
    );
}

#[test]
fn the_host_calls_the_global_dispatchers() {
    let sb = sandbox();
    register(
        &sb,
        "hijack",
        "function apply_record(f, r, ...) return 'hijacked' end
function apply_stream(f, scope, istream, ostream, ...) ostream('stream hijacked') end
function f(r) return 1 end",
    );
    assert_eq!(call(&sb, "hijack", "f", vec![]), Ok(s("hijacked")));
    let call = StreamCall {
        module: "hijack",
        function: "f",
        args: &[],
    };
    let mut out = Vec::new();
    let key = Value::Str("k".into());
    let record = StreamRecord {
        digest: digest(Some("demo"), &key).unwrap(),
        record: Record {
            bins: vec![],
            generation: 1,
            void_time: 0,
            last_update_ms: 0,
            set: None,
            key: None,
        },
    };
    let run = sb
        .run_stream_partition(
            &call,
            &mut std::iter::once(record),
            &mut |v| {
                out.push(v);
                true
            },
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(out, vec![s("stream hijacked")]);
    assert!(run.stages.is_empty());
}
