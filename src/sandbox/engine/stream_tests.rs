//! Stream UDFs (aggregations) run by the engine: the pipeline rules of
//! `query-udfs.md` §4, and the recorded aggregation cases replayed per
//! partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;
use crate::sandbox::store::{Record, digest};

fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::open(SandboxConfig {
        lua_libs: LuaLibs::All,
        ..config
    })
    .unwrap()
}

fn sandbox() -> Sandbox {
    sandbox_with(SandboxConfig::default())
}

fn register(sb: &Sandbox, module: &str, source: &str) {
    let encoded = STANDARD.encode(source);
    let params = format!(
        "filename={module}.lua;content={encoded};content-len={};udf-type=LUA;",
        encoded.len()
    );
    assert_eq!(sb.info_udf_put(&params), "ok", "registering {module}");
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

/// A record of set `demo` keyed `k<i>` with the given bins.
fn rec(i: i64, bins: Vec<(&str, Value)>) -> StreamRecord {
    let key = s(&format!("k{i}"));
    StreamRecord {
        digest: digest(Some("demo"), &key).unwrap(),
        record: Record {
            bins: bins.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            generation: 1,
            void_time: 0,
            last_update_ms: 0,
            set: Some("demo".to_string()),
            key: None,
        },
    }
}

/// Records with bin `n` = each of `ns`.
fn numbers(ns: &[i64]) -> Vec<StreamRecord> {
    ns.iter()
        .enumerate()
        .map(|(i, &n)| rec(i as i64, vec![("n", int(n))]))
        .collect()
}

fn run_with(
    sb: &Sandbox,
    module: &str,
    function: &str,
    args: &[Value],
    records: Vec<StreamRecord>,
) -> Result<(Vec<Value>, StreamRun), String> {
    let call = StreamCall {
        module,
        function,
        args,
    };
    let mut out = Vec::new();
    let cancel = AtomicBool::new(false);
    let run = sb
        .run_stream_partition(
            &call,
            &mut records.into_iter(),
            &mut |v| {
                out.push(v);
                true
            },
            &cancel,
        )
        .map_err(|failure| failure.text)?;
    Ok((out, run))
}

fn run(sb: &Sandbox, module: &str, function: &str, records: Vec<StreamRecord>) -> Vec<Value> {
    match run_with(sb, module, function, &[], records) {
        Ok((values, _)) => values,
        Err(text) => panic!("{module}.{function} failed: {text}"),
    }
}

fn failure(sb: &Sandbox, module: &str, function: &str, records: Vec<StreamRecord>) -> String {
    match run_with(sb, module, function, &[], records) {
        Ok((values, _)) => panic!("{module}.{function} gave {values:?}, expected a failure"),
        Err(text) => text,
    }
}

fn stages(run: &StreamRun) -> Vec<(String, u64, u64)> {
    run.stages
        .iter()
        .map(|s| (s.stage.clone(), s.values_in, s.values_out))
        .collect()
}

// ---------------------------------------------------------------------------
// the pipeline
// ---------------------------------------------------------------------------

const OPS: &str = "local function double(r) return r.n * 2 end
local function add(a, b) return a + b end
local function even(r) return r.n % 2 == 0 end
function doubled(s) return s : map(double) end
function evens_doubled(s) return s : filter(even) : map(double) end
function total(s) return s : map(double) : reduce(add) : map(function(t) return t * 10 end) end
function biggest(s) return s : map(function(r) return r.n end) : reduce(math.max) end
function sum_agg(s) return s : aggregate(0, function(a, r) return a + r.n end) end
function sum_agg_reduced(s) return s : aggregate(0, function(a, r) return a + r.n end) : reduce(add) end
function none_kept(s) return s : filter(function(r) return false end) : aggregate(map(), function(m, r) m.x = 1 return m end) end
function by_parity(s) return s : map(function(r) return r.n end) : groupby(function(v) return v % 2 end) end
";

#[test]
fn map_and_filter_with_stage_counts() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let (values, run) = run_with(&sb, "ops", "doubled", &[], numbers(&[1, 2, 3])).unwrap();
    assert_eq!(values, vec![int(2), int(4), int(6)]);
    assert_eq!(stages(&run), vec![("map(double)".to_string(), 3, 3)]);

    let (values, run) = run_with(&sb, "ops", "evens_doubled", &[], numbers(&[1, 2, 3, 4])).unwrap();
    assert_eq!(values, vec![int(4), int(8)]);
    assert_eq!(
        stages(&run),
        vec![
            ("filter(even)".to_string(), 4, 2),
            ("map(double)".to_string(), 2, 2)
        ]
    );
}

