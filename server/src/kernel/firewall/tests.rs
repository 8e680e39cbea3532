//! Firewall tests. The pure ones check the script text; every kernel-touching one runs on a
//! thread that first unshares a fresh network namespace (its `nft`, `ip` and `ping` children
//! inherit it, which each test checks), so the machine's own ruleset is never touched.
//! "Containers" and the "outside" are namespaces named `nbt-fw-…`, deleted on drop (also when
//! a test panics).

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Child, Command, Output, Stdio},
    thread,
};

use nix::sched::{CloneFlags, unshare};
use serde_json::{Value, json};

use super::{
    Firewall, NetworkRules, Nftables,
    host::{self, COMMENT},
    script::{self, Checked, FORWARD_MARK},
};
use crate::kernel::KernelError;

// ---------------------------------------------------------------------------------------------
// Helpers

fn v4(s: &str, prefix: u8) -> (IpAddr, u8) {
    (
        IpAddr::V4(s.parse::<Ipv4Addr>().expect("IPv4 literal")),
        prefix,
    )
}

fn v6(s: &str, prefix: u8) -> (IpAddr, u8) {
    (
        IpAddr::V6(s.parse::<Ipv6Addr>().expect("IPv6 literal")),
        prefix,
    )
}

fn net(bridge: &str, subnets: Vec<(IpAddr, u8)>) -> NetworkRules {
    NetworkRules {
        bridge: bridge.to_string(),
        subnets,
        internal: false,
        icc: true,
        masquerade: true,
    }
}

/// Runs `body` on a new thread that first moves into a new, empty network namespace. `None`
/// (test skipped) without the privilege to make one: never fall back to the machine's own.
fn in_throwaway_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let test = thread::spawn(move || {
        match unshare(CloneFlags::CLONE_NEWNET) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) => {
                eprintln!("SKIPPED: needs CAP_SYS_ADMIN to make a throwaway network namespace");
                return None;
            }
            Err(e) => panic!("unshare a throwaway network namespace: {e}"),
        }
        // Children fork from this thread and so start in its namespace, not the process's.
        let mine = fs::read_link("/proc/thread-self/ns/net").expect("this thread's netns");
        let process = fs::read_link("/proc/self/ns/net").expect("the process's netns");
        assert_ne!(mine, process, "the thread has its own namespace");
        let child = run("readlink", &["/proc/self/ns/net"]);
        assert_eq!(
            String::from_utf8_lossy(&child.stdout).trim(),
            mine.to_string_lossy(),
            "child processes run in the thread's throwaway namespace"
        );
        must("ip", &["link", "set", "lo", "up"]);
        Some(body())
    });
    match test.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program} {args:?}: {e}"))
}

