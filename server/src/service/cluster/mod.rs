//! Global networks: their definitions, address claims and endpoints live in a cluster store
//! shared by every host (etcd, see `etcd.rs`), behind [`ClusterStore`]. Each host mirrors every
//! global network into its own store and kernel (an overlay driver network), so listing never
//! waits on the cluster, and follows the cluster through a watch: remote endpoints become
//! static FDB and neighbour entries on the network's VXLAN link.
//!
//! Local networks never touch this module.

mod etcd;
mod sync;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use etcd::{Etcd, EtcdConfig, TlsFiles};

use super::driver::{self, OverlayState};
use super::networks::CreateNetwork;
use super::{Daemon, Error, Result};
use crate::ipam::{self, Cidr, NetworkConfig};
use crate::model::{self, Endpoint, Network, PREDEFINED_NAMES};
use crate::store::Store;

/// Scope of networks that span hosts.
pub const GLOBAL: &str = "global";
/// VNIs netbridge hands out start here (low ones are often used by hand).
const FIRST_VNI: u32 = 4096;
/// Tries of a compare-and-swap before giving up (each loser re-reads).
const CAS_TRIES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No member answered in time, or none has quorum.
    #[error("{0}")]
    Unavailable(String),
    /// etcd answered and refused.
    #[error("{0}")]
    Refused(String),
}

pub type ClusterResult<T> = std::result::Result<T, ClusterError>;
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = ClusterResult<T>> + Send + 'a>>;
/// Batches of changes, each with the store revision it brings the watcher to.
pub type WatchStream = tokio::sync::mpsc::Receiver<ClusterResult<(i64, Vec<(i64, ClusterEvent)>)>>;

/// A global network's definition, as every host reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalNetwork {
    pub id: String,
    pub name: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub ip_range: Option<String>,
    pub vni: u32,
    pub created_nanos: i64,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// One endpoint of a global network, held under its host's lease: its address claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEndpoint {
    pub network: String,
    pub endpoint: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// The underlay address of its host.
    pub host: Ipv4Addr,
    /// Its container's name.
    pub container: String,
}

/// A change seen by the watch.
#[derive(Clone, Debug)]
pub enum ClusterEvent {
    Network(GlobalNetwork),
    NetworkGone(String),
    Endpoint(ClusterEndpoint),
    EndpointGone { network: String, ip: Ipv4Addr },
}

/// Everything in the cluster store at one revision.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub networks: Vec<GlobalNetwork>,
    pub endpoints: Vec<ClusterEndpoint>,
    /// The local networks' subnets of every live host, which automatic global subnets avoid.
    pub host_subnets: Vec<String>,
}

/// What the service needs from a cluster store. Every write is a compare-and-swap: the
/// `bool`s say whether it won.
pub trait ClusterStore: Send + Sync {
    fn snapshot(&self) -> Fut<'_, Snapshot>;
    /// Claims the name, VNI and subnet and stores the definition, all or nothing; refused too
    /// if any network was defined after revision `seen` (the subnets it was checked against),
    /// so two overlapping subnets cannot both be claimed.
    fn create_network<'a>(&'a self, n: &'a GlobalNetwork, seen: i64) -> Fut<'a, bool>;
    fn name_taken<'a>(&'a self, name: &'a str) -> Fut<'a, bool>;
    /// Removes a network without endpoints; returns how many endpoints it still has (then
    /// nothing is removed).
    fn remove_network<'a>(&'a self, n: &'a GlobalNetwork) -> Fut<'a, usize>;
    /// Claims an endpoint's address under `lease`.
    fn claim<'a>(&'a self, e: &'a ClusterEndpoint, lease: i64) -> Fut<'a, bool>;
    /// Claims it again under a new lease (after a restart or a lost lease); false if
    /// another endpoint holds the address now.
    fn republish<'a>(&'a self, e: &'a ClusterEndpoint, lease: i64) -> Fut<'a, bool>;
    /// The addresses claimed on a network, by any host.
    fn claimed<'a>(&'a self, network: &'a str) -> Fut<'a, Vec<Ipv4Addr>>;
    /// Frees an address if `endpoint` still holds it.
    fn release<'a>(&'a self, network: &'a str, ip: Ipv4Addr, endpoint: &'a str) -> Fut<'a, ()>;
    /// Records this host's local subnets under its lease.
    fn publish_host<'a>(&'a self, host: Ipv4Addr, subnets: &'a [String], lease: i64)
    -> Fut<'a, ()>;
    fn grant(&self, ttl: u64) -> Fut<'_, i64>;
    /// Renews a lease; false if it has expired.
    fn keep_alive(&self, lease: i64) -> Fut<'_, bool>;
    fn watch(&self, from_revision: i64) -> Fut<'_, WatchStream>;
    /// Counts the times writes with an unknown outcome were fenced off; after each, this
    /// host's claims are published again (a late release may have dropped one).
    fn fence_generation(&self) -> u64;
}

