//! The netbridge benchmark (issue 5): `cargo bench --bench netbridge`.
//!
//! It starts the release daemon inside a throwaway network namespace (`nbt-bench-<random>`,
//! entered with nsenter as the integration tests do) and drives it over its Unix socket with a
//! keep-alive HTTP/1.1 client of its own. In the same run it measures the kernel floor: the same
//! netlink work done in-process with `netbridge::kernel` (and the same nf_tables work with its
//! `Nftables`), in namespaces of its own, without HTTP or SQLite. Every figure is printed with
//! its ratio to the floor and the target of issue 5 §3. It reports; a missed target is not a
//! failure.
//!
//! Everything it makes is a namespace named `nbt-bench-<random>…` (the daemon's, the sandboxes
//! made through the API, the floor's) or a directory under the temp dir; all of it is removed at
//! the end, on panic (a drop guard) and on SIGINT/SIGTERM/SIGHUP. Needs root.
//!
//! Environment:
//! - `NETBRIDGE_BENCH_QUICK=1`: small counts and few repetitions (CI; well under 2 minutes);
//!   the teardown is of 100 containers instead of 1,000.
//! - `NETBRIDGE_BENCH_LOG_LEVEL`: the daemon's `--log-level` (default `info`, its default).
//! - `NETBRIDGE_BENCH_KEEP_LOG=PATH`: copy the daemon's log there before cleaning up.
//! - `NETBRIDGE_BENCH_PERF=PATH`: run `perf record -a -g` into PATH while the API is measured
//!   (from the first request to the restarts).
//! - `NETBRIDGE_BENCH_HOLD=SECS`: after the restarts, pause that long (the loaded daemon stays
//!   up for inspection: its PID is printed).
//! - `NETBRIDGE_BENCH_DAEMON=PATH`: the daemon binary to measure (default: this build's), to
//!   compare builds with the same floors.
//! - `NETBRIDGE_BENCH_ONLY=teardown`: only what the teardown table needs (the floor's veth
//!   delete, the concurrent disconnects in the empty daemon, the teardown and its batched
//!   floors), to compare teardown changes quickly; prints that table alone.
//! - `NETBRIDGE_BENCH_ONLY=ab` with `NETBRIDGE_BENCH_DAEMON_B=PATH`: two builds side by side
//!   (A is `NETBRIDGE_BENCH_DAEMON` or this build), each in its own namespace, one operation on
//!   each in turn, who goes first alternating; prints medians, p90 and the paired differences
//!   (see `netbridge/ab.rs`). `NETBRIDGE_BENCH_AB_ROUNDS=N` sets the rounds per level,
//!   `NETBRIDGE_BENCH_AB_GAP_MS` the pause after each operation (100).

use std::{
    fmt::Write as _,
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr},
    os::{fd::AsFd, unix::net::UnixStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Barrier, Mutex},
    thread,
    time::{Duration, Instant},
};

use netbridge::kernel::{
    Attachment, BridgeSpec, DOOMED_ALIAS, Firewall, Gateways, Kernel, MacvlanAttachment,
    MacvlanMode, Netns, NetworkRules, Nftables, remove_netns_etc,
};
use nix::{
    sched::{CloneFlags, setns},
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};

#[path = "netbridge/ab.rs"]
mod ab;

const NETNS_DIR: &str = "/run/netns";
/// Where the daemon writes its sandboxes' resolv.conf (its default `--netns-etc-dir`).
const NETNS_ETC_DIR: &str = "/etc/netns";

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    quick: bool,
    /// Networks already present when create / inspect / list / remove are measured.
    net_levels: Vec<usize>,
    /// Endpoints already present when connect / disconnect are measured.
    ep_levels: Vec<usize>,
    /// Repetitions of create+remove and connect+disconnect per level.
    reps: usize,
    /// Inspects and lists per repetition.
    reads_per_rep: usize,
    /// Concurrent connects to one network, and how often each wave is repeated.
    waves: Vec<(usize, usize)>,
    /// The loaded state for memory and start-up.
    load_networks: usize,
    load_endpoints: usize,
    /// Endpoints per background sandbox (each on a different network).
    per_sandbox: usize,
    startups: usize,
    /// Floor repetitions per half (one half before the daemon runs, one after).
    floor_reps: usize,
    /// Parallel clients that build the background state.
    builders: usize,
    /// Containers connected, then all disconnected, in the teardown measurement.
    teardown: usize,
    /// Pause after the background grew, before measuring: new interfaces keep the kernel busy
    /// for seconds (IPv6 DAD and router solicitations on the host ends, under the RTNL lock).
    settle: Duration,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("NETBRIDGE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Config {
                quick,
                net_levels: vec![0, 20],
                ep_levels: vec![0, 20],
                reps: 6,
                reads_per_rep: 3,
                waves: vec![(5, 1), (20, 1)],
                load_networks: 20,
                load_endpoints: 40,
                per_sandbox: 20,
                startups: 1,
                floor_reps: 4,
                builders: 2,
                teardown: 100,
                settle: Duration::from_millis(500),
            }
        } else {
            Config {
                quick,
                net_levels: vec![0, 100, 1000],
                ep_levels: vec![0, 100, 1000],
                reps: 60,
                reads_per_rep: 5,
                waves: vec![(20, 5), (100, 3)],
                load_networks: 1000,
                load_endpoints: 5000,
                per_sandbox: 100,
                startups: 3,
                floor_reps: 40,
                builders: 4,
                teardown: 1000,
                settle: Duration::from_secs(10),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clean-up: every namespace, process and directory the run makes is registered here first.

struct Registry {
    namespaces: Vec<String>,
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    namespaces: Vec::new(),
    pids: Vec::new(),
    dirs: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills the daemon (and perf), deletes every namespace and directory made. Idempotent.
fn clean_up() {
    let (pids, namespaces, dirs) = {
        let mut r = registry();
        (
            std::mem::take(&mut r.pids),
            std::mem::take(&mut r.namespaces),
            std::mem::take(&mut r.dirs),
        )
    };
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    for name in namespaces.iter().rev() {
        if let Err(e) = Netns::delete_named(Path::new(NETNS_DIR), name) {
            eprintln!("bench: cannot delete namespace {name}: {e}");
        }
        // Sandboxes are deleted here, not through the API, so their files are too.
        if let Err(e) = remove_netns_etc(Path::new(NETNS_ETC_DIR), name) {
            eprintln!("bench: cannot remove {NETNS_ETC_DIR}/{name}: {e}");
        }
    }
    for dir in dirs {
        let _ = fs::remove_dir_all(dir);
    }
}

struct CleanupGuard;

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        clean_up();
    }
}

/// Catches the termination signals on a thread of its own: clean up, exit. (Handlers, not a
/// blocked mask: children inherit a mask, and the daemon must still see its SIGTERM.)
fn clean_up_on_signals() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        runtime.block_on(async move {
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                let _ = ready_tx.send(());
                return;
            };
            let _ = ready_tx.send(());
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            eprintln!("bench: {name}, cleaning up");
            clean_up();
            std::process::exit(130);
        });
    });
    let _ = ready_rx.recv();
}

fn rand_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })[..n]
        .to_string()
}

