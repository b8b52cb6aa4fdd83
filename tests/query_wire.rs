//! The query path through the `aerospike` crate and raw sockets: partition
//! filters and resuming, index kinds, background jobs and `query-abort`,
//! clients that go away, refusals (memory with a slow reader: query_memory.rs).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aerospike::{
    AdminPolicy, Bin, Bins, Client, ClientPolicy, CollectionIndexType, IndexType, Key,
    PartitionFilter, QueryPolicy, Statement, Task, Value, WritePolicy, query::Filter,
};
use futures::StreamExt;

use asudf::sandbox::server::message::{Field, Message};
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use common::frames::query_body;

struct Setup {
    server: ServerHandle,
    client: Client,
}

async fn setup(config: SandboxConfig, opts: ServerOptions) -> Setup {
    let server = server::start(Sandbox::open(config).unwrap(), opts)
        .await
        .unwrap();
    let hosts = format!("127.0.0.1:{}", server.addr().port());
    let client = Client::new(&ClientPolicy::default(), &hosts).await.unwrap();
    Setup { server, client }
}

async fn info(client: &Client, command: &str) -> String {
    let reply = client
        .info(&AdminPolicy::default(), &[command])
        .await
        .unwrap();
    reply.get(command).cloned().unwrap_or_default()
}

async fn put_n(client: &Client, set: &str, n: i64) {
    for i in 0..n {
        let key = Key::new("test", set, Value::Int(i)).unwrap();
        let bins = [
            Bin::new("n", Value::Int(i)),
            Bin::new(
                "l",
                Value::List(vec![Value::Int(i % 3), Value::Int(i % 3 + 10)]),
            ),
        ];
        client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .unwrap();
    }
}

/// Every record a query yields, as `n` → generation; duplicates panic.
async fn run(
    client: &Client,
    policy: &QueryPolicy,
    filter: PartitionFilter,
    stmt: Statement,
) -> (BTreeMap<i64, u32>, Option<PartitionFilter>) {
    let records = client.query(policy, filter, stmt).await.unwrap();
    let mut stream = records.clone().into_stream();
    let mut seen = BTreeMap::new();
    while let Some(r) = stream.next().await {
        let r = r.unwrap();
        let n = match r.bins.get("n") {
            Some(Value::Int(n)) => *n,
            other => panic!("no n: {other:?}"),
        };
        assert!(seen.insert(n, r.generation).is_none(), "{n} sent twice");
    }
    (seen, records.partition_filter())
}

