//! The daemon's own namespace: bridges, the link list, and the prefixes a new subnet must avoid.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use futures::TryStreamExt;
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec,
    packet_route::{
        AddressFamily,
        address::{AddressAttribute, AddressFlags, AddressMessage},
        link::{LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage},
        route::{RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType},
    },
};
use tracing::{debug, warn};

use super::{
    KernelError,
    error::netlink_errno,
    prefixes::HostPrefixes,
    sysctl::{Ipv6Conf, set_ipv6_sysctl},
};

/// What a network's bridge must look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    /// `None` leaves the kernel default (1500).
    pub mtu: Option<u32>,
    /// Written to IFLA_IFALIAS: marks the bridge as ours, e.g. "netbridge:<network id>".
    pub alias: String,
    /// Gateway addresses with their prefix length, IPv4 and IPv6.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// What [`Kernel::ensure_bridges`] found for one bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// It was there (and was corrected where it differed).
    Existed,
    /// It was missing and has been made.
    Created,
}

/// One link as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// "bridge", "veth", "dummy"...; `None` for physical devices and loopback.
    pub kind: Option<String>,
    pub alias: Option<String>,
    /// Index of the bridge (or other master) the link is enslaved to.
    pub master: Option<u32>,
}

/// The kernel as seen from the namespace the daemon runs in.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub(crate) handle: Handle,
    /// The kernel runs one dump at a time per netlink socket (a second gets EBUSY), and this
    /// socket is shared by every request: dumps on it take turns.
    dumps: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// For turning IPv6 off on host-side links from any thread; `None` without IPv6.
    pub(crate) ipv6_conf: Option<std::sync::Arc<Ipv6Conf>>,
    /// The host's IPv4 prefixes, kept current; `None` if subscribing failed (then every
    /// create dumps).
    prefixes: Option<std::sync::Arc<HostPrefixes>>,
}

impl Kernel {
    /// Opens a netlink connection in the current namespace and spawns its connection future
    /// on the current tokio runtime.
    pub fn connect() -> Result<Kernel, KernelError> {
        Ok(Kernel {
            handle: connect_here("connect to netlink")?,
            dumps: Default::default(),
            ipv6_conf: Ipv6Conf::open_here().map(std::sync::Arc::new),
            prefixes: match HostPrefixes::watch() {
                Ok(p) => Some(std::sync::Arc::new(p)),
                Err(e) => {
                    warn!(error = %e, "cannot watch routes; each create will dump them");
                    None
                }
            },
        })
    }

    /// Creates a bridge: name, MTU, alias, addresses, then up; `Exists` if the name is taken.
    /// Any failure after creation deletes the bridge again. Runs as its own task, so a caller
    /// that gives up halfway cannot leave a half-made bridge. Returns the ifindex.
    pub async fn create_bridge(&self, spec: &BridgeSpec) -> Result<u32, KernelError> {
        spec.validate()?;
        let handle = self.handle.clone();
        let spec = spec.clone();
        run_detached("create bridge", async move {
            create_bridge(&handle, &spec).await
        })
        .await
    }

    /// Makes an existing or missing bridge match `spec`: creates it if absent; if present adds
    /// missing addresses, sets MTU and alias and brings it up (extra addresses are kept).
    /// Used at start-up and to adopt a pre-existing link.
    pub async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<u32, KernelError> {
        spec.validate()?;
        let handle = self.handle.clone();
        let spec = spec.clone();
        let dumps = self.dumps.clone();
        run_detached("ensure bridge", async move {
            let _turn = dumps.lock().await;
            ensure_bridge(&handle, &spec).await
        })
        .await
    }

    /// [`Kernel::ensure_bridge`] for many bridges at once (start-up, reconcile): one link dump
    /// and one address dump instead of a dump per bridge, which at 1,000 networks is the
    /// difference between milliseconds and seconds. One result per spec, in order.
    pub async fn ensure_bridges(
        &self,
        specs: Vec<BridgeSpec>,
    ) -> Result<Vec<Result<Ensured, KernelError>>, KernelError> {
        let handle = self.handle.clone();
        let dumps = self.dumps.clone();
        run_detached("ensure bridges", async move {
            let _turn = dumps.lock().await;
            ensure_bridges(&handle, &specs).await
        })
        .await
    }

    /// Deletes a link by name; `Ok(false)` if it did not exist. A veth takes its peer with it.
    pub async fn delete_link(&self, name: &str) -> Result<bool, KernelError> {
        validate_link_name("link name", name)?;
        delete_link_by_name(&self.handle, name).await
    }

    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, KernelError> {
        validate_link_name("link name", name)?;
        Ok(get_link(&self.handle, name)
            .await?
            .map(|msg| msg.header.index))
    }

