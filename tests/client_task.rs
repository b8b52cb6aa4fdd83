//! The one client task: requests in, events out, against real sandbox servers.

use std::sync::Arc;
use std::time::Duration;

use aerospike::Value;
use asudf::client::{
    self, ApplyCall, ClientHandle, ConnectionState, Event, FailureKind, Outcome, RecordKey,
    Request, StreamItem, Target,
};
use asudf::sandbox::SandboxConfig;
use asudf::sandbox::local::Sharing;
use asudf::sandbox::server::{self, ServerOptions};
use tokio::sync::mpsc::UnboundedReceiver;

mod common;
use common::process::Served;

const COUNTER: &str = include_str!("../assets/counter.lua");

fn call(module: &str, function: &str, args: Vec<Value>) -> ApplyCall {
    ApplyCall {
        key: RecordKey {
            ns: "test".into(),
            set: Some("demo".into()),
            key: Value::from("k1"),
        },
        module: module.into(),
        function: function.into(),
        args,
        timeout_ms: None,
        send_key: false,
        with_record: true,
        with_logs: true,
    }
}

async fn connected(events: &mut UnboundedReceiver<Event>) -> client::ClusterInfo {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::Connection(ConnectionState::Connected(info)))) => return info,
            Ok(Some(_)) => {}
            other => panic!("no connection: {other:?}"),
        }
    }
}

async fn lost(events: &mut UnboundedReceiver<Event>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::Connection(ConnectionState::Lost { .. }))) => return,
            Ok(Some(_)) => {}
            other => panic!("the loss was not noticed: {other:?}"),
        }
    }
}

async fn run(
    handle: &ClientHandle,
    events: &mut UnboundedReceiver<Event>,
    request: Request,
) -> Result<Outcome, client::Failure> {
    // Through the event channel, as the console does.
    let id = handle.send(request);
    let (outcome, timing) = loop {
        match events.recv().await {
            Some(Event::Done {
                id: done,
                outcome,
                timing,
            }) if done == id => break (outcome, timing),
            Some(_) => {}
            None => panic!("the client task ended"),
        }
    };
    assert!(timing.queued <= timing.sent && timing.sent <= timing.answered);
    // An apply's own call is one part of the request (the reads around it
    // are the rest), and the UDF's run in the server one part of the call.
    if let Ok(Outcome::Applied {
        call, server_run, ..
    }) = &outcome
    {
        assert!(*call <= timing.round_trip(), "{call:?} {timing:?}");
        assert!(server_run.is_none_or(|run| run <= *call), "{server_run:?}");
    }
    outcome
}

fn memory_sandbox() -> Target {
    Target::in_memory(SandboxConfig::default())
}

