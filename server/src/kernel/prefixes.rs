//! The IPv4 prefixes already in use on the host, which a new automatic subnet must avoid: kept
//! current from netlink notifications instead of dumped on every network create.
//!
//! A dump of every route and address costs milliseconds once a thousand bridges exist (each
//! adds a connected route, an address and two local-table routes), and most of it is
//! netbridge's own. Here the two dumps run once; after that the kernel's RTM_NEWADDR /
//! RTM_DELADDR / RTM_NEWROUTE / RTM_DELROUTE notifications keep the set up to date. Before
//! answering, one round trip on the notification socket acts as a barrier: every change the
//! kernel made before it has been delivered by then, so the answer is as current as a dump.
//! A lost notification (socket overrun) or a quiet minute makes the next answer dump again.
//!
//! One trap: when a link goes down or away, the kernel drops its IPv4 routes without an
//! RTM_DELROUTE for each. A link that goes away still reports each address removed, so an
//! address removed takes the connected route of its prefix on that link with it (this is how
//! a removed network's bridge frees its subnet at once). A route without an address on a link
//! that went down or away stays in the set until the next dump, at most a minute: a subnet is
//! avoided a little longer than needed, never handed out while in use. Watching link
//! notifications instead would mean parsing a full link message for every veth change of every
//! connect.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use futures::{TryStreamExt, channel::mpsc::UnboundedReceiver};
use rtnetlink::{
    Handle, MulticastGroup, RouteMessageBuilder,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        AddressFamily, RouteNetlinkMessage,
        address::AddressMessage,
        route::{RouteAddress, RouteAttribute, RouteMessage},
    },
    sys::SocketAddr,
};
use tracing::{debug, warn};

use super::{
    KernelError,
    address::{address_of, is_connected_v4, network},
};

/// After this long without a dump the next answer dumps again, whatever the notifications
/// said: a bound on how long an unnoticed gap could last.
const REDUMP_AFTER: Duration = Duration::from_secs(60);

/// How often queued notifications are applied while nobody asks, so the queue stays short on
/// a host whose routes churn.
const DRAIN_EVERY: Duration = Duration::from_secs(1);

/// Live view of the host's IPv4 prefixes.
pub(crate) struct HostPrefixes {
    /// On the notification socket: its replies come after the notifications sent before them.
    handle: Handle,
    watch: Arc<tokio::sync::Mutex<Watch>>,
}

struct Watch {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    /// `None` until the first dump, and again after a lost notification.
    known: Option<Known>,
    dumped_at: Instant,
}

/// Connected routes and addresses, keyed as the kernel identifies them, so that a repeated
/// notification (or one already reflected in a dump) changes nothing.
#[derive(Default)]
struct Known {
    /// (table, destination, prefix length, priority, output link) of connected routes in the
    /// main table.
    routes: BTreeSet<(u32, Ipv4Addr, u8, u32, u32)>,
    /// (ifindex, address, prefix length).
    addresses: BTreeSet<(u32, Ipv4Addr, u8)>,
}

impl std::fmt::Debug for HostPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPrefixes").finish_non_exhaustive()
    }
}

impl HostPrefixes {
    /// Subscribes in the calling thread's namespace and spawns the connection and a drain task
    /// on the current runtime.
    pub(crate) fn watch() -> Result<HostPrefixes, KernelError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| KernelError::NoRuntime { op: "watch routes" })?;
        let (connection, handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv4Route,
        ])
        .map_err(|e| KernelError::os("watch routes", "NETLINK_ROUTE socket", e))?;
        runtime.spawn(connection);
        let watch = Arc::new(tokio::sync::Mutex::new(Watch {
            messages,
            known: None,
            dumped_at: Instant::now(),
        }));
        runtime.spawn(drain_while_alive(Arc::downgrade(&watch)));
        Ok(HostPrefixes { handle, watch })
    }

    /// The prefixes now: (network address, prefix length), sorted, without duplicates.
    pub(crate) async fn current(&self) -> Result<Vec<(IpAddr, u8)>, KernelError> {
        self.barrier().await?;
        let mut watch = self.watch.lock().await;
        watch.apply_queued();
        if watch.known.is_none() || watch.dumped_at.elapsed() > REDUMP_AFTER {
            let known = dump(&self.handle).await?;
            watch.known = Some(known);
            watch.dumped_at = Instant::now();
            // Changes made during the dump are queued; applying them again is harmless.
            watch.apply_queued();
        }
        Ok(watch
            .known
            .as_ref()
            .map(Known::prefixes)
            .unwrap_or_default())
    }

    /// One request and its reply on the notification socket.
    async fn barrier(&self) -> Result<(), KernelError> {
        self.handle
            .link()
            .get()
            .match_index(1)
            .execute()
            .try_next()
            .await
            .map(drop)
            .map_err(|e| KernelError::netlink("watch routes", "lo", e))
    }
}

