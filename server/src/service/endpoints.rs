//! Connect and disconnect: an endpoint between a container's namespace and a network, made by
//! the network's driver (a veth pair to a bridge, a macvlan of a parent, …).
//!
//! Order for crash repair: the endpoint row (which reserves its address through a unique index;
//! a global network's address is claimed in the cluster meanwhile and recorded at the end) is
//! written before the driver attaches it, and removed after the driver cut it off (its links
//! are deleted later, in batches, by the reaper); a failure in between undoes what was done, so
//! no interface, address or row is left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::driver::{self, Attach};
use super::events::network_event;
use super::journal::Op;
use super::{Daemon, EndpointLocks, Error, Lookup, Result, crash};
use crate::ipam::{self, NetworkConfig, StaticError};
use crate::kernel::{Gateways, InterfaceSysctl, LateAddresses};
use crate::model::{self, Container, Endpoint, Network};
use crate::store::StoreError;

/// `POST /networks/{id}/connect` in domain terms.
#[derive(Clone, Debug, Default)]
pub struct ConnectRequest {
    pub container: String,
    /// Static addresses; `None` or empty = from IPAM.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub mac: Option<String>,
    pub aliases: Vec<String>,
    pub gw_priority: i64,
    /// IPAMConfig.LinkLocalIPs as sent.
    pub link_local_ips: Vec<String>,
    pub links: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
}

/// Docker's endpoint driver option holding per-interface sysctls, `net.X.Y.IFNAME.Z=V,…`.
pub const ENDPOINT_SYSCTLS: &str = "com.docker.network.endpoint.sysctls";
/// Docker's endpoint driver option naming the interface inside the container.
pub const ENDPOINT_IFNAME: &str = "com.docker.network.endpoint.ifname";

/// Where an endpoint goes, as decided by a connect's checks.
struct Place<'a> {
    network: &'a Network,
    container: &'a Container,
    wanted: &'a Wanted,
    ns: &'a crate::kernel::Netns,
    /// Whether it provides the container's default route.
    gateway_owner: bool,
    /// The container's other networks, with their endpoints' gateway priority.
    others: Vec<(i64, Network)>,
}

/// A global network's address claim, in flight while the interface is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimState {
    InFlight,
    Won(Ipv4Addr),
    Failed,
}

type Claim = tokio::sync::watch::Receiver<ClaimState>;

/// For one attach: the receiver of its late address, and the task that hands the claim's
/// address over once it is won. A failed claim drops the sender, which calls the attach off.
fn hand_over(
    claim: Option<&Claim>,
    network: &Network,
) -> (
    Option<LateAddresses>,
    impl std::future::Future<Output = ()> + use<>,
) {
    let prefix = network.ipv4().map(|c| c.subnet.prefix);
    let (tell, late) = match claim {
        Some(_) => {
            let (tell, late) = tokio::sync::oneshot::channel();
            (Some(tell), Some(late))
        }
        None => (None, None),
    };
    let mut claim = claim.cloned();
    let task = async move {
        let (Some(mut tell), Some(claim)) = (tell, claim.as_mut()) else {
            return;
        };
        let settled = tokio::select! {
            _ = tell.closed() => return,
            settled = claim.wait_for(|c| *c != ClaimState::InFlight) => settled.map(|c| *c),
        };
        if let (Ok(ClaimState::Won(ip)), Some(prefix)) = (settled, prefix) {
            let _ = tell.send(vec![(IpAddr::V4(ip), prefix)]);
        }
    };
    (late, task)
}

impl Daemon {
    /// Attaches a container to a network. Checks run in Docker's order: container, network,
    /// endpoint settings, already connected, addresses.
    pub async fn connect(&self, network_term: &str, req: ConnectRequest) -> Result<()> {
        let _shared = self.exclusive.read().await;
        self.connect_shared(network_term, req).await
    }