#[test]
fn the_server_runs_ops_up_to_the_first_reduce_and_the_client_the_rest() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let (values, run) = run_with(&sb, "ops", "total", &[], numbers(&[1, 2, 3])).unwrap();
    assert_eq!(
        values,
        vec![int(12)],
        "the map after the reduce is the client's"
    );
    assert_eq!(
        stages(&run),
        vec![
            ("map(double)".to_string(), 3, 3),
            ("reduce(add)".to_string(), 3, 1)
        ]
    );
    // The client reduces the partitions' values again, then maps.
    let call = StreamCall {
        module: "ops",
        function: "total",
        args: &[],
    };
    assert_eq!(
        sb.run_stream_client(&call, vec![int(12), int(30)]),
        Ok(vec![int(420)])
    );
    // With no reduce the client passes the values on as they are.
    let call = StreamCall {
        function: "doubled",
        ..call
    };
    assert_eq!(
        sb.run_stream_client(&call, vec![int(5), s("x")]),
        Ok(vec![int(5), s("x")])
    );
}

#[test]
fn library_and_anonymous_functions_are_named_by_name_or_place() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let (values, run) = run_with(&sb, "ops", "biggest", &[], numbers(&[3, 9, 4])).unwrap();
    assert_eq!(values, vec![int(9)]);
    assert_eq!(
        stages(&run),
        vec![
            ("map(ops.lua:7)".to_string(), 3, 3),
            ("reduce(math.max)".to_string(), 3, 1)
        ]
    );
}

#[test]
fn reduce_is_only_called_with_two_values() {
    let sb = sandbox();
    register(
        &sb,
        "red",
        "function bad(s) return s : map(function(r) return r.n end) : reduce(function(a, b) error('reduce called') end) end",
    );
    assert_eq!(run(&sb, "red", "bad", numbers(&[7])), vec![int(7)]);
    assert_eq!(
        failure(&sb, "red", "bad", numbers(&[7, 8])),
        "UDF: Execution Error 2 : /opt/aerospike/usr/udf/lua/red.lua:1: reduce called"
    );
}

#[test]
fn an_aggregate_of_1000_or_more_is_sent_at_once_and_starts_again() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    assert_eq!(
        run(&sb, "ops", "sum_agg", numbers(&[500, 1000])),
        vec![int(1500), int(0)]
    );
    assert_eq!(
        run(&sb, "ops", "sum_agg", numbers(&[600, 600, 5])),
        vec![int(1200), int(5)]
    );
    assert_eq!(
        run(&sb, "ops", "sum_agg_reduced", numbers(&[500, 1000, 23])),
        vec![int(1523)]
    );
    assert_eq!(run(&sb, "ops", "sum_agg", numbers(&[1, 2])), vec![int(3)]);
}

#[test]
fn an_aggregate_over_nothing_kept_still_sends_its_initial_value() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let (values, run) = run_with(&sb, "ops", "none_kept", &[], numbers(&[1, 2])).unwrap();
    assert_eq!(values, vec![Value::Map(vec![])]);
    assert_eq!(
        run.stages[0],
        StageCount {
            stage: "filter(ops.lua:10)".to_string(),
            values_in: 2,
            values_out: 0
        }
    );
}

#[test]
fn each_pass_of_an_aggregate_starts_from_a_copy_of_init() {
    let sb = sandbox();
    register(
        &sb,
        "cp",
        "local function acc(l, r) list.append(l, r.n) if r.n == 2 then return 1000 end return l end
         function f(s) return s : aggregate(list{0}, acc) end",
    );
    // The first pass grows its list to {0, 1, 2} and hands on 1000; the
    // second starts from a fresh {0}, not from that list.
    assert_eq!(
        run(&sb, "cp", "f", numbers(&[1, 2, 3])),
        vec![int(1000), Value::List(vec![int(0), int(3)])]
    );
}

#[test]
fn groupby_collects_values_per_key_and_merges_the_lists() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let (values, run) = run_with(&sb, "ops", "by_parity", &[], numbers(&[1, 2, 3])).unwrap();
    assert_eq!(
        values,
        vec![Value::Map(vec![
            (int(0), Value::List(vec![int(2)])),
            (int(1), Value::List(vec![int(1), int(3)])),
        ])]
    );
    let names: Vec<String> = run.stages.iter().map(|s| s.stage.clone()).collect();
    assert_eq!(
        names,
        ["map(ops.lua:11)", "groupby(ops.lua:11)", "reduce(groupby)"]
    );
    let call = StreamCall {
        module: "ops",
        function: "by_parity",
        args: &[],
    };
    let merged = sb
        .run_stream_client(
            &call,
            vec![
                values[0].clone(),
                Value::Map(vec![(int(0), Value::List(vec![int(4)]))]),
            ],
        )
        .unwrap();
    assert_eq!(
        merged,
        vec![Value::Map(vec![
            (int(0), Value::List(vec![int(2), int(4)])),
            (int(1), Value::List(vec![int(1), int(3)])),
        ])]
    );
}

