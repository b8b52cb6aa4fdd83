//! Connecting the client task to its target, and noticing when it goes away.

use std::path::PathBuf;
use std::sync::Arc;

use aerospike::{AdminPolicy, Client, ClientPolicy, Host};
use tokio::sync::mpsc;

use super::{ConnectionState, Event};
use crate::sandbox::local::{self, Local, LocalServer, Sharing};
use crate::sandbox::server::{self, ServerHandle, ServerOptions};
use crate::sandbox::{Sandbox, SandboxConfig};
use std::net::SocketAddr;

/// What the client task connects to.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per process
pub enum Target {
    /// A real cluster, by its seeds.
    Cluster {
        hosts: Vec<Host>,
        policy: ClientPolicy,
    },
    /// The user's local sandbox: served by another asudf process when one
    /// serves the directory to others, else served in this process (to
    /// others too when `sharing` says so). `dir: None` is an empty
    /// in-memory sandbox that keeps nothing.
    Sandbox {
        dir: Option<PathBuf>,
        config: SandboxConfig,
        sharing: Sharing,
    },
}

impl Target {
    /// An empty in-memory sandbox, served in this process to it alone.
    pub fn in_memory(config: SandboxConfig) -> Target {
        Target::Sandbox {
            dir: None,
            config,
            sharing: Sharing::Private,
        }
    }

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
    /// This process serves it: it stops when this process ends.
    pub served_here: bool,
}

/// A connection attempt running in the background, so the task never waits on it.
pub(super) type Attempt = tokio::task::JoinHandle<Result<Connected, String>>;

pub(super) struct Connected {
    client: Client,
    info: ClusterInfo,
    /// A sandbox server this attempt started in this process.
    served: Option<Served>,
}

/// The task's connection: the client, and the in-process server when this
/// process serves the sandbox.
pub(super) struct Session {
    target: Target,
    client: Option<Arc<Client>>,
    info: Option<ClusterInfo>,
    /// The connection went away (or never came); requests fail fast meanwhile.
    lost: bool,
    served: Option<Served>,
    /// Where requests find the current client (see `client::Shared`).
    published: Published,
}

/// The client requests should use, and whether it talks to a sandbox.
pub(super) type Published = Arc<parking_lot::RwLock<Option<(Arc<Client>, bool)>>>;

enum Served {
    Directory(LocalServer),
    Memory(ServerHandle),
}

impl Served {
    fn addr(&self) -> SocketAddr {
        match self {
            Served::Directory(server) => server.addr(),
            Served::Memory(server) => server.addr(),
        }
    }
}

impl Session {
    pub fn new(target: Target, published: Published) -> Session {
        Session {
            target,
            client: None,
            info: None,
            lost: false,
            served: None,
            published,
        }
    }

    /// Publishes the client requests should use, then tells the UI: a
    /// request sent on hearing "connected" finds the client there.
    fn announce(&self, events: &mpsc::UnboundedSender<Event>, state: ConnectionState) {
        *self.published.write() = self.client().map(|c| (c, self.is_sandbox()));
        let _ = events.send(Event::Connection(state));
    }

    /// The client to use now; `None` while not connected.
    pub fn client(&self) -> Option<Arc<Client>> {
        self.client.clone().filter(|_| !self.lost)
    }

