//! The container's side of any attachment, whatever the driver: an interface born directly
//! inside the container's namespace (a veth peer, a macvlan), named `eth<N>`, then given its
//! addresses, brought up and given the default route. Runs on the namespace's thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::{
    Handle, LinkUnspec,
    packet_route::link::{LinkFlags, LinkMessage},
};
use tracing::debug;

use super::{
    Kernel, KernelError, LinkInfo,
    address::{Gateways, add_address, add_default_routes, validate_prefix},
    link::{dump_links, get_link, index_of, link_info, set_link},
    netns::{InNetns, LOOPBACK_INDEX, Netns, run_in_netns},
    sysctl::{InterfaceSysctl, apply_interface_sysctls, set_ipv6_sysctl, set_sysctl},
};

/// How often a freshly picked "eth<N>" may turn out taken (a concurrent attach into the same
/// namespace) before giving up.
const NAME_ATTEMPTS: usize = 4;

/// When an attach prepared ahead may act. Nothing is changed until `go` says true (the caller's
/// intent is on record). Addresses decided meanwhile (a cluster's claim) come through `late`,
/// and go on before the container end goes up. A false `go`, or a dropped sender, calls the
/// attach off; what it made is deleted.
#[derive(Debug)]
pub struct Ready {
    pub go: tokio::sync::oneshot::Receiver<bool>,
    pub late: Option<LateAddresses>,
}

/// Addresses (with their prefix lengths) that come after an attach has begun.
pub type LateAddresses = tokio::sync::oneshot::Receiver<Vec<(IpAddr, u8)>>;

impl From<tokio::sync::oneshot::Receiver<bool>> for Ready {
    fn from(go: tokio::sync::oneshot::Receiver<bool>) -> Self {
        Ready { go, late: None }
    }
}

/// The addresses to configure: the late ones once they come, then the attachment's own.
async fn with_late(
    late: Option<LateAddresses>,
    own: &[(IpAddr, u8)],
) -> Result<Vec<(IpAddr, u8)>, KernelError> {
    let Some(late) = late else {
        return Ok(own.to_vec());
    };
    let mut addresses = late
        .await
        .map_err(|_| KernelError::CalledOff { op: "attach" })?;
    for (addr, len) in &addresses {
        validate_prefix(*addr, *len)?;
    }
    addresses.extend_from_slice(own);
    Ok(addresses)
}

/// Creates a link whose container end is born inside `inner`'s namespace, sent from `host`
/// (the daemon's namespace, where its parent or peer lives): `lo` up first, then the name
/// (`wanted`, or the lowest free eth<N>, picked again if a concurrent attach took it).
/// `message` builds the RTM_NEWLINK for a given container-side name; `host_name`, if the
/// link has a host end, tells a clash of that name from a clash inside. Nothing changes until
/// `ready` says true. Returns the container-side name; nothing to roll back on error.
pub(crate) async fn create_inside(
    host: &Handle,
    inner: &InNetns,
    wanted: Option<&str>,
    host_name: Option<&str>,
    ready: tokio::sync::oneshot::Receiver<bool>,
    message: impl Fn(&str) -> LinkMessage,
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
        let name = match wanted {
            Some(name) => name.to_owned(),
            None => lowest_free_eth(links.iter().map(link_info)),
        };
        match super::link::create_link(host, message(&name), "create link", &name).await {
            Ok(()) => return Ok(name),
            Err(KernelError::Exists { .. }) => {
                if let Some(host_name) = host_name
                    && get_link(host, host_name).await?.is_some()
                {
                    return Err(KernelError::Exists {
                        what: "link",
                        name: host_name.to_owned(),
                    });
                }
                if wanted.is_some() || attempt >= NAME_ATTEMPTS {
                    return Err(KernelError::Exists {
                        what: "link in namespace",
                        name,
                    });
                }
                debug!(container = %name, "interface name taken meanwhile, picking again");
                attempt += 1;
                links = dump_links(&inner.handle).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The container end, from this thread, which is inside the namespace (the per-interface
/// sysctls belong to the namespace of the thread that writes them): once any `late`
/// addresses are in, arp_notify, no DAD, addresses, the client's sysctls, up (with its mark,
/// if the mark lives inside), default route(s). Returns its ifindex.
pub(crate) async fn configure_inside(
    handle: &Handle,
    name: &str,
    addresses: &[(IpAddr, u8)],
    late: Option<LateAddresses>,
    sysctls: &[InterfaceSysctl],
    gateways: Gateways,
    alias: Option<&str>,
) -> Result<u32, KernelError> {
    let addresses = with_late(late, addresses).await?;
    let index = index_of(handle, name).await?;
    // Before up: the gratuitous ARP on up is what tells neighbours the (new) MAC, and DAD
    // would hold the link-local address tentative.
    set_sysctl(&format!("net/ipv4/conf/{name}/arp_notify"), "1")?;
    set_ipv6_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), "0")?;
    for (addr, len) in &addresses {
        add_address(handle, index, name, *addr, *len).await?;
    }
    // The client's, after the addresses and before up: Docker's order.
    apply_interface_sysctls(name, sysctls)?;
    let mut up = LinkUnspec::new_with_index(index).up();
    if let Some(alias) = alias {
        up = up.alias(alias);
    }
    set_link(handle, up.build(), "set container interface up", name).await?;
    add_default_routes(handle, index, name, gateways, false).await?;
    Ok(index)
}

/// The lowest "eth<N>" not taken.
fn lowest_free_eth(links: impl Iterator<Item = LinkInfo>) -> String {
    let taken: std::collections::HashSet<String> = links.map(|l| l.name).collect();
    (0u32..)
        .map(|n| format!("eth{n}"))
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| "eth0".to_owned())
}

impl Kernel {
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
        let gateways = Gateways {
            v4: gateway_v4,
            v6: gateway_v6,
        };
        run_in_netns(ns, "set default route", move |inner| async move {
            let index = get_link(&inner.handle, &ifname)
                .await?
                .ok_or_else(|| KernelError::NotFound {
                    what: "link in namespace",
                    name: ifname.clone(),
                })?
                .header
                .index;
            add_default_routes(&inner.handle, index, &ifname, gateways, true).await
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

    /// Deletes the link inside `ns` whose alias is `alias` (a driver whose endpoint has no
    /// host end, like macvlan, finds its interface by its mark). `Ok(false)` if none.
    pub async fn delete_marked_in(&self, ns: &Netns, alias: &str) -> Result<bool, KernelError> {
        let alias = alias.to_owned();
        run_in_netns(ns, "delete link in namespace", move |inner| async move {
            let links = dump_links(&inner.handle).await?;
            let marked = links
                .iter()
                .map(link_info)
                .find(|l| l.alias.as_deref() == Some(alias.as_str()));
            match marked {
                Some(l) => super::link::delete_link_by_name(&inner.handle, &l.name).await,
                None => Ok(false),
            }
        })
        .await
    }
}