#[tokio::test]
async fn counter_walkthrough_with_record_view_and_logs() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    let info = connected(&mut events).await;
    assert!(info.sandbox.is_some(), "the sandbox says what it is");
    assert_eq!(info.build, "8.1.1.2");
    assert_eq!(info.nodes.len(), 1);

    let source = format!(
        "{COUNTER}function noisy(rec)\n  info('hello %d', 7)\n  print('printed')\n  return 1\nend\n"
    );
    let registered = run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "counter".into(),
            source: source.clone(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(registered, Outcome::Registered { ref name, .. } if name == "counter.lua"));

    let first = run(
        &handle,
        &mut events,
        Request::Apply(call("counter", "increment", vec!["count".into(), 5.into()]).into()),
    )
    .await
    .unwrap();
    let Outcome::Applied {
        result,
        before,
        after,
        server_run,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(result, Value::Int(5));
    assert!(
        server_run.is_some(),
        "the sandbox tells how long the UDF ran"
    );
    assert_eq!(before, None, "the record did not exist before");
    assert_eq!(after.as_ref().unwrap().generation, 1);

    let second = run(
        &handle,
        &mut events,
        Request::Apply(call("counter", "increment", vec!["count".into(), 3.into()]).into()),
    )
    .await
    .unwrap();
    let Outcome::Applied {
        result,
        before,
        after,
        ..
    } = second
    else {
        panic!()
    };
    assert_eq!(result, Value::Int(8));
    let (before, after) = (before.unwrap(), after.unwrap());
    assert_eq!(before.bins, vec![("count".to_string(), Value::Int(5))]);
    assert_eq!(after.bins, vec![("count".to_string(), Value::Int(8))]);
    assert_eq!((before.generation, after.generation), (1, 2));

    let noisy = run(
        &handle,
        &mut events,
        Request::Apply(call("counter", "noisy", vec![]).into()),
    )
    .await
    .unwrap();
    let Outcome::Applied { logs, .. } = noisy else {
        panic!()
    };
    let lines: Vec<(String, String)> = logs.into_iter().map(|l| (l.level, l.text)).collect();
    assert_eq!(
        lines,
        vec![
            ("info".to_string(), "hello 7".to_string()),
            ("print".to_string(), "printed".to_string())
        ]
    );

    let got = run(
        &handle,
        &mut events,
        Request::GetModule {
            name: "counter".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        Outcome::Module {
            name: "counter.lua".into(),
            source
        }
    );
}

#[tokio::test]
async fn errors_carry_code_message_and_line() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    let bad = run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "bad.lua".into(),
            source: "function f(rec)\n  return 1 +\nend\n".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.kind, FailureKind::Compile);
    assert_eq!(bad.location, Some(("bad.lua".into(), 3)));
    assert_eq!(bad.message, "unexpected symbol near 'end'");

    run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "boom".into(),
            source: "function boom(rec)\n  warn('about to fail')\n  error('boom')\nend\n".into(),
        },
    )
    .await
    .unwrap();
    let failure = run(
        &handle,
        &mut events,
        Request::Apply(call("boom", "boom", vec![]).into()),
    )
    .await
    .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Server);
    assert_eq!(failure.code, 100);
    assert_eq!(
        failure.message,
        "/opt/aerospike/usr/udf/lua/boom.lua:3: boom"
    );
    assert_eq!(failure.location, Some(("boom.lua".into(), 3)));
    assert_eq!(
        failure.logs.len(),
        1,
        "logs written before the error are kept"
    );
}

#[tokio::test]
async fn requests_run_concurrently_and_can_be_cancelled() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "slow".into(),
            source: "function spin(rec)\n  local t = os.clock()\n  while os.clock() - t < 0.5 do end\n  return 1\nend\nfunction quick(rec)\n  return 2\nend\n".into(),
        },
    )
    .await
    .unwrap();
    let slow = handle.send(Request::Apply(call("slow", "spin", vec![]).into()));
    let mut quick_call = call("slow", "quick", vec![]);
    quick_call.key.key = Value::from("another");
    let quick = handle.send(Request::Apply(quick_call.into()));
    // The quick call answers while the slow one still runs.
    let mut first_done = None;
    while first_done.is_none() {
        if let Some(Event::Done { id, outcome, .. }) = events.recv().await {
            assert!(outcome.is_ok(), "{outcome:?}");
            first_done = Some(id);
        }
    }
    assert_eq!(first_done, Some(quick));
    handle.cancel(slow);
    loop {
        if let Some(Event::Done { id, outcome, .. }) = events.recv().await {
            assert_eq!(id, slow);
            assert_eq!(outcome.unwrap_err().kind, FailureKind::Cancelled);
            break;
        }
    }
}

