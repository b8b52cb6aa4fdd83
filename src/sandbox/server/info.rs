//! Info protocol (type 1): request/response text, and the names the sandbox answers.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::sandbox::engine::{CallLog, LogLevel, LogLine, LuaLibs, Sandbox, StageCount};
use crate::sandbox::jobs::Jobs;
use crate::sandbox::sindex;
use crate::sandbox::store::{self, CITRUSLEAF_EPOCH_SECS};

pub const BUILD: &str = "8.1.1.2";
pub const EDITION: &str = "Aerospike Community Edition";
pub const UNRECOGNIZED: &str = "ERROR:4:unrecognized command";
pub const NOT_AUTHENTICATED: &str = "ERROR:80:not authenticated";
/// Only what the sandbox serves (a real server also lists CDT and bit
/// operations, strong consistency and the deprecated replica names).
const FEATURES: &str = "batch-any;batch-index;cdt-index;float;geo;sindex-exists;peers;pipelining;pquery;pscans;query-show;replicas;truncate-namespace;udf";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("info request is not UTF-8")]
pub struct InfoError;

/// The command lines of a request: those ending in `\n` (an unterminated tail is ignored).
pub fn parse_request(body: &[u8]) -> Result<Vec<&str>, InfoError> {
    let text = std::str::from_utf8(body).map_err(|_| InfoError)?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop(); // the text after the last `\n`
    Ok(lines.into_iter().filter(|l| !l.is_empty()).collect())
}

/// `line\tvalue\n` per answered line, in order. Tabs and newlines inside
/// a value would break every client's parser, so they become spaces.
pub fn encode_response<'a>(answers: impl IntoIterator<Item = (&'a str, String)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (line, value) in answers {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\t');
        out.extend(
            value
                .bytes()
                .map(|b| if b == b'\t' || b == b'\n' { b' ' } else { b }),
        );
        out.push(b'\n');
    }
    out
}

/// What an info answer depends on besides the sandbox.
pub struct InfoContext<'a> {
    pub sandbox: &'a Sandbox,
    /// Query jobs (`query-show`, `query-abort`).
    pub jobs: &'a Jobs,
    pub node_id: &'a str,
    pub cluster_name: &'a str,
    /// The local address of the connection the request came on.
    pub local_addr: SocketAddr,
    pub tls: bool,
}

/// The value of `key` in an info command's `k=v;k=v` parameters.
pub(crate) fn param<'p>(params: &'p str, key: &str) -> Option<&'p str> {
    params
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// All 4096 partitions, MSB first: 511 bytes of 0xff and one more, in base64.
fn full_bitmap() -> String {
    B64.encode([0xffu8; 512])
}

