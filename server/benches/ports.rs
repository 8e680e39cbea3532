//! Published ports: throughput (iperf3) and connection rate through a published port against
//! the same traffic straight to the container (the floor), from a client namespace (another
//! machine) and from the host's own loopback; and what publishing and unpublishing one port
//! costs in the firewall while 1,000 are published.
//!
//! Everything runs in throwaway namespaces: the daemon's (the host), a client's joined to it
//! by a veth, and the container's. Needs root; iperf3 for the throughput rows (skipped
//! without it). `cargo bench --bench ports`; `NETBRIDGE_BENCH_QUICK=1` for short runs (CI).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netbridge::kernel::{Firewall, Nftables, PortRule, Proto};
use nix::sched::{CloneFlags, setns, unshare};
use serde_json::{Value, json};

const HOST_IP: &str = "198.18.88.1";
const CLIENT_IP: &str = "198.18.88.2";
/// Container ports: iperf3's, and the connection-rate server's.
const IPERF: u16 = 5201;
const ACCEPT: u16 = 7000;
/// Their published host ports.
const IPERF_PUBLISHED: u16 = 15201;
const ACCEPT_PUBLISHED: u16 = 17000;
const PUBLISHED: usize = 1000;
/// Docker's userland proxy (Debian's docker.io), for its loopback path beside ours.
const DOCKER_PROXY: &str = "/usr/sbin/docker-proxy";
/// The host ports it listens on (the same container ports behind them).
const IPERF_PROXIED: u16 = 25201;
const ACCEPT_PROXIED: u16 = 27000;

struct Config {
    reps: usize,
    seconds: u64,
    samples: usize,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("NETBRIDGE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Config {
                reps: 1,
                seconds: 1,
                samples: 50,
            }
        } else {
            Config {
                reps: 5,
                seconds: 5,
                samples: 500,
            }
        }
    }
}

/// What a run made, for the signal handler: process IDs, namespaces, directories.
static MADE: Mutex<(Vec<u32>, Vec<String>, Vec<PathBuf>)> =
    Mutex::new((Vec::new(), Vec::new(), Vec::new()));

fn made() -> std::sync::MutexGuard<'static, (Vec<u32>, Vec<String>, Vec<PathBuf>)> {
    MADE.lock().unwrap_or_else(|p| p.into_inner())
}

/// On SIGINT, SIGTERM or SIGHUP: kills what the run started, deletes its namespaces and
/// directories, exits. (A normal end and a panic clean up through `World`'s drop.)
fn clean_up_on_signals() {
    std::thread::spawn(|| {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            let (pids, namespaces, dirs) = std::mem::take(&mut *made());
            for pid in pids {
                let _ = run("kill", &["-9", &pid.to_string()]);
            }
            for ns in namespaces.iter().rev() {
                let _ = run("ip", &["netns", "del", ns]);
                let _ = fs::remove_dir_all(Path::new("/etc/netns").join(ns));
            }
            for dir in dirs {
                let _ = fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        });
    });
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rand_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex[..n].to_string()
}

