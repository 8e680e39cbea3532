//! A UDP load client that is not the bottleneck: one thread, `clients` sockets (distinct
//! source ports), each keeping `window` queries in flight, woken by `poll` only when answers
//! are waiting; every answer read is replaced by a new query at once. Per query it costs one
//! `recv` and one `send`, and it times every query (no separate verbose run).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};

/// What one load run measured.
pub struct Measured {
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
    /// CPU seconds the load thread used.
    pub client_cpu: f64,
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
    let cpu_before = thread_cpu();
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut buf = vec![0u8; 4096];
    let mut wire = Vec::with_capacity(512);
    let mut next_query = 0usize;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut lost = 0u64;
    let mut send = |c: &mut Client, now: u64| {
        wire.clear();
        wire.extend_from_slice(&queries[next_query % queries.len()]);
        next_query += 1;
        let id = c.next_id;
        c.next_id = c.next_id.wrapping_add(1);
        wire[..2].copy_from_slice(&id.to_be_bytes());
        if c.socket.send(&wire).is_ok() {
            c.sent[usize::from(id)] = now.max(1);
            c.in_flight += 1;
        }
    };
    for c in &mut all {
        for _ in 0..window {
            send(c, 1);
        }
    }
    loop {
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        let ready = {
            let mut fds: Vec<PollFd> = all
                .iter()
                .map(|c| PollFd::new(c.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            let n = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            (n > 0).then_some(ready)
        };
        let Some(ready) = ready else {
            // Nothing came back for a while: drop what is overdue and refill the windows.
            let now = start.elapsed().as_nanos() as u64;
            for c in &mut all {
                for slot in c.sent.iter_mut().filter(|s| **s != 0) {
                    if now.saturating_sub(*slot) > LOST_AFTER.as_nanos() as u64 {
                        *slot = 0;
                        c.in_flight -= 1;
                        lost += 1;
                    }
                }
                while c.in_flight < window {
                    send(c, now);
                }
            }
            continue;
        };
        for (c, _) in all.iter_mut().zip(ready).filter(|(_, r)| *r) {
            while let Ok(n) = c.socket.recv(&mut buf) {
                let now = start.elapsed().as_nanos() as u64;
                if n < 12 {
                    continue;
                }
                let id = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                let at = std::mem::replace(&mut c.sent[id], 0);
                if at == 0 {
                    continue;
                }
                c.in_flight -= 1;
                if now < end.as_nanos() as u64 {
                    latencies.push((now - at).min(u64::from(u32::MAX)) as u32);
                }
                send(c, now);
            }
        }
    }
    let elapsed = start.elapsed().min(end).as_secs_f64();
    let client_cpu = thread_cpu() - cpu_before;
    let qps = latencies.len() as f64 / elapsed;
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        f64::from(latencies[((latencies.len() as f64 - 1.0) * p).round() as usize]) / 1e6
    };
    Measured {
        qps,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        lost,
        client_cpu,
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