    /// [`Daemon::connect`] for an operation that already holds the shared lock.
    pub(super) async fn connect_shared(
        &self,
        network_term: &str,
        req: ConnectRequest,
    ) -> Result<()> {
        let reached = self.resolve_container(&req.container).await?;
        let network = self.find_network(network_term, Lookup::Connect).await?;
        let count = self.store.endpoint_count(&network.id).await?;
        driver::of(&network)?.check_connect(&network, count)?;
        let wanted = endpoint_settings(&network, &req)?;

        // The container's lock also keeps its interfaces named in turn (eth0, eth1, …).
        let mut locks = self
            .lock_endpoint(&network.id, reached.container.namespace)
            .await;
        // The network may have been removed while we waited.
        let Some(network) = self.store.network(&network.id).await? else {
            return Err(Error::NotFound(format!("network {network_term} not found")));
        };
        // Recorded, or forgotten by a last disconnect, while we waited: read it again.
        let container = self.record_locked(reached).await?;
        let result = self
            .connect_locked(&network, &container, wanted, &mut locks)
            .await;
        if result.is_err() {
            // Still under the container's lock: no connect can be recording an endpoint.
            self.forget_quietly(&container.id).await;
        }
        result
    }

    async fn connect_locked(
        &self,
        network: &Network,
        container: &Container,
        wanted: Wanted,
        locks: &mut EndpointLocks,
    ) -> Result<()> {
        let mine = self.store.endpoints_of_container(&container.id).await?;
        if mine.iter().any(|e| e.network_id == network.id) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                container.name, network.name
            )));
        }
        let driver = driver::of(network)?;
        let count = self.store.endpoint_count(&network.id).await?;
        driver.check_connect(network, count)?;
        let ns = self
            .open_namespace(container)
            .await
            .ok_or_else(|| Error::NotFound(format!("No such container: {}", container.name)))?;
        let used = self.store.used_addresses(&network.id).await?;
        let global = network.scope == super::cluster::GLOBAL;
        // A global network's address is claimed in the cluster while the interface is built
        // (a requested one is checked here).
        let ipv4 = match global && wanted.ipv4.is_none() {
            true => None,
            false => pick_address(network, network.ipv4(), wanted.ipv4, &used, "IPv4")?,
        }
        .filter(|_| !global);
        let ipv6 = pick_address(network, network.ipv6(), wanted.ipv6, &used, "IPv6")?;
        let mac = match driver.fixed_mac(self.driver_env(), network).await? {
            Some(mac) => mac,
            None => wanted.mac.unwrap_or_else(model::random_mac),
        };

        // Does this endpoint provide the container's default route (Docker's rule)?
        let mut others = Vec::new();
        for e in &mine {
            if let Some(n) = self.store.network(&e.network_id).await? {
                others.push((e.gw_priority, n));
            }
        }
        let gateway_owner = provides_gateway(network, wanted.gw_priority, &others);

        let endpoint = new_endpoint(network, container, &wanted, mac, ipv4, ipv6);
        let place = Place {
            network,
            container,
            wanted: &wanted,
            ns: &ns,
            gateway_owner,
            others,
        };
        if !global {
            return self.connect_endpoint(place, endpoint, locks, None).await;
        }
        // Boxed: a local connect need not carry the cluster's larger future.
        Box::pin(self.connect_global(place, endpoint, locks, used)).await
    }

    /// A connect to a global network: the address claimed in the cluster while the interface
    /// is built.
    async fn connect_global(
        &self,
        place: Place<'_>,
        mut endpoint: Endpoint,
        locks: &mut EndpointLocks,
        mut used: BTreeSet<IpAddr>,
    ) -> Result<()> {
        let (network, container, requested) = (place.network, place.container, place.wanted.ipv4);
        // The cluster's compare-and-swap keeps addresses unique, not this lock: other
        // connects to the network claim theirs meanwhile.
        locks.release_network();
        let (tell, claim) = tokio::sync::watch::channel(ClaimState::InFlight);
        let claimed = async {
            let claimed = self
                .claim_global(network, &endpoint, &container.name, requested, &mut used)
                .await;
            tell.send_replace(match &claimed {
                Ok(ip) => ClaimState::Won(*ip),
                Err(_) => ClaimState::Failed,
            });
            claimed
        };
        let connected = self.connect_endpoint(place, endpoint.clone(), locks, Some(claim));
        match tokio::join!(claimed, connected) {
            (Ok(ip), Err(e)) => {
                endpoint.ipv4 = Some(IpAddr::V4(ip));
                let _ = self.release_global(&endpoint, false).await;
                Err(e)
            }
            // A failed claim calls the attach off: the claim's error is the answer.
            (claimed, connected) => claimed.and(connected),
        }
    }

    /// The rest of a connect: row, interface, and the row finished. A global network's
    /// address comes through `claim` while the interface is built.
    async fn connect_endpoint(
        &self,
        place: Place<'_>,
        mut endpoint: Endpoint,
        locks: &mut EndpointLocks,
        claim: Option<Claim>,
    ) -> Result<()> {
        let (network, container) = (place.network, place.container);
        let (ipv4, ipv6) = (endpoint.ipv4, endpoint.ipv6);
        let mut addresses: Vec<(IpAddr, u8)> = [(ipv4, network.ipv4()), (ipv6, network.ipv6())]
            .into_iter()
            .filter_map(|(ip, cfg)| Some((ip?, cfg?.subnet.prefix)))
            .collect();
        addresses.extend(link_local_addresses(&endpoint));
        let gateways = match place.gateway_owner {
            true => gateways_of(network),
            false => Gateways::default(),
        };
        let claim = claim.as_ref();
        let recorded =
            self.record_and_attach(&place, &mut endpoint, &addresses, gateways, locks, claim);
        let (op, ifname) = recorded.await?;
        // The row was written without a claimed address; it learns it with the rest.
        let claimed = match claim.map(|c| *c.borrow()) {
            Some(ClaimState::Won(ip)) => Some(IpAddr::V4(ip)),
            _ => None,
        };
        endpoint.ipv4 = claimed.or(endpoint.ipv4);
        crash::point("connect.attached");
        let event = network_event("connect", network, Some(container));
        if let Err(e) = self
            .store
            .finish_connect(op, &endpoint.id, &ifname, claimed, &event)
            .await
        {
            let _ = self
                .detach_endpoint(network, &endpoint, Some(container))
                .await;
            let _ = self.store.delete_endpoint(&endpoint.id).await;
            self.store.end_op(op).await?;
            return Err(e.into());
        }
        crash::point("connect.recorded");
        self.broadcast(event);
        if place.gateway_owner && !place.others.is_empty() {
            // The namespace's default route came from another network that this one outranks.
            self.rehome_gateway(container).await;
        }
        self.sync_resolver(container).await;
        tracing::info!(network = %network.name, container = %container.name, endpoint = %endpoint.id,
            ifname = %ifname, ipv4 = ?endpoint.ipv4, "connected");
        Ok(())
    }

    /// Writes the journal entry and the row, and attaches the endpoint meanwhile; retries a
    /// host-side name that clashes. Returns the journal entry and the name inside.
    async fn record_and_attach(
        &self,
        place: &Place<'_>,
        endpoint: &mut Endpoint,
        addresses: &[(IpAddr, u8)],
        gateways: Gateways,
        locks: &mut EndpointLocks,
        claim: Option<&Claim>,
    ) -> Result<(i64, String)> {
        let Place {
            network,
            container,
            wanted,
            ns,
            ..
        } = *place;
        let driver = driver::of(network)?;
        let Some(mac) = model::parse_mac(&endpoint.mac) else {
            return Err(Error::System(format!("bad MAC {}", endpoint.mac)));
        };
        // A random host-side name may clash, so retry a few times. The journal names the
        // endpoint's kernel objects before they exist, so a crash at any later point can be
        // rolled back even before they carry their mark.
        let mut attempt = 0;
        loop {
            endpoint.host_ifname = driver.host_ifname(&endpoint.id);
            let journaled = Op::Connect {
                driver: network.driver.clone(),
                host_ifname: endpoint.host_ifname.clone(),
                container: container.id.clone(),
                netns: container.netns_path.clone(),
            };
            let (name, detail) = journaled.record();
            // The namespace's thread starts while the journal entry and the row are written,
            // and changes nothing until they are.
            let (go, ready) = tokio::sync::oneshot::channel();
            let endpoint = &*endpoint;
            let begin = async {
                let begun = self.store.begin_connect(name, endpoint, &detail).await;
                if begun.is_ok() {
                    // Journal entry and row were one write: one crash point covers both.
                    crash::point("connect.journaled");
                    // The row holds the address now: other connects to this network can pick
                    // theirs while this one's interface is made. A disconnect or removal still
                    // waits (for the container's lock, or refuses while the row stands).
                    locks.release_network();
                }
                let _ = go.send(begun.is_ok());
                begun
            };
            let (late, handing_over) = hand_over(claim, network);
            let attach = Attach {
                endpoint,
                ns,
                ifname: wanted.ifname.clone(),
                mac,
                addresses: addresses.to_vec(),
                sysctls: wanted.sysctls.clone(),
                gateways,
            };
            let ready = crate::kernel::Ready { go: ready, late };
            let attach = driver.attach(self.driver_env(), network, attach, ready);
            let (begun, attached, ()) = tokio::join!(begin, attach, handing_over);
            let op = match begun {
                Ok(op) => op,
                Err(StoreError::Duplicate(_)) if attempt < 3 => {
                    attempt += 1;
                    continue;
                }
                Err(StoreError::Duplicate(_)) => {
                    return Err(Error::Forbidden("Address already in use".to_string()));
                }
                Err(e) => return Err(e.into()),
            };
            match attached {
                Ok(ifname) => return Ok((op, ifname)),
                Err(e) => {
                    if let Err(undo) = self.store.delete_endpoint(&endpoint.id).await {
                        tracing::error!(endpoint = %endpoint.id, error = %undo, "cannot roll back an endpoint row");
                    }
                    self.store.end_op(op).await?;
                    return Err(e);
                }
            }
        }
    }

    /// [`Daemon::forget_unused_namespace`] where a failure must not fail the operation.
    async fn forget_quietly(&self, container_id: &str) {
        if let Err(e) = self.forget_unused_namespace(container_id).await {
            tracing::warn!(container = %container_id, error = %e, "cannot forget a namespace");
        }
    }

    /// Points the container's default route at the endpoint Docker's rule picks. Best effort: a
    /// failure is logged, the attachment itself stands.
    pub(super) async fn rehome_gateway(&self, container: &Container) {
        let mut candidates = Vec::new();
        match self.store.endpoints_of_container(&container.id).await {
            Ok(endpoints) => {
                for e in endpoints {
                    if let Ok(Some(n)) = self.store.network(&e.network_id).await {
                        candidates.push((e, n));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(container = %container.id, error = %e, "cannot read endpoints");
                return;
            }
        }
        let Some((owner, network)) = candidates.iter().find(|(e, n)| {
            let others: Vec<(i64, Network)> = candidates
                .iter()
                .filter(|(o, _)| o.id != e.id)
                .map(|(o, n)| (o.gw_priority, n.clone()))
                .collect();
            provides_gateway(n, e.gw_priority, &others)
        }) else {
            return;
        };
        let v4 = gateway_v4(network).filter(|_| owner.ipv4.is_some());
        let v6 = gateway_v6(network).filter(|_| owner.ipv6.is_some());
        let Some(ns) = self.open_namespace(container).await else {
            return;
        };
        let moved = self
            .kernel
            .set_default_route(&ns, &owner.ifname, v4, v6)
            .await;
        if let Err(e) = moved {
            tracing::warn!(container = %container.name, error = %e, "cannot move the default route");
        }
    }

    /// Detaches a container from a network. With `force`, an unknown container name still
    /// removes the endpoint recorded under that name (stale state).
    pub async fn disconnect(
        &self,
        network_term: &str,
        container_term: &str,
        force: bool,
    ) -> Result<()> {
        let _shared = self.exclusive.read().await;
        let resolved = self.resolve_container(container_term).await;
        // As Docker: an unknown container is reported before the network, unless forced.
        if let Err(Error::NotFound(msg)) = &resolved
            && !force
        {
            return Err(Error::NotFound(msg.clone()));
        }
        let network = self.find_network(network_term, Lookup::Connect).await?;
        driver::of(&network)?.check_disconnect()?;
        let container = match resolved {
            Ok(reached) if reached.recorded => reached.container,
            Ok(reached) => {
                return Err(not_connected(&reached.container.name, &network.name));
            }
            Err(Error::NotFound(msg)) => {
                if !force {
                    return Err(Error::NotFound(msg));
                }
                return Err(Error::NotFound(format!(
                    "endpoint {container_term} not found"
                )));
            }
            Err(e) => return Err(e),
        };
        if self.disconnect_if_connected(&network, &container).await? {
            Ok(())
        } else {
            Err(not_connected(&container.id, &network.name))
        }
    }

    /// Takes the endpoint's locks, then disconnects the container from the network if it is
    /// still connected (another request may have been first). Returns whether it was.
    pub(super) async fn disconnect_if_connected(
        &self,
        network: &Network,
        container: &Container,
    ) -> Result<bool> {
        let mut locks = self.lock_endpoint(&network.id, container.namespace).await;
        // The network's lock orders address picks and removal, neither of which a disconnect
        // needs held: a removal refuses while the row stands, and the address is free only
        // once the row is gone. Disconnects from one network go side by side.
        locks.release_network();
        // Forgotten and recorded again while we waited: the record as it stands now.
        let Some(container) = self
            .store
            .container_by_namespace(container.namespace)
            .await?
        else {
            return Ok(false);
        };
        let endpoint = self
            .store
            .endpoints_of_container(&container.id)
            .await?
            .into_iter()
            .find(|e| e.network_id == network.id);
        match endpoint {
            Some(e) => self
                .disconnect_endpoint(network, &container, &e)
                .await
                .map(|()| true),
            None => Ok(false),
        }
    }

    /// Removes one endpoint: cut off first, then the row (which frees its address).
    async fn disconnect_endpoint(
        &self,
        network: &Network,
        container: &Container,
        endpoint: &Endpoint,
    ) -> Result<()> {
        let _cutting = self.reaper.cutting();
        // The cluster first: unreachable, it fails the disconnect with nothing changed.
        if network.scope == super::cluster::GLOBAL {
            Box::pin(self.release_global(endpoint, true)).await?;
        }
        // Veth first, row last: a crash in between leaves the row, and start-up re-attaches
        // the endpoint, so disconnecting again works.
        let driver = driver::of(network)?;
        let inside = driver.lives_inside().then(|| container.netns_path.clone());
        let journaled = Op::Disconnect {
            host_ifname: endpoint.host_ifname.clone(),
            netns: inside.clone().unwrap_or_default(),
        };
        let op = self.journal(&endpoint.id, &journaled).await?;
        crash::point("disconnect.journaled");
        // A vanished namespace took the interface with it: nothing to cut off is fine. The
        // links are deleted later, in a batch, by the reaper.
        let cut = match self.cut_off_endpoint(network, endpoint, container).await {
            Ok(cut) => cut,
            Err(e) => {
                self.store.end_op(op).await?;
                return Err(e);
            }
        };
        crash::point("disconnect.detached");
        // Row, journal entry and event: one request. A link doomed inside the container's
        // namespace keeps the entry open until the reaper has deleted it.
        let event = network_event("disconnect", network, Some(container));
        let handed_over = inside.filter(|_| cut);
        let close = handed_over.is_none().then_some(op);
        self.store
            .finish_disconnect(close, &endpoint.id, &event)
            .await?;
        crash::point("disconnect.row");
        match handed_over {
            Some(netns) => self.reaper.reap_inside(netns, op),
            None => self.reaper.wake(),
        }
        self.broadcast(event);
        // The default route went with the interface; the next network in line provides it.
        if !network.internal {
            self.rehome_gateway(container).await;
        }
        self.sync_resolver(container).await;
        self.forget_quietly(&container.id).await;
        tracing::info!(network = %network.name, container = %container.name, endpoint = %endpoint.id, "disconnected");
        Ok(())
    }
}

pub(super) fn not_connected(container: &str, network: &str) -> Error {
    // Docker answers 500 for this client mistake; 400 with its text.
    Error::InvalidParameter(format!(
        "container {container} is not connected to network {network}"
    ))
}

/// A connect request's settings, parsed and checked against the network.
struct Wanted {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    mac: Option<[u8; 6]>,
    aliases: Vec<String>,
    gw_priority: i64,
    /// Unmapped, in the order given.
    link_local: Vec<IpAddr>,
    links: Vec<String>,
    driver_opts: BTreeMap<String, String>,
    sysctls: Vec<InterfaceSysctl>,
    /// The interface name asked for through [`ENDPOINT_IFNAME`].
    ifname: Option<String>,
}

/// Docker's endpoint-settings checks, all problems collected into one 400.
fn endpoint_settings(network: &Network, req: &ConnectRequest) -> Result<Wanted> {
    let mut problems = Vec::new();
    let user_defined = !network.builtin;
    let mut parse = |text: &Option<String>, v4: bool| -> Option<IpAddr> {
        let text = text.as_deref().filter(|t| !t.is_empty())?;
        let family = if v4 { "IPv4" } else { "IPv6" };
        match IpAddr::from_str(text) {
            Ok(ip) if ip.is_ipv4() == v4 => {
                if !user_defined {
                    problems.push(
                        "user-specified IP address is supported on user-defined networks only"
                            .to_string(),
                    );
                } else if !network.ipam.iter().any(|c| c.subnet.contains(ip)) {
                    problems.push(format!("no configured subnet contains IP address {ip}"));
                }
                Some(ip)
            }
            _ => {
                problems.push(format!("invalid {family} address: {text}"));
                None
            }
        }
    };
    let ipv4 = parse(&req.ipv4, true);
    let ipv6 = parse(&req.ipv6, false);
    if !req.aliases.is_empty() && !user_defined {
        problems.push(
            "network-scoped aliases are only supported for user-defined networks".to_string(),
        );
    }
    let mac = match req.mac.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => match model::parse_mac(text) {
            Some(mac) => Some(mac),
            None => {
                problems.push(format!("invalid MAC address: {text}"));
                None
            }
        },
    };
    let mut link_local = Vec::new();
    for text in &req.link_local_ips {
        match IpAddr::from_str(text).map(|ip| ip.to_canonical()) {
            Ok(ip) if !ip.is_unspecified() => link_local.push(ip),
            _ => problems.push(format!("invalid link-local IP address: {text}")),
        }
    }
    let sysctls = req
        .driver_opts
        .get(ENDPOINT_SYSCTLS)
        .map(|text| parse_sysctls(text, &mut problems));
    let ifname = req.driver_opts.get(ENDPOINT_IFNAME);
    if let Some(name) = ifname
        && !model::valid_ifname(name)
    {
        problems.push(format!("invalid interface name: {name}"));
    }
    if !problems.is_empty() {
        problems.dedup();
        let body = if problems.len() == 1 {
            problems.remove(0)
        } else {
            problems
                .iter()
                .map(|p| format!("* {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        return Err(Error::InvalidParameter(format!(
            "invalid endpoint settings:\n{body}"
        )));
    }
    // Docker makes these checks later (creating, then joining the endpoint), each on its own.
    if let Some(ip) = link_local.iter().find(|ip| !is_link_local(ip)) {
        return Err(Error::InvalidParameter(format!(
            "invalid link local IP address: {ip}"
        )));
    }
    let sysctls = sysctls
        .transpose()
        .map_err(Error::InvalidParameter)?
        .unwrap_or_default();
    for link in &req.links {
        check_link(link).map_err(Error::InvalidParameter)?;
    }
    Ok(Wanted {
        ipv4,
        ipv6,
        mac,
        aliases: req.aliases.clone(),
        gw_priority: req.gw_priority,
        link_local,
        links: req.links.clone(),
        driver_opts: req.driver_opts.clone(),
        sysctls,
        ifname: ifname.cloned(),
    })
}

