//! The embedded DNS server, as Docker's user-defined networks have: a resolver at
//! 127.0.0.11:53 (UDP and TCP) inside each container's namespace while the container is on a
//! user-defined network. It answers the names of the containers that share a network with the
//! asker (the socket a query arrives on says who asks) and forwards everything else to the
//! upstream servers from the daemon's own namespace.
//!
//! Names come from the service's read model ([`Names`]); sockets are opened inside namespaces
//! by the kernel layer. This module has no SQL and no netlink of its own.

mod answer;
mod forward;
mod resolvconf;
mod serve;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;

pub use answer::LOCAL_TTL;
pub use resolvconf::{HostResolv, RESOLVER_IP};

use crate::kernel::{Netns, open_resolver_sockets};
use crate::model::{Container, ContainerKind};
use crate::service::{ContainerDns, NameServer, Names};

/// What the DNS server is started with.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// `--dns`: upstream servers that replace the host's.
    pub upstreams: Vec<IpAddr>,
    /// The host's resolv.conf, read at start and whenever it changes.
    pub host_resolv_conf: PathBuf,
    /// Where `ip netns exec` finds per-namespace files (`/etc/netns/<name>/resolv.conf`).
    pub netns_etc_dir: PathBuf,
}

/// What every query needs, shared by all listeners.
pub(crate) struct Shared {
    names: Names,
    /// Upstream servers and search domains; replaced when the host's resolv.conf changes.
    resolv: RwLock<Arc<Resolv>>,
    /// The upstream servers of containers that have their own (HostConfig.Dns), by ID.
    own_upstreams: RwLock<HashMap<String, Arc<[SocketAddr]>>>,
    /// Forwarded queries in flight, over all containers: a flood waits for none, it is refused.
    forwards: Arc<tokio::sync::Semaphore>,
    /// TCP connections open, over all containers.
    tcp_clients: Arc<tokio::sync::Semaphore>,
}

/// The resolver configuration now in force.
#[derive(Debug, Default)]
pub(crate) struct Resolv {
    host: HostResolv,
    upstreams: Arc<[SocketAddr]>,
}

impl Shared {
    fn resolv(&self) -> Arc<Resolv> {
        self.resolv
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where `container`'s resolver forwards: its own servers if it has any, else the
    /// daemon's.
    fn upstreams(&self, container: &str, resolv: &Resolv) -> Arc<[SocketAddr]> {
        self.own_upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .cloned()
            .unwrap_or_else(|| resolv.upstreams.clone())
    }

    fn set_own_upstreams(&self, container: &str, dns: &ContainerDns) {
        let mut own = self
            .own_upstreams
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if dns.servers.is_empty() {
            own.remove(container);
        } else {
            let servers: Vec<SocketAddr> = dns
                .servers
                .iter()
                .map(|ip| SocketAddr::new(*ip, 53))
                .collect();
            own.insert(container.to_string(), servers.into());
        }
    }
}

/// Most forwarded queries in flight at once.
const MAX_FORWARDS: usize = 1024;
/// Most TCP clients at once.
const MAX_TCP_CLIENTS: usize = 256;
/// How often the host's resolv.conf is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The name server: one resolver per served container.
pub struct DnsServer {
    settings: DnsSettings,
    shared: Arc<Shared>,
    /// Container ID → its resolver's tasks (aborted, and the sockets closed, on drop), and
    /// whether its resolv.conf was last written in the internal form.
    served: tokio::sync::Mutex<HashMap<String, Served>>,
}

#[derive(Default)]
struct Served {
    listener: Option<serve::Listener>,
    /// The namespace the listener's sockets are in (device, inode): a namespace made anew
    /// under the same path (a sandbox re-created by reconcile) needs new sockets.
    netns: Option<(u64, u64)>,
    /// The sandbox's name, for its resolv.conf; `None` for namespaces netbridge did not make.
    sandbox: Option<String>,
    /// The container's own DNS settings.
    dns: ContainerDns,
    /// The form its resolv.conf was last written in (internal or not), with the settings then.
    written: Option<(bool, ContainerDns)>,
}

impl DnsServer {
    pub fn new(settings: DnsSettings, names: Names) -> Arc<DnsServer> {
        let host = HostResolv::read(&settings.host_resolv_conf);
        let resolv = Resolv {
            upstreams: resolvconf::upstreams(&settings.upstreams, &host).into(),
            host,
        };
        if resolv.upstreams.is_empty() {
            tracing::warn!("no upstream DNS servers: names other than containers' get SERVFAIL");
        }
        tracing::info!(upstreams = ?resolv.upstreams, "embedded DNS server ready");
        Arc::new(DnsServer {
            settings,
            shared: Arc::new(Shared {
                names,
                resolv: RwLock::new(Arc::new(resolv)),
                own_upstreams: RwLock::new(HashMap::new()),
                forwards: Arc::new(tokio::sync::Semaphore::new(MAX_FORWARDS)),
                tcp_clients: Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CLIENTS)),
            }),
            served: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Follows the host's resolv.conf: new upstream servers (unless `--dns` set them) and
    /// search domains apply to the next query, and sandboxes' files are rewritten.
    pub fn watch_host_resolv_conf(self: &Arc<DnsServer>) {
        let weak = Arc::downgrade(self);
        let path = self.settings.host_resolv_conf.clone();
        tokio::spawn(async move {
            let mut seen = file_stamp(&path);
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let Some(server) = weak.upgrade() else { return };
                let now = file_stamp(&path);
                if now != seen {
                    seen = now;
                    server.reload_host_resolv_conf().await;
                }
            }
        });
    }