/// The answer to one request line.
pub fn answer(ctx: &InfoContext, line: &str) -> String {
    let (name, params) = line.split_once(':').unwrap_or((line, ""));
    let sandbox = ctx.sandbox;
    let port = ctx.local_addr.port();
    match name {
        "node" => ctx.node_id.to_string(),
        "build" => BUILD.to_string(),
        "edition" => EDITION.to_string(),
        "version" => format!("{EDITION} build {BUILD}"),
        "partition-generation" | "peers-generation" | "rebalance-generation" => "0".to_string(),
        "cluster-name" => ctx.cluster_name.to_string(),
        "peers-clear-std" | "peers-clear-alt" | "peers-tls-std" | "peers-tls-alt" => {
            format!("0,{port},[]")
        }
        "service-clear-std" | "service-clear-alt" if !ctx.tls => ctx.local_addr.to_string(),
        "service-tls-std" | "service-tls-alt" if ctx.tls => ctx.local_addr.to_string(),
        "service-clear-std" | "service-clear-alt" | "service-tls-std" | "service-tls-alt" => {
            String::new()
        }
        "services" | "services-alternate" => String::new(),
        "replicas" => {
            let bitmap = full_bitmap();
            let entries: Vec<String> = namespaces(sandbox)
                .iter()
                .map(|ns| format!("{ns}:0,1,{bitmap}"))
                .collect();
            entries.join(";")
        }
        "rack-ids" => {
            let entries: Vec<String> = namespaces(sandbox)
                .iter()
                .map(|ns| format!("{ns}:0"))
                .collect();
            entries.join(";")
        }
        "user-agent-set" => "ok".to_string(),
        "namespaces" => namespaces(sandbox).join(";"),
        "status" => "ok".to_string(),
        "features" => FEATURES.to_string(),
        "partitions" => "4096".to_string(),
        "udf-put" => sandbox.info_udf_put(params),
        "udf-get" => sandbox.info_udf_get(params),
        "udf-list" => sandbox.info_udf_list(),
        "udf-remove" => sandbox.info_udf_remove(params),
        "udf-clear-cache" => sandbox.info_udf_clear_cache(),
        "truncate-namespace" => truncate(sandbox, param(params, "namespace"), None, params),
        "truncate" => match param(params, "set") {
            Some(set) => truncate(sandbox, param(params, "namespace"), Some(set), params),
            None => "ERROR:4:set required".to_string(),
        },
        "sindex-create" => sindex_create(sandbox, params),
        "sindex-delete" => match sindex::parse_ns_name(params) {
            Ok((ns, name)) => {
                sandbox.store().indexes().delete(ns, name);
                "ok".to_string()
            }
            Err(e) => e,
        },
        "sindex-exists" => match sindex::parse_ns_name(params) {
            Ok((ns, name)) => sandbox
                .store()
                .indexes()
                .find(ns, name)
                .is_some()
                .to_string(),
            Err(e) => e,
        },
        "sindex-stat" => match sindex::parse_ns_name(params) {
            Ok((ns, name)) => sindex_stat(sandbox, ns, name),
            Err(e) => e,
        },
        "sindex-list" => sindex_list(sandbox, params),
        "query-show" => ctx.jobs.info_show(params),
        "query-abort" => ctx.jobs.info_abort(params),
        "sandbox-stream" => stream_stats(ctx.jobs, params),
        "sandbox" => sandbox_summary(sandbox),
        "sandbox-logs" => match param(params, "since").unwrap_or("0").parse::<u64>() {
            Ok(since) => encode_logs(&sandbox.logs_since(since)),
            Err(_) => "ERROR:4:since must be a sequence number".to_string(),
        },
        "sandbox-calls" => match param(params, "since").unwrap_or("0").parse::<u64>() {
            Ok(since) => encode_calls(&sandbox.calls_since(since)),
            Err(_) => "ERROR:4:since must be a sequence number".to_string(),
        },
        _ => {
            if let Some(ns) = line.strip_prefix("namespace/") {
                namespace_stats(sandbox, ns)
            } else if let Some((ns, name)) = line
                .strip_prefix("sindex/")
                .and_then(|rest| rest.split_once('/'))
            {
                sindex_stat(sandbox, ns, name)
            } else {
                UNRECOGNIZED.to_string()
            }
        }
    }
}

fn sindex_create(sandbox: &Sandbox, params: &str) -> String {
    let def = match sindex::parse_create(params) {
        Ok(def) => def,
        Err(e) => return e,
    };
    match sandbox.store().create_index(def) {
        Ok(()) => "ok".to_string(),
        Err(sindex::CreateError::Exists) => {
            "ERROR:200:'indexname' already exists with different definition".to_string()
        }
        Err(sindex::CreateError::Param(e)) => e,
    }
}

fn sindex_stat(sandbox: &Sandbox, ns: &str, name: &str) -> String {
    match sandbox.store().indexes().find(ns, name) {
        Some(index) => sindex::stat(&index),
        None => "ERROR:201:no index".to_string(),
    }
}

/// `sindex-list` with `ns=`, `namespace=` or no namespace (all).
fn sindex_list(sandbox: &Sandbox, params: &str) -> String {
    let ns = param(params, "ns").or_else(|| param(params, "namespace"));
    let entries: Vec<String> = sandbox
        .store()
        .indexes()
        .all()
        .iter()
        .filter(|i| sandbox.store().has_namespace(&i.def.ns))
        .filter(|i| ns.is_none_or(|n| i.def.ns == n))
        .map(|i| sindex::list_entry(&i.def))
        .collect();
    entries.join(";")
}

