//! Three "hosts" for the overlay tests: three throwaway namespaces, each running a netbridge
//! daemon and one member of a three-member etcd cluster, joined by an underlay bridge in a
//! fourth. Underlay addresses and etcd ports exist only inside these namespaces; etcd's data
//! lives in a temp dir. Everything is removed on drop, also when a test fails.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Daemon, Netns, Value, eventually, json, must, rand_hex, run};

/// Lease of each host in the tests: short, so a dead host vanishes quickly.
pub const LEASE_SECS: u64 = 3;

/// One etcd member, killed and its data removed on drop.
pub struct EtcdMember {
    child: Option<Child>,
    pub dir: PathBuf,
    pub ns: String,
    args: Vec<String>,
}

impl EtcdMember {
    pub fn pid(&self) -> String {
        self.child
            .as_ref()
            .map(|c| c.id().to_string())
            .unwrap_or_default()
    }

    /// SIGSTOP: the member stops answering without closing its sockets. Returns once every
    /// thread has stopped: until the one thread woken for the signal runs, the others go on.
    pub fn pause(&self) {
        must("kill", &["-STOP", &self.pid()]);
        assert!(
            eventually(5, || self.stopped()),
            "etcd member {} did not stop",
            self.pid()
        );
    }

    /// Whether every thread of the member is stopped.
    pub fn stopped(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return false;
        };
        tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
    }

    pub fn resume(&self) {
        must("kill", &["-CONT", &self.pid()]);
    }

    /// SIGKILL: the member is gone, its sockets closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed member again from its data.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "etcd member still running");
        self.child = Some(spawn_etcd(&self.ns, &self.dir, &self.args));
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The three hosts. Field order is drop order: etcd, then daemons, then the underlay.
pub struct Hosts {
    pub etcd: Vec<EtcdMember>,
    pub hosts: Vec<Daemon>,
    pub underlay: Netns,
}

/// A failed test keeps every log: it runs before the fields drop (and delete them).
impl Drop for Hosts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.keep_logs("failed"));
        }
    }
}

pub fn host_addr(i: usize) -> String {
    format!("10.9.0.{}", i + 1)
}

