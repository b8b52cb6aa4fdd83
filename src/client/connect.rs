//! Connecting the client task to its target, and noticing when it goes away.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let started = Instant::now();
    let deadline = connect_deadline(&policy, hosts.len());
    let client = tokio::time::timeout(deadline, Client::new(&policy, &hosts))
        .await
        .map_err(|_| connect_error(&target, "timeout", started.elapsed()))?
        .map_err(|e| connect_error(&target, &e.base_message(), started.elapsed()))?;
    let info = describe(&client, &target, served.is_some() || serving.is_some())
        .await
        .map_err(|e| format!("{}: {}", target.label(), e.base_message()))?;
    Ok(Connected {
        client,
        info,
        served,
    })
}

/// How long connecting may take before it is given up as hung. The crate
/// bounds each TCP connect and each read but not the TLS handshake
/// (aerospike-core 3.0 awaits it bare), so a host that accepts and never
/// answers would hold `Client::new` forever. Seeds are tried one after
/// another, each for at most the connect and login timeouts, over two
/// passes before the crate gives up: past that it is hung. It is never
/// under [`CONNECT_FLOOR`]: `Client::new` also waits for the partition
/// map, which those timeouts do not bound (a short `--timeout` is meant
/// per request).
fn connect_deadline(policy: &ClientPolicy, seeds: usize) -> Duration {
    // The crate's own fallbacks: timeout 0 is 30 s; connect_timeout, else
    // timeout; login_timeout, else connect.
    let or = |ms: u32, fallback: u64| if ms == 0 { fallback } else { u64::from(ms) };
    let connect = or(policy.connect_timeout, or(policy.timeout, 30_000));
    let login = or(policy.login_timeout, connect);
    let hung = Duration::from_millis(2 * (connect + login) * seeds.max(1) as u64);
    hung.max(CONNECT_FLOOR)
}

/// The least time connecting is given (see [`connect_deadline`]).
const CONNECT_FLOOR: Duration = Duration::from_secs(5);

fn timed_out(waited: Duration) -> String {
    format!("no answer, timed out after {} ms", waited.as_millis())
}