/// What this host knows of the cluster: the last state the watch brought.
#[derive(Default)]
struct View {
    networks: HashMap<String, GlobalNetwork>,
    endpoints: BTreeMap<(String, Ipv4Addr), ClusterEndpoint>,
    /// Per network, the highest address this host has seen claimed: new claims go on from
    /// there (see [`ipam::next_free`]).
    high_water: HashMap<String, Ipv4Addr>,
}

impl View {
    fn saw(&mut self, e: &ClusterEndpoint) {
        let mark = self.high_water.entry(e.network.clone()).or_insert(e.ip);
        if e.ip > *mark {
            *mark = e.ip;
        }
    }
}

/// This host's membership in a cluster.
pub struct Cluster {
    store: Box<dyn ClusterStore>,
    /// This host's underlay address.
    pub host: Ipv4Addr,
    lease_ttl: u64,
    /// The lease this host's endpoints are held under; 0 while it has none.
    lease: std::sync::atomic::AtomicI64,
    view: std::sync::Mutex<View>,
    /// Addresses this host is claiming right now, skipped by its other connects.
    pending: std::sync::Mutex<BTreeSet<(String, Ipv4Addr)>>,
    /// Serialises this host's network creates and removals against the watch's mirroring.
    mirror: tokio::sync::Mutex<()>,
}

