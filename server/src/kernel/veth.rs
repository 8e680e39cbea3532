//! Attaching a container: one veth pair per endpoint, host end on the bridge, container end
//! born directly inside the container's namespace.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::RawFd,
    sync::Arc,
    time::Instant,
};

use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
    packet_route::link::{InfoData, InfoKind, InfoVeth, LinkFlags, LinkMessage},
};
use tracing::{debug, warn};

use super::{
    Kernel, KernelError, LinkInfo,
    error::netlink_errno,
    link::{
        add_address, delete_link_by_name, dump_links, elapsed_us, get_link, link_info, set_link,
        validate_link_name, validate_prefix,
    },
    netns::{InNetns, LOOPBACK_INDEX, Netns, run_in_netns},
    sysctl::{InterfaceSysctl, Ipv6Conf, apply_interface_sysctls, set_ipv6_sysctl, set_sysctl},
};

/// What connecting one endpoint needs done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// "veth" + 7 hex, chosen by the caller.
    pub host_name: String,
    /// `None` picks the lowest free "eth<N>" in the namespace.
    pub container_name: Option<String>,
    pub bridge_index: u32,
    pub mtu: Option<u32>,
    pub mac: [u8; 6],
    /// Ownership mark on the host end, e.g. "netbridge:<endpoint id>".
    pub alias: String,
    /// The network's addresses, then any extra (link-local) ones.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Client-given sysctls of the container end, applied after its addresses, before up
    /// (Docker's order).
    pub sysctls: Vec<InterfaceSysctl>,
    /// A default route via it when `Some` (unless the namespace already has one).
    pub gateway_v4: Option<Ipv4Addr>,
    pub gateway_v6: Option<Ipv6Addr>,
}

impl Kernel {
    /// One attach, all of it on a dedicated thread inside `ns`: `lo` up and the name chosen
    /// (lowest free eth<N> if not given); the veth pair created in one request with its peer
    /// born inside `ns` (IFLA_NET_NS_FD, so nothing is moved between namespaces, which would
    /// cost an RCU wait) carrying MAC and MTU, the host end already on the bridge, sized and
    /// up; then the host end's alias, while inside: arp_notify=1, accept_dad=0, addresses,
    /// client sysctls, up, default route(s). Any failure deletes the host end, which takes the peer with it.
    /// Runs to the end (or to the rollback) even if the caller is dropped. Returns the
    /// container-side name and its ifindex inside `ns`.
    pub async fn attach(&self, ns: &Netns, a: &Attachment) -> Result<(String, u32), KernelError> {
        let (go, ready) = tokio::sync::oneshot::channel();
        let _ = go.send(true);
        self.attach_when(ns, a, ready).await
    }

    /// [`Kernel::attach`], where the namespace's thread starts and reads the namespace (which
    /// interface names are free) while the caller records its intent; nothing is changed until
    /// `ready` says true. With false, or if the sender is dropped, nothing is made and the
    /// answer is `CalledOff`. This takes the thread's start-up off a connect's critical path.
    pub async fn attach_when(
        &self,
        ns: &Netns,
        a: &Attachment,
        ready: tokio::sync::oneshot::Receiver<bool>,
    ) -> Result<(String, u32), KernelError> {
        a.validate()?;
        let host = Host {
            handle: self.handle.clone(),
            ipv6_conf: self.ipv6_conf.clone(),
        };
        let a = a.clone();
        run_in_netns(ns, "attach", move |inner| async move {
            attach_here(&host, &inner, &a, ready).await
        })
        .await
    }

    /// Removes an endpoint's veth by its host end name; `Ok(false)` if it is gone (e.g. the
    /// namespace vanished and took the pair with it).
    pub async fn detach(&self, host_name: &str) -> Result<bool, KernelError> {
        self.delete_link(host_name).await
    }