#[test]
fn nil_from_map_ends_the_partition_and_unsendable_values_are_dropped() {
    let sb = sandbox();
    register(
        &sb,
        "nl",
        "function stop_at_2(s) return s : map(function(r) if r.n ~= 2 then return r.n end end) end
         function count_after(s) return s : map(function(r) if r.n ~= 2 then return r.n end end) : aggregate(0, function(a, v) return a + 1 end) end
         function shapes(s) return s : map(function(r)
           if r.n == 1 then return {1} elseif r.n == 2 then return print elseif r.n == 3 then return r end
           return r.n end) end",
    );
    assert_eq!(
        run(&sb, "nl", "stop_at_2", numbers(&[1, 2, 3])),
        vec![int(1)]
    );
    assert_eq!(
        run(&sb, "nl", "count_after", numbers(&[1, 2, 3])),
        vec![int(1)]
    );
    assert_eq!(
        run(&sb, "nl", "shapes", numbers(&[1, 2, 3, 4])),
        vec![int(4)]
    );
}

#[test]
fn values_go_out_as_record_udf_results_do() {
    let sb = sandbox();
    register(
        &sb,
        "vals",
        "function f(s) return s : map(function(r)
           return map{l = list{1, 'x', 1.5, true}, b = r.b, g = geojson('{}'), z = 'a\\0b', f = 2.0}
         end) end",
    );
    let b = Value::Bytes {
        ty: 4,
        data: vec![0, 0xff],
    };
    assert_eq!(
        run(&sb, "vals", "f", vec![rec(1, vec![("b", b.clone())])]),
        vec![Value::Map(vec![
            (s("b"), b),
            (s("f"), Value::Float(2.0)),
            (s("g"), Value::GeoJson("{}".to_string())),
            (
                s("l"),
                Value::List(vec![int(1), s("x"), Value::Float(1.5), Value::Bool(true)])
            ),
            (s("z"), s("a")),
        ])]
    );
}

#[test]
fn arguments_follow_the_stream_and_a_sent_nil_counts() {
    let sb = sandbox();
    register(
        &sb,
        "args",
        "function f(s, limit, ...) local n = select('#', ...) return s : filter(function(r) return r.n > limit end) : map(function(r) return list{r.n, n} end) end",
    );
    let (values, _) = run_with(
        &sb,
        "args",
        "f",
        &[int(1), Value::Nil, s("x")],
        numbers(&[1, 2]),
    )
    .unwrap();
    assert_eq!(values, vec![Value::List(vec![int(2), int(2)])]);
}

#[test]
fn function_names_come_from_their_definition_line() {
    use super::runtime::defined_name;
    assert_eq!(
        defined_name("local function to_pair(r)"),
        Some("to_pair".into())
    );
    assert_eq!(defined_name("  function m.f (a, b)"), Some("m.f".into()));
    assert_eq!(
        defined_name("local add = function(a, b)"),
        Some("add".into())
    );
    assert_eq!(defined_name("sum = function (a, b)"), Some("sum".into()));
    assert_eq!(
        defined_name("  return s : map(function(r) return 1 end)"),
        None
    );
    assert_eq!(
        defined_name("function f(s) return s : map(function(r) end) end"),
        None
    );
    assert_eq!(defined_name("local functional = 5"), None);
}

// ---------------------------------------------------------------------------
// the record and the aerospike object inside a stream function
// ---------------------------------------------------------------------------

#[test]
fn the_record_is_read_only_with_its_accessors() {
    let sb = sandbox();
    register(
        &sb,
        "fields",
        "function f(s) return s : map(function(r)
           r.n = 99
           r.t = {}
           record.set_ttl(r, 100)
           record.drop_key(r)
           return list{record.setname(r), record.key(r) or 'nil', record.gen(r), record.ttl(r),
                       record.numbins(r), bytes.size(record.digest(r)), #record.digest(r), r.n,
                       type(record.bin_names(r)), record.last_update_time(r)}
         end) end",
    );
    let mut stored = rec(1, vec![("n", int(5)), ("o", s("x"))]);
    stored.record.generation = 3;
    stored.record.key = Some(s("k1"));
    stored.record.last_update_ms = 1234;
    assert_eq!(
        run(&sb, "fields", "f", vec![stored]),
        vec![Value::List(vec![
            s("demo"),
            s("k1"),
            int(3),
            int(0),
            int(2),
            int(20),
            int(0),
            int(5),
            s("table"),
            int(1234),
        ])]
    );
}

