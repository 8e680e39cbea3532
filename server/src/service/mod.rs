//! The service layer: the operations of the Docker network API, in domain terms.
//!
//! Each operation validates in Docker's order, then does its store and kernel work in an order
//! that a crash at any point can be repaired at start-up: a network's row is written before its
//! bridge is made (a row without a bridge gets it back at start-up) and its bridge is removed
//! before its row (a network never disappears from the store while its bridge lives on).

mod cluster;
mod containers;
pub mod crash;
mod diagnose;
mod driver;
mod endpoints;
mod error;
mod events;
pub mod filters;
mod firewall;
mod journal;
mod lifecycle;
mod names;
mod networks;
mod ports;
mod reaper;
mod reconcile;
mod startup;
mod topology;
mod views;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

pub use cluster::{Cluster, ClusterEndpoint, Etcd, EtcdConfig, TlsFiles};
pub use containers::ContainerView;
pub use diagnose::{
    DiagnoseRequest, Diagnosis, MAX_ECHOES, MAX_PROBE_TIME, ProbeReport, Reason, Verdict,
};
pub use driver::bridge_of;
pub use endpoints::ConnectRequest;
pub use error::{Error, Result};
pub use events::{EventFilter, parse_time};
pub use lifecycle::{CreateContainer, Halt, NO_PROCESSES, WaitFor};
pub use names::{ContainerDns, NameServer, Names};
pub use networks::{CreateNetwork, Lookup, NetworkView, SubnetStatus};
pub use topology::Topology;
pub use views::{Counts, DriverStatus};

use crate::ipam::Pool;
use crate::kernel::{Firewall, Kernel, LinkKinds, NamespaceId};
use crate::model::ContainerKind;
use crate::store::Store;

/// What the daemon was started with that shapes its behaviour.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Pools that automatic subnets are cut from, in order.
    pub pools: Vec<Pool>,
    /// Kernel bridge of the predefined `bridge` network (Docker's `docker0`).
    pub default_bridge: String,
    /// Where named network namespaces live (`ip netns` uses /run/netns).
    pub netns_dir: PathBuf,
    /// Where sandboxes' resolv.conf files are (`<dir>/<name>/resolv.conf`).
    pub netns_etc_dir: PathBuf,
    /// The kinds of reference that may name a container (`--container-refs`).
    pub container_refs: Vec<ContainerKind>,
    /// Namespaces that are never a container's: the daemon's own and the initial one.
    pub off_limits: Vec<NamespaceId>,
}

/// The daemon's state: the store, the kernel, and the locks that order operations.
pub struct Daemon {
    store: Store,
    kernel: Kernel,
    firewall: Arc<dyn Firewall>,
    settings: Settings,
    /// The link kinds this kernel offers, probed at start-up.
    kinds: std::sync::OnceLock<LinkKinds>,
    events: tokio::sync::broadcast::Sender<crate::model::Event>,
    /// Serialises network creates (names and subnets must stay unique).
    topology: tokio::sync::Mutex<()>,
    /// Every state-changing operation holds it shared; reconcile holds it exclusively, so it
    /// never rolls back an operation that is still running.
    exclusive: tokio::sync::RwLock<()>,
    /// Orders operations on one network; different networks never wait for each other.
    network_locks: LockMap,
    /// Orders operations on one container, keyed by its namespace's identity.
    container_locks: LockMap,
    prune_running: AtomicBool,
    /// Counts state changes (one per event), so idle housekeeping can tell work happened.
    changes: std::sync::atomic::AtomicU64,
    /// The embedded DNS server, when the daemon serves (not for an offline reconcile).
    name_server: std::sync::OnceLock<Arc<dyn NameServer>>,
    /// Deletes cut-off links in the background, in batches.
    reaper: reaper::Reaper,
    /// Host ports held for published ports, and what the firewall holds of them.
    ports: Mutex<ports::PortTable>,
    /// The cluster of hosts sharing global networks (`--cluster-store`), if any.
    cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
}

/// The locks held for work on one endpoint. See [`Daemon::lock_endpoint`].
pub(crate) struct EndpointLocks {
    network: Option<tokio::sync::OwnedMutexGuard<()>>,
    _container: tokio::sync::OwnedMutexGuard<()>,
}

impl EndpointLocks {
    /// Lets other work on the network go on while this endpoint's work finishes: a connect's
    /// row, once written, keeps its address and its place; a disconnect needs it not at all.
    fn release_network(&mut self) {
        self.network = None;
    }
}

