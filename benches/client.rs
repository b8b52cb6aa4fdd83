//! The client task against a bare `aerospike::Client`, same sandbox, same
//! loop (budget: the task ≤ 5 % slower at p50).
//!
//! The three ways alternate call by call (in an order drawn each time), so
//! a noisy machine slows them alike; each call's latency goes into its own
//! histogram. Run with `cargo bench --bench client`.

use std::time::Instant;

use aerospike::{AdminPolicy, Client, ClientPolicy, Task, UdfLang, Value};
use asudf::client::{self, ApplyCall, ConnectionState, Event, RecordKey, Request, Target};
use asudf::sandbox::server::{self, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use hdrhistogram::Histogram;

const TRIVIAL: &str = "function one(rec)\n  return 1\nend\n";
const CALLS: usize = 20_000;
const WARMUP: usize = 1_000;

fn main() {
    // `cargo bench` passes flags such as `--bench`; this bench takes none.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The loop runs as a task on a worker, as the headless commands do.
        tokio::spawn(measure()).await.unwrap();
    });
}

async fn measure() {
    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let port = server.addr().port();
    let bare = Client::new(&ClientPolicy::default(), &format!("127.0.0.1:{port}"))
        .await
        .unwrap();
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
    let (handle, mut events) = client::spawn(Target::Cluster {
        hosts: vec![aerospike::Host::new("127.0.0.1", port)],
        policy: ClientPolicy::default(),
    });
    while !matches!(
        events.recv().await,
        Some(Event::Connection(ConnectionState::Connected(_)))
    ) {}

    // The policy the task's apply uses: the crate's default one (a total
    // timeout, retries) costs the bare client a few µs more per call.
    let policy = client::apply_policy(&call);
    let names = [
        "bare aerospike::Client",
        "task, awaited call (headless)",
        "task, sent + event (console)",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut histograms: Vec<Histogram<u64>> = (0..3).map(|_| Histogram::new(3).unwrap()).collect();
    for i in 0..WARMUP + CALLS {
        // The order is drawn anew each time: a call finds the machine as the
        // call before left it (a sent request's task still ending), so each
        // way must follow each other way as often.
        for way in ORDERS[next_order(&mut seed)] {
            let start = Instant::now();
            match way {
                0 => {
                    bare.execute_udf(&policy, &key, "trivial", "one", &[])
                        .await
                        .unwrap();
                }
                1 => {
                    handle
                        .call(Request::Apply(call.clone().into()))
                        .await
                        .0
                        .unwrap();
                }
                _ => {
                    handle.send(Request::Apply(call.clone().into()));
                    while !matches!(events.recv().await, Some(Event::Done { .. })) {}
                }
            }
            if i >= WARMUP {
                histograms[way]
                    .record(start.elapsed().as_nanos() as u64)
                    .unwrap();
            }
        }
    }
    let base = histograms[0].value_at_quantile(0.5) as f64;
    println!("trivial UDF apply, {CALLS} calls each, interleaved:");
    for (name, h) in names.iter().zip(&histograms) {
        let p50 = h.value_at_quantile(0.5) as f64;
        println!(
            "  {name:32} p50 {:7.1} µs  p99 {:7.1} µs  p50 ratio {:.3}",
            p50 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            p50 / base
        );
    }
    our_side(&call);
    drop(server);
}

/// The six orders of the three ways.
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// A pseudo-random order index (xorshift: the same sequence every run).
fn next_order(seed: &mut u64) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 6) as usize
}

/// What the client task's path does per apply besides the crate's call,
/// each step alone in a loop (no network): what the ratios above are made of.
fn our_side(call: &ApplyCall) {
    const N: u32 = 200_000;
    let published = parking_lot::RwLock::new(Some(std::sync::Arc::new(0u64)));
    let per_call = |name: &str, step: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..N {
            step();
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(N);
        println!("  {name:44} {:7.3} µs", ns / 1000.0);
    };
    println!("our side of one apply, each step alone ({N} times):");
    per_call("clone the request (Request::Apply)", &mut || {
        std::hint::black_box(Request::Apply(std::hint::black_box(call).clone().into()));
    });
    per_call("key with its digest (RecordKey → Key)", &mut || {
        let k = &std::hint::black_box(call).key;
        std::hint::black_box(
            aerospike::Key::new(
                k.ns.clone(),
                k.set.clone().unwrap_or_default(),
                k.key.clone(),
            )
            .unwrap(),
        );
    });
    per_call("the apply's policy", &mut || {
        std::hint::black_box(client::apply_policy(std::hint::black_box(call)));
    });
    per_call("read the published client (lock, Arc clone)", &mut || {
        std::hint::black_box(published.read().clone());
    });
    per_call("two Instant::now (queued/sent, answered)", &mut || {
        std::hint::black_box((Instant::now(), Instant::now()));
    });
    per_call("an item channel (made per call before)", &mut || {
        std::hint::black_box(tokio::sync::mpsc::unbounded_channel::<client::StreamItem>());
    });
}