#[test]
fn the_aerospike_object_has_no_record_hooks_and_logs_are_kept() {
    let sb = sandbox();
    register(
        &sb,
        "inside",
        "function f(s) return s : map(function(r)
           local nlog = select('#', aerospike:log(2, 'stream log'))
           local ninfo = select('#', info('n is %d', r.n))
           return list{nlog, ninfo, aerospike:get_current_time(), aerospike:update(r),
                       aerospike:create(r), aerospike:remove(r), aerospike:exists(r),
                       aerospike:set_context(r, 1), aerospike:get_config(r, 'x')}
         end) end",
    );
    let (values, run) = run_with(&sb, "inside", "f", &[], numbers(&[7])).unwrap();
    assert_eq!(
        values,
        vec![Value::List(vec![
            int(0),
            int(0),
            int(0),
            int(1),
            int(1),
            int(1),
            Value::Bool(true),
            int(2),
            int(0)
        ])]
    );
    let logs: Vec<(LogLevel, String)> = run.logs.into_iter().map(|l| (l.level, l.text)).collect();
    assert_eq!(
        logs,
        vec![
            (LogLevel::Info, "stream log".to_string()),
            (LogLevel::Info, "n is 7".to_string())
        ]
    );
    // Record UDFs on the same states still get the real hooks.
    register(
        &sb,
        "rec",
        "function t(r) return aerospike:get_current_time() > 0 and aerospike:exists(r) == false end",
    );
    let key = s("k1");
    let outcome = sb.apply(ApplyRequest {
        ns: "test".into(),
        set: Some("demo".into()),
        digest: digest(Some("demo"), &key).unwrap(),
        key: None,
        module: "rec".into(),
        function: "t".into(),
        args: vec![],
        timeout_ms: 0,
        received: std::time::Instant::now(),
        ttl: 0,
        filter: Default::default(),
    });
    assert_eq!(outcome.result, Ok(Value::Bool(true)));
}

// ---------------------------------------------------------------------------
// failures
// ---------------------------------------------------------------------------

#[test]
fn failure_texts_are_the_servers() {
    let sb = sandbox();
    register(
        &sb,
        "boom",
        "function boom(s) return s : map(function(r) error('boom') end) end
function number(s) return s : map(function(r) error(42) end) end
function level0(s) return s : map(function(r) error('plain', 0) end) end
function tbl(s) return s : map(function(r) error({code = 1}) end) end
function nilx(s) return s : map(function(r) return r.nope + 1 end) end
function param(s, name) return s : map(function(r) return r[name] + 1 end) end
function index_number(s) return s : map(function(r) return r.n.x end) end
function record_fn(rec) return rec.n end
function no_return(s) s : map(function(r) return 1 end) end
answer = 42
function list_error(s) return s : map(function(r) error(list()) end) end",
    );
    let prefix = "UDF: Execution Error 2 : /opt/aerospike/usr/udf/lua/boom.lua";
    let one = || numbers(&[1]);
    let cases = [
        ("boom", format!("{prefix}:1: boom")),
        ("number", "UDF: Execution Error 2 : 42".to_string()),
        ("level0", "UDF: Execution Error 2 : plain".to_string()),
        (
            "tbl",
            "UDF: Execution Error 2 : bad argument #1 to '?' (string expected, got table)"
                .to_string(),
        ),
        (
            "nilx",
            format!("{prefix}:5: attempt to perform arithmetic on a nil value (field 'nope')"),
        ),
        (
            "index_number",
            format!("{prefix}:7: attempt to index a number value (field 'n')"),
        ),
        (
            "list_error",
            "UDF: Execution Error 2 : bad argument #1 to '?' (string expected, got List)"
                .to_string(),
        ),
        (
            "nosuch",
            "UDF: Execution Error 2 : function not found".to_string(),
        ),
    ];
    for (function, text) in cases {
        assert_eq!(failure(&sb, "boom", function, one()), text, "{function}");
    }
    let mixed_up = "UDF: Execution Error 2 : [string \"aerospike.lua\"]:33: attempt to index a nil value (global 'result')";
    assert_eq!(failure(&sb, "boom", "record_fn", one()), mixed_up);
    assert_eq!(failure(&sb, "boom", "no_return", one()), mixed_up);
    let param = run_with(&sb, "boom", "param", &[s("nope")], one()).unwrap_err();
    assert_eq!(
        param,
        format!("{prefix}:6: attempt to perform arithmetic on a nil value (field '?')")
    );
    assert!(
        failure(&sb, "boom", "answer", one()).contains("attempt to call a number value"),
        "a global that is no function"
    );
}

