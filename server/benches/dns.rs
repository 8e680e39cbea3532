//! The DNS benchmark (issue 15): `cargo bench --bench dns` (as root).
//!
//! The release daemon runs in a throwaway namespace (`nbt-bench-dns-<random>`) with one
//! user-defined network whose containers hold 1,000 names (names and aliases). Beside it, in
//! the same run, aardvark-dns (podman's resolver) serves the same records the way podman runs
//! it: in the host (here: the daemon's) namespace, on the network's gateway address. From a
//! client sandbox on that network, both are asked a local name (cycling through all 1,000) and
//! a forwarded one, answered by an upstream server this benchmark runs in a namespace of its
//! own behind a veth; 1 and 16 clients. Two load tools take turns on the same queries:
//! `dnsperf` (qps from a plain run, p50/p99 from a verbose one) and `udp-load` (`dns/load.rs`,
//! every query timed). Each row also gives the CPU time per answer of the server's process
//! and of the client. Then the daemon's RSS growth as 10,000 more names are added.
//!
//! `NETBRIDGE_BENCH_QUICK=1`: 100 names, 1-second runs, no RSS step (CI). Without dnsperf or
//! aardvark-dns it says so and stops (quick) or fails (full). `NETBRIDGE_BENCH_DNS_ROUNDS=n`
//! measures every cell n times in turn; `NETBRIDGE_BENCH_DNS_RSS=0` skips the RSS step.
//! Everything it makes (namespaces `nbt-bench-dns-…`, `/etc/netns/nbt-bench-dns-…`, a temp
//! dir) is removed at the end.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use nix::sched::{CloneFlags, setns};
use serde_json::{Value, json};

#[path = "dns/load.rs"]
mod load;

const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";
const SUBNET: &str = "10.77.0.0/16";
const GATEWAY: &str = "10.77.0.1";
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(10, 254, 77, 2);
const NAMES_PER_HOLDER: usize = 10;
/// Names per container in the two RSS steps: 10,000 names on 100 containers, then on 500
/// (a bridge takes at most 1,024 ports).
const RSS_NAMES_PER_HOLDER: [usize; 2] = [100, 20];

struct Config {
    quick: bool,
    names: usize,
    secs: u32,
    rss_names: usize,
}

/// Everything made, removed on drop (also on panic).
struct Lab {
    tag: String,
    dir: PathBuf,
    namespaces: Vec<String>,
    sandboxes: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // aardvark-dns daemonizes: the child above was only its launcher. It writes its PID.
        let pid_file = self.dir.join("aardvark").join("aardvark.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for name in self.sandboxes.iter().chain(&self.namespaces) {
            if Path::new("/run/netns").join(name).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

fn must(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One request over the daemon's Unix socket (Connection: close).
fn request(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = UnixStream::connect(socket).expect("connect to the daemon");
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap_or(0);
    let json = raw
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// The upstream: `fwd.example` A 192.0.2.10, everything else NXDOMAIN, over UDP.
fn start_upstream(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        setns(&f, CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:53").unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.metadata.recursion_available = true;
            r.add_queries(q.queries.iter().cloned());
            match q.queries.first() {
                Some(query) if query.query_type() == RecordType::A => {
                    let rd = RData::A(A::new(192, 0, 2, 10));
                    r.add_answer(Record::from_rdata(query.name().clone(), 60, rd));
                }
                _ => r.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain,
            }
            if let Ok(bytes) = r.to_vec() {
                let _ = s.send_to(&bytes, peer);
            }
        }
    });
    rx.recv().unwrap();
}

/// Every forwarded query leaves from a fresh port, so it is a new conntrack entry in the
/// daemon's namespace (netbridge's NAT rules load conntrack), kept 30 s by default: one
/// server's forwarded run would fill the table (and slow every look-up in it) for the next.
/// 1 s there keeps the table small for both.
fn short_udp_conntrack(ns: &str) {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open the daemon's namespace");
        setns(&f, CloneFlags::CLONE_NEWNET).expect("enter the daemon's namespace");
        // Absent when conntrack is not loaded: then there is nothing to shorten.
        let _ = std::fs::write("/proc/sys/net/netfilter/nf_conntrack_udp_timeout", "1");
    })
    .join()
    .expect("conntrack thread");
}

/// Result of one dnsperf cell.
struct Cell {
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    lost: u64,
}

