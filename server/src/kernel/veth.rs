//! Attaching a container: one veth pair per endpoint, host end on the bridge, container end
//! born directly inside the container's namespace.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::RawFd,
    sync::Arc,
    time::Instant,
};

use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth,
    packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage},
};
use tracing::{debug, warn};

use super::{
    Kernel, KernelError,
    address::{Gateways, validate_prefix},
    inside::{LateAddresses, Ready, configure_inside, create_inside},
    link::{delete_link_by_name, set_link, validate_link_name},
    netns::{InNetns, Netns, run_in_netns},
    sysctl::{InterfaceSysctl, Ipv6Conf},
    task::{elapsed_us, run_detached},
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
    /// `ready` says go, and addresses still being decided are awaited with the host end up (see
    /// [`Ready`]). Called off, it answers `CalledOff` and leaves nothing. This takes the thread's
    /// start-up (and the building of the pair) off a connect's critical path.
    pub async fn attach_when(
        &self,
        ns: &Netns,
        a: &Attachment,
        ready: impl Into<Ready>,
    ) -> Result<(String, u32), KernelError> {
        let ready = ready.into();
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
                format!(
                    "{} is not a unicast address",
                    crate::model::format_mac(&self.mac)
                ),
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
    ready: Ready,
) -> Result<(String, u32), KernelError> {
    let started = Instant::now();
    let name = create_pair(&host.handle, inner, a, ready.go).await?;
    let created_us = elapsed_us(started);
    match configure_pair(host, inner, a, &name, ready.late).await {
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

/// Creates the pair; returns the container-side name. Nothing to roll back on error: the
/// kernel creates both ends or neither.
async fn create_pair(
    host: &Handle,
    inner: &InNetns,
    a: &Attachment,
    ready: tokio::sync::oneshot::Receiver<bool>,
) -> Result<String, KernelError> {
    let ns_fd = inner.ns_fd;
    create_inside(
        host,
        inner,
        a.container_name.as_deref(),
        Some(&a.host_name),
        ready,
        |name| veth_message(a, name, ns_fd),
    )
    .await
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
/// of its own), then alias and up. Then, once any late addresses are in, the container end,
/// whose gratuitous ARP on up must find the host end up to get anywhere.
async fn configure_pair(
    host: &Host,
    inner: &InNetns,
    a: &Attachment,
    name: &str,
    late: Option<LateAddresses>,
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
    let gateways = Gateways {
        v4: a.gateway_v4,
        v6: a.gateway_v6,
    };
    configure_inside(
        &inner.handle,
        name,
        &a.addresses,
        late,
        &a.sysctls,
        gateways,
        None,
    )
    .await
}

impl Kernel {
    /// A veth pair with both ends in the daemon's namespace, up, without IPv6, both marked
    /// with `alias`: a link that has carrier yet leads nowhere. A macvlan parent for a network
    /// that must stay isolated (an empty bridge has no carrier, and its macvlans would pass
    /// nothing). Deleting either end deletes both. Returns `name`'s ifindex.
    pub async fn create_isolated_pair(
        &self,
        name: &str,
        peer: &str,
        alias: &str,
    ) -> Result<u32, KernelError> {
        validate_link_name("link name", name)?;
        validate_link_name("link name", peer)?;
        let handle = self.handle.clone();
        let ipv6_conf = self.ipv6_conf.clone();
        let (name, peer, alias) = (name.to_owned(), peer.to_owned(), alias.to_owned());
        run_detached("create isolated pair", async move {
            let msg = LinkVeth::new(&name, &peer).build();
            super::link::create_link(&handle, msg, "create veth pair", &name).await?;
            let configured = async {
                if let Some(conf) = &ipv6_conf {
                    conf.disable(&name)?;
                    conf.disable(&peer)?;
                }
                set_link(
                    &handle,
                    LinkUnspec::new_with_name(&peer)
                        .alias(alias.clone())
                        .up()
                        .build(),
                    "set link alias and up",
                    &peer,
                )
                .await?;
                set_link(
                    &handle,
                    LinkUnspec::new_with_name(&name)
                        .alias(alias.clone())
                        .up()
                        .build(),
                    "set link alias and up",
                    &name,
                )
                .await?;
                super::link::index_of(&handle, &name).await
            };
            match configured.await {
                Ok(index) => Ok(index),
                Err(e) => {
                    let _ = delete_link_by_name(&handle, &name).await;
                    Err(e)
                }
            }
        })
        .await
    }
}