    async fn reload_host_resolv_conf(&self) {
        let host = HostResolv::read(&self.settings.host_resolv_conf);
        let resolv = Resolv {
            upstreams: resolvconf::upstreams(&self.settings.upstreams, &host).into(),
            host,
        };
        tracing::info!(upstreams = ?resolv.upstreams, "the host's resolv.conf changed");
        *self
            .shared
            .resolv
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(resolv);
        let mut served = self.served.lock().await;
        for entry in served.values_mut() {
            if let Some(name) = &entry.sandbox {
                let internal = entry.listener.is_some();
                if self.write_sandbox_file(name, internal, &entry.dns) {
                    entry.written = Some((internal, entry.dns.clone()));
                }
            }
        }
    }

    /// Opens `container`'s resolver; failures are logged (names then do not resolve there,
    /// the attachment itself stands).
    async fn open(&self, container: &Container) -> Option<serve::Listener> {
        let addr = SocketAddr::new(resolver_ip(), 53);
        let ns = match Netns::open(Path::new(&container.netns_path)) {
            Ok(ns) => ns,
            Err(e) => {
                tracing::debug!(container = %container.name, error = %e, "no namespace for a resolver");
                return None;
            }
        };
        match open_resolver_sockets(&ns, addr).await {
            Ok(sockets) => {
                match serve::Listener::start(sockets, self.shared.clone(), &container.id) {
                    Ok(listener) => {
                        tracing::debug!(container = %container.name, "resolver listening");
                        Some(listener)
                    }
                    Err(e) => {
                        tracing::warn!(container = %container.name, error = %e, "cannot serve a resolver");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(container = %container.name, error = %e,
                    "cannot open a resolver in the container's namespace: its names will not resolve");
                None
            }
        }
    }

    /// Writes a sandbox's resolv.conf in the form that matches `internal`, if it is not so
    /// already. Only sandboxes: namespaces netbridge did not make are never written to.
    fn write_file(&self, container: &Container, internal: bool, entry: &mut Served) {
        if container.kind != ContainerKind::Sandbox
            || entry.written.as_ref() == Some(&(internal, entry.dns.clone()))
        {
            return;
        }
        entry.sandbox = Some(container.name.clone());
        if self.write_sandbox_file(&container.name, internal, &entry.dns) {
            entry.written = Some((internal, entry.dns.clone()));
        }
    }

    /// `<netns etc dir>/<name>/resolv.conf`, internal or external form; whether it was written.
    fn write_sandbox_file(&self, name: &str, internal: bool, own: &ContainerDns) -> bool {
        let resolv = self.shared.resolv();
        let source = &self.settings.host_resolv_conf;
        let text = if internal {
            resolvconf::render_internal(&resolv.host, &resolv.upstreams, own, source)
        } else {
            resolvconf::render_external(&resolv.host, &resolv.upstreams, own, source)
        };
        let dir = self.settings.netns_etc_dir.join(name);
        match write_atomically(&dir, "resolv.conf", &text) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(sandbox = %name, dir = %dir.display(), error = %e,
                    "cannot write the sandbox's resolv.conf");
                false
            }
        }
    }
}

fn resolver_ip() -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11))
}

/// Which namespace a path holds now (device and inode of the nsfs file).
fn namespace_identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// What tells a changed file: its inode, size and modification time.
fn file_stamp(path: &Path) -> Option<(u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

/// Writes `dir/name` through a temporary file and a rename, so a reader never sees half.
fn write_atomically(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.netbridge"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Undoes [`write_atomically`] for a removed sandbox: its file, then its directory if empty.
fn remove_file_and_dir(dir: &Path, name: &str) {
    match std::fs::remove_file(dir.join(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a resolv.conf"),
    }
    // Not empty (someone else's files): left alone.
    let _ = std::fs::remove_dir(dir);
}

impl NameServer for DnsServer {
    fn set<'a>(
        &'a self,
        container: &'a Container,
        serve: bool,
        dns: &'a ContainerDns,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.shared.set_own_upstreams(&container.id, dns);
            let now = namespace_identity(&container.netns_path);
            let stale =
                |e: Option<&Served>| e.is_none_or(|e| e.listener.is_none() || e.netns != now);
            let open = serve && stale(self.served.lock().await.get(&container.id));
            // Opened without holding the map: resolvers of different containers open in
            // parallel; calls for one container never overlap (the service orders them).
            let opened = if open {
                self.open(container).await
            } else {
                None
            };
            let mut served = self.served.lock().await;
            let entry = served.entry(container.id.clone()).or_default();
            entry.dns = dns.clone();
            if open {
                entry.netns = now.filter(|_| opened.is_some());
                entry.listener = opened;
            } else if !serve {
                entry.listener = None;
                entry.netns = None;
            }
            self.write_file(container, serve, entry);
            if !serve && container.kind != ContainerKind::Sandbox {
                served.remove(&container.id);
                self.shared
                    .set_own_upstreams(&container.id, &ContainerDns::default());
            }
        })
    }

    fn forget<'a>(&'a self, container: &'a Container) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.served.lock().await.remove(&container.id);
            self.shared
                .set_own_upstreams(&container.id, &ContainerDns::default());
            if container.kind == ContainerKind::Sandbox {
                let dir = self.settings.netns_etc_dir.join(&container.name);
                remove_file_and_dir(&dir, "resolv.conf");
            }
        })
    }

    fn retain<'a>(&'a self, live: &'a [String]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.served
                .lock()
                .await
                .retain(|id, _| live.iter().any(|l| l == id));
            self.shared
                .own_upstreams
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|id, _| live.iter().any(|l| l == id));
        })
    }
}
