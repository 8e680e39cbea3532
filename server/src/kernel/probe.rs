//! A bounded ICMP echo sent from inside a container's namespace, by the daemon itself.
//!
//! A dedicated OS thread enters the namespace and opens a raw ICMP socket there (a socket stays
//! bound to the namespace it was opened in, so the echo leaves through the container's own
//! interfaces and routes); no `ping` process is run. Raw sockets need no `ping_group_range`
//! inside the container, which a fresh namespace leaves closed. Every reply is matched by the
//! echo identifier, the sequence number and the replying address, so other traffic in the
//! namespace is ignored.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::{KernelError, Netns};

/// At most this many echoes per probe.
pub const MAX_ECHOES: u16 = 10;
/// A probe never takes longer than this.
pub const MAX_DEADLINE: Duration = Duration::from_secs(5);

/// What to send: `count` echoes to `target`, one every `interval`, all over by `deadline`.
#[derive(Clone, Debug)]
pub struct EchoSpec {
    pub target: IpAddr,
    pub count: u16,
    pub interval: Duration,
    pub deadline: Duration,
}

/// What came back: one round-trip time per echo answered.
#[derive(Clone, Debug, Default)]
pub struct EchoReport {
    pub sent: u16,
    pub received: u16,
    pub rtts: Vec<Duration>,
    /// Why an echo could not even be sent (e.g. "Network is unreachable": no route).
    pub send_error: Option<String>,
}

/// Sends the echoes from inside `ns` on a thread of its own; the bounds are clamped to
/// [`MAX_ECHOES`] and [`MAX_DEADLINE`] whatever the caller asks.
pub async fn echo(ns: &Netns, spec: EchoSpec) -> Result<EchoReport, KernelError> {
    let target = ns.path().display().to_string();
    let fd = ns
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| KernelError::os("duplicate namespace fd", target.clone(), e))?;
    let spec = EchoSpec {
        count: spec.count.clamp(1, MAX_ECHOES),
        deadline: spec.deadline.min(MAX_DEADLINE),
        ..spec
    };
    let (reply, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netbridge-probe".into())
        .spawn(move || {
            let run = setns(&fd, CloneFlags::CLONE_NEWNET)
                .map_err(|e| KernelError::os("enter namespace", target, e))
                .and_then(|()| run(&spec));
            let _ = reply.send(run);
        })
        .map_err(|e| KernelError::os("spawn probe thread", "probe", e))?;
    result
        .await
        .map_err(|_| KernelError::Worker { op: "probe" })?
}

/// The echo loop, on the thread inside the namespace.
fn run(spec: &EchoSpec) -> Result<EchoReport, KernelError> {
    let socket = open_socket(spec.target)?;
    let ident: u16 = rand::random();
    let started = Instant::now();
    let mut sent_at: Vec<Option<Instant>> = vec![None; usize::from(spec.count)];
    let mut report = EchoReport::default();
    let mut next_send = started;
    loop {
        let now = Instant::now();
        if now >= started + spec.deadline {
            break;
        }
        if report.sent < spec.count && now >= next_send {
            let seq = report.sent;
            match send_echo(&socket, spec.target, ident, seq) {
                Ok(()) => sent_at[usize::from(seq)] = Some(Instant::now()),
                Err(e) => report.send_error = Some(e.to_string()),
            }
            report.sent += 1;
            next_send = now + spec.interval;
            continue;
        }
        // Answered echoes are taken out of `sent_at`: none left means nothing to wait for.
        if report.sent == spec.count && sent_at.iter().all(Option::is_none) {
            break;
        }
        let until = if report.sent < spec.count {
            next_send
        } else {
            started + spec.deadline
        };
        if let Some(seq) = receive_reply(&socket, spec.target, ident, until)?
            && let Some(at) = sent_at.get_mut(usize::from(seq)).and_then(Option::take)
        {
            report.received += 1;
            report.rtts.push(at.elapsed());
        }
    }
    Ok(report)
}

fn os_error(op: &'static str) -> KernelError {
    KernelError::os(op, "icmp socket", std::io::Error::last_os_error())
}

fn open_socket(target: IpAddr) -> Result<OwnedFd, KernelError> {
    let (family, protocol) = match target {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(os_error("open raw ICMP socket"));
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An echo request: type, code, checksum, identifier, sequence, then a little payload.
fn echo_packet(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"netbridge-diagnose");
    if !v6 {
        // The kernel computes ICMPv6 checksums itself; ICMPv4's is ours.
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn send_echo(socket: &OwnedFd, target: IpAddr, ident: u16, seq: u16) -> std::io::Result<()> {
    let packet = echo_packet(target.is_ipv6(), ident, seq);
    let (storage, len) = sockaddr(target);
    // SAFETY: the buffer and the address outlive the call; lengths are theirs.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const storage).cast(),
            len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(v4) => {
            let sin = (&raw mut storage).cast::<libc::sockaddr_in>();
            // SAFETY: sockaddr_storage is large and aligned enough for any address.
            unsafe {
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            let sin6 = (&raw mut storage).cast::<libc::sockaddr_in6>();
            // SAFETY: as above.
            unsafe {
                (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*sin6).sin6_addr.s6_addr = v6.octets();
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn peer_ip(storage: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6 = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// Waits until `until` for one echo reply of ours; returns its sequence number, or `None` on
/// a timeout or a packet that is not ours.
fn receive_reply(
    socket: &OwnedFd,
    target: IpAddr,
    ident: u16,
    until: Instant,
) -> Result<Option<u16>, KernelError> {
    let wait = until.saturating_duration_since(Instant::now());
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    if ready < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(None);
        }
        return Err(KernelError::os("poll", "icmp socket", e));
    }
    if ready == 0 {
        return Ok(None);
    }
    let mut buf = [0u8; 1500];
    // SAFETY: as in `sockaddr`.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the buffers are ours and their lengths are given.
    let n = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&raw mut from).cast(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Ok(None);
    }
    if peer_ip(&from) != Some(target) {
        return Ok(None);
    }
    let got = &buf[..n.unsigned_abs()];
    Ok(parse_reply(got, target.is_ipv6(), ident))
}

/// The sequence number of an echo reply carrying `ident`. ICMPv4 raw sockets hand over the IP
/// header too; ICMPv6 ones do not.
fn parse_reply(packet: &[u8], v6: bool, ident: u16) -> Option<u16> {
    let icmp = if v6 {
        packet
    } else {
        let header = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(header..)?
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_packets_carry_a_valid_checksum() {
        let p = echo_packet(false, 0x1234, 7);
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn replies_are_matched_by_identifier() {
        let mut v4 = vec![0x45u8; 20];
        v4.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 3]);
        assert_eq!(parse_reply(&v4, false, 0x1234), Some(3));
        assert_eq!(parse_reply(&v4, false, 0x1235), None);
        let v6 = [129u8, 0, 0, 0, 0xab, 0xcd, 0, 9];
        assert_eq!(parse_reply(&v6, true, 0xabcd), Some(9));
        assert_eq!(
            parse_reply(&[8, 0, 0, 0, 0xab, 0xcd, 0, 9], true, 0xabcd),
            None
        );
        assert_eq!(parse_reply(&[0x45], false, 1), None);
    }
}
