//! The client task against a bare `aerospike::Client`, same sandbox, same
//! loop: the task's overhead per apply (budget: ≤ 5 % at p50).

use std::time::Duration;

use aerospike::{AdminPolicy, Client, ClientPolicy, Task, UdfLang, Value, WritePolicy};
use asudf::client::{self, ApplyCall, ConnectionState, Event, RecordKey, Request, Target};
use asudf::sandbox::server::{self, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use criterion::{Criterion, criterion_group, criterion_main};

const TRIVIAL: &str = "function one(rec)\n  return 1\nend\n";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, bare) = rt.block_on(async {
        let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
        let server = server::start(sandbox, ServerOptions::default())
            .await
            .unwrap();
        let host = format!("127.0.0.1:{}", server.addr().port());
        let bare = Client::new(&ClientPolicy::default(), &host).await.unwrap();
        bare.register_udf(
            &AdminPolicy::default(),
            TRIVIAL.as_bytes(),
            "trivial.lua",
            UdfLang::Lua,
        )
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
        (server, bare)
    });
    let key = aerospike::Key::new("test", "bench", Value::from("k")).unwrap();
    let call = ApplyCall {
        key: RecordKey {
            ns: "test".into(),
            set: Some("bench".into()),
            key: Value::from("k"),
        },
        module: "trivial".into(),
        function: "one".into(),
        args: vec![],
        timeout_ms: None,
        send_key: false,
        with_record: false,
        with_logs: false,
    };
    let (handle, mut events) = rt.block_on(async {
        let target = Target::Cluster {
            hosts: vec![aerospike::Host::new("127.0.0.1", server.addr().port())],
            policy: ClientPolicy::default(),
        };
        let (handle, mut events) = client::spawn(target);
        while let Some(e) = events.recv().await {
            if matches!(e, Event::Connection(ConnectionState::Connected(_))) {
                break;
            }
        }
        (handle, events)
    });

    // Both loops are driven the same way (block_on per apply), so the
    // difference is the task: channel in, spawned request, event out.
    let mut group = c.benchmark_group("apply_trivial_udf");
    group.measurement_time(Duration::from_secs(5));
    let policy = WritePolicy::default();
    group.bench_function("bare_client", |b| {
        b.iter(|| {
            rt.block_on(bare.execute_udf(&policy, &key, "trivial", "one", &[]))
                .unwrap()
        })
    });
    group.bench_function("client_task", |b| {
        b.iter(|| {
            rt.block_on(client::call(
                &handle,
                &mut events,
                Request::Apply(call.clone()),
            ))
            .0
            .unwrap()
        })
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