fn stmt(set: &str) -> Statement {
    Statement::new("test", set, Bins::All)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_ranges_and_resumed_pages_give_each_record_once() {
    let s = setup(SandboxConfig::default(), ServerOptions::default()).await;
    put_n(&s.client, "p", 300).await;
    put_n(&s.client, "other", 20).await;
    let all = run(
        &s.client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        stmt("p"),
    )
    .await
    .0;
    assert_eq!(all.len(), 300);

    // Two halves of the partition space add up to the whole, with no overlap.
    let low = run(
        &s.client,
        &QueryPolicy::default(),
        PartitionFilter::by_range(0, 2048),
        stmt("p"),
    )
    .await
    .0;
    let high = run(
        &s.client,
        &QueryPolicy::default(),
        PartitionFilter::by_range(2048, 2048),
        stmt("p"),
    )
    .await
    .0;
    assert!(!low.is_empty() && !high.is_empty());
    assert_eq!(low.len() + high.len(), 300);
    let pid = |n: i64| {
        let d = Key::new("test", "p", Value::Int(n)).unwrap().digest();
        (u16::from_le_bytes([d[0], d[1]]) & 0xfff) as usize
    };
    assert!(low.keys().all(|n| pid(*n) < 2048));

    // Pages of 7 through the crate's cursor (digest resume points).
    for with_index in [false, true] {
        if with_index {
            assert_eq!(
                info(
                    &s.client,
                    "sindex-create:namespace=test;set=p;indexname=p_n;bin=n;type=NUMERIC"
                )
                .await,
                "ok"
            );
        }
        let mut filter = PartitionFilter::all();
        let mut union = BTreeMap::new();
        let mut pages = 0;
        loop {
            let policy = QueryPolicy {
                max_records: 7,
                ..QueryPolicy::default()
            };
            let mut statement = stmt("p");
            if with_index {
                statement.set_filter(Filter::range("n", 10, 250));
            }
            let (page, cursor) = run(&s.client, &policy, filter, statement).await;
            assert!(page.len() <= 7);
            for (n, g) in page {
                assert!(union.insert(n, g).is_none(), "{n} came in two pages");
            }
            pages += 1;
            filter = cursor.unwrap();
            if filter.done() || pages > 100 {
                break;
            }
        }
        let want = if with_index { 241 } else { 300 };
        assert_eq!(union.len(), want, "with index: {with_index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_geo_and_metadata_queries() {
    let s = setup(SandboxConfig::default(), ServerOptions::default()).await;
    put_n(&s.client, "c", 30).await;
    let task = s
        .client
        .create_index_on_bin(
            &AdminPolicy::default(),
            "test",
            "c",
            "l",
            "c_l",
            IndexType::Numeric,
            CollectionIndexType::List,
            None,
        )
        .await
        .unwrap();
    task.wait_till_complete(None).await.unwrap();
    let mut st = stmt("c");
    st.set_filter(Filter::contains("l", 11, CollectionIndexType::List));
    let got = run(
        &s.client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        st,
    )
    .await
    .0;
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..30).filter(|i| i % 3 == 1).collect::<Vec<_>>()
    );
    // A range over both elements of a list returns the record once.
    let mut st = stmt("c");
    st.set_filter(Filter::contains_range(
        "l",
        0,
        20,
        CollectionIndexType::List,
    ));
    assert_eq!(
        run(
            &s.client,
            &QueryPolicy::default(),
            PartitionFilter::all(),
            st
        )
        .await
        .0
        .len(),
        30
    );
    // Default-type equality on a bin with only a list index: 201.
    let mut st = stmt("c");
    st.set_filter(Filter::equal("l", 1));
    let rs = s
        .client
        .query(&QueryPolicy::default(), PartitionFilter::all(), st)
        .await
        .unwrap();
    let first = rs.into_stream().next().await.unwrap();
    assert_eq!(first.unwrap_err().result_code(), 201);

    // Geo: points within a circle, regions containing a point.
    for (i, (lng, lat)) in [(0.0, 0.0), (0.5, 0.5), (10.0, 10.0)].iter().enumerate() {
        let key = Key::new("test", "geo", Value::Int(i as i64)).unwrap();
        let point = format!(r#"{{"type": "Point", "coordinates": [{lng}, {lat}]}}"#);
        let bins = [
            Bin::new("n", Value::Int(i as i64)),
            Bin::new("loc", Value::GeoJson(point)),
        ];
        s.client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .unwrap();
    }
    assert_eq!(
        info(
            &s.client,
            "sindex-create:namespace=test;set=geo;indexname=g;bin=loc;type=GEO2DSPHERE"
        )
        .await,
        "ok"
    );
    let mut st = stmt("geo");
    st.set_filter(Filter::geo_within_radius("loc", 0.0, 0.0, 100_000.0));
    let near = run(
        &s.client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        st,
    )
    .await
    .0;
    assert_eq!(near.keys().copied().collect::<Vec<_>>(), vec![0, 1]);

    // No bins: records come with metadata only.
    let st = Statement::new("test", "c", Bins::None);
    let rs = s
        .client
        .query(&QueryPolicy::default(), PartitionFilter::all(), st)
        .await
        .unwrap();
    let records: Vec<_> = rs.into_stream().collect().await;
    assert_eq!(records.len(), 30);
    assert!(records.iter().all(|r| r.as_ref().unwrap().bins.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_follow_every_write() {
    let s = setup(SandboxConfig::default(), ServerOptions::default()).await;
    put_n(&s.client, "w", 10).await;
    assert_eq!(
        info(
            &s.client,
            "sindex-create:namespace=test;set=w;indexname=w_n;bin=n;type=NUMERIC"
        )
        .await,
        "ok"
    );
    let count = |lo, hi| {
        let client = &s.client;
        async move {
            let mut st = stmt("w");
            st.set_filter(Filter::range("n", lo, hi));
            run(client, &QueryPolicy::default(), PartitionFilter::all(), st)
                .await
                .0
                .len()
        }
    };
    assert_eq!(count(0, 9).await, 10);
    // A put moves a record out of the range, a delete drops one.
    let key = |i: i64| Key::new("test", "w", Value::Int(i)).unwrap();
    s.client
        .put(
            &WritePolicy::default(),
            &key(0),
            &[Bin::new("n", Value::Int(100))],
        )
        .await
        .unwrap();
    s.client
        .delete(&WritePolicy::default(), &key(1))
        .await
        .unwrap();
    assert_eq!(count(0, 9).await, 8);
    assert_eq!(count(100, 100).await, 1);
    // A truncate empties the index.
    assert_eq!(info(&s.client, "truncate:namespace=test;set=w").await, "ok");
    assert_eq!(count(0, 1000).await, 0);
    let stat = info(&s.client, "sindex-stat:namespace=test;indexname=w_n").await;
    assert!(
        stat.starts_with("entries=0;") && stat.contains("load_pct=100"),
        "{stat}"
    );
    assert_eq!(info(&s.client, "sindex/test/w_n").await, stat);
    assert_eq!(
        info(&s.client, "sindex-exists:namespace=test;indexname=w_n").await,
        "true"
    );
    assert_eq!(
        info(&s.client, "sindex-delete:namespace=test;indexname=w_n").await,
        "ok"
    );
    assert_eq!(
        info(&s.client, "sindex-exists:namespace=test;indexname=w_n").await,
        "false"
    );
    assert_eq!(
        info(&s.client, "sindex-stat:namespace=test;indexname=w_n").await,
        "ERROR:201:no index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_definitions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    {
        let s = setup(config(), ServerOptions::default()).await;
        put_n(&s.client, "r", 5).await;
        let created = info(
            &s.client,
            "sindex-create:namespace=test;set=r;indexname=r_n;bin=n;type=NUMERIC",
        )
        .await;
        assert_eq!(created, "ok");
        s.client.close().await.unwrap();
    }
    let s = setup(config(), ServerOptions::default()).await;
    assert_eq!(
        info(&s.client, "sindex-list:ns=test").await,
        "ns=test:indexname=r_n:set=r:bin=n:type=numeric:indextype=default:context=null:exp=null:state=RW"
    );
    let mut st = stmt("r");
    st.set_filter(Filter::range("n", 1, 3));
    assert_eq!(
        run(
            &s.client,
            &QueryPolicy::default(),
            PartitionFilter::all(),
            st
        )
        .await
        .0
        .len(),
        3
    );
}

/// Reads one proto frame.
fn read_frame(sock: &mut std::net::TcpStream) -> Vec<u8> {
    let mut header = [0u8; 8];
    sock.read_exact(&mut header).unwrap();
    let len = (u64::from_be_bytes(header) & 0xFFFF_FFFF_FFFF) as usize;
    let mut body = vec![0; len];
    sock.read_exact(&mut body).unwrap();
    body
}

async fn job_status(client: &Client, trid: u64) -> String {
    let show = info(client, &format!("query-show:id={trid}")).await;
    show.split(':')
        .find_map(|kv| kv.strip_prefix("status="))
        .unwrap_or(&show)
        .to_string()
}

async fn wait_status(client: &Client, trid: u64, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = job_status(client, trid).await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {trid}: {status}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_a_client_that_goes_away() {
    let s = setup(SandboxConfig::default(), ServerOptions::default()).await;
    put_n(&s.client, "q", 3000).await;
    let addr = s.server.addr();

    // Background ops (WRITE, no UDF) and a filter expression: 16 at start, no LAST.
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.write_all(&query_body("q", 1, vec![], 1)).unwrap();
    let reply = Message::parse(&read_frame(&mut sock)).unwrap();
    assert_eq!((reply.header.result_code, reply.header.info3), (16, 0));
    // A filter expression that is not one msgpack value: 4 at start.
    let filter = Field {
        ty: 43,
        data: vec![0xc1],
    };
    sock.write_all(&query_body("q", 2, vec![filter], 0))
        .unwrap();
    let reply = Message::parse(&read_frame(&mut sock)).unwrap();
    assert_eq!((reply.header.result_code, reply.header.info3), (4, 0));

    // A scan whose client reads one frame and leaves. Its records (12 MB)
    // outgrow what the two sockets can hold (here about 4 MB), so the
    // server is still writing when the client goes; a small scan can be
    // written whole before that and end well.
    let wide = Value::String("w".repeat(4096));
    for i in 0..3000 {
        let key = Key::new("test", "wide", Value::Int(i)).unwrap();
        let bins = [Bin::new("w", wide.clone())];
        s.client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .unwrap();
    }
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(&query_body("wide", 77, vec![], 0)).unwrap();
    let first = read_frame(&mut sock);
    assert!(!first.is_empty());
    drop(sock);
    wait_status(&s.client, 77, "done(abandoned-response-error)").await;
    assert!(!s.server.queries().jobs.any_active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_jobs_run_apart_and_can_be_aborted() {
    let opts = ServerOptions {
        background_max_rps: 200,
        ..ServerOptions::default()
    };
    let s = setup(SandboxConfig::default(), opts).await;
    let source = "function bump(r) r.y = (r.y or 0) + 1; aerospike:update(r) end";
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(source)
    };
    let reply = info(
        &s.client,
        &format!(
            "udf-put:filename=bg.lua;content={b64};content-len={};udf-type=LUA;",
            b64.len()
        ),
    )
    .await;
    assert_eq!(reply, "ok");
    put_n(&s.client, "bg", 400).await;

    // A where clause no index fits: 201 at start.
    let mut policy = WritePolicy::default();
    let mut st = stmt("bg");
    st.set_filter(Filter::range("n", 0, 10));
    let refused = s
        .client
        .query_execute_udf(&policy, st, "bg", "bump", &[])
        .await;
    assert_eq!(refused.err().map(|e| e.result_code()), Some(201));

    let task = s
        .client
        .query_execute_udf(&policy, stmt("bg"), "bg", "bump", &[])
        .await
        .unwrap();
    let id = task.task_id();
    // At 200 records/s the 400 records take two seconds: the job is active
    // and foreground requests are answered meanwhile.
    let key = Key::new("test", "bg", Value::Int(399)).unwrap();
    s.client
        .get(&Default::default(), &key, Bins::All)
        .await
        .unwrap();
    assert_eq!(job_status(&s.client, id).await, "active(ok)");
    assert_eq!(info(&s.client, &format!("query-abort:id={id}")).await, "ok");
    wait_status(&s.client, id, "done(user-aborted)").await;
    assert_eq!(
        info(&s.client, &format!("query-abort:trid={id}")).await,
        "ERROR:2:id not active"
    );
    let show = info(&s.client, &format!("query-show:id={id}")).await;
    let field = |name: &str| {
        show.split(':')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(field("recs-succeeded") < 400, "{show}");
    assert_eq!(field("rps"), 200);
    assert!(show.contains(":job-progress=100.00:"), "{show}");

    // A job asking for more than the server allows.
    policy.records_per_second = 500;
    let refused = s
        .client
        .query_execute_udf(&policy, stmt("bg"), "bg", "bump", &[])
        .await;
    assert_eq!(refused.err().map(|e| e.result_code()), Some(4));
}