fn must(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn has_binary(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn read_sysctl(key: &str) -> String {
    fs::read_to_string(format!("/proc/sys/{key}"))
        .unwrap_or_else(|e| panic!("read {key}: {e}"))
        .trim()
        .to_string()
}

/// `nft -j list table inet <table>`'s objects.
fn table_objects(table: &str) -> Vec<Value> {
    let out = must("nft", &["-j", "list", "table", "inet", table]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("nft -j output");
    v["nftables"].as_array().cloned().unwrap_or_default()
}

fn count(objects: &[Value], kind: &str) -> usize {
    objects.iter().filter(|o| o.get(kind).is_some()).count()
}

/// The elements of one set, as nft -j prints them.
fn elements(objects: &[Value], set: &str) -> Vec<Value> {
    objects
        .iter()
        .filter_map(|o| o.get("set"))
        .find(|s| s["name"] == set)
        .and_then(|s| s["elem"].as_array().cloned())
        .unwrap_or_default()
}

/// A named namespace `nbt-fw-<tag>-<random>`, deleted on drop.
struct TestNs {
    name: String,
}

impl TestNs {
    fn new(tag: &str) -> TestNs {
        let name = format!("nbt-fw-{tag}-{:08x}", rand::random::<u32>());
        must("ip", &["netns", "add", &name]);
        let ns = TestNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        must("ip", &full);
    }

    /// Starts `ping` towards `to` (two echoes, 1 s wait): true when any answer comes back.
    fn ping(&self, to: &str) -> Child {
        Command::new("ip")
            .args([
                "netns", "exec", &self.name, "ping", "-n", "-q", "-c2", "-i0.2", "-W1", to,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ping")
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A "container": a namespace whose eth0 is a veth into `bridge` in the test's namespace.
fn container(tag: &str, bridge: &str, addrs: &[(&str, &str)]) -> TestNs {
    let ns = TestNs::new(tag);
    let host_end = format!("v{tag}");
    must(
        "ip",
        &[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ],
    );
    must("ip", &["link", "set", &host_end, "master", bridge, "up"]);
    for (addr, gateway) in addrs {
        let v6 = addr.contains(':');
        let mut add = vec!["addr", "add", addr, "dev", "eth0"];
        if v6 {
            add.push("nodad");
        }
        ns.ip(&add);
        ns.ip(&["link", "set", "eth0", "up"]);
        let family = if v6 { "-6" } else { "-4" };
        ns.ip(&[family, "route", "add", "default", "via", gateway]);
    }
    ns
}

/// A bridge in the test's namespace with gateway addresses.
fn bridge(name: &str, gateways: &[&str]) {
    must("ip", &["link", "add", name, "type", "bridge"]);
    for gw in gateways {
        let mut add = vec!["addr", "add", gw, "dev", name];
        if gw.contains(':') {
            add.push("nodad");
        }
        must("ip", &add);
    }
    must("ip", &["link", "set", name, "up"]);
}

/// ICMP echo requests received so far in a namespace (`InEchos` of /proc/net/snmp).
fn echo_requests_received(ns: &TestNs) -> u64 {
    let out = must("ip", &["netns", "exec", &ns.name, "cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (
        icmp.next().expect("Icmp header"),
        icmp.next().expect("Icmp values"),
    );
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "InEchos")
        .and_then(|(_, value)| value.parse().ok())
        .expect("InEchos")
}

/// Not just "no answer": the echo requests of each `(from, to, to_ip)` never arrive in `to`
/// (so each direction is blocked, not only the replies). Receivers must differ.
fn expect_never_arrive(phase: &str, checks: &[(&TestNs, &TestNs, &str)]) {
    let before: Vec<u64> = checks
        .iter()
        .map(|(_, to, _)| echo_requests_received(to))
        .collect();
    let children: Vec<Child> = checks.iter().map(|(from, _, ip)| from.ping(ip)).collect();
    let mut wrong = Vec::new();
    for (((from, to, ip), mut child), before) in checks.iter().zip(children).zip(before) {
        let answered = child.wait().expect("wait for ping").success();
        let arrived = echo_requests_received(to) - before;
        if answered || arrived > 0 {
            wrong.push(format!(
                "{} → {ip}: {arrived} echo requests arrived, answered: {answered}",
                from.name
            ));
        }
    }
    assert!(wrong.is_empty(), "{phase}: {wrong:#?}");
}

/// Runs all pings at once (a blocked one costs its full timeout) and compares with the
/// expectations, reporting every mismatch together.
fn expect_pings(phase: &str, checks: &[(&TestNs, &str, bool)]) {
    let children: Vec<Child> = checks.iter().map(|(ns, to, _)| ns.ping(to)).collect();
    let mut wrong = Vec::new();
    for ((ns, to, expected), mut child) in checks.iter().zip(children) {
        let reached = child.wait().expect("wait for ping").success();
        if reached != *expected {
            wrong.push(format!(
                "{} → {to}: {}",
                ns.name,
                if reached { "reached" } else { "blocked" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{phase}: unexpected: {wrong:#?}");
}

// ---------------------------------------------------------------------------------------------
// The script text (no kernel)

#[test]
fn the_ruleset_is_fixed_and_networks_are_elements() {
    let nets = [
        net("br-a", vec![v4("10.1.0.0", 24), v6("fd01::", 64)]),
        NetworkRules {
            internal: true,
            ..net("br-i", vec![v4("10.3.0.0", 24)])
        },
        NetworkRules {
            icc: false,
            masquerade: false,
            ..net("br-n", vec![v4("10.4.0.7", 24)])
        },
    ];
    let checked: Vec<Checked> = nets
        .iter()
        .map(|n| Checked::new(n).expect("valid network"))
        .collect();
    let empty = script::ruleset("netbridge", &[]);
    let full = script::ruleset("netbridge", &checked);
    // The same text up to the elements: networks never add rules.
    assert!(full.starts_with(&empty), "{full}");
    assert!(!empty.contains("element"), "{empty}");
    let elements = &full[empty.len()..];
    for expected in [
        r#"add element inet netbridge bridges { "br-a", "br-i", "br-n" }"#,
        r#"add element inet netbridge same { "br-a" . "br-a", "br-i" . "br-i", "br-n" . "br-n" }"#,
        r#"add element inet netbridge internal { "br-i" }"#,
        r#"add element inet netbridge no_icc { "br-n" }"#,
        // Internal and masquerade=false networks are not masqueraded.
        "add element inet netbridge masq_v4 { 10.1.0.0/24 }",
        "add element inet netbridge masq_v6 { fd01::/64 }",
    ] {
        assert!(
            elements.contains(expected),
            "missing {expected:?} in\n{elements}"
        );
    }
    assert_eq!(elements.lines().count(), 6, "{elements}");
    assert!(empty.starts_with(
        "add table inet netbridge\ndelete table inet netbridge\ntable inet netbridge {"
    ));
    assert!(empty.contains(&format!("meta mark | {FORWARD_MARK:#010x} accept")));

    // Host bits are cleared.
    assert_eq!(checked[2].subnets, vec![v4("10.4.0.0", 24)]);

    // Adding is adds only; removing is add+delete of everything the network could own.
    let add = script::add_network("nb", &checked[0]);
    assert!(
        add.lines().all(|l| l.starts_with("add element inet nb ")),
        "{add}"
    );
    let remove = script::remove_network("nb", &checked[0]);
    let (adds, deletes): (Vec<&str>, Vec<&str>) =
        remove.lines().partition(|l| l.starts_with("add element"));
    assert_eq!(adds.len(), deletes.len(), "{remove}");
    assert!(remove.contains(r#"delete element inet nb internal { "br-a" }"#));
    assert!(remove.contains("delete element inet nb masq_v6 { fd01::/64 }"));
}

#[test]
fn names_and_prefixes_that_could_change_the_script_are_refused() {
    for bad in [
        "",
        "br\"x",
        "br*",
        "br x",
        "br/x",
        "br:x",
        "br\\x",
        ".",
        "..",
        "br-0123456789abc",
        "brü",
    ] {
        let err = Checked::new(&net(bad, vec![])).expect_err(bad);
        assert!(matches!(err, KernelError::Invalid { .. }), "{bad:?}: {err}");
    }
    Checked::new(&net("br-0123456789a", vec![])).expect("15 characters are fine");
    for subnet in [v4("10.0.0.0", 33), v6("fd00::", 129)] {
        assert!(
            Checked::new(&net("br-x", vec![subnet])).is_err(),
            "{subnet:?}"
        );
    }
    assert!(Nftables::with_table("netbridge_test").is_ok());
    for bad in ["", "1abc", "a-b", "a b", "a\"b"] {
        assert!(Nftables::with_table(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_host_rule_goes_to_docker_user_else_forward() {
    let chains = json!({"nftables": [
        {"metainfo": {}},
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD"}},
        {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER"}},
        {"chain": {"family": "ip6", "table": "filter", "name": "FORWARD"}},
        {"chain": {"family": "ip6", "table": "nat", "name": "DOCKER-USER"}},
        {"chain": {"family": "inet", "table": "filter", "name": "FORWARD"}},
    ]});
    assert_eq!(host::target_chain(&chains, "ip"), Some("DOCKER-USER"));
    assert_eq!(host::target_chain(&chains, "ip6"), Some("FORWARD"));
    assert_eq!(host::target_chain(&json!({"nftables": []}), "ip"), None);

    let ours = json!({"nftables": [{"rule": {"expr": [], "comment": COMMENT}}]});
    let other = json!({"nftables": [{"rule": {"expr": [], "comment": "docker"}}, {"rule": {}}]});
    assert!(host::has_our_rule(&ours));
    assert!(!host::has_our_rule(&other));
    assert_eq!(
        host::insert_rule("ip", "DOCKER-USER"),
        format!(
            "insert rule ip filter DOCKER-USER meta mark & 0x01000000 == 0x01000000 counter accept comment \"{COMMENT}\"\n"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Against the kernel, in throwaway namespaces

#[test]
fn apply_all_makes_the_table_replaces_it_and_is_idempotent() {
    in_throwaway_netns(|| {
        assert_eq!(
            run("nft", &["list", "tables"]).stdout,
            b"",
            "a fresh namespace has no tables"
        );
        fs::write("/proc/sys/net/ipv4/ip_forward", "0").expect("reset ip_forward");
        let fw = Nftables::new();
        let a = net("br-a", vec![v4("10.1.0.0", 24), v6("fd01::", 64)]);
        let b = NetworkRules {
            internal: true,
            ..net("br-b", vec![v4("10.2.0.0", 24)])
        };
        fw.apply_all(&[a.clone(), b.clone()]).expect("apply_all");
        assert_eq!(read_sysctl("net/ipv4/ip_forward"), "1");
        assert_eq!(read_sysctl("net/ipv6/conf/all/forwarding"), "1");

        let objects = table_objects("netbridge");
        let chains: Vec<&str> = objects
            .iter()
            .filter_map(|o| o["chain"]["name"].as_str())
            .collect();
        assert_eq!(
            chains,
            [
                "forward",
                "same_bridge",
                "postrouting",
                "published",
                "prerouting",
                "output",
                "localnet"
            ]
        );
        assert_eq!(count(&objects, "set"), 6);
        assert_eq!(count(&objects, "map"), 4);
        assert_eq!(count(&objects, "rule"), 22);
        assert_eq!(
            elements(&objects, "bridges"),
            [json!("br-a"), json!("br-b")]
        );
        assert_eq!(elements(&objects, "internal"), [json!("br-b")]);
        assert_eq!(elements(&objects, "masq_v4").len(), 1);
        assert_eq!(elements(&objects, "masq_v6").len(), 1);

        // Idempotent: the same ruleset again, nothing doubled.
        let before = must("nft", &["list", "ruleset"]).stdout;
        fw.apply_all(&[a.clone(), b]).expect("apply_all again");
        assert_eq!(must("nft", &["list", "ruleset"]).stdout, before);

        // Exactly the networks given: b's elements are gone.
        fw.apply_all(&[a]).expect("apply_all with one network");
        let objects = table_objects("netbridge");
        assert_eq!(elements(&objects, "bridges"), [json!("br-a")]);
        assert!(elements(&objects, "internal").is_empty());
        assert_eq!(count(&objects, "rule"), 22);

        // A table lost to a firewall reload comes back.
        must("nft", &["flush", "ruleset"]);
        fw.apply_all(&[]).expect("apply_all after a flush");
        assert_eq!(count(&table_objects("netbridge"), "rule"), 22);
    });
}

#[test]
fn adding_fifty_networks_adds_elements_not_rules() {
    in_throwaway_netns(|| {
        let fw = Nftables::with_table("nbtest").expect("table name");
        // Before apply_all: nothing to remove is fine, adding says the table is missing.
        let first = net("br-0", vec![v4("10.0.0.0", 24)]);
        fw.remove_network(&first).expect("remove without a table");
        let err = fw.add_network(&first).expect_err("add without a table");
        assert!(matches!(err, KernelError::NotFound { .. }), "{err}");
        assert_eq!(run("nft", &["list", "tables"]).stdout, b"", "nothing made");

        fw.apply_all(&[]).expect("apply_all");
        let empty = table_objects("nbtest");
        let nets: Vec<NetworkRules> = (0..50u8)
            .map(|i| NetworkRules {
                internal: i % 5 == 1,
                icc: i % 5 != 2,
                masquerade: i % 5 != 3,
                ..net(
                    &format!("br-{i}"),
                    vec![
                        v4(&format!("10.{i}.0.0"), 24),
                        v6(&format!("fd00:{i:x}::"), 64),
                    ],
                )
            })
            .collect();
        let started = std::time::Instant::now();
        for n in &nets {
            fw.add_network(n).expect("add_network");
        }
        eprintln!(
            "add_network: {:.2} ms each",
            started.elapsed().as_secs_f64() * 1e3 / 50.0
        );
        fw.add_network(&nets[0]).expect("add_network twice");
        let full = table_objects("nbtest");
        for kind in ["rule", "chain", "set", "map"] {
            assert_eq!(count(&full, kind), count(&empty, kind), "{kind}s grew");
        }
        assert_eq!(elements(&full, "bridges").len(), 50);
        assert_eq!(elements(&full, "same").len(), 50);
        assert_eq!(elements(&full, "internal").len(), 10);
        assert_eq!(elements(&full, "no_icc").len(), 10);
        assert_eq!(
            elements(&full, "masq_v4").len(),
            30,
            "not internal, masquerade on"
        );
        assert_eq!(elements(&full, "masq_v6").len(), 30);

        // The same as apply_all would have made.
        let after_adds = must("nft", &["list", "ruleset"]).stdout;
        let started = std::time::Instant::now();
        fw.apply_all(&nets).expect("apply_all");
        eprintln!(
            "apply_all of 50 networks: {:.2} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(
            String::from_utf8_lossy(&must("nft", &["list", "ruleset"]).stdout),
            String::from_utf8_lossy(&after_adds)
        );

        let started = std::time::Instant::now();
        for n in &nets {
            fw.remove_network(n).expect("remove_network");
        }
        eprintln!(
            "remove_network: {:.2} ms each",
            started.elapsed().as_secs_f64() * 1e3 / 50.0
        );
        fw.remove_network(&nets[7]).expect("removing twice is fine");
        // Removal ignores the options: removing with other flags leaves nothing either.
        fw.add_network(&nets[4]).expect("add");
        fw.remove_network(&NetworkRules {
            internal: true,
            icc: false,
            masquerade: false,
            ..nets[4].clone()
        })
        .expect("remove with other options");
        let objects = table_objects("nbtest");
        for set in script::Set::NETWORKS {
            assert!(
                elements(&objects, set.name()).is_empty(),
                "{} not empty",
                set.name()
            );
        }
        assert_eq!(count(&objects, "rule"), count(&empty, "rule"));
    });
}

#[test]
fn icc_false_turns_br_netfilter_on() {
    in_throwaway_netns(|| {
        if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
            eprintln!("SKIPPED: br_netfilter is not loaded (and tests do not load modules)");
            return;
        }
        fs::write("/proc/sys/net/bridge/bridge-nf-call-iptables", "0").expect("turn it off");
        let fw = Nftables::new();
        fw.apply_all(&[net("br-a", vec![v4("10.1.0.0", 24)])])
            .expect("apply_all");
        assert_eq!(
            read_sysctl("net/bridge/bridge-nf-call-iptables"),
            "0",
            "left alone without icc=false networks"
        );
        fw.add_network(&NetworkRules {
            icc: false,
            ..net("br-n", vec![v4("10.4.0.0", 24)])
        })
        .expect("add_network");
        assert_eq!(read_sysctl("net/bridge/bridge-nf-call-iptables"), "1");
    });
}

/// What Docker (through iptables-nft) leaves: FORWARD policy drop, jumping to DOCKER-USER first.
fn docker_like_filter(family: &str, docker_user: bool) {
    let mut script = format!(
        "add table {family} filter\nadd chain {family} filter FORWARD {{ type filter hook forward priority filter; policy drop; }}\n"
    );
    if docker_user {
        script += &format!(
            "add chain {family} filter DOCKER-USER\nadd rule {family} filter FORWARD counter jump DOCKER-USER\nadd rule {family} filter DOCKER-USER counter return\n"
        );
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), script.as_bytes())
        .expect("write script");
    assert!(child.wait().expect("nft").success(), "{script}");
}

/// Our rules of one host filter chain (by comment) and the chain's first rule's comment.
fn host_rules(family: &str, chain: &str) -> (usize, Option<String>) {
    let out = must("nft", &["-j", "list", "chain", family, "filter", chain]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rules: Vec<&Value> = v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("rule"))
        .collect();
    let ours = rules.iter().filter(|r| r["comment"] == COMMENT).count();
    let first = rules
        .first()
        .and_then(|r| r["comment"].as_str())
        .map(String::from);
    (ours, first)
}

#[test]
fn a_host_forward_chain_gets_exactly_one_accept_rule() {
    in_throwaway_netns(|| {
        let fw = Nftables::new();
        // No filter table: none is made.
        fw.apply_all(&[]).expect("apply_all");
        let tables = String::from_utf8_lossy(&must("nft", &["list", "tables"]).stdout).to_string();
        assert_eq!(tables.trim(), "table inet netbridge");

        docker_like_filter("ip", true);
        docker_like_filter("ip6", false);
        for _ in 0..2 {
            fw.apply_all(&[]).expect("apply_all");
            assert_eq!(
                host_rules("ip", "DOCKER-USER"),
                (1, Some(COMMENT.to_string())),
                "one rule, first in DOCKER-USER"
            );
            assert_eq!(host_rules("ip", "FORWARD").0, 0, "not in FORWARD as well");
            assert_eq!(
                host_rules("ip6", "FORWARD"),
                (1, Some(COMMENT.to_string())),
                "one rule, first in FORWARD"
            );
        }
        // iptables-nft reads the rule as its own kind (and so keeps working on the table).
        if has_binary("iptables-nft") {
            let out = must("iptables-nft", &["-w", "-S", "DOCKER-USER"]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!(
                    "-A DOCKER-USER -m mark --mark {FORWARD_MARK:#x}/{FORWARD_MARK:#x} -m comment --comment \"{COMMENT}\" -j ACCEPT"
                )),
                "{text}"
            );
        } else {
            eprintln!("iptables-nft not installed: its view of the rule not checked");
        }

        // Legacy iptables, when its binary is there.
        if !has_binary("iptables-legacy") {
            eprintln!("iptables-legacy not installed: legacy path not checked");
            return;
        }
        must("iptables-legacy", &["-w", "-P", "FORWARD", "DROP"]);
        for _ in 0..2 {
            fw.apply_all(&[]).expect("apply_all");
            let out = must("iptables-legacy", &["-w", "-S", "FORWARD"]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.matches(COMMENT).count(), 1, "{text}");
        }
    });
}

#[test]
fn traffic_isolation_icc_internal_masquerade_and_a_forward_drop_policy() {
    in_throwaway_netns(|| {
        // Bridges ("networks") in the throwaway namespace standing in for the daemon's.
        bridge("br-a", &["10.1.0.1/24", "fd01::1/64"]);
        bridge("br-b", &["10.2.0.1/24"]);
        bridge("br-i", &["10.3.0.1/24"]);
        bridge("br-n", &["10.4.0.1/24"]);
        bridge("br-m", &["10.5.0.1/24"]);
        let a1 = container(
            "a1",
            "br-a",
            &[("10.1.0.2/24", "10.1.0.1"), ("fd01::2/64", "fd01::1")],
        );
        let a2 = container(
            "a2",
            "br-a",
            &[("10.1.0.3/24", "10.1.0.1"), ("fd01::3/64", "fd01::1")],
        );
        let b1 = container("b1", "br-b", &[("10.2.0.2/24", "10.2.0.1")]);
        let i1 = container("i1", "br-i", &[("10.3.0.2/24", "10.3.0.1")]);
        let i2 = container("i2", "br-i", &[("10.3.0.3/24", "10.3.0.1")]);
        let n1 = container("n1", "br-n", &[("10.4.0.2/24", "10.4.0.1")]);
        let n2 = container("n2", "br-n", &[("10.4.0.3/24", "10.4.0.1")]);
        let m1 = container("m1", "br-m", &[("10.5.0.2/24", "10.5.0.1")]);
        // The outside: one hop away, with no route back to any container subnet, except the
        // internal one (so that only the firewall can stop that traffic).
        let outside = TestNs::new("out");
        must(
            "ip",
            &[
                "link",
                "add",
                "up0",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &outside.name,
            ],
        );
        must("ip", &["addr", "add", "192.0.2.1/24", "dev", "up0"]);
        must("ip", &["addr", "add", "fd99::1/64", "dev", "up0", "nodad"]);
        must("ip", &["link", "set", "up0", "up"]);
        outside.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        outside.ip(&["addr", "add", "fd99::2/64", "dev", "eth0", "nodad"]);
        outside.ip(&["link", "set", "eth0", "up"]);
        outside.ip(&["route", "add", "10.3.0.0/24", "via", "192.0.2.1"]);
        let br_netfilter =
            std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
        if br_netfilter {
            // Off, so that the firewall has to turn it on for icc=false.
            fs::write("/proc/sys/net/bridge/bridge-nf-call-iptables", "0").expect("brnf off");
        }

        let fw = Nftables::new();
        let a = net("br-a", vec![v4("10.1.0.0", 24), v6("fd01::", 64)]);
        let b = net("br-b", vec![v4("10.2.0.0", 24)]);
        fw.apply_all(&[a.clone(), b.clone()]).expect("apply_all");
        let others = [
            NetworkRules {
                internal: true,
                ..net("br-i", vec![v4("10.3.0.0", 24)])
            },
            NetworkRules {
                icc: false,
                ..net("br-n", vec![v4("10.4.0.0", 24)])
            },
            NetworkRules {
                masquerade: false,
                ..net("br-m", vec![v4("10.5.0.0", 24)])
            },
        ];
        // Without br_netfilter an icc=false network is refused (it could not be isolated).
        let icc_checked = br_netfilter;
        let others: Vec<NetworkRules> = others
            .into_iter()
            .filter(|n| {
                if n.icc || br_netfilter {
                    fw.add_network(n).expect("add_network");
                    true
                } else {
                    let err = fw
                        .add_network(n)
                        .expect_err("icc=false without br_netfilter");
                    assert!(matches!(err, KernelError::Invalid { .. }), "{err}");
                    false
                }
            })
            .collect();
        if br_netfilter {
            assert_eq!(read_sysctl("net/bridge/bridge-nf-call-iptables"), "1");
        }

        let base = |phase: &str| {
            let mut checks = vec![
                (&a1, "10.1.0.3", true),
                (&a1, "fd01::3", true),
                (&a2, "10.1.0.2", true),
                (&a1, "10.2.0.2", false),
                (&b1, "10.1.0.2", false),
                (&a1, "192.0.2.2", true), // masqueraded: the outside has no route back
                (&a1, "fd99::2", true),
                (&b1, "192.0.2.2", true),
                (&i1, "10.3.0.3", true),
                (&i2, "10.3.0.1", true),
                (&i1, "192.0.2.2", false),
                (&outside, "10.3.0.2", false),
                (&i1, "10.1.0.2", false),
                (&a1, "10.3.0.2", false),
                (&n1, "10.4.0.1", true),
                (&n1, "192.0.2.2", true),
                (&m1, "192.0.2.2", false), // not masqueraded, and no route back
            ];
            if icc_checked {
                checks.push((&n1, "10.4.0.3", false));
                checks.push((&n2, "10.4.0.2", false));
            }
            expect_pings(phase, &checks);
            // Internal: each direction is blocked on its own, not only through the replies.
            let mut one_way = vec![
                (&i1, &outside, "192.0.2.2"),
                (&outside, &i1, "10.3.0.2"),
                (&a1, &b1, "10.2.0.2"),
            ];
            if icc_checked {
                one_way.push((&n1, &n2, "10.4.0.3"));
            }
            expect_never_arrive(phase, &one_way);
        };
        base("netbridge's rules");
        if !icc_checked {
            eprintln!("br_netfilter not available: icc=false traffic not checked");
        }
        outside.ip(&["route", "add", "10.5.0.0/24", "via", "192.0.2.1"]);
        expect_pings(
            "masquerade=false with a route back",
            &[(&m1, "192.0.2.2", true)],
        );
        outside.ip(&["route", "del", "10.5.0.0/24"]);

        // A Docker-like host firewall: FORWARD policy drop (with br_netfilter, bridged traffic
        // meets it too). Without netbridge's accept rule its bridges are cut off…
        docker_like_filter("ip", true);
        docker_like_filter("ip6", true);
        expect_pings(
            "FORWARD drop before re-apply",
            &[(&a1, "192.0.2.2", false), (&a1, "fd99::2", false)],
        );
        // …and after apply_all (start-up) everything above holds again.
        let mut all = vec![a, b];
        all.extend(others);
        fw.apply_all(&all).expect("apply_all");
        base("FORWARD drop, after apply_all");
    });
}

// ---------------------------------------------------------------------------------------------
// In-process (netlink) add and remove against the `nft` script path

/// One set's elements as `nft -j` lists them, sorted (a hash set lists in no fixed order).
fn listed(table: &str, set: &str) -> Vec<String> {
    let mut out: Vec<String> = elements(&table_objects(table), set)
        .iter()
        .map(Value::to_string)
        .collect();
    out.sort();
    out
}

/// One set's elements as the kernel holds them (`nft --debug=netlink`: every key with its
/// flags and user data, also the interval set's hidden end element at 0), sorted.
fn held(table: &str, set: &str) -> Vec<String> {
    let out = must(
        "nft",
        &["--debug=netlink", "list", "set", "inet", table, set],
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("element "))
        .map(|l| l.trim().to_string())
        .collect();
    lines.sort();
    lines
}

/// Every set of `ours` holds exactly what the same set of `reference` holds, listed and raw.
fn assert_same_elements(phase: &str, ours: &str, reference: &str) {
    for set in script::Set::NETWORKS {
        let name = set.name();
        assert_eq!(
            listed(ours, name),
            listed(reference, name),
            "{phase}: set {name} as listed"
        );
        assert_eq!(
            held(ours, name),
            held(reference, name),
            "{phase}: set {name} as held"
        );
    }
}

/// Whether an `enable_icc=false` network can be added here (it needs br_netfilter).
fn br_netfilter() -> bool {
    std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
}

fn run_script(script: &str) {
    super::run_nft(script, "test script", "test").expect("nft -f -");
}

#[test]
fn in_process_elements_are_those_the_nft_script_makes() {
    in_throwaway_netns(|| {
        let icc = !br_netfilter();
        let nets = [
            net("br-v4", vec![v4("10.1.0.0", 24)]),
            net("br-v6", vec![v6("fd01::", 64)]),
            net("br-16", vec![v4("172.20.5.0", 16)]),
            NetworkRules {
                internal: true,
                icc,
                ..net("br-in", vec![v4("10.4.0.0", 24), v6("fd04::", 64)])
            },
            // To the top of the address space: no end element, nft's "open" mark instead.
            net("br-top", vec![v4("240.0.0.0", 4), v6("ff00::", 8)]),
            NetworkRules {
                masquerade: false,
                ..net("br-nm", vec![v4("10.6.0.0", 24)])
            },
        ];
        if icc {
            eprintln!("br_netfilter not available: icc=false not checked");
        }
        let fw = Nftables::with_table("nbnl").expect("table name");
        fw.apply_all(&[]).expect("apply_all");
        Nftables::with_table("nbscript")
            .expect("table name")
            .apply_all(&[])
            .expect("apply_all");
        let by_script = |n: &NetworkRules, add: bool| {
            let n = Checked::new(n).expect("valid network");
            run_script(&if add {
                script::add_network("nbscript", &n)
            } else {
                script::remove_network("nbscript", &n)
            });
        };
        for n in &nets {
            fw.add_network(n).expect("add_network");
            by_script(n, true);
        }
        assert_same_elements("after the adds", "nbnl", "nbscript");
        // Not trivially equal: everything is there, prefixes as prefixes.
        let objects = table_objects("nbnl");
        assert_eq!(elements(&objects, "bridges").len(), 6);
        assert_eq!(elements(&objects, "internal"), [json!("br-in")]);
        let mut same: Vec<String> = ["br-v4", "br-v6", "br-16", "br-in", "br-top", "br-nm"]
            .map(|b| json!({"concat": [b, b]}).to_string())
            .to_vec();
        same.sort();
        assert_eq!(listed("nbnl", "same"), same);
        assert_eq!(
            listed("nbnl", "masq_v4"),
            [
                json!({"prefix": {"addr": "10.1.0.0", "len": 24}}),
                json!({"prefix": {"addr": "172.20.0.0", "len": 16}}),
                json!({"prefix": {"addr": "240.0.0.0", "len": 4}}),
            ]
            .map(|v| v.to_string())
        );
        assert_eq!(
            listed("nbnl", "masq_v6"),
            [
                json!({"prefix": {"addr": "fd01::", "len": 64}}),
                json!({"prefix": {"addr": "ff00::", "len": 8}}),
            ]
            .map(|v| v.to_string())
        );

        // Again: idempotent both ways.
        for n in &nets {
            fw.add_network(n).expect("add_network again");
            by_script(n, true);
        }
        assert_same_elements("after adding again", "nbnl", "nbscript");

        for n in [&nets[0], &nets[4]] {
            fw.remove_network(n).expect("remove_network");
            by_script(n, false);
        }
        assert_same_elements("after two removes", "nbnl", "nbscript");
        assert_eq!(elements(&table_objects("nbnl"), "bridges").len(), 4);

        for n in &nets {
            fw.remove_network(n).expect("remove_network");
            by_script(n, false);
        }
        assert_same_elements("after removing all", "nbnl", "nbscript");
        for set in script::Set::NETWORKS {
            assert!(listed("nbnl", set.name()).is_empty(), "{}", set.name());
        }
    });
}

#[test]
fn removing_absent_elements_succeeds_and_leaves_the_sets_empty() {
    in_throwaway_netns(|| {
        let fw = Nftables::with_table("nbabsent").expect("table name");
        fw.apply_all(&[]).expect("apply_all");
        let absent = NetworkRules {
            internal: true,
            icc: false,
            ..net("br-gone", vec![v4("10.9.0.0", 24), v6("fd09::", 64)])
        };
        fw.remove_network(&absent).expect("remove absent elements");
        fw.remove_network(&absent).expect("and again");
        for set in script::Set::NETWORKS {
            assert!(listed("nbabsent", set.name()).is_empty(), "{}", set.name());
        }
        // Some of them present (added with fewer options), the rest absent: all gone.
        fw.add_network(&net("br-gone", vec![v4("10.9.0.0", 24)]))
            .expect("add_network");
        fw.remove_network(&absent)
            .expect("remove partly present elements");
        for set in script::Set::NETWORKS {
            assert!(listed("nbabsent", set.name()).is_empty(), "{}", set.name());
        }
    });
}

#[test]
fn adding_without_the_table_is_not_found_and_other_failures_say_what_failed() {
    in_throwaway_netns(|| {
        let fw = Nftables::with_table("nbmissing").expect("table name");
        let n = net("br-0", vec![v4("10.0.0.0", 24), v6("fd00::", 64)]);
        let err = fw.add_network(&n).expect_err("add without a table");
        assert!(
            matches!(&err, KernelError::NotFound { what: "nftables table", name } if name == "inet nbmissing"),
            "{err}"
        );
        fw.remove_network(&n).expect("remove without a table");
        assert_eq!(run("nft", &["list", "tables"]).stdout, b"", "nothing made");

        // A table without the sets: not "not set up", but the kernel's answer with context.
        must("nft", &["add", "table", "inet", "nbmissing"]);
        let err = fw.add_network(&n).expect_err("add without the sets");
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("table inet nbmissing bridge br-0") && text.contains("bridges"),
            "{text}"
        );
        fw.remove_network(&n)
            .expect_err("remove from a table without the sets");
        // The batch was all or nothing, and the kept socket still works afterwards.
        fw.apply_all(&[]).expect("apply_all");
        fw.add_network(&n).expect("add_network");
        assert_eq!(listed("nbmissing", "bridges"), [json!("br-0").to_string()]);
    });
}

#[test]
fn removing_one_network_of_many_leaves_exactly_the_others() {
    in_throwaway_netns(|| {
        let icc_off = br_netfilter();
        let first = NetworkRules {
            icc: !icc_off,
            ..net("br-first", vec![v4("10.250.0.0", 24), v6("fd99::", 64)])
        };
        let others: Vec<NetworkRules> = (0..200u8)
            .map(|i| {
                let mut subnets = vec![v4(&format!("10.{i}.0.0"), 24)];
                if i % 3 == 0 {
                    subnets.push(v6(&format!("fd00:{i:x}::"), 64));
                }
                NetworkRules {
                    internal: i % 4 == 1,
                    icc: !(icc_off && i % 4 == 2),
                    masquerade: i % 5 != 3,
                    ..net(&format!("br-{i}"), subnets)
                }
            })
            .collect();
        let fw = Nftables::with_table("nbmany").expect("table name");
        fw.apply_all(std::slice::from_ref(&first))
            .expect("apply_all");
        for n in &others {
            fw.add_network(n).expect("add_network");
        }
        fw.remove_network(&first).expect("remove_network");
        Nftables::with_table("nbref")
            .expect("table name")
            .apply_all(&others)
            .expect("apply_all of the others");
        assert_same_elements("the 200 others", "nbmany", "nbref");
        assert_eq!(listed("nbmany", "bridges").len(), 200);
        assert!(!listed("nbmany", "bridges").contains(&json!("br-first").to_string()));
    });
}

#[test]
fn each_call_changes_the_table_of_the_calling_threads_namespace() {
    in_throwaway_netns(|| {
        // One backend, used from two namespaces: the socket kept from the first must not
        // carry the second's elements into the first's table.
        let fw = std::sync::Arc::new(Nftables::with_table("nbwhere").expect("table name"));
        fw.apply_all(&[]).expect("apply_all");
        fw.add_network(&net("br-a1", vec![v4("10.1.0.0", 24)]))
            .expect("add_network");
        let other = fw.clone();
        in_throwaway_netns(move || {
            other
                .apply_all(&[])
                .expect("apply_all in the other namespace");
            other
                .add_network(&net("br-b1", vec![v4("10.2.0.0", 24)]))
                .expect("add_network in the other namespace");
            assert_eq!(listed("nbwhere", "bridges"), [json!("br-b1").to_string()]);
        })
        .expect("a second throwaway namespace");
        fw.add_network(&net("br-a2", vec![v4("10.3.0.0", 24)]))
            .expect("add_network back in the first");
        assert_eq!(
            listed("nbwhere", "bridges"),
            [json!("br-a1").to_string(), json!("br-a2").to_string()]
        );
    });
}

/// Median of `samples` in milliseconds.
fn median_ms(mut samples: Vec<std::time::Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// By hand, for BENCHMARKS.md: `cargo test --lib kernel::firewall::tests::timing --
/// --ignored --nocapture`. Median add_network and remove_network of a typical network (one
/// IPv4 subnet, masqueraded: three elements) with 0 and 1,000 other networks' elements present.
#[test]
#[ignore = "timing, run by hand"]
fn timing_add_and_remove_network() {
    in_throwaway_netns(|| {
        let fw = Nftables::with_table("nbtime").expect("table name");
        let network = |i: usize| {
            net(
                &format!("br-{i}"),
                vec![v4(&format!("10.{}.{}.0", i / 256, i % 256), 24)],
            )
        };
        for present in [0, 1000] {
            let base: Vec<NetworkRules> = (0..present).map(network).collect();
            fw.apply_all(&base).expect("apply_all");
            let new: Vec<NetworkRules> = (2000..2040).map(network).collect();
            let mut adds = Vec::new();
            for n in &new {
                let started = std::time::Instant::now();
                fw.add_network(n).expect("add_network");
                adds.push(started.elapsed());
            }
            let mut removes = Vec::new();
            for n in &new {
                let started = std::time::Instant::now();
                fw.remove_network(n).expect("remove_network");
                removes.push(started.elapsed());
            }
            eprintln!(
                "{present} networks present: add_network {:.2} ms, remove_network {:.2} ms (medians of {})",
                median_ms(adds),
                median_ms(removes),
                new.len()
            );
        }
    });
}