#[tokio::test]
async fn a_lost_server_is_noticed_calls_fail_fast_and_it_reconnects() {
    let sandbox = asudf::sandbox::Sandbox::open(SandboxConfig::default()).unwrap();
    let mut server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let target = Target::Cluster {
        hosts: vec![aerospike::Host::new("127.0.0.1", server.addr().port())],
        policy: aerospike::ClientPolicy::default(),
    };
    let (handle, mut events) = client::spawn(target);
    connected(&mut events).await;
    server.shutdown().await;
    lost(&mut events).await;
    let started = std::time::Instant::now();
    let failure = run(&handle, &mut events, Request::ListModules)
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "fails fast");
    server.restart().await.unwrap();
    connected(&mut events).await;
    assert!(
        run(&handle, &mut events, Request::ListModules)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn takes_over_serving_when_the_serving_process_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&["--sandbox-dir", dir.path().to_str().unwrap()]);
    let target = Target::Sandbox {
        dir: Some(dir.path().to_path_buf()),
        config: SandboxConfig::default(),
        sharing: Sharing::Shared,
    };
    let (handle, mut events) = client::spawn(target);
    connected(&mut events).await;
    run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "counter".into(),
            source: COUNTER.into(),
        },
    )
    .await
    .unwrap();
    let apply = Request::Apply(call("counter", "increment", vec!["count".into(), 5.into()]).into());
    run(&handle, &mut events, apply.clone()).await.unwrap();

    drop(served); // SIGKILL: the other process is gone without a goodbye.
    lost(&mut events).await;
    connected(&mut events).await;
    // The same session goes on, on the same data, now served by this process.
    let Outcome::Applied { result, .. } = run(&handle, &mut events, apply).await.unwrap() else {
        panic!()
    };
    assert_eq!(result, Value::Int(10));
}

/// Requests run on the runtime the client task was started on, whatever
/// the sender's: the console sends from its own thread, which only reads
/// keys and draws, and its client side runs on a runtime of its own.
#[test]
fn requests_run_on_the_client_tasks_runtime() {
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (handle, mut events) = {
        let _on = client_runtime.enter();
        client::spawn(memory_sandbox())
    };
    // From here on this thread is in no runtime: it sends, then waits.
    let mut next_event = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match events.try_recv() {
                Ok(event) => return event,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    assert!(std::time::Instant::now() < deadline, "no event in 10 s");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("the client task ended: {e}"),
            }
        }
    };
    loop {
        match next_event() {
            Event::Connection(ConnectionState::Connected(_)) => break,
            Event::Connection(ConnectionState::Lost { reason }) => panic!("{reason}"),
            _ => {}
        }
    }
    let id = handle.send(Request::ListModules);
    loop {
        if let Event::Done {
            id: done, outcome, ..
        } = next_event()
            && done == id
        {
            assert!(matches!(outcome, Ok(Outcome::Modules(_))), "{outcome:?}");
            break;
        }
    }
}

