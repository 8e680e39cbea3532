//! Bringing the daemon up and down: store, kernel, start-up repair, listeners, signals.

use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

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
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServeError {
    let path = path.display().to_string();
    move |source| ServeError::Io { what, path, source }
}

async fn open(args: &ServeArgs) -> Result<(Store, Arc<Daemon>), ServeError> {
    let store = Store::open(&args.db).await?;
    let kernel = Kernel::connect()?;
    let firewall: Arc<dyn crate::kernel::Firewall> = Arc::new(crate::kernel::Nftables::new());
    let settings = Settings {
        pools: args.pools(),
        default_bridge: args.default_bridge.clone(),
        netns_dir: args.netns_dir.clone(),
    };
    let daemon = Arc::new(Daemon::new(store.clone(), kernel, firewall, settings));
    Ok((store, daemon))
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
    let (store, daemon) = open(&args).await?;
    let repairs = daemon.start().await?;
    if !repairs.is_empty() {
        tracing::warn!(
            count = repairs.len(),
            "start-up reconcile repaired what a crash left"
        );
    }
    let app = crate::api::app(daemon);

    let unix = bind_unix(&args.socket).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    {
        let app = app.clone();
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            axum::serve(unix, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        });
    }
    if let Some(addr) = args.tcp {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(io("cannot listen on", Path::new(&addr.to_string())))?;
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            axum::serve(tcp, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        });
        tracing::info!(%addr, "serving on TCP (loopback only)");
    }
    tracing::info!(socket = %args.socket.display(), db = %args.db.display(), "netbridge is serving");

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "listener ended with an error");
        }
    }
    if let Err(e) = std::fs::remove_file(&args.socket) {
        tracing::warn!(socket = %args.socket.display(), error = %e, "cannot remove the socket");
    }
    store.close().await;
    Ok(())
}

/// Binds the Unix socket, replacing a stale file but never a live daemon's socket.
async fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
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
    Ok(listener)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