/// A named namespace (`lo` up) under /run/netns, registered for clean-up before it exists.
fn make_namespace(name: &str) -> Netns {
    registry().namespaces.push(name.to_string());
    Netns::create_named(Path::new(NETNS_DIR), name)
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Debug, Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1e3);
    }

    fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Median (mean of the middle two for an even count), in ms.
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    fn p95(&self) -> f64 {
        self.quantile(0.95)
    }

    /// The `q` quantile (nearest rank), in ms.
    fn quantile(&self, q: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 over the Unix socket, keep-alive

struct Resp {
    status: u16,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Client {
    socket: PathBuf,
    conn: Option<BufReader<UnixStream>>,
}

impl Client {
    fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_owned(),
            conn: None,
        }
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Resp> {
        let body = body.map(Value::to_string);
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        match &body {
            Some(b) => {
                let _ = write!(
                    req,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    b.len()
                );
            }
            None if method != "GET" => req.push_str("Content-Length: 0\r\n"),
            None => {}
        }
        req.push_str("\r\n");
        req.push_str(body.as_deref().unwrap_or(""));
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = UnixStream::connect(&self.socket)?;
                s.set_read_timeout(Some(Duration::from_secs(600)))?;
                self.conn = Some(BufReader::new(s));
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let sent = conn.get_mut().write_all(req.as_bytes());
            match sent.and_then(|()| read_response(conn)) {
                Ok((resp, close)) => {
                    if close {
                        self.conn = None;
                    }
                    return Ok(resp);
                }
                // An idle keep-alive connection the server closed: the request never arrived.
                Err(e) if reused && attempt == 0 && stale(&e) => self.conn = None,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Err(io::Error::other("no connection"))
    }

    /// A request that must answer `want`; returns the response and its latency.
    fn must(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> (Resp, Duration) {
        let started = Instant::now();
        let resp = self
            .request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let took = started.elapsed();
        assert_eq!(
            resp.status, want,
            "{method} {path} {body:?}: {} {}",
            resp.status, resp.body
        );
        (resp, took)
    }
}

fn stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// Reads one response; the flag says the server will close the connection.
fn read_response(r: &mut BufReader<UnixStream>) -> io::Result<(Resp, bool)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the status line",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("headers cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("chunk size"))?;
            if size == 0 {
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok((
        Resp {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        close,
    ))
}

// ---------------------------------------------------------------------------------------------
// The daemon

struct Daemon {
    ns: String,
    socket: PathBuf,
    db: PathBuf,
    log: PathBuf,
    log_level: String,
    /// The daemon binary (`NETBRIDGE_BENCH_DAEMON`, or this build's).
    binary: String,
    child: Option<Child>,
}

impl Daemon {
    fn new(ns: &str, dir: &Path) -> Daemon {
        Daemon {
            ns: ns.to_string(),
            socket: dir.join("netbridge.sock"),
            db: dir.join("state/netbridge.db"),
            log: dir.join("daemon.log"),
            log_level: std::env::var("NETBRIDGE_BENCH_LOG_LEVEL")
                .unwrap_or_else(|_| "info".to_string()),
            binary: std::env::var("NETBRIDGE_BENCH_DAEMON")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_netbridge").to_string()),
            child: None,
        }
    }

    /// Starts the release binary inside the namespace; returns the time until `/_ping`
    /// answered 200 (process start, store, start-up reconcile, firewall, listener).
    fn start(&mut self) -> Duration {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log file");
        let started = Instant::now();
        let child = Command::new("nsenter")
            .arg(format!("--net={NETNS_DIR}/{}", self.ns))
            .arg("--")
            .arg(&self.binary)
            .arg("serve")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--db")
            .arg(&self.db)
            .args(["--log-level", &self.log_level])
            // The daemon's namespace is its own: a /8 leaves room for thousands of networks.
            .args(["--default-address-pool", "base=10.0.0.0/8,size=24"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn nsenter netbridge");
        // nsenter execs the daemon (no --fork): the child's PID is the daemon's.
        registry().pids.push(child.id());
        self.child = Some(child);
        let deadline = started + Duration::from_secs(600);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("netbridge exited early ({status}):\n{}", self.log_tail(40));
            }
            if let Ok(r) = Client::new(&self.socket).request("GET", "/_ping", None)
                && r.status == 200
            {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "netbridge did not come up:\n{}",
                self.log_tail(40)
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGTERM, and wait for the exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("netbridge did not stop on SIGTERM:\n{}", self.log_tail(40));
            }
            thread::sleep(Duration::from_millis(5));
        }
        registry().pids.retain(|p| *p != pid);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("daemon running")
    }

    /// VmRSS, VmHWM, RssAnon and RssFile, in KiB.
    fn memory(&self) -> Mem {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Mem {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }

    /// The `n` mappings holding most resident memory, from /proc/PID/smaps.
    fn largest_mappings(&self, n: usize) -> String {
        let smaps = fs::read_to_string(format!("/proc/{}/smaps", self.pid())).unwrap_or_default();
        let mut maps: Vec<(u64, String)> = Vec::new();
        let mut name = String::new();
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                // "start-end perms offset dev inode [path]"
                name = line
                    .split_whitespace()
                    .nth(5)
                    .unwrap_or("[anon]")
                    .to_string();
                name = format!("{name} @{}", first.split('-').next().unwrap_or(""));
            } else if first == "Rss:" {
                let kib = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                maps.push((kib, name.clone()));
            }
        }
        maps.sort_by_key(|m| std::cmp::Reverse(m.0));
        maps.iter()
            .take(n)
            .map(|(kib, name)| format!("{name} {:.1} MiB", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if thread::panicking() {
            let kept = std::env::temp_dir().join("netbridge-bench-failed.log");
            let _ = fs::copy(&self.log, &kept);
            eprintln!(
                "--- netbridge log ({}), last lines; all of it in {} ---\n{}",
                self.ns,
                kept.display(),
                self.log_tail(20)
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A reading of /proc/PID/status, in KiB.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    /// Heap, stacks: what the daemon allocated.
    anon: u64,
    /// Pages of the binary and libraries that were touched.
    file: u64,
}

// ---------------------------------------------------------------------------------------------
// The kernel floor: the daemon's netlink (and nf_tables) work, in-process, in namespaces of our
// own

#[derive(Default)]
struct Floor {
    bridge_create: Samples,
    bridge_delete: Samples,
    fw_add: Samples,
    fw_remove: Samples,
    attach: Samples,
    detach: Samples,
    /// A macvlan born in the namespace (address, up, route), then deleted inside it.
    macvlan_attach: Samples,
    macvlan_detach: Samples,
}

impl Floor {
    fn extend(&mut self, o: &Floor) {
        self.bridge_create.extend(&o.bridge_create);
        self.bridge_delete.extend(&o.bridge_delete);
        self.fw_add.extend(&o.fw_add);
        self.fw_remove.extend(&o.fw_remove);
        self.attach.extend(&o.attach);
        self.detach.extend(&o.detach);
        self.macvlan_attach.extend(&o.macvlan_attach);
        self.macvlan_detach.extend(&o.macvlan_detach);
    }
}

/// What one floor measurement does, and where.
struct FloorRun<'a> {
    /// The namespace standing in for the daemon's: the floor's own, or the daemon's itself
    /// (then nothing of the daemon's is touched: our links carry no `netbridge:` mark and are
    /// gone before the next request).
    host: &'a str,
    /// The namespace standing in for a sandbox.
    container: &'a str,
    /// Bridge create+delete repetitions (with firewall add+remove if `firewall`).
    bridges: usize,
    /// Attach+detach repetitions.
    attaches: usize,
    firewall: bool,
    /// Tells the names of one run from another's.
    round: usize,
}

/// The kernel floor: `bridges` times (bridge create + address + up, [firewall add, firewall
/// remove,] bridge delete) and `attaches` times (attach, detach).
fn measure_floor(run: &FloorRun<'_>) -> Floor {
    let host_ns =
        Netns::open(&Path::new(NETNS_DIR).join(run.host)).expect("open the floor namespace");
    let container_ns =
        Netns::open(&Path::new(NETNS_DIR).join(run.container)).expect("open the floor container");
    let (bridges, attaches, firewall, round) = (run.bridges, run.attaches, run.firewall, run.round);
    // As long as the daemon's marks ("netbridge:" + 64 hex), but not one of them.
    let alias = format!("nbt-bench-floor:{}", "f".repeat(58));
    let worker = thread::spawn(move || {
        // A thread of its own, never to leave this namespace: netlink sockets and `nft`
        // children opened from it live there.
        setns(host_ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("enter the floor namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let kernel = Kernel::connect().expect("netlink");
            let nft = firewall.then(Nftables::new);
            if let Some(nft) = &nft {
                nft.apply_all(&[])
                    .expect("nft ruleset in the floor namespace");
            }
            let mut f = Floor::default();
            for r in 0..bridges {
                let name = format!("nbf{round}b{r}");
                let third = u8::try_from(r % 250).unwrap_or(0);
                let spec = BridgeSpec {
                    name: name.clone(),
                    mtu: None,
                    alias: alias.clone(),
                    addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 98, third, 1)), 24)],
                };
                let rules = NetworkRules {
                    bridge: name.clone(),
                    subnets: vec![(IpAddr::V4(Ipv4Addr::new(10, 98, third, 0)), 24)],
                    internal: false,
                    icc: true,
                    masquerade: true,
                };
                let t = Instant::now();
                kernel.create_bridge(&spec).await.expect("create bridge");
                f.bridge_create.push(t.elapsed());
                if let Some(nft) = &nft {
                    let t = Instant::now();
                    nft.add_network(&rules).expect("firewall add");
                    f.fw_add.push(t.elapsed());
                    let t = Instant::now();
                    nft.remove_network(&rules).expect("firewall remove");
                    f.fw_remove.push(t.elapsed());
                }
                let t = Instant::now();
                kernel.delete_link(&name).await.expect("delete bridge");
                f.bridge_delete.push(t.elapsed());
            }
            if attaches == 0 {
                return f;
            }
            let bridge = format!("nbf{round}a");
            let index = kernel
                .create_bridge(&BridgeSpec {
                    name: bridge.clone(),
                    mtu: None,
                    alias: alias.clone(),
                    addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)), 24)],
                })
                .await
                .expect("attach bridge");
            for r in 0..attaches {
                let host_name = format!("veth{round}{r:06x}");
                let last = u8::try_from(2 + r % 250).unwrap_or(2);
                let a = Attachment {
                    host_name: host_name.clone(),
                    container_name: None,
                    bridge_index: index,
                    mtu: None,
                    mac: [0x02, 0x42, 0x0a, 0x63, 0x00, last],
                    alias: alias.clone(),
                    addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 99, 0, last)), 24)],
                    gateway_v4: Some(Ipv4Addr::new(10, 99, 0, 1)),
                    gateway_v6: None,
                    sysctls: Vec::new(),
                };
                let t = Instant::now();
                kernel.attach(&container_ns, &a).await.expect("attach");
                f.attach.push(t.elapsed());
                let t = Instant::now();
                kernel.detach(&host_name).await.expect("detach");
                f.detach.push(t.elapsed());
            }
            kernel.delete_link(&bridge).await.expect("delete bridge");
            // Macvlans of a parent that has carrier and leads nowhere, as a parent-less
            // macvlan network's.
            let (parent, peer) = (format!("nbf{round}p"), format!("nbf{round}q"));
            let parent_index = kernel
                .create_isolated_pair(&parent, &peer, &alias)
                .await
                .expect("macvlan parent");
            for r in 0..attaches {
                let last = u8::try_from(2 + r % 250).unwrap_or(2);
                let a = MacvlanAttachment {
                    parent_index,
                    mode: MacvlanMode::Bridge,
                    container_name: None,
                    mtu: None,
                    mac: [0x02, 0x42, 0x0a, 0x62, 0x00, last],
                    alias: alias.clone(),
                    addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 98, 0, last)), 24)],
                    sysctls: Vec::new(),
                    gateways: Gateways {
                        v4: Some(Ipv4Addr::new(10, 98, 0, 1)),
                        v6: None,
                    },
                };
                let (go, ready) = tokio::sync::oneshot::channel();
                let _ = go.send(true);
                let t = Instant::now();
                kernel
                    .attach_macvlan(&container_ns, &a, ready)
                    .await
                    .expect("attach macvlan");
                f.macvlan_attach.push(t.elapsed());
                let t = Instant::now();
                kernel
                    .delete_marked_in(&container_ns, &alias)
                    .await
                    .expect("detach macvlan");
                f.macvlan_detach.push(t.elapsed());
            }
            kernel
                .delete_link(&parent)
                .await
                .expect("delete macvlan parent");
            f
        })
    });
    match worker.join() {
        Ok(f) => f,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Times, in-process and read-only, kernel reads in the daemon's namespace `ns`: a dump of every
/// link (`Kernel::links`, what start-up and reconcile make), the host prefixes a create asks
/// for (`Kernel::reserved_prefixes`, kept current from notifications), and the same prefixes
/// dumped (`Kernel::dump_reserved_prefixes`, what every create used to cost).
fn dumps_in(ns: &str, reps: usize) -> (Samples, Samples, Samples) {
    let ns = Netns::open(&Path::new(NETNS_DIR).join(ns)).expect("open the daemon's namespace");
    let worker = thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("enter the daemon's namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let kernel = Kernel::connect().expect("netlink");
            let (mut links, mut watched, mut dumped) =
                (Samples::default(), Samples::default(), Samples::default());
            // The first answer dumps; the ones measured come from notifications.
            kernel.reserved_prefixes().await.expect("host prefixes");
            for _ in 0..reps {
                let t = Instant::now();
                kernel.links().await.expect("link dump");
                links.push(t.elapsed());
                let t = Instant::now();
                kernel.reserved_prefixes().await.expect("host prefixes");
                watched.push(t.elapsed());
                let t = Instant::now();
                kernel.dump_reserved_prefixes().await.expect("route dump");
                dumped.push(t.elapsed());
            }
            (links, watched, dumped)
        })
    });
    match worker.join() {
        Ok(d) => d,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The teardown floors for `n` veth pairs, in-process in the floor's namespaces: each is
/// attached first (not timed), then all are torn down and deleted in one kernel batch.
#[derive(Clone, Copy)]
struct BatchFloor {
    n: usize,
    /// `n` full cut-offs (host end down, off the bridge, into the doomed group; container end
    /// down and renamed inside its namespace), then one group delete: what a teardown of `n`
    /// endpoints must make the kernel do, at the least.
    full: Duration,
    /// `n` host ends into the group, then one group delete: the kernel's batch alone.
    kernel: Duration,
    /// The group delete alone (of the `full` run): one grace period for all `n`.
    reap: Duration,
}

/// Measures [`BatchFloor`] for `n` links with the floor's host namespace and a container one.
fn measure_batch_floor(host: &str, container: &str, n: usize, round: usize) -> BatchFloor {
    let host_ns = Netns::open(&Path::new(NETNS_DIR).join(host)).expect("open the floor namespace");
    let container_ns =
        Netns::open(&Path::new(NETNS_DIR).join(container)).expect("open the floor container");
    let alias = format!("nbt-bench-floor:{}", "f".repeat(58));
    let worker = thread::spawn(move || {
        setns(host_ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("enter the floor namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let kernel = Kernel::connect().expect("netlink");
            let bridge = format!("nbt{round}t");
            let index = kernel
                .create_bridge(&BridgeSpec {
                    name: bridge.clone(),
                    mtu: None,
                    alias: alias.clone(),
                    addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 97, 0, 1)), 16)],
                })
                .await
                .expect("teardown floor bridge");
            let attach_all = |tag: char| {
                let (kernel, alias, ns) = (&kernel, &alias, &container_ns);
                async move {
                    let mut made = Vec::new();
                    for r in 0..n {
                        let host_name = format!("veth{round}{tag}{r:05x}");
                        let (hi, lo) = (
                            u8::try_from(r / 250).unwrap_or(0),
                            u8::try_from(2 + r % 250).unwrap_or(2),
                        );
                        let a = Attachment {
                            host_name: host_name.clone(),
                            container_name: None,
                            bridge_index: index,
                            mtu: None,
                            mac: [0x02, 0x42, 0x0a, 0x61, hi, lo],
                            alias: alias.clone(),
                            addresses: vec![(IpAddr::V4(Ipv4Addr::new(10, 97, hi, lo)), 16)],
                            gateway_v4: None,
                            gateway_v6: None,
                            sysctls: Vec::new(),
                        };
                        let (inner, _) = kernel.attach(ns, &a).await.expect("attach");
                        made.push((host_name, inner));
                    }
                    made
                }
            };
            let made = attach_all('f').await;
            let t = Instant::now();
            for (host_name, inner) in &made {
                kernel
                    .cut_off(host_name, Some(&container_ns), inner)
                    .await
                    .expect("cut off");
            }
            let r = Instant::now();
            kernel.reap_doomed().await.expect("reap");
            let (full, reap) = (t.elapsed(), r.elapsed());
            let made = attach_all('k').await;
            let t = Instant::now();
            for (host_name, _) in &made {
                kernel.cut_off(host_name, None, "").await.expect("cut off");
            }
            kernel.reap_doomed().await.expect("reap");
            let batch = t.elapsed();
            kernel.delete_link(&bridge).await.expect("delete bridge");
            BatchFloor {
                n,
                full,
                kernel: batch,
                reap,
            }
        })
    });
    match worker.join() {
        Ok(f) => f,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Waits, in-process in the daemon's namespace `ns`, until no link there awaits deletion;
/// returns when that was first seen (polled every 2 ms).
fn wait_until_reaped(ns: &str) -> Instant {
    let ns = Netns::open(&Path::new(NETNS_DIR).join(ns)).expect("open the daemon's namespace");
    let worker = thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("enter the daemon's namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let kernel = Kernel::connect().expect("netlink");
            loop {
                let links = kernel.links().await.expect("link dump");
                if !links
                    .iter()
                    .any(|l| l.alias.as_deref() == Some(DOOMED_ALIAS))
                {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    });
    match worker.join() {
        Ok(t) => t,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements over the API

struct Bench {
    cfg: Config,
    prefix: String,
    socket: PathBuf,
    client: Client,
    started: Instant,
    /// Background networks made so far (`bg<N>`).
    networks: usize,
    /// Background sandboxes made so far, and endpoints on them.
    bg_sandboxes: usize,
    endpoints: usize,
    /// Sandboxes that measured connects use, and those of the concurrent waves.
    measure_sandboxes: Vec<String>,
    wave_sandboxes: Vec<String>,
    /// The floor's sandbox, for floors measured in the daemon's namespace.
    floor_container: String,
    /// Floors measured so far (for their names).
    floor_rounds: usize,
}

struct NetOps {
    create: Samples,
    inspect: Samples,
    list: Samples,
    remove: Samples,
    /// In-process, in the daemon's namespace (see `dumps_in`): a link dump, the host prefixes
    /// as a create gets them, and the same prefixes dumped. Dumps grow with the networks.
    link_dump: Samples,
    route_dump: Samples,
    prefix_dump: Samples,
    /// Bridge create/delete floor in the daemon's namespace, as it is at this level.
    floor_here: Floor,
}

struct EpOps {
    connect: Samples,
    disconnect: Samples,
    /// The same to a parent-less macvlan network.
    macvlan_connect: Samples,
    macvlan_disconnect: Samples,
    /// Attach/detach floor in the daemon's namespace, as it is at this level.
    floor_here: Floor,
}

struct Wave {
    n: usize,
    /// Wall time of each wave, first request sent to last answer.
    wall: Samples,
    /// Every single connect's latency.
    latency: Samples,
    disconnect_wall: Samples,
}

/// Unrecorded repetitions before each measured series.
const WARMUP: usize = 2;

/// The network that every measured connect goes to.
const MNET: &str = "bench-measure";
/// The macvlan network (without parent: an isolated one of its own) of the macvlan rows.
const MVNET: &str = "bench-macvlan";

impl Bench {
    /// A bench over the daemon at `socket`, whose namespaces are named after `prefix`.
    fn new(cfg: Config, prefix: &str, socket: &Path, started: Instant) -> Bench {
        Bench {
            prefix: prefix.to_string(),
            socket: socket.to_owned(),
            client: Client::new(socket),
            started,
            networks: 0,
            bg_sandboxes: 0,
            endpoints: 0,
            measure_sandboxes: Vec::new(),
            wave_sandboxes: Vec::new(),
            floor_container: String::new(),
            floor_rounds: 0,
            cfg,
        }
    }

    /// The network measured connects go to, and the sandboxes that make them.
    fn measuring_setup(&mut self) {
        Bench::create_network(&mut self.client, MNET);
        for i in 0..4 {
            let name = format!("{}-m{i}", self.prefix);
            self.sandbox(&name);
            self.measure_sandboxes.push(name);
        }
    }

    fn progress(&self, what: &str) {
        eprintln!("[{:7.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    fn sandbox(&mut self, name: &str) {
        // Registered first, so a half-made one is removed too.
        registry().namespaces.push(name.to_string());
        self.client.must(
            "POST",
            &format!("/containers/create?name={name}"),
            Some(&json!({})),
            201,
        );
    }

    fn create_network(client: &mut Client, name: &str) -> (String, Duration) {
        let (r, took) = client.must(
            "POST",
            "/networks/create",
            Some(&json!({ "Name": name })),
            201,
        );
        let id = r.json()["Id"].as_str().expect("Id").to_string();
        (id, took)
    }

    /// Background networks up to `n`.
    fn grow_networks(&mut self, n: usize) {
        if n <= self.networks {
            return;
        }
        self.progress(&format!("growing to {n} networks"));
        while self.networks < n {
            let name = format!("bg{:05}", self.networks);
            Bench::create_network(&mut self.client, &name);
            self.networks += 1;
        }
        thread::sleep(self.cfg.settle);
    }

    /// Background endpoints up to `n` (a multiple of `per_sandbox`): each new sandbox joins
    /// `per_sandbox` consecutive background networks, so they spread evenly over all of them.
    fn grow_endpoints(&mut self, n: usize) {
        let per = self.cfg.per_sandbox.min(self.networks).max(1);
        assert!(
            self.networks >= per,
            "endpoints need background networks first"
        );
        if n <= self.endpoints {
            return;
        }
        self.progress(&format!(
            "growing to {n} endpoints ({per} per sandbox, over {} networks)",
            self.networks
        ));
        let mut jobs = Vec::new();
        while self.endpoints + jobs.len() * per < n {
            let j = self.bg_sandboxes;
            let name = format!("{}-b{j}", self.prefix);
            self.sandbox(&name);
            self.bg_sandboxes += 1;
            let nets: Vec<String> = (0..per)
                .map(|k| format!("bg{:05}", (j * per + k) % self.networks))
                .collect();
            jobs.push((name, nets));
        }
        let added = jobs.len() * per;
        let queue = Arc::new(Mutex::new(jobs));
        let workers: Vec<_> = (0..self.cfg.builders)
            .map(|_| {
                let queue = queue.clone();
                let socket = self.socket.clone();
                thread::spawn(move || {
                    let mut client = Client::new(&socket);
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                        let Some((sandbox, nets)) = job else { break };
                        for net in nets {
                            client.must(
                                "POST",
                                &format!("/networks/{net}/connect"),
                                Some(&json!({ "Container": sandbox })),
                                200,
                            );
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            if let Err(panic) = w.join() {
                std::panic::resume_unwind(panic);
            }
        }
        self.endpoints += added;
        thread::sleep(self.cfg.settle);
    }

    fn network_ops(&mut self) -> NetOps {
        let mut ops = NetOps {
            create: Samples::default(),
            inspect: Samples::default(),
            list: Samples::default(),
            remove: Samples::default(),
            link_dump: Samples::default(),
            route_dump: Samples::default(),
            prefix_dump: Samples::default(),
            floor_here: Floor::default(),
        };
        self.progress(&format!(
            "network create/inspect/list/remove with {} networks present",
            self.networks
        ));
        // Warm-up, not recorded: caches, the allocator, SQLite's statement cache.
        for w in 0..WARMUP {
            let (id, _) = Bench::create_network(&mut self.client, &format!("w{w}"));
            self.client
                .must("DELETE", &format!("/networks/{id}"), None, 204);
        }
        for r in 0..self.cfg.reps {
            let (id, took) = Bench::create_network(&mut self.client, &format!("m{r}"));
            ops.create.push(took);
            let (_, took) = self
                .client
                .must("DELETE", &format!("/networks/{id}"), None, 204);
            ops.remove.push(took);
        }
        // Reads, each in a series of its own, of a network made for them.
        let (id, _) = Bench::create_network(&mut self.client, "reads");
        let reads = self.cfg.reps * self.cfg.reads_per_rep;
        for i in 0..WARMUP + reads {
            let (_, took) = self
                .client
                .must("GET", &format!("/networks/{id}"), None, 200);
            if i >= WARMUP {
                ops.inspect.push(took);
            }
        }
        for i in 0..WARMUP + reads {
            let (_, took) = self.client.must("GET", "/networks", None, 200);
            if i >= WARMUP {
                ops.list.push(took);
            }
        }
        self.client
            .must("DELETE", &format!("/networks/{id}"), None, 204);
        (ops.link_dump, ops.route_dump, ops.prefix_dump) =
            dumps_in(&self.prefix, self.cfg.reps.min(20));
        ops.floor_here = self.floor_here(self.cfg.floor_reps.min(10), 0);
        ops
    }

    /// The floor measured in the daemon's namespace as it is now (no firewall: that would
    /// touch the daemon's table).
    fn floor_here(&mut self, bridges: usize, attaches: usize) -> Floor {
        self.floor_rounds += 1;
        measure_floor(&FloorRun {
            host: &self.prefix,
            container: &self.floor_container,
            bridges,
            attaches,
            firewall: false,
            round: self.floor_rounds,
        })
    }

    fn endpoint_ops(&mut self) -> EpOps {
        let mut ops = EpOps {
            connect: Samples::default(),
            disconnect: Samples::default(),
            macvlan_connect: Samples::default(),
            macvlan_disconnect: Samples::default(),
            floor_here: Floor::default(),
        };
        self.progress(&format!(
            "connect/disconnect with {} endpoints on {} networks present",
            self.endpoints, self.networks
        ));
        (ops.connect, ops.disconnect) = self.connect_disconnect(MNET);
        (ops.macvlan_connect, ops.macvlan_disconnect) = self.connect_disconnect(MVNET);
        ops.floor_here = self.floor_here(0, self.cfg.reps.min(20));
        ops
    }

    /// Measured connects and disconnects of the measuring sandboxes to `net`, in turn.
    fn connect_disconnect(&mut self, net: &str) -> (Samples, Samples) {
        let (mut connects, mut disconnects) = (Samples::default(), Samples::default());
        for r in 0..WARMUP + self.cfg.reps {
            let sandbox = self.measure_sandboxes[r % self.measure_sandboxes.len()].clone();
            let body = json!({ "Container": sandbox });
            let path = |verb: &str| format!("/networks/{net}/{verb}");
            let (_, took) = self.client.must("POST", &path("connect"), Some(&body), 200);
            if r >= WARMUP {
                connects.push(took);
            }
            let (_, took) = self
                .client
                .must("POST", &path("disconnect"), Some(&body), 200);
            if r >= WARMUP {
                disconnects.push(took);
            }
        }
        (connects, disconnects)
    }

    /// `n` clients connect `n` sandboxes to one network at once; then all disconnect at once.
    fn waves(&mut self) -> Vec<Wave> {
        let most = self.cfg.waves.iter().map(|w| w.0).max().unwrap_or(0);
        while self.wave_sandboxes.len() < most {
            let name = format!("{}-c{}", self.prefix, self.wave_sandboxes.len());
            self.sandbox(&name);
            self.wave_sandboxes.push(name);
        }
        let mut out = Vec::new();
        for &(n, reps) in &self.cfg.waves.clone() {
            self.progress(&format!(
                "{n} concurrent connects to one network, ×{reps} ({} networks, {} endpoints present)",
                self.networks, self.endpoints
            ));
            let mut wave = Wave {
                n,
                wall: Samples::default(),
                latency: Samples::default(),
                disconnect_wall: Samples::default(),
            };
            for _ in 0..reps {
                let sandboxes = &self.wave_sandboxes[..n];
                let (wall, lat) = concurrently(&self.socket, sandboxes, "connect");
                wave.wall.push(wall);
                wave.latency.extend(&lat);
                let (wall, _) = concurrently(&self.socket, sandboxes, "disconnect");
                wave.disconnect_wall.push(wall);
            }
            out.push(wave);
        }
        out
    }
}

/// One teardown: `n` containers disconnected by [`TEARDOWN_CLIENTS`] clients at once.
struct Teardown {
    n: usize,
    state: String,
    /// First request sent to last answer.
    answered: Duration,
    /// First request sent to the last link deleted.
    deleted: Duration,
}

/// The network of the teardown's containers.
const TNET: &str = "bench-teardown";

/// Clients that disconnect the teardown's containers, side by side.
const TEARDOWN_CLIENTS: usize = 8;

impl Bench {
    /// Connects `n` new sandboxes to the measurement network, then disconnects them all, from
    /// [`TEARDOWN_CLIENTS`] clients, and waits until every link is deleted. The sandboxes are
    /// removed afterwards, unmeasured.
    fn teardown(&mut self, n: usize) -> Teardown {
        self.progress(&format!("teardown of {n} containers: making them"));
        let names: Vec<String> = (0..n).map(|i| format!("{}-t{i}", self.prefix)).collect();
        for name in &names {
            self.sandbox(name);
        }
        // A network of its own, with room for them all (the measurement network is a /24).
        let body = json!({ "Name": TNET, "IPAM": { "Config": [{ "Subnet": "172.29.0.0/21" }] } });
        self.client
            .must("POST", "/networks/create", Some(&body), 201);
        self.each_in_parallel(&names, |c, name| {
            let body = json!({ "Container": name });
            c.must(
                "POST",
                &format!("/networks/{TNET}/connect"),
                Some(&body),
                200,
            );
        });
        thread::sleep(self.cfg.settle);
        let state = format!(
            "{} endpoints, {} networks",
            self.endpoints + n,
            self.networks
        );
        self.progress(&format!("teardown of {n} containers ({state})"));
        let started = Instant::now();
        self.each_in_parallel(&names, |c, name| {
            let body = json!({ "Container": name });
            c.must(
                "POST",
                &format!("/networks/{TNET}/disconnect"),
                Some(&body),
                200,
            );
        });
        let answered = started.elapsed();
        let deleted = wait_until_reaped(&self.prefix) - started;
        self.each_in_parallel(&names, |c, name| {
            c.must("DELETE", &format!("/containers/{name}"), None, 204);
        });
        self.client
            .must("DELETE", &format!("/networks/{TNET}"), None, 204);
        Teardown {
            n,
            state,
            answered,
            deleted,
        }
    }

    /// Runs `work` on every name, [`TEARDOWN_CLIENTS`] clients side by side, each with its own
    /// share and connection.
    fn each_in_parallel(&self, names: &[String], work: impl Fn(&mut Client, &str) + Sync) {
        let per = names.len().div_ceil(TEARDOWN_CLIENTS).max(1);
        thread::scope(|scope| {
            for share in names.chunks(per) {
                let (socket, work) = (&self.socket, &work);
                scope.spawn(move || {
                    let mut client = Client::new(socket);
                    for name in share {
                        work(&mut client, name);
                    }
                });
            }
        });
    }
}

/// Each sandbox's request on its own connection, released together; returns the wall time
/// (first sent to last answered) and each request's latency.
fn concurrently(socket: &Path, sandboxes: &[String], verb: &str) -> (Duration, Samples) {
    let barrier = Arc::new(Barrier::new(sandboxes.len() + 1));
    let threads: Vec<_> = sandboxes
        .iter()
        .map(|s| {
            let barrier = barrier.clone();
            let mut client = Client::new(socket);
            let body = json!({ "Container": s });
            let path = format!("/networks/{MNET}/{verb}");
            thread::spawn(move || {
                // Connected and warm before the start.
                client.must("GET", "/_ping", None, 200);
                barrier.wait();
                let t0 = Instant::now();
                let (_, _) = client.must("POST", &path, Some(&body), 200);
                (t0, Instant::now())
            })
        })
        .collect();
    barrier.wait();
    let mut spans = Vec::new();
    for t in threads {
        match t.join() {
            Ok(span) => spans.push(span),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let first = spans.iter().map(|s| s.0).min().expect("a request");
    let last = spans.iter().map(|s| s.1).max().expect("a request");
    let mut lat = Samples::default();
    for (a, b) in &spans {
        lat.push(*b - *a);
    }
    (last - first, lat)
}

// ---------------------------------------------------------------------------------------------
// The report

struct Row {
    op: String,
    state: String,
    median: String,
    p95: String,
    n: String,
    floor: String,
    ratio: String,
    target: String,
    met: &'static str,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn row(op: &str, state: &str, s: &Samples) -> Row {
    Row {
        op: op.to_string(),
        state: state.to_string(),
        median: ms(s.median()),
        p95: ms(s.p95()),
        n: s.len().to_string(),
        floor: "—".to_string(),
        ratio: "—".to_string(),
        target: "—".to_string(),
        met: "",
    }
}

fn print_table(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!("| operation | state | median ms | p95 ms | n | floor ms | ratio | target | met |");
    println!("|---|---|---:|---:|---:|---:|---:|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.op, r.state, r.median, r.p95, r.n, r.floor, r.ratio, r.target, r.met
        );
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, kernel {}", kernel.trim())
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the netbridge benchmark needs root (namespaces, bridges, nftables)");
        std::process::exit(2);
    }
    let cfg = Config::from_env();
    let run = rand_hex(6);
    let prefix = format!("nbt-bench-{run}");
    let dir = std::env::temp_dir().join(format!("netbridge-{prefix}"));
    registry().dirs.push(dir.clone());
    clean_up_on_signals();
    let guard = CleanupGuard;
    fs::create_dir_all(&dir).expect("temp dir");
    let started = Instant::now();
    let load_before = load_average();
    eprintln!(
        "netbridge benchmark ({} mode), namespaces {prefix}…, {}, load {load_before}",
        if cfg.quick { "quick" } else { "full" },
        machine()
    );

    if std::env::var("NETBRIDGE_BENCH_ONLY").is_ok_and(|v| v == "ab") {
        ab::run(cfg, &prefix, &dir, started);
        drop(guard);
        return;
    }

    // The floor, first half.
    let (floor_host, floor_container) = (format!("{prefix}-fh"), format!("{prefix}-fc"));
    make_namespace(&floor_host);
    make_namespace(&floor_container);
    eprintln!(
        "[{:7.1}s] kernel floor (first half)",
        started.elapsed().as_secs_f64()
    );
    let floor_reps = cfg.floor_reps;
    let clean = |round| FloorRun {
        host: &floor_host,
        container: &floor_container,
        bridges: floor_reps,
        attaches: floor_reps,
        firewall: true,
        round,
    };
    let first = measure_floor(&clean(0));

    // The daemon, in a namespace of its own.
    make_namespace(&prefix);
    let mut daemon = Daemon::new(&prefix, &dir);
    let first_start = daemon.start();
    let mut client = Client::new(&daemon.socket);
    for _ in 0..3 {
        client.must("GET", "/_ping", None, 200);
        client.must("GET", "/version", None, 200);
    }
    thread::sleep(Duration::from_millis(300));
    let idle = daemon.memory();

    let perf = std::env::var("NETBRIDGE_BENCH_PERF").ok().map(|out| {
        let child = Command::new("perf")
            .args(["record", "-a", "-g", "-F", "499", "-o", &out])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf record");
        registry().pids.push(child.id());
        child
    });

    let mut b = Bench::new(cfg, &prefix, &daemon.socket, started);
    b.client = client;
    b.floor_container = floor_container.clone();
    b.floor_rounds = 2;
    b.measuring_setup();
    b.client.must(
        "POST",
        "/networks/create",
        Some(&json!({ "Name": MVNET, "Driver": "macvlan" })),
        201,
    );

    if std::env::var("NETBRIDGE_BENCH_ONLY").is_ok_and(|v| v == "teardown") {
        teardown_only(b, &first, &floor_host);
        daemon.stop();
        drop(daemon);
        drop(guard);
        return;
    }

    // Networks: 0, 100, 1,000 present; endpoints 0 (plus connect/disconnect and the waves in
    // the empty daemon).
    let mut net_ops: Vec<(usize, NetOps)> = Vec::new();
    let mut ep_ops: Vec<(usize, usize, EpOps)> = Vec::new();
    let mut waves: Vec<(usize, usize, Vec<Wave>)> = Vec::new();
    for level in b.cfg.net_levels.clone() {
        b.grow_networks(level);
        let ops = b.network_ops();
        net_ops.push((level, ops));
        if level == 0 {
            let ops = b.endpoint_ops();
            ep_ops.push((0, 0, ops));
            let w = b.waves();
            waves.push((0, 0, w));
        }
    }
    // Endpoints: 0, 100, 1,000 present, with all the networks.
    for level in b.cfg.ep_levels.clone() {
        b.grow_endpoints(level);
        let ops = b.endpoint_ops();
        ep_ops.push((b.networks, b.endpoints, ops));
    }
    let w = b.waves();
    waves.push((b.networks, b.endpoints, w));

    // Teardown: many containers at once, then the batched floors it is compared with.
    let teardown = b.teardown(b.cfg.teardown);
    b.progress("teardown floors (in-process batches)");
    let batch_container = format!("{prefix}-ft");
    make_namespace(&batch_container);
    let batches: Vec<BatchFloor> = [20, 100, b.cfg.teardown]
        .iter()
        .enumerate()
        .map(|(i, &n)| measure_batch_floor(&floor_host, &batch_container, n, i))
        .collect();

    // The loaded state: memory, then start-up with it stored.
    b.grow_networks(b.cfg.load_networks);
    b.grow_endpoints(b.cfg.load_endpoints);
    // A list and an inspect of a populated network, as a client would, before reading memory.
    b.client.must("GET", "/networks", None, 200);
    b.client.must("GET", "/networks/bg00000", None, 200);
    thread::sleep(Duration::from_millis(300));
    let loaded = daemon.memory();
    let (load_networks, load_endpoints) = (b.networks, b.endpoints);

    if let Some(mut p) = perf {
        let _ = kill(Pid::from_raw(p.id() as i32), Signal::SIGINT);
        let _ = p.wait();
        registry().pids.retain(|pid| *pid != p.id());
    }

    b.progress(&format!(
        "start-up with {load_networks} networks and {load_endpoints} endpoints stored, ×{}",
        b.cfg.startups
    ));
    let mut startup = Samples::default();
    for _ in 0..b.cfg.startups {
        daemon.stop();
        startup.push(daemon.start());
    }
    let mut check = Client::new(&daemon.socket);
    let (r, _) = check.must("GET", "/networks", None, 200);
    let listed = r.json().as_array().map_or(0, Vec::len);
    assert!(
        listed >= load_networks,
        "after the restart only {listed} networks are listed"
    );
    thread::sleep(Duration::from_millis(300));
    let restarted = daemon.memory();
    b.progress(&format!(
        "after the restart, largest mappings by RSS: {}",
        daemon.largest_mappings(4)
    ));
    if let Some(secs) = std::env::var("NETBRIDGE_BENCH_HOLD")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        b.progress(&format!(
            "holding {secs} s for inspection: daemon PID {}, namespace {prefix}",
            daemon.pid()
        ));
        thread::sleep(Duration::from_secs(secs));
    }

    b.progress("kernel floor (second half)");
    let second = measure_floor(&clean(1));
    let mut floor = Floor::default();
    floor.extend(&first);
    floor.extend(&second);
    daemon.stop();
    if let Ok(path) = std::env::var("NETBRIDGE_BENCH_KEEP_LOG") {
        let _ = fs::copy(&daemon.log, path);
    }
    let load_after = load_average();
    let elapsed = started.elapsed().as_secs_f64();

    report(&Report {
        cfg: &b.cfg,
        floor: &floor,
        halves: (&first, &second),
        net_ops: &net_ops,
        ep_ops: &ep_ops,
        waves: &waves,
        idle,
        loaded,
        restarted,
        load: (load_networks, load_endpoints),
        first_start,
        startup: &startup,
        teardown: &teardown,
        batches: &batches,
    });
    println!(
        "\n{} mode, {elapsed:.0} s, {}; load average {load_before} before, {load_after} after; \
         daemon built with the {}.",
        if b.cfg.quick { "quick" } else { "full" },
        machine(),
        if cfg!(debug_assertions) {
            "dev profile (unoptimised: the figures mean nothing)"
        } else {
            "release profile"
        }
    );
    drop(daemon);
    drop(guard);
}

/// `NETBRIDGE_BENCH_ONLY=teardown`: the waves in the empty daemon, the teardown and its batched
/// floors, and the teardown table.
fn teardown_only(mut b: Bench, floor: &Floor, floor_host: &str) {
    let waves = vec![(0, 0, b.waves())];
    let before = operation_sums(&mut b.client);
    let teardown = b.teardown(b.cfg.teardown);
    let after = operation_sums(&mut b.client);
    println!(
        "\n| daemon's own timings over the teardown (its /metrics) | count | sum ms | mean ms |"
    );
    println!("|---|---:|---:|---:|");
    for (key, (count, sum)) in &after {
        let (c0, s0) = before.get(key).copied().unwrap_or((0.0, 0.0));
        if count - c0 > 0.0 {
            let (c, s) = (count - c0, (sum - s0) * 1e3);
            println!("| {key} | {c:.0} | {s:.1} | {:.3} |", s / c);
        }
    }
    b.progress("teardown floors (in-process batches)");
    let batch_container = format!("{}-ft", b.prefix);
    make_namespace(&batch_container);
    let batches: Vec<BatchFloor> = [20, 100, b.cfg.teardown]
        .iter()
        .enumerate()
        .map(|(i, &n)| measure_batch_floor(floor_host, &batch_container, n, i))
        .collect();
    report_teardown(&Report {
        cfg: &b.cfg,
        floor,
        halves: (floor, floor),
        net_ops: &[],
        ep_ops: &[],
        waves: &waves,
        idle: Mem::default(),
        loaded: Mem::default(),
        restarted: Mem::default(),
        load: (0, 0),
        first_start: Duration::ZERO,
        startup: &Samples::default(),
        teardown: &teardown,
        batches: &batches,
    });
    println!("\nteardown only; load average {} after", load_average());
}

/// Every histogram's (count, sum in seconds) from the daemon's `/metrics`, by series.
fn operation_sums(client: &mut Client) -> std::collections::BTreeMap<String, (f64, f64)> {
    let (r, _) = client.must("GET", "/metrics", None, 200);
    let mut out = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for line in r.body.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let key = format!(
            "{}{{{labels}",
            name.trim_end_matches("_sum").trim_end_matches("_count")
        );
        if name.ends_with("_count") {
            out.entry(key).or_default().0 = value;
        } else if name.ends_with("_sum") {
            out.entry(key).or_default().1 = value;
        }
    }
    out
}

struct Report<'a> {
    cfg: &'a Config,
    floor: &'a Floor,
    /// Before and after the daemon's run, to show drift.
    halves: (&'a Floor, &'a Floor),
    net_ops: &'a [(usize, NetOps)],
    ep_ops: &'a [(usize, usize, EpOps)],
    waves: &'a [(usize, usize, Vec<Wave>)],
    idle: Mem,
    loaded: Mem,
    restarted: Mem,
    load: (usize, usize),
    first_start: Duration,
    startup: &'a Samples,
    teardown: &'a Teardown,
    /// The batched teardown floors, for 20, 100 and the teardown's count of links.
    batches: &'a [BatchFloor],
}

fn report(r: &Report<'_>) {
    let f = r.floor;
    let (h1, h2) = r.halves;
    let halves = |a: &Samples, b: &Samples| {
        format!(
            "in-process; medians before / after: {} / {}",
            ms(a.median()),
            ms(b.median())
        )
    };
    let mut rows = vec![
        row(
            "bridge create + address + up",
            &halves(&h1.bridge_create, &h2.bridge_create),
            &f.bridge_create,
        ),
        row(
            "bridge delete",
            &halves(&h1.bridge_delete, &h2.bridge_delete),
            &f.bridge_delete,
        ),
        row(
            "firewall add (nf_tables batch)",
            &halves(&h1.fw_add, &h2.fw_add),
            &f.fw_add,
        ),
        row(
            "firewall remove (nf_tables batch)",
            &halves(&h1.fw_remove, &h2.fw_remove),
            &f.fw_remove,
        ),
        row(
            "attach (veth born in netns, master, up, address, route)",
            &halves(&h1.attach, &h2.attach),
            &f.attach,
        ),
        row(
            "detach (veth delete)",
            &halves(&h1.detach, &h2.detach),
            &f.detach,
        ),
        row(
            "macvlan attach (born in netns, address, up, route)",
            &halves(&h1.macvlan_attach, &h2.macvlan_attach),
            &f.macvlan_attach,
        ),
        row(
            "macvlan detach (deleted inside the netns)",
            &halves(&h1.macvlan_detach, &h2.macvlan_detach),
            &f.macvlan_detach,
        ),
    ];
    print_table(
        "Kernel floor (netbridge::kernel, no HTTP, no SQLite)",
        &rows,
    );

    // Creates and removes are compared with the floor measured in the daemon's namespace at
    // the same level (bridges there), plus the clean floor's firewall work.
    let fw_add = f.fw_add.median();
    let fw_remove = f.fw_remove.median();
    let create_clean = f.bridge_create.median() + fw_add;
    let remove_clean = f.bridge_delete.median() + fw_remove;
    let create0 = r.net_ops.first().map_or(f64::NAN, |o| o.1.create.median());
    let inspect0 = r.net_ops.first().map_or(f64::NAN, |o| o.1.inspect.median());
    rows = Vec::new();
    for (level, ops) in r.net_ops {
        let state = format!("{level} networks");
        let bridge_here = ops.floor_here.bridge_create.median();
        let create_here = bridge_here + fw_add;
        let create_target = 1.5 * bridge_here + fw_add;
        let mut c = row("create", &state, &ops.create);
        c.floor = format!("{} (clean {})", ms(create_here), ms(create_clean));
        c.ratio = format!(
            "{:.2}× (clean {:.2}×)",
            ops.create.median() / create_here,
            ops.create.median() / create_clean
        );
        c.target = format!("≤ 1.5×bridge + fw = {} ms", ms(create_target));
        c.met = verdict(ops.create.median() <= create_target);
        rows.push(c);
        if *level > 0 {
            let mut s = row("create vs. at 0", &state, &ops.create);
            s.floor = format!("{} (at 0)", ms(create0));
            s.ratio = format!("{:.2}×", ops.create.median() / create0);
            s.target = "≤ 1.2× at 0".to_string();
            s.met = verdict(ops.create.median() <= 1.2 * create0);
            rows.push(s);
        }
        let mut i = row("inspect", &state, &ops.inspect);
        i.floor = format!("{} (at 0)", ms(inspect0));
        i.ratio = format!("{:.2}×", ops.inspect.median() / inspect0);
        i.target = "independent of count (≤ 1.2× at 0)".to_string();
        i.met = verdict(ops.inspect.median() <= 1.2 * inspect0);
        rows.push(i);
        let mut l = row("list", &state, &ops.list);
        if *level == *r.cfg.net_levels.last().unwrap_or(&0) {
            l.target = format!("≤ 10 ms (at 1,000; here {} present)", level + 4);
            l.met = verdict(ops.list.median() <= 10.0);
        }
        rows.push(l);
        rows.push(row(
            "↳ host prefixes as a create gets them (in-process, watched)",
            &state,
            &ops.route_dump,
        ));
        rows.push(row(
            "↳ the same as a route + address dump (in-process; create before)",
            &state,
            &ops.prefix_dump,
        ));
        rows.push(row(
            "↳ link dump (in-process; start-up makes one, create none)",
            &state,
            &ops.link_dump,
        ));
        let remove_here = ops.floor_here.bridge_delete.median() + fw_remove;
        let mut d = row("remove", &state, &ops.remove);
        d.floor = format!("{} (clean {})", ms(remove_here), ms(remove_clean));
        d.ratio = format!(
            "{:.2}× (clean {:.2}×)",
            ops.remove.median() / remove_here,
            ops.remove.median() / remove_clean
        );
        rows.push(d);
    }
    print_table("Networks over the API", &rows);

    rows = Vec::new();
    for (nets, eps, ops) in r.ep_ops {
        let state = format!("{eps} endpoints, {nets} networks");
        for (name, s, here, clean) in [
            ("connect", &ops.connect, &ops.floor_here.attach, &f.attach),
            (
                "disconnect",
                &ops.disconnect,
                &ops.floor_here.detach,
                &f.detach,
            ),
            (
                "macvlan connect",
                &ops.macvlan_connect,
                &ops.floor_here.macvlan_attach,
                &f.macvlan_attach,
            ),
            (
                "macvlan disconnect",
                &ops.macvlan_disconnect,
                &ops.floor_here.macvlan_detach,
                &f.macvlan_detach,
            ),
        ] {
            let (here, clean) = (here.median(), clean.median());
            let mut x = row(name, &state, s);
            x.floor = format!("{} (clean {})", ms(here), ms(clean));
            x.ratio = format!(
                "{:.2}× (clean {:.2}×)",
                s.median() / here,
                s.median() / clean
            );
            x.target = "≤ 1.3× floor".to_string();
            x.met = verdict(s.median() <= 1.3 * here);
            rows.push(x);
        }
    }
    print_table("Connect and disconnect over the API", &rows);

    println!("\n### Concurrent connects to one network\n");
    println!(
        "| clients | state | wall ms (median) | connects/s | per-connect median / p95 ms | serial floor ms (n × attach) | wall / floor | target | met | disconnect wall ms |"
    );
    println!("|---:|---|---:|---:|---|---:|---:|---|---|---:|");
    for (nets, eps, ws) in r.waves {
        for w in ws {
            let wall = w.wall.median();
            let rate = w.n as f64 / (wall / 1e3);
            let serial = w.n as f64 * f.attach.median();
            let (target, met) = if w.n >= 100 {
                ("≥ 150/s", verdict(rate >= 150.0))
            } else {
                ("—", "")
            };
            println!(
                "| {} | {eps} endpoints, {nets} networks | {} | {rate:.0} | {} / {} | {} | {:.2}× | {target} | {met} | {} |",
                w.n,
                ms(wall),
                ms(w.latency.median()),
                ms(w.latency.p95()),
                ms(serial),
                wall / serial,
                ms(w.disconnect_wall.median()),
            );
        }
    }

    report_teardown(r);

    let (nets, eps) = r.load;
    println!("\n### Memory and start-up\n");
    println!("| figure | state | value | target | met |");
    println!("|---|---|---:|---|---|");
    let split = |m: &Mem| {
        format!(
            "{:.1} MiB (heap etc. {:.1} + binary pages {:.1})",
            mib(m.rss),
            mib(m.anon),
            mib(m.file)
        )
    };
    println!(
        "| VmRSS | idle (fresh start) | {} | ≤ 15 MiB | {} |",
        split(&r.idle),
        verdict(mib(r.idle.rss) <= 15.0)
    );
    println!(
        "| VmRSS | {nets} networks, {eps} endpoints | {} | ≤ 25 MiB | {} |",
        split(&r.loaded),
        verdict(mib(r.loaded.rss) <= 25.0)
    );
    println!(
        "| VmHWM | {nets} networks, {eps} endpoints (peak of the whole run) | {:.1} MiB | ≤ 25 MiB | {} |",
        mib(r.loaded.hwm),
        verdict(mib(r.loaded.hwm) <= 25.0)
    );
    println!(
        "| VmRSS | after a restart with them stored | {} | — | |",
        split(&r.restarted)
    );
    println!(
        "| VmHWM | after a restart with them stored | {:.1} MiB | — | |",
        mib(r.restarted.hwm)
    );
    println!(
        "| start-up to first `/_ping` | empty store | {} ms | — | |",
        ms(r.first_start.as_secs_f64() * 1e3)
    );
    println!(
        "| start-up to first `/_ping` | {nets} networks, {eps} endpoints stored | {} ms (median of {}, max {}) | — | |",
        ms(r.startup.median()),
        r.startup.len(),
        ms(r.startup.sorted().last().copied().unwrap_or(f64::NAN))
    );
}

/// The teardown table (issue 14): each figure against the synchronous floor (one link deleted
/// at a time, each waiting for its grace period) and the batched floor (all cut off, then
/// deleted in one kernel batch).
fn report_teardown(r: &Report<'_>) {
    let f = r.floor;
    let detach = f.detach.median();
    let batch = |n: usize| r.batches.iter().find(|b| b.n == n);
    let ms_of = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "\n### Teardown (disconnect and remove answer once cut off; links deleted in batches)\n"
    );
    println!(
        "| batched floor, n links | n × cut-off + 1 group delete ms | of which the group delete ms | n host ends into the group + 1 group delete ms | synchronous floor (n × veth delete) ms |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for b in r.batches {
        println!(
            "| {} | {} | {} | {} | {} |",
            b.n,
            ms(ms_of(b.full)),
            ms(ms_of(b.reap)),
            ms(ms_of(b.kernel)),
            ms(b.n as f64 * detach)
        );
    }
    println!();
    println!("| operation | state | median ms | p95 ms | synchronous floor ms | target | met |");
    println!("|---|---|---:|---:|---:|---|---|");
    for (nets, eps, ops) in r.ep_ops {
        let s = &ops.disconnect;
        println!(
            "| disconnect | {eps} endpoints, {nets} networks | {} | {} | {} (veth delete) | ≤ 2 ms | {} |",
            ms(s.median()),
            ms(s.p95()),
            ms(ops.floor_here.detach.median()),
            verdict(s.median() <= 2.0)
        );
    }
    for (level, ops) in r.net_ops {
        let s = &ops.remove;
        println!(
            "| network remove | {level} networks | {} | {} | {} (bridge delete + fw) | ≤ 3 ms | {} |",
            ms(s.median()),
            ms(s.p95()),
            ms(ops.floor_here.bridge_delete.median() + f.fw_remove.median()),
            verdict(s.median() <= 3.0)
        );
    }
    println!();
    println!(
        "| concurrent disconnects | state | wall ms (median) | disconnects/s | synchronous floor ms (n × delete) | batched floor ms | target | met |"
    );
    println!("|---:|---|---:|---:|---:|---:|---|---|");
    for (nets, eps, ws) in r.waves {
        for w in ws {
            let wall = w.disconnect_wall.median();
            let rate = w.n as f64 / (wall / 1e3);
            let (target, met) = if w.n >= 100 {
                ("≥ 1,000/s", verdict(rate >= 1000.0))
            } else {
                ("—", "")
            };
            println!(
                "| {} | {eps} endpoints, {nets} networks | {} | {rate:.0} | {} | {} | {target} | {met} |",
                w.n,
                ms(wall),
                ms(w.n as f64 * detach),
                batch(w.n).map_or("—".to_string(), |b| ms(ms_of(b.full))),
            );
        }
    }
    let t = r.teardown;
    let floor = batch(t.n).map_or(f64::NAN, |b| ms_of(b.full));
    let deleted = ms_of(t.deleted);
    println!();
    println!(
        "| teardown | state | all answered ms | all links deleted ms | synchronous floor ms | batched floor ms | ratio | target | met |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|---|");
    println!(
        "| {} containers disconnected by {TEARDOWN_CLIENTS} clients | {} | {} | {} | {} | {} | {:.2}× | ≤ 1.3× batched floor | {} |",
        t.n,
        t.state,
        ms(ms_of(t.answered)),
        ms(deleted),
        ms(t.n as f64 * detach),
        ms(floor),
        deleted / floor,
        verdict(deleted <= 1.3 * floor)
    );
}