    /// Points the namespace's default route(s) at `ifname` via the given gateways, replacing
    /// whatever default route was there: used when a newly connected network outranks the one
    /// providing the gateway, or when that one is disconnected.
    pub async fn set_default_route(
        &self,
        ns: &Netns,
        ifname: &str,
        gateway_v4: Option<Ipv4Addr>,
        gateway_v6: Option<Ipv6Addr>,
    ) -> Result<(), KernelError> {
        let ifname = ifname.to_owned();
        run_in_netns(ns, "set default route", move |inner| async move {
            let index = get_link(&inner.handle, &ifname)
                .await?
                .ok_or_else(|| KernelError::NotFound {
                    what: "link in namespace",
                    name: ifname.clone(),
                })?
                .header
                .index;
            if let Some(gateway) = gateway_v4 {
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gateway)
                    .output_interface(index)
                    .build();
                replace_default_route(&inner.handle, route, &ifname, gateway.into()).await?;
            }
            if let Some(gateway) = gateway_v6 {
                let route = RouteMessageBuilder::<Ipv6Addr>::new()
                    .gateway(gateway)
                    .output_interface(index)
                    .build();
                replace_default_route(&inner.handle, route, &ifname, gateway.into()).await?;
            }
            Ok(())
        })
        .await
    }

    /// The links inside `ns` (for "eth<N>" selection and checks).
    pub async fn links_in(&self, ns: &Netns) -> Result<Vec<LinkInfo>, KernelError> {
        run_in_netns(ns, "list links in namespace", |inner| async move {
            Ok(dump_links(&inner.handle)
                .await?
                .iter()
                .map(link_info)
                .collect())
        })
        .await
    }
}

impl Attachment {
    fn validate(&self) -> Result<(), KernelError> {
        validate_link_name("host interface name", &self.host_name)?;
        if let Some(name) = &self.container_name {
            validate_link_name("container interface name", name)?;
        }
        if self.mac[0] & 1 != 0 || self.mac == [0; 6] {
            return Err(KernelError::invalid(
                "MAC address",
                format!("{} is not a unicast address", format_mac(&self.mac)),
            ));
        }
        for (addr, len) in &self.addresses {
            validate_prefix(*addr, *len)?;
        }
        Ok(())
    }
}

/// The daemon's side of an attach, carried onto the namespace's thread.
struct Host {
    handle: Handle,
    ipv6_conf: Option<Arc<Ipv6Conf>>,
}

/// The whole attach, on the namespace's thread: `host` talks to the daemon's namespace,
/// `inner` to the container's.
async fn attach_here(
    host: &Host,
    inner: &InNetns,
    a: &Attachment,
    ready: tokio::sync::oneshot::Receiver<bool>,
) -> Result<(String, u32), KernelError> {
    let started = Instant::now();
    let name = create_pair(&host.handle, inner, a, ready).await?;
    let created_us = elapsed_us(started);
    match configure_pair(host, inner, a, &name).await {
        Ok(index) => {
            debug!(
                host = %a.host_name, container = %name, index, created_us,
                elapsed_us = elapsed_us(started), "endpoint attached"
            );
            Ok((name, index))
        }
        Err(e) => {
            warn!(host = %a.host_name, error = %e, "attach failed, deleting the veth pair");
            if let Err(rollback) = delete_link_by_name(&host.handle, &a.host_name).await {
                warn!(host = %a.host_name, error = %rollback, "could not delete half-made veth pair");
            }
            Err(e)
        }
    }
}

/// How often a freshly picked "eth<N>" may turn out taken (a concurrent attach into the same
/// namespace) before giving up.
const NAME_ATTEMPTS: usize = 4;

/// Creates the pair; returns the container-side name. Nothing to roll back on error: the
/// kernel creates both ends or neither.
async fn create_pair(
    host: &Handle,
    inner: &InNetns,
    a: &Attachment,
    ready: tokio::sync::oneshot::Receiver<bool>,
) -> Result<String, KernelError> {
    let mut links = dump_links(&inner.handle).await?;
    if !ready.await.unwrap_or(false) {
        return Err(KernelError::CalledOff { op: "attach" });
    }
    let lo_down = links
        .iter()
        .any(|l| l.header.index == LOOPBACK_INDEX && !l.header.flags.contains(LinkFlags::Up));
    if lo_down {
        set_link(
            &inner.handle,
            LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build(),
            "set lo up",
            "lo",
        )
        .await?;
    }
    let mut attempt = 1;
    loop {
        let name = match &a.container_name {
            Some(name) => name.clone(),
            None => lowest_free_eth(links.iter().map(link_info)),
        };
        let created = host
            .link()
            .add(veth_message(a, &name, inner.ns_fd))
            .execute()
            .await;
        match created {
            Ok(()) => return Ok(name),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                if get_link(host, &a.host_name).await?.is_some() {
                    return Err(KernelError::Exists {
                        what: "link",
                        name: a.host_name.clone(),
                    });
                }
                if a.container_name.is_some() || attempt >= NAME_ATTEMPTS {
                    return Err(KernelError::Exists {
                        what: "link in namespace",
                        name,
                    });
                }
                debug!(container = %name, "interface name taken meanwhile, picking again");
                attempt += 1;
                links = dump_links(&inner.handle).await?;
            }
            Err(e) => {
                return Err(KernelError::netlink(
                    "create veth pair",
                    format!("{} / {}", a.host_name, name),
                    e,
                ));
            }
        }
    }
}

