//! Link primitives in the daemon's own namespace: look up, dump, create a link of any kind
//! (optionally born in another namespace), change, delete; and the kernel handle itself.
//! Drivers combine these with `address` into bridges, veth pairs and macvlans.

use std::{net::IpAddr, time::Instant};

use futures::TryStreamExt;
use rtnetlink::{
    Handle, LinkUnspec,
    packet_route::link::{LinkAttribute, LinkInfo as NlLinkInfo, LinkMessage},
};
use tracing::{debug, warn};

use super::{
    KernelError, error::netlink_errno, prefixes::HostPrefixes, sysctl::Ipv6Conf, task::elapsed_us,
};

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
    pub(crate) dumps: std::sync::Arc<tokio::sync::Mutex<()>>,
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

    /// A link's MAC address, by name; `None` if there is no such link.
    pub async fn link_mac(&self, name: &str) -> Result<Option<[u8; 6]>, KernelError> {
        validate_link_name("link name", name)?;
        Ok(get_link(&self.handle, name).await?.and_then(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
        }))
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

/// Creates a link from a complete RTM_NEWLINK message (any kind; IFLA_NET_NS_FD in it makes
/// the link born in that namespace). `Exists` when the kernel says the name is taken.
pub(crate) async fn create_link(
    handle: &Handle,
    msg: LinkMessage,
    op: &'static str,
    name: &str,
) -> Result<(), KernelError> {
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| match netlink_errno(&e) {
            Some(libc::EEXIST) => KernelError::Exists {
                what: "link",
                name: name.to_owned(),
            },
            _ => KernelError::netlink(op, name, e),
        })
}

/// The ifindex of a link that must exist.
pub(crate) async fn index_of(handle: &Handle, name: &str) -> Result<u32, KernelError> {
    Ok(get_link(handle, name)
        .await?
        .ok_or_else(|| KernelError::NotFound {
            what: "link",
            name: name.to_owned(),
        })?
        .header
        .index)
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

pub(crate) fn link_name(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// The kernel's rules for interface names (dev_valid_name), checked up front so the error
/// names the field instead of a bare EINVAL.
pub(crate) fn validate_link_name(what: &'static str, name: &str) -> Result<(), KernelError> {
    if crate::model::valid_ifname(name) {
        Ok(())
    } else {
        Err(KernelError::invalid(
            what,
            format!("{name:?} is not a valid interface name"),
        ))
    }
}
