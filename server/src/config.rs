//! Command line and environment: every flag of `netbridge serve` also reads `NETBRIDGE_…`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ipam::Pool;
use crate::model::ContainerKind;

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
    /// Print a one-time URL that logs a browser in to the dashboard (/ui/) and the docs on the
    /// daemon's TCP listener. Asks the running daemon over its Unix socket; the code in the URL
    /// dies at first use or after two minutes.
    LoginUrl(LoginUrlArgs),
}

#[derive(Args, Debug, Clone)]
pub struct LoginUrlArgs {
    /// The running daemon's Unix socket.
    #[arg(long, env = "NETBRIDGE_SOCKET", default_value = "/run/netbridge.sock")]
    pub socket: PathBuf,
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
    /// 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s. When no pool is IPv6, this daemon's
    /// own ULA /48 (fdXX:XXXX:XXXX::/48, kept in its database) is added, cut into /64s.
    #[arg(
        long = "default-address-pool",
        env = "NETBRIDGE_DEFAULT_ADDRESS_POOL",
        value_name = "base=CIDR,size=N",
        value_delimiter = ' '
    )]
    pub default_address_pools: Vec<Pool>,

    /// TLS certificate chain (PEM) for --tcp. With --tls-key, TCP speaks HTTPS only.
    #[arg(
        long,
        env = "NETBRIDGE_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tcp.
    #[arg(
        long,
        env = "NETBRIDGE_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    pub tls_key: Option<PathBuf>,

    /// CA bundle (PEM): TCP clients must present a certificate it signed, as Docker's
    /// --tlsverify requires.
    #[arg(
        long,
        env = "NETBRIDGE_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Bearer tokens, one per line: every request on TCP must send `Authorization: Bearer
    /// <token>`. Re-read on SIGHUP.
    #[arg(long, env = "NETBRIDGE_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Allow --tcp without tokens, and without TLS on a non-loopback address. Anyone who can
    /// reach the port can then create interfaces as root: for isolated test setups only.
    #[arg(long, env = "NETBRIDGE_INSECURE_TCP")]
    pub insecure_tcp: bool,

    /// Group that owns the Unix socket (mode 0660), e.g. "netbridge"; default root's.
    #[arg(long, env = "NETBRIDGE_SOCKET_GROUP", value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Origin allowed to call the API from a browser (CORS), e.g. https://dash.example.com;
    /// repeatable (space-separated in the env var). None by default: requests carrying any
    /// other Origin are refused.
    #[arg(
        long = "cors-origin",
        env = "NETBRIDGE_CORS_ORIGIN",
        value_delimiter = ' ',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,

    /// Requests served at once; more are answered 503 at once.
    #[arg(long, env = "NETBRIDGE_MAX_REQUESTS", default_value_t = 256)]
    pub max_requests: usize,

    /// Seconds a client has to send a request's headers (slow clients are cut off).
    #[arg(long, env = "NETBRIDGE_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive such as
    /// "netbridge=debug,sqlx=warn".
    #[arg(long, env = "NETBRIDGE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log line format on stderr: `text` for people (coloured only on a terminal), `json` for
    /// log shippers (one object a line).
    #[arg(long, env = "NETBRIDGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

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

    /// Upstream DNS server that the embedded resolver forwards to, replacing the host's
    /// resolv.conf nameservers (repeatable; space-separated in the env var).
    #[arg(
        long = "dns",
        env = "NETBRIDGE_DNS",
        value_delimiter = ' ',
        value_name = "IP"
    )]
    pub dns: Vec<std::net::IpAddr>,

    /// The host's resolv.conf: upstream servers (unless --dns), search domains and options,
    /// re-read when it changes.
    #[arg(
        long,
        env = "NETBRIDGE_HOST_RESOLV_CONF",
        default_value = "/etc/resolv.conf",
        hide_short_help = true
    )]
    pub host_resolv_conf: PathBuf,

    /// Where sandboxes get their resolv.conf (`<DIR>/<name>/resolv.conf`), the directory
    /// `ip netns exec` bind-mounts files from.
    #[arg(
        long,
        env = "NETBRIDGE_NETNS_ETC_DIR",
        default_value = "/etc/netns",
        hide_short_help = true
    )]
    pub netns_etc_dir: PathBuf,

    /// Which references may name a container: `sandbox` (namespaces made through
    /// POST /containers/create), `netns` (named namespaces under --netns-dir that netbridge did
    /// not make), `pid` (the namespace of any process, by its PID). Comma-separated. The
    /// daemon's own and the initial namespace are refused whatever this says.
    #[arg(
        long,
        env = "NETBRIDGE_CONTAINER_REFS",
        value_name = "KINDS",
        value_delimiter = ',',
        default_value = "sandbox,netns,pid",
        value_parser = parse_container_ref
    )]
    pub container_refs: Vec<ContainerKind>,

    /// etcd cluster holding global (overlay) networks, as etcd://HOST:PORT,HOST:PORT,… (or
    /// etcds:// for TLS). Without it netbridge is single-host: SQLite only.
    #[arg(
        long,
        env = "NETBRIDGE_CLUSTER_STORE",
        value_name = "URL",
        requires = "advertise_addr"
    )]
    pub cluster_store: Option<String>,

    /// This host's underlay IPv4 address: peers send VXLAN traffic for its endpoints there.
    #[arg(long, env = "NETBRIDGE_ADVERTISE_ADDR", value_name = "IP")]
    pub advertise_addr: Option<std::net::Ipv4Addr>,

    /// CA bundle (PEM) that etcd's server certificate must chain to (implies TLS).
    #[arg(long, env = "NETBRIDGE_CLUSTER_CA", value_name = "PEM")]
    pub cluster_ca: Option<PathBuf>,

    /// Client certificate (PEM) presented to etcd.
    #[arg(
        long,
        env = "NETBRIDGE_CLUSTER_CERT",
        requires = "cluster_key",
        value_name = "PEM"
    )]
    pub cluster_cert: Option<PathBuf>,

    /// Client key (PEM) for --cluster-cert.
    #[arg(
        long,
        env = "NETBRIDGE_CLUSTER_KEY",
        requires = "cluster_cert",
        value_name = "PEM"
    )]
    pub cluster_key: Option<PathBuf>,

    /// Seconds of this host's etcd lease: a host silent for longer loses its endpoints on its
    /// peers.
    #[arg(
        long,
        env = "NETBRIDGE_CLUSTER_LEASE",
        default_value_t = 10,
        hide_short_help = true
    )]
    pub cluster_lease: u64,
}

