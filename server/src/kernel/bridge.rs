//! Bridges: a network's virtual switch, made, checked against its spec and adopted. Built from
//! the link and address primitives in `link` and `address`.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::Instant,
};

use futures::TryStreamExt;
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec,
    packet_route::{
        AddressFamily,
        link::{LinkFlags, LinkMessage},
    },
};
use tracing::{debug, warn};

use super::{
    Kernel, KernelError,
    address::{add_address, prefix_of, validate_prefix},
    error::netlink_errno,
    link::{
        delete_link_by_name, get_link, link_info, link_mtu, link_name, set_link, validate_link_name,
    },
    sysctl::set_ipv6_sysctl,
    task::{elapsed_us, run_detached},
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

impl Kernel {
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

async fn create_bridge(handle: &Handle, spec: &BridgeSpec) -> Result<u32, KernelError> {
    let started = Instant::now();
    // A MAC set at creation is "user-set" to the bridge code, so it stays put as ports come
    // and go (otherwise it follows the lowest port MAC and neighbours lose it for minutes).
    let mut bridge = LinkMessageBuilder::<LinkBridge>::new(&spec.name)
        .address(crate::model::random_mac().to_vec());
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