/// `sandbox-stream:id=N`: an aggregation's server-side stages and logs
/// (see docs/sandbox-info.md).
fn stream_stats(jobs: &Jobs, params: &str) -> String {
    let Some(id) = param(params, "id").or_else(|| param(params, "trid")) else {
        return "ERROR:4:missing 'id'".to_string();
    };
    let Ok(id) = id.parse::<u64>() else {
        return "ERROR:4:bad id".to_string();
    };
    let Some(job) = jobs.get(id) else {
        return "ERROR:2:job not found".to_string();
    };
    let stats = job.stream.lock().clone();
    let stages: Vec<String> = stats
        .stages
        .iter()
        .map(|s| format!("{}:{}:{}", B64.encode(&s.stage), s.values_in, s.values_out))
        .collect();
    let logs: Vec<String> = stats
        .logs
        .iter()
        .map(|l| format!("{}:{}", level_name(l.level), B64.encode(&l.text)))
        .collect();
    let udf = job
        .info
        .udf
        .as_ref()
        .map_or_else(String::new, |(m, f)| B64.encode(format!("{m}.{f}")));
    format!(
        "done={};partitions={};stages={};logs={};udf={udf}",
        job.is_done(),
        stats.partitions,
        stages.join(","),
        logs.join(",")
    )
}

/// A `sandbox-stream` value, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// The run has ended (else the counts still grow).
    pub done: bool,
    pub partitions: u64,
    /// The server-side stages in pipeline order, summed over partitions.
    pub stages: Vec<StageCount>,
    pub logs: Vec<LogLine>,
    /// `module.function` of the stream; `None` for a basic query or job
    /// (or a sandbox from before the key).
    pub udf: Option<String>,
}

/// Parses a `sandbox-stream` value (see docs/sandbox-info.md); unknown
/// keys are skipped, as new ones are only ever appended.
pub fn decode_stream(value: &str) -> Result<StreamReport, String> {
    let text = |s: &str| -> Result<String, String> {
        let bytes = B64.decode(s).map_err(|e| format!("bad base64: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "text is not UTF-8".to_string())
    };
    let mut report = StreamReport {
        done: false,
        partitions: 0,
        stages: Vec::new(),
        logs: Vec::new(),
        udf: None,
    };
    for pair in value.split(';') {
        let (key, v) = pair.split_once('=').ok_or("a pair without '='")?;
        let items = || v.split(',').filter(|i| !i.is_empty());
        match key {
            "done" => report.done = v == "true",
            "partitions" => report.partitions = v.parse().map_err(|_| "bad partitions")?,
            "stages" => {
                for stage in items() {
                    let [name, values_in, values_out] = stage.split(':').collect::<Vec<_>>()[..]
                    else {
                        return Err(format!("stage '{stage}' is not NAME:IN:OUT"));
                    };
                    report.stages.push(StageCount {
                        stage: text(name)?,
                        values_in: values_in.parse().map_err(|_| "bad stage count")?,
                        values_out: values_out.parse().map_err(|_| "bad stage count")?,
                    });
                }
            }
            "logs" => {
                for line in items() {
                    let (level, b64) = line.split_once(':').ok_or("log line without level")?;
                    report.logs.push(LogLine {
                        level: parse_level(level)?,
                        text: text(b64)?,
                    });
                }
            }
            "udf" if !v.is_empty() => report.udf = Some(text(v)?),
            _ => {}
        }
    }
    Ok(report)
}

fn parse_level(level: &str) -> Result<LogLevel, String> {
    Ok(match level {
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        "print" => LogLevel::Print,
        other => return Err(format!("unknown level {other}")),
    })
}

/// The name a log level has in the info values (`info`, `print`, …).
pub fn level_text(level: LogLevel) -> &'static str {
    level_name(level)
}

fn namespaces(sandbox: &Sandbox) -> Vec<String> {
    sandbox.store().namespaces()
}

fn truncate(sandbox: &Sandbox, ns: Option<&str>, set: Option<&str>, params: &str) -> String {
    let Some(ns) = ns else {
        return "ERROR:4:namespace required".to_string();
    };
    if !sandbox.store().has_namespace(ns) {
        return "ERROR:20:namespace not found".to_string();
    }
    // `lut` is in nanoseconds since the Unix epoch; the store counts ms since
    // 2010, and no record can be older than that.
    let before_ms = match param(params, "lut").map(str::parse::<u64>) {
        None => None,
        Some(Ok(nanos)) => match (nanos / 1_000_000).checked_sub(CITRUSLEAF_EPOCH_SECS * 1000) {
            Some(ms) => Some(ms),
            None => {
                return "ERROR:4:lut is before 2010-01-01, where the server's clock starts"
                    .to_string();
            }
        },
        Some(Err(_)) => return "ERROR:4:invalid lut".to_string(),
    };
    // The server will not truncate to a time after its clock.
    if before_ms.is_some_and(|ms| ms > store::now_cf_ms()) {
        return "ERROR::would-truncate-in-the-future".to_string();
    }
    match sandbox.store().truncate(ns, set, before_ms) {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!("truncate {ns}: {e}");
            "ERROR::truncate failed".to_string()
        }
    }
}