    /// One link by name, with its kind, alias and master; no dump.
    pub async fn link(&self, name: &str) -> Result<Option<LinkInfo>, KernelError> {
        validate_link_name("link name", name)?;
        Ok(get_link(&self.handle, name).await?.map(|m| link_info(&m)))
    }

    /// Every link with its name, kind, alias and master; one dump.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, KernelError> {
        let _turn = self.dumps.lock().await;
        // Each message is boiled down as it arrives: a full link message (statistics, per-family
        // settings) is kilobytes, and thousands of them held at once made start-up's peak.
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(|m| link_info(&m))
            .try_collect()
            .await
            .map_err(|e| KernelError::netlink("dump links", "all", e))
    }

    /// Prefixes a new auto subnet must avoid: IPv4 scope-link routes of the main table
    /// (connected subnets, including a VPN's) and the prefix of every IPv4 address on the
    /// host. Returned as (network address, prefix length), sorted and without duplicates;
    /// default routes are left out, they would reserve everything.
    pub async fn reserved_prefixes(&self) -> Result<Vec<(IpAddr, u8)>, KernelError> {
        if let Some(prefixes) = &self.prefixes {
            match prefixes.current().await {
                Ok(current) => return Ok(current),
                Err(e) => warn!(error = %e, "route watch failed; dumping instead"),
            }
        }
        self.dump_reserved_prefixes().await
    }

    /// [`Kernel::reserved_prefixes`] the slow way: a dump of every IPv4 route and address.
    pub async fn dump_reserved_prefixes(&self) -> Result<Vec<(IpAddr, u8)>, KernelError> {
        // One dump after the other: the kernel refuses a second dump on a busy socket.
        let _turn = self.dumps.lock().await;
        super::prefixes::dump_prefixes(&self.handle).await
    }
}

impl BridgeSpec {
    fn validate(&self) -> Result<(), KernelError> {
        validate_link_name("bridge name", &self.name)?;
        for (addr, len) in &self.addresses {
            validate_prefix(*addr, *len)?;
        }
        Ok(())
    }

    fn has_ipv6(&self) -> bool {
        self.addresses.iter().any(|(a, _)| a.is_ipv6())
    }
}

/// Opens a netlink socket in the calling thread's namespace, its connection driven by the
/// current tokio runtime (without that every request would hang).
pub(crate) fn connect_here(op: &'static str) -> Result<Handle, KernelError> {
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| KernelError::NoRuntime { op })?;
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| KernelError::os(op, "NETLINK_ROUTE socket", e))?;
    runtime.spawn(connection);
    Ok(handle)
}

/// Runs a multi-step change as its own task: if the caller is dropped (an HTTP client hung
/// up), the change still finishes or rolls back instead of stopping halfway.
async fn run_detached<T: Send + 'static>(
    op: &'static str,
    work: impl Future<Output = Result<T, KernelError>> + Send + 'static,
) -> Result<T, KernelError> {
    tokio::spawn(work)
        .await
        .map_err(|_| KernelError::Worker { op })?
}

async fn create_bridge(handle: &Handle, spec: &BridgeSpec) -> Result<u32, KernelError> {
    let started = Instant::now();
    // A MAC set at creation is "user-set" to the bridge code, so it stays put as ports come
    // and go (otherwise it follows the lowest port MAC and neighbours lose it for minutes).
    let mut bridge =
        LinkMessageBuilder::<LinkBridge>::new(&spec.name).address(random_mac().to_vec());
    if let Some(mtu) = spec.mtu {
        bridge = bridge.mtu(mtu);
    }
    handle
        .link()
        .add(bridge.build())
        .execute()
        .await
        .map_err(|e| match netlink_errno(&e) {
            Some(libc::EEXIST) => KernelError::Exists {
                what: "link",
                name: spec.name.clone(),
            },
            _ => KernelError::netlink("create bridge", &spec.name, e),
        })?;

    match configure_new_bridge(handle, spec).await {
        Ok(index) => {
            debug!(bridge = %spec.name, index, elapsed_us = elapsed_us(started), "bridge created");
            Ok(index)
        }
        Err(e) => {
            warn!(bridge = %spec.name, error = %e, "bridge set-up failed, deleting it again");
            if let Err(rollback) = delete_link_by_name(handle, &spec.name).await {
                warn!(bridge = %spec.name, error = %rollback, "could not delete half-made bridge");
            }
            Err(e)
        }
    }
}

