//! VXLAN links for networks that span hosts: one per network, enslaved to the network's
//! bridge, learning off. Remote endpoints are static entries: an FDB entry (their MAC behind
//! their host's underlay address) and a neighbour entry that the link's ARP proxy answers
//! from, so a container's first ARP request never leaves the host.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use futures::TryStreamExt;
use rtnetlink::{
    LinkUnspec, LinkVxlan,
    packet_route::{
        AddressFamily,
        address::AddressAttribute,
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    },
};

use super::{
    Kernel, KernelError,
    error::netlink_errno,
    link::{create_link, get_link, index_of, link_mtu, set_link, validate_link_name},
};

/// VXLAN's cost on the underlay: outer Ethernet, IPv4, UDP and VXLAN headers.
pub const VXLAN_OVERHEAD: u32 = 50;
/// IANA's VXLAN port.
pub const VXLAN_PORT: u16 = 4789;

/// What a network's VXLAN link must look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    /// The host's underlay (advertise) address.
    pub local: Ipv4Addr,
    pub mtu: u32,
    /// The bridge it is a port of.
    pub bridge: String,
    /// The ownership mark (IFLA_IFALIAS).
    pub alias: String,
}

/// One endpoint on another host, as the data path needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemotePeer {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    /// Its host's underlay address.
    pub host: Ipv4Addr,
}

impl Kernel {
    /// Makes the VXLAN link if it is missing (a port of its bridge, up); returns whether it
    /// was made. An existing one is left as it is, apart from being brought up.
    pub async fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<bool, KernelError> {
        validate_link_name("vxlan name", &spec.name)?;
        let h = &self.handle;
        let bridge = index_of(h, &spec.bridge).await?;
        let made = match get_link(h, &spec.name).await? {
            Some(_) => false,
            None => {
                let msg = LinkVxlan::new(&spec.name, spec.vni)
                    .local(spec.local)
                    .port(VXLAN_PORT)
                    .learning(false)
                    .proxy(true)
                    .mtu(spec.mtu)
                    .controller(bridge)
                    .build();
                create_link(h, msg, "create vxlan", &spec.name).await?;
                true
            }
        };
        let mut up = LinkUnspec::new_with_name(&spec.name)
            .controller(bridge)
            .up()
            .build();
        up.attributes
            .push(rtnetlink::packet_route::link::LinkAttribute::IfAlias(
                spec.alias.clone(),
            ));
        set_link(h, up, "bring vxlan up", &spec.name).await?;
        Ok(made)
    }