fn dnsperf(
    client: &str,
    server: &str,
    file: &Path,
    (clients, window): (usize, usize),
    secs: u32,
    verbose: bool,
) -> String {
    let (c, q, l) = (
        clients.to_string(),
        (clients * window).to_string(),
        secs.to_string(),
    );
    let threads = clients.min(2).to_string();
    let mut args = vec![
        "netns",
        "exec",
        client,
        "dnsperf",
        "-s",
        server,
        "-d",
        file.to_str().unwrap(),
        "-c",
        &c,
        "-q",
        &q,
        "-T",
        &threads,
        "-l",
        &l,
        "-t",
        "2",
    ];
    if verbose {
        args.push("-v");
    }
    must("ip", &args)
}

/// dnsperf's figures, and the CPU seconds per query its plain run cost the server (`pid`)
/// and dnsperf.
fn measure(
    client: &str,
    (server, pid): (&str, u32),
    file: &Path,
    load: (usize, usize),
    secs: u32,
) -> (Cell, f64, f64) {
    let (server_cpu, client_cpu) = (load::process_cpu(pid), load::children_cpu());
    let plain = dnsperf(client, server, file, load, secs, false);
    let server_cpu = load::process_cpu(pid) - server_cpu;
    let client_cpu = load::children_cpu() - client_cpu;
    let field = |text: &str, key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let qps = field(&plain, "Queries per second:");
    let lost = field(&plain, "Queries lost:") as u64;
    let verbose = dnsperf(client, server, file, load, secs, true);
    let mut lat: Vec<f64> = verbose
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|s| s * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() as f64 - 1.0) * p).round() as usize]
    };
    let answered = (qps * f64::from(secs)).max(1.0);
    let cell = Cell {
        qps,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        lost,
    };
    (cell, server_cpu / answered, client_cpu / answered)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A sandbox with `NAMES_PER_HOLDER` names (its own and aliases) on the network; returns