impl Cluster {
    pub fn new(store: Box<dyn ClusterStore>, host: Ipv4Addr, lease_ttl: u64) -> Cluster {
        Cluster {
            store,
            host,
            lease_ttl: lease_ttl.max(2),
            lease: Default::default(),
            view: Default::default(),
            pending: Default::default(),
            mirror: Default::default(),
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses of containers named `name` (lowercase) on other hosts, on `networks`.
    pub fn remote_names(&self, networks: &[String], name: &str) -> Vec<IpAddr> {
        self.view()
            .endpoints
            .values()
            .filter(|e| e.host != self.host && networks.contains(&e.network))
            .filter(|e| e.container.eq_ignore_ascii_case(name))
            .map(|e| IpAddr::V4(e.ip))
            .collect()
    }

    /// The addresses of containers named `name` on other hosts, on any global network.
    pub fn remote_names_anywhere(&self, name: &str) -> Vec<IpAddr> {
        self.view()
            .endpoints
            .values()
            .filter(|e| e.host != self.host && e.container.eq_ignore_ascii_case(name))
            .map(|e| IpAddr::V4(e.ip))
            .collect()
    }

    /// The endpoints of a network on other hosts, as last seen.
    pub fn remote_endpoints(&self, network: &str) -> Vec<ClusterEndpoint> {
        self.view()
            .endpoints
            .values()
            .filter(|e| e.network == network && e.host != self.host)
            .cloned()
            .collect()
    }
}

/// A cluster failure in the client's terms: unreachable is 503, and nothing was changed.
fn unavailable(what: &str) -> impl FnOnce(ClusterError) -> Error + '_ {
    move |e| match e {
        ClusterError::Unavailable(detail) => Error::Unavailable(format!(
            "{what}: the cluster store is unavailable ({detail}); nothing was changed"
        )),
        ClusterError::Refused(detail) => {
            Error::System(format!("{what}: the cluster store refused: {detail}"))
        }
    }
}

/// Docker's checks of an overlay create, and what netbridge's overlay does not offer; pure.
fn check_global(req: &CreateNetwork) -> Result<Vec<ipam::ParsedConfig>> {
    if PREDEFINED_NAMES.contains(&req.name.as_str()) {
        return Err(Error::Forbidden(format!(
            "operation is not permitted on predefined {} network ",
            req.name
        )));
    }
    if req.name.trim().is_empty() {
        return Err(Error::InvalidParameter(
            "invalid name: name is empty".to_string(),
        ));
    }
    if req.enable_ipv6 == Some(true) {
        return Err(Error::InvalidParameter(
            "overlay networks are IPv4 only in netbridge".to_string(),
        ));
    }
    if !(req.scope.is_empty() || req.scope == GLOBAL || req.scope == "swarm") {
        return Err(Error::InvalidParameter(format!(
            "overlay networks are global; scope \"{}\" is not supported",
            req.scope
        )));
    }
    ipam::validate(&req.ipam_config, true, false).map_err(|e| match e {
        ipam::ConfigError::Malformed(text) => {
            Error::InvalidParameter(format!("invalid JSON: {text}"))
        }
        invalid => Error::InvalidParameter(invalid.to_string()),
    })
}

/// How long an undo of a write with an unknown outcome keeps trying (every [`UNDO_RETRY`]).
const UNDO_TRIES: usize = 120;
const UNDO_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `attempt` until it says the undo is done (or there is nothing to undo), every
/// [`UNDO_RETRY`] for at most [`UNDO_TRIES`] tries: an undo waits for the cluster to answer.
fn undo_later<F, A>(mut attempt: F)
where
    F: FnMut() -> A + Send + 'static,
    A: Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        for _ in 0..UNDO_TRIES {
            if attempt().await {
                return;
            }
            tokio::time::sleep(UNDO_RETRY).await;
        }
    });
}

/// Releases a claim whose outcome is unknown once the cluster answers again (it holds this
/// endpoint's ID, so an address taken by another endpoint meanwhile is left alone).
fn release_later(cluster: Arc<Cluster>, claim: ClusterEndpoint) {
    undo_later(move || {
        let (cluster, claim) = (cluster.clone(), claim.clone());
        async move {
            cluster
                .store
                .release(&claim.network, claim.ip, &claim.endpoint)
                .await
                .is_ok()
        }
    });
}

/// Removes a network whose create answered 503 but may have landed, once the cluster answers
/// again (unless an endpoint joined it meanwhile: then it is in use and stays).
fn uncreate_later(cluster: Arc<Cluster>, g: GlobalNetwork) {
    undo_later(move || {
        let (cluster, g) = (cluster.clone(), g.clone());
        async move {
            // The read comes after the fence: nothing written before it can land later.
            let Ok(snap) = cluster.store.snapshot().await else {
                return false;
            };
            if !snap.networks.iter().any(|n| n.id == g.id) {
                return true;
            }
            let removed = cluster.store.remove_network(&g).await.is_ok();
            if removed {
                tracing::info!(network = %g.name, "removed a global network whose create had failed");
            }
            removed
        }
    });
}

/// Puts back a network whose removal answered 503 but may have landed, once the cluster
/// answers again, unless it has been removed here since.
fn unremove_later(cluster: Arc<Cluster>, store: Store, g: GlobalNetwork) {
    undo_later(move || {
        let (cluster, store, g) = (cluster.clone(), store.clone(), g.clone());
        async move {
            let Ok(snap) = cluster.store.snapshot().await else {
                return false;
            };
            if snap.networks.iter().any(|n| n.id == g.id)
                || !matches!(store.network(&g.id).await, Ok(Some(_)))
            {
                return true;
            }
            match cluster.store.create_network(&g, snap.revision).await {
                Ok(true) => {
                    tracing::info!(network = %g.name, "put back a global network whose removal had failed");
                    true
                }
                Ok(false) => {
                    // Its name, VNI or subnet is taken now, or a network was defined since the
                    // snapshot (then the next try sees it).
                    tracing::warn!(network = %g.name, "a global network's removal failed but landed, and putting it back was refused");
                    false
                }
                Err(_) => false,
            }
        }
    });
}

