//! Batch requests against the sandbox server, beyond the recorded cases:
//! through the `aerospike` crate, and as raw frames where no client sends
//! the shape (0 rows, an unknown namespace in a row).

use std::io::{Read, Write};
use std::time::Duration;

use aerospike::expressions::from_base64;
use aerospike::policy::{GenerationPolicy, RecordExistsAction};
use aerospike::{
    AdminPolicy, BatchDeletePolicy, BatchOperation, BatchPolicy, BatchUdfPolicy, BatchWritePolicy,
    Bin, Client, ClientPolicy, Expiration, Key, ResultCode, UdfLang, Value as AsValue, WritePolicy,
    operations,
};
use asudf::sandbox::server::message::{
    FIELD_BATCH_INDEX, FIELD_NAMESPACE, FIELD_SET, Field, INFO1_BATCH, INFO1_GET_ALL, INFO1_READ,
    INFO3_LAST, Message, MsgHeader,
};
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::store::digest;
use asudf::sandbox::{Sandbox, SandboxConfig, Value};

const MODULE: &str = r#"
function bump(rec)
    rec.n = (rec.n or 0) + 1
    if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end
    return rec.n
end

function keep_key(rec)
    rec.k = record.key(rec)
    rec.seen = 1
    aerospike:create(rec)
    return record.key(rec)
end

function work(rec, n)
    if not aerospike:exists(rec) then return "missing" end
    if rec.v % 5 == 0 then error("refused " .. rec.v) end
    rec.v = rec.v + n
    aerospike:update(rec)
    return rec.v
end
"#;