async fn drain_while_alive(watch: Weak<tokio::sync::Mutex<Watch>>) {
    loop {
        tokio::time::sleep(DRAIN_EVERY).await;
        let Some(watch) = watch.upgrade() else { return };
        watch.lock().await.apply_queued();
    }
}

impl Watch {
    fn apply_queued(&mut self) {
        while let Ok((message, _)) = self.messages.try_recv() {
            match message.payload {
                NetlinkPayload::InnerMessage(m) => {
                    if let Some(known) = &mut self.known {
                        known.apply(&m);
                    }
                }
                NetlinkPayload::Overrun(_) => {
                    warn!("route notifications were lost; the next answer dumps again");
                    self.known = None;
                }
                _ => {}
            }
        }
    }
}

impl Known {
    fn apply(&mut self, message: &RouteNetlinkMessage) {
        match message {
            RouteNetlinkMessage::NewAddress(a) => {
                if let Some(key) = address_key(a) {
                    self.addresses.insert(key);
                }
            }
            RouteNetlinkMessage::DelAddress(a) => {
                if let Some((index, ip, len)) = address_key(a) {
                    self.addresses.remove(&(index, ip, len));
                    // Its connected route may be flushed without a notification of its own.
                    let dst = network(IpAddr::V4(ip), len);
                    self.routes.retain(|&(_, d, l, _, oif)| {
                        !(oif == index && l == len && IpAddr::V4(d) == dst)
                    });
                }
            }
            RouteNetlinkMessage::NewRoute(r) => {
                if let Some(key) = route_key(r) {
                    self.routes.insert(key);
                }
            }
            RouteNetlinkMessage::DelRoute(r) => {
                if let Some(key) = route_key(r) {
                    self.routes.remove(&key);
                }
            }
            _ => {}
        }
    }

    fn prefixes(&self) -> Vec<(IpAddr, u8)> {
        let routes = self.routes.iter().map(|(_, dst, len, _, _)| (*dst, *len));
        let addresses = self.addresses.iter().map(|(_, ip, len)| (*ip, *len));
        routes
            .chain(addresses)
            .map(|(ip, len)| (network(IpAddr::V4(ip), len), len))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// IPv4 addresses only; the caller asks the kernel for nothing else.
fn address_key(msg: &AddressMessage) -> Option<(u32, Ipv4Addr, u8)> {
    match address_of(msg)? {
        IpAddr::V4(ip) => Some((msg.header.index, ip, msg.header.prefix_len)),
        IpAddr::V6(_) => None,
    }
}

/// Connected routes of the main table only; default routes would reserve everything.
fn route_key(route: &RouteMessage) -> Option<(u32, Ipv4Addr, u8, u32, u32)> {
    if !is_connected_v4(route) {
        return None;
    }
    let len = route.header.destination_prefix_length;
    let mut dst = None;
    let mut priority = 0;
    let mut oif = 0;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::Oif(index) => oif = *index,
            _ => {}
        }
    }
    match (dst, len) {
        (Some(dst), 1..=32) => Some((u32::from(route.header.table), dst, len, priority, oif)),
        _ => None,
    }
}

/// The host's prefixes from a dump, for when no watch is running.
pub(crate) async fn dump_prefixes(handle: &Handle) -> Result<Vec<(IpAddr, u8)>, KernelError> {
    Ok(dump(handle).await?.prefixes())
}

/// Every IPv4 route and address, boiled down to what counts.
async fn dump(handle: &Handle) -> Result<Known, KernelError> {
    let started = Instant::now();
    let mut known = Known::default();
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes
        .try_next()
        .await
        .map_err(|e| KernelError::netlink("dump routes", "all", e))?
    {
        // A dumped route reads like the notification of its arrival.
        known.apply(&RouteNetlinkMessage::NewRoute(route));
    }
    let mut request = handle.address().get();
    request.message_mut().header.family = AddressFamily::Inet;
    let mut addresses = request.execute();
    while let Some(address) = addresses
        .try_next()
        .await
        .map_err(|e| KernelError::netlink("dump addresses", "all", e))?
    {
        known.apply(&RouteNetlinkMessage::NewAddress(address));
    }
    debug!(
        routes = known.routes.len(),
        addresses = known.addresses.len(),
        elapsed_us = super::task::elapsed_us(started),
        "host prefixes dumped"
    );
    Ok(known)
}