/// IPv4 169.254.0.0/16 or IPv6 fe80::/10, as Go's `IsLinkLocalUnicast`.
fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// The endpoint's extra link-local addresses with the prefix lengths Docker gives them (/16,
/// /64), each once: the kernel refuses an address twice.
pub(super) fn link_local_addresses(e: &Endpoint) -> Vec<(IpAddr, u8)> {
    let mut seen = BTreeSet::new();
    e.link_local_ips
        .iter()
        .filter(|ip| seen.insert(**ip))
        .map(|ip| (*ip, if ip.is_ipv4() { 16 } else { 64 }))
        .collect()
}

/// The sysctls a recorded endpoint asked for (checked when it was connected).
pub(super) fn recorded_sysctls(e: &Endpoint) -> Vec<InterfaceSysctl> {
    let mut problems = Vec::new();
    e.driver_opts
        .get(ENDPOINT_SYSCTLS)
        .and_then(|text| parse_sysctls(text, &mut problems).ok())
        .unwrap_or_default()
}

/// `net.X.Y.IFNAME.Z=V,…` as Docker reads it. What Docker checks before connecting (five
/// dot-separated parts, X one of ipv4/ipv6/mpls, the IFNAME placeholder in either case) goes
/// into `problems`; what it only finds when applying (no `=`, a name of more than five parts)
/// is the `Err`. netbridge also wants `net` first and no `/` or empty part, which Docker would
/// only fail on when writing the file.
fn parse_sysctls(
    text: &str,
    problems: &mut Vec<String>,
) -> std::result::Result<Vec<InterfaceSysctl>, String> {
    let mut parsed = Vec::new();
    let mut late = None;
    for item in text.split(',') {
        let parts: Vec<&str> = item.splitn(5, '.').collect();
        let recognised = parts.len() == 5
            && parts[0] == "net"
            && matches!(parts[1], "ipv4" | "ipv6" | "mpls")
            && matches!(parts[3], "IFNAME" | "ifname");
        if !recognised {
            problems.push(format!(
                "unrecognised network interface sysctl '{item}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
            ));
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            late.get_or_insert(format!(
                "expected sysctl '{item}' to have format name=value"
            ));
            continue;
        };
        let names: Vec<&str> = name.split('.').collect();
        if names.len() != 5 || names.iter().any(|n| n.is_empty() || n.contains('/')) {
            late.get_or_insert(format!(
                "expected sysctl '{item}' to have format net.X.Y.IFNAME.Z"
            ));
            continue;
        }
        parsed.push(InterfaceSysctl {
            family: names[1].to_string(),
            group: names[2].to_string(),
            knob: names[4].to_string(),
            value: value.to_string(),
        });
    }
    match late {
        Some(message) => Err(message),
        None => Ok(parsed),
    }
}