impl Daemon {
    pub fn new(
        store: Store,
        kernel: Kernel,
        firewall: Arc<dyn Firewall>,
        settings: Settings,
    ) -> Daemon {
        Daemon {
            reaper: reaper::Reaper::new(store.clone()),
            store,
            kernel,
            firewall,
            settings,
            kinds: std::sync::OnceLock::new(),
            events: tokio::sync::broadcast::channel(events::LIVE_BUFFER).0,
            topology: tokio::sync::Mutex::new(()),
            exclusive: tokio::sync::RwLock::new(()),
            network_locks: Mutex::new(HashMap::new()),
            container_locks: Mutex::new(HashMap::new()),
            prune_running: AtomicBool::new(false),
            changes: std::sync::atomic::AtomicU64::new(0),
            name_server: std::sync::OnceLock::new(),
            ports: Mutex::new(ports::PortTable::default()),
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// The link kinds this kernel offers (all, until start-up has probed).
    pub fn link_kinds(&self) -> &LinkKinds {
        self.kinds()
    }

    fn kinds(&self) -> &LinkKinds {
        static ALL: std::sync::OnceLock<LinkKinds> = std::sync::OnceLock::new();
        self.kinds
            .get()
            .unwrap_or_else(|| ALL.get_or_init(LinkKinds::assume_all))
    }

    /// What drivers work with.
    fn driver_env(&self) -> driver::Env<'_> {
        driver::Env {
            kernel: &self.kernel,
            store: &self.store,
            kinds: self.kinds(),
        }
    }

    /// Removes an endpoint's kernel objects through its network's driver. The container's
    /// namespace is opened only for a driver whose endpoint lives inside it.
    async fn detach_endpoint(
        &self,
        n: &crate::model::Network,
        e: &crate::model::Endpoint,
        c: Option<&crate::model::Container>,
    ) -> Result<bool> {
        let driver = driver::of(n)?;
        let ns = match (driver.lives_inside(), c) {
            (true, Some(c)) => self.open_namespace(c).await,
            _ => None,
        };
        driver
            .detach(self.driver_env(), &e.id, &e.host_ifname, ns.as_ref())
            .await
    }

    /// Cuts an endpoint off through its network's driver, leaving the deletion of its links to
    /// the reaper. The container's namespace is opened so its interface name can be freed.
    async fn cut_off_endpoint(
        &self,
        n: &crate::model::Network,
        e: &crate::model::Endpoint,
        c: &crate::model::Container,
    ) -> Result<bool> {
        let driver = driver::of(n)?;
        let ns = self.open_namespace(c).await;
        driver.cut_off(self.driver_env(), e, ns.as_ref()).await
    }

    /// How many state changes there have been since start.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lock for one network, made on first use.
    fn network_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock_in(&self.network_locks, id)
    }

    /// The locks for work on one endpoint, always taken in this order: the network's, then the
    /// container's. Nothing waits for a network lock while holding a container lock, so no two
    /// operations can wait on each other in a cycle.
    async fn lock_endpoint(&self, network_id: &str, namespace: NamespaceId) -> EndpointLocks {
        let network = self.network_lock(network_id).lock_owned().await;
        EndpointLocks {
            network: Some(network),
            _container: self.lock_container(namespace).await,
        }
    }

    /// A container's lock, keyed by its namespace so that every reference to one namespace
    /// waits on the same lock. Its row is only written or forgotten under it.
    async fn lock_container(&self, namespace: NamespaceId) -> tokio::sync::OwnedMutexGuard<()> {
        lock_in(&self.container_locks, &namespace.to_string())
            .lock_owned()
            .await
    }

    fn forget_container_lock(&self, namespace: NamespaceId) {
        forget_lock(&self.container_locks, &namespace.to_string());
    }

    fn forget_network_lock(&self, id: &str) {
        forget_lock(&self.network_locks, id);
    }
}

type LockMap = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// The lock for `key` in `map`, made on first use.
fn lock_in(map: &LockMap, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    locks.entry(key.to_string()).or_default().clone()
}

/// Drops a lock from its map, unless someone holds or awaits it: dropping it then would let a
/// newcomer make a second lock for the same thing and run alongside them.
fn forget_lock(map: &LockMap, key: &str) {
    let mut locks = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if locks.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
        locks.remove(key);
    }
}
