//! Bringing the daemon up and down: store, kernel, start-up repair, listeners, signals.

mod listener;
mod login;

pub use login::login_url;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::api::guard::Guard;
use crate::api::tokens::Tokens;
use crate::config::ServeArgs;
use crate::kernel::Kernel;
use crate::service::{Daemon, Settings};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot open netlink: {0}")]
    Kernel(#[from] crate::kernel::KernelError),
    #[error("start-up failed: {0}")]
    Startup(#[from] crate::service::Error),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("another daemon is already serving on {0}")]
    SocketInUse(String),
    #[error("no group named {0}")]
    UnknownGroup(String),
    #[error(transparent)]
    Tokens(#[from] crate::api::tokens::TokenError),
    #[error(transparent)]
    Tls(#[from] listener::TlsError),
    #[error("cluster store: {0}")]
    Cluster(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServeError {
    let path = path.display().to_string();
    move |source| ServeError::Io { what, path, source }
}

async fn open(args: &ServeArgs) -> Result<(Store, Arc<Daemon>), ServeError> {
    let store = Store::open(&args.db).await?;
    let pools = crate::ipam::with_ipv6_pool(args.pools(), &store.daemon_id().await?);
    if let Some(v6) = pools.iter().find(|p| !p.base.is_ipv4()) {
        tracing::info!(pool = %v6, "automatic IPv6 subnets come from this pool");
    }
    let kernel = Kernel::connect()?;
    let firewall: Arc<dyn crate::kernel::Firewall> = Arc::new(crate::kernel::Nftables::new());
    let settings = Settings {
        pools,
        default_bridge: args.default_bridge.clone(),
        netns_dir: args.netns_dir.clone(),
        netns_etc_dir: args.netns_etc_dir.clone(),
        container_refs: args.container_refs.clone(),
        off_limits: crate::kernel::off_limits_namespaces()?,
    };
    let daemon = Arc::new(Daemon::new(store.clone(), kernel, firewall, settings));
    if let Some(cluster) = cluster_of(args)? {
        daemon.set_cluster(cluster);
    }
    Ok((store, daemon))
}

/// The cluster `--cluster-store` names, if any.
fn cluster_of(args: &ServeArgs) -> Result<Option<crate::service::Cluster>, ServeError> {
    use crate::service::{Cluster, Etcd, EtcdConfig, TlsFiles};
    let Some(url) = &args.cluster_store else {
        return Ok(None);
    };
    let host = args
        .advertise_addr
        .ok_or_else(|| ServeError::Cluster("--cluster-store needs --advertise-addr".to_string()))?;
    let tls = (args.cluster_ca.is_some() || args.cluster_cert.is_some()).then(|| TlsFiles {
        ca: args.cluster_ca.clone(),
        cert: args.cluster_cert.clone(),
        key: args.cluster_key.clone(),
    });
    let config = EtcdConfig::parse(url, tls).map_err(ServeError::Cluster)?;
    let etcd = Etcd::new(config, host).map_err(ServeError::Cluster)?;
    tracing::info!(store = %url, advertise = %host, "global networks are shared through etcd");
    Ok(Some(Cluster::new(Box::new(etcd), host, args.cluster_lease)))
}

/// `netbridge reconcile`: repairs a stopped daemon's state and prints what was repaired.
pub async fn reconcile(args: ServeArgs) -> Result<Vec<String>, ServeError> {
    if tokio::net::UnixStream::connect(&args.socket).await.is_ok() {
        return Err(ServeError::SocketInUse(format!(
            "{} (use POST /netbridge/reconcile on a running daemon)",
            args.socket.display()
        )));
    }
    let (store, daemon) = open(&args).await?;
    let repairs = daemon.start().await?;
    store.close().await;
    Ok(repairs)
}

/// Runs the daemon until SIGTERM or SIGINT, then removes its socket.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    args.check()?;
    let tokens = match &args.token_file {
        Some(path) => Some(Tokens::open(path)?),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(listener::tls_acceptor(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    if args.tcp.is_some() && args.insecure_tcp {
        tracing::warn!(
            "--insecure-tcp: TCP clients are not authenticated; anyone who reaches the port can \
             create interfaces as root"
        );
    }
    let (store, daemon) = open(&args).await?;
    // Before start-up: its reconcile opens the resolvers of containers already connected.
    let dns = crate::dns::DnsServer::new(args.dns(), daemon.names());
    dns.watch_host_resolv_conf();
    daemon.set_name_server(dns);
    let repairs = daemon.start().await?;
    if !repairs.is_empty() {
        tracing::warn!(
            count = repairs.len(),
            "start-up reconcile repaired what a crash left"
        );
    }
    let mut guard = Guard::new(
        // Tokens guard TCP; --insecure-tcp without a token file leaves it open.
        tokens.clone(),
        args.cors_origins.clone(),
        args.max_requests,
    );
    guard.sessions = Arc::new(crate::api::session::Sessions::for_listener(
        args.tcp,
        tls.is_some(),
    ));
    let guard = Arc::new(guard);
    daemon.follow_cluster();
    tokio::spawn(give_back_after_work(daemon.clone()));
    let at_stop = daemon.clone();
    let app = crate::api::app(daemon, guard);
    let header_timeout = Duration::from_secs(args.header_timeout.max(1));

    // TCP first: once the Unix socket answers, every listener is up.
    let tcp = match args.tcp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(io("cannot listen on", Path::new(&addr.to_string())))?,
        ),
        None => None,
    };
    let unix = bind_unix(&args.socket, args.socket_group.as_deref()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(listener::serve_unix(
        unix,
        app.clone(),
        header_timeout,
        stop_rx.clone(),
    ));
    if let (Some(tcp), Some(addr)) = (tcp, args.tcp) {
        tracing::info!(%addr, tls = tls.is_some(), tokens = tokens.is_some(), "serving on TCP");
        servers.spawn(listener::serve_tcp(
            tcp,
            tls,
            app,
            header_timeout,
            stop_rx.clone(),
        ));
    }
    tracing::info!(socket = %args.socket.display(), db = %args.db.display(), "netbridge is serving");

    wait_for_stop(tokens.as_ref()).await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    at_stop.finish_teardowns().await;
    if let Err(e) = std::fs::remove_file(&args.socket) {
        tracing::warn!(socket = %args.socket.display(), error = %e, "cannot remove the socket");
    }
    store.close().await;
    Ok(())
}

/// Binds the Unix socket, replacing a stale file but never a live daemon's socket; mode 0660,
/// owned by `group` when given.
async fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ServeError::SocketInUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io("cannot remove the stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io("cannot listen on", path))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io("cannot set the mode of", path))?;
    if let Some(group) = group {
        let gid = nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .ok_or_else(|| ServeError::UnknownGroup(group.to_string()))?
            .gid;
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| ServeError::Io {
            what: "cannot give the socket to its group",
            path: path.display().to_string(),
            source: e.into(),
        })?;
    }
    Ok(listener)
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile re-reads the token file.
async fn wait_for_stop(tokens: Option<&Tokens>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => match tokens.map(Tokens::reload) {
                Some(Ok(n)) => tracing::info!(tokens = n, "token file re-read"),
                Some(Err(e)) => tracing::error!(error = %e, "token file not re-read; the old tokens stay"),
                None => tracing::info!("SIGHUP: no token file to re-read"),
            },
        }
    }
}

/// Hands freed heap back to the kernel a few seconds after work happened (see
/// `crate::memory`): a burst of connects leaves megabytes free but resident otherwise.
async fn give_back_after_work(daemon: Arc<Daemon>) {
    let mut seen = daemon.changes();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = daemon.changes();
        if now != seen {
            seen = now;
            let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
        }
    }
}
