//! Host ports held for published ports: a socket bound (never listening) in the daemon's
//! namespace per published port, so that no other process can take a port netbridge DNATs
//! away from it, and a port another process already holds is refused, as Docker's own bound
//! socket (or its `docker-proxy`) refuses it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6, SockaddrStorage,
    bind, getsockname, setsockopt, socket, sockopt,
};

use super::{KernelError, Proto};

/// A host port held for as long as this lives.
#[derive(Debug)]
pub struct Reservation {
    _socket: OwnedFd,
    pub port: u16,
}

/// Binds `proto` on `addr` (`None`: every address of `v6`'s family), on `port` (0: one the
/// kernel picks from `net.ipv4.ip_local_port_range`). `EADDRINUSE` (errno) when another
/// socket holds it.
pub fn reserve_port(
    proto: Proto,
    addr: Option<IpAddr>,
    v6: bool,
    port: u16,
) -> Result<Reservation, KernelError> {
    let ip = addr.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let target = format!("{}/{}", SocketAddr::new(ip, port), proto.name());
    let os = |op: &'static str| {
        let target = target.clone();
        move |e: nix::errno::Errno| KernelError::os(op, target, std::io::Error::from(e))
    };
    let (kind, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Proto::Udp => (SockType::Datagram, SockProtocol::Udp),
        Proto::Sctp => (SockType::SeqPacket, SockProtocol::Sctp),
    };
    let family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, protocol).map_err(os("socket"))?;
    match ip {
        IpAddr::V4(a) => {
            bind(
                fd.as_raw_fd(),
                &SockaddrIn::from(std::net::SocketAddrV4::new(a, port)),
            )
            .map_err(os("bind"))?;
        }
        IpAddr::V6(a) => {
            // `::` holds the IPv6 port only; IPv4 has its own reservation.
            setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(os("setsockopt IPV6_V6ONLY"))?;
            bind(
                fd.as_raw_fd(),
                &SockaddrIn6::from(std::net::SocketAddrV6::new(a, port, 0, 0)),
            )
            .map_err(os("bind"))?;
        }
    }
    let bound: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(os("getsockname"))?;
    let port = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(port);
    Ok(Reservation { _socket: fd, port })
}
