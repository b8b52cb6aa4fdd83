//! Local sandbox directories, and what `asudf serve` runs.
//!
//! One process serves a directory at a time: it holds an OS lock on
//! `<dir>/lock`. A process that serves it for others (the console, `asudf
//! serve`) writes the address it listens on to `<dir>/address`, and another
//! process that finds the lock taken connects there instead of opening the
//! data itself. A one-shot command serves the directory to itself alone and
//! publishes no address: it would stop under anyone it served. Others wait
//! for its lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sandbox::engine::{LuaLibs, Sandbox, SandboxConfig};
use crate::sandbox::server::{self, Credentials, ServerHandle, ServerOptions, TlsFiles};

const LOCK_FILE: &str = "lock";
const ADDRESS_FILE: &str = "address";
/// How long to wait for the process that holds the lock: to publish its
/// address, or to finish with the directory.
const HOLDER_WAIT: Duration = Duration::from_secs(60);
/// How often to look again meanwhile.
const HOLDER_POLL: Duration = Duration::from_millis(20);

/// A directory this process serves; the lock is held until [`LocalServer::shutdown`] or drop.
pub struct LocalServer {
    handle: ServerHandle,
    dir: PathBuf,
    lock: Option<File>,
}

impl LocalServer {
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn handle(&mut self) -> &mut ServerHandle {
        &mut self.handle
    }

    pub fn node_id(&self) -> &str {
        self.handle.node_id()
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.handle.sandbox()
    }

    /// Stops serving, removes the address file and releases the lock.
    pub async fn shutdown(mut self) {
        self.handle.shutdown().await;
        self.release();
    }

    fn release(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = remove_address(&self.dir);
            drop(lock);
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.release();
    }
}

/// What [`open_or_connect`] found.
pub enum Local {
    /// Another process serves the directory at this address.
    AlreadyServed(SocketAddr),
    /// This process now serves it.
    Serving(LocalServer),
}

/// Who may use the server of a directory this process opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Other processes connect to it (its address is published).
    Shared,
    /// This process alone: others wait until it is done.
    Private,
}

/// Serves `dir` in-process on 127.0.0.1 (any free port) unless another process already does.
pub async fn open_or_connect(dir: &Path, sharing: Sharing) -> io::Result<Local> {
    let config = SandboxConfig {
        data_dir: Some(dir.to_path_buf()),
        ..SandboxConfig::default()
    };
    open_or_connect_with(config, ServerOptions::default(), sharing).await
}

/// [`open_or_connect`] with a full configuration; `config.data_dir` must be set.
pub async fn open_or_connect_with(
    config: SandboxConfig,
    opts: ServerOptions,
    sharing: Sharing,
) -> io::Result<Local> {
    let dir = config.data_dir.clone().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a local sandbox needs a directory",
        )
    })?;
    let deadline = Instant::now() + HOLDER_WAIT;
    loop {
        if let Some(lock) = lock_dir(&dir)? {
            let sandbox = open_sandbox(config).await?;
            let handle = server::start(sandbox, opts).await?;
            match sharing {
                Sharing::Shared => write_address(&dir, connect_address(handle.addr()))?,
                // An address left by a holder that died must not send anyone here.
                Sharing::Private => remove_address(&dir)?,
            }
            return Ok(Local::Serving(LocalServer {
                handle,
                dir,
                lock: Some(lock),
            }));
        }
        if let Some(addr) = published_address(&dir)
            && answers(addr).await
        {
            return Ok(Local::AlreadyServed(addr));
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is in use by another asudf command, which did not finish within {} s",
                    dir.display(),
                    HOLDER_WAIT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(HOLDER_POLL).await;
    }
}

