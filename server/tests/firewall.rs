//! Isolation and NAT: netbridge's nftables table (`inet netbridge`) in the daemon's namespace.
//! Containers on different networks cannot reach each other; a normal network reaches an
//! "outside" through masquerade while an `Internal` one cannot; `enable_icc=false` and
//! `enable_ip_masquerade=false` are honoured; the rule count does not grow with the number of
//! networks; rules come back at start-up; a FORWARD drop policy in the host firewall does not break
//! netbridge's bridges.
//!
//! The "outside" is a throwaway namespace joined to the daemon's (throwaway) namespace by a veth
//! pair the test makes: 10.99.0.1/24 on the daemon's side, 10.99.0.2/24 outside. The outside has
//! no route back to container subnets, so a container reaching it proves masquerade. Nothing here
//! touches the machine's own namespace.
//!
//! Written before the firewall existed (they all failed then, on forwarding being off and the
//! table missing); each test first shows that what it blocks would otherwise work.

mod attach;
mod common;

use attach::*;
use common::{Daemon, Netns, Value, json, must, rand_hex, run};

/// The far end of the daemon's namespace: a namespace reachable only through it.
struct Outside {
    ns: Netns,
}

const OUTSIDE_IP: &str = "10.99.0.2";

impl Outside {
    fn new(d: &Daemon) -> Outside {
        let ns = Netns::new("nbt");
        let hex = rand_hex(8);
        let (inner, outer) = (format!("nbo{hex}"), format!("nbx{hex}"));
        // Both ends are made in the daemon's namespace, the peer born straight in the outside.
        d.ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns", &ns.name,
        ]);
        d.ip(&["addr", "add", "10.99.0.1/24", "dev", &inner]);
        d.ip(&["link", "set", &inner, "up"]);
        ns.ip(&["addr", "add", "10.99.0.2/24", "dev", &outer]);
        ns.ip(&["link", "set", &outer, "up"]);
        Outside { ns }
    }

    /// A route back to a container subnet (so traffic would work without masquerade).
    fn route_back(&self, subnet: &str) {
        self.ns.ip(&["route", "add", subnet, "via", "10.99.0.1"]);
    }
}

/// A sysctl of the daemon's namespace.
fn daemon_sysctl(d: &Daemon, path: &str) -> String {
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &d.ns.name,
            "cat",
            &format!("/proc/sys/{path}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_forwarding_on(d: &Daemon) {
    assert_eq!(
        daemon_sysctl(d, "net/ipv4/ip_forward"),
        "1",
        "IPv4 forwarding must be on in the daemon's namespace (and without it the isolation \
         checks below would pass vacuously)"
    );
}

/// `nft -j list table inet netbridge` in the daemon's namespace, None if there is no table.
fn own_table(d: &Daemon) -> Option<Vec<Value>> {
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &d.ns.name,
            "nft",
            "-j",
            "list",
            "table",
            "inet",
            "netbridge",
        ],
    );
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["nftables"].as_array().cloned()
}

fn count(objects: &[Value], kind: &str) -> usize {
    objects.iter().filter(|o| o.get(kind).is_some()).count()
}

/// A network with one IPv4 subnet and options, plus `Internal`.
fn network(d: &Daemon, name: &str, subnet: &str, internal: bool, options: Value) -> String {
    d.create_network(&json!({
        "Name": name,
        "Internal": internal,
        "IPAM": {"Config": [{"Subnet": subnet}]},
        "Options": options,
    }))
}

#[test]
fn forwarding_is_on_and_the_table_exists() {
    let d = Daemon::start();
    network(&d, "mynet", "172.30.1.0/24", false, json!({}));
    assert_forwarding_on(&d);
    let table = own_table(&d).expect("nft table inet netbridge in the daemon's namespace");
    eprintln!(
        "inet netbridge: {} chains, {} rules, {} sets, {} maps",
        count(&table, "chain"),
        count(&table, "rule"),
        count(&table, "set"),
        count(&table, "map")
    );
    assert!(count(&table, "rule") > 0, "the table has rules");
}