fn parse_container_ref(s: &str) -> Result<ContainerKind, String> {
    ContainerKind::parse(s.trim())
        .ok_or_else(|| format!("unknown reference kind {s:?}: expected sandbox, netns or pid"))
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to serve plain TCP on {0}: a non-loopback address needs --tls-cert and \
         --tls-key (or --insecure-tcp, for isolated test setups only)"
    )]
    NonLoopbackTcp(SocketAddr),
    #[error(
        "refusing to serve TCP on {0} without --token-file: every TCP request must carry a \
         bearer token (or pass --insecure-tcp, for isolated test setups only)"
    )]
    TcpWithoutTokens(SocketAddr),
}

impl ServeArgs {
    pub fn check(&self) -> Result<(), ConfigError> {
        let Some(addr) = self.tcp else { return Ok(()) };
        if self.insecure_tcp {
            return Ok(());
        }
        if !addr.ip().is_loopback() && self.tls_cert.is_none() {
            return Err(ConfigError::NonLoopbackTcp(addr));
        }
        if self.token_file.is_none() {
            return Err(ConfigError::TcpWithoutTokens(addr));
        }
        Ok(())
    }

    /// The embedded DNS server's settings.
    pub fn dns(&self) -> crate::dns::DnsSettings {
        crate::dns::DnsSettings {
            upstreams: self.dns.clone(),
            host_resolv_conf: self.host_resolv_conf.clone(),
            netns_etc_dir: self.netns_etc_dir.clone(),
        }
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