/// (its aardvark line, its names).
fn holder(
    lab: &mut Lab,
    socket: &Path,
    net: &str,
    i: usize,
    per_holder: usize,
) -> (String, Vec<String>) {
    let name = format!("{}-h{i}", lab.tag);
    lab.sandboxes.push(name.clone());
    let (status, made) = request(
        socket,
        "POST",
        &format!("/containers/create?name={name}"),
        None,
    );
    assert_eq!(status, 201, "{made}");
    let aliases: Vec<String> = (1..per_holder).map(|k| format!("h{i}-a{k}")).collect();
    let body = json!({"Container": name, "EndpointConfig": {"Aliases": aliases}});
    let (status, err) = request(
        socket,
        "POST",
        &format!("/networks/{net}/connect"),
        Some(&body),
    );
    assert_eq!(status, 200, "{err}");
    let (_, inspect) = request(socket, "GET", &format!("/containers/{name}/json"), None);
    let ip = inspect["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let id = inspect["Id"].as_str().unwrap()[..12].to_string();
    let mut names = vec![name];
    names.extend(aliases);
    (format!("{id} {ip}  {}", names.join(",")), names)
}

fn main() {
    let quick = std::env::var("NETBRIDGE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let cfg = if quick {
        Config {
            quick,
            names: 100,
            secs: 1,
            rss_names: 0,
        }
    } else {
        Config {
            quick,
            names: 1000,
            secs: 5,
            rss_names: 10_000,
        }
    };
    let have = |p: &str| Command::new(p).arg("-h").output().is_ok();
    if !have("dnsperf") || !Path::new(AARDVARK).exists() {
        assert!(
            cfg.quick,
            "dnsperf and aardvark-dns are needed (.ci/install-deps)"
        );
        println!("dns bench: dnsperf or aardvark-dns missing; skipped");
        return;
    }
    let tag = format!("nbt-bench-dns-{}", rand_hex(6));
    let mut lab = Lab {
        dir: std::env::temp_dir().join(&tag),
        tag: tag.clone(),
        namespaces: vec![tag.clone(), format!("{tag}-up")],
        sandboxes: Vec::new(),
        children: Vec::new(),
    };
    std::fs::create_dir_all(lab.dir.join("aardvark")).unwrap();
    let (daemon_ns, up_ns) = (tag.clone(), format!("{tag}-up"));
    for ns in [&daemon_ns, &up_ns] {
        must("ip", &["netns", "add", ns]);
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }
    let veth = format!("nbu{}", rand_hex(8));
    must(
        "ip",
        &[
            "-n", &daemon_ns, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
            "netns", &up_ns,
        ],
    );
    must(
        "ip",
        &[
            "-n",
            &daemon_ns,
            "addr",
            "add",
            "10.254.77.1/30",
            "dev",
            &veth,
        ],
    );
    must("ip", &["-n", &daemon_ns, "link", "set", &veth, "up"]);
    must(
        "ip",
        &["-n", &up_ns, "addr", "add", "10.254.77.2/30", "dev", "eth0"],
    );
    must("ip", &["-n", &up_ns, "link", "set", "eth0", "up"]);
    start_upstream(&up_ns);
    short_udp_conntrack(&daemon_ns);

    let socket = lab.dir.join("netbridge.sock");
    let daemon = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{daemon_ns}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_netbridge"))
        .args(["serve", "--socket", socket.to_str().unwrap()])
        .args(["--db", lab.dir.join("db/netbridge.db").to_str().unwrap()])
        .args(["--dns", &UPSTREAM.to_string(), "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(lab.dir.join("daemon.log")).unwrap())
        .spawn()
        .expect("start netbridge");
    let pid = daemon.id();
    lab.children.push(daemon);
    let up = Instant::now();
    while request_ok(&socket).is_none() {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "netbridge did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let net = format!("{tag}-net");
    let body = json!({"Name": net, "IPAM": {"Config": [{"Subnet": SUBNET, "Gateway": GATEWAY}]}});
    let (status, made) = request(&socket, "POST", "/networks/create", Some(&body));
    assert_eq!(status, 201, "{made}");
    let client = format!("{tag}-client");
    lab.sandboxes.push(client.clone());
    request(
        &socket,
        "POST",
        &format!("/containers/create?name={client}"),
        None,
    );
    let body = json!({"Container": client});
    let (status, err) = request(
        &socket,
        "POST",
        &format!("/networks/{net}/connect"),
        Some(&body),
    );
    assert_eq!(status, 200, "{err}");
    let (_, inspect) = request(&socket, "GET", &format!("/containers/{client}/json"), None);
    let client_ip = inspect["NetworkSettings"]["Networks"][&net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id = inspect["Id"].as_str().unwrap()[..12].to_string();

    let started = Instant::now();
    let mut lines = vec![
        format!("{GATEWAY} {UPSTREAM}"),
        format!("{client_id} {client_ip}  {client}"),
    ];
    let mut all_names = Vec::new();
    for i in 0..cfg.names / NAMES_PER_HOLDER {
        let (line, names) = holder(&mut lab, &socket, &net, i, NAMES_PER_HOLDER);
        lines.push(line);
        all_names.extend(names);
    }
    println!(
        "{} names on {} containers in {:.1} s",
        all_names.len(),
        cfg.names / NAMES_PER_HOLDER,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(lab.dir.join("aardvark").join(&net), lines.join("\n") + "\n").unwrap();
    let aardvark = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{daemon_ns}"))
        .args([
            "--",
            AARDVARK,
            "--config",
            lab.dir.join("aardvark").to_str().unwrap(),
        ])
        .args(["-p", "53", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aardvark-dns");
    lab.children.push(aardvark);
    std::thread::sleep(Duration::from_millis(500));

    let local = lab.dir.join("local.txt");
    let names: String = all_names.iter().map(|n| format!("{n} A\n")).collect();
    std::fs::write(&local, names).unwrap();
    let forwarded = lab.dir.join("forwarded.txt");
    std::fs::write(&forwarded, "fwd.example A\n").unwrap();

    let aardvark_pid: u32 = std::fs::read_to_string(lab.dir.join("aardvark").join("aardvark.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("aardvark-dns's PID file");
    let local_wire: Vec<Vec<u8>> = all_names.iter().map(|n| query_wire(n)).collect();
    let forwarded_wire = vec![query_wire("fwd.example")];
    let client_netns = PathBuf::from("/run/netns").join(&client);
    let servers = [
        Server {
            name: "netbridge",
            addr: "127.0.0.11",
            pid,
        },
        Server {
            name: "aardvark-dns",
            addr: GATEWAY,
            pid: aardvark_pid,
        },
    ];
    let rounds: usize = env_or("NETBRIDGE_BENCH_DNS_ROUNDS", 1);
    // (clients, queries each keeps in flight): enough in flight that the servers, not the
    // round trips, set the pace (BENCHMARKS.md); 64 in all either way.
    let loads = [(1, 64), (16, 4)];
    println!(
        "\n| tool | server | query | clients | in flight | qps | p50 ms | p99 ms | lost | \
         server µs/q | client µs/q |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for _ in 0..rounds {
        let kinds = [
            Queries {
                kind: "local name",
                file: &local,
                wire: &local_wire,
            },
            Queries {
                kind: "forwarded",
                file: &forwarded,
                wire: &forwarded_wire,
            },
        ];
        for queries in &kinds {
            for load in loads {
                compare(&client, &client_netns, &servers, queries, load, cfg.secs);
            }
        }
    }

    if cfg.rss_names > 0 && env_or("NETBRIDGE_BENCH_DNS_RSS", 1) == 1 {
        // Twice 10,000 more names: on few containers (mostly the names' own cost), then on
        // many (with their containers', endpoints' and resolvers' cost).
        let mut next = cfg.names / NAMES_PER_HOLDER;
        let mut total = cfg.names;
        for per_holder in RSS_NAMES_PER_HOLDER {
            let before = rss_kib(pid);
            let holders = cfg.rss_names / per_holder;
            for i in next..next + holders {
                holder(&mut lab, &socket, &net, i, per_holder);
            }
            next += holders;
            total += cfg.rss_names;
            let after = rss_kib(pid);
            println!(
                "RSS: {:.1} -> {:.1} MiB for {} more names on {holders} containers \
                 ({per_holder} each; {total} names in all): growth {:.2} MiB",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                cfg.rss_names,
                (after as f64 - before as f64) / 1024.0
            );
        }
    }
    for sandbox in lab.sandboxes.clone() {
        request(
            &socket,
            "DELETE",
            &format!("/containers/{sandbox}?force=1"),
            None,
        );
    }
    let _ = request(&socket, "DELETE", &format!("/networks/{net}"), None);
}

/// A server under test: where it listens, and the process whose CPU time it spends.
#[derive(Clone, Copy)]
struct Server {
    name: &'static str,
    addr: &'static str,
    pid: u32,
}

/// One kind of query: dnsperf's input file and udp-load's wire messages.
struct Queries<'a> {
    kind: &'static str,
    file: &'a Path,
    wire: &'a [Vec<u8>],
}

/// One cell, `(clients, queries each keeps in flight)`, against both servers: dnsperf on
/// each in turn, then udp-load in one-second slices that alternate between the servers (so
/// both see the same background load). Each is printed as a table row, with the CPU time
/// per answer of the server and of the client.
fn compare(
    client: &str,
    client_netns: &Path,
    servers: &[Server],
    queries: &Queries<'_>,
    (clients, window): (usize, usize),
    secs: u32,
) {
    let row = |tool: &str, server: &Server, c: &Cell, server_cpu: f64, client_cpu: f64| {
        println!(
            "| {tool} | {} | {} | {clients} | {} | {:.0} | {:.3} | {:.3} | {} | {:.1} | {:.1} |",
            server.name,
            queries.kind,
            clients * window,
            c.qps,
            c.p50_ms,
            c.p99_ms,
            c.lost,
            server_cpu * 1e6,
            client_cpu * 1e6
        )
    };
    for server in servers {
        let target = (server.addr, server.pid);
        let shape = (clients, window);
        let (c, server_cpu, client_cpu) = measure(client, target, queries.file, shape, secs);
        row("dnsperf", server, &c, server_cpu, client_cpu);
    }
    let mut measured: Vec<(load::Measured, f64)> =
        servers.iter().map(|_| Default::default()).collect();
    for _ in 0..secs {
        for (server, (m, cpu)) in servers.iter().zip(&mut measured) {
            let before = load::process_cpu(server.pid);
            m.add(load::run(
                client_netns,
                std::net::SocketAddr::new(server.addr.parse().expect("an address"), 53),
                queries.wire.to_vec(),
                clients,
                window,
                1.0,
            ));
            *cpu += load::process_cpu(server.pid) - before;
        }
    }
    for (server, (mut m, server_cpu)) in servers.iter().zip(measured) {
        let answered = m.answered().max(1) as f64;
        let c = Cell {
            qps: m.qps(),
            p50_ms: m.percentile_ms(0.50),
            p99_ms: m.percentile_ms(0.99),
            lost: m.lost,
        };
        row(
            "udp-load",
            server,
            &c,
            server_cpu / answered,
            m.client_cpu / answered,
        );
    }
}

/// An A query for `name` with recursion desired, as dnsperf sends it (no EDNS).
fn query_wire(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    let name = hickory_proto::rr::Name::from_ascii(name).expect("a query name");
    m.add_query(hickory_proto::op::Query::query(name, RecordType::A));
    m.to_vec().expect("encode a query")
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn request_ok(socket: &Path) -> Option<()> {
    UnixStream::connect(socket).ok()?;
    (request(socket, "GET", "/_ping", None).0 == 200).then_some(())
}