#[test]
fn networks_are_isolated_from_each_other() {
    let d = Daemon::start();
    let outside = Outside::new(&d);
    let ns1 = Netns::new("nbt");
    let ns2 = Netns::new("nbt");
    network(&d, "net-a", "172.30.1.0/24", false, json!({}));
    network(&d, "net-b", "172.30.2.0/24", false, json!({}));
    connect_ok(&d, "net-a", &ns1.name);
    connect_ok(&d, "net-b", &ns2.name);

    assert!(ping(&ns1.name, "172.30.1.1"), "ns1 → its gateway");
    assert!(ping(&ns2.name, "172.30.2.1"), "ns2 → its gateway");
    // Forwarding works at all, so a failure below is the firewall's doing.
    assert_forwarding_on(&d);
    assert!(
        ping(&ns1.name, OUTSIDE_IP),
        "ns1 → outside (forwarding works)"
    );
    assert!(
        ping(&ns2.name, OUTSIDE_IP),
        "ns2 → outside (forwarding works)"
    );

    assert!(!ping(&ns1.name, "172.30.2.2"), "net-a reached net-b");
    assert!(!ping(&ns2.name, "172.30.1.2"), "net-b reached net-a");
    drop(outside);
}

#[test]
fn internal_network_cannot_reach_outside_a_normal_one_can() {
    let d = Daemon::start();
    let outside = Outside::new(&d);
    let normal = Netns::new("nbt");
    let int1 = Netns::new("nbt");
    let int2 = Netns::new("nbt");
    network(&d, "normal", "172.30.1.0/24", false, json!({}));
    network(&d, "sealed", "172.30.9.0/24", true, json!({}));
    connect_ok(&d, "normal", &normal.name);
    connect_ok(&d, "sealed", &int1.name);
    connect_ok(&d, "sealed", &int2.name);

    // The normal network gets out, masqueraded (the outside has no route back to it).
    assert_forwarding_on(&d);
    assert!(
        ping(&normal.name, OUTSIDE_IP),
        "normal network → outside through masquerade"
    );

    // The internal one has no default route, and even with a route of its own and a route
    // back in the outside it cannot leave its bridge, nor be reached from outside.
    assert!(
        default_routes(&int1.name).is_empty(),
        "internal: no default route"
    );
    int1.ip(&["route", "add", "10.99.0.0/24", "via", "172.30.9.1"]);
    outside.route_back("172.30.9.0/24");
    assert!(
        !ping(&int1.name, OUTSIDE_IP),
        "internal network reached the outside"
    );
    assert!(
        !ping(&outside.ns.name, "172.30.9.2"),
        "outside reached the internal network"
    );
    assert!(
        !ping(&int1.name, "172.30.1.2"),
        "internal reached the normal network"
    );

    // Inside its bridge it works.
    assert!(
        ping(&int1.name, "172.30.9.3"),
        "internal containers reach each other"
    );
    assert!(ping(&int2.name, "172.30.9.2"));
}

#[test]
fn icc_false_blocks_containers_of_that_network() {
    let d = Daemon::start();
    let (a1, a2) = (Netns::new("nbt"), Netns::new("nbt"));
    let (b1, b2) = (Netns::new("nbt"), Netns::new("nbt"));
    network(&d, "open", "172.30.1.0/24", false, json!({}));
    network(
        &d,
        "closed",
        "172.30.2.0/24",
        false,
        json!({"com.docker.network.bridge.enable_icc": "false"}),
    );
    connect_ok(&d, "open", &a1.name);
    connect_ok(&d, "open", &a2.name);
    connect_ok(&d, "closed", &b1.name);
    connect_ok(&d, "closed", &b2.name);

    assert!(
        ping(&a1.name, "172.30.1.3"),
        "ICC on: containers reach each other"
    );
    assert!(
        ping(&b1.name, "172.30.2.1"),
        "ICC off: b1 still reaches its gateway"
    );
    assert!(
        ping(&b2.name, "172.30.2.1"),
        "ICC off: b2 still reaches its gateway"
    );
    assert!(!ping(&b1.name, "172.30.2.3"), "ICC off: b1 reached b2");
    assert!(!ping(&b2.name, "172.30.2.2"), "ICC off: b2 reached b1");
}

