//! The sandbox server driven by the `aerospike` crate (and raw sockets for
//! what no client API sends): connect, UDF management, apply, record
//! commands, errors, timeouts, login, TLS, concurrency and restart.

use std::sync::Arc;
use std::time::Duration;

use aerospike::policy::{AuthMode, CommitLevel, GenerationPolicy, RecordExistsAction};
use aerospike::{
    AdminPolicy, Bin, Bins, Client, ClientPolicy, Expiration, Key, ReadPolicy, TlsPolicy, UdfLang,
    Value as AsValue, WritePolicy,
};
use asudf::sandbox::server::{self, Credentials, ServerHandle, ServerOptions, TlsFiles};
use asudf::sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const COUNTER: &str = include_str!("../../shared/samples/counter.lua");

const HELPERS: &str = r#"
function echo(rec, v)
    return v
end

function nothing(rec)
end

function boom(rec)
    error("boom")
end

function spin(rec)
    while true do end
end

function drop(rec)
    aerospike:remove(rec)
end

function set_bin(rec, name, v)
    rec[name] = v
    if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end
    return rec[name]
end
"#;

async fn start_with(config: SandboxConfig, opts: ServerOptions) -> ServerHandle {
    let sandbox = Sandbox::open(config).expect("sandbox opens");
    server::start(sandbox, opts).await.expect("server starts")
}

async fn start() -> ServerHandle {
    start_with(SandboxConfig::default(), ServerOptions::default()).await
}

fn hosts(server: &ServerHandle) -> String {
    format!("127.0.0.1:{}", server.addr().port())
}

async fn connect(server: &ServerHandle) -> Client {
    Client::new(&ClientPolicy::default(), &hosts(server))
        .await
        .expect("client connects")
}

fn key(k: &str) -> Key {
    Key::new("test", "demo", AsValue::from(k)).unwrap()
}

/// The fields naming `k` in test.demo, for frames built by hand.
fn demo_fields(k: &Key) -> Vec<asudf::sandbox::server::message::Field> {
    use asudf::sandbox::server::message::*;
    [
        (FIELD_NAMESPACE, b"test".to_vec()),
        (FIELD_SET, b"demo".to_vec()),
        (FIELD_DIGEST, k.digest().to_vec()),
    ]
    .into_iter()
    .map(|(ty, data)| Field { ty, data })
    .collect()
}

async fn register(client: &Client, name: &str, source: &str) {
    let task = client
        .register_udf(
            &AdminPolicy::default(),
            source.as_bytes(),
            name,
            UdfLang::Lua,
        )
        .await
        .expect("udf-put accepted");
    use aerospike::task::Task;
    task.wait_till_complete(Some(Duration::from_secs(5)))
        .await
        .expect("registered");
}

async fn apply(
    client: &Client,
    k: &Key,
    module: &str,
    f: &str,
    args: &[AsValue],
) -> aerospike::Result<Option<AsValue>> {
    client
        .execute_udf(&WritePolicy::default(), k, module, f, args)
        .await
}

/// Strings that are not UTF-8 ("caf" then Latin-1 é): Lua strings are bytes.
const LATIN1: &str = r#"
function store(rec)
    rec.s = "caf\xe9"
    if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end
end

function bytes_of(rec)
    return table.concat({string.byte(rec.s, 1, -1)}, ",")
end

function give(rec)
    return "caf\xe9"
end
"#;

// ---------------------------------------------------------------- raw wire helpers

async fn roundtrip(stream: &mut TcpStream, ty: u8, body: &[u8]) -> Option<(u8, Vec<u8>)> {
    let mut frame = server::frame::encode_frame(ty, body);
    if ty == 0xff {
        frame[1] = 9;
    }
    stream.write_all(&frame).await.ok()?;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.ok()?;
    let len = (u64::from_be_bytes(header) & 0xFFFF_FFFF_FFFF) as usize;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some((header[1], body))
}

async fn raw_info(server: &ServerHandle, request: &str) -> String {
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let (ty, body) = roundtrip(&mut s, 1, request.as_bytes())
        .await
        .expect("info reply");
    assert_eq!(ty, 1);
    String::from_utf8(body).unwrap()
}

