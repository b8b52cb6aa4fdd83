//! Filter expressions (field 43) on single-record commands, through the
//! `aerospike` crate with the recorded wire bytes of the conformance cases:
//! a false filter answers 27 and leaves the record alone, a true one lets the
//! command run, a missing record never looks at the filter, and a filter the
//! server cannot build answers 4 (16 for what the sandbox does not evaluate).

use std::time::Duration;

use aerospike::expressions::{Expression, from_base64};
use aerospike::operations::scalar;
use aerospike::{
    AdminPolicy, Bin, Bins, Client, ClientPolicy, Key, ReadPolicy, UdfLang, Value, WritePolicy,
};
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};

const COUNTER: &str = include_str!("../../shared/samples/counter.lua");

/// `eq(bin(INT, "n"), 5)`, `eq(bin(INT, "n"), 6)`, `eq(bin(INT, "n"), "x")`
/// (cannot be built) and `cmp_geo` (not evaluated by the sandbox).
const N_IS_5: &str = "kwGTUQKhbgU=";
const N_IS_6: &str = "kwGTUQKhbgY=";
const BAD: &str = "kwGTUQKhbqIDeA==";
const GEO: &str = "kwjAwA==";

fn exp(b64: &str) -> Expression {
    from_base64(b64).expect("recorded wire bytes")
}

fn write_policy(filter: Option<&str>) -> WritePolicy {
    let mut p = WritePolicy::default();
    p.base_policy.filter_expression = filter.map(exp);
    p
}

fn read_policy(filter: Option<&str>) -> ReadPolicy {
    let mut p = ReadPolicy::default();
    p.base_policy.filter_expression = filter.map(exp);
    p
}

struct Env {
    server: ServerHandle,
    client: Client,
}

async fn env() -> Env {
    let sandbox = Sandbox::open(SandboxConfig::default()).expect("sandbox opens");
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .expect("server starts");
    let host = format!("127.0.0.1:{}", server.addr().port());
    let client = Client::new(&ClientPolicy::default(), &host)
        .await
        .expect("client connects");
    let task = client
        .register_udf(
            &AdminPolicy::default(),
            COUNTER.as_bytes(),
            "counter.lua",
            UdfLang::Lua,
        )
        .await
        .expect("udf-put accepted");
    use aerospike::task::Task;
    task.wait_till_complete(Some(Duration::from_secs(5)))
        .await
        .expect("registered");
    Env { server, client }
}

fn key(k: &str) -> Key {
    Key::new("test", "demo", Value::from(k)).unwrap()
}

impl Env {
    async fn put_n(&self, k: &Key, n: i64) {
        let bin = Bin::new("n", Value::from(n));
        self.client
            .put(&WritePolicy::default(), k, &[bin])
            .await
            .unwrap();
    }

    /// The record's `n` and generation, read without a filter.
    async fn state(&self, k: &Key) -> Option<(Value, u32)> {
        match self.client.get(&ReadPolicy::default(), k, Bins::All).await {
            Ok(r) => Some((r.bins.get("n").cloned().unwrap_or(Value::Nil), r.generation)),
            Err(e) => {
                assert_eq!(e.result_code(), 2, "{e}");
                None
            }
        }
    }

    async fn shutdown(mut self) {
        self.client.close().await.unwrap();
        self.server.shutdown().await;
    }
}