/// One RTM_NEWLINK for the pair: host end named, enslaved and sized; peer named, with its MAC
/// and MTU, created directly in the namespace. Both are left down until configured. (The alias
/// cannot ride along: the kernel ignores IFLA_IFALIAS when creating a link.)
fn veth_message(a: &Attachment, container_name: &str, ns_fd: RawFd) -> LinkMessage {
    let mut peer = LinkUnspec::new_with_name(container_name)
        .address(a.mac.to_vec())
        .setns_by_fd(ns_fd);
    let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(a.host_name.clone())
        .controller(a.bridge_index);
    if let Some(mtu) = a.mtu {
        peer = peer.mtu(mtu);
        host = host.mtu(mtu);
    }
    host.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build()
}

/// Everything after creation. The host end first: IPv6 off (a bridge port needs no address
/// of its own), then alias and up. Then the container end, whose gratuitous ARP on up must
/// find the host end up to get anywhere.
async fn configure_pair(
    host: &Host,
    inner: &InNetns,
    a: &Attachment,
    name: &str,
) -> Result<u32, KernelError> {
    if let Some(conf) = &host.ipv6_conf {
        conf.disable(&a.host_name)?;
    }
    set_link(
        &host.handle,
        LinkUnspec::new_with_name(&a.host_name)
            .alias(a.alias.clone())
            .up()
            .build(),
        "set host end alias and up",
        &a.host_name,
    )
    .await?;
    configure_container_end(&inner.handle, a, name).await
}

/// The container end, from this thread, which is inside the namespace (the per-interface
/// sysctls belong to the namespace of the thread that writes them).
async fn configure_container_end(
    handle: &Handle,
    a: &Attachment,
    name: &str,
) -> Result<u32, KernelError> {
    let index = get_link(handle, name)
        .await?
        .ok_or_else(|| KernelError::NotFound {
            what: "link in namespace",
            name: name.to_owned(),
        })?
        .header
        .index;
    // Before up: the gratuitous ARP on up is what tells neighbours the (new) MAC, and DAD
    // would hold the link-local address tentative.
    set_sysctl(&format!("net/ipv4/conf/{name}/arp_notify"), "1")?;
    set_ipv6_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), "0")?;
    for (addr, len) in &a.addresses {
        add_address(handle, index, name, *addr, *len).await?;
    }
    apply_interface_sysctls(name, &a.sysctls)?;
    set_link(
        handle,
        LinkUnspec::new_with_index(index).up().build(),
        "set container interface up",
        name,
    )
    .await?;
    if let Some(gateway) = a.gateway_v4 {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        add_default_route(handle, route, name, IpAddr::V4(gateway)).await?;
    }
    if let Some(gateway) = a.gateway_v6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        add_default_route(handle, route, name, IpAddr::V6(gateway)).await?;
    }
    Ok(index)
}

/// Sets the default route, replacing the one there.
async fn replace_default_route(
    handle: &Handle,
    route: rtnetlink::packet_route::route::RouteMessage,
    link: &str,
    gateway: IpAddr,
) -> Result<(), KernelError> {
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(|e| {
            KernelError::netlink("replace default route", format!("{link} via {gateway}"), e)
        })
}

/// Adds a default route unless the namespace has one already (EEXIST under NLM_F_EXCL):
/// the first network a container joins keeps the default route.
async fn add_default_route(
    handle: &Handle,
    route: rtnetlink::packet_route::route::RouteMessage,
    link: &str,
    gateway: IpAddr,
) -> Result<(), KernelError> {
    match handle.route().add(route).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
            debug!(link, %gateway, "namespace already has a default route, kept it");
            Ok(())
        }
        Err(e) => Err(KernelError::netlink(
            "add default route",
            format!("{link} via {gateway}"),
            e,
        )),
    }
}

/// The lowest "eth<N>" not taken.
fn lowest_free_eth(links: impl Iterator<Item = LinkInfo>) -> String {
    let taken: std::collections::HashSet<String> = links.map(|l| l.name).collect();
    (0u32..)
        .map(|n| format!("eth{n}"))
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| "eth0".to_owned())
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