/// Takes the directory's lock, or `None` when another process holds it.
fn lock_dir(dir: &Path) -> io::Result<Option<File>> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// A listener on 0.0.0.0 is reached through 127.0.0.1.
fn connect_address(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

fn write_address(dir: &Path, addr: SocketAddr) -> io::Result<()> {
    // Write then rename, so a reader never sees half an address.
    let tmp = dir.join(format!("{ADDRESS_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(tmp, dir.join(ADDRESS_FILE))
}

fn remove_address(dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(dir.join(ADDRESS_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The address the lock holder published, if it has.
fn published_address(dir: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(dir.join(ADDRESS_FILE)).ok()?;
    text.trim().parse().ok()
}

/// Whether a server listens there (an address file can outlive its process).
async fn answers(addr: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    )
}

async fn open_sandbox(config: SandboxConfig) -> io::Result<Sandbox> {
    tokio::task::spawn_blocking(move || Sandbox::open(config))
        .await
        .map_err(io::Error::other)?
}

/// Where `asudf serve` keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Memory,
    Directory(PathBuf),
}

/// Everything `asudf serve` takes (the CLI maps its flags onto this).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: IpAddr,
    pub port: u16,
    pub namespaces: Vec<String>,
    pub cluster_name: String,
    pub lua_libs: LuaLibs,
    pub max_udf_ms: Option<u64>,
    /// `background-query-max-rps`.
    pub background_max_rps: u32,
    pub storage: Storage,
    pub user: Option<String>,
    /// File whose first line is the user's password.
    pub password_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Announce the address as one JSON object (`--json`) instead of a line.
    pub json: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 3000,
            namespaces: vec!["test".to_string()],
            cluster_name: "sandbox".to_string(),
            lua_libs: LuaLibs::Default,
            max_udf_ms: None,
            background_max_rps: crate::sandbox::query::DEFAULT_BACKGROUND_MAX_RPS,
            storage: Storage::Memory,
            user: None,
            password_file: None,
            tls_cert: None,
            tls_key: None,
            json: false,
        }
    }
}

impl ServeOptions {
    /// Checks the combination and turns it into the sandbox and server configuration.
    pub fn resolve(&self) -> anyhow::Result<(SandboxConfig, ServerOptions)> {
        use anyhow::{Context, bail};
        if !self.bind.is_loopback() && self.lua_libs == LuaLibs::All {
            bail!(
                "--lua-libs all gives UDFs the io and os libraries: refused with a non-loopback --bind"
            );
        }
        if self.namespaces.is_empty() {
            bail!("at least one namespace is needed");
        }
        let auth = match (&self.user, &self.password_file) {
            (None, None) => None,
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the password file {}", file.display()))?;
                let password = text.lines().next().unwrap_or("").to_string();
                if password.is_empty() {
                    bail!("the password file {} is empty", file.display());
                }
                Some(Credentials {
                    user: user.clone(),
                    password,
                })
            }
            _ => bail!("--user and --password-file go together"),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let config = SandboxConfig {
            data_dir: match &self.storage {
                Storage::Memory => None,
                Storage::Directory(dir) => Some(dir.clone()),
            },
            namespaces: self.namespaces.clone(),
            lua_libs: self.lua_libs,
            max_udf_ms: self.max_udf_ms,
            ..SandboxConfig::default()
        };
        let server = ServerOptions {
            bind: self.bind,
            port: self.port,
            cluster_name: self.cluster_name.clone(),
            tls,
            auth,
            background_max_rps: self.background_max_rps,
        };
        Ok((config, server))
    }
}

/// Runs the sandbox server until SIGINT or SIGTERM, with what
/// [`ServeOptions::resolve`] made of `opts`.
pub async fn serve(
    opts: ServeOptions,
    (config, server_opts): (SandboxConfig, ServerOptions),
) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    if !opts.bind.is_loopback() {
        eprintln!(
            "warning: listening on {} makes the sandbox reachable from other machines",
            opts.bind
        );
    }
    // A directory is served under its lock; memory needs none.
    let (local, mut memory) = match &config.data_dir {
        Some(dir) => match open_or_connect_with(config.clone(), server_opts, Sharing::Shared)
            .await?
        {
            Local::AlreadyServed(addr) => bail!("{} is already served at {addr}", dir.display()),
            Local::Serving(server) => (Some(server), None),
        },
        None => {
            let sandbox = open_sandbox(config.clone())
                .await
                .context("opening the sandbox")?;
            let handle = server::start(sandbox, server_opts)
                .await
                .context("starting the listener")?;
            (None, Some(handle))
        }
    };
    let addr = local
        .as_ref()
        .map(LocalServer::addr)
        .or(memory.as_ref().map(ServerHandle::addr))
        .map(|a| a.to_string())
        .unwrap_or_default();
    let storage = match &config.data_dir {
        Some(dir) => dir.display().to_string(),
        None => "memory".to_string(),
    };
    let libs = server::info::lua_libs_name(config.lua_libs);
    let banner = if opts.json {
        serde_json::json!({
            "ok": true,
            "listening": addr,
            "cluster_name": opts.cluster_name,
            "namespaces": config.namespaces,
            "lua_libs": libs,
            "storage": storage,
            "tls": opts.tls_cert.is_some(),
        })
        .to_string()
    } else {
        let tls = if opts.tls_cert.is_some() { ", tls" } else { "" };
        format!(
            "asudf sandbox listening on {addr} (cluster-name {}, namespaces {}, lua-libs {libs}, {storage}{tls})",
            opts.cluster_name,
            config.namespaces.join(","),
        )
    };
    // The server goes on serving when no one reads this line any more
    // (`asudf serve | head -1`): a failed write is no reason to stop.
    let _ = writeln!(io::stdout(), "{banner}");
    wait_for_signal().await?;
    if let Some(server) = local {
        server.shutdown().await;
    }
    if let Some(handle) = memory.as_mut() {
        handle.shutdown().await;
    }
    Ok(())
}

async fn wait_for_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_by_a_second_opener() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(lock_dir(dir.path()).unwrap().is_none());
        drop(first);
        assert!(lock_dir(dir.path()).unwrap().is_some());
    }

    #[test]
    fn the_published_address_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        write_address(dir.path(), addr).unwrap();
        assert_eq!(published_address(dir.path()), Some(addr));
        remove_address(dir.path()).unwrap();
        assert_eq!(published_address(dir.path()), None);
    }

    #[test]
    fn serve_options_refuse_unsafe_combinations() {
        let mut opts = ServeOptions {
            bind: "0.0.0.0".parse().unwrap(),
            lua_libs: LuaLibs::All,
            ..ServeOptions::default()
        };
        assert!(opts.resolve().is_err());
        opts.lua_libs = LuaLibs::Default;
        assert!(opts.resolve().is_ok());
        opts.user = Some("admin".into());
        assert!(opts.resolve().is_err());
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        opts.password_file = Some(pw);
        let (_, server) = opts.resolve().unwrap();
        assert_eq!(server.auth.unwrap().password, "secret");
        opts.tls_cert = Some("c.pem".into());
        assert!(opts.resolve().is_err());
    }

    #[test]
    fn unspecified_binds_publish_loopback() {
        let addr: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert_eq!(connect_address(addr).to_string(), "127.0.0.1:3000");
    }
}