/// The aggregation jobs the server lists: (status, records read).
async fn aggregation_jobs(
    handle: &ClientHandle,
    events: &mut UnboundedReceiver<Event>,
) -> Vec<(String, u64)> {
    let Ok(Outcome::Jobs(jobs)) = run(handle, events, Request::Jobs { id: None }).await else {
        panic!("the jobs list");
    };
    jobs.iter()
        .filter(|j| j.field("job-type") == Some("aggregation"))
        .map(|j| (j.status().to_string(), j.succeeded()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_aggregation_stops_on_the_server_too() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    // Each record costs the stream a while: the whole set, many seconds.
    let source = "local function spin(rec)\n  local x = 0\n  for i = 1, 2000000 do x = x + i end\n  return 1\nend\nlocal function add(a, b) return a + b end\nfunction run(stream)\n  return stream : map(spin) : reduce(add)\nend\n";
    run(
        &handle,
        &mut events,
        Request::PutModule {
            name: "slow.lua".into(),
            source: source.into(),
        },
    )
    .await
    .unwrap();
    for i in 0..1000 {
        let key = RecordKey {
            ns: "test".into(),
            set: Some("slow".into()),
            key: Value::Int(i),
        };
        let bins = vec![("n".to_string(), Value::Int(i))];
        let put = Request::PutRecord {
            key,
            bins,
            send_key: false,
        };
        run(&handle, &mut events, put).await.unwrap();
    }
    let aggregation = handle.send(Request::Aggregate(Box::new(
        asudf::client::query::AggregateCall {
            scope: asudf::client::query::Scope {
                ns: "test".into(),
                set: Some("slow".into()),
                where_clause: None,
            },
            module: "slow".into(),
            function: "run".into(),
            args: vec![],
            source: Some(source.into()),
            timeout_ms: None,
        },
    )));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !aggregation_jobs(&handle, &mut events)
        .await
        .iter()
        .any(|(status, read)| status == "active(ok)" && *read > 0)
    {
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.cancel(aggregation);
    // The server notices the client going and stops the job: it ends as
    // one whose client went away, long before it could have read every record.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let ended = loop {
        let jobs = aggregation_jobs(&handle, &mut events).await;
        if jobs.iter().all(|(status, _)| status.starts_with("done")) {
            break jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after the cancel: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, "done(abandoned-response-error)", "{ended:?}");
    assert!(ended[0].1 < 1000, "{ended:?}");
}

/// The partition a record of `test.SET` with integer key `key` falls in.
fn partition_of(set: &str, key: i64) -> u16 {
    let digest = aerospike::Key::new("test", set, Value::Int(key))
        .unwrap()
        .digest();
    u16::from_le_bytes([digest[0], digest[1]]) & 0x0FFF
}

/// Keys of `test.SET` for three partitions, in the order a server reads
/// them: one key, one key, then two keys. (Partitions below 64 come in the
/// same order whether read by partition or by shard and partition.)
fn keys_one_one_two(set: &str) -> [i64; 4] {
    let mut by_partition = std::collections::BTreeMap::<u16, Vec<i64>>::new();
    for key in 0..50_000 {
        let p = partition_of(set, key);
        if p < 64 {
            by_partition.entry(p).or_default().push(key);
        }
    }
    let mut partitions = by_partition.values();
    let a = partitions.next().unwrap()[0];
    let b = partitions.next().unwrap()[0];
    let c = partitions.find(|keys| keys.len() >= 2).unwrap();
    [a, b, c[0], c[1]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_both_halves_fail_the_first_failure_in_the_stream_is_reported() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    let source = "local function bad(a, b) error('reduce failed') end\nfunction run(s)\n  return s : map(function(r) return r.n end) : reduce(bad)\nend\n";
    let put = Request::PutModule {
        name: "race.lua".into(),
        source: source.into(),
    };
    run(&handle, &mut events, put).await.unwrap();
    // The server's reduce fails in the partition with two records; the
    // client's on the second value it reads. In `client`, two values come
    // before the server's failure; in `server`, one.
    for (set, skip_second, expected) in [
        (
            "client",
            false,
            "failed in the client: (client)/race.lua:1: reduce failed",
        ),
        (
            "server",
            true,
            "failed on the server: UDF: Execution Error 2 : /opt/aerospike/usr/udf/lua/race.lua:1: reduce failed",
        ),
    ] {
        let keys = keys_one_one_two(set);
        for (i, key) in keys.into_iter().enumerate() {
            if skip_second && i == 1 {
                continue;
            }
            let put = Request::PutRecord {
                key: RecordKey {
                    ns: "test".into(),
                    set: Some(set.into()),
                    key: Value::Int(key),
                },
                bins: vec![("n".to_string(), Value::Int(key))],
                send_key: false,
            };
            run(&handle, &mut events, put).await.unwrap();
        }
        // The same answer on every run, however the two halves' threads ran.
        for attempt in 0..20 {
            let aggregate = Request::Aggregate(Box::new(client::query::AggregateCall {
                scope: client::query::Scope {
                    ns: "test".into(),
                    set: Some(set.into()),
                    where_clause: None,
                },
                module: "race".into(),
                function: "run".into(),
                args: vec![],
                source: Some(source.into()),
                timeout_ms: None,
            }));
            let failure = run(&handle, &mut events, aggregate).await.unwrap_err();
            assert!(
                failure.message.contains(expected),
                "{set}, run {attempt}: {failure:?}"
            );
        }
    }
}

/// The runs of a series reported as items until its answer.
async fn series_runs(
    events: &mut UnboundedReceiver<Event>,
    id: client::RequestId,
    mut on_runs: impl FnMut(u32),
) -> (u32, Result<Outcome, client::Failure>) {
    let mut done = 0;
    loop {
        match events.recv().await {
            Some(Event::Item {
                id: of,
                item:
                    StreamItem::Runs {
                        round_trips,
                        failed,
                    },
            }) if of == id => {
                done += round_trips.len() as u32 + failed;
                on_runs(done);
            }
            Some(Event::Done {
                id: of, outcome, ..
            }) if of == id => return (done, outcome),
            Some(_) => {}
            None => panic!("the client task ended"),
        }
    }
}

/// A series runs its call back to back, reports every run, and answers as
/// its last run with the record before the first and after the last, and
/// the last run's logs.
#[tokio::test]
async fn a_series_reports_its_runs_and_the_record_around_them() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    // Each run logs its own number, so the last run's logs are told apart.
    let noisy = "function noisy(rec)\n  local n = (rec['n'] or 0) + 1\n  rec['n'] = n\n  \
                 if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end\n  \
                 info('run %d', n)\n  return n\nend\n";
    let source = format!("{COUNTER}{noisy}");
    let put = Request::PutModule {
        name: "counter".into(),
        source,
    };
    run(&handle, &mut events, put).await.unwrap();
    let counting = Arc::new(call("counter", "increment", vec!["count".into(), 2.into()]));
    let id = handle.send(Request::ApplySeries {
        call: counting,
        times: 5,
    });
    let (done, outcome) = series_runs(&mut events, id, |_| {}).await;
    assert_eq!(done, 5);
    let Ok(Outcome::Applied {
        result,
        before,
        after,
        ..
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(result, Value::Int(10));
    assert_eq!(before, None, "read before the first run");
    let after = after.unwrap();
    assert_eq!(after.generation, 5, "read after the last run");

    let mut noisy = call("counter", "noisy", vec![]);
    noisy.with_record = false;
    let id = handle.send(Request::ApplySeries {
        call: Arc::new(noisy),
        times: 3,
    });
    let (done, outcome) = series_runs(&mut events, id, |_| {}).await;
    assert_eq!(done, 3);
    let Ok(Outcome::Applied {
        logs,
        before: None,
        after: None,
        ..
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    let texts: Vec<_> = logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["run 3"], "the last run's logs");
}

/// A cancelled series stops between runs and answers with the runs it did:
/// every one of them reported, the record read after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_series_answers_with_the_runs_it_did() {
    let (handle, mut events) = client::spawn(memory_sandbox());
    connected(&mut events).await;
    let put = Request::PutModule {
        name: "counter".into(),
        source: COUNTER.into(),
    };
    run(&handle, &mut events, put).await.unwrap();
    let call = Arc::new(call("counter", "increment", vec!["count".into(), 1.into()]));
    let id = handle.send(Request::ApplySeries {
        call,
        times: u32::MAX,
    });
    let (done, outcome) = series_runs(&mut events, id, |_| handle.cancel(id)).await;
    assert!(done > 0);
    let Ok(Outcome::Applied { after, .. }) = outcome else {
        panic!("{outcome:?}")
    };
    // The run dropped in flight may have reached the server first.
    let count = match &after.unwrap().bins[..] {
        [(_, Value::Int(count))] => *count as u32,
        bins => panic!("{bins:?}"),
    };
    assert!(
        count == done || count == done + 1,
        "{count} after {done} runs"
    );
}
