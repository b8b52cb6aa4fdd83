//! One batch apply over 1,000 keys against 1,000 single applies of the same
//! UDF on the same data, through the `aerospike` crate against the sandbox
//! server. Rounds alternate the two ways, so a noisy machine slows them
//! alike; the report is the ratio of medians. Run with
//! `cargo bench --bench batch`.

use std::time::{Duration, Instant};

use aerospike::{
    AdminPolicy, BatchOperation, BatchPolicy, BatchUdfPolicy, Bin, Bins, Client, ClientPolicy, Key,
    ReadPolicy, Task, UdfLang, Value, WritePolicy,
};
use asudf::sandbox::server::{self, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};

/// Some keys missing, some failing: as the equivalence test has it.
const UDF: &str = r#"
function work(rec, n)
    if not aerospike:exists(rec) then return "missing" end
    if rec.v % 5 == 0 then error("refused " .. rec.v) end
    rec.v = rec.v + n
    aerospike:update(rec)
    return rec.v
end
"#;
const KEYS: i64 = 1000;
const ROUNDS: usize = 15;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { tokio::spawn(measure()).await.unwrap() });
}

fn key(set: &str, k: i64) -> Key {
    Key::new("test", set, Value::Int(k)).unwrap()
}

async fn measure() {
    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let hosts = format!("127.0.0.1:{}", server.addr().port());
    let client = Client::new(&ClientPolicy::default(), &hosts).await.unwrap();
    client
        .register_udf(
            &AdminPolicy::default(),
            UDF.as_bytes(),
            "work.lua",
            UdfLang::Lua,
        )
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
    for set in ["one", "two"] {
        for k in (0..KEYS).filter(|k| k % 7 != 0) {
            let bins = [Bin::new("v", Value::Int(k))];
            client
                .put(&WritePolicy::default(), &key(set, k), &bins)
                .await
                .unwrap();
        }
    }
    let args = vec![Value::Int(3)];
    let mut policy = BatchPolicy::default();
    policy.base_policy.total_timeout = 60_000;
    policy.base_policy.socket_timeout = 60_000;
    let (mut batch, mut single, mut gets) = (Vec::new(), Vec::new(), Vec::new());
    // Single applies that succeeded / failed: total time and count.
    let (mut ok, mut failed) = ((Duration::ZERO, 0u32), (Duration::ZERO, 0u32));
    for _ in 0..ROUNDS {
        let udf = BatchUdfPolicy::default();
        let mut ops: Vec<_> = (0..KEYS)
            .map(|k| BatchOperation::udf(&udf, key("one", k), "work", "work", args.clone()))
            .collect();
        let start = Instant::now();
        client.batch(&policy, &mut ops).await.unwrap();
        batch.push(start.elapsed());
        assert!(ops.iter().all(|op| op.result_code().is_some()));

        let start = Instant::now();
        for k in 0..KEYS {
            let call = Instant::now();
            let answer = client
                .execute_udf(
                    &WritePolicy::default(),
                    &key("two", k),
                    "work",
                    "work",
                    &args,
                )
                .await;
            let slot = if answer.is_ok() { &mut ok } else { &mut failed };
            slot.0 += call.elapsed();
            slot.1 += 1;
        }
        single.push(start.elapsed());

        // The round trip alone: a get of each key.
        let start = Instant::now();
        for k in 0..KEYS {
            let _ = client
                .get(&ReadPolicy::default(), &key("two", k), Bins::All)
                .await;
        }
        gets.push(start.elapsed());
    }
    let (b, s) = (median(&mut batch), median(&mut single));
    println!(
        "{KEYS} keys, median of {ROUNDS} rounds: batch apply {:.1} ms, single applies {:.1} ms: batch {:.2}x faster",
        b.as_secs_f64() * 1e3,
        s.as_secs_f64() * 1e3,
        s.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "{KEYS} single gets (the round trip alone): {:.1} ms",
        median(&mut gets).as_secs_f64() * 1e3
    );
    let mean_us = |(total, n): (Duration, u32)| total.as_secs_f64() * 1e6 / f64::from(n.max(1));
    println!(
        "single applies: {:.0} us per call that succeeded, {:.0} us per call that failed",
        mean_us(ok),
        mean_us(failed)
    );
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