impl GlobalNetwork {
    /// The network as this host's store and overlay driver hold it.
    fn local(&self, host: Ipv4Addr, mtu: u32) -> Result<Network> {
        let subnet: Cidr = self
            .subnet
            .parse()
            .map_err(|_| Error::System(format!("global network {}: bad subnet", self.name)))?;
        let ip_range = self.ip_range.as_deref().and_then(|r| r.parse().ok());
        let state = OverlayState::new(&self.id, self.vni, host, mtu);
        Ok(Network {
            id: self.id.clone(),
            name: self.name.clone(),
            driver: "overlay".to_string(),
            scope: GLOBAL.to_string(),
            created_nanos: self.created_nanos,
            enable_ipv4: true,
            enable_ipv6: false,
            internal: self.internal,
            attachable: self.attachable,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin: false,
            link: Some(state.bridge.clone()),
            driver_state: serde_json::to_value(state).unwrap_or_default(),
            options: self.options.clone(),
            labels: self.labels.clone(),
            ipam_driver: "default".to_string(),
            ipam_options: None,
            ipam: vec![NetworkConfig {
                subnet,
                ip_range,
                gateway: IpAddr::V4(self.gateway),
                aux: BTreeMap::new(),
            }],
        })
    }

    fn of(n: &Network) -> Option<GlobalNetwork> {
        let cfg = n.ipv4()?;
        let IpAddr::V4(gateway) = cfg.gateway else {
            return None;
        };
        let state: OverlayState = driver::read_state(&n.driver_state).ok()?;
        Some(GlobalNetwork {
            id: n.id.clone(),
            name: n.name.clone(),
            subnet: cfg.subnet.to_string(),
            gateway,
            ip_range: cfg.ip_range.map(|r| r.to_string()),
            vni: state.vni,
            created_nanos: n.created_nanos,
            internal: n.internal,
            attachable: n.attachable,
            labels: n.labels.clone(),
            options: n.options.clone(),
        })
    }
}

impl Daemon {
    /// The cluster this host is in, if started with one.
    pub(super) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Joins a cluster; before [`Daemon::start`].
    pub fn set_cluster(&self, cluster: Cluster) {
        let _ = self.cluster.set(Arc::new(cluster));
    }

    fn need_cluster(&self) -> Result<&Arc<Cluster>> {
        self.cluster().ok_or_else(|| {
            Error::InvalidParameter(
                "the overlay driver needs a cluster store: start netbridge with --cluster-store and --advertise-addr"
                    .to_string(),
            )
        })
    }