fn code<T: std::fmt::Debug>(r: aerospike::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.result_code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_read_only_operate() {
    let env = env().await;
    let k = key("g");
    env.put_n(&k, 5).await;
    let get = |f| {
        let client = &env.client;
        let k = &k;
        async move { client.get(&read_policy(Some(f)), k, Bins::All).await }
    };
    let rec = get(N_IS_5).await.unwrap();
    assert_eq!(rec.bins.get("n"), Some(&Value::from(5)));
    assert_eq!(code(get(N_IS_6).await), 27);
    assert_eq!(code(get(BAD).await), 4);
    assert_eq!(code(get(GEO).await), 16);
    let read_op = [scalar::get_bin("n")];
    let r = env
        .client
        .operate(&write_policy(Some(N_IS_6)), &k, &read_op)
        .await;
    assert_eq!(code(r), 27);
    let r = env
        .client
        .operate(&write_policy(Some(N_IS_5)), &k, &read_op)
        .await;
    assert_eq!(r.unwrap().bins.get("n"), Some(&Value::from(5)));
    assert_eq!(env.state(&k).await, Some((Value::from(5), 1)));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_touch_operate_delete() {
    let env = env().await;
    let c = &env.client;
    let k = key("w");
    env.put_n(&k, 5).await;
    let seven = [Bin::new("n", Value::from(7))];
    let add = Bin::new("n", Value::from(1));
    let ops = [scalar::add(&add), scalar::get_bin("n")];

    // False, or cannot be built: refused, record and generation unchanged.
    for (filter, want) in [(N_IS_6, 27), (BAD, 4), (GEO, 16)] {
        let p = write_policy(Some(filter));
        assert_eq!(code(c.put(&p, &k, &seven).await), want, "put {filter}");
        assert_eq!(code(c.touch(&p, &k).await), want, "touch {filter}");
        assert_eq!(
            code(c.operate(&p, &k, &ops).await),
            want,
            "operate {filter}"
        );
        assert_eq!(code(c.delete(&p, &k).await), want, "delete {filter}");
        assert_eq!(env.state(&k).await, Some((Value::from(5), 1)));
    }

    // True: each command runs.
    let p = write_policy(Some(N_IS_5));
    c.touch(&p, &k).await.unwrap();
    assert_eq!(env.state(&k).await, Some((Value::from(5), 2)));
    let rec = c.operate(&p, &k, &ops).await.unwrap();
    assert_eq!(rec.generation, 3);
    assert_eq!(env.state(&k).await, Some((Value::from(6), 3)));
    // n is 6 now: the same filter is false.
    assert_eq!(code(c.put(&p, &k, &seven).await), 27);
    c.put(&write_policy(Some(N_IS_6)), &k, &seven)
        .await
        .unwrap();
    assert_eq!(env.state(&k).await, Some((Value::from(7), 4)));
    let is_7 = "kwGTUQKhbgc=";
    assert!(c.delete(&write_policy(Some(is_7)), &k).await.unwrap());
    assert_eq!(env.state(&k).await, None);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_runs_only_when_the_filter_is_true() {
    let env = env().await;
    let c = &env.client;
    let k = key("a");
    env.put_n(&k, 5).await;
    let args = &[Value::from("n"), Value::from(10)];
    let apply = |filter: &str, module: &'static str, function: &'static str| {
        let p = write_policy(Some(filter));
        let k = k.clone();
        async move { c.execute_udf(&p, &k, module, function, args).await }
    };
    for (filter, want) in [(N_IS_6, 27), (BAD, 4), (GEO, 16)] {
        assert_eq!(code(apply(filter, "counter", "increment").await), want);
        assert_eq!(env.state(&k).await, Some((Value::from(5), 1)));
    }
    // Filtered out before anything about the module is looked at.
    assert_eq!(code(apply(N_IS_6, "nosuch", "f").await), 27);
    assert_eq!(code(apply(N_IS_6, "counter", "nosuch").await), 27);
    assert_eq!(code(apply(N_IS_5, "nosuch", "f").await), 100);

    let v = apply(N_IS_5, "counter", "increment").await.unwrap();
    assert_eq!(v, Some(Value::from(15)));
    assert_eq!(env.state(&k).await, Some((Value::from(15), 2)));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_record_never_looks_at_the_filter() {
    let env = env().await;
    let c = &env.client;
    for filter in [N_IS_6, BAD, GEO] {
        let k = key(filter);
        let rp = read_policy(Some(filter));
        let wp = write_policy(Some(filter));
        assert_eq!(code(c.get(&rp, &k, Bins::All).await), 2, "get {filter}");
        assert!(!c.delete(&wp, &k).await.unwrap(), "delete {filter}");
        assert_eq!(code(c.touch(&wp, &k).await), 2, "touch {filter}");
        // A UDF runs and may create the record; a put creates it.
        let args = [Value::from("n"), Value::from(3)];
        let v = c.execute_udf(&wp, &k, "counter", "increment", &args).await;
        assert_eq!(v.unwrap(), Some(Value::from(3)), "apply {filter}");
        assert_eq!(env.state(&k).await, Some((Value::from(3), 1)));
        let k2 = key(&format!("{filter}-put"));
        c.put(&wp, &k2, &[Bin::new("n", Value::from(1))])
            .await
            .unwrap();
        assert_eq!(env.state(&k2).await, Some((Value::from(1), 1)));
    }
    env.shutdown().await;
}
