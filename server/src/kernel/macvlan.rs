//! Macvlan endpoints: the container's interface is a macvlan of a parent link in the daemon's
//! namespace, created with the container's namespace as its target, so it is born inside
//! (nothing is moved between namespaces). There is no host end: the interface carries the
//! ownership mark itself, inside the container's namespace.

use std::{net::IpAddr, time::Instant};

use rtnetlink::{LinkMacVlan, packet_route::link::MacVlanMode};
use tracing::{debug, warn};

use super::{
    Kernel, KernelError,
    address::{Gateways, validate_prefix},
    inside::{Ready, configure_inside, create_inside},
    link::{delete_link_by_name, validate_link_name},
    netns::{Netns, run_in_netns},
    sysctl::InterfaceSysctl,
    task::elapsed_us,
};

/// Docker's `macvlan_mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacvlanMode {
    Bridge,
    Vepa,
    Private,
    Passthru,
}

impl MacvlanMode {
    fn netlink(self) -> MacVlanMode {
        match self {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// What connecting one macvlan endpoint needs done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacvlanAttachment {
    /// Index of the parent link in the daemon's namespace.
    pub parent_index: u32,
    pub mode: MacvlanMode,
    /// `None` picks the lowest free "eth<N>" in the namespace.
    pub container_name: Option<String>,
    pub mtu: Option<u32>,
    pub mac: [u8; 6],
    /// Ownership mark on the interface itself, e.g. "netbridge:<endpoint id>".
    pub alias: String,
    pub addresses: Vec<(IpAddr, u8)>,
    /// Client-given sysctls of the interface (see `Attachment::sysctls`).
    pub sysctls: Vec<InterfaceSysctl>,
    pub gateways: Gateways,
}

impl Kernel {
    /// Creates the endpoint's macvlan inside `ns` and configures it there (addresses, up,
    /// mark, default route), on the namespace's thread; any failure after creation deletes
    /// it again. Nothing is changed until `ready` says go (see [`Ready`]). Returns the container-side name
    /// and its ifindex inside `ns`.
    pub async fn attach_macvlan(
        &self,
        ns: &Netns,
        a: &MacvlanAttachment,
        ready: impl Into<Ready>,
    ) -> Result<(String, u32), KernelError> {
        let Ready { go, late } = ready.into();
        if let Some(name) = &a.container_name {
            validate_link_name("container interface name", name)?;
        }
        for (addr, len) in &a.addresses {
            validate_prefix(*addr, *len)?;
        }
        let host = self.handle.clone();
        let a = a.clone();
        run_in_netns(ns, "attach macvlan", move |inner| async move {
            let started = Instant::now();
            let ns_fd = inner.ns_fd;
            let name = create_inside(
                &host,
                &inner,
                a.container_name.as_deref(),
                None,
                go,
                |name| {
                    let mut link = LinkMacVlan::new(name, a.parent_index, a.mode.netlink())
                        .address(a.mac.to_vec())
                        .setns_by_fd(ns_fd);
                    if let Some(mtu) = a.mtu {
                        link = link.mtu(mtu);
                    }
                    link.build()
                },
            )
            .await?;
            let configured = configure_inside(
                &inner.handle,
                &name,
                &a.addresses,
                late,
                &a.sysctls,
                a.gateways,
                Some(&a.alias),
            );
            match configured.await
            {
                Ok(index) => {
                    debug!(container = %name, index, elapsed_us = elapsed_us(started), "macvlan attached");
                    Ok((name, index))
                }
                Err(e) => {
                    warn!(container = %name, error = %e, "macvlan set-up failed, deleting it");
                    if let Err(rollback) = delete_link_by_name(&inner.handle, &name).await {
                        warn!(container = %name, error = %rollback, "could not delete half-made macvlan");
                    }
                    Err(e)
                }
            }
        })
        .await
    }
}