    /// `POST /networks/create` for an overlay network: claimed in the cluster (name, VNI,
    /// subnet in one transaction), then mirrored here; other hosts mirror it from the watch.
    pub(super) async fn create_global(&self, req: CreateNetwork) -> Result<String> {
        let cluster = self.need_cluster()?.clone();
        let parsed = check_global(&req)?;
        if self.store.network_by_name(&req.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let _mirror = cluster.mirror.lock().await;
        let reserved = self.reserved_prefixes().await?;
        let id = model::new_id();
        // Checked against one snapshot, and claimed only if no network was defined since.
        let mut snap = cluster
            .store
            .snapshot()
            .await
            .map_err(unavailable("cannot create the global network"))?;
        for _ in 0..CAS_TRIES {
            let mut taken: Vec<Cidr> = snap
                .networks
                .iter()
                .filter_map(|n| n.subnet.parse().ok())
                .collect();
            let vnis: BTreeSet<u32> = snap.networks.iter().map(|n| n.vni).collect();
            taken.extend(self.store.taken_subnets().await?);
            // Other hosts' local networks too: an automatic subnet must not collide with them.
            taken.extend(
                snap.host_subnets
                    .iter()
                    .filter_map(|s| s.parse::<Cidr>().ok()),
            );
            let cfg = ipam::allocate(
                &parsed,
                true,
                false,
                &self.settings.pools,
                &taken,
                &reserved,
            )
            .map_err(|e| Error::Forbidden(e.to_string()))?;
            let Some(cfg) = cfg.into_iter().find(|c| c.subnet.is_ipv4()) else {
                return Err(Error::InvalidParameter("no IPv4 subnet".to_string()));
            };
            let IpAddr::V4(gateway) = cfg.gateway else {
                return Err(Error::InvalidParameter("no IPv4 gateway".to_string()));
            };
            let vni = (FIRST_VNI..)
                .find(|v| !vnis.contains(v))
                .unwrap_or(FIRST_VNI);
            let g = GlobalNetwork {
                id: id.clone(),
                name: req.name.clone(),
                subnet: cfg.subnet.to_string(),
                gateway,
                ip_range: cfg.ip_range.map(|r| r.to_string()),
                vni,
                created_nanos: model::now_nanos(),
                internal: req.internal,
                attachable: req.attachable,
                labels: req.labels.clone(),
                options: req.options.clone(),
            };
            let won = match cluster.store.create_network(&g, snap.revision).await {
                Ok(won) => won,
                Err(e) => {
                    uncreate_later(cluster.clone(), g);
                    return Err(unavailable("cannot create the global network")(e));
                }
            };
            if won {
                cluster.view().networks.insert(g.id.clone(), g.clone());
                self.mirror_network(&cluster, &g).await?;
                return Ok(id);
            }
            // Lost: the name, or another network defined meanwhile (its VNI or subnet may
            // clash).
            if cluster
                .store
                .name_taken(&req.name)
                .await
                .map_err(unavailable("cannot create the global network"))?
            {
                return Err(Error::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            snap = cluster
                .store
                .snapshot()
                .await
                .map_err(unavailable("cannot create the global network"))?;
        }
        Err(Error::Unavailable(
            "cannot create the global network: too much contention in the cluster store"
                .to_string(),
        ))
    }

    /// Makes a global network exist on this host (row, bridge, VXLAN link), then programs the
    /// remote endpoints already known. Does nothing if it is there.
    pub(super) async fn mirror_network(&self, cluster: &Cluster, g: &GlobalNetwork) -> Result<()> {
        if self.store.network(&g.id).await?.is_none() {
            let mtu = self
                .kernel
                .mtu_of_address(cluster.host)
                .await
                .map_err(Error::kernel("reading the underlay's MTU"))?
                .unwrap_or(1500)
                .saturating_sub(crate::kernel::VXLAN_OVERHEAD);
            let network = g.local(cluster.host, mtu)?;
            let driver = driver::of(&network)?;
            let _topology = self.topology.lock().await;
            if let Some(other) = self.store.network_by_name(&g.name).await?
                && other.id != g.id
            {
                return Err(Error::Conflict(format!(
                    "global network {} clashes with local network {} of the same name",
                    g.name, other.id
                )));
            }
            self.store_network(network, driver).await?;
        }
        let n = self.store.network(&g.id).await?;
        if let Some(n) = n {
            let wanted = cluster.remote_endpoints(&g.id);
            self.drop_stale_peers(&n, &wanted).await;
            for e in wanted {
                self.program_peer(&n, &e, true).await;
            }
        }
        Ok(())
    }

    /// Removes kernel entries of remote endpoints the cluster no longer has (gone while
    /// this daemon was down).
    async fn drop_stale_peers(&self, n: &Network, wanted: &[ClusterEndpoint]) {
        let Ok(state) = driver::read_state::<OverlayState>(&n.driver_state) else {
            return;
        };
        let programmed = match self.kernel.peers(&state.vxlan).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "cannot read a VXLAN link's peers");
                return;
            }
        };
        tracing::debug!(network = %n.name, programmed = programmed.len(), wanted = wanted.len(), "checking remote endpoints");
        for p in programmed {
            let kept = wanted.iter().any(|e| {
                e.host == p.host && e.ip == p.ip && model::parse_mac(&e.mac) == Some(p.mac)
            });
            if !kept && let Err(e) = self.kernel.remove_peer(&state.vxlan, p).await {
                tracing::warn!(network = %n.name, error = %e, "cannot remove a stale peer");
            }
        }
    }

