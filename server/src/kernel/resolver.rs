//! The embedded DNS server's sockets inside a container's namespace.
//!
//! A socket stays bound to the namespace it was opened in, whichever thread uses it later: so
//! they are opened on a thread that entered the namespace, and served from the daemon's own
//! runtime, while queries forwarded upstream leave from the daemon's namespace.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use rtnetlink::LinkUnspec;

use super::KernelError;
use super::link::set_link;
use super::netns::{LOOPBACK_INDEX, Netns, run_in_netns};

/// A resolver's listening sockets in one namespace, non-blocking.
#[derive(Debug)]
pub struct ResolverSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

/// Brings `lo` up in `ns` (127.0.0.0/8 is only routable then) and opens UDP and TCP sockets
/// bound to `addr` there.
pub async fn open_resolver_sockets(
    ns: &Netns,
    addr: SocketAddr,
) -> Result<ResolverSockets, KernelError> {
    run_in_netns(ns, "open resolver sockets", move |inside| async move {
        set_link(
            &inside.handle,
            LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build(),
            "set lo up",
            "lo",
        )
        .await?;
        let target = addr.to_string();
        let udp = UdpSocket::bind(addr)
            .map_err(|e| KernelError::os("bind resolver UDP socket", target.clone(), e))?;
        let tcp = TcpListener::bind(addr)
            .map_err(|e| KernelError::os("bind resolver TCP socket", target.clone(), e))?;
        for blocking in [udp.set_nonblocking(true), tcp.set_nonblocking(true)] {
            blocking
                .map_err(|e| KernelError::os("make resolver socket non-blocking", &target, e))?;
        }
        Ok(ResolverSockets { udp, tcp })
    })
    .await
}