/// One sentence saying why the connection failed. `waited` is how long
/// the attempt took, said when it timed out.
fn connect_error(target: &Target, message: &str, waited: Duration) -> String {
    let label = target.label();
    let tls = matches!(target, Target::Cluster { policy, .. } if policy.tls_policy.is_some());
    let detail = if message.contains("partition table never formed") {
        // Its text names the user among possible causes: not an auth failure.
        "the nodes answered but never gave a partition map".to_string()
    } else {
        // After its first line the crate lists one seed a line: "  HOST Error N: …".
        let seeds: Vec<(&str, &str)> = message
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().split_once(' '))
            .collect();
        match seeds.as_slice() {
            [] => seed_failure(message, waited, tls),
            [(_, error)] => seed_failure(error, waited, tls),
            many => many
                .iter()
                .map(|(host, error)| format!("{host} {}", seed_failure(error, waited, tls)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    };
    format!("cannot connect to {label}: {detail}")
}

fn seed_failure(error: &str, waited: Duration, tls: bool) -> String {
    let lower = error.to_lowercase();
    // The error's last clause is its cause; the rest is the crate's framing.
    let cause = error.trim().rsplit(": ").next().unwrap_or(error).trim();
    if lower.contains("invalid dns name") {
        // With no TLS name for the host, the crate checks the certificate
        // against an empty name.
        "TLS needs the server's certificate name: give the host as HOST:TLSNAME:PORT \
         or add --tls-name NAME"
            .to_string()
    } else if !tls && lower.contains("failed to fill whole buffer") {
        // The server closed the connection on the first bytes: a TLS
        // server does that to a plain hello.
        format!("no node answered ({cause}); if the server wants TLS, give --tls-cafile FILE")
    } else if lower.contains("not authenticated") {
        // The node answered: it wants a login this client did not send.
        "the server needs a user and password (-U/--user, -P/--password)".to_string()
    } else if lower.contains("password") || lower.contains("credential") || lower.contains("user") {
        format!("the user or password was refused ({cause})")
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        format!("the TLS handshake failed ({cause})")
    } else if lower.contains("timeout") {
        timed_out(waited)
    } else if lower.contains("connection refused") {
        "connection refused (nothing listens on that port)".to_string()
    } else if lower.contains("invalid size for info command buffer")
        || lower.contains("bad server response")
    {
        // Another protocol's reply (an HTTP proxy's, say) read as a header.
        "something answered but not in Aerospike's protocol (is it a node's service port?)"
            .to_string()
    } else {
        format!("no node answered ({cause})")
    }
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

    /// The hang guard follows the crate's timeouts (0 is its 30 s), and a
    /// short per-request `--timeout` does not cut connecting short.
    #[test]
    fn connecting_is_given_the_crates_timeouts_and_never_less_than_the_floor() {
        let policy = |timeout, connect_timeout, login_timeout| ClientPolicy {
            timeout,
            connect_timeout,
            login_timeout,
            ..ClientPolicy::default()
        };
        let secs = |p: ClientPolicy, seeds| connect_deadline(&p, seeds).as_secs();
        assert_eq!(
            secs(policy(0, 0, 0), 1),
            120,
            "--timeout 0: the crate's 30 s"
        );
        assert_eq!(secs(policy(0, 0, 0), 2), 240);
        assert_eq!(secs(policy(10_000, 0, 0), 1), 40);
        assert_eq!(secs(policy(10_000, 2_000, 0), 1), 8);
        assert_eq!(secs(policy(10_000, 2_000, 500), 1), 5, "the floor");
        assert_eq!(secs(policy(50, 0, 0), 3), 5, "the floor");
    }

    #[test]
    fn a_partition_map_that_never_formed_is_not_blamed_on_the_password() {
        let target = Target::in_memory(SandboxConfig::default());
        let said = connect_error(
            &target,
            "Connected to 1 node(s) but the partition table never formed (0 node(s) reported \
             partition data, 0 namespace(s) mapped). The cluster is reachable but not routable \
             — check that the nodes have finished starting up and that the configured user is \
             allowed to read cluster metadata.",
            Duration::ZERO,
        );
        assert!(said.contains("never gave a partition map"), "{said}");
        let said = connect_error(
            &target,
            "Authentication failed: invalid password",
            Duration::ZERO,
        );
        assert!(said.contains("the user or password was refused"), "{said}");
    }

    /// The crate's texts for each seed, as seen from real failures.
    fn seeds_failed(lines: &[&str]) -> String {
        let mut message = format!(
            "Unable to communicate with server cluster: Failed to connect to [{}] host(s):\n",
            lines.len()
        );
        for line in lines {
            message.push_str(&format!("  {line}\n"));
        }
        let target = Target::Cluster {
            hosts: vec![Host::new("h", 3000)],
            policy: ClientPolicy::default(),
        };
        connect_error(&target, &message, Duration::from_millis(2004))
    }

    #[test]
    fn each_seed_failure_is_said_in_words_not_the_crate_internals() {
        // An HTTP reply's "HTTP/1.1" read as a header: its size was a bogus number.
        let said = seeds_failed(&[
            "10.255.255.1:3000 Error 4: Invalid argument: Invalid size for info command buffer: 92703365869105",
        ]);
        assert_eq!(
            said,
            "cannot connect to h:3000: something answered but not in Aerospike's protocol \
             (is it a node's service port?)"
        );
        let said = seeds_failed(&[
            "127.0.0.1:3 Error 9: Client Timeout: Timeout reading from the network connection",
        ]);
        assert_eq!(
            said,
            "cannot connect to h:3000: no answer, timed out after 2004 ms"
        );
        let said = seeds_failed(&[
            "127.0.0.1:3777 Error -3: Invalid cluster node: Node ERROR:80:not authenticated 127.0.0.1:3777 returned invalid partition-generation: ERROR:80:not authenticated",
        ]);
        assert_eq!(
            said,
            "cannot connect to h:3000: the server needs a user and password (-U/--user, -P/--password)"
        );
        let said = seeds_failed(&[
            "a:1 Error -1: Error during an I/O operation: Connection refused (os error 111)",
            "b:2 Error 65, node=b:2: Invalid credential",
        ]);
        assert_eq!(
            said,
            "cannot connect to h:3000: a:1 connection refused (nothing listens on that port); \
             b:2 the user or password was refused (Invalid credential)"
        );
    }
}
