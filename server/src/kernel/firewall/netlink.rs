//! Set elements changed in-process: one nf_tables transaction sent as a netlink batch over a
//! `NETLINK_NETFILTER` socket, instead of an `nft -f -` process. A process costs ~4 ms, and
//! nft also reads a whole interval set before changing it, so its cost grew with the number of
//! networks; a batch is a few hundred bytes whatever the sets hold.
//!
//! The messages are the ones nft 1.0.6 sends for the same `add element` / `delete element`
//! lines (seen with `strace -e trace=sendmsg`), so the kernel ends up holding the same elements;
//! the tests compare both ways. Constants are named as in the uapi headers
//! (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h`).
//!
//! A socket talks to the nf_tables of the network namespace it was opened in; one is kept
//! between transactions for the calling thread's namespace (see [`Connection`]), so each
//! transaction changes that namespace's table, as the `nft` child process did.

use std::{
    fmt, io,
    net::IpAddr,
    os::{
        fd::{AsFd, AsRawFd},
        unix::fs::MetadataExt,
    },
    time::{Duration, Instant},
};

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
use nix::{
    errno::Errno,
    poll::{PollFd, PollFlags, PollTimeout, poll},
};
use tracing::debug;

use super::script::{Element, Set};
use crate::kernel::KernelError;

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_MIN_TYPE: u16 = 0x10;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_CREATE: u16 = 0x400;
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 1 << 15;

// linux/netfilter.h
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;

// linux/netfilter/nfnetlink.h
const NFNETLINK_V0: u8 = 0;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = NLMSG_MIN_TYPE;
const NFNL_MSG_BATCH_END: u16 = NLMSG_MIN_TYPE + 1;

// linux/netfilter/nf_tables.h
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

// linux/if.h: `type ifname` keys are the name zero-padded to this.
const IFNAMSIZ: usize = 16;

// Not uapi: libnftnl's element user data, one TLV (type u8, length u8, value). nft marks the
// start of an interval that runs to the top of the address space (and so has no end element)
// with NFTNL_UDATA_SET_ELEM_FLAGS = NFTNL_SET_ELEM_F_INTERVAL_OPEN, and needs that mark to
// list the element as a prefix again.
const NFTNL_UDATA_SET_ELEM_FLAGS: u8 = 1;
const NFTNL_SET_ELEM_F_INTERVAL_OPEN: u32 = 0x1;

/// A safety net: the kernel answers every batch, but a transaction must never hang a caller.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One kernel element: a set element of an interval set is one or two of them.
#[derive(Debug, PartialEq, Eq)]
struct KernelElement {
    key: Vec<u8>,
    /// Ends the interval started by the element below it.
    end: bool,
    /// Starts an interval that runs to the top of the address space (nft's user-data mark).
    open: bool,
    /// A map element's value (sent with an add only: a delete names the key).
    data: Option<Vec<u8>>,
}

impl KernelElement {
    fn key(key: Vec<u8>) -> KernelElement {
        KernelElement {
            key,
            end: false,
            open: false,
            data: None,
        }
    }
}

