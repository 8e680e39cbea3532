//! Published ports (`docker run -p`, `-P`) through the stock docker CLI, with real traffic
//! between throwaway namespaces: the daemon's namespace stands for the host, a client
//! namespace joined to it by a veth for another machine, and a small Python server in the
//! container's namespace answers with its name and the address it saw. Nothing leaves these
//! namespaces.

mod attach;
mod common;

use std::process::{Child, Command, Stdio};

use attach::*;
use common::consistency::assert_consistent;
use common::{Daemon, Netns, Value, eventually, must, run};

/// The link between the daemon's namespace (the host) and the client's (another machine).
const HOST_IP: &str = "198.18.77.1";
const CLIENT_IP: &str = "198.18.77.2";
const HOST_IP6: &str = "fd77:9::1";
const CLIENT_IP6: &str = "fd77:9::2";

/// Answers every TCP connection and UDP datagram with `<name> <peer address>`.
const SERVER: &str = r#"
import socket, sys, threading
tok, tcp, udp = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
def serve_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", udp))
    while True:
        d, a = s.recvfrom(100)
        s.sendto(tok + b" " + a[0].encode(), a)
threading.Thread(target=serve_udp, daemon=True).start()
t = socket.socket(socket.AF_INET6)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.bind(("::", tcp))
t.listen(64)
while True:
    c, a = t.accept()
    c.sendall(tok + b" " + a[0].removeprefix("::ffff:").encode())
    c.close()
"#;

/// One request: prints the answer, or fails.
const CLIENT: &str = r#"
import socket, sys
h, p, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in h else socket.AF_INET
if proto == "tcp":
    s = socket.socket(fam)
    s.settimeout(2)
    s.connect((h, p))
    print(s.recv(200).decode())
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"x", (h, p))
    print(s.recv(200).decode())
"#;

/// Holds a port the way another program would (bound and listening), until dropped.
const LISTENER: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
time.sleep(3600)
"#;