#[test]
fn a_missing_module_fails_only_where_records_match() {
    let sb = sandbox();
    assert_eq!(
        failure(&sb, "nomodule", "count", numbers(&[1])),
        "UDF: Execution Error 1"
    );
    let (values, run) = run_with(&sb, "nomodule", "count", &[], vec![]).unwrap();
    assert!(values.is_empty() && run.stages.is_empty());
}

#[test]
fn a_stream_function_called_as_a_record_udf_fails_on_its_method() {
    let sb = sandbox();
    register(
        &sb,
        "mixed",
        "function stream_fn(s)\n  return s : map(function(r) return 1 end)\nend",
    );
    let key = s("n1");
    let outcome = sb.apply(ApplyRequest {
        ns: "test".into(),
        set: Some("nums".into()),
        digest: digest(Some("nums"), &key).unwrap(),
        key: None,
        module: "mixed".into(),
        function: "stream_fn".into(),
        args: vec![],
        timeout_ms: 0,
        received: std::time::Instant::now(),
        ttl: 0,
        filter: Default::default(),
    });
    assert_eq!(
        outcome.result,
        Err(UdfFailure::Execution(
            "/opt/aerospike/usr/udf/lua/mixed.lua:2: attempt to call a nil value (method 'map')"
                .to_string()
        ))
    );
}

// ---------------------------------------------------------------------------
// stopping: the reader, cancel, the sandbox's limits
// ---------------------------------------------------------------------------

#[test]
fn a_reader_that_is_gone_stops_the_run() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let call = StreamCall {
        module: "ops",
        function: "doubled",
        args: &[],
    };
    let mut seen = Vec::new();
    let mut pulled = 0;
    let mut records = numbers(&[1, 2, 3, 4]).into_iter().inspect(|_| pulled += 1);
    let run = sb
        .run_stream_partition(
            &call,
            &mut records,
            &mut |v| {
                seen.push(v);
                false
            },
            &AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(seen, vec![int(2)]);
    assert_eq!(pulled, 1, "no record is read after the reader left");
    assert_eq!(run.stages[0].values_in, 1);
}

#[test]
fn cancel_stops_lua_even_inside_pcall() {
    let sb = sandbox();
    register(
        &sb,
        "spin",
        "function f(s) return s : map(function(r)
           while true do pcall(function() while true do end end) end
         end) end",
    );
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            cancel.store(true, Ordering::Relaxed);
        });
        let call = StreamCall {
            module: "spin",
            function: "f",
            args: &[],
        };
        let result = sb.run_stream_partition(
            &call,
            &mut numbers(&[1]).into_iter(),
            &mut |_| true,
            &cancel,
        );
        assert_eq!(result.unwrap_err().text, stream::CANCELLED);
    });
    // The module still runs afterwards, on a fresh state.
    register(&sb, "ops", OPS);
    assert_eq!(run(&sb, "ops", "doubled", numbers(&[1])), vec![int(2)]);
}

#[test]
fn no_transaction_limit_but_the_sandbox_cap_applies() {
    let slow = "function f(s) return s : map(function(r)
        local t = os.clock() while os.clock() - t < 1.2 do end return 1 end) end";
    // No limit: past the 1000 ms a record UDF would get.
    let sb = sandbox();
    register(&sb, "slow", slow);
    assert_eq!(run(&sb, "slow", "f", numbers(&[1])), vec![int(1)]);
    // The sandbox's own cap.
    let capped = sandbox_with(SandboxConfig {
        max_udf_ms: Some(50),
        ..SandboxConfig::default()
    });
    register(&capped, "slow", slow);
    let text = failure(&capped, "slow", "f", numbers(&[1]));
    assert!(
        text.starts_with("UDF: Execution Error 2 : ") && text.ends_with("UDF Execution Timeout"),
        "{text}"
    );
}

#[test]
fn a_failed_run_keeps_its_counts_and_logs_so_far() {
    let sb = sandbox();
    register(
        &sb,
        "fails",
        "local function big(r) return r.n > 1 end
local function noisy(r)
  info('at %d', r.n)
  if r.n == 4 then error('boom') end
  return r.n
end
function f(s) return s : filter(big) : map(noisy) end
function early(s) error('before any op') end",
    );
    let call = StreamCall {
        module: "fails",
        function: "f",
        args: &[],
    };
    let cancel = AtomicBool::new(false);
    let mut records = numbers(&[1, 2, 3, 4, 5]).into_iter();
    let failed = sb
        .run_stream_partition(&call, &mut records, &mut |_| true, &cancel)
        .unwrap_err();
    assert!(
        failed.text.ends_with("fails.lua:4: boom"),
        "{}",
        failed.text
    );
    assert_eq!(
        stages(&failed.run),
        vec![
            ("filter(big)".to_string(), 4, 3),
            ("map(noisy)".to_string(), 3, 2)
        ]
    );
    let logs: Vec<&str> = failed.run.logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(logs, ["at 2", "at 3", "at 4"]);
    // A run that fails before its ops exist has none, not the last run's.
    let call = StreamCall {
        function: "early",
        ..call
    };
    let failed = sb
        .run_stream_partition(
            &call,
            &mut numbers(&[1]).into_iter(),
            &mut |_| true,
            &cancel,
        )
        .unwrap_err();
    assert!(failed.run.stages.is_empty(), "{:?}", failed.run);
}