async fn configure_new_bridge(handle: &Handle, spec: &BridgeSpec) -> Result<u32, KernelError> {
    let index = get_link(handle, &spec.name)
        .await?
        .ok_or_else(|| KernelError::NotFound {
            what: "link",
            name: spec.name.clone(),
        })?
        .header
        .index;
    for (addr, len) in &spec.addresses {
        add_address(handle, index, &spec.name, *addr, *len).await?;
    }
    if spec.has_ipv6() {
        // The gateway must not configure itself from router advertisements on its own subnet.
        set_ipv6_sysctl(&format!("net/ipv6/conf/{}/accept_ra", spec.name), "0")?;
    } else {
        // An IPv4-only network's bridge needs no IPv6 of its own (containers still reach each
        // other over link-local IPv6 through it): no address, no routes, no walk of the IPv6
        // routing table when it comes up.
        set_ipv6_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", spec.name), "1")?;
    }
    // The kernel ignores IFLA_IFALIAS in RTM_NEWLINK, so the mark comes with the final up.
    set_link(
        handle,
        LinkUnspec::new_with_index(index)
            .alias(spec.alias.clone())
            .up()
            .build(),
        "set bridge alias and up",
        &spec.name,
    )
    .await?;
    Ok(index)
}

async fn ensure_bridge(handle: &Handle, spec: &BridgeSpec) -> Result<u32, KernelError> {
    let existing = match get_link(handle, &spec.name).await? {
        Some(msg) => msg,
        None => match create_bridge(handle, spec).await {
            // Someone made it between our look-up and create: adopt theirs like any other.
            Err(KernelError::Exists { .. }) => {
                get_link(handle, &spec.name)
                    .await?
                    .ok_or_else(|| KernelError::NotFound {
                        what: "link",
                        name: spec.name.clone(),
                    })?
            }
            created => return created,
        },
    };
    adopt_bridge(handle, spec, &existing).await
}

async fn adopt_bridge(
    handle: &Handle,
    spec: &BridgeSpec,
    existing: &LinkMessage,
) -> Result<u32, KernelError> {
    let mut request = handle
        .address()
        .get()
        .set_link_index_filter(existing.header.index);
    if !spec.has_ipv6() {
        request.message_mut().header.family = AddressFamily::Inet;
    }
    let present: Vec<(IpAddr, u8)> = request
        .execute()
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| KernelError::netlink("dump bridge addresses", &spec.name, e))?
        .iter()
        .filter_map(prefix_of)
        .collect();
    adopt_bridge_with(handle, spec, existing, &present).await
}

/// Brings an existing bridge in line with `spec`, given the addresses it has: adds the missing
/// ones, sets alias, MTU and up only where they differ. An adopted bridge that is already
/// right costs no request at all.
async fn adopt_bridge_with(
    handle: &Handle,
    spec: &BridgeSpec,
    existing: &LinkMessage,
    present: &[(IpAddr, u8)],
) -> Result<u32, KernelError> {
    let info = link_info(existing);
    if info.kind.as_deref() != Some("bridge") {
        return Err(KernelError::NotBridge {
            name: spec.name.clone(),
            kind: info.kind,
        });
    }
    let index = info.index;
    for (addr, len) in spec.addresses.iter().filter(|a| !present.contains(a)) {
        add_address(handle, index, &spec.name, *addr, *len).await?;
    }
    if spec.has_ipv6() {
        set_ipv6_sysctl(&format!("net/ipv6/conf/{}/accept_ra", spec.name), "0")?;
    }

    let mut change = LinkUnspec::new_with_index(index);
    let mut changed = false;
    if !existing.header.flags.contains(LinkFlags::Up) {
        change = change.up();
        changed = true;
    }
    if info.alias.as_deref() != Some(spec.alias.as_str()) {
        change = change.alias(spec.alias.clone());
        changed = true;
    }
    if let Some(mtu) = spec.mtu.filter(|m| link_mtu(existing) != Some(*m)) {
        change = change.mtu(mtu);
        changed = true;
    }
    if changed {
        set_link(handle, change.build(), "update bridge", &spec.name).await?;
    }
    debug!(bridge = %spec.name, index, changed, "adopted existing bridge");
    Ok(index)
}