fn namespace_stats(sandbox: &Sandbox, ns: &str) -> String {
    if !sandbox.store().has_namespace(ns) {
        return "ERROR:20:namespace not found".to_string();
    }
    let objects = sandbox.store().count(ns);
    format!(
        "objects={objects};tombstones=0;replication-factor=1;default-ttl=0;storage-engine=memory"
    )
}

/// The `--lua-libs` spelling of a mode.
pub fn lua_libs_name(libs: LuaLibs) -> &'static str {
    match libs {
        LuaLibs::Default => "default",
        LuaLibs::All => "all",
        LuaLibs::Hardened => "hardened",
    }
}

fn sandbox_summary(sandbox: &Sandbox) -> String {
    let config = sandbox.config();
    let libs = lua_libs_name(config.lua_libs);
    let storage = if config.data_dir.is_some() {
        "directory"
    } else {
        "memory"
    };
    format!(
        "asudf={};lua-libs={libs};max-udf-ms={};storage={storage}",
        env!("CARGO_PKG_VERSION"),
        config.max_udf_ms.unwrap_or(0),
    )
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
        LogLevel::Print => "print",
    }
}

/// `sandbox-logs` value: entries joined by `;`, each
/// `seq,ns,digest-hex,base64(module.function),lines` where lines are
/// `level:base64(text)` joined by `|` (see docs/sandbox-info.md).
pub fn encode_logs(logs: &[CallLog]) -> String {
    encode(logs, false)
}

/// `sandbox-calls` value: as `sandbox-logs` with the run time in µs before
/// the lines, `seq,ns,digest-hex,base64(module.function),run-us,lines`, and
/// every call, not only those that logged.
pub fn encode_calls(calls: &[CallLog]) -> String {
    encode(calls, true)
}

fn encode(logs: &[CallLog], timed: bool) -> String {
    let entries: Vec<String> = logs
        .iter()
        .map(|log| {
            let lines: Vec<String> = log
                .lines
                .iter()
                .map(|l| format!("{}:{}", level_name(l.level), B64.encode(&l.text)))
                .collect();
            let run = if timed {
                format!("{},", log.run.as_micros())
            } else {
                String::new()
            };
            format!(
                "{},{},{},{},{run}{}",
                log.seq,
                log.ns,
                hex::encode(log.digest),
                B64.encode(&log.call),
                lines.join("|")
            )
        })
        .collect();
    entries.join(";")
}

/// Parses a `sandbox-logs` value (the inverse of [`encode_logs`]).
pub fn decode_logs(value: &str) -> Result<Vec<CallLog>, String> {
    decode(value, false)
}

/// Parses a `sandbox-calls` value (the inverse of [`encode_calls`]).
pub fn decode_calls(value: &str) -> Result<Vec<CallLog>, String> {
    decode(value, true)
}