#[test]
fn the_client_limit_counts_lua_time_per_value_or_runs_to_a_deadline() {
    let sb = sandbox();
    register(
        &sb,
        "busy",
        "local function add(a, b)
  local x = 0
  for i = 1, 100000 do x = x + i end
  return a + b
end
function total(s) return s : reduce(add) end",
    );
    let call = StreamCall {
        module: "busy",
        function: "total",
        args: &[],
    };
    // The server's values come slowly: 750 ms in all.
    let slowly = || {
        (1..=3).map(|n| {
            std::thread::sleep(Duration::from_millis(250));
            int(n)
        })
    };
    let cancel = AtomicBool::new(false);
    let mut out = Vec::new();
    let per_value = ClientLimit::PerValue(Duration::from_millis(150));
    let mut emit = |v| {
        out.push(v);
        true
    };
    let result = sb.run_stream_client_from(&call, &mut slowly(), &mut emit, &cancel, per_value);
    assert_eq!((result, out), (Ok(()), vec![int(6)]));
    // A deadline counts the waiting too.
    let until = ClientLimit::Until(std::time::Instant::now() + Duration::from_millis(300));
    let text = sb
        .run_stream_client_from(&call, &mut slowly(), &mut |_| true, &cancel, until)
        .unwrap_err();
    assert!(text.ends_with("UDF Execution Timeout"), "{text}");
}

#[test]
fn values_cut_short_by_a_cancel_are_not_the_streams_end() {
    let sb = sandbox();
    register(&sb, "ops", OPS);
    let call = StreamCall {
        module: "ops",
        function: "total",
        args: &[],
    };
    let cancel = AtomicBool::new(false);
    let mut values = [int(1), int(2)].into_iter().chain(std::iter::from_fn(|| {
        cancel.store(true, Ordering::Relaxed);
        None
    }));
    let mut emitted = Vec::new();
    let mut emit = |v| {
        emitted.push(v);
        true
    };
    let result =
        sb.run_stream_client_from(&call, &mut values, &mut emit, &cancel, ClientLimit::DEFAULT);
    assert_eq!(result, Err(stream::CANCELLED.to_string()));
    assert!(
        emitted.is_empty(),
        "no reduce finished on part of the stream: {emitted:?}"
    );
}

#[test]
fn the_memory_limit_applies_to_each_run() {
    let sb = sandbox_with(SandboxConfig {
        lua_memory_limit: 8 << 20,
        max_udf_ms: Some(20_000),
        ..SandboxConfig::default()
    });
    register(
        &sb,
        "mem",
        "function grow(s) return s : map(function(r) local t = {} for i = 1, 1e9 do t[i] = i end end) end
         function grow_list(s) return s : aggregate(list(), function(l, r) for i = 1, 1e9 do list.append(l, 'x') end return l end) end
         function fine(s) return s : map(function(r) return r.n end) end",
    );
    for function in ["grow", "grow_list"] {
        let text = failure(&sb, "mem", function, numbers(&[1]));
        assert!(text.contains("not enough memory"), "{function}: {text}");
    }
    assert_eq!(run(&sb, "mem", "fine", numbers(&[3])), vec![int(3)]);
}

// ---------------------------------------------------------------------------
// the recorded aggregation cases, partition by partition
// ---------------------------------------------------------------------------

mod cases {
    use serde_json::Value as Json;

    use super::*;
    use crate::sandbox::store::{Change, next_generation};

