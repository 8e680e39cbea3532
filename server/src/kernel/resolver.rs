//! The embedded DNS server's sockets inside a container's namespace.
//!
//! A socket stays bound to the namespace it was opened in, whichever thread uses it later: so
//! they are opened on a thread that entered the namespace, and served from the daemon's own
//! runtime, while queries forwarded upstream leave from the daemon's namespace. Opening them
//! is on every container's first connect to a user-defined network, so it stays light: one
//! short thread, no runtime, no netlink (`lo` is checked and raised with two ioctls).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::{CloneFlags, setns};

use super::KernelError;
use super::netns::Netns;

/// A resolver's listening sockets in one namespace, non-blocking.
#[derive(Debug)]
pub struct ResolverSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

/// Brings `lo` up in `ns` (127.0.0.0/8 is only local then) and opens UDP and TCP sockets
/// bound to `addr` there.
pub async fn open_resolver_sockets(
    ns: &Netns,
    addr: SocketAddr,
) -> Result<ResolverSockets, KernelError> {
    let target = ns.path().display().to_string();
    let fd: OwnedFd = ns
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| KernelError::os("duplicate namespace fd", target.clone(), e))?;
    let (reply, result) = tokio::sync::oneshot::channel();
    // A thread of its own: it enters the namespace, and must never run anything else.
    std::thread::Builder::new()
        .name("netbridge-resolver".into())
        .spawn(move || {
            let opened = setns(&fd, CloneFlags::CLONE_NEWNET)
                .map_err(|e| KernelError::os("enter namespace", target, e))
                .and_then(|()| bind_here(addr));
            let _ = reply.send(opened);
        })
        .map_err(|e| {
            KernelError::os("spawn resolver thread", ns.path().display().to_string(), e)
        })?;
    result.await.map_err(|_| KernelError::Worker {
        op: "open resolver sockets",
    })?
}

/// In the current thread's namespace: `lo` up, then both sockets bound.
fn bind_here(addr: SocketAddr) -> Result<ResolverSockets, KernelError> {
    let target = addr.to_string();
    let os = |op: &'static str| {
        let target = target.clone();
        move |e: std::io::Error| KernelError::os(op, target, e)
    };
    // Any socket of the namespace will do for the interface ioctls.
    let probe = UdpSocket::bind("0.0.0.0:0").map_err(os("open a socket in the namespace"))?;
    loopback_up(&probe).map_err(os("set lo up"))?;
    let udp = UdpSocket::bind(addr).map_err(os("bind resolver UDP socket"))?;
    let tcp = TcpListener::bind(addr).map_err(os("bind resolver TCP socket"))?;
    udp.set_nonblocking(true)
        .map_err(os("make resolver socket non-blocking"))?;
    tcp.set_nonblocking(true)
        .map_err(os("make resolver socket non-blocking"))?;
    Ok(ResolverSockets { udp, tcp })
}

/// `ip link set lo up` by SIOCGIFFLAGS/SIOCSIFFLAGS, only when it is down.
fn loopback_up(socket: &UdpSocket) -> std::io::Result<()> {
    // SAFETY: ifreq is plain data (all zeroes is valid); the name fits with its NUL; the
    // ioctls read and write only that struct, through a socket fd that outlives the calls.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (to, from) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *to = *from as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let up = libc::IFF_UP as libc::c_short;
        if req.ifr_ifru.ifru_flags & up != 0 {
            return Ok(());
        }
        req.ifr_ifru.ifru_flags |= up;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