    /// Before a global network's local removal: removes it from the cluster, unless an
    /// endpoint on another host still uses it.
    pub(super) async fn remove_global(&self, n: &Network) -> Result<()> {
        let Some(cluster) = self.cluster() else {
            return Ok(());
        };
        let Some(g) = GlobalNetwork::of(n) else {
            return Ok(());
        };
        let left = match cluster.store.remove_network(&g).await {
            Ok(left) => left,
            Err(e) => {
                unremove_later(cluster.clone(), self.store.clone(), g);
                return Err(unavailable("cannot remove the global network")(e));
            }
        };
        if left > 0 {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} has active endpoints on other hosts ({left})",
                n.name
            )));
        }
        cluster.view().networks.remove(&n.id);
        Ok(())
    }

    /// Claims an endpoint's address in the cluster: the one asked for, or the lowest free one
    /// that no host holds. Returns the address now held under this host's lease.
    pub(super) async fn claim_global(
        &self,
        n: &Network,
        e: &Endpoint,
        container: &str,
        requested: Option<IpAddr>,
        used: &mut BTreeSet<IpAddr>,
    ) -> Result<Ipv4Addr> {
        let cluster = self.need_cluster()?.clone();
        let lease = cluster.lease.load(std::sync::atomic::Ordering::Acquire);
        if lease == 0 {
            return Err(Error::Unavailable(format!(
                "cannot connect to global network {}: this host holds no cluster lease (is etcd reachable?); nothing was changed",
                n.name
            )));
        }
        let cfg = n
            .ipv4()
            .ok_or_else(|| Error::System(format!("global network {} has no subnet", n.name)))?;
        used.extend(
            cluster
                .view()
                .endpoints
                .values()
                .filter(|c| c.network == n.id)
                .map(|c| IpAddr::V4(c.ip)),
        );
        for _ in 0..CAS_TRIES {
            let ip = match requested {
                Some(ip) => ip,
                None => {
                    let mut pending = cluster.pending.lock().unwrap_or_else(|p| p.into_inner());
                    let mut skip = used.clone();
                    skip.extend(
                        pending
                            .iter()
                            .filter(|(net, _)| *net == n.id)
                            .map(|(_, ip)| IpAddr::V4(*ip)),
                    );
                    let after = cluster.view().high_water.get(&n.id).copied();
                    let found = match after {
                        Some(after) => ipam::next_free(cfg, &skip, IpAddr::V4(after)),
                        None => ipam::first_free(cfg, &skip),
                    };
                    let ip = found.ok_or_else(|| {
                        Error::InvalidParameter(format!(
                            "no available IPv4 addresses on this network's address pools: {} ({})",
                            n.name, n.id
                        ))
                    })?;
                    if let IpAddr::V4(v4) = ip {
                        pending.insert((n.id.clone(), v4));
                    }
                    ip
                }
            };
            let IpAddr::V4(ip4) = ip else {
                return Err(Error::InvalidParameter(format!(
                    "global network {} has IPv4 addresses only",
                    n.name
                )));
            };
            let outcome = self.try_claim(&cluster, n, e, container, ip4, lease).await;
            cluster
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(n.id.clone(), ip4));
            if outcome? {
                return Ok(ip4);
            }
            if requested.is_some() {
                return Err(Error::Forbidden("Address already in use".to_string()));
            }
            // Lost to another host: read every claim, so the next try skips them all.
            used.insert(ip);
            let claimed = cluster
                .store
                .claimed(&n.id)
                .await
                .map_err(unavailable("cannot connect to the global network"))?;
            used.extend(claimed.into_iter().map(IpAddr::V4));
        }
        Err(Error::Unavailable(format!(
            "cannot connect to global network {}: too much contention for addresses",
            n.name
        )))
    }

    /// One compare-and-swap claim of `ip`; whether it was won.
    async fn try_claim(
        &self,
        cluster: &Arc<Cluster>,
        n: &Network,
        e: &Endpoint,
        container: &str,
        ip4: Ipv4Addr,
        lease: i64,
    ) -> Result<bool> {
        let claim = ClusterEndpoint {
            network: n.id.clone(),
            endpoint: e.id.clone(),
            ip: ip4,
            mac: e.mac.clone(),
            host: cluster.host,
            container: container.to_string(),
        };
        let won = match cluster.store.claim(&claim, lease).await {
            Ok(won) => won,
            Err(e) => {
                // A member that was too slow may still apply the claim later.
                release_later(cluster.clone(), claim);
                return Err(unavailable("cannot connect to the global network")(e));
            }
        };
        if won {
            let mut view = cluster.view();
            view.saw(&claim);
            view.endpoints.insert((claim.network.clone(), ip4), claim);
        }
        Ok(won)
    }

    /// Frees an endpoint's address claim. `strict`: an unreachable cluster is an error (a
    /// disconnect must change nothing then); otherwise it is logged (a rollback, which the
    /// next sync of this host's endpoints finishes).
    pub(super) async fn release_global(&self, e: &Endpoint, strict: bool) -> Result<()> {
        let Some(cluster) = self.cluster() else {
            return Ok(());
        };
        let Some(IpAddr::V4(ip)) = e.ipv4 else {
            return Ok(());
        };
        match cluster.store.release(&e.network_id, ip, &e.id).await {
            Ok(()) => {
                cluster.view().endpoints.remove(&(e.network_id.clone(), ip));
                Ok(())
            }
            Err(err) if strict => Err(unavailable("cannot disconnect from the global network")(
                err,
            )),
            Err(err) => {
                tracing::warn!(endpoint = %e.id, error = %err, "cannot release a cluster address claim");
                Ok(())
            }
        }
    }

    /// Adds or removes one remote endpoint's FDB and neighbour entries. Best effort: logged.
    async fn program_peer(&self, n: &Network, e: &ClusterEndpoint, add: bool) {
        let Ok(state) = driver::read_state::<OverlayState>(&n.driver_state) else {
            return;
        };
        let Some(mac) = model::parse_mac(&e.mac) else {
            return;
        };
        let peer = crate::kernel::RemotePeer {
            mac,
            ip: e.ip,
            host: e.host,
        };
        let done = if add {
            let added = self.kernel.add_peer(&state.vxlan, peer).await;
            if added.is_ok()
                && let Err(err) = self.kernel.announce_peer(&state.bridge, peer).await
            {
                tracing::debug!(network = %n.name, peer = %e.ip, error = %err, "cannot announce a remote endpoint");
            }
            added
        } else {
            self.kernel.remove_peer(&state.vxlan, peer).await
        };
        if let Err(err) = done {
            tracing::warn!(network = %n.name, peer = %e.ip, host = %e.host, add, error = %err, "cannot program a remote endpoint");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> CreateNetwork {
        CreateNetwork {
            name: name.to_string(),
            driver: "overlay".to_string(),
            ..CreateNetwork::default()
        }
    }

    #[test]
    fn overlay_creates_are_checked() {
        assert!(check_global(&req("shared")).is_ok());
        assert!(matches!(
            check_global(&req("bridge")),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            check_global(&req(" ")),
            Err(Error::InvalidParameter(_))
        ));
        let mut v6 = req("v6");
        v6.enable_ipv6 = Some(true);
        assert!(matches!(check_global(&v6), Err(Error::InvalidParameter(_))));
        let mut local = req("l");
        local.scope = "local".to_string();
        assert!(matches!(
            check_global(&local),
            Err(Error::InvalidParameter(_))
        ));
    }
}