/// What `element` is in the kernel, in the order nft 1.0.6 sends it. `add` also carries the
/// end element at address 0 that nft puts in front of an interval set's first interval (when
/// that does not start at 0): nft adds it only when the set is empty, which only a read of the
/// whole set would tell, so it is sent every time instead (an element already there is not an
/// error); nft never deletes it, and neither does `delete`.
fn kernel_elements(element: &Element, add: bool) -> Vec<KernelElement> {
    match element {
        Element::Ifname(name) => vec![KernelElement::key(ifname_key(name))],
        Element::SameIfname(name) => {
            // A concatenation: each part padded to a multiple of 4 bytes, which 16 is.
            let mut key = ifname_key(name);
            key.extend(ifname_key(name));
            vec![KernelElement::key(key)]
        }
        Element::Subnet(addr, prefix) => {
            let (start, end) = match *addr {
                IpAddr::V4(a) => {
                    let (start, end) = interval(u128::from(u32::from(a)), *prefix, 32);
                    // In range: `interval` stays within 32 bits.
                    let bytes = |v: u128| (v as u32).to_be_bytes().to_vec();
                    (bytes(start), end.map(bytes))
                }
                IpAddr::V6(a) => {
                    let (start, end) = interval(u128::from(a), *prefix, 128);
                    let bytes = |v: u128| v.to_be_bytes().to_vec();
                    (bytes(start), end.map(bytes))
                }
            };
            let mut out = Vec::with_capacity(3);
            if add && start.iter().any(|&b| b != 0) {
                out.push(KernelElement {
                    key: vec![0; start.len()],
                    end: true,
                    open: false,
                    data: None,
                });
            }
            out.push(KernelElement {
                key: start,
                end: false,
                open: end.is_none(),
                data: None,
            });
            if let Some(end) = end {
                out.push(KernelElement {
                    key: end,
                    end: true,
                    open: false,
                    data: None,
                });
            }
            out
        }
        Element::Port(p) => vec![KernelElement {
            key: p.key(),
            end: false,
            open: false,
            data: add.then(|| p.data()),
        }],
    }
}

/// `[start, end)` of a prefix in a `bits`-wide address space: the network address, and the
/// first address after the prefix, or `None` when the prefix reaches the top of the space.
fn interval(addr: u128, prefix: u8, bits: u32) -> (u128, Option<u128>) {
    let space = u128::MAX >> (128 - bits);
    let host = space.checked_shr(u32::from(prefix)).unwrap_or(0);
    let start = addr & space & !host;
    let last = start | host;
    (start, (last < space).then(|| last + 1))
}

/// The name zero-padded to IFNAMSIZ (`Checked` made sure it is at most 15 bytes).
fn ifname_key(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAMSIZ, 0);
    key
}

/// One nf_tables transaction being built: BATCH_BEGIN, element messages, BATCH_END.
pub(super) struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Every message that the kernel may answer, by sequence number, with what it did (for
    /// errors); the ones with `NLM_F_ACK` are each acknowledged.
    messages: Vec<(u32, String, bool)>,
}

impl Batch {
    pub(super) fn new() -> Batch {
        let mut batch = Batch {
            buf: Vec::with_capacity(1024),
            seq: 0,
            messages: Vec::new(),
        };
        // A commit failure (and a refused batch: no CAP_NET_ADMIN, no nf_tables) is reported
        // against the BEGIN message.
        let seq = batch.message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        batch
            .messages
            .push((seq, "the transaction".to_string(), false));
        batch
    }

    /// `add element inet <table> <set> { element }`: NEWSETELEM with NLM_F_CREATE and without
    /// NLM_F_EXCL, so an element already there is not an error.
    pub(super) fn add(&mut self, table: &str, set: Set, element: &Element) {
        self.elements(
            NFT_MSG_NEWSETELEM,
            NLM_F_CREATE,
            "add",
            table,
            set,
            std::slice::from_ref(element),
        );
    }

    /// Many elements of one set added in one message.
    pub(super) fn add_all(&mut self, table: &str, set: Set, elements: &[Element]) {
        if !elements.is_empty() {
            self.elements(
                NFT_MSG_NEWSETELEM,
                NLM_F_CREATE,
                "add",
                table,
                set,
                elements,
            );
        }
    }

    /// `flush set`: DELSETELEM without an element list empties the set.
    pub(super) fn flush(&mut self, table: &str, set: Set) {
        let seq = self.message(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM,
            NLM_F_REQUEST | NLM_F_ACK,
            NFPROTO_INET,
            0,
            |buf| {
                put_str(buf, NFTA_SET_ELEM_LIST_TABLE, table);
                put_str(buf, NFTA_SET_ELEM_LIST_SET, set.name());
            },
        );
        self.messages
            .push((seq, format!("flush set {}", set.name()), true));
    }