/// The test's world: the daemon, a client namespace, the containers and processes it made;
/// all removed on drop.
struct Lab {
    d: Daemon,
    client: Netns,
    names: Vec<String>,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        let d = Daemon::start();
        let client = Netns::new("nbt");
        let host_end = format!("nbtc{}", common::rand_hex(4));
        d.ip(&[
            "link",
            "add",
            &host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &client.name,
        ]);
        d.ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", &host_end]);
        d.ip(&["link", "set", &host_end, "up"]);
        d.ip(&["link", "set", "lo", "up"]);
        client.ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "eth0"]);
        d.ip(&[
            "addr",
            "add",
            &format!("{HOST_IP6}/64"),
            "dev",
            &host_end,
            "nodad",
        ]);
        client.ip(&[
            "addr",
            "add",
            &format!("{CLIENT_IP6}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        client.ip(&["link", "set", "eth0", "up"]);
        Lab {
            d,
            client,
            names: Vec::new(),
            children: Vec::new(),
        }
    }

    fn fresh(&mut self) -> String {
        let name = format!("nbt-{}", common::rand_hex(8));
        self.names.push(name.clone());
        name
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        self.d.docker(args)
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        self.d.docker_ok(args)
    }

    /// `docker run -d <flags> --name <name> busybox sleep`, then the server in its namespace.
    fn run(&mut self, flags: &[&str]) -> String {
        let name = self.fresh();
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--name", &name, "busybox", "sleep", "3600"]);
        self.docker_ok(&args);
        self.serve(&name);
        name
    }

    /// `docker run -d <flags> --name <name> busybox sleep`, expected to fail: the name and
    /// the CLI's error output.
    fn refused_run(&mut self, flags: &[&str]) -> (String, String) {
        let name = self.fresh();
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--name", &name, "busybox", "sleep", "1"]);
        let out = self.docker(&args);
        assert!(!out.status.success(), "{args:?} was not refused");
        (name, stderr(&out))
    }

    /// The answering server inside container `name`: TCP 80, UDP 5300 (53 is the resolver's).
    fn serve(&mut self, name: &str) {
        let child = Command::new("ip")
            .args([
                "netns", "exec", name, "python3", "-c", SERVER, name, "80", "5300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 server");
        self.children.push(child);
    }

    /// Another program holding `port` in the daemon's namespace.
    fn hold(&mut self, port: u16) {
        let mut child = Command::new("nsenter")
            .args([
                &format!("--net=/run/netns/{}", self.d.ns.name),
                "python3",
                "-c",
                LISTENER,
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 listener");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("ready");
        assert_eq!(line.trim(), "ready");
        self.children.push(child);
    }

    /// One request from namespace `ns` (a file under /run/netns): the answer, or None.
    fn ask_from(&self, ns: &str, host: &str, port: u16, proto: &str) -> Option<String> {
        let out = run(
            "nsenter",
            &[
                &format!("--net=/run/netns/{ns}"),
                "python3",
                "-c",
                CLIENT,
                host,
                &port.to_string(),
                proto,
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The answer once the server is up (a few tries), or None.
    fn reach(&self, ns: &str, host: &str, port: u16, proto: &str) -> Option<String> {
        let mut answer = None;
        eventually(8, || {
            answer = self.ask_from(ns, host, port, proto);
            answer.is_some()
        });
        answer
    }

    fn inspect(&self, name: &str) -> Value {
        let r = self.d.get(&format!("/containers/{name}/json"));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// The container's address on a network.
    fn address(&self, name: &str, network: &str) -> String {
        self.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn gateway(&self, network: &str) -> String {
        let n = self.d.get(&format!("/networks/{network}")).json();
        n["IPAM"]["Config"][0]["Gateway"]
            .as_str()
            .expect("gateway")
            .to_string()
    }

    /// The elements of one of the firewall's port maps, as nft lists them.
    fn map(&self, map: &str) -> Vec<String> {
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.d.ns.name,
                "nft",
                "-j",
                "list",
                "map",
                "inet",
                "netbridge",
                map,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("nft json");
        let mut elems: Vec<String> = v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["map"]["elem"].as_array())
            .flatten()
            .map(|e| e.to_string())
            .collect();
        elems.sort();
        elems
    }

    /// The rules of the table, whatever the elements (they must never grow).
    fn rule_count(&self) -> usize {
        let out = must(
            "ip",
            &[
                "netns",
                "exec",
                &self.d.ns.name,
                "nft",
                "-j",
                "list",
                "table",
                "inet",
                "netbridge",
            ],
        );
        let v: Value = serde_json::from_str(&out).expect("nft json");
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o.get("rule").is_some())
            .count()
    }

    /// Whether another program could bind `port` in the daemon's namespace now.
    fn bindable(&self, port: u16) -> bool {
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0',{port}))"
        );
        run(
            "nsenter",
            &[
                &format!("--net=/run/netns/{}", self.d.ns.name),
                "python3",
                "-c",
                &script,
            ],
        )
        .status
        .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for name in &self.names {
            let status = try_status(&self.d, "DELETE", &format!("/containers/{name}?force=1"));
            if !matches!(status, Some(204) | Some(404)) && netns_exists(name) {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn network(lab: &Lab, extra: &[&str]) -> String {
    let name = format!("nbt-{}", common::rand_hex(6));
    let mut args = vec!["network", "create"];
    args.extend_from_slice(extra);
    args.push(&name);
    lab.docker_ok(&args);
    name
}

#[test]
fn a_published_port_answers_from_another_machine_the_host_and_other_containers() {
    let mut lab = Lab::new();
    let net_a = network(&lab, &[]);
    let net_b = network(&lab, &[]);
    let web = lab.run(&["-p", "8080:80", "-p", "5353:5300/udp", "--network", &net_a]);
    let peer = lab.run(&["--network", &net_a]);
    let other = lab.run(&["--network", &net_b]);
    let d_ns = lab.d.ns.name.clone();
    let client = lab.client.name.clone();

    // The docker CLI shows them as Docker does.
    let port = lab.docker_ok(&["port", &web]);
    assert!(port.contains("80/tcp -> 0.0.0.0:8080"), "{port}");
    assert!(port.contains("5300/udp -> 0.0.0.0:5353"), "{port}");
    let ps = lab.docker_ok(&[
        "ps",
        "--filter",
        &format!("name={web}"),
        "--format",
        "{{.Ports}}",
    ]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    assert!(ps.contains("0.0.0.0:5353->5300/udp"), "{ps}");
    let inspected = lab.inspect(&web);
    assert_eq!(
        inspected["NetworkSettings"]["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}])
    );
    assert_eq!(
        inspected["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "8080"
    );

    // From another machine: the client's own address reaches the container (no proxy).
    let answer = lab.reach(&client, HOST_IP, 8080, "tcp");
    assert_eq!(
        answer.as_deref(),
        Some(format!("{web} {CLIENT_IP}").as_str())
    );
    let answer = lab.reach(&client, HOST_IP, 5353, "udp");
    assert_eq!(
        answer.as_deref(),
        Some(format!("{web} {CLIENT_IP}").as_str())
    );

    // From the host itself: its own address, and 127.0.0.1 (masqueraded to the gateway).
    let gw_a = lab.gateway(&net_a);
    assert!(lab.reach(&d_ns, HOST_IP, 8080, "tcp").is_some());
    let answer = lab.reach(&d_ns, "127.0.0.1", 8080, "tcp");
    assert_eq!(answer.as_deref(), Some(format!("{web} {gw_a}").as_str()));
    assert!(lab.reach(&d_ns, "127.0.0.1", 5353, "udp").is_some());

    // Hairpin: a container of the same network, and one of another, through the host.
    // The peer is seen as the gateway (masqueraded, routed hairpin) or as itself (with
    // br_netfilter the bridge forwards the DNATed packet and conntrack undoes it on the way
    // back), as on Docker.
    let peer_ip = lab.address(&peer, &net_a);
    let answer = lab.reach(&peer, HOST_IP, 8080, "tcp").unwrap_or_default();
    assert!(
        answer == format!("{web} {gw_a}") || answer == format!("{web} {peer_ip}"),
        "{answer:?}"
    );
    assert!(lab.reach(&other, HOST_IP, 8080, "tcp").is_some());
    assert!(lab.reach(&peer, HOST_IP, 5353, "udp").is_some());
}

#[test]
fn conflicts_are_refused_and_change_nothing() {
    let mut lab = Lab::new();
    let net = network(&lab, &[]);
    let web = lab.run(&["-p", "8080:80", "--network", &net]);
    let before = lab.map("ports_v4");
    assert_eq!(before.len(), 1, "{before:?}");
    // netbridge holds the host port: no other program can take it.
    assert!(!lab.bindable(8080), "8080 is held by the daemon");

    // Docker's words for a port already published.
    let (second, err) = lab.refused_run(&["-p", "8080:80", "--network", &net]);
    assert!(
        err.contains("Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{err}"
    );
    assert_eq!(lab.map("ports_v4"), before);
    let state = lab.inspect(&second)["State"]["Running"].clone();
    assert_eq!(state, false);
    assert_eq!(
        lab.inspect(&second)["NetworkSettings"]["Networks"][&net]["IPAddress"],
        ""
    );

    // A port another program listens on is refused, as Docker's bound socket refuses it.
    lab.hold(9090);
    let (_, err) = lab.refused_run(&["-p", "9090:80", "--network", &net]);
    assert!(err.contains("address already in use"), "{err}");
    assert_eq!(lab.map("ports_v4"), before);

    // A range takes its first free port; an ephemeral one comes from ip_local_port_range.
    let ranged = lab.run(&["-p", "8080-8082:80", "--network", &net]);
    assert!(lab.docker_ok(&["port", &ranged]).contains("0.0.0.0:8081"));
    let ephemeral = lab.run(&["-p", "80", "--network", &net]);
    let range = must(
        "ip",
        &[
            "netns",
            "exec",
            &lab.d.ns.name,
            "cat",
            "/proc/sys/net/ipv4/ip_local_port_range",
        ],
    );
    let (lo, hi) = {
        let v: Vec<u16> = range
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        (v[0], v[1])
    };
    let host_port: u16 =
        lab.inspect(&ephemeral)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a host port");
    assert!((lo..=hi).contains(&host_port), "{host_port} in {range}");
    let client = lab.client.name.clone();
    assert_eq!(
        lab.reach(&client, HOST_IP, host_port, "tcp"),
        Some(format!("{ephemeral} {CLIENT_IP}"))
    );
    // -P publishes every exposed port.
    let all = lab.run(&["-P", "--expose", "7000", "--network", &net]);
    let port = lab.docker_ok(&["port", &all]);
    assert!(port.contains("7000/tcp -> 0.0.0.0:"), "{port}");

    // 127.0.0.1 only: the host's loopback reaches it, another machine does not.
    let local = lab.run(&["-p", "127.0.0.1:8383:80", "--network", &net]);
    let d_ns = lab.d.ns.name.clone();
    assert_eq!(
        lab.reach(&d_ns, "127.0.0.1", 8383, "tcp")
            .map(|a| a.starts_with(&local)),
        Some(true)
    );
    assert!(lab.ask_from(&client, HOST_IP, 8383, "tcp").is_none());
    assert!(lab.docker_ok(&["port", &web]).contains("0.0.0.0:8080"));
    assert_consistent(&lab.d, "ranges, ephemeral, -P and 127.0.0.1 published");
}

#[test]
fn ports_follow_stop_start_disconnect_connect_and_a_crash() {
    let mut lab = Lab::new();
    let net_a = network(&lab, &[]);
    let net_b = network(&lab, &[]);
    let web = lab.run(&["-p", "8080:80", "--network", &net_a]);
    let client = lab.client.name.clone();
    let rules = lab.rule_count();
    let expect = |lab: &Lab, network: &str| {
        let addr = lab.address(&web, network);
        let map = lab.map("ports_v4");
        assert_eq!(map.len(), 1, "{map:?}");
        assert!(map[0].contains(&addr), "{map:?} points at {addr}");
    };
    expect(&lab, &net_a);
    assert!(lab.reach(&client, HOST_IP, 8080, "tcp").is_some());

    // Stopped: nothing published, nothing held. Started again: back.
    lab.docker_ok(&["stop", "-t", "0", &web]);
    assert!(lab.map("ports_v4").is_empty());
    assert!(lab.bindable(8080));
    assert_eq!(
        lab.inspect(&web)["NetworkSettings"]["Ports"],
        serde_json::json!({})
    );
    lab.docker_ok(&["start", &web]);
    lab.serve(&web);
    expect(&lab, &net_a);
    assert!(lab.reach(&client, HOST_IP, 8080, "tcp").is_some());

    // Connected to a second network and disconnected from the first: the ports move along.
    lab.docker_ok(&["network", "connect", &net_b, &web]);
    expect(&lab, &net_a);
    lab.docker_ok(&["network", "disconnect", &net_a, &web]);
    expect(&lab, &net_b);
    assert_consistent(&lab.d, "ports moved to the second network");
    assert!(lab.reach(&client, HOST_IP, 8080, "tcp").is_some());
    lab.docker_ok(&["network", "connect", &net_a, &web]);
    // Back on its network mode's network, which publishes first.
    expect(&lab, &net_a);

    // kill -9 and restart: the same one element, the same rules, the port still works.
    lab.d.kill();
    lab.d.restart();
    expect(&lab, &net_a);
    assert_consistent(&lab.d, "after kill -9 and restart");
    assert_eq!(lab.rule_count(), rules);
    assert!(!lab.bindable(8080), "held again after the restart");
    assert!(lab.reach(&client, HOST_IP, 8080, "tcp").is_some());
}

#[test]
fn ipv6_where_the_network_has_it() {
    let mut lab = Lab::new();
    let net = network(&lab, &["--ipv6", "--subnet", "fd77:1::/64"]);
    let web = lab.run(&["-p", "8080:80", "--network", &net]);
    let ports = lab.inspect(&web)["NetworkSettings"]["Ports"]["80/tcp"].clone();
    assert_eq!(
        ports,
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"},
            {"HostIp": "::", "HostPort": "8080"}])
    );
    assert!(lab.docker_ok(&["port", &web]).contains("[::]:8080"));
    assert_eq!(lab.map("ports_v6").len(), 1);
    let client = lab.client.name.clone();
    assert_eq!(
        lab.reach(&client, HOST_IP6, 8080, "tcp"),
        Some(format!("{web} {CLIENT_IP6}"))
    );
    assert_eq!(
        lab.reach(&client, HOST_IP, 8080, "tcp"),
        Some(format!("{web} {CLIENT_IP}"))
    );
    // One host address of one family: only that family.
    let v6_only = lab.run(&["-p", &format!("[{HOST_IP6}]:8181:80"), "--network", &net]);
    assert_eq!(lab.map("ports_addr_v6").len(), 1);
    assert!(lab.map("ports_addr_v4").is_empty());
    assert_eq!(
        lab.reach(&client, HOST_IP6, 8181, "tcp")
            .map(|a| a.starts_with(&v6_only)),
        Some(true)
    );
    assert_consistent(&lab.d, "IPv4 and IPv6 published");
}

#[test]
fn an_internal_network_publishes_nothing() {
    let mut lab = Lab::new();
    let net = network(&lab, &["--internal"]);
    let web = lab.run(&["-p", "8484:80", "--network", &net]);
    assert!(lab.map("ports_v4").is_empty());
    assert!(lab.bindable(8484));
    let port = lab.docker_ok(&["port", &web]);
    assert!(!port.contains("8484"), "{port}");
    let client = lab.client.name.clone();
    assert!(lab.ask_from(&client, HOST_IP, 8484, "tcp").is_none());
}

#[test]
fn bad_port_specifications_are_refused_at_create() {
    let lab = Lab::new();
    let r = lab.d.post(
        "/containers/create",
        &serde_json::json!({"Image": "busybox",
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "nope"}]}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("invalid hostPort: nope"), "{}", r.body);
    let r = lab.d.get("/containers/json?all=1");
    assert_eq!(r.json().as_array().map(Vec::len), Some(0), "{}", r.body);
}
