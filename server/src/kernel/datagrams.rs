//! Datagrams in batches: one recvmmsg(2) reads what a busy socket has queued and one
//! sendmmsg(2) writes the answers, instead of a system call per datagram each way.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams one call moves.
pub const BATCH: usize = 16;

/// A sender's address as the kernel gave it, answered to without conversion.
#[derive(Clone, Copy)]
pub struct Peer {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl Peer {
    /// The address, for replies sent later from elsewhere; `None` for families other than IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match libc::c_int::from(self.addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET), and
                // sockaddr_storage is large and aligned enough for it.
                let sin = unsafe { &*(&raw const self.addr).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for AF_INET6 and sockaddr_in6.
                let sin6 = unsafe { &*(&raw const self.addr).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let port = u16::from_be(sin6.sin6_port);
                Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
            }
            _ => None,
        }
    }
}

fn no_peer() -> Peer {
    Peer {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        addr: unsafe { std::mem::zeroed() },
        len: 0,
    }
}

/// Room for [`BATCH`] datagrams of up to `size` bytes each, and their senders.
pub struct Inbox {
    size: usize,
    data: Vec<u8>,
    lens: [usize; BATCH],
    peers: [Peer; BATCH],
    count: usize,
}

impl Inbox {
    pub fn new(size: usize) -> Inbox {
        Inbox {
            size,
            data: vec![0; size * BATCH],
            lens: [0; BATCH],
            peers: [no_peer(); BATCH],
            count: 0,
        }
    }

    /// Reads what `socket` has queued, up to [`BATCH`] datagrams, without blocking
    /// (`WouldBlock` when there is none). A datagram longer than `size` is cut to it.
    pub fn receive(&mut self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: iovec and mmsghdr are plain data; all zeroes is a valid value.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (chunk, peer)) in self
            .data
            .chunks_exact_mut(self.size)
            .zip(self.peers.iter_mut())
            .enumerate()
        {
            iov[i].iov_base = chunk.as_mut_ptr().cast();
            iov[i].iov_len = chunk.len();
            let h = &mut headers[i].msg_hdr;
            h.msg_name = (&raw mut peer.addr).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut iov[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at its own iovec, buffer chunk and address slot, all
        // borrowed mutably from `self` and `iov` for the length of the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.count = n as usize;
        for (i, h) in headers.iter().take(self.count).enumerate() {
            self.lens[i] = (h.msg_len as usize).min(self.size);
            self.peers[i].len = h.msg_hdr.msg_namelen;
        }
        Ok(self.count)
    }

    /// The datagrams of the last [`Inbox::receive`].
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], Peer)> {
        self.data
            .chunks_exact(self.size)
            .zip(self.lens.iter().zip(self.peers.iter()))
            .take(self.count)
            .map(|(chunk, (len, peer))| (&chunk[..*len], *peer))
    }
}

/// Answers gathered for one sendmmsg(2).
#[derive(Default)]
pub struct Outbox {
    data: Vec<u8>,
    /// Each answer's end in `data`, and where it goes.
    ends: Vec<(usize, Peer)>,
}

impl Outbox {
    /// Appends an answer for `to`, written by `write` at the end of the buffer it is given.
    pub fn push(&mut self, to: Peer, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.data.len();
        write(&mut self.data);
        if self.data.len() > start {
            self.ends.push((self.data.len(), to));
        }
    }

    /// Sends every answer and empties the box. Answers the kernel has no room for are
    /// dropped, as a lost UDP datagram is: the client asks again.
    pub fn send(&mut self, socket: BorrowedFd<'_>) {
        let mut sent = 0;
        while sent < self.ends.len() {
            let batch = &self.ends[sent..self.ends.len().min(sent + BATCH)];
            // SAFETY: as in `Inbox::receive`.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let mut addrs = [no_peer(); BATCH];
            let mut start = if sent == 0 { 0 } else { self.ends[sent - 1].0 };
            for (i, (end, peer)) in batch.iter().enumerate() {
                iov[i].iov_base = self.data[start..*end].as_ptr().cast_mut().cast();
                iov[i].iov_len = end - start;
                addrs[i] = *peer;
                let h = &mut headers[i].msg_hdr;
                h.msg_name = (&raw mut addrs[i].addr).cast();
                h.msg_namelen = addrs[i].len;
                h.msg_iov = &raw mut iov[i];
                h.msg_iovlen = 1;
                start = *end;
            }
            // SAFETY: every header points at its own iovec (into `self.data`, only read by
            // the kernel) and address, which outlive the call.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    batch.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            // An error or a full buffer: skip the answer that failed and go on.
            sent += if n > 0 { n as usize } else { 1 };
        }
        self.data.clear();
        self.ends.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}