    /// `delete element inet <table> <set> { element }`: an absent element fails the batch
    /// (ENOENT), so removals add each element first in the same batch.
    pub(super) fn delete(&mut self, table: &str, set: Set, element: &Element) {
        self.elements(
            NFT_MSG_DELSETELEM,
            0,
            "delete",
            table,
            set,
            std::slice::from_ref(element),
        );
    }

    fn elements(
        &mut self,
        msg: u16,
        flags: u16,
        verb: &str,
        table: &str,
        set: Set,
        elements: &[Element],
    ) {
        let kernel: Vec<KernelElement> = elements
            .iter()
            .flat_map(|e| kernel_elements(e, msg == NFT_MSG_NEWSETELEM))
            .collect();
        let seq = self.message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            NFPROTO_INET,
            0,
            |buf| {
                put_str(buf, NFTA_SET_ELEM_LIST_TABLE, table);
                put_str(buf, NFTA_SET_ELEM_LIST_SET, set.name());
                let list = nest_start(buf, NFTA_SET_ELEM_LIST_ELEMENTS);
                for e in &kernel {
                    let elem = nest_start(buf, NFTA_LIST_ELEM);
                    if e.end {
                        put(
                            buf,
                            NFTA_SET_ELEM_FLAGS,
                            &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
                        );
                    }
                    let key = nest_start(buf, NFTA_SET_ELEM_KEY);
                    put(buf, NFTA_DATA_VALUE, &e.key);
                    nest_end(buf, key);
                    if let Some(data) = &e.data {
                        let value = nest_start(buf, NFTA_SET_ELEM_DATA);
                        put(buf, NFTA_DATA_VALUE, data);
                        nest_end(buf, value);
                    }
                    if e.open {
                        let mut udata = vec![NFTNL_UDATA_SET_ELEM_FLAGS, 4];
                        udata.extend(NFTNL_SET_ELEM_F_INTERVAL_OPEN.to_ne_bytes());
                        put(buf, NFTA_SET_ELEM_USERDATA, &udata);
                    }
                    nest_end(buf, elem);
                }
                nest_end(buf, list);
            },
        );
        let shown = match elements {
            [one] => one.to_string(),
            many => format!("{} elements", many.len()),
        };
        self.messages.push((
            seq,
            format!("{verb} element {} {{ {shown} }}", set.name()),
            true,
        ));
    }

    /// Appends one message (header, nfgenmsg, attributes) and returns its sequence number.
    fn message(
        &mut self,
        msg_type: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        self.seq += 1;
        let start = self.buf.len();
        self.buf.extend(0u32.to_ne_bytes()); // nlmsg_len, set below
        self.buf.extend(msg_type.to_ne_bytes());
        self.buf.extend(flags.to_ne_bytes());
        self.buf.extend(self.seq.to_ne_bytes());
        self.buf.extend(0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
        self.buf.extend([family, NFNETLINK_V0]);
        self.buf.extend(res_id.to_be_bytes());
        body(&mut self.buf);
        set_len(&mut self.buf, start);
        self.seq
    }

    /// The whole batch, BATCH_END included (for tests).
    fn finish(mut self) -> (Vec<u8>, Vec<(u32, String, bool)>) {
        self.message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        (self.buf, self.messages)
    }

    /// Sends the batch as one datagram and waits until the kernel has acknowledged every
    /// element message, or reported an error (then nothing of the batch was applied).
    /// `kept` is the socket kept from earlier transactions (see [`Connection`]); `op`/`target`
    /// name the work for the error.
    pub(super) fn commit(
        self,
        kept: &mut Option<Connection>,
        op: &'static str,
        target: &str,
    ) -> Result<(), KernelError> {
        let started = Instant::now();
        let (request, messages) = self.finish();
        let here = netns_id();
        let connection = match kept.take() {
            Some(c) if here.is_some() && c.netns == here => c,
            _ => Connection {
                socket: open(op, target)?,
                netns: here,
            },
        };
        let mut pending: Vec<u32> = messages
            .iter()
            .filter(|(_, _, acked)| *acked)
            .map(|(seq, _, _)| *seq)
            .collect();
        let count = pending.len();
        exchange(&connection.socket, &request, &mut pending).map_err(|(seq, e)| {
            // The socket is dropped with the error: answers still on their way stay with it.
            let what = messages
                .iter()
                .find(|(s, _, _)| Some(*s) == seq)
                .map_or("the reply", |(_, what, _)| what.as_str());
            KernelError::os(op, format!("{target}, {what}"), e)
        })?;
        if connection.netns.is_some() {
            *kept = Some(connection);
        }
        debug!(
            op,
            target,
            messages = count,
            bytes = request.len(),
            elapsed_us = started.elapsed().as_micros(),
            "nf_tables batch committed"
        );
        Ok(())
    }
}