    pub fn is_sandbox(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.sandbox.is_some())
    }

    /// Starts connecting in the background.
    pub fn attempt(&self, events: &mpsc::UnboundedSender<Event>) -> Attempt {
        if !self.lost {
            let target = self.target.label();
            self.announce(events, ConnectionState::Connecting { target });
        }
        let target = self.target.clone();
        let serving = self.served.as_ref().map(Served::addr);
        tokio::spawn(connect(target, serving))
    }

    /// Takes in what an attempt gave.
    pub fn attempted(
        &mut self,
        result: Result<Connected, String>,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        match result {
            Ok(connected) => {
                self.client = Some(Arc::new(connected.client));
                self.info = Some(connected.info.clone());
                if connected.served.is_some() {
                    self.served = connected.served;
                }
                self.lost = false;
                self.announce(events, ConnectionState::Connected(connected.info));
            }
            Err(reason) => {
                let first = !self.lost;
                self.lost = true;
                if first {
                    self.announce(events, ConnectionState::Lost { reason });
                }
            }
        }
    }

    /// The periodic health check: notices a lost cluster and its return.
    /// Returns an attempt to start when a new client is needed.
    pub async fn check(&mut self, events: &mpsc::UnboundedSender<Event>) -> Option<Attempt> {
        let Some(client) = self.client.clone() else {
            return Some(self.attempt(events));
        };
        let healthy = client.is_connected() && !client.nodes().is_empty();
        if healthy && self.lost {
            if let Ok(info) = describe(&client, &self.target, self.served.is_some()).await {
                self.info = Some(info.clone());
                self.lost = false;
                self.announce(events, ConnectionState::Connected(info));
            }
        } else if !healthy && !self.lost {
            self.lost = true;
            let reason = format!("{} stopped answering", self.target.label());
            self.announce(events, ConnectionState::Lost { reason });
        }
        // A sandbox served by another process may be gone for good: a new
        // client finds (or becomes) its server. A cluster's client re-seeds
        // by itself.
        let replace =
            !healthy && matches!(self.target, Target::Sandbox { .. }) && self.served.is_none();
        if replace {
            self.client = None;
            tokio::spawn(async move { client.close().await });
            return Some(self.attempt(events));
        }
        None
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

/// Connects to the target: a sandbox is found or served first.
async fn connect(target: Target, serving: Option<SocketAddr>) -> Result<Connected, String> {
    let (hosts, policy, served) = match &target {
        Target::Cluster { hosts, policy } => (hosts.clone(), policy.clone(), None),
        Target::Sandbox {
            dir,
            config,
            sharing,
        } => {
            let (addr, served) = match serving {
                Some(addr) => (addr, None),
                None => start_sandbox(dir.clone(), config.clone(), *sharing)
                    .await
                    .map_err(|e| format!("cannot open the sandbox: {e}"))?,
            };
            let host = Host::new(&addr.ip().to_string(), addr.port());
            (vec![host], ClientPolicy::default(), served)
        }
    };
    let client = Client::new(&policy, &hosts)
        .await
        .map_err(|e| connect_error(&target, &e.base_message()))?;
    let info = describe(&client, &target, served.is_some() || serving.is_some())
        .await
        .map_err(|e| format!("{}: {}", target.label(), e.base_message()))?;
    Ok(Connected {
        client,
        info,
        served,
    })
}

/// One sentence saying why the connection failed.
fn connect_error(target: &Target, message: &str) -> String {
    let lower = message.to_lowercase();
    let hint = if lower.contains("partition table never formed") {
        // Its text names the user among possible causes: not an auth failure.
        "the nodes answered but never gave a partition map"
    } else if lower.contains("password") || lower.contains("credential") || lower.contains("user") {
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

async fn describe(
    client: &Client,
    target: &Target,
    served_here: bool,
) -> aerospike::Result<ClusterInfo> {
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
        served_here,
    })
}

/// Connects to the process serving the sandbox directory, or serves it here.
async fn start_sandbox(
    dir: Option<PathBuf>,
    config: SandboxConfig,
    sharing: Sharing,
) -> std::io::Result<(SocketAddr, Option<Served>)> {
    match dir {
        Some(dir) => {
            let config = SandboxConfig {
                data_dir: Some(dir),
                ..config
            };
            match local::open_or_connect_with(config, ServerOptions::default(), sharing).await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_map_that_never_formed_is_not_blamed_on_the_password() {
        let target = Target::in_memory(SandboxConfig::default());
        let said = connect_error(
            &target,
            "Connected to 1 node(s) but the partition table never formed (0 node(s) reported \
             partition data, 0 namespace(s) mapped). The cluster is reachable but not routable \
             — check that the nodes have finished starting up and that the configured user is \
             allowed to read cluster metadata.",
        );
        assert!(said.contains("never gave a partition map"), "{said}");
        let said = connect_error(&target, "Authentication failed: invalid password");
        assert!(said.contains("the user or password was refused"), "{said}");
    }
}
