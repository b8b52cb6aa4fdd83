//! `asudf test` on a file of 100 apply steps (budget: 100 ms wall, sandbox
//! start included), against a baseline in the same run: the same sandbox
//! start, registration and 100 applies through the client handle by hand.

use std::path::Path;

use aerospike::Value;
use asudf::client::{ApplyCall, RecordKey, Request, Target};
use asudf::sandbox::SandboxConfig;
use asudf::testing::{format, runner};
use criterion::{Criterion, criterion_group, criterion_main};

const STEPS: i64 = 100;

fn scenario_text() -> String {
    let mut text =
        String::from("ns = \"test.demo\"\n[modules]\ncounter = \"../assets/counter.lua\"\n");
    for i in 1..=STEPS {
        text.push_str(&format!(
            "\n[[step]]\napply = \"counter.increment\"\nkey = \"c1\"\nargs = \"'count', 1\"\nexpect = \"{i}\"\n"
        ));
    }
    text
}

async fn by_hand(source: &str) {
    let target = Target::in_memory(SandboxConfig::default());
    let handle = runner::connect(target).await.unwrap();
    let put = Request::PutModule {
        name: "counter.lua".into(),
        source: source.to_string(),
    };
    handle.call(put).await.0.unwrap();
    for _ in 0..STEPS {
        let call = ApplyCall {
            key: RecordKey {
                ns: "test".into(),
                set: Some("demo".into()),
                key: Value::from("c1"),
            },
            module: "counter".into(),
            function: "increment".into(),
            args: vec![Value::from("count"), Value::Int(1)],
            timeout_ms: None,
            send_key: true,
            with_record: false,
            with_logs: true,
        };
        handle.call(Request::Apply(call.into())).await.0.unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("benches/hundred.udftest.toml");
    let text = scenario_text();
    let source = std::fs::read_to_string(root.join("assets/counter.lua")).unwrap();
    let mut group = c.benchmark_group("asudf test");
    group.sample_size(20);
    group.bench_function("file of 100 apply steps", |b| {
        b.iter(|| {
            let scenario = format::parse(&file, &text).unwrap();
            let report = runtime.block_on(runner::run_on_sandbox(&scenario));
            assert_eq!(report.passed(), STEPS as usize);
        })
    });
    group.bench_function("baseline: the same 100 applies by hand", |b| {
        b.iter(|| runtime.block_on(by_hand(&source)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