async fn start() -> (ServerHandle, Client) {
    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let hosts = format!("127.0.0.1:{}", server.addr().port());
    let client = Client::new(&ClientPolicy::default(), &hosts).await.unwrap();
    let task = client
        .register_udf(
            &AdminPolicy::default(),
            MODULE.as_bytes(),
            "bt.lua",
            UdfLang::Lua,
        )
        .await
        .unwrap();
    use aerospike::task::Task;
    task.wait_till_complete(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    (server, client)
}

fn key(set: &str, k: i64) -> Key {
    Key::new("test", set, AsValue::Int(k)).unwrap()
}

fn policy() -> BatchPolicy {
    let mut policy = BatchPolicy::default();
    policy.base_policy.total_timeout = 60_000;
    policy.base_policy.socket_timeout = 60_000;
    policy.base_policy.max_retries = 0;
    policy
}

fn stored(server: &ServerHandle, set: &str, k: i64) -> Option<asudf::sandbox::Record> {
    let d = digest(Some(set), &Value::Int(k)).unwrap();
    server.sandbox().store().get("test", &d)
}

fn code(op: &BatchOperation) -> Option<ResultCode> {
    op.result_code()
}

async fn put(client: &Client, key: &Key, bins: &[Bin]) {
    client
        .put(&WritePolicy::default(), key, bins)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_three_times_runs_three_times() {
    let (server, client) = start().await;
    let udf = BatchUdfPolicy::default();
    let mut ops: Vec<_> = (0..3)
        .map(|_| BatchOperation::udf(&udf, key("b", 1), "bt", "bump", Vec::<AsValue>::new()))
        .collect();
    client.batch(&policy(), &mut ops).await.unwrap();
    let values: Vec<_> = ops
        .iter()
        .map(|op| op.record().unwrap().bins["SUCCESS"].clone())
        .collect();
    assert_eq!(values, [AsValue::Int(1), AsValue::Int(2), AsValue::Int(3)]);
    assert_eq!(stored(&server, "b", 1).unwrap().generation, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_key_batch_is_a_single_command_and_works() {
    let (server, client) = start().await;
    let mut ops = vec![BatchOperation::udf(
        &BatchUdfPolicy::default(),
        key("b", 9),
        "bt",
        "bump",
        Vec::<AsValue>::new(),
    )];
    client.batch(&policy(), &mut ops).await.unwrap();
    assert_eq!(ops[0].record().unwrap().bins["SUCCESS"], AsValue::Int(1));
    assert!(stored(&server, "b", 9).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn send_key_rows_show_the_key_to_the_udf_and_store_it() {
    let (server, client) = start().await;
    let udf = BatchUdfPolicy {
        send_key: true,
        ..BatchUdfPolicy::default()
    };
    let mut ops: Vec<_> = [4, 5]
        .iter()
        .map(|k| BatchOperation::udf(&udf, key("sk", *k), "bt", "keep_key", Vec::<AsValue>::new()))
        .collect();
    client.batch(&policy(), &mut ops).await.unwrap();
    for (op, k) in ops.iter().zip([4, 5]) {
        assert_eq!(op.record().unwrap().bins["SUCCESS"], AsValue::Int(k));
        let record = stored(&server, "sk", k).unwrap();
        assert_eq!(record.key, Some(Value::Int(k)));
        assert_eq!(record.bins[0], ("k".to_string(), Value::Int(k)));
    }
    // Without the key, the UDF sees none and nothing is stored.
    let mut ops: Vec<_> = [6, 7]
        .iter()
        .map(|k| {
            BatchOperation::udf(
                &BatchUdfPolicy::default(),
                key("sk", *k),
                "bt",
                "keep_key",
                Vec::<AsValue>::new(),
            )
        })
        .collect();
    client.batch(&policy(), &mut ops).await.unwrap();
    assert_eq!(ops[0].record().unwrap().bins["SUCCESS"], AsValue::Nil);
    let record = stored(&server, "sk", 6).unwrap();
    assert_eq!(record.key, None);
    assert_eq!(record.bins, vec![("seen".to_string(), Value::Int(1))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn write_rows_honour_generation_and_ttl() {
    let (server, client) = start().await;
    put(&client, &key("g", 1), &[Bin::new("a", AsValue::Int(1))]).await;
    let wrong_gen = BatchWritePolicy {
        generation_policy: GenerationPolicy::ExpectGenEqual,
        generation: 5,
        ..BatchWritePolicy::default()
    };
    let right_gen = BatchWritePolicy {
        generation_policy: GenerationPolicy::ExpectGenEqual,
        generation: 1,
        ..BatchWritePolicy::default()
    };
    let ttl = BatchWritePolicy {
        expiration: Expiration::Seconds(1000),
        ..BatchWritePolicy::default()
    };
    let b = Bin::new("b", AsValue::Int(2));
    let mut ops = vec![
        BatchOperation::write(&wrong_gen, key("g", 1), [operations::put(&b)]),
        BatchOperation::write(&ttl, key("g", 2), [operations::put(&b)]),
        BatchOperation::write(&right_gen, key("g", 1), [operations::put(&b)]),
    ];
    client.batch(&policy(), &mut ops).await.unwrap();
    assert_eq!(code(&ops[0]), Some(ResultCode::GenerationError));
    assert_eq!(code(&ops[1]), Some(ResultCode::Ok));
    assert_eq!(code(&ops[2]), Some(ResultCode::Ok));
    // The wrong generation left the record alone; the right one wrote once.
    let g1 = stored(&server, "g", 1).unwrap();
    assert_eq!(g1.generation, 2);
    assert_eq!(g1.bins.len(), 2);
    let g2 = stored(&server, "g", 2).unwrap();
    let now = asudf::sandbox::store::now_cf_secs();
    assert!(
        (now + 990..=now + 1000).contains(&g2.void_time),
        "void time {} vs now {now}",
        g2.void_time
    );
    assert!(ops[1].record().unwrap().time_to_live().is_some());
}

/// Needs the expression evaluator: a row's own filter replaces the
/// batch-wide one, and one the server cannot build fails that row only.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_rows_own_filter_replaces_the_batch_wide_one() {
    let (server, client) = start().await;
    put(&client, &key("f", 1), &[Bin::new("a", AsValue::Int(1))]).await;
    put(&client, &key("f", 2), &[Bin::new("a", AsValue::Int(2))]).await;
    let a_is = |wire: &str| BatchWritePolicy {
        filter_expression: Some(from_base64(wire).unwrap()),
        ..BatchWritePolicy::default()
    };
    let a_is_2 = a_is("kwGTUQKhYQI="); // eq(bin(INT, "a"), 2)
    let a_is_x = a_is("kwGTUQKhYaIDeA=="); // eq(bin(INT, "a"), "x"): cannot be built
    let b = Bin::new("b", AsValue::Int(1));
    let mut batch = policy();
    batch.base_policy.filter_expression = Some(from_base64("kwGTUQKhYQE=").unwrap()); // a == 1
    let mut ops = vec![
        BatchOperation::write(
            &BatchWritePolicy::default(),
            key("f", 1),
            [operations::put(&b)],
        ),
        BatchOperation::write(
            &BatchWritePolicy::default(),
            key("f", 2),
            [operations::put(&b)],
        ),
        BatchOperation::write(&a_is_2, key("f", 2), [operations::put(&b)]),
        BatchOperation::write(&a_is_x, key("f", 1), [operations::put(&b)]),
    ];
    client.batch(&batch, &mut ops).await.unwrap();
    let codes: Vec<_> = ops.iter().map(code).collect();
    assert_eq!(
        codes,
        [
            Some(ResultCode::Ok),
            Some(ResultCode::FilteredOut),
            Some(ResultCode::Ok),
            Some(ResultCode::ParameterError),
        ]
    );
    assert_eq!(stored(&server, "f", 1).unwrap().generation, 2);
    assert_eq!(stored(&server, "f", 2).unwrap().generation, 2);
}

/// The same UDF over the same data: one batch over set `one`, single
/// applies over set `two`. Every key answers alike, and the records end
/// alike.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_apply_answers_as_single_applies_do() {
    let (server, client) = start().await;
    const N: i64 = 1000;
    for set in ["one", "two"] {
        for k in (0..N).filter(|k| k % 7 != 0) {
            put(&client, &key(set, k), &[Bin::new("v", AsValue::Int(k))]).await;
        }
    }
    let args = vec![AsValue::Int(3)];
    let udf = BatchUdfPolicy::default();
    let mut ops: Vec<_> = (0..N)
        .map(|k| BatchOperation::udf(&udf, key("one", k), "bt", "work", args.clone()))
        .collect();
    client.batch(&policy(), &mut ops).await.unwrap();
    let batch: Vec<(u8, AsValue)> = ops
        .iter()
        .map(|op| {
            let code = u8::from(op.result_code().unwrap());
            let bins = &op.record().unwrap().bins;
            let value = bins.get("SUCCESS").or(bins.get("FAILURE")).unwrap().clone();
            (code, value)
        })
        .collect();
    let mut single = Vec::new();
    for k in 0..N {
        let answer = client
            .execute_udf(&WritePolicy::default(), &key("two", k), "bt", "work", &args)
            .await;
        single.push(match answer {
            Ok(v) => (0, v.unwrap_or(AsValue::Nil)),
            Err(e) => (e.result_code() as u8, AsValue::String(e.base_message())),
        });
    }
    assert_eq!(batch, single);
    assert!(batch.iter().any(|(code, _)| *code == 100));
    assert!(batch.contains(&(0, AsValue::from("missing"))));
    for k in 0..N {
        let (one, two) = (stored(&server, "one", k), stored(&server, "two", k));
        assert_eq!(one.is_some(), two.is_some(), "key {k}");
        if let (Some(one), Some(two)) = (one, two) {
            assert_eq!(
                (one.bins, one.generation),
                (two.bins, two.generation),
                "key {k}"
            );
        }
    }
}

/// Refused write rows answer their code and leave their record as it was
/// (or absent); the other rows of the batch run.
#[tokio::test(flavor = "multi_thread")]
async fn replace_rows_with_ops_that_need_the_old_bins_are_4() {
    let (server, client) = start().await;
    put(&client, &key("rp", 1), &[Bin::new("n", AsValue::Int(1))]).await;
    let before = stored(&server, "rp", 1);
    let replace = BatchWritePolicy {
        record_exists_action: RecordExistsAction::Replace,
        ..BatchWritePolicy::default()
    };
    let n = Bin::new("n", AsValue::Int(1));
    let nil = Bin::new("n", AsValue::Nil);
    let mut ops = vec![
        BatchOperation::write(&replace, key("rp", 1), [operations::add(&n)]),
        BatchOperation::write(&replace, key("rp", 1), [operations::put(&nil)]),
        BatchOperation::write(&replace, key("rp", 1), [operations::touch()]),
        BatchOperation::write(&replace, key("rp", 2), [operations::add(&n)]),
        BatchOperation::write(&replace, key("rp", 3), [operations::put(&n)]),
    ];
    client.batch(&policy(), &mut ops).await.unwrap();
    let codes: Vec<_> = ops.iter().map(code).collect();
    let param = Some(ResultCode::ParameterError);
    assert_eq!(codes, [param, param, param, param, Some(ResultCode::Ok)]);
    assert_eq!(stored(&server, "rp", 1), before);
    assert!(stored(&server, "rp", 2).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_row_over_the_record_size_limit_is_13() {
    let (server, client) = start().await;
    put(&client, &key("big", 1), &[Bin::new("a", AsValue::Int(1))]).await;
    let before = stored(&server, "big", 1);
    let big = Bin::new("b", AsValue::from("x".repeat(1 << 20)));
    let small = Bin::new("b", AsValue::Int(2));
    let wp = BatchWritePolicy::default();
    let mut ops = vec![
        BatchOperation::write(&wp, key("big", 1), [operations::put(&big)]),
        BatchOperation::write(&wp, key("big", 2), [operations::put(&big)]),
        BatchOperation::write(&wp, key("big", 3), [operations::put(&small)]),
    ];
    client.batch(&policy(), &mut ops).await.unwrap();
    let codes: Vec<_> = ops.iter().map(code).collect();
    let too_big = Some(ResultCode::RecordTooBig);
    assert_eq!(codes, [too_big, too_big, Some(ResultCode::Ok)]);
    assert_eq!(stored(&server, "big", 1), before);
    assert!(stored(&server, "big", 2).is_none());
}

/// CE refuses durable deletes (25): the records stay.
#[tokio::test(flavor = "multi_thread")]
async fn durable_delete_rows_are_enterprise_only() {
    let (server, client) = start().await;
    for k in [1, 2] {
        put(&client, &key("dd", k), &[Bin::new("a", AsValue::Int(k))]).await;
    }
    let before = [stored(&server, "dd", 1), stored(&server, "dd", 2)];
    let durable = BatchDeletePolicy {
        durable_delete: true,
        ..BatchDeletePolicy::default()
    };
    let durable_write = BatchWritePolicy {
        durable_delete: true,
        ..BatchWritePolicy::default()
    };
    let nil = Bin::new("a", AsValue::Nil);
    let mut ops = vec![
        BatchOperation::delete(&durable, key("dd", 1)),
        BatchOperation::delete(&durable, key("dd", 2)),
        BatchOperation::write(&durable_write, key("dd", 1), [operations::put(&nil)]),
    ];
    client.batch(&policy(), &mut ops).await.unwrap();
    let codes: Vec<_> = ops.iter().map(code).collect();
    assert_eq!(codes, [Some(ResultCode::EnterpriseOnly); 3]);
    assert_eq!([stored(&server, "dd", 1), stored(&server, "dd", 2)], before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bin_delete_rows_on_missing_records_are_2() {
    let (server, client) = start().await;
    put(&client, &key("nil", 1), &[Bin::new("a", AsValue::Int(1))]).await;
    let nil = Bin::new("a", AsValue::Nil);
    let wp = BatchWritePolicy::default();
    let mut ops = vec![
        BatchOperation::write(&wp, key("nil", 2), [operations::put(&nil)]),
        BatchOperation::write(&wp, key("nil", 3), [operations::delete()]),
        BatchOperation::write(&wp, key("nil", 1), [operations::put(&nil)]),
    ];
    client.batch(&policy(), &mut ops).await.unwrap();
    let codes: Vec<_> = ops.iter().map(code).collect();
    let missing = Some(ResultCode::KeyNotFoundError);
    assert_eq!(codes, [missing, missing, Some(ResultCode::Ok)]);
    assert!(stored(&server, "nil", 2).is_none());
    assert!(stored(&server, "nil", 3).is_none());
    // The existing record lost its last bin: deleted.
    assert!(stored(&server, "nil", 1).is_none());
}

// Raw frames: shapes no client sends.

fn raw_batch(server: &ServerHandle, rows: &[(u32, &str, &str)]) -> Vec<Message> {
    let mut index = (rows.len() as u32).to_be_bytes().to_vec();
    index.push(0x0d);
    for (i, ns, k) in rows {
        index.extend(i.to_be_bytes());
        index.extend(digest(Some("r"), &Value::Str((*k).into())).unwrap());
        // Flags 0x0a: info2/info3 and record_ttl follow; a read of all bins.
        index.extend([0x0a, INFO1_READ | INFO1_GET_ALL, 0, 0, 0, 0, 0, 0]);
        let fields = [(FIELD_NAMESPACE, ns.as_bytes()), (FIELD_SET, &b"r"[..])];
        index.extend((fields.len() as u16).to_be_bytes());
        index.extend(0u16.to_be_bytes());
        for (ty, data) in fields {
            index.extend((data.len() as u32 + 1).to_be_bytes());
            index.push(ty);
            index.extend(data);
        }
    }
    let msg = Message {
        header: MsgHeader {
            info1: INFO1_BATCH,
            transaction_ttl: 1000,
            ..MsgHeader::default()
        },
        fields: vec![Field {
            ty: FIELD_BATCH_INDEX,
            data: index,
        }],
        ops: Vec::new(),
    };
    let mut socket = std::net::TcpStream::connect(server.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = msg.encode();
    let mut frame = vec![2, 3];
    frame.extend(&(body.len() as u64).to_be_bytes()[2..]);
    frame.extend(body);
    socket.write_all(&frame).unwrap();
    let mut replies = Vec::new();
    loop {
        let mut header = [0u8; 8];
        socket.read_exact(&mut header).unwrap();
        let len = u64::from_be_bytes([
            0, 0, header[2], header[3], header[4], header[5], header[6], header[7],
        ]);
        let mut body = vec![0u8; len as usize];
        socket.read_exact(&mut body).unwrap();
        let reply = Message::parse(&body).unwrap();
        let last = reply.header.info3 & INFO3_LAST != 0;
        replies.push(reply);
        if last {
            return replies;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_rows_and_an_unknown_namespace_refuse_the_whole_batch() {
    let (server, client) = start().await;
    let k1 = Key::new("test", "r", AsValue::from("k1")).unwrap();
    put(&client, &k1, &[Bin::new("a", AsValue::Int(1))]).await;
    let refusal = |replies: &[Message]| {
        replies.len() == 1
            && replies[0].header.info3 == INFO3_LAST
            && replies[0].header.result_code == 4
    };
    assert!(refusal(&raw_batch(&server, &[])));
    let mixed = raw_batch(&server, &[(0, "test", "k1"), (1, "nons", "k2")]);
    assert!(refusal(&mixed), "{mixed:?}");
    // The same rows without the stranger are answered.
    let fine = raw_batch(&server, &[(0, "test", "k1"), (1, "test", "k2")]);
    let codes: Vec<_> = fine
        .iter()
        .map(|m| (m.header.transaction_ttl, m.header.result_code))
        .collect();
    assert_eq!(codes, [(0, 0), (1, 2), (0, 0)]);
    assert_eq!(fine[0].header.generation, 1);
}

/// A kB figure from `/proc/PID/status`.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rows share the request's one copy of the arglist and their replies
/// are streamed: a 5,000-key batch apply with a 150,000-byte argument keeps
/// the server's peak RSS within 32 MiB of its RSS before the call.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_batch_apply_keeps_the_servers_memory_flat() {
    use std::io::BufRead;
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_asudf"))
            .args(["serve", "--memory", "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let client = Client::new(&ClientPolicy::default(), &addr).await.unwrap();
    let task = client
        .register_udf(
            &AdminPolicy::default(),
            b"function len(rec, s) return #s end",
            "big.lua",
            UdfLang::Lua,
        )
        .await
        .unwrap();
    use aerospike::task::Task;
    task.wait_till_complete(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let run = |keys: i64| {
        let args = vec![AsValue::from("x".repeat(150_000))];
        let udf = BatchUdfPolicy::default();
        let mut ops: Vec<_> = (0..keys)
            .map(|k| BatchOperation::udf(&udf, key("m", k), "big", "len", args.clone()))
            .collect();
        let client = &client;
        async move {
            client.batch(&policy(), &mut ops).await.unwrap();
            ops
        }
    };
    // Warm the connection and the module's Lua state first.
    run(10).await;
    let before = status_kb(pid, "VmRSS:");
    // Resets the peak (VmHWM) to the current RSS.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let ops = run(5000).await;
    let peak = status_kb(pid, "VmHWM:");
    assert!(
        ops.iter()
            .all(|op| op.record().unwrap().bins["SUCCESS"] == AsValue::Int(150_000))
    );
    let grew_mib = peak.saturating_sub(before) as f64 / 1024.0;
    eprintln!("RSS before {before} kB, peak {peak} kB: +{grew_mib:.1} MiB");
    assert!(grew_mib <= 32.0, "peak RSS grew by {grew_mib:.1} MiB");
}