/// Docker's `opts.ParseLink`: `name` or `name:alias`.
fn check_link(link: &str) -> std::result::Result<(), String> {
    if link.is_empty() {
        return Err("empty string specified for links".to_string());
    }
    if link.split(':').count() > 2 {
        return Err(format!("bad format for links: {link}"));
    }
    Ok(())
}

/// The static address if given and free, else the lowest free one.
fn pick_address(
    network: &Network,
    cfg: Option<&NetworkConfig>,
    wanted: Option<IpAddr>,
    used: &BTreeSet<IpAddr>,
    family: &str,
) -> Result<Option<IpAddr>> {
    let Some(cfg) = cfg else {
        return Ok(None);
    };
    if let Some(ip) = wanted {
        return match ipam::check_static(cfg, ip, used) {
            Ok(()) => Ok(Some(ip)),
            Err(StaticError::NotInSubnet(_)) => Err(Error::InvalidParameter(format!(
                "invalid endpoint settings:\nno configured subnet contains IP address {ip}"
            ))),
            Err(e) => Err(Error::Forbidden(e.to_string())),
        };
    }
    match ipam::first_free(cfg, used) {
        Some(ip) => Ok(Some(ip)),
        // Docker answers 500; the network being full is no server fault, so 400 with its text.
        None => Err(Error::InvalidParameter(format!(
            "no available {family} addresses on this network's address pools: {} ({})",
            network.name, network.id
        ))),
    }
}