    fn cases_dir() -> std::path::PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ours = root.join("tests/conformance/cases-query");
        if ours.is_dir() {
            ours
        } else {
            root.join("../shared/conformance/cases-query")
        }
    }

    fn one(v: &Json) -> (&str, &Json) {
        let o = v.as_object().expect("a typed VALUE");
        let (k, v) = o.iter().next().expect("one key");
        (k.as_str(), v)
    }

    fn value(v: &Json) -> Value {
        let (kind, x) = one(v);
        match kind {
            "nil" => Value::Nil,
            "bool" => Value::Bool(x.as_bool().unwrap()),
            "int" => Value::Int(match x {
                Json::String(t) => t.parse().unwrap(),
                _ => x.as_i64().unwrap(),
            }),
            "float" => Value::Float(match x {
                Json::String(t) => t.parse().unwrap(),
                _ => x.as_f64().unwrap(),
            }),
            "str" => Value::Str(x.as_str().unwrap().into()),
            "bytes" => Value::Bytes {
                ty: 4,
                data: hex::decode(x.as_str().unwrap()).unwrap(),
            },
            "geojson" => Value::GeoJson(x.as_str().unwrap().to_string()),
            "list" => Value::List(x.as_array().unwrap().iter().map(value).collect()),
            "map" => Value::Map(
                x.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (value(&p[0]), value(&p[1])))
                    .collect(),
            ),
            other => panic!("unknown VALUE kind {other}"),
        }
    }

    /// A form that compares maps as sets of pairs.
    fn canon(v: &Value) -> String {
        match v {
            Value::Float(f) => format!("float:{:?}", f.to_bits()),
            Value::List(items) => format!(
                "[{}]",
                items.iter().map(canon).collect::<Vec<_>>().join(",")
            ),
            Value::Map(pairs) => {
                let mut entries: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", canon(k), canon(v)))
                    .collect();
                entries.sort();
                format!("{{{}}}", entries.join(","))
            }
            other => format!("{other:?}"),
        }
    }

    fn multiset(values: &[Value]) -> Vec<String> {
        let mut out: Vec<String> = values.iter().map(canon).collect();
        out.sort();
        out
    }

    struct Key {
        ns: String,
        set: Option<String>,
        digest: Digest,
        key: Value,
    }

    fn key(j: &Json) -> Key {
        let set = j["set"].as_str().map(str::to_string);
        let key = value(&j["key"]);
        Key {
            ns: j["ns"].as_str().unwrap().to_string(),
            digest: digest(set.as_deref(), &key).unwrap(),
            set,
            key,
        }
    }

    fn put(sb: &Sandbox, key: &Key, bins: &Json, send_key: bool) {
        let bins: Vec<(String, Value)> = bins
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), value(v)))
            .collect();
        sb.store()
            .modify(&key.ns, &key.digest, |current| {
                let mut record = current.cloned().unwrap_or(Record {
                    bins: Vec::new(),
                    generation: 0,
                    void_time: 0,
                    last_update_ms: 0,
                    set: key.set.clone(),
                    key: None,
                });
                for (name, v) in bins {
                    record.bins.retain(|(n, _)| *n != name);
                    if v != Value::Nil {
                        record.bins.push((name, v));
                    }
                }
                record.generation = next_generation(record.generation);
                if send_key {
                    record.key = Some(key.key.clone());
                }
                (Change::Put(record), ())
            })
            .unwrap();
    }

    fn apply(
        sb: &Sandbox,
        ns: &str,
        set: Option<String>,
        d: Digest,
        step: &Json,
    ) -> Result<Value, UdfFailure> {
        sb.apply(ApplyRequest {
            ns: ns.to_string(),
            set,
            digest: d,
            key: None,
            module: step["module"].as_str().unwrap().to_string(),
            function: step["function"].as_str().unwrap().to_string(),
            args: step["args"].as_array().unwrap().iter().map(value).collect(),
            timeout_ms: 0,
            received: std::time::Instant::now(),
            ttl: 0,
            filter: Default::default(),
        })
        .result
    }

    /// The records a query step selects: its set (or all), its numeric `where`.
    fn selected(sb: &Sandbox, step: &Json) -> Vec<(Digest, Record)> {
        let ns = step["ns"].as_str().unwrap();
        let set = step["set"].as_str();
        let range = step.get("where").map(|w| {
            assert!(
                w.get("collection").is_none(),
                "only plain numeric where clauses here"
            );
            let bounds: Vec<i64> = w["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| match value(v) {
                    Value::Int(i) => i,
                    other => panic!("only numeric where clauses here: {other:?}"),
                })
                .collect();
            (
                w["bin"].as_str().unwrap().to_string(),
                bounds[0],
                *bounds.last().unwrap(),
            )
        });
        let mut records: Vec<(Digest, Record)> = sb
            .store()
            .records(ns)
            .into_iter()
            .filter(|(_, r)| set.is_none() || r.set.as_deref() == set)
            .filter(|(_, r)| match &range {
                None => true,
                Some((bin, lo, hi)) => {
                    matches!(r.bin(bin), Some(Value::Int(n)) if lo <= n && n <= hi)
                }
            })
            .collect();
        records.sort_by_key(|(d, _)| *d);
        records
    }

    fn partition(d: &Digest) -> u16 {
        u16::from_le_bytes([d[0], d[1]]) & 0x0FFF
    }

    /// The step's outcome as the case records it: the client's values, or
    /// (code, message, client_lua).
    fn aggregate(sb: &Sandbox, step: &Json) -> Result<Vec<Value>, (i64, String, bool)> {
        let args: Vec<Value> = step["args"].as_array().unwrap().iter().map(value).collect();
        let call = StreamCall {
            module: step["module"].as_str().unwrap(),
            function: step["function"].as_str().unwrap(),
            args: &args,
        };
        let mut by_partition: std::collections::BTreeMap<u16, Vec<StreamRecord>> =
            Default::default();
        for (digest, record) in selected(sb, step) {
            by_partition
                .entry(partition(&digest))
                .or_default()
                .push(StreamRecord { digest, record });
        }
        let mut partials = Vec::new();
        let cancel = AtomicBool::new(false);
        for records in by_partition.into_values() {
            sb.run_stream_partition(
                &call,
                &mut records.into_iter(),
                &mut |v| {
                    partials.push(v);
                    true
                },
                &cancel,
            )
            .map_err(|failure| (-1, failure.text, false))?;
        }
        // The client's half, on the engine (the crate's own Lua runner is
        // private to its query client).
        sb.run_stream_client(&call, partials).map_err(|text| {
            let user_path = &sb.config().user_path;
            (100, text.replace(user_path.as_str(), "<client-lua>"), true)
        })
    }

    fn expected_outcome(expect: &Json) -> Result<Vec<String>, (i64, String, bool)> {
        if let Some(results) = expect.get("results") {
            let values: Vec<Value> = results.as_array().unwrap().iter().map(value).collect();
            return Ok(multiset(&values));
        }
        let e = &expect["error"];
        Err((
            e["code"].as_i64().unwrap(),
            e["message"].as_str().unwrap().to_string(),
            e.get("client_lua").and_then(Json::as_bool).unwrap_or(false),
        ))
    }

    #[test]
    fn recorded_aggregations_give_the_recorded_values() {
        let dir = cases_dir();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the query cases at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut checked = 0;
        let mut failures = Vec::new();
        for file in files {
            let case: Json = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let steps = case["steps"].as_array().unwrap();
            if !steps.iter().any(|s| s["do"] == "aggregate") {
                continue;
            }
            let name = case["name"].as_str().unwrap();
            let sb = sandbox();
            for (i, step) in steps.iter().enumerate() {
                match step["do"].as_str().unwrap() {
                    "udf_put" => {
                        let content = step["content"].as_str().unwrap();
                        let encoded = STANDARD.encode(content);
                        let file = step["file"].as_str().unwrap();
                        sb.info_udf_put(&format!(
                            "filename={file};content={encoded};content-len={};udf-type=LUA;",
                            encoded.len()
                        ));
                    }
                    "udf_remove" => {
                        sb.info_udf_remove(&format!(
                            "filename={};",
                            step["file"].as_str().unwrap()
                        ));
                    }
                    "put" => put(
                        &sb,
                        &key(&step["key"]),
                        &step["bins"],
                        step["send_key"] == true,
                    ),
                    "put_many" => {
                        for r in step["records"].as_array().unwrap() {
                            put(&sb, &key(&r[0]), &r[1], step["send_key"] == true);
                        }
                    }
                    "apply" => {
                        let k = key(&step["key"]);
                        let got = match apply(&sb, &k.ns, k.set.clone(), k.digest, step) {
                            Ok(v) => format!("ok {}", canon(&v)),
                            Err(UdfFailure::Execution(text)) => format!("error 100 {text}"),
                            Err(UdfFailure::Code(code)) => format!("error {code}"),
                        };
                        let expect = &step["expect"];
                        let want = match expect.get("ok") {
                            Some(v) => format!("ok {}", canon(&value(v))),
                            None => {
                                let e = &expect["error"];
                                format!("error {} {}", e["code"], e["message"].as_str().unwrap())
                                    .trim_end()
                                    .to_string()
                            }
                        };
                        if got != want {
                            failures.push(format!("{name} step {i}: {got} != {want}"));
                        }
                    }
                    // A background UDF: the record UDF on every selected record.
                    "background_udf" => {
                        for (d, r) in selected(&sb, step) {
                            let _ =
                                apply(&sb, step["ns"].as_str().unwrap(), r.set.clone(), d, step);
                        }
                    }
                    "aggregate" => {
                        checked += 1;
                        let got = aggregate(&sb, step).map(|values| multiset(&values));
                        let want = expected_outcome(&step["expect"]);
                        if got != want {
                            failures.push(format!("{name} step {i}: {got:?} != {want:?}"));
                        }
                    }
                    // Indexes and record reads are the query path's; the
                    // where clauses above are evaluated here directly.
                    _ => {}
                }
            }
        }
        assert!(
            checked >= 30,
            "only {checked} aggregate steps found in {}",
            dir.display()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