impl Hosts {
    pub fn new() -> Hosts {
        let underlay = Netns::new("nbt-ul");
        underlay.ip(&["link", "add", "ul", "type", "bridge"]);
        underlay.ip(&["link", "set", "ul", "up"]);
        let store = format!(
            "etcd://{}",
            (0..3)
                .map(|i| format!("{}:2379", host_addr(i)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut hosts = Vec::new();
        for i in 0..3 {
            let addr = host_addr(i);
            let lease = LEASE_SECS.to_string();
            let d = Daemon::start_with(&[
                "--cluster-store",
                &store,
                "--advertise-addr",
                &addr,
                "--cluster-lease",
                &lease,
            ]);
            let port = format!("ulp{i}");
            must(
                "ip",
                &[
                    "link",
                    "add",
                    &port,
                    "netns",
                    &underlay.name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &d.ns.name,
                ],
            );
            underlay.ip(&["link", "set", &port, "master", "ul", "up"]);
            d.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            d.ip(&["link", "set", "eth0", "up"]);
            hosts.push(d);
        }
        let token = rand_hex(8);
        let cluster: Vec<String> = (0..3)
            .map(|i| format!("h{i}=http://{}:2380", host_addr(i)))
            .collect();
        let cluster = cluster.join(",");
        let mut etcd = Vec::new();
        for (i, d) in hosts.iter().enumerate() {
            let addr = host_addr(i);
            let dir = std::env::temp_dir().join(format!("netbridge-etcd-{}-{i}", d.ns.name));
            let args: Vec<String> = [
                "--name",
                &format!("h{i}"),
                "--listen-client-urls",
                &format!("http://{addr}:2379"),
                "--advertise-client-urls",
                &format!("http://{addr}:2379"),
                "--listen-peer-urls",
                &format!("http://{addr}:2380"),
                "--initial-advertise-peer-urls",
                &format!("http://{addr}:2380"),
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                &token,
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            etcd.push(start_etcd(&d.ns.name, dir, &args));
        }
        let h = Hosts {
            etcd,
            hosts,
            underlay,
        };
        for d in &h.hosts {
            assert!(
                eventually(30, || d.log().contains("cluster lease granted")),
                "host {} got no cluster lease:\n{}\n{}",
                d.ns.name,
                d.log(),
                h.etcd_logs()
            );
        }
        h
    }

    pub fn etcd_logs(&self) -> String {
        self.etcd
            .iter()
            .map(|m| std::fs::read_to_string(m.dir.join("etcd.log")).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// Copies every daemon's and etcd member's log to a directory that outlives the test;
    /// returns its path.
    pub fn keep_logs(&self, what: &str) -> String {
        let dir = std::env::temp_dir().join(format!("netbridge-{what}-{}", self.hosts[0].ns.name));
        let _ = std::fs::create_dir_all(&dir);
        for (i, d) in self.hosts.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("daemon-{i}.log")), d.log());
        }
        for (i, m) in self.etcd.iter().enumerate() {
            let _ = std::fs::copy(m.dir.join("etcd.log"), dir.join(format!("etcd-{i}.log")));
        }
        dir.display().to_string()
    }

    pub fn a(&self) -> &Daemon {
        &self.hosts[0]
    }
}

/// A container on a host: a namespace of its own, connected by name.
pub fn container(_d: &Daemon) -> Netns {
    Netns::new("nbt-c")
}

/// Connects `c` to `net` on host `d`; returns its address.
pub fn connect(d: &Daemon, net: &str, c: &Netns) -> String {
    let r = d.post(
        &format!("/networks/{net}/connect"),
        &json!({ "Container": c.name }),
    );
    assert_eq!(r.status, 200, "connect {} to {net}: {}", c.name, r.body);
    address_of(d, net, &c.name)
}

/// Connects `c` to `net` on host `d` once the cluster answers again (within `secs`); returns
/// its address.
pub fn connect_when_back(d: &Daemon, net: &str, c: &Netns, secs: u64) -> String {
    let connected = eventually(secs, || {
        let r = d.post(
            &format!("/networks/{net}/connect"),
            &json!({ "Container": c.name }),
        );
        r.status == 200
    });
    assert!(
        connected,
        "connect {} to {net} after the cluster came back",
        c.name
    );
    address_of(d, net, &c.name)
}

/// The IPv4 address (without prefix) of container `name` on `net`, as `d` inspects it.
pub fn address_of(d: &Daemon, net: &str, name: &str) -> String {
    let v = d.get(&format!("/networks/{net}")).json();
    containers(&v)
        .into_iter()
        .find(|e| e["Name"] == name)
        .and_then(|e| {
            e["IPv4Address"]
                .as_str()
                .map(|a| a.split('/').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("{name} not on {net}: {v}"))
}

pub fn containers(inspect: &Value) -> Vec<Value> {
    inspect["Containers"]
        .as_object()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

/// Whether one ping from `from` to `ip` is answered within a second.
pub fn pings(from: &Netns, ip: &str) -> bool {
    from.exec(&["ping", "-c", "1", "-W", "1", ip])
        .status
        .success()
}

/// Waits up to `secs` for `from` to reach `ip`.
pub fn reaches(from: &Netns, ip: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if pings(from, ip) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The VXLAN link's own FDB entries on host `d` (remote MACs with their host), without what
/// the bridge learned on its port.
pub fn fdb(d: &Daemon, vxlan: &str) -> String {
    String::from_utf8_lossy(&run("bridge", &["-n", &d.ns.name, "fdb", "show", "dev", vxlan]).stdout)
        .lines()
        .filter(|l| l.contains(" dst "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The VXLAN link of network `id`.
pub fn vxlan_of(id: &str) -> String {
    format!("vx-{}", &id[..12])
}

/// Starts one etcd member inside namespace `ns` with `args`; its data and log in `dir`.
pub fn start_etcd(ns: &str, dir: PathBuf, args: &[String]) -> EtcdMember {
    std::fs::create_dir_all(&dir).expect("etcd dir");
    EtcdMember {
        child: Some(spawn_etcd(ns, &dir, args)),
        dir,
        ns: ns.to_string(),
        args: args.to_vec(),
    }
}

fn spawn_etcd(ns: &str, dir: &std::path::Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .expect("etcd log");
    let netns = format!("--net=/run/netns/{ns}");
    let data = dir.join("data").display().to_string();
    Command::new("nsenter")
        .args([netns.as_str(), "--", "etcd", "--data-dir", &data])
        .args(args)
        // Its own process group: a paused (SIGSTOP) member must not get the SIGHUP the kernel
        // sends to stopped processes of a group that becomes orphaned, e.g. when the shell that
        // started the test suite exits; etcd dies of it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start etcd (is etcd-server installed?)")
}