/// One request over the daemon's socket: status and body.
fn http(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let text = body.map(Value::to_string).unwrap_or_default();
    let mut s = UnixStream::connect(socket).expect("daemon socket");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: netbridge\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
    .expect("request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("response");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Runs `f` on a thread inside namespace `ns` (a name under /run/netns).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).expect("netns file");
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// The daemon, client and container namespaces, and what runs in them; all gone on drop.
struct World {
    daemon_ns: String,
    client_ns: String,
    dir: PathBuf,
    socket: PathBuf,
    daemon: Option<Child>,
    children: Vec<Child>,
    containers: Vec<String>,
}

impl World {
    fn new() -> World {
        let tag = rand_hex(6);
        let daemon_ns = format!("nbb-d{tag}");
        let client_ns = format!("nbb-c{tag}");
        let dir = std::env::temp_dir().join(format!("netbridge-bench-ports-{tag}"));
        fs::create_dir_all(&dir).expect("bench dir");
        made().2.push(dir.clone());
        for ns in [&daemon_ns, &client_ns] {
            made().1.push(ns.clone());
            must("ip", &["netns", "add", ns]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        let mut w = World {
            socket: dir.join("netbridge.sock"),
            daemon_ns,
            client_ns,
            dir,
            daemon: None,
            children: Vec::new(),
            containers: Vec::new(),
        };
        let (d, c) = (w.daemon_ns.clone(), w.client_ns.clone());
        must(
            "ip",
            &[
                "-n", &d, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns",
                &c,
            ],
        );
        must(
            "ip",
            &[
                "-n",
                &d,
                "addr",
                "add",
                &format!("{HOST_IP}/24"),
                "dev",
                "uplink",
            ],
        );
        must("ip", &["-n", &d, "link", "set", "uplink", "up"]);
        must(
            "ip",
            &[
                "-n",
                &c,
                "addr",
                "add",
                &format!("{CLIENT_IP}/24"),
                "dev",
                "eth0",
            ],
        );
        must("ip", &["-n", &c, "link", "set", "eth0", "up"]);
        must("ip", &["-n", &c, "route", "add", "default", "via", HOST_IP]);
        w.start_daemon();
        w
    }

    fn start_daemon(&mut self) {
        let log = File::create(self.dir.join("daemon.log")).expect("log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.daemon_ns))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_netbridge"))
            .args(["serve", "--socket"])
            .arg(&self.socket)
            .arg("--db")
            .arg(self.dir.join("state/netbridge.db"))
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("netbridge");
        made().0.push(child.id());
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "netbridge did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, out) = http(&self.socket, method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {out}"
        );
        out
    }

    /// A started container on `network` publishing `bindings`; returns its address.
    fn container(&mut self, name: &str, network: &str, bindings: Value) -> IpAddr {
        self.containers.push(name.to_string());
        made().1.push(name.to_string());
        let body = json!({"Image": "busybox", "HostConfig": {"NetworkMode": network,
            "PortBindings": bindings}});
        self.api(
            "POST",
            &format!("/containers/create?name={name}"),
            Some(&body),
        );
        self.api("POST", &format!("/containers/{name}/start"), None);
        let inspected = self.api("GET", &format!("/containers/{name}/json"), None);
        inspected["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("container address")
    }

    fn spawn_in(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        made().0.push(child.id());
        self.children.push(child);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for name in &self.containers {
            let _ = http(
                &self.socket,
                "DELETE",
                &format!("/containers/{name}?force=1"),
                None,
            );
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for name in &self.containers {
            let _ = run("ip", &["netns", "del", name]);
            let _ = fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
        let _ = run("ip", &["netns", "del", &self.client_ns]);
        let _ = run("ip", &["netns", "del", &self.daemon_ns]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// iperf3's received rate in Gbit/s, from namespace `ns` to `host`:`port`.
fn iperf(ns: &str, host: &str, port: u16, seconds: u64) -> f64 {
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "iperf3",
            "-J",
            "-c",
            host,
            "-p",
            &port.to_string(),
            "-t",
            &seconds.to_string(),
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map_or(f64::NAN, |b| b / 1e9)
}

/// A server in the container: accepts, writes one byte, closes.
fn accept_forever(container: &str) {
    let path = format!("/run/netns/{container}");
    std::thread::spawn(move || {
        let file = File::open(&path).expect("netns file");
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        let listener = TcpListener::bind(("0.0.0.0", ACCEPT)).expect("listen");
        // Closes at once: the client's reset answers the FIN, so neither side keeps a
        // TIME_WAIT (which would run the client out of ports).
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"x");
        }
    });
}

/// Connections per second from namespace `ns` to `to`, one after another for `seconds`:
/// connect, read the byte, close with a reset (no TIME_WAIT to run out of ports).
fn connection_rate(ns: &str, to: SocketAddr, seconds: u64) -> f64 {
    in_netns(ns, move || {
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let mut done = 0u64;
        while Instant::now() < until {
            let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) else {
                continue;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.read(&mut [0u8; 1]).unwrap_or(0) == 1 {
                done += 1;
            }
            let linger = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &linger);
        }
        done as f64 / started.elapsed().as_secs_f64()
    })
}

/// Median microseconds of publishing and of unpublishing one port, with `published` others,
/// straight through the firewall in a namespace of its own.
fn firewall_cost(published: usize, samples: usize) -> (f64, f64) {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("a namespace for the firewall");
        let fw = Nftables::new();
        // The host-firewall steps may fail in a bare namespace; the table is made first.
        let _ = fw.apply_all(&[]);
        let rule = |i: usize| PortRule {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 20000 + i as u16,
            target: IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 2) as u8)),
            target_port: 80,
        };
        let others: Vec<PortRule> = (0..published).map(rule).collect();
        fw.replace_ports(&others).expect("ports published");
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        for i in 0..samples {
            let one = [rule(published + 1 + i % 100)];
            let t = Instant::now();
            fw.change_ports(&[], &one).expect("publish");
            add.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            fw.change_ports(&one, &[]).expect("unpublish");
            remove.push(t.elapsed().as_secs_f64() * 1e6);
        }
        (median(add), median(remove))
    })
    .join()
    .expect("firewall thread")
}

/// Docker's figure and its ratio to the floor, or dashes where it has none.
fn docker_cells(docker: f64, floor: f64, decimals: usize) -> String {
    if docker.is_nan() {
        "– | –".to_string()
    } else {
        format!("{docker:.decimals$} | {:.2}", docker / floor)
    }
}

fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("ports bench: needs root, skipped");
        return;
    }
    clean_up_on_signals();
    let cfg = Config::from_env();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "published ports: {} repetition(s) of {} s each, median shown; {cores} cores, load {} at start",
        cfg.reps,
        cfg.seconds,
        load()
    );
    let mut w = World::new();
    w.api("POST", "/networks/create", Some(&json!({"Name": "pb"})));
    let web = format!("nbb-w{}", rand_hex(6));
    let bindings = json!({
        format!("{IPERF}/tcp"): [{"HostPort": IPERF_PUBLISHED.to_string()}],
        format!("{ACCEPT}/tcp"): [{"HostPort": ACCEPT_PUBLISHED.to_string()}]});
    let addr = w.container(&web, "pb", bindings);
    let (client, daemon) = (w.client_ns.clone(), w.daemon_ns.clone());
    accept_forever(&web);
    let iperf3 = run("iperf3", &["--version"]).status.success();
    if iperf3 {
        w.spawn_in(&web, &["iperf3", "-s", "-p", &IPERF.to_string()]);
        std::thread::sleep(Duration::from_millis(500));
    } else {
        println!("iperf3 not installed: throughput rows skipped");
    }
    let direct = addr.to_string();
    // Docker's loopback path: docker-proxy in the host's namespace, one process per port, as
    // dockerd starts it for `-p` (its default, --userland-proxy=true).
    let proxy = Path::new(DOCKER_PROXY).exists();
    if proxy {
        for (host_port, port) in [(IPERF_PROXIED, IPERF), (ACCEPT_PROXIED, ACCEPT)] {
            // Its readiness pipe is fd 3, as dockerd gives it; without one it closes its own
            // listener (which then takes fd 3).
            let command = format!(
                "exec {DOCKER_PROXY} -proto tcp -host-ip 127.0.0.1 -host-port {host_port} \
                 -container-ip {direct} -container-port {port} 3>/dev/null"
            );
            w.spawn_in(&daemon, &["sh", "-c", &command]);
        }
        std::thread::sleep(Duration::from_millis(500));
    } else {
        println!("{DOCKER_PROXY} not found: Docker's column skipped");
    }
    let paths: [(&str, &str, &str); 2] = [
        ("client namespace", &client, HOST_IP),
        ("host loopback", &daemon, "127.0.0.1"),
    ];
    println!();
    println!(
        "| traffic | from | published port | straight to the container (floor) | ratio | Docker's docker-proxy | its ratio |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (label, ns, host) in paths {
        if iperf3 {
            let (mut through, mut floor) = (Vec::new(), Vec::new());
            // Alternating which goes first, so a change in the machine's load hits both.
            for rep in 0..cfg.reps {
                if rep % 2 == 1 {
                    floor.push(iperf(ns, &direct, IPERF, cfg.seconds));
                }
                through.push(iperf(ns, host, IPERF_PUBLISHED, cfg.seconds));
                if rep % 2 == 0 {
                    floor.push(iperf(ns, &direct, IPERF, cfg.seconds));
                }
            }
            let mut docker = Vec::new();
            if proxy && host == "127.0.0.1" {
                for _ in 0..cfg.reps {
                    docker.push(iperf(ns, host, IPERF_PROXIED, cfg.seconds));
                }
            }
            let (t, f, d) = (median(through), median(floor), median(docker));
            println!(
                "| TCP throughput (iperf3, Gbit/s) | {label} | {t:.2} | {f:.2} | {:.2} | {} |",
                t / f,
                docker_cells(d, f, 2)
            );
        }
        let (mut through, mut floor) = (Vec::new(), Vec::new());
        let published: SocketAddr = format!("{host}:{ACCEPT_PUBLISHED}").parse().expect("addr");
        let straight = SocketAddr::new(addr, ACCEPT);
        for rep in 0..cfg.reps {
            if rep % 2 == 1 {
                floor.push(connection_rate(ns, straight, cfg.seconds));
            }
            through.push(connection_rate(ns, published, cfg.seconds));
            if rep % 2 == 0 {
                floor.push(connection_rate(ns, straight, cfg.seconds));
            }
        }
        let mut docker = Vec::new();
        if proxy && host == "127.0.0.1" {
            let proxied: SocketAddr = format!("{host}:{ACCEPT_PROXIED}").parse().expect("addr");
            for _ in 0..cfg.reps {
                docker.push(connection_rate(ns, proxied, cfg.seconds));
            }
        }
        let (t, f, d) = (median(through), median(floor), median(docker));
        println!(
            "| TCP connections/s (sequential) | {label} | {t:.0} | {f:.0} | {:.2} | {} |",
            t / f,
            docker_cells(d, f, 0)
        );
    }
    drop(w);
    println!();
    println!("| firewall, one port | with 0 published | with {PUBLISHED} published | target |");
    println!("|---|---:|---:|---|");
    let (add0, remove0) = firewall_cost(0, cfg.samples);
    let (add, remove) = firewall_cost(PUBLISHED, cfg.samples);
    println!(
        "| publish (µs, median of {}) | {add0:.0} | {add:.0} | < 1000 |",
        cfg.samples
    );
    println!(
        "| unpublish (µs, median of {}) | {remove0:.0} | {remove:.0} | < 1000 |",
        cfg.samples
    );
    println!("\nload {} at the end", load());
}
