//! Connecting the client task to its target, and noticing when it goes away.

use std::path::PathBuf;
use std::sync::Arc;

use aerospike::{AdminPolicy, Client, ClientPolicy, Host};
use tokio::sync::mpsc;

use super::{ConnectionState, Event};
use crate::sandbox::local::{self, Local, LocalServer};
use crate::sandbox::server::{self, ServerHandle, ServerOptions};
use crate::sandbox::{Sandbox, SandboxConfig};
use std::net::SocketAddr;

/// What the client task connects to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A real cluster, by its seeds.
    Cluster {
        hosts: Vec<Host>,
        policy: ClientPolicy,
    },
    /// The user's local sandbox: served by another asudf process when one
    /// holds the directory, else served in this process. `dir: None` is an
    /// empty in-memory sandbox that keeps nothing.
    Sandbox {
        dir: Option<PathBuf>,
        config: SandboxConfig,
    },
}

impl Target {
    /// A short description for the status line and messages.
    pub fn label(&self) -> String {
        match self {
            Target::Cluster { hosts, .. } => hosts
                .iter()
                .map(|h| format!("{}:{}", h.name, h.port))
                .collect::<Vec<_>>()
                .join(","),
            Target::Sandbox { dir: Some(dir), .. } => format!("sandbox {}", dir.display()),
            Target::Sandbox { dir: None, .. } => "sandbox (in memory)".to_string(),
        }
    }
}

/// What the status line shows about the connected cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterInfo {
    pub target: String,
    pub cluster_name: Option<String>,
    pub nodes: Vec<String>,
    pub build: String,
    /// The sandbox's self-description; `None` on a real cluster.
    pub sandbox: Option<String>,
}

/// The task's connection: the client, and the in-process server when this
/// process serves the sandbox.
pub(super) struct Session {
    target: Target,
    client: Option<Arc<Client>>,
    info: Option<ClusterInfo>,
    lost: bool,
    /// The sandbox server this process runs, when it serves the target itself.
    served: Option<Served>,
}

enum Served {
    Directory(LocalServer),
    Memory(ServerHandle),
}

impl Session {
    pub fn new(target: Target) -> Session {
        Session {
            target,
            client: None,
            info: None,
            lost: false,
            served: None,
        }
    }

    pub fn client(&self) -> Option<Arc<Client>> {
        self.client.clone()
    }

