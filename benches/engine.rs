//! In-process UDF calls on the sandbox engine (no network): a trivial UDF
//! and the counter UDF.

use std::hint::black_box;

use std::sync::atomic::AtomicBool;

use asudf::sandbox::engine::{StreamCall, StreamRecord};
use asudf::sandbox::store::{Record, digest};
use asudf::sandbox::{ApplyRequest, Sandbox, SandboxConfig, Value};
use base64::Engine as _;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const MODULE: &str = "function one(rec)
  return 1
end

function incr(rec)
  if aerospike:exists(rec) then
    rec.n = rec.n + 1
    return aerospike:update(rec)
  end
  rec.n = 1
  return aerospike:create(rec)
end

local function n_of(r)
  return r.n
end
local function add(a, b)
  return a + b
end
function sum(s)
  return s : map(n_of) : reduce(add)
end
";

fn open_sandbox(config: SandboxConfig) -> Sandbox {
    let sandbox = Sandbox::open(config).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(MODULE);
    let reply = sandbox.info_udf_put(&format!(
        "filename=bench.lua;content={encoded};content-len={};udf-type=LUA;",
        encoded.len()
    ));
    assert_eq!(reply, "ok");
    sandbox
}

fn request(function: &str, key: &str) -> ApplyRequest {
    let key = Value::Str(key.into());
    ApplyRequest {
        ns: "test".into(),
        set: Some("demo".into()),
        digest: digest(Some("demo"), &key).unwrap(),
        key: None,
        module: "bench".into(),
        function: function.into(),
        args: Vec::new(),
        timeout_ms: 0,
        received: std::time::Instant::now(),
        ttl: 0,
        filter: Default::default(),
    }
}

fn engine(c: &mut Criterion) {
    let sandbox = open_sandbox(SandboxConfig::default());
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));

    let trivial = request("one", "k1");
    group.bench_function("trivial_udf", |b| {
        b.iter(|| black_box(sandbox.apply(black_box(trivial.clone()))))
    });

    let counter = request("incr", "counter");
    group.bench_function("counter_udf", |b| {
        b.iter(|| black_box(sandbox.apply(black_box(counter.clone()))))
    });

    // The same with a data directory: every write appended to the log.
    let dir = tempfile::tempdir().unwrap();
    let persisted = open_sandbox(SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    });
    group.bench_function("counter_udf_persisted", |b| {
        b.iter(|| black_box(persisted.apply(black_box(counter.clone()))))
    });
    group.finish();
}

/// `n` records with an integer bin, as one partition hands them over.
fn partition(n: usize) -> Vec<StreamRecord> {
    (0..n)
        .map(|i| {
            let key = Value::Int(i as i64);
            StreamRecord {
                digest: digest(Some("demo"), &key).unwrap(),
                record: Record {
                    bins: vec![("n".to_string(), Value::Int(i as i64))],
                    generation: 1,
                    void_time: 0,
                    last_update_ms: 0,
                    set: Some("demo".to_string()),
                    key: None,
                },
            }
        })
        .collect()
}

/// A sum aggregation's server side, per record: 25 records per partition is
/// 100,000 records over 4096 partitions; 1000 shows the per-record cost.
fn stream(c: &mut Criterion) {
    let sandbox = open_sandbox(SandboxConfig::default());
    let call = StreamCall {
        module: "bench",
        function: "sum",
        args: &[],
    };
    let cancel = AtomicBool::new(false);
    let mut group = c.benchmark_group("stream");
    for per_partition in [25, 1000] {
        let records = partition(per_partition);
        group.throughput(Throughput::Elements(per_partition as u64));
        group.bench_function(format!("sum_{per_partition}_per_partition"), |b| {
            b.iter_batched(
                || records.clone(),
                |records| {
                    let mut out = None;
                    sandbox
                        .run_stream_partition(
                            &call,
                            &mut records.into_iter(),
                            &mut |v| {
                                out = Some(v);
                                true
                            },
                            &cancel,
                        )
                        .unwrap();
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, engine, stream);
criterion_main!(benches);
