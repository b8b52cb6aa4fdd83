//! Memory with a slow reader: the sandbox's peak RSS while a scan waits on
//! a client that reads slowly stays within 8 MiB of its RSS before the
//! scan. Alone in its test binary, since RSS is per process; the tests
//! take turns.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use aerospike::{Client, ClientPolicy};

use asudf::sandbox::server::{self, ServerOptions};
use asudf::sandbox::store::{self, Change, Record};
use asudf::sandbox::value::Value as SValue;
use asudf::sandbox::{Sandbox, SandboxConfig};
use common::frames::query_body;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Peak RSS of this process in KiB, and a reset of it.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// A slow reader over `n` small records: the sandbox's peak RSS while the
/// scan waits on the reader stays within 8 MiB of its RSS before the scan.
async fn slow_reader_memory(n: u32) -> u64 {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = server::start(
        Sandbox::open(SandboxConfig::default()).unwrap(),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    // A connected client, as in use: its tending is part of the baseline.
    let hosts = format!("127.0.0.1:{}", server.addr().port());
    let _client = Client::new(&ClientPolicy::default(), &hosts).await.unwrap();
    let sandbox = server.sandbox().clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let key = SValue::Int(i64::from(i));
            let digest = store::digest(Some("m"), &key).unwrap();
            let record = Record {
                bins: vec![("n".into(), SValue::Int(i64::from(i)))],
                generation: 1,
                void_time: 0,
                last_update_ms: 0,
                set: Some("m".into()),
                key: None,
            };
            sandbox
                .store()
                .modify("test", &digest, |_| (Change::Put(record), ()))
                .unwrap();
        }
    })
    .await
    .unwrap();
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        reset_peak_rss();
        let before = peak_rss_kib();
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.write_all(&query_body("m", 5, vec![], 0)).unwrap();
        // Read slowly: 4 KiB every 2 ms for a while, then the rest.
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        for _ in 0..500 {
            total += sock.read(&mut buf).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let grown = peak_rss_kib().saturating_sub(before);
        let mut rest = Vec::new();
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        loop {
            let k = sock.read(&mut buf).unwrap();
            assert!(k > 0, "stream ended early after {total} bytes");
            total += k;
            rest.extend_from_slice(&buf[..k]);
            // The LAST message ends the stream.
            let tail = &rest[rest.len().saturating_sub(30)..];
            if tail.ends_with(
                &hex::decode("020300000000001616000001000000000000000000000000000000000000")
                    .unwrap(),
            ) {
                break;
            }
            if rest.len() > 1 << 16 {
                rest.drain(..rest.len() - 64);
            }
        }
        assert!(
            total > n as usize * 40,
            "only {total} bytes for {n} records"
        );
        grown
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_does_not_grow_memory() {
    let grown = slow_reader_memory(100_000).await;
    eprintln!("peak RSS growth with a slow reader over 100k records: {grown} KiB");
    assert!(grown < 8 * 1024, "grew {grown} KiB");
}

/// The figure: 1,000,000 records (`cargo test --release --test
/// query_memory -- --ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn a_slow_reader_over_a_million_records() {
    let grown = slow_reader_memory(1_000_000).await;
    eprintln!("peak RSS growth with a slow reader over 1M records: {grown} KiB");
    assert!(grown < 8 * 1024, "grew {grown} KiB");
}