#[test]
fn masquerade_false_sends_the_real_source() {
    let d = Daemon::start();
    let outside = Outside::new(&d);
    let nat = Netns::new("nbt");
    let plain = Netns::new("nbt");
    network(&d, "nat", "172.30.1.0/24", false, json!({}));
    network(
        &d,
        "plain",
        "172.30.2.0/24",
        false,
        json!({"com.docker.network.bridge.enable_ip_masquerade": "false"}),
    );
    connect_ok(&d, "nat", &nat.name);
    connect_ok(&d, "plain", &plain.name);

    assert_forwarding_on(&d);
    assert!(
        ping(&nat.name, OUTSIDE_IP),
        "masquerade on: reaches the outside"
    );
    // Without masquerade the outside answers the real source, which it has no route to…
    assert!(
        !ping(&plain.name, OUTSIDE_IP),
        "masquerade off, yet the outside could answer: the source was rewritten"
    );
    // …and with a route back it works: the packets were forwarded, unmasqueraded.
    outside.route_back("172.30.2.0/24");
    assert!(
        ping(&plain.name, OUTSIDE_IP),
        "masquerade off: forwarded with its real source"
    );
}

#[test]
fn rule_count_does_not_grow_with_networks() {
    let d = Daemon::start();
    network(&d, "net-0", "172.30.0.0/24", false, json!({}));
    network(&d, "net-1", "172.30.1.0/24", false, json!({}));
    let before = own_table(&d).expect("nft table inet netbridge");
    for i in 2..7 {
        network(
            &d,
            &format!("net-{i}"),
            &format!("172.30.{i}.0/24"),
            false,
            json!({}),
        );
    }
    let after = own_table(&d).expect("nft table inet netbridge");
    eprintln!(
        "rules: {} with 2 networks, {} with 7; sets {} → {}, maps {} → {}",
        count(&before, "rule"),
        count(&after, "rule"),
        count(&before, "set"),
        count(&after, "set"),
        count(&before, "map"),
        count(&after, "map")
    );
    assert!(count(&before, "rule") > 0, "the table has rules");
    assert_eq!(
        count(&after, "rule"),
        count(&before, "rule"),
        "rules grew with the networks instead of set/map elements"
    );
    assert_eq!(
        count(&after, "chain"),
        count(&before, "chain"),
        "chains grew"
    );
    assert!(
        count(&after, "set") + count(&after, "map") > 0,
        "interfaces are kept in sets or maps"
    );
}

#[test]
fn rules_are_reapplied_at_startup() {
    let mut d = Daemon::start();
    let outside = Outside::new(&d);
    let ns1 = Netns::new("nbt");
    let ns2 = Netns::new("nbt");
    network(&d, "net-a", "172.30.1.0/24", false, json!({}));
    network(&d, "net-b", "172.30.2.0/24", false, json!({}));
    connect_ok(&d, "net-a", &ns1.name);
    connect_ok(&d, "net-b", &ns2.name);
    assert!(ping(&ns1.name, OUTSIDE_IP), "before: reaches the outside");

    // The table disappears while netbridge is down (a firewall reload, a flush).
    d.stop();
    let _ = run(
        "ip",
        &[
            "netns",
            "exec",
            &d.ns.name,
            "nft",
            "delete",
            "table",
            "inet",
            "netbridge",
        ],
    );
    d.restart();

    assert!(own_table(&d).is_some(), "the table is back after start-up");
    assert_forwarding_on(&d);
    assert!(
        ping(&ns1.name, OUTSIDE_IP),
        "after restart: reaches the outside"
    );
    assert!(
        !ping(&ns1.name, "172.30.2.2"),
        "after restart: net-a reached net-b"
    );
    drop(outside);
}

#[test]
fn a_forward_drop_policy_does_not_break_own_bridges() {
    let mut d = Daemon::start();
    let outside = Outside::new(&d);
    let ns1 = Netns::new("nbt");
    let ns2 = Netns::new("nbt");
    network(&d, "mynet", "172.30.1.0/24", false, json!({}));
    connect_ok(&d, "mynet", &ns1.name);
    connect_ok(&d, "mynet", &ns2.name);

    // What Docker (through iptables-nft) leaves in the host firewall: FORWARD policy drop. Made
    // in the daemon's throwaway namespace; netbridge meets it at start-up.
    must(
        "ip",
        &[
            "netns",
            "exec",
            &d.ns.name,
            "nft",
            "add table ip filter ; add chain ip filter FORWARD { type filter hook forward priority filter ; policy drop ; }",
        ],
    );
    d.restart();

    assert!(
        ping(&ns1.name, "172.30.1.3"),
        "containers of one network reach each other"
    );
    assert!(ping(&ns1.name, OUTSIDE_IP), "and the outside");
    drop(outside);
}