/// A NETLINK_NETFILTER socket kept between transactions, with the network namespace it talks
/// to. Kept because closing such a socket is slow after a delete: the kernel first finishes
/// freeing the elements of earlier transactions, which waits for an RCU grace period (~10 ms;
/// `nft` pays it at every exit). It is used only by a caller in the same namespace, so every
/// transaction still reaches the nf_tables of the calling thread's namespace.
pub(super) struct Connection {
    socket: Socket,
    /// `(st_dev, st_ino)` of the namespace; the socket holds a reference to it, so the pair
    /// cannot be reused by another namespace while the socket lives. `None`: not kept.
    netns: Option<(u64, u64)>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.socket.as_raw_fd())
            .field("netns", &self.netns)
            .finish()
    }
}

/// The calling thread's network namespace, or `None` if /proc cannot tell.
fn netns_id() -> Option<(u64, u64)> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether `table inet <table>` exists (NFT_MSG_GETTABLE): tells "not set up" from other
/// failures of a batch.
pub(super) fn table_exists(table: &str) -> Result<bool, KernelError> {
    const OP: &str = "nf_tables get table";
    let target = format!("table inet {table}");
    let mut batch = Batch {
        buf: Vec::with_capacity(64),
        seq: 0,
        messages: Vec::new(),
    };
    let seq = batch.message(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
        NLM_F_REQUEST | NLM_F_ACK,
        NFPROTO_INET,
        0,
        |buf| put_str(buf, NFTA_TABLE_NAME, table),
    );
    let socket = open(OP, &target)?;
    // The answer is the table (ignored), then the acknowledgement; or only an error.
    match exchange(&socket, &batch.buf, &mut vec![seq]) {
        Ok(()) => Ok(true),
        Err((_, e)) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err((_, e)) => Err(KernelError::os(OP, target, e)),
    }
}

fn open(op: &'static str, target: &str) -> Result<Socket, KernelError> {
    Socket::new(NETLINK_NETFILTER)
        .and_then(|mut socket| socket.bind_auto().map(|_| socket))
        .map_err(|e| KernelError::os(op, format!("{target}, NETLINK_NETFILTER socket"), e))
}