/// Docker's rule: the endpoint with the highest GwPriority provides the default gateway; ties
/// go to the network whose name sorts first. Internal networks provide none.
fn provides_gateway(new: &Network, priority: i64, others: &[(i64, Network)]) -> bool {
    if new.internal {
        return false;
    }
    others
        .iter()
        .filter(|(_, n)| !n.internal && !n.ipam.is_empty())
        .all(|(p, n)| priority > *p || (priority == *p && new.name < n.name))
}

/// A new endpoint's record: its addresses and MAC as picked, the rest as asked.
fn new_endpoint(
    network: &Network,
    container: &Container,
    wanted: &Wanted,
    mac: [u8; 6],
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
) -> Endpoint {
    Endpoint {
        id: model::new_id(),
        network_id: network.id.clone(),
        container_id: container.id.clone(),
        host_ifname: String::new(),
        ifname: String::new(),
        mac: model::format_mac(&mac),
        ipv4,
        ipv6,
        aliases: wanted.aliases.clone(),
        gw_priority: wanted.gw_priority,
        requested_ipv4: wanted.ipv4.filter(|_| ipv4.is_some()),
        requested_ipv6: wanted.ipv6.filter(|_| ipv6.is_some()),
        created_nanos: model::now_nanos(),
        link_local_ips: wanted.link_local.clone(),
        links: wanted.links.clone(),
        driver_opts: wanted.driver_opts.clone(),
    }
}

/// The default routes an endpoint of `n` gives the container when it provides them.
fn gateways_of(n: &Network) -> Gateways {
    Gateways {
        v4: gateway_v4(n),
        v6: gateway_v6(n),
    }
}

/// The network's IPv4 gateway, if it has one.
fn gateway_v4(n: &Network) -> Option<Ipv4Addr> {
    match n.ipv4()?.gateway {
        IpAddr::V4(g) => Some(g),
        IpAddr::V6(_) => None,
    }
}

/// The network's IPv6 gateway, if it has one.
fn gateway_v6(n: &Network) -> Option<Ipv6Addr> {
    match n.ipv6()?.gateway {
        IpAddr::V6(g) => Some(g),
        IpAddr::V4(_) => None,
    }
}
