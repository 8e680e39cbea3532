//! A UDP load client that costs less CPU per query than the servers it measures: one thread,
//! `clients` sockets (distinct source ports), each keeping `window` queries in flight, woken
//! by `poll` only when answers are waiting. The answers waiting are read with one recvmmsg
//! and replaced by as many new queries with one sendmmsg (the daemon's own batch code). Every
//! query is timed (no separate verbose run).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use netbridge::kernel::{BATCH, Inbox, Outbox};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};

/// What one or more load runs measured.
#[derive(Default)]
pub struct Measured {
    /// Each answered query's latency, ns.
    latencies: Vec<u32>,
    seconds: f64,
    pub lost: u64,
    /// CPU seconds the load thread used.
    pub client_cpu: f64,
}

impl Measured {
    /// Adds another run's figures (of the same server).
    pub fn add(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.seconds += other.seconds;
        self.lost += other.lost;
        self.client_cpu += other.client_cpu;
    }

    pub fn answered(&self) -> usize {
        self.latencies.len()
    }

    pub fn qps(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds.max(1e-9)
    }

    /// The latency at percentile `p` (0–1), ms.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies[at]) / 1e6
    }
}

/// A query unanswered this long counts as lost, and its slot is reused.
const LOST_AFTER: Duration = Duration::from_secs(1);

struct Client {
    socket: UdpSocket,
    /// Send time (ns since the start, 0: free) by query ID.
    sent: Vec<u64>,
    next_id: u16,
    in_flight: usize,
}

/// Runs the load from a thread inside the namespace at `netns` against `server`, cycling
/// through `queries` (wire messages; each send gets its own ID) for `secs`.
pub fn run(
    netns: &Path,
    server: SocketAddr,
    queries: Vec<Vec<u8>>,
    clients: usize,
    window: usize,
    secs: f64,
) -> Measured {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&netns).expect("open the client's namespace");
        setns(&f, CloneFlags::CLONE_NEWNET).expect("enter the client's namespace");
        drive(server, &queries, clients, window, secs)
    })
    .join()
    .expect("load thread")
}

impl Client {
    /// Writes the next query, under an ID of its own, at the end of `out`, and notes when.
    fn next_query(&mut self, query: &[u8], now: u64, out: &mut Vec<u8>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let at = out.len();
        out.extend_from_slice(query);
        out[at..at + 2].copy_from_slice(&id.to_be_bytes());
        self.sent[usize::from(id)] = now.max(1);
        self.in_flight += 1;
    }

    /// Sends queries one by one until `window` are in flight (start, and after losses).
    fn fill<'q>(&mut self, queries: &mut impl Iterator<Item = &'q [u8]>, window: usize, now: u64) {
        let mut wire = Vec::with_capacity(512);
        while self.in_flight < window {
            wire.clear();
            let query = queries.next().unwrap_or_default();
            self.next_query(query, now, &mut wire);
            let _ = self.socket.send(&wire);
        }
    }

    /// Forgets queries unanswered for [`LOST_AFTER`]; how many.
    fn drop_overdue(&mut self, now: u64) -> u64 {
        let mut lost = 0;
        for slot in self.sent.iter_mut().filter(|s| **s != 0) {
            if now.saturating_sub(*slot) > LOST_AFTER.as_nanos() as u64 {
                *slot = 0;
                self.in_flight -= 1;
                lost += 1;
            }
        }
        lost
    }
}

fn drive(
    server: SocketAddr,
    queries: &[Vec<u8>],
    clients: usize,
    window: usize,
    secs: f64,
) -> Measured {
    assert!(window < 32_768, "IDs must not wrap onto queries in flight");
    let mut all: Vec<Client> = (0..clients)
        .map(|_| {
            let socket = UdpSocket::bind("0.0.0.0:0").expect("client socket");
            socket.connect(server).expect("connect");
            socket.set_nonblocking(true).expect("non-blocking");
            Client {
                socket,
                sent: vec![0; 65_536],
                next_id: 0,
                in_flight: 0,
            }
        })
        .collect();
    let mut cycle = queries.iter().map(Vec::as_slice).cycle();
    let (mut inbox, mut outbox) = (Inbox::new(4096), Outbox::default());
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut lost = 0u64;
    let cpu_before = thread_cpu();
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let end_ns = end.as_nanos() as u64;
    for c in &mut all {
        c.fill(&mut cycle, window, 1);
    }
    while start.elapsed() < end {
        let mut fds: Vec<PollFd> = all
            .iter()
            .map(|c| PollFd::new(c.socket.as_fd(), PollFlags::POLLIN))
            .collect();
        let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| ready > 0 && f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if !ready.contains(&true) {
            // Nothing came back for a while: drop what is overdue and refill the windows.
            let now = start.elapsed().as_nanos() as u64;
            for c in &mut all {
                lost += c.drop_overdue(now);
                c.fill(&mut cycle, window, now);
            }
            continue;
        }
        for (c, _) in all.iter_mut().zip(ready).filter(|(_, r)| *r) {
            // What has come, read at once; as many new queries sent at once.
            while let Ok(n) = inbox.receive(c.socket.as_fd()) {
                let now = start.elapsed().as_nanos() as u64;
                for (bytes, server) in inbox.datagrams() {
                    if bytes.len() < 12 {
                        continue;
                    }
                    let id = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                    let at = std::mem::replace(&mut c.sent[id], 0);
                    if at == 0 {
                        continue;
                    }
                    c.in_flight -= 1;
                    if now < end_ns {
                        latencies.push((now - at).min(u64::from(u32::MAX)) as u32);
                    }
                    let query = cycle.next().unwrap_or_default();
                    outbox.push(server, |out| c.next_query(query, now, out));
                }
                outbox.send(c.socket.as_fd());
                if n < BATCH {
                    break;
                }
            }
        }
    }
    Measured {
        latencies,
        seconds: start.elapsed().min(end).as_secs_f64(),
        lost,
        client_cpu: thread_cpu() - cpu_before,
    }
}

/// CPU seconds (user + system) the calling thread has used.
fn thread_cpu() -> f64 {
    cpu_seconds("/proc/thread-self/stat", 14)
}

/// CPU seconds a process has used (its threads together).
pub fn process_cpu(pid: u32) -> f64 {
    cpu_seconds(&format!("/proc/{pid}/stat"), 14)
}

/// CPU seconds the waited-for children of this process have used (for dnsperf).
pub fn children_cpu() -> f64 {
    cpu_seconds("/proc/self/stat", 16)
}

/// The sum of fields `field` and `field + 1` (1-based, as proc(5) numbers them) of a stat
/// file, clock ticks (USER_HZ, 100 on Linux) turned into seconds.
fn cpu_seconds(path: &str, field: usize) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The command name may hold spaces: count from the state field (3) after it.
    let rest = text.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let at = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (at(field) + at(field + 1)) / 100.0
}
