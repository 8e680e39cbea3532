//! Command line and environment: every flag of `netbridge serve` also reads `NETBRIDGE_…`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ipam::Pool;

#[derive(Parser, Debug)]
#[command(
    name = "netbridge",
    version,
    about = "The Docker Engine network API over SQLite and Linux bridges",
    long_about = "netbridge serves the Docker Engine network API (networks, connect, disconnect) on a \
        Unix socket. Networks are kept in SQLite and made real as Linux bridges; containers are \
        network namespaces joined to them by veth pairs.\n\n\
        Point the docker CLI at it with DOCKER_HOST=unix:///run/netbridge.sock."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Repair the state a crash left (the daemon does this at every start-up), against a
    /// stopped daemon's database, and print what was repaired. Takes serve's flags; only
    /// --db, --socket (to refuse while a daemon serves it), --netns-dir and --default-bridge
    /// matter. A running daemon does the same on `POST /netbridge/reconcile`.
    Reconcile(ServeArgs),
    /// Print the OpenAPI document generated from the code (openapi/netbridge.json is a copy).
    Openapi,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Unix socket to serve the API on (created mode 0660; a stale one is replaced).
    #[arg(long, env = "NETBRIDGE_SOCKET", default_value = "/run/netbridge.sock")]
    pub socket: PathBuf,

    /// SQLite database holding every network and endpoint (its directories are created).
    #[arg(
        long,
        env = "NETBRIDGE_DB",
        default_value = "/var/lib/netbridge/netbridge.db"
    )]
    pub db: PathBuf,

    /// Also serve the API on TCP at ADDR:PORT. Off by default; until TLS and tokens exist only
    /// loopback addresses are accepted, since the API creates interfaces as root.
    #[arg(long, env = "NETBRIDGE_TCP", value_name = "ADDR:PORT")]
    pub tcp: Option<SocketAddr>,

    /// Pool that automatic subnets are cut from, as base=CIDR,size=N (repeatable; in the env
    /// var, separate pools with spaces). Replaces the defaults: Docker's 172.17.0.0/16 …
    /// 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
    #[arg(
        long = "default-address-pool",
        env = "NETBRIDGE_DEFAULT_ADDRESS_POOL",
        value_name = "base=CIDR,size=N",
        value_delimiter = ' '
    )]
    pub default_address_pools: Vec<Pool>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive such as
    /// "netbridge=debug,sqlx=warn".
    #[arg(long, env = "NETBRIDGE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Kernel bridge of the predefined `bridge` network (Docker's is docker0; ours differs so
    /// both can run on one host).
    #[arg(
        long,
        env = "NETBRIDGE_DEFAULT_BRIDGE",
        default_value = "nb0",
        hide_short_help = true
    )]
    pub default_bridge: String,

    /// Directory of named network namespaces, as `ip netns` uses.
    #[arg(
        long,
        env = "NETBRIDGE_NETNS_DIR",
        default_value = "/run/netns",
        hide_short_help = true
    )]
    pub netns_dir: PathBuf,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to serve on {0}: plain TCP is allowed only on a loopback address until TLS and \
         tokens are supported (use 127.0.0.1:PORT, or the Unix socket)"
    )]
    NonLoopbackTcp(SocketAddr),
}

impl ServeArgs {
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(addr) = self.tcp
            && !addr.ip().is_loopback()
        {
            return Err(ConfigError::NonLoopbackTcp(addr));
        }
        Ok(())
    }

    /// The pools in force: the ones given, else Docker's defaults.
    pub fn pools(&self) -> Vec<Pool> {
        if self.default_address_pools.is_empty() {
            crate::ipam::default_pools()
        } else {
            self.default_address_pools.clone()
        }
    }
}