    pub fn is_sandbox(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.sandbox.is_some())
    }

    /// Connects if not connected, telling `events` what happened.
    pub async fn ensure_connected(&mut self, events: &mpsc::UnboundedSender<Event>) {
        if self.client.is_some() {
            return;
        }
        if !self.lost {
            let _ = events.send(Event::Connection(ConnectionState::Connecting {
                target: self.target.label(),
            }));
        }
        match self.connect().await {
            Ok((client, info)) => {
                self.client = Some(Arc::new(client));
                self.info = Some(info.clone());
                self.lost = false;
                let _ = events.send(Event::Connection(ConnectionState::Connected(info)));
            }
            Err(reason) => {
                if !self.lost {
                    let _ = events.send(Event::Connection(ConnectionState::Lost { reason }));
                }
                self.lost = true;
            }
        }
    }

    /// Periodic health check: notices a lost cluster and reconnects.
    pub async fn check(&mut self, events: &mpsc::UnboundedSender<Event>) {
        if let Some(client) = &self.client {
            if client.is_connected() && !client.nodes().is_empty() {
                return;
            }
            let _ = events.send(Event::Connection(ConnectionState::Lost {
                reason: "the cluster stopped answering".into(),
            }));
            self.lost = true;
            // A sandbox served by another process may have gone away: a new
            // client finds (or becomes) its server. A cluster keeps its client,
            // which re-seeds by itself.
            if matches!(self.target, Target::Sandbox { .. }) {
                if let Some(client) = self.client.take() {
                    let _ = client.close().await;
                }
            } else {
                self.await_recovery(events).await;
                return;
            }
        }
        self.ensure_connected(events).await;
    }

    async fn await_recovery(&mut self, events: &mpsc::UnboundedSender<Event>) {
        let Some(client) = &self.client else { return };
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if client.is_connected() && !client.nodes().is_empty() {
                if let Ok(info) = describe(client, &self.target).await {
                    self.info = Some(info.clone());
                    self.lost = false;
                    let _ = events.send(Event::Connection(ConnectionState::Connected(info)));
                }
                return;
            }
        }
    }

    async fn connect(&mut self) -> Result<(Client, ClusterInfo), String> {
        let (hosts, policy) = match &self.target {
            Target::Cluster { hosts, policy } => (hosts.clone(), policy.clone()),
            Target::Sandbox { dir, config } => {
                let addr = match &self.served {
                    Some(Served::Directory(server)) => server.addr(),
                    Some(Served::Memory(server)) => server.addr(),
                    None => {
                        let (addr, served) = start_sandbox(dir.clone(), config.clone())
                            .await
                            .map_err(|e| format!("cannot open the sandbox: {e}"))?;
                        self.served = served;
                        addr
                    }
                };
                let host = Host::new(&addr.ip().to_string(), addr.port());
                (vec![host], ClientPolicy::default())
            }
        };
        let client = Client::new(&policy, &hosts)
            .await
            .map_err(|e| connect_error(&self.target, &e))?;
        let info = describe(&client, &self.target)
            .await
            .map_err(|e| format!("{}: {}", self.target.label(), e.base_message()))?;
        Ok((client, info))
    }

    pub async fn close(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        match self.served.take() {
            Some(Served::Directory(server)) => server.shutdown().await,
            Some(Served::Memory(mut server)) => server.shutdown().await,
            None => {}
        }
    }
}

/// One sentence saying why the connection failed.
fn connect_error(target: &Target, e: &aerospike::Error) -> String {
    let message = e.base_message();
    let lower = message.to_lowercase();
    let hint = if lower.contains("password")
        || lower.contains("credential")
        || lower.contains("user")
    {
        "the user or password was refused"
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        "the TLS handshake failed"
    } else {
        "no node answered"
    };
    // The crate's message spans lines (one per seed); its last clause is the cause.
    let last = message
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let cause = last.rsplit(": ").next().unwrap_or(last);
    format!("cannot connect to {}: {hint} ({cause})", target.label())
}

async fn describe(client: &Client, target: &Target) -> aerospike::Result<ClusterInfo> {
    let answers = client
        .info(&AdminPolicy::default(), &["build", "sandbox"])
        .await?;
    let build = answers.get("build").cloned().unwrap_or_default();
    let sandbox = answers
        .get("sandbox")
        .filter(|v| !v.starts_with("ERROR"))
        .cloned();
    Ok(ClusterInfo {
        target: target.label(),
        cluster_name: client.server_cluster_name(),
        nodes: client.node_names(),
        build,
        sandbox,
    })
}

/// Connects to the process serving the sandbox directory, or serves it here.
async fn start_sandbox(
    dir: Option<PathBuf>,
    config: SandboxConfig,
) -> std::io::Result<(SocketAddr, Option<Served>)> {
    match dir {
        Some(dir) => {
            let config = SandboxConfig {
                data_dir: Some(dir),
                ..config
            };
            match local::open_or_connect_with(config, ServerOptions::default()).await? {
                Local::AlreadyServed(addr) => Ok((addr, None)),
                Local::Serving(server) => Ok((server.addr(), Some(Served::Directory(server)))),
            }
        }
        None => {
            let config = SandboxConfig {
                data_dir: None,
                ..config
            };
            let sandbox = tokio::task::spawn_blocking(move || Sandbox::open(config))
                .await
                .map_err(std::io::Error::other)??;
            let server = server::start(sandbox, ServerOptions::default()).await?;
            Ok((server.addr(), Some(Served::Memory(server))))
        }
    }
}
