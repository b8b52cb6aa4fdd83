//! A sandbox server with every Lua library (as the cases were recorded)
//! and an `aerospike` client connected to it, driven from a test's thread.
#![allow(dead_code)] // each test target uses part of the shared support

use aerospike::{AdminPolicy, Client, ClientPolicy, Value as AsValue};
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{LuaLibs, Sandbox, SandboxConfig, Value};

/// The HyperLogLog particle type.
const HLL: u8 = 18;

pub struct Served {
    pub runtime: tokio::runtime::Runtime,
    pub server: ServerHandle,
    pub client: Client,
}

impl Served {
    pub fn start() -> Served {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (server, client) = runtime.block_on(async {
            let config = SandboxConfig {
                lua_libs: LuaLibs::All,
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::open(config).unwrap();
            let server = server::start(sandbox, ServerOptions::default())
                .await
                .unwrap();
            let hosts = format!("127.0.0.1:{}", server.addr().port());
            let client = Client::new(&ClientPolicy::default(), &hosts).await.unwrap();
            (server, client)
        });
        Served {
            runtime,
            server,
            client,
        }
    }
}

/// An info command's value.
pub fn info(runtime: &tokio::runtime::Runtime, client: &Client, command: &str) -> String {
    let reply = runtime
        .block_on(client.info(&AdminPolicy::default(), &[command]))
        .unwrap_or_else(|e| panic!("info {command}: {e}"));
    reply.get(command).cloned().unwrap_or_default()
}

/// A sandbox value as the client's.
pub fn to_client(v: &Value) -> AsValue {
    match v {
        Value::Nil => AsValue::Nil,
        Value::Bool(b) => AsValue::Bool(*b),
        Value::Int(i) => AsValue::Int(*i),
        Value::Float(f) => AsValue::from(*f),
        Value::Str(s) => AsValue::String(String::from_utf8(s.clone()).expect("UTF-8")),
        Value::Bytes { ty, data } if *ty == HLL => AsValue::Hll(data.clone()),
        Value::Bytes { data, .. } => AsValue::Blob(data.clone()),
        Value::List(items) => AsValue::List(items.iter().map(to_client).collect()),
        Value::Map(pairs) => AsValue::OrderedMap(
            pairs
                .iter()
                .map(|(k, v)| (to_client(k), to_client(v)))
                .collect(),
        ),
        Value::GeoJson(s) => AsValue::GeoJson(s.clone()),
    }
}