/// [`Kernel::ensure_bridges`] on the connection's runtime: one link dump and one address dump
/// (per family needed) for all bridges, then per bridge only the requests that change something.
async fn ensure_bridges(
    handle: &Handle,
    specs: &[BridgeSpec],
) -> Result<Vec<Result<Ensured, KernelError>>, KernelError> {
    // Only the links named by a spec are kept from the dump (see `Kernel::links`).
    let wanted: HashSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let by_name: HashMap<String, LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_filter_map(|m| {
            let keep = link_name(&m).filter(|n| wanted.contains(n.as_str()));
            std::future::ready(Ok(keep.map(|n| (n, m))))
        })
        .try_collect()
        .await
        .map_err(|e| KernelError::netlink("dump links", "all", e))?;
    let bridges: HashSet<u32> = by_name.values().map(|m| m.header.index).collect();
    let mut addresses: HashMap<u32, Vec<(IpAddr, u8)>> = HashMap::new();
    let families = [
        (AddressFamily::Inet, true),
        (AddressFamily::Inet6, specs.iter().any(BridgeSpec::has_ipv6)),
    ];
    for (family, _) in families.iter().filter(|(_, wanted)| *wanted) {
        let mut request = handle.address().get();
        request.message_mut().header.family = *family;
        let dumped = request
            .execute()
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| KernelError::netlink("dump addresses", "all", e))?;
        for msg in dumped.iter().filter(|m| bridges.contains(&m.header.index)) {
            if let Some(prefix) = prefix_of(msg) {
                addresses.entry(msg.header.index).or_default().push(prefix);
            }
        }
    }
    let mut results = Vec::with_capacity(specs.len());
    for spec in specs {
        let result = match spec.validate() {
            Err(e) => Err(e),
            Ok(()) => match by_name.get(&spec.name) {
                Some(existing) => {
                    let present = addresses
                        .get(&existing.header.index)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    adopt_bridge_with(handle, spec, existing, present)
                        .await
                        .map(|_| Ensured::Existed)
                }
                None => ensure_bridge(handle, spec).await.map(|_| Ensured::Created),
            },
        };
        results.push(result);
    }
    Ok(results)
}

/// One link by name; `None` if there is none.
pub(crate) async fn get_link(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, KernelError> {
    let mut replies = handle.link().get().match_name(name).execute();
    match replies.try_next().await {
        Ok(msg) => Ok(msg),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(KernelError::netlink("look up link", name, e)),
    }
}

pub(crate) async fn dump_links(handle: &Handle) -> Result<Vec<LinkMessage>, KernelError> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| KernelError::netlink("dump links", "all", e))
}

pub(crate) async fn delete_link_by_name(handle: &Handle, name: &str) -> Result<bool, KernelError> {
    let started = Instant::now();
    match handle
        .link()
        .del_with_message(LinkUnspec::new_with_name(name).build())
        .execute()
        .await
    {
        Ok(()) => {
            debug!(
                link = name,
                elapsed_us = elapsed_us(started),
                "link deleted"
            );
            Ok(true)
        }
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(KernelError::netlink("delete link", name, e)),
    }
}

pub(crate) async fn set_link(
    handle: &Handle,
    change: LinkMessage,
    op: &'static str,
    name: &str,
) -> Result<(), KernelError> {
    handle
        .link()
        .set(change)
        .execute()
        .await
        .map_err(|e| KernelError::netlink(op, name, e))
}

/// Adds one address; IPv6 ones skip duplicate address detection, since we hand them out
/// ourselves and a tentative address would make the first packets fail.
pub(crate) async fn add_address(
    handle: &Handle,
    index: u32,
    link: &str,
    addr: IpAddr,
    prefix_len: u8,
) -> Result<(), KernelError> {
    let mut request = handle.address().add(index, addr, prefix_len);
    if addr.is_ipv6() {
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request
        .execute()
        .await
        .map_err(|e| KernelError::netlink("add address", format!("{link} {addr}/{prefix_len}"), e))
}

pub(crate) fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        alias: None,
        master: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::IfAlias(alias) if !alias.is_empty() => info.alias = Some(alias.clone()),
            LinkAttribute::Controller(master) => info.master = Some(*master),
            LinkAttribute::LinkInfo(infos) => {
                info.kind = infos.iter().find_map(|i| match i {
                    NlLinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    info
}

pub(crate) fn link_mtu(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    })
}

/// The interface's own address of an address message (IFA_LOCAL; IFA_ADDRESS is the peer on
/// point-to-point links).
/// An address with its prefix length.
fn prefix_of(msg: &AddressMessage) -> Option<(IpAddr, u8)> {
    address_of(msg).map(|ip| (ip, msg.header.prefix_len))
}

fn link_name(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

pub(crate) fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

pub(crate) fn is_connected_v4(route: &RouteMessage) -> bool {
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    route.header.address_family == AddressFamily::Inet
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
        && route.header.scope == RouteScope::Link
        && route.header.kind == RouteType::Unicast
}

/// The network address of `ip/len` (host bits cleared).
pub(crate) fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// A random locally administered unicast MAC.
fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// The kernel's rules for interface names (dev_valid_name), checked up front so the error
/// names the field instead of a bare EINVAL.
pub(crate) fn validate_link_name(what: &'static str, name: &str) -> Result<(), KernelError> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c == '\0');
    if ok {
        Ok(())
    } else {
        Err(KernelError::invalid(
            what,
            format!("{name:?} is not a valid interface name"),
        ))
    }
}

pub(crate) fn validate_prefix(addr: IpAddr, len: u8) -> Result<(), KernelError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(KernelError::invalid(
            "address",
            format!("{addr}/{len}: prefix longer than {max}"),
        ));
    }
    Ok(())
}

pub(crate) fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}