    /// The MTU of the link holding `addr` (the underlay), or `None` if no link holds it.
    pub async fn mtu_of_address(&self, addr: Ipv4Addr) -> Result<Option<u32>, KernelError> {
        let h = &self.handle;
        let found: Vec<_> = h
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| KernelError::netlink("dump addresses", "all", e))?;
        let index = found.iter().find_map(|m| {
            m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(v)) | AddressAttribute::Address(IpAddr::V4(v)) if *v == addr))
                .then_some(m.header.index)
        });
        let Some(index) = index else {
            return Ok(None);
        };
        let mut links = h.link().get().match_index(index).execute();
        let msg = links
            .try_next()
            .await
            .map_err(|e| KernelError::netlink("look up link", index.to_string(), e))?;
        Ok(msg.as_ref().and_then(link_mtu))
    }

    /// Programs one remote endpoint on a VXLAN link: FDB entry, then neighbour entry.
    pub async fn add_peer(&self, vxlan: &str, peer: RemotePeer) -> Result<(), KernelError> {
        let h = &self.handle;
        let index = index_of(h, vxlan).await?;
        h.neighbours()
            .add_bridge(index, &peer.mac)
            .flags(NeighbourFlags::Own)
            .destination(IpAddr::V4(peer.host))
            .replace()
            .execute()
            .await
            .map_err(|e| KernelError::netlink("add fdb entry", vxlan, e))?;
        h.neighbours()
            .add(index, IpAddr::V4(peer.ip))
            .link_layer_address(&peer.mac)
            .replace()
            .execute()
            .await
            .map_err(|e| KernelError::netlink("add neighbour", vxlan, e))
    }

    /// The remote endpoints programmed on a VXLAN link: its FDB entries with a destination,
    /// each with the IP its neighbour entry gives that MAC (0.0.0.0 if none). Empty if the
    /// link is missing.
    pub async fn peers(&self, vxlan: &str) -> Result<Vec<RemotePeer>, KernelError> {
        let h = &self.handle;
        let Some(link) = get_link(h, vxlan).await? else {
            return Ok(Vec::new());
        };
        let index = link.header.index;
        let _turn = self.dumps.lock().await;
        let dump = |family| {
            h.neighbours()
                .get()
                .set_address_family(family)
                .execute()
                .try_collect::<Vec<_>>()
        };
        let fdb = dump(AddressFamily::Bridge)
            .await
            .map_err(|e| KernelError::netlink("dump fdb", vxlan, e))?;
        let neigh = dump(AddressFamily::Inet)
            .await
            .map_err(|e| KernelError::netlink("dump neighbours", vxlan, e))?;
        let mac_of = |m: &NeighbourMessage| {
            m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(l) => <[u8; 6]>::try_from(l.as_slice()).ok(),
                _ => None,
            })
        };
        // An FDB entry's destination parses as raw bytes (its message is AF_BRIDGE).
        let ip_of = |m: &NeighbourMessage| {
            m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                    <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
                }
                _ => None,
            })
        };
        let ips: Vec<([u8; 6], Ipv4Addr)> = neigh
            .iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(|m| Some((mac_of(m)?, ip_of(m)?)))
            .collect();
        Ok(fdb
            .iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(|m| {
                let mac = mac_of(m)?;
                let host = ip_of(m)?;
                let ip = ips
                    .iter()
                    .find(|(x, _)| *x == mac)
                    .map_or(Ipv4Addr::UNSPECIFIED, |(_, ip)| *ip);
                Some(RemotePeer { mac, ip, host })
            })
            .collect())
    }

    /// Announces a remote endpoint on the network's bridge with a gratuitous ARP, so a local
    /// container that already asked for its address (an incomplete neighbour entry, whose
    /// next retry is a second away) learns it at once.
    pub async fn announce_peer(&self, bridge: &str, peer: RemotePeer) -> Result<(), KernelError> {
        let index = index_of(&self.handle, bridge).await?;
        let own = self.link_mac(bridge).await?.unwrap_or([0; 6]);
        send_garp(index, own, peer).map_err(|e| KernelError::os("send gratuitous ARP", bridge, e))
    }

    /// Removes one remote endpoint's entries; missing ones are fine.
    pub async fn remove_peer(&self, vxlan: &str, peer: RemotePeer) -> Result<(), KernelError> {
        let h = &self.handle;
        let Some(link) = get_link(h, vxlan).await? else {
            return Ok(());
        };
        let index = link.header.index;
        let mut neigh = NeighbourMessage::default();
        neigh.header.family = AddressFamily::Inet;
        neigh.header.ifindex = index;
        neigh
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                peer.ip,
            )));
        let mut fdb = NeighbourMessage::default();
        fdb.header.family = AddressFamily::Bridge;
        fdb.header.ifindex = index;
        fdb.header.flags = NeighbourFlags::Own;
        fdb.attributes
            .push(NeighbourAttribute::LinkLayerAddress(peer.mac.to_vec()));
        fdb.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                peer.host,
            )));
        let mut doomed = vec![("delete fdb entry", fdb)];
        if !peer.ip.is_unspecified() {
            doomed.insert(0, ("delete neighbour", neigh));
        }
        for (what, msg) in doomed {
            match h.neighbours().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::ENODEV)) => {}
                Err(e) => return Err(KernelError::netlink(what, vxlan, e)),
            }
        }
        Ok(())
    }
}

/// One broadcast ARP reply from `peer` (sender and target its IP), sent on link `index` from
/// `own` (the bridge's MAC: the bridge learns nothing from its own transmissions).
fn send_garp(index: u32, own: [u8; 6], peer: RemotePeer) -> std::io::Result<()> {
    const BROADCAST: [u8; 6] = [0xff; 6];
    let proto = (libc::ETH_P_ARP as u16).to_be();
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&BROADCAST);
    frame.extend_from_slice(&own);
    frame.extend_from_slice(&(libc::ETH_P_ARP as u16).to_be_bytes());
    // Ethernet, IPv4, 6-byte and 4-byte addresses, reply.
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    frame.extend_from_slice(&peer.mac);
    frame.extend_from_slice(&peer.ip.octets());
    frame.extend_from_slice(&BROADCAST);
    frame.extend_from_slice(&peer.ip.octets());
    // SAFETY: plain syscalls on a descriptor owned here, with a zeroed, filled-in address.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            proto as i32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index as i32;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&BROADCAST);
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