fn decode(value: &str, timed: bool) -> Result<Vec<CallLog>, String> {
    let text = |s: &str| -> Result<String, String> {
        let bytes = B64.decode(s).map_err(|e| format!("bad base64: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "text is not UTF-8".to_string())
    };
    let mut out = Vec::new();
    for entry in value.split(';').filter(|e| !e.is_empty()) {
        let mut parts: Vec<&str> = entry.split(',').collect();
        let run = if timed {
            if parts.len() != 6 {
                return Err(format!("entry has {} parts, want 6", parts.len()));
            }
            let us = parts.remove(4);
            Duration::from_micros(us.parse().map_err(|_| "bad run time")?)
        } else {
            Duration::ZERO
        };
        let [seq, ns, digest, call, lines] = parts[..] else {
            return Err(format!("entry has {} parts, want 5", parts.len()));
        };
        let digest: [u8; 20] = hex::decode(digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or("bad digest")?;
        let mut parsed = Vec::new();
        for line in lines.split('|').filter(|l| !l.is_empty()) {
            let (level, b64) = line.split_once(':').ok_or("log line without level")?;
            let level = parse_level(level)?;
            parsed.push(LogLine {
                level,
                text: text(b64)?,
            });
        }
        out.push(CallLog {
            seq: seq.parse().map_err(|_| "bad sequence number")?,
            ns: ns.to_string(),
            digest,
            call: text(call)?,
            lines: parsed,
            run,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_values_decode() {
        let report = decode_stream(
            "done=true;partitions=3;stages=bWFwKGYp:6:6,cmVkdWNlKGFkZCk=:6:3;logs=info:aGk=;udf=c3VtLnRvdGFs;later=1",
        )
        .unwrap();
        assert!(report.done);
        assert_eq!(report.partitions, 3);
        assert_eq!(report.stages.len(), 2);
        assert_eq!(report.stages[1].stage, "reduce(add)");
        assert_eq!(
            (report.stages[1].values_in, report.stages[1].values_out),
            (6, 3)
        );
        assert_eq!(report.logs[0].text, "hi");
        assert_eq!(report.udf.as_deref(), Some("sum.total"));
        let empty = decode_stream("done=false;partitions=0;stages=;logs=;udf=").unwrap();
        assert!(empty.stages.is_empty() && empty.udf.is_none() && !empty.done);
        assert!(decode_stream("done=true;stages=xx").is_err());
    }

    #[test]
    fn request_lines_need_their_newline() {
        assert_eq!(
            parse_request(b"node\nbuild\n").unwrap(),
            vec!["node", "build"]
        );
        assert_eq!(parse_request(b"node\nbuild").unwrap(), vec!["node"]);
        assert_eq!(parse_request(b"").unwrap(), Vec::<&str>::new());
        assert!(parse_request(&[0xff, b'\n']).is_err());
    }

    #[test]
    fn response_echoes_lines_in_order() {
        let out = encode_response([
            ("udf-remove:filename=counter.lua;", "ok".to_string()),
            ("node", "A\tB".to_string()),
        ]);
        assert_eq!(out, b"udf-remove:filename=counter.lua;\tok\nnode\tA B\n");
    }

    #[test]
    fn bitmap_is_684_chars_of_all_partitions() {
        let b = full_bitmap();
        assert_eq!(b.len(), 684);
        assert_eq!(b, format!("{}8=", "/".repeat(682)));
    }

    #[test]
    fn params_are_found_by_key() {
        assert_eq!(param("namespace=test;lut=5", "lut"), Some("5"));
        assert_eq!(param("namespace=test;", "set"), None);
    }

    #[test]
    fn logs_round_trip() {
        let logs = vec![
            CallLog {
                seq: 7,
                ns: "test".into(),
                digest: [0xab; 20],
                call: "counter.increment".into(),
                lines: vec![
                    LogLine {
                        level: LogLevel::Info,
                        text: "a;b,c|d:e\n".into(),
                    },
                    LogLine {
                        level: LogLevel::Print,
                        text: String::new(),
                    },
                ],
                run: Duration::from_micros(1234),
            },
            CallLog {
                seq: 8,
                ns: "test".into(),
                digest: [1; 20],
                call: "m.f".into(),
                lines: vec![],
                run: Duration::ZERO,
            },
        ];
        let text = encode_logs(&logs);
        assert!(!text.contains('\n') && !text.contains('\t'));
        let back = decode_logs(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].lines, logs[0].lines);
        assert_eq!(
            (back[1].seq, back[1].call.as_str(), back[1].digest),
            (8, "m.f", [1; 20])
        );
        assert!(decode_logs("1,2").is_err());

        // The timed form carries the run time, and only that form does.
        let text = encode_calls(&logs);
        assert!(text.starts_with("7,test,"), "{text}");
        assert!(text.contains(",1234,info:"), "{text}");
        let back = decode_calls(&text).unwrap();
        assert_eq!(back[0].run, Duration::from_micros(1234));
        assert_eq!(back[0].lines, logs[0].lines);
        assert_eq!(back[1].run, Duration::ZERO);
        assert!(decode_calls(&encode_logs(&logs)).is_err());
        assert!(decode_logs(&text).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_request(&bytes);
        }
    }
}