/// Sends `request` and reads answers until every sequence number in `pending` is
/// acknowledged. An error names the message it answers (its sequence number), if any.
fn exchange(
    socket: &Socket,
    request: &[u8],
    pending: &mut Vec<u32>,
) -> Result<(), (Option<u32>, io::Error)> {
    let sent = socket.send(request, 0).map_err(|e| (None, e))?;
    if sent != request.len() {
        return Err((
            None,
            io::Error::other(format!("sent {sent} of {} bytes", request.len())),
        ));
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut buf: Vec<u8> = Vec::with_capacity(32 * 1024);
    let mut read = |flags: libc::c_int, pending: &mut Vec<u32>| {
        buf.clear();
        let n = socket.recv(&mut buf, flags).map_err(|e| (None, e))?;
        for (seq, code) in acks(&buf[..n.min(buf.len())]).map_err(|e| (None, e))? {
            if code != 0 {
                return Err((Some(seq), io::Error::from_raw_os_error(-code)));
            }
            pending.retain(|&s| s != seq);
        }
        Ok(())
    };
    while !pending.is_empty() {
        wait_readable(socket, deadline).map_err(|e| (None, e))?;
        read(0, pending)?;
    }
    // The kernel handles a batch while `send` runs, so its every answer is queued by now; a
    // failed commit is reported against BEGIN, and that must not be left unread behind the
    // acknowledgements.
    loop {
        match read(libc::MSG_DONTWAIT, pending) {
            Ok(()) => {}
            Err((None, e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Waits until an answer can be read, or fails at `deadline`.
fn wait_readable(socket: &Socket, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer from nf_tables within {ANSWER_TIMEOUT:?}"),
                ));
            }
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The `(sequence number, error code)` of every NLMSG_ERROR in one datagram (code 0: an
/// acknowledgement); other messages (a GETTABLE's answer) are skipped.
fn acks(datagram: &[u8]) -> io::Result<Vec<(u32, i32)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"));
    let u32_at = |at: usize| {
        datagram
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= datagram.len() {
        let len = u32_at(at).ok_or_else(|| bad("short header"))? as usize;
        if len < NLMSG_HDRLEN || at + len > datagram.len() {
            return Err(bad("message length out of bounds"));
        }
        let msg_type = u16::from_ne_bytes([datagram[at + 4], datagram[at + 5]]);
        let seq = u32_at(at + 8).ok_or_else(|| bad("short header"))?;
        if msg_type == NLMSG_ERROR {
            if len < NLMSG_HDRLEN + 4 {
                return Err(bad("short error message"));
            }
            let code = u32_at(at + NLMSG_HDRLEN).ok_or_else(|| bad("short error message"))?;
            out.push((seq, code as i32));
        }
        at += align(len);
    }
    Ok(out)
}

const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Writes the length of the message that starts at `start` into its header (its attributes
/// are padded already, so it ends on a 4-byte boundary).
fn set_len(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn put(buf: &mut Vec<u8>, attr: u16, payload: &[u8]) {
    buf.extend(((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
    buf.extend(attr.to_ne_bytes());
    buf.extend(payload);
    buf.resize(align(buf.len()), 0);
}

fn put_str(buf: &mut Vec<u8>, attr: u16, s: &str) {
    let mut payload = s.as_bytes().to_vec();
    payload.push(0);
    put(buf, attr, &payload);
}

fn nest_start(buf: &mut Vec<u8>, attr: u16) -> usize {
    let start = buf.len();
    buf.extend(0u16.to_ne_bytes());
    buf.extend((attr | NLA_F_NESTED).to_ne_bytes());
    start
}

fn nest_end(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    //! The bytes against what nft 1.0.6 sends for the same `add element` / `delete element`
    //! lines (`strace -e trace=sendmsg -xx nft -f …`, into empty sets), without a kernel.

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The attributes at the top level of `payload`, as (type, payload).
    fn attrs(mut payload: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        while payload.len() >= NLA_HDRLEN {
            let len = usize::from(u16::from_ne_bytes([payload[0], payload[1]]));
            let kind = u16::from_ne_bytes([payload[2], payload[3]]);
            out.push((kind, &payload[NLA_HDRLEN..len]));
            payload = &payload[align(len).min(payload.len())..];
        }
        out
    }

    /// nft numbers the entries of an element list 1, 2, 3…; the kernel ignores their type,
    /// and the header names them all NFTA_LIST_ELEM, as the batch does.
    fn as_list_elems(mut nft: Vec<u8>) -> Vec<u8> {
        let mut at = 0;
        while at + NLA_HDRLEN <= nft.len() {
            let len = usize::from(u16::from_ne_bytes([nft[at], nft[at + 1]]));
            nft[at + 2..at + 4].copy_from_slice(&(NFTA_LIST_ELEM | NLA_F_NESTED).to_ne_bytes());
            at += align(len);
        }
        nft
    }

    /// The batch's messages as (type, flags, seq, attributes).
    fn messages(batch: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < batch.len() {
            let word = |i: usize| u32::from_ne_bytes(batch[at + i..at + i + 4].try_into().unwrap());
            let len = word(0) as usize;
            let kind = u16::from_ne_bytes([batch[at + 4], batch[at + 5]]);
            let flags = u16::from_ne_bytes([batch[at + 6], batch[at + 7]]);
            out.push((kind, flags, word(8), batch[at + 20..at + len].to_vec()));
            at += len;
        }
        out
    }

    /// The NFTA_SET_ELEM_LIST_ELEMENTS payload of each element message of one batch.
    fn element_lists(batch: Batch) -> Vec<Vec<u8>> {
        let (buf, _) = batch.finish();
        messages(&buf)
            .into_iter()
            .filter(|(kind, ..)| kind >> 8 == NFNL_SUBSYS_NFTABLES)
            .map(|(_, _, _, body)| {
                attrs(&body)
                    .into_iter()
                    .find(|(kind, _)| *kind == NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED)
                    .expect("element list")
                    .1
                    .to_vec()
            })
            .collect()
    }

    fn v4(s: &str, prefix: u8) -> Element {
        Element::Subnet(IpAddr::V4(s.parse::<Ipv4Addr>().expect("IPv4")), prefix)
    }

    fn v6(s: &str, prefix: u8) -> Element {
        Element::Subnet(IpAddr::V6(s.parse::<Ipv6Addr>().expect("IPv6")), prefix)
    }

    #[test]
    fn elements_are_encoded_as_nft_encodes_them() {
        let br = Element::Ifname("br-a".into());
        let same = Element::SameIfname("br-a".into());
        let cases: [(Set, Element, bool, &str); 9] = [
            (
                Set::Bridges,
                br,
                true,
                "1c000180180001801400010062722d61000000000000000000000000",
            ),
            (
                Set::Same,
                same,
                true,
                "2c000180280001802400010062722d610000000000000000000000006272\
                 2d61000000000000000000000000",
            ),
            // The end element at 0, the start, and the end: the first address after the prefix.
            (
                Set::MasqV4,
                v4("10.1.0.0", 24),
                true,
                "1800018008000300000000010c0001800800010000000000100002800c000180080001000a01\
                 00001800038008000300000000010c000180080001000a010100",
            ),
            (
                Set::MasqV4,
                v4("10.1.0.0", 24),
                false,
                "100001800c000180080001000a0100001800028008000300000000010c000180080001000a01\
                 0100",
            ),
            // To the top of the address space: no end element; the start carries nft's
            // "open interval" user data.
            (
                Set::MasqV4,
                v4("255.255.255.0", 24),
                true,
                "1800018008000300000000010c00018008000100000000001c0002800c00018008000100ffff\
                 ff000a0006000104010000000000",
            ),
            (
                Set::MasqV4,
                v4("0.0.0.0", 0),
                true,
                "1c0001800c00018008000100000000000a0006000104010000000000",
            ),
            (
                Set::MasqV6,
                v6("fd01::", 64),
                true,
                "2400018008000300000000011800018014000100000000000000000000000000000000001c00\
                 02801800018014000100fd0100000000000000000000000000002400038008000300000000011800\
                 018014000100fd010000000000010000000000000000",
            ),
            (
                Set::MasqV6,
                v6("fd01::", 64),
                false,
                "1c0001801800018014000100fd0100000000000000000000000000002400028008000300000000\
                 011800018014000100fd010000000000010000000000000000",
            ),
            (
                Set::MasqV6,
                v6("ff00::", 8),
                true,
                "24000180080003000000000118000180140001000000000000000000000000000000000028000280\
                 1800018014000100ff0000000000000000000000000000000a0006000104010000000000",
            ),
        ];
        for (set, element, add, nft) in cases {
            let mut batch = Batch::new();
            if add {
                batch.add("t", set, &element);
            } else {
                batch.delete("t", set, &element);
            }
            assert_eq!(
                element_lists(batch),
                [as_list_elems(hex(nft))],
                "{} {element} (add: {add})",
                set.name()
            );
        }
    }

    #[test]
    fn a_batch_is_framed_and_every_element_message_asks_for_an_ack() {
        let mut batch = Batch::new();
        batch.add("nb", Set::Bridges, &Element::Ifname("br-a".into()));
        batch.delete("nb", Set::Bridges, &Element::Ifname("br-a".into()));
        let (buf, answered) = batch.finish();
        let msgs = messages(&buf);
        let kinds: Vec<(u16, u16, u32)> = msgs.iter().map(|(k, f, s, _)| (*k, *f, *s)).collect();
        assert_eq!(
            kinds,
            [
                (NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 1),
                (
                    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
                    2
                ),
                (
                    (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM,
                    NLM_F_REQUEST | NLM_F_ACK,
                    3
                ),
                (NFNL_MSG_BATCH_END, NLM_F_REQUEST, 4),
            ]
        );
        // nfgenmsg: BEGIN/END name the subsystem in res_id; element messages the family.
        assert_eq!(&buf[16..20], [NFPROTO_UNSPEC, NFNETLINK_V0, 0, 10]);
        let second = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        assert_eq!(
            &buf[second + 16..second + 20],
            [NFPROTO_INET, NFNETLINK_V0, 0, 0]
        );
        let table_and_set: Vec<(u16, &[u8])> = attrs(&msgs[1].3).into_iter().take(2).collect();
        assert_eq!(
            table_and_set,
            [
                (NFTA_SET_ELEM_LIST_TABLE, &b"nb\0"[..]),
                (NFTA_SET_ELEM_LIST_SET, &b"bridges\0"[..])
            ]
        );
        let acked: Vec<(u32, &str)> = answered
            .iter()
            .filter(|(_, _, acked)| *acked)
            .map(|(seq, what, _)| (*seq, what.as_str()))
            .collect();
        assert_eq!(
            acked,
            [
                (2, r#"add element bridges { "br-a" }"#),
                (3, r#"delete element bridges { "br-a" }"#)
            ]
        );
    }

    #[test]
    fn intervals_end_after_the_prefix_or_stay_open_at_the_top() {
        assert_eq!(
            interval(0x0a01_0000, 24, 32),
            (0x0a01_0000, Some(0x0a01_0100))
        );
        assert_eq!(
            interval(0x0a01_0203, 16, 32),
            (0x0a01_0000, Some(0x0a02_0000))
        );
        assert_eq!(
            interval(0x0a01_0203, 32, 32),
            (0x0a01_0203, Some(0x0a01_0204))
        );
        assert_eq!(interval(0xffff_ff00, 24, 32), (0xffff_ff00, None));
        assert_eq!(interval(0x1234, 0, 32), (0, None));
        assert_eq!(interval(u128::MAX, 128, 128), (u128::MAX, None));
        assert_eq!(interval(0, 0, 128), (0, None));
        assert_eq!(interval(1 << 120, 8, 128), (1 << 120, Some(2 << 120)));
    }

    #[test]
    fn answers_are_read_as_acks_and_errors() {
        let mut datagram = Vec::new();
        for (seq, code) in [(2u32, 0i32), (3, -libc::ENOENT)] {
            // nlmsghdr, then nlmsgerr: the code and the header of the message it answers.
            datagram.extend(36u32.to_ne_bytes());
            datagram.extend(NLMSG_ERROR.to_ne_bytes());
            datagram.extend(0u16.to_ne_bytes());
            datagram.extend(seq.to_ne_bytes());
            datagram.extend(7u32.to_ne_bytes());
            datagram.extend(code.to_ne_bytes());
            datagram.extend([0; 16]);
        }
        assert_eq!(
            acks(&datagram).expect("well-formed"),
            [(2, 0), (3, -libc::ENOENT)]
        );
        assert!(acks(&datagram[..30]).is_err(), "a cut message is refused");
    }
}