fn info_value(reply: &str, name: &str) -> String {
    reply
        .lines()
        .find_map(|l| {
            l.split_once('\t')
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in {reply:?}"))
}

/// Reads until the peer closes; true when it closed (rather than answering).
async fn closed_without_reply(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tending_info_matches_a_real_server() {
    let server = start().await;
    let reply = raw_info(&server, "node\npartition-generation\nbuild\n").await;
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 3, "{reply}");
    assert!(lines[0].starts_with("node\t"));
    assert_eq!(lines[1], "partition-generation\t0");
    assert_eq!(lines[2], "build\t8.1.1.2");
    let node = info_value(&reply, "node");
    assert_eq!(node.len(), 15);
    assert!(
        node.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );

    let port = server.addr().port();
    let reply = raw_info(&server, "peers-clear-std\nservice-clear-std\nreplicas\ncluster-name\nuser-agent-set:value=MSxydXN0\nnamespaces\nnope\nsandbox\n").await;
    assert_eq!(
        info_value(&reply, "peers-clear-std"),
        format!("0,{port},[]")
    );
    assert_eq!(
        info_value(&reply, "service-clear-std"),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(
        info_value(&reply, "replicas"),
        format!("test:0,1,{}8=", "/".repeat(682))
    );
    assert_eq!(info_value(&reply, "cluster-name"), "sandbox");
    assert_eq!(info_value(&reply, "user-agent-set:value=MSxydXN0"), "ok");
    assert_eq!(info_value(&reply, "namespaces"), "test");
    assert_eq!(info_value(&reply, "nope"), "ERROR:4:unrecognized command");
    assert!(info_value(&reply, "sandbox").starts_with("asudf="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_udf_register_apply_list_remove() {
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "counter.lua", COUNTER).await;
    let list = raw_info(&server, "udf-list\n").await;
    assert!(
        info_value(&list, "udf-list").contains("filename=counter.lua,"),
        "{list}"
    );

    let k = key("counter1");
    let r = apply(
        &client,
        &k,
        "counter",
        "increment",
        &[AsValue::from("count"), AsValue::from(5)],
    )
    .await;
    assert_eq!(r.unwrap(), Some(AsValue::from(5)));
    let r = apply(
        &client,
        &k,
        "counter",
        "increment",
        &[AsValue::from("count"), AsValue::from(3)],
    )
    .await;
    assert_eq!(r.unwrap(), Some(AsValue::from(8)));
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.get("count"), Some(&AsValue::from(8)));
    assert_eq!(rec.generation, 2);

    let task = client
        .remove_udf(&AdminPolicy::default(), "counter.lua")
        .await
        .unwrap();
    use aerospike::task::Task;
    task.wait_till_complete(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let list = raw_info(&server, "udf-list\n").await;
    assert!(!list.contains("counter.lua"), "{list}");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udf_errors_reach_the_client() {
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "helpers.lua", HELPERS).await;
    let k = key("e1");

    let err = apply(&client, &k, "helpers", "boom", &[])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 100, "{err}");
    assert!(
        err.to_string()
            .contains("/opt/aerospike/usr/udf/lua/helpers.lua:10: boom"),
        "{err}"
    );

    let err = apply(&client, &k, "helpers", "missing", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("function not found"), "{err}");

    let err = apply(&client, &k, "nomodule", "f", &[]).await.unwrap_err();
    assert_eq!(err.result_code(), 100, "{err}");

    // nil comes back as nothing; values round-trip through msgpack and particles
    assert_eq!(
        apply(&client, &k, "helpers", "nothing", &[]).await.unwrap(),
        None
    );
    let list = AsValue::from(vec![
        AsValue::from(1),
        AsValue::from("a"),
        AsValue::from(2.5),
    ]);
    assert_eq!(
        apply(&client, &k, "helpers", "echo", std::slice::from_ref(&list))
            .await
            .unwrap(),
        Some(list)
    );
    assert_eq!(
        apply(&client, &k, "helpers", "echo", &[AsValue::from("x")])
            .await
            .unwrap(),
        Some(AsValue::from("x"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udf_over_the_sandbox_limit_times_out_with_code_100() {
    let config = SandboxConfig {
        max_udf_ms: Some(100),
        ..SandboxConfig::default()
    };
    let server = start_with(config, ServerOptions::default()).await;
    let client = connect(&server).await;
    register(&client, "helpers.lua", HELPERS).await;
    let mut policy = WritePolicy::default();
    policy.base_policy.total_timeout = 1000;
    let err = client
        .execute_udf(&policy, &key("spin"), "helpers", "spin", &[])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 100, "{err}");
    assert!(err.to_string().contains("UDF Execution Timeout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_commands() {
    let server = start().await;
    let client = connect(&server).await;
    let wp = WritePolicy::default();
    let rp = ReadPolicy::default();
    let k = key("rec1");

    assert!(!client.exists(&rp, &k).await.unwrap());
    let err = client.get(&rp, &k, Bins::All).await.unwrap_err();
    assert_eq!(err.result_code(), 2);

    client
        .put(
            &wp,
            &k,
            &[
                Bin::new("a", AsValue::from(1)),
                Bin::new("s", AsValue::from("hi")),
            ],
        )
        .await
        .unwrap();
    assert!(client.exists(&rp, &k).await.unwrap());
    let rec = client.get(&rp, &k, Bins::All).await.unwrap();
    assert_eq!(rec.generation, 1);
    assert_eq!(rec.bins.get("s"), Some(&AsValue::from("hi")));
    let rec = client.get(&rp, &k, Bins::from(["a"])).await.unwrap();
    assert_eq!(rec.bins.len(), 1);
    let rec = client.get(&rp, &k, Bins::None).await.unwrap();
    assert!(rec.bins.is_empty());
    assert_eq!(rec.generation, 1);

    client
        .add(&wp, &k, &[Bin::new("a", AsValue::from(4))])
        .await
        .unwrap();
    client
        .append(&wp, &k, &[Bin::new("s", AsValue::from("!"))])
        .await
        .unwrap();
    client
        .prepend(&wp, &k, &[Bin::new("s", AsValue::from(">"))])
        .await
        .unwrap();
    let rec = client.get(&rp, &k, Bins::All).await.unwrap();
    assert_eq!(rec.bins.get("a"), Some(&AsValue::from(5)));
    assert_eq!(rec.bins.get("s"), Some(&AsValue::from(">hi!")));
    assert_eq!(rec.generation, 4);

    let err = client
        .add(&wp, &k, &[Bin::new("s", AsValue::from(1))])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 12);

    client.touch(&wp, &k).await.unwrap();
    assert_eq!(client.get(&rp, &k, Bins::None).await.unwrap().generation, 5);

    // policies
    let create_only = WritePolicy {
        record_exists_action: RecordExistsAction::CreateOnly,
        ..WritePolicy::default()
    };
    let err = client
        .put(&create_only, &k, &[Bin::new("a", AsValue::from(1))])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 5);
    let update_only = WritePolicy {
        record_exists_action: RecordExistsAction::UpdateOnly,
        ..WritePolicy::default()
    };
    let err = client
        .put(
            &update_only,
            &key("absent"),
            &[Bin::new("a", AsValue::from(1))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 2);
    let replace = WritePolicy {
        record_exists_action: RecordExistsAction::Replace,
        ..WritePolicy::default()
    };
    client
        .put(&replace, &k, &[Bin::new("z", AsValue::from(0))])
        .await
        .unwrap();
    let rec = client.get(&rp, &k, Bins::All).await.unwrap();
    assert_eq!(rec.bins.len(), 1);
    let mut gen_eq = WritePolicy {
        generation_policy: GenerationPolicy::ExpectGenEqual,
        ..WritePolicy::default()
    };
    gen_eq.generation = rec.generation - 1;
    let err = client
        .put(&gen_eq, &k, &[Bin::new("z", AsValue::from(1))])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 3);
    gen_eq.generation = rec.generation;
    client
        .put(&gen_eq, &k, &[Bin::new("z", AsValue::from(1))])
        .await
        .unwrap();

    // ttl comes back as the record's expiry
    let ttl = WritePolicy {
        expiration: Expiration::Seconds(1000),
        ..WritePolicy::default()
    };
    client
        .put(&ttl, &k, &[Bin::new("z", AsValue::from(2))])
        .await
        .unwrap();
    let rec = client.get(&rp, &k, Bins::All).await.unwrap();
    let left = rec.time_to_live().expect("has a ttl").as_secs();
    assert!((990..=1000).contains(&left), "{left}");

    // send-key stores the user key
    let send_key = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    client
        .put(&send_key, &key("keyed"), &[Bin::new("a", AsValue::from(1))])
        .await
        .unwrap();
    let digest = key("keyed").digest();
    let stored = server.sandbox().store().get("test", &digest).unwrap();
    assert_eq!(stored.key, Some(asudf::sandbox::Value::Str("keyed".into())));

    assert!(client.delete(&wp, &k).await.unwrap());
    assert!(!client.delete(&wp, &k).await.unwrap());
    assert!(!client.exists(&rp, &k).await.unwrap());

    let bad_ns = Key::new("nope", "demo", AsValue::from(1)).unwrap();
    assert!(client.get(&rp, &bad_ns, Bins::All).await.is_err());
    let _ = CommitLevel::CommitAll;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_on_the_wire_is_20() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let msg = Message {
        header: MsgHeader {
            info1: INFO1_READ | INFO1_GET_ALL,
            ..MsgHeader::default()
        },
        fields: vec![
            Field {
                ty: FIELD_NAMESPACE,
                data: b"nope".to_vec(),
            },
            Field {
                ty: FIELD_DIGEST,
                data: vec![0; 20],
            },
        ],
        ops: vec![],
    };
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let (_, body) = roundtrip(&mut s, 3, &msg.encode()).await.unwrap();
    assert_eq!(Message::parse(&body).unwrap().header.result_code, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_refusals_and_bad_frames() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();

    // a batch of 0 rows: refused whole, one LAST message with 4
    let batch = Message {
        header: MsgHeader {
            info1: INFO1_READ | INFO1_BATCH,
            ..MsgHeader::default()
        },
        fields: vec![Field {
            ty: FIELD_BATCH_INDEX,
            data: vec![0; 5],
        }],
        ops: vec![],
    };
    let (_, body) = roundtrip(&mut s, 3, &batch.encode()).await.unwrap();
    let reply = Message::parse(&body).unwrap();
    assert_eq!(
        (reply.header.info3 & INFO3_LAST, reply.header.result_code),
        (INFO3_LAST, 4)
    );

    // a scan without the partition-done bit: 16 at start, no LAST (as a server)
    let scan = Message {
        header: MsgHeader {
            info1: INFO1_READ | INFO1_GET_ALL,
            ..MsgHeader::default()
        },
        fields: vec![Field {
            ty: FIELD_NAMESPACE,
            data: b"test".to_vec(),
        }],
        ops: vec![],
    };
    let (_, body) = roundtrip(&mut s, 3, &scan.encode()).await.unwrap();
    let reply = Message::parse(&body).unwrap();
    assert_eq!(
        (reply.header.info3 & INFO3_LAST, reply.header.result_code),
        (0, 16)
    );

    // admin without security: 52
    let (ty, body) = roundtrip(
        &mut s,
        2,
        &[0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    .await
    .unwrap();
    assert_eq!((ty, body[1]), (2, 52));

    // compressed message: inflated and answered
    let inner = server::frame::encode_frame(3, &scan.encode());
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &inner).unwrap();
    let mut body = (inner.len() as u64).to_be_bytes().to_vec();
    body.extend(z.finish().unwrap());
    let (ty, _) = roundtrip(&mut s, 4, &body).await.unwrap();
    assert_eq!(ty, 3);

    // a malformed message closes the connection
    assert!(roundtrip(&mut s, 3, &[22, 0, 0]).await.is_none());

    // so does an unknown proto type, and a frame over 128 MiB
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    assert!(roundtrip(&mut s, 0xff, b"node\n").await.is_none());
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(&[2, 3, 0, 0, 8, 0, 0, 1]).await.unwrap();
    assert!(closed_without_reply(&mut s).await);

    // the server is still fine
    assert!(raw_info(&server, "node\n").await.starts_with("node\t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_right_and_wrong_password() {
    let opts = ServerOptions {
        auth: Some(Credentials {
            user: "admin".into(),
            password: "s3cret".into(),
        }),
        ..ServerOptions::default()
    };
    let server = start_with(SandboxConfig::default(), opts).await;

    // unauthenticated connections get nothing
    let reply = raw_info(&server, "node\nbuild\n").await;
    assert_eq!(
        reply,
        "node\tERROR:80:not authenticated\nbuild\tERROR:80:not authenticated\n"
    );

    let mut policy = ClientPolicy::default();
    policy.set_auth_mode(AuthMode::Internal("admin".into(), "s3cret".into()));
    let client = Client::new(&policy, &hosts(&server))
        .await
        .expect("login accepted");
    client
        .put(
            &WritePolicy::default(),
            &key("a"),
            &[Bin::new("a", AsValue::from(1))],
        )
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("a"), Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.get("a"), Some(&AsValue::from(1)));
    client.close().await.unwrap();

    let mut wrong = ClientPolicy::default();
    wrong.set_auth_mode(AuthMode::Internal("admin".into(), "nope".into()));
    wrong.timeout = 2000;
    let err = Client::new(&wrong, &hosts(&server))
        .await
        .err()
        .expect("wrong password refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("65") || text.contains("InvalidCredential"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_self_signed_certificate() {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let opts = ServerOptions {
        tls: Some(TlsFiles {
            cert: cert_path,
            key: key_path,
        }),
        ..ServerOptions::default()
    };
    let server = start_with(SandboxConfig::default(), opts).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let policy = ClientPolicy {
        tls_policy: Some(TlsPolicy::new(config)),
        ..ClientPolicy::default()
    };
    let host = aerospike::Host {
        name: "127.0.0.1".into(),
        tls_name: Some("localhost".into()),
        port: server.addr().port(),
    };
    let client = Client::new(&policy, &vec![host])
        .await
        .expect("TLS client connects");
    register(&client, "counter.lua", COUNTER).await;
    let r = apply(
        &client,
        &key("t"),
        "counter",
        "increment",
        &[AsValue::from("n"), AsValue::from(2)],
    )
    .await;
    assert_eq!(r.unwrap(), Some(AsValue::from(2)));

    // a plain-text client gets nowhere
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    assert!(roundtrip(&mut s, 1, b"node\n").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_connections() {
    let server = start().await;
    let mut streams = Vec::new();
    for _ in 0..64 {
        streams.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    let node = server.node_id().to_string();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let node = node.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let (_, body) = roundtrip(&mut s, 1, b"node\n").await.unwrap();
                    assert_eq!(String::from_utf8(body).unwrap(), format!("node\t{node}\n"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_two_thousand_applies_each_sum_exactly() {
    let server = start().await;
    let setup = connect(&server).await;
    register(&setup, "counter.lua", COUNTER).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = connect(&server).await;
        tasks.push(tokio::spawn(async move {
            let k = key("load");
            for _ in 0..2000 {
                apply(
                    &client,
                    &k,
                    "counter",
                    "increment",
                    &[AsValue::from("n"), AsValue::from(1)],
                )
                .await
                .expect("apply");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rec = setup
        .get(&ReadPolicy::default(), &key("load"), Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.get("n"), Some(&AsValue::from(16_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_port_and_the_data() {
    let mut server = start().await;
    let addr = server.addr();
    let client = connect(&server).await;
    client
        .put(
            &WritePolicy::default(),
            &key("r"),
            &[Bin::new("a", AsValue::from(7))],
        )
        .await
        .unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.addr(), addr);
    // the old connection was closed by the restart
    assert!(closed_without_reply(&mut s).await);
    // the client reconnects on its own
    let mut rec = None;
    for _ in 0..50 {
        match client
            .get(&ReadPolicy::default(), &key("r"), Bins::All)
            .await
        {
            Ok(r) => {
                rec = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        rec.expect("get after restart").bins.get("a"),
        Some(&AsValue::from(7))
    );
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_namespace_objects() {
    let server = start().await;
    let client = connect(&server).await;
    for i in 0..3 {
        client
            .put(
                &WritePolicy::default(),
                &key(&format!("t{i}")),
                &[Bin::new("a", AsValue::from(i))],
            )
            .await
            .unwrap();
    }
    assert!(
        info_value(
            &raw_info(&server, "namespace/test\n").await,
            "namespace/test"
        )
        .starts_with("objects=3;")
    );
    let reply = raw_info(&server, "truncate-namespace:namespace=test\n").await;
    assert_eq!(
        info_value(&reply, "truncate-namespace:namespace=test"),
        "ok"
    );
    assert!(
        info_value(
            &raw_info(&server, "namespace/test\n").await,
            "namespace/test"
        )
        .starts_with("objects=0;")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_logs_carry_udf_output() {
    let server = start().await;
    let client = connect(&server).await;
    register(
        &client,
        "talk.lua",
        "function hi(rec)\n info('hello %s', 'there')\n return 1\nend\n",
    )
    .await;
    let k = key("logs");
    apply(&client, &k, "talk", "hi", &[]).await.unwrap();
    let reply = raw_info(&server, "sandbox-logs:since=0\n").await;
    let logs =
        asudf::sandbox::server::info::decode_logs(&info_value(&reply, "sandbox-logs:since=0"))
            .unwrap();
    let last = logs.last().expect("a call log");
    assert_eq!(last.call, "talk.hi");
    assert_eq!(last.digest, k.digest());
    assert!(
        last.lines.iter().any(|l| l.text.contains("hello there")),
        "{:?}",
        last.lines
    );
    let after = raw_info(&server, &format!("sandbox-logs:since={}\n", last.seq)).await;
    assert_eq!(
        info_value(&after, &format!("sandbox-logs:since={}", last.seq)),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udf_requests_with_forbidden_policies_or_missing_fields_get_4() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "counter.lua", COUNTER).await;
    let apply_msg = |info2: u8, info3: u8, with_args: bool| {
        let mut fields = vec![
            Field {
                ty: FIELD_NAMESPACE,
                data: b"test".to_vec(),
            },
            Field {
                ty: FIELD_DIGEST,
                data: key("p").digest().to_vec(),
            },
            Field {
                ty: FIELD_UDF_PACKAGE,
                data: b"counter".to_vec(),
            },
            Field {
                ty: FIELD_UDF_FUNCTION,
                data: b"increment".to_vec(),
            },
        ];
        if with_args {
            // ["n", 1]
            fields.push(Field {
                ty: FIELD_UDF_ARGLIST,
                data: vec![0x92, 0xa2, 0x03, b'n', 0x01],
            });
        }
        Message {
            header: MsgHeader {
                info2,
                info3,
                ..MsgHeader::default()
            },
            fields,
            ops: vec![],
        }
    };
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let mut result = async |msg: Message| {
        let (_, body) = roundtrip(&mut s, 3, &msg.encode()).await.unwrap();
        let reply = Message::parse(&body).unwrap();
        (reply.header.result_code, reply.ops)
    };
    for (info2, info3) in [
        (INFO2_WRITE | INFO2_CREATE_ONLY, 0),
        (INFO2_WRITE | INFO2_GENERATION, 0),
        (INFO2_WRITE | INFO2_GENERATION_GT, 0),
        (INFO2_WRITE, INFO3_UPDATE_ONLY),
        (INFO2_WRITE, INFO3_CREATE_OR_REPLACE),
        (INFO2_WRITE, INFO3_REPLACE_ONLY),
    ] {
        assert_eq!(
            result(apply_msg(info2, info3, true)).await,
            (4, vec![]),
            "{info2:#x}/{info3:#x}"
        );
    }
    assert_eq!(result(apply_msg(INFO2_WRITE, 0, false)).await, (4, vec![]));
    // the same request without the forbidden bits succeeds with one SUCCESS op
    let (code, ops) = result(apply_msg(INFO2_WRITE, 0, true)).await;
    assert_eq!(code, 0);
    assert_eq!(ops.len(), 1);
    assert_eq!((ops[0].name.as_str(), ops[0].particle), ("SUCCESS", 1));
}

/// A string bin holding bytes that are not UTF-8 reads back byte for byte
/// in a later call (a server neither checks nor replaces them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_bin_that_is_not_utf8_reads_back_byte_for_byte() {
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "latin1.lua", LATIN1).await;
    let k = key("latin1");
    apply(&client, &k, "latin1", "store", &[]).await.unwrap();
    let read = apply(&client, &k, "latin1", "bytes_of", &[]).await;
    assert_eq!(read.unwrap(), Some(AsValue::from("99,97,102,233")));
}

/// A UDF's result that is not UTF-8 goes on the wire as its bytes. The
/// crate refuses to decode such a string, so the raw reply is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_is_not_utf8_is_sent_as_its_bytes() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "latin1.lua", LATIN1).await;
    let k = key("latin1");
    let field = |ty, data: &[u8]| Field {
        ty,
        data: data.to_vec(),
    };
    let msg = Message {
        header: MsgHeader {
            info2: INFO2_WRITE,
            ..MsgHeader::default()
        },
        fields: vec![
            field(FIELD_NAMESPACE, b"test"),
            field(FIELD_DIGEST, &k.digest()),
            field(FIELD_UDF_PACKAGE, b"latin1"),
            field(FIELD_UDF_FUNCTION, b"give"),
            field(FIELD_UDF_ARGLIST, &[0x90]),
        ],
        ops: vec![],
    };
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let (_, body) = roundtrip(&mut s, 3, &msg.encode()).await.unwrap();
    let reply = Message::parse(&body).unwrap();
    assert_eq!(reply.header.result_code, 0);
    let op = &reply.ops[0];
    assert_eq!((op.name.as_str(), op.particle), ("SUCCESS", 3));
    assert_eq!(op.value, b"caf\xe9");
}

/// A server told to stop answers the request it is running and keeps its
/// write before it counts as stopped (and so before the directory's lock
/// goes to another process). On one thread the call runs on the blocking
/// pool, where closing its connection would drop the answer.
#[tokio::test(flavor = "current_thread")]
async fn a_call_running_when_the_server_stops_is_answered_and_kept() {
    use asudf::sandbox::LuaLibs;
    use asudf::sandbox::local::{Local, Sharing, open_or_connect, open_or_connect_with};
    let dir = tempfile::tempdir().unwrap();
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    // Signals that it runs, then waits until the test lets it write.
    let slow = format!(
        r#"
function run(rec)
  io.open("{started}", "w"):close()
  while io.open("{go}") == nil do end
  rec["done"] = 1
  aerospike:create(rec)
  return 1
end
"#,
        started = started.display(),
        go = go.display()
    );
    let config = SandboxConfig {
        data_dir: Some(dir.path().to_path_buf()),
        lua_libs: LuaLibs::All,
        ..SandboxConfig::default()
    };
    let Local::Serving(server) =
        open_or_connect_with(config, ServerOptions::default(), Sharing::Shared)
            .await
            .unwrap()
    else {
        panic!("the first opener serves");
    };
    let host = format!("127.0.0.1:{}", server.addr().port());
    let client = Client::new(&ClientPolicy::default(), &host).await.unwrap();
    register(&client, "slow.lua", &slow).await;
    let call = tokio::spawn(async move { apply(&client, &key("slow"), "slow", "run", &[]).await });
    while !started.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!stopping.is_finished(), "the server waits for the call");
    std::fs::write(&go, "").unwrap();
    assert_eq!(call.await.unwrap().unwrap(), Some(AsValue::from(1)));
    stopping.await.unwrap();

    let Local::Serving(again) = open_or_connect(dir.path(), Sharing::Shared).await.unwrap() else {
        panic!("after shutdown the directory is free");
    };
    let host = format!("127.0.0.1:{}", again.addr().port());
    let client = Client::new(&ClientPolicy::default(), &host).await.unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("slow"), Bins::All)
        .await
        .expect("the answered write was kept");
    assert_eq!(rec.bins.get("done"), Some(&AsValue::from(1)));
    client.close().await.unwrap();
    again.shutdown().await;
}

/// A one-shot command's server is its own: another opener waits for the
/// directory instead of connecting to a server about to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_holder_is_waited_for_then_the_directory_is_served_again() {
    use asudf::sandbox::local::{Local, Sharing, open_or_connect};
    let dir = tempfile::tempdir().unwrap();
    let Local::Serving(first) = open_or_connect(dir.path(), Sharing::Private).await.unwrap() else {
        panic!("the first opener serves");
    };
    let path = dir.path().to_path_buf();
    let second = tokio::spawn(async move { open_or_connect(&path, Sharing::Shared).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second opener waits");
    first.shutdown().await;
    match second.await.unwrap().unwrap() {
        Local::Serving(second) => second.shutdown().await,
        Local::AlreadyServed(addr) => panic!("connected to {addr}, a server that stopped"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_directory_is_served_once_and_keeps_its_data() {
    use asudf::sandbox::local::{Local, Sharing, open_or_connect};
    let dir = tempfile::tempdir().unwrap();
    let Local::Serving(first) = open_or_connect(dir.path(), Sharing::Shared).await.unwrap() else {
        panic!("the first opener serves");
    };
    let addr = first.addr();
    match open_or_connect(dir.path(), Sharing::Shared).await.unwrap() {
        Local::AlreadyServed(found) => assert_eq!(found, addr),
        Local::Serving(_) => panic!("a second opener must find the first"),
    }
    let client = Client::new(
        &ClientPolicy::default(),
        &format!("127.0.0.1:{}", addr.port()),
    )
    .await
    .unwrap();
    client
        .put(
            &WritePolicy::default(),
            &key("kept"),
            &[Bin::new("a", AsValue::from(1))],
        )
        .await
        .unwrap();
    register(&client, "counter.lua", COUNTER).await;
    let node = first.node_id().to_string();
    client.close().await.unwrap();
    first.shutdown().await;

    let Local::Serving(second) = open_or_connect(dir.path(), Sharing::Shared).await.unwrap() else {
        panic!("after shutdown the directory is free");
    };
    assert_eq!(second.node_id(), node, "node id is kept per directory");
    let client = Client::new(
        &ClientPolicy::default(),
        &format!("127.0.0.1:{}", second.addr().port()),
    )
    .await
    .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("kept"), Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.get("a"), Some(&AsValue::from(1)));
    let r = apply(
        &client,
        &key("c"),
        "counter",
        "increment",
        &[AsValue::from("n"), AsValue::from(2)],
    )
    .await;
    assert_eq!(r.unwrap(), Some(AsValue::from(2)));
    client.close().await.unwrap();
    second.shutdown().await;
}

/// The directory's log keeps a string's bytes when they are not UTF-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_that_is_not_utf8_survives_a_reopen() {
    use asudf::sandbox::local::{Local, Sharing, open_or_connect};
    let dir = tempfile::tempdir().unwrap();
    let serve = async || match open_or_connect(dir.path(), Sharing::Shared).await.unwrap() {
        Local::Serving(server) => {
            let port = server.addr().port();
            let client = Client::new(&ClientPolicy::default(), &format!("127.0.0.1:{port}"))
                .await
                .unwrap();
            (server, client)
        }
        Local::AlreadyServed(addr) => panic!("{addr} still serves the directory"),
    };
    let (first, client) = serve().await;
    register(&client, "latin1.lua", LATIN1).await;
    apply(&client, &key("latin1"), "latin1", "store", &[])
        .await
        .unwrap();
    client.close().await.unwrap();
    first.shutdown().await;

    let (second, client) = serve().await;
    let read = apply(&client, &key("latin1"), "latin1", "bytes_of", &[]).await;
    assert_eq!(read.unwrap(), Some(AsValue::from("99,97,102,233")));
    client.close().await.unwrap();
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operate_with_simple_ops_and_a_refused_cdt_op() {
    use aerospike::operations::{lists, scalar};
    let server = start().await;
    let client = connect(&server).await;
    let k = key("op");
    let wp = WritePolicy::default();
    let a = Bin::new("a", AsValue::from(10));
    let s = Bin::new("s", AsValue::from("x"));
    let rec = client
        .operate(
            &wp,
            &k,
            &[scalar::put(&a), scalar::put(&s), scalar::get_bin("a")],
        )
        .await
        .unwrap();
    // Writes answer a nil op each (respond-all-ops), reads the value.
    let nil_then = |v: AsValue| Some(AsValue::MultiResult(vec![AsValue::Nil, v]));
    assert_eq!(rec.bins.get("a").cloned(), nil_then(AsValue::from(10)));
    assert_eq!(rec.bins.get("s"), Some(&AsValue::Nil));
    assert_eq!(rec.generation, 1);
    let five = Bin::new("a", AsValue::from(5));
    let y = Bin::new("s", AsValue::from("y"));
    let rec = client
        .operate(
            &wp,
            &k,
            &[
                scalar::add(&five),
                scalar::append(&y),
                scalar::get_bin("a"),
                scalar::get_bin("s"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rec.bins.get("a").cloned(), nil_then(AsValue::from(15)));
    assert_eq!(rec.bins.get("s").cloned(), nil_then(AsValue::from("xy")));
    assert_eq!(rec.generation, 2);

    let err = client
        .operate(&wp, &k, &[lists::size("a")])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 16, "{err}");
    // the refused operate changed nothing
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.generation, 2);
}

// ---------------------------------------------------------------- refused writes
//
// Each refused write answers the server's code and leaves the stored
// record exactly as it was (bins, generation, void time, last update), or
// absent when it was absent.

fn stored(server: &ServerHandle, k: &Key) -> Option<asudf::sandbox::Record> {
    server.sandbox().store().get("test", &k.digest())
}

fn policy_with(f: impl FnOnce(&mut WritePolicy)) -> WritePolicy {
    let mut p = WritePolicy::default();
    f(&mut p);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_with_an_op_that_needs_the_old_bins_is_4() {
    use aerospike::operations::scalar;
    let server = start().await;
    let client = connect(&server).await;
    let k = key("repl");
    let bins = [
        Bin::new("n", AsValue::from(1)),
        Bin::new("s", AsValue::from("x")),
    ];
    client
        .put(&WritePolicy::default(), &k, &bins)
        .await
        .unwrap();
    let before = stored(&server, &k).unwrap();
    let n = Bin::new("n", AsValue::from(1));
    let s = Bin::new("s", AsValue::from("y"));
    let nil = Bin::new("s", AsValue::Nil);
    for action in [RecordExistsAction::Replace, RecordExistsAction::ReplaceOnly] {
        let p = policy_with(|p| p.record_exists_action = action);
        let refused = [
            client.add(&p, &k, std::slice::from_ref(&n)).await,
            client.append(&p, &k, std::slice::from_ref(&s)).await,
            client.prepend(&p, &k, std::slice::from_ref(&s)).await,
            client.touch(&p, &k).await,
            client.put(&p, &k, std::slice::from_ref(&nil)).await,
            client
                .operate(&p, &k, &[scalar::put(&n), scalar::delete()])
                .await
                .map(|_| ()),
        ];
        for (i, res) in refused.into_iter().enumerate() {
            assert_eq!(res.unwrap_err().result_code(), 4, "{action:?} op {i}");
        }
        assert_eq!(stored(&server, &k).as_ref(), Some(&before), "{action:?}");
    }
    // Refused before the record is looked at: a missing one is not created.
    let p = policy_with(|p| p.record_exists_action = RecordExistsAction::Replace);
    let absent = key("repl-absent");
    let err = client.add(&p, &absent, &[n]).await.unwrap_err();
    assert_eq!(err.result_code(), 4);
    assert!(stored(&server, &absent).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_to_a_time_after_the_servers_clock_is_refused() {
    let server = start().await;
    let client = connect(&server).await;
    for i in 0..3 {
        let bins = [Bin::new("a", AsValue::from(i))];
        client
            .put(&WritePolicy::default(), &key(&format!("t{i}")), &bins)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let in_an_hour = now_ns + 3600 * 1_000_000_000;
    for set in ["", "demo"] {
        let res = client
            .truncate(&AdminPolicy::default(), "test", set, in_an_hour)
            .await;
        let refused = res
            .as_ref()
            .is_err_and(|e| e.to_string().contains("would-truncate-in-the-future"));
        assert!(refused, "set {set:?}: {res:?}");
    }
    let command = format!("truncate-namespace:namespace=test;lut={in_an_hour}");
    let reply = raw_info(&server, &format!("{command}\n")).await;
    assert_eq!(
        info_value(&reply, &command),
        "ERROR::would-truncate-in-the-future"
    );
    assert_eq!(server.sandbox().store().count("test"), 3);
    // A time before the clock still truncates.
    client
        .truncate(&AdminPolicy::default(), "test", "", now_ns)
        .await
        .unwrap();
    assert_eq!(server.sandbox().store().count("test"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_over_the_record_size_limit_is_13() {
    use aerospike::operations::scalar;
    let server = start().await;
    let client = connect(&server).await;
    let wp = WritePolicy::default();
    let big = "x".repeat(1 << 20);
    let absent = key("big-absent");
    let err = client
        .put(&wp, &absent, &[Bin::new("b", AsValue::from(big.as_str()))])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 13);
    assert!(stored(&server, &absent).is_none());

    // Just under the limit is written; growing it past the limit is not.
    let k = key("big");
    let almost = "x".repeat((1 << 20) - 100);
    client
        .put(&wp, &k, &[Bin::new("b", AsValue::from(almost.as_str()))])
        .await
        .unwrap();
    let before = stored(&server, &k).unwrap();
    let more = Bin::new("b", AsValue::from("y".repeat(200).as_str()));
    let err = client.append(&wp, &k, &[more]).await.unwrap_err();
    assert_eq!(err.result_code(), 13);
    let other = Bin::new("c", AsValue::from("y".repeat(200).as_str()));
    let err = client
        .operate(&wp, &k, &[scalar::put(&other)])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 13);
    assert_eq!(stored(&server, &k), Some(before));
}

/// No client API sends a write without ops: a raw frame does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_with_no_ops_is_4() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let client = connect(&server).await;
    let k = key("no-ops");
    client
        .put(
            &WritePolicy::default(),
            &k,
            &[Bin::new("a", AsValue::from(1))],
        )
        .await
        .unwrap();
    let before = stored(&server, &k).unwrap();
    let write = |k: &Key| Message {
        header: MsgHeader {
            info2: INFO2_WRITE,
            record_ttl: 1000,
            ..MsgHeader::default()
        },
        fields: demo_fields(k),
        ops: vec![],
    };
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let absent = key("no-ops-absent");
    for k in [&k, &absent] {
        let (_, body) = roundtrip(&mut s, 3, &write(k).encode()).await.unwrap();
        assert_eq!(Message::parse(&body).unwrap().header.result_code, 4);
    }
    assert_eq!(stored(&server, &k), Some(before));
    assert!(stored(&server, &absent).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_deletes_are_enterprise_only() {
    let server = start().await;
    let client = connect(&server).await;
    register(&client, "helpers.lua", HELPERS).await;
    let durable = policy_with(|p| p.durable_delete = true);
    let k = key("dd");
    let two = [
        Bin::new("a", AsValue::from(1)),
        Bin::new("b", AsValue::from(2)),
    ];
    client.put(&WritePolicy::default(), &k, &two).await.unwrap();
    let before = stored(&server, &k).unwrap();

    let err = client.delete(&durable, &k).await.unwrap_err();
    assert_eq!(err.result_code(), 25);
    let err = client
        .put(
            &durable,
            &k,
            &[Bin::new("a", AsValue::Nil), Bin::new("b", AsValue::Nil)],
        )
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 25);
    let err = client
        .execute_udf(&durable, &k, "helpers", "drop", &[])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 25);
    assert_eq!(stored(&server, &k), Some(before));

    // A bin delete that leaves a bin is no record delete: it is written.
    client
        .put(&durable, &k, &[Bin::new("a", AsValue::Nil)])
        .await
        .unwrap();
    let after = stored(&server, &k).unwrap();
    assert_eq!(
        after.bins,
        vec![("b".to_string(), asudf::sandbox::Value::Int(2))]
    );
}

/// A missing record counts as generation 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_check_on_a_missing_record_sees_generation_0() {
    let server = start().await;
    let client = connect(&server).await;
    let with_gen = |policy: GenerationPolicy, generation: u32| {
        policy_with(|p| {
            p.generation_policy = policy;
            p.generation = generation;
        })
    };
    let a = [Bin::new("a", AsValue::from(1))];
    for (policy, generation) in [
        (GenerationPolicy::ExpectGenEqual, 1),
        (GenerationPolicy::ExpectGenEqual, 7),
        (GenerationPolicy::ExpectGenGreater, 0),
    ] {
        let k = key(&format!("gen-{policy:?}-{generation}"));
        let err = client
            .put(&with_gen(policy, generation), &k, &a)
            .await
            .unwrap_err();
        assert_eq!(err.result_code(), 3, "{policy:?} {generation}");
        assert!(stored(&server, &k).is_none(), "{policy:?} {generation}");
    }
    // 0 == 0 and 1 > 0: the record is created.
    for (policy, generation) in [
        (GenerationPolicy::ExpectGenEqual, 0),
        (GenerationPolicy::ExpectGenGreater, 1),
    ] {
        let k = key(&format!("gen-{policy:?}-{generation}"));
        client
            .put(&with_gen(policy, generation), &k, &a)
            .await
            .unwrap();
        assert_eq!(stored(&server, &k).unwrap().generation, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bin_deletes_on_a_missing_record_are_2() {
    use aerospike::operations::scalar;
    let server = start().await;
    let client = connect(&server).await;
    let wp = WritePolicy::default();
    let k = key("nil-absent");
    let err = client
        .put(&wp, &k, &[Bin::new("a", AsValue::Nil)])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 2);
    let nil = Bin::new("a", AsValue::Nil);
    let err = client
        .operate(&wp, &k, &[scalar::put(&nil), scalar::delete()])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 2);
    assert!(stored(&server, &k).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geojson_that_is_no_point_or_region_is_160() {
    let server = start().await;
    let client = connect(&server).await;
    let wp = WritePolicy::default();
    let geo = |text: &str| [Bin::new("g", AsValue::GeoJson(text.to_string()))];
    let k = key("geo");
    let point = r#"{"type":"Point","coordinates":[1.5,2.5]}"#;
    client.put(&wp, &k, &geo(point)).await.unwrap();
    let before = stored(&server, &k).unwrap();
    let absent = key("geo-absent");
    for text in [r#"{"type":"Nonsense"}"#, "not json", r#"{"type":"Point"}"#] {
        for k in [&k, &absent] {
            let err = client.put(&wp, k, &geo(text)).await.unwrap_err();
            assert_eq!(err.result_code(), 160, "{text}");
        }
    }
    assert_eq!(stored(&server, &k), Some(before));
    assert!(stored(&server, &absent).is_none());
}

/// A TTL above 10 years is refused with 4 even when the write would remove
/// the record (its last bin set to nil, or every bin deleted): the record
/// stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_over_the_limit_is_4_even_when_the_write_removes_the_record() {
    use aerospike::operations::scalar;
    let server = start().await;
    let client = connect(&server).await;
    let k = key("bad-ttl");
    let a = [Bin::new("a", AsValue::from(1))];
    client.put(&WritePolicy::default(), &k, &a).await.unwrap();
    let before = stored(&server, &k).unwrap();
    let too_long = policy_with(|p| p.expiration = Expiration::Seconds(10 * 365 * 24 * 3600 + 1));
    let nil = [Bin::new("a", AsValue::Nil)];
    let err = client.put(&too_long, &k, &nil).await.unwrap_err();
    assert_eq!(err.result_code(), 4);
    let err = client
        .operate(&too_long, &k, &[scalar::delete()])
        .await
        .unwrap_err();
    assert_eq!(err.result_code(), 4);
    assert_eq!(stored(&server, &k), Some(before));
}

/// A `lut` before 2010-01-01 (where the server's clock starts) is refused
/// and nothing is truncated. The real server's text for it is not recorded;
/// the sandbox says why it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_to_a_time_before_2010_is_refused() {
    let server = start().await;
    let client = connect(&server).await;
    let a = [Bin::new("a", AsValue::from(1))];
    client
        .put(&WritePolicy::default(), &key("t"), &a)
        .await
        .unwrap();
    let just_before_2010 = (1_262_304_000 - 1) * 1_000_000_000_i64;
    for lut in [1, just_before_2010] {
        for command in [
            format!("truncate-namespace:namespace=test;lut={lut}"),
            format!("truncate:namespace=test;set=demo;lut={lut}"),
        ] {
            let reply = raw_info(&server, &format!("{command}\n")).await;
            let value = info_value(&reply, &command);
            assert!(value.starts_with("ERROR:4:"), "{command}: {value}");
            assert!(value.contains("2010"), "{command}: {value}");
        }
        let res = client
            .truncate(&AdminPolicy::default(), "test", "demo", lut)
            .await;
        assert!(res.is_err(), "lut {lut}: {res:?}");
    }
    assert_eq!(server.sandbox().store().count("test"), 1);
}

/// Raw frames with an op type no 8.1 server knows (0, 6, the 8.2 string ops
/// 17..19, 200) answer 4, in a read and in a write, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_op_type_is_4() {
    use asudf::sandbox::server::message::*;
    let server = start().await;
    let client = connect(&server).await;
    let k = key("unknown-op");
    let a = [Bin::new("a", AsValue::from(1))];
    client.put(&WritePolicy::default(), &k, &a).await.unwrap();
    let before = stored(&server, &k).unwrap();
    let absent = key("unknown-op-absent");
    let request = |k: &Key, info1: u8, info2: u8, op: u8| Message {
        header: MsgHeader {
            info1,
            info2,
            ..MsgHeader::default()
        },
        fields: demo_fields(k),
        ops: vec![Op {
            op,
            particle: 1,
            name: "a".to_string(),
            value: 2i64.to_be_bytes().to_vec(),
        }],
    };
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    for op in [0, 6, 17, 18, 19, 200] {
        for (info1, info2) in [(INFO1_READ, 0), (0, INFO2_WRITE)] {
            for k in [&k, &absent] {
                let msg = request(k, info1, info2, op);
                let (_, body) = roundtrip(&mut s, 3, &msg.encode()).await.unwrap();
                let code = Message::parse(&body).unwrap().header.result_code;
                assert_eq!(code, 4, "op {op}, info1 {info1}, info2 {info2}");
            }
        }
    }
    assert_eq!(stored(&server, &k), Some(before));
    assert!(stored(&server, &absent).is_none());
}
