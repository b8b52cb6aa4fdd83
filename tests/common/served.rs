//! A sandbox server with every Lua library (as the cases were recorded)
//! and an `aerospike` client connected to it, driven from a test's thread.
#![allow(dead_code)] // each test target uses part of the shared support

use aerospike::{AdminPolicy, Client, ClientPolicy};
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{LuaLibs, Sandbox, SandboxConfig};

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
