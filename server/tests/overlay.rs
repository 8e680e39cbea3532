//! Overlay networks across three namespace-hosts (see `multihost`): global networks created on
//! one host appear on all, containers on different hosts ping each other over VXLAN, address
//! claims never collide, and etcd trouble, dead hosts and crashed daemons are survived.

mod common;
mod multihost;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Value, eventually, json};
use multihost::*;

/// The scenarios each run three etcd members and three daemons: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn create_overlay(h: &Hosts, host: usize, name: &str, subnet: &str) -> String {
    h.hosts[host].create_network(&json!({
        "Name": name, "Driver": "overlay",
        "IPAM": {"Config": [{"Subnet": subnet}]}
    }))
}

fn names_and_scopes(d: &common::Daemon) -> Vec<(String, String)> {
    d.get("/networks")
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            (
                n["Name"].as_str().unwrap_or("").to_string(),
                n["Scope"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn containers_on_three_hosts_talk_over_one_overlay() {
    let _one = serial();
    let h = Hosts::new();
    // The commands of the issue, with the stock docker CLI on host A.
    let out = h.a().docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.200.0.0/16",
        "shared",
    ]);
    assert!(
        out.status.success(),
        "docker network create: {out:?}\n{}",
        h.a().log()
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for d in &h.hosts {
        assert!(
            eventually(5, || names_and_scopes(d)
                .contains(&("shared".into(), "global".into()))),
            "shared not on {}: {:?}",
            d.ns.name,
            names_and_scopes(d)
        );
        let ls = d.docker_ok(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ]);
        assert!(ls.contains("shared overlay global"), "{ls}");
    }
    let cs: Vec<_> = h.hosts.iter().map(container).collect();
    let mut ips = Vec::new();
    for (d, c) in h.hosts.iter().zip(&cs) {
        d.docker_ok(&["network", "connect", "shared", &c.name]);
        ips.push(address_of(d, "shared", &c.name));
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ips:?}");
    // The first ping is answered: the peers were programmed from the watch before any ARP.
    for (i, from) in cs.iter().enumerate() {
        for (j, ip) in ips.iter().enumerate() {
            if i != j {
                assert!(reaches(from, ip, 5), "{} cannot reach {ip}", from.name);
            }
        }
    }
    // Inspect on B shows all three endpoints with their hosts.
    let v = h.hosts[1].get("/networks/shared").json();
    let eps = containers(&v);
    assert_eq!(eps.len(), 3, "{v}");
    let mut hosts: Vec<String> = eps
        .iter()
        .map(|e| e["Host"].as_str().unwrap_or("").to_string())
        .collect();
    hosts.sort();
    assert_eq!(hosts, vec![host_addr(0), host_addr(1), host_addr(2)], "{v}");
    assert_eq!(v["Peers"].as_array().map(Vec::len), Some(3), "{v}");
    // MTU: the underlay's minus VXLAN's 50 bytes.
    let mtu = cs[0].exec(&["cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(String::from_utf8_lossy(&mtu.stdout).trim(), "1450");

    // A second overlay is a separate segment: no way from `shared` into it.
    create_overlay(&h, 1, "other", "10.201.0.0/24");
    let c4 = container(&h.hosts[2]);
    assert!(eventually(5, || h.hosts[2].get("/networks/other").status == 200));
    let ip4 = connect(&h.hosts[2], "other", &c4);
    let c5 = container(&h.hosts[0]);
    assert!(eventually(5, || h.hosts[0].get("/networks/other").status == 200));
    let ip5 = connect(&h.hosts[0], "other", &c5);
    assert!(reaches(&c5, &ip4, 5), "other's own endpoints talk");
    assert!(!pings(&cs[0], &ip4), "shared reached other");
    assert!(!pings(&c4, &ips[0]), "other reached shared");

    // A local bridge on A works as before, and stays local.
    let local = h
        .a()
        .create_network(&json!({"Name": "loc", "IPAM": {"Config": [{"Subnet": "10.202.0.0/24"}]}}));
    let c6 = container(h.a());
    let ip6 = connect(h.a(), "loc", &c6);
    assert!(pings(&c6, "10.202.0.1"), "local bridge gateway");
    assert!(!pings(&c6, &ips[1]), "local network reached the overlay");
    assert_eq!(h.hosts[1].get(&format!("/networks/{local}")).status, 404);
    let _ = (ip5, ip6);

    // An address released on B and taken again on C is reachable from A at once: A's entries
    // follow the claim, nothing stale stays behind.
    h.hosts[1].docker_ok(&["network", "disconnect", "shared", &cs[1].name]);
    let c7 = container(&h.hosts[2]);
    let r = h.hosts[2].post(
        "/networks/shared/connect",
        &json!({"Container": c7.name, "EndpointConfig": {"IPAMConfig": {"IPv4Address": ips[1]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        reaches(&cs[0], &ips[1], 5),
        "A cannot reach the reused address on C"
    );
    h.hosts[2].docker_ok(&["network", "disconnect", "shared", &c7.name]);
    h.hosts[1].docker_ok(&["network", "connect", "shared", &cs[1].name]);

    // Removal: refused while any host has endpoints, then gone everywhere.
    let r = h.hosts[1].delete("/networks/shared");
    assert_eq!(r.status, 403, "{}", r.body);
    for (d, c) in h.hosts.iter().zip(&cs) {
        d.docker_ok(&["network", "disconnect", "shared", &c.name]);
    }
    let vx = vxlan_of(&id);
    assert!(
        eventually(5, || fdb(h.a(), &vx).lines().all(|l| !l.contains("dst"))),
        "{}",
        fdb(h.a(), &vx)
    );
    h.hosts[1].docker_ok(&["network", "rm", "shared"]);
    for d in &h.hosts {
        assert!(
            eventually(5, || d.get("/networks/shared").status == 404),
            "{}",
            d.ns.name
        );
        assert!(
            eventually(5, || !d.has_link(&vx)),
            "{} kept {vx}",
            d.ns.name
        );
    }
}

#[test]
fn overlay_subnets_avoid_other_hosts_networks_and_each_other() {
    let _one = serial();
    let h = Hosts::new();
    let local = h.hosts[2].create_network(&json!({"Name": "onc"}));
    let local_subnet =
        h.hosts[2].get(&format!("/networks/{local}")).json()["IPAM"]["Config"][0]["Subnet"].clone();
    // Hosts publish their local subnets with their lease renewals (a second apart here).
    std::thread::sleep(Duration::from_millis(1500));
    h.a()
        .create_network(&json!({"Name": "auto", "Driver": "overlay"}));
    let v = h.a().get("/networks/auto").json();
    let subnet = v["IPAM"]["Config"][0]["Subnet"].clone();
    assert!(subnet.is_string(), "{v}");
    assert_ne!(
        subnet, local_subnet,
        "the overlay took host C's local subnet"
    );
    assert!(eventually(5, || h.hosts[2].get("/networks/auto").status == 200));

    // Different but overlapping explicit subnets, created on two hosts at once: one wins.
    for round in 0..6 {
        let wide = format!("10.{}.0.0/16", 150 + round);
        let narrow = format!("10.{}.{round}.0/24", 150 + round);
        let barrier = std::sync::Barrier::new(2);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let tries: Vec<_> = [(0, "wide", &wide), (1, "narrow", &narrow)]
                .into_iter()
                .map(|(host, kind, subnet)| {
                    let (d, barrier) = (&h.hosts[host], &barrier);
                    s.spawn(move || {
                        let body = json!({"Name": format!("{kind}{round}"), "Driver": "overlay",
                            "IPAM": {"Config": [{"Subnet": subnet}]}});
                        barrier.wait();
                        let r = d.post("/networks/create", &body);
                        assert!(r.status == 201 || r.status == 403, "{}", r.body);
                        r.status
                    })
                })
                .collect();
            tries
                .into_iter()
                .map(|t| t.join().expect("create"))
                .collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
}

#[test]
fn container_names_resolve_across_hosts() {
    let _one = serial();
    let h = Hosts::new();
    create_overlay(&h, 0, "shared", "10.203.0.0/24");
    let names = common::SandboxNames::new();
    let (a, b) = (names.fresh(), names.fresh());
    for (d, name) in [(&h.hosts[0], &a), (&h.hosts[1], &b)] {
        let r = d.post(&format!("/containers/create?name={name}"), &json!({}));
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(eventually(5, || d.get("/networks/shared").status == 200));
        let r = d.post("/networks/shared/connect", &json!({ "Container": name }));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let b_ip = address_of(&h.hosts[1], "shared", &b);
    // `ip netns exec` gives the sandbox the resolv.conf pointing at its embedded resolver.
    let answered = || {
        let out = common::run("ip", &["netns", "exec", &a, "getent", "hosts", &b]);
        String::from_utf8_lossy(&out.stdout).starts_with(&b_ip)
    };
    assert!(
        eventually(5, answered),
        "{a} on host A cannot resolve {b} on host B"
    );
    names.remove_all(&h.hosts[0]);
    names.remove_all(&h.hosts[1]);
}

#[test]
fn etcd_trouble_fails_global_operations_fast_and_leaves_the_rest_alone() {
    let _one = serial();
    let mut h = Hosts::new();
    create_overlay(&h, 0, "shared", "10.210.0.0/24");
    let (ca, cb) = (container(&h.hosts[0]), container(&h.hosts[1]));
    assert!(eventually(5, || h.hosts[1].get("/networks/shared").status == 200));
    connect(&h.hosts[0], "shared", &ca);
    let ip_b = connect(&h.hosts[1], "shared", &cb);
    assert!(reaches(&ca, &ip_b, 5));

    // One member stopped: quorum holds, everything works (once a new leader is elected, if
    // the stopped one led).
    h.etcd[2].pause();
    let cb2 = container(&h.hosts[1]);
    let joined = || {
        let r = h.hosts[1].post("/networks/shared/connect", &json!({"Container": cb2.name}));
        r.status == 200
    };
    assert!(eventually(5, joined), "connect with one member stopped");
    let ip_b2 = address_of(&h.hosts[1], "shared", &cb2.name);
    assert!(
        reaches(&ca, &ip_b2, 5),
        "new endpoint with one member stopped"
    );
    create_overlay(&h, 0, "second", "10.211.0.0/24");

    // Two stopped: quorum lost.
    h.etcd[1].pause();
    let a = h.a();
    let started = Instant::now();
    let r = a.post(
        "/networks/create",
        &json!({"Name": "third", "Driver": "overlay"}),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.message().contains("cluster store is unavailable"),
        "{}",
        r.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let cx = container(a);
    let veths = a.ip(&["-o", "link", "show", "type", "veth"]);
    let r = a.post("/networks/shared/connect", &json!({"Container": cx.name}));
    assert_eq!(r.status, 503, "{}", r.body);
    // The interface is built while the claim is in flight: the failed claim took it back.
    assert_eq!(a.ip(&["-o", "link", "show", "type", "veth"]), veths);
    assert_eq!(cx.ip(&["-o", "link", "show"]).lines().count(), 1, "only lo");
    let r = a.post(
        "/networks/shared/disconnect",
        &json!({"Container": ca.name}),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    let r = a.delete("/networks/second");
    assert_eq!(r.status, 503, "{}", r.body);
    // Nothing changed: still connected, still there.
    let v = a.get("/networks/shared").json();
    assert!(
        containers(&v).iter().any(|e| e["Name"] == ca.name.as_str()),
        "{v}"
    );
    assert!(
        !containers(&v).iter().any(|e| e["Name"] == cx.name.as_str()),
        "{v}"
    );
    // Local work goes on; list shows the global networks from the last known state.
    a.create_network(&json!({"Name": "loc"}));
    let names: Vec<String> = names_and_scopes(a).into_iter().map(|(n, _)| n).collect();
    for n in ["shared", "second", "loc"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    // The data path keeps forwarding.
    assert!(pings(&ca, &ip_b), "existing endpoints stopped forwarding");

    // Back: the watch resumes and the FDB catches up without a restart.
    h.etcd[1].resume();
    h.etcd[2].resume();
    let cb3 = container(&h.hosts[1]);
    let ip_b3 = connect_when_back(&h.hosts[1], "shared", &cb3, 15);
    assert!(
        reaches(&ca, &ip_b3, 10),
        "A never learned the endpoint made after the outage"
    );
    // What answered 503 during the outage did not happen later either (etcd may still apply
    // such a write after its answer; the daemon undoes it once the cluster answers again).
    let unchanged = |d: &common::Daemon| {
        let v = d.get("/networks/shared").json();
        let names: Vec<Value> = containers(&v).iter().map(|e| e["Name"].clone()).collect();
        d.get("/networks/third").status == 404
            && d.get("/networks/second").status == 200
            && names.contains(&json!(ca.name))
            && !names.contains(&json!(cx.name))
    };
    for d in &h.hosts {
        assert!(
            eventually(10, || unchanged(d)),
            "a write that answered 503 landed on {}: {}",
            d.ns.name,
            d.get("/networks").body
        );
    }

    // Two members killed (connections refused, not stalled), then started from their data.
    h.etcd[1].kill();
    h.etcd[2].kill();
    let cy = container(&h.hosts[0]);
    let r = h.hosts[0].post("/networks/shared/connect", &json!({"Container": cy.name}));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(pings(&ca, &ip_b3), "existing endpoints stopped forwarding");
    h.etcd[1].start();
    h.etcd[2].start();
    let cb4 = container(&h.hosts[1]);
    let ip_b4 = connect_when_back(&h.hosts[1], "shared", &cb4, 15);
    assert!(
        reaches(&ca, &ip_b4, 10),
        "A never learned the endpoint made after the members restarted"
    );
}

#[test]
fn a_dead_host_vanishes_and_a_crashed_daemon_recovers() {
    let _one = serial();
    let mut h = Hosts::new();
    let id = create_overlay(&h, 0, "shared", "10.220.0.0/24");
    let cs: Vec<_> = h.hosts.iter().map(container).collect();
    let mut ips = Vec::new();
    for (d, c) in h.hosts.iter().zip(&cs) {
        assert!(eventually(5, || d.get("/networks/shared").status == 200));
        ips.push(connect(d, "shared", c));
    }
    assert!(reaches(&cs[0], &ips[2], 5));
    let vx = vxlan_of(&id);
    let mac_c = cs[2].exec(&["cat", "/sys/class/net/eth0/address"]);
    let mac_c = String::from_utf8_lossy(&mac_c.stdout).trim().to_string();
    assert!(fdb(h.a(), &vx).contains(&mac_c));

    // Host C's daemon dies: after its lease, its endpoint leaves A's FDB and inspect.
    h.hosts[2].kill();
    assert!(
        eventually(LEASE_SECS * 4, || !fdb(h.a(), &vx).contains(&mac_c)),
        "A kept the dead host's endpoint: {}",
        fdb(h.a(), &vx)
    );
    let v = h.a().get("/networks/shared").json();
    assert_eq!(containers(&v).len(), 2, "{v}");

    // It comes back: reconcile keeps its endpoint, which is claimed again and reachable.
    h.hosts[2].restart();
    assert!(
        eventually(10, || fdb(h.a(), &vx).contains(&mac_c)),
        "not republished"
    );
    assert!(reaches(&cs[0], &ips[2], 5));

    // C's underlay link cut for longer than its lease: peers drop it; restored, C claims its
    // endpoint again under a new lease and is reachable, with no restart.
    h.hosts[2].ip(&["link", "set", "eth0", "down"]);
    assert!(
        eventually(LEASE_SECS * 5, || !fdb(h.a(), &vx).contains(&mac_c)),
        "A kept the cut-off host's endpoint"
    );
    // Meanwhile B connects a container: C's watch must catch up on it from its revision.
    let late = container(&h.hosts[1]);
    let late_ip = connect(&h.hosts[1], "shared", &late);
    h.hosts[2].ip(&["link", "set", "eth0", "up"]);
    assert!(
        eventually(20, || fdb(h.a(), &vx).contains(&mac_c)),
        "C's endpoint did not come back after the link returned:\n{}",
        h.hosts[2].log()
    );
    assert!(reaches(&cs[0], &ips[2], 5));
    assert!(
        reaches(&cs[2], &late_ip, 10),
        "C never learned the endpoint made while it was cut off"
    );
    let r = h.hosts[1].post(
        "/networks/shared/disconnect",
        &json!({"Container": late.name}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // kill -9 in the middle of a connect on B: after restart, B's endpoints and the
    // cluster's claims for B agree, and A sees exactly those.
    let b = &mut h.hosts[1];
    b.set_env(&[("NETBRIDGE_CRASH_AT", "connect.journaled")]);
    b.restart();
    let cb = container(b);
    let _ = b.try_post("/networks/shared/connect", &json!({"Container": cb.name}));
    b.set_env(&[]);
    b.restart();
    let local: Vec<String> = containers(&b.get("/networks/shared").json())
        .iter()
        .filter(|e| e["Host"] == host_addr(1).as_str())
        .map(|e| e["IPv4Address"].as_str().unwrap_or("").to_string())
        .collect();
    let seen_from_a = || -> Vec<String> {
        let mut v: Vec<String> = containers(&h.hosts[0].get("/networks/shared").json())
            .iter()
            .filter(|e| e["Host"] == host_addr(1).as_str())
            .map(|e| e["IPv4Address"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let mut local_sorted = local.clone();
    local_sorted.sort();
    assert!(
        eventually(10, || seen_from_a() == local_sorted),
        "B holds {local_sorted:?}, A sees {:?}",
        seen_from_a()
    );
    for d in &h.hosts {
        common::consistency::assert_consistent(d, "after the crash mid-connect");
    }
    let again = connect(&h.hosts[1], "shared", &cb);
    assert!(reaches(&cs[0], &again, 5));

    // A is down while C's endpoint leaves: restarted, A drops the stale entry.
    h.hosts[0].kill();
    let r = h.hosts[2].post(
        "/networks/shared/disconnect",
        &json!({"Container": cs[2].name}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    h.hosts[0].restart();
    assert!(
        eventually(10, || !fdb(h.a(), &vx).contains(&mac_c)),
        "A kept an endpoint that left while it was down: {}",
        fdb(h.a(), &vx)
    );
    assert!(
        fdb(h.a(), &vx).contains(&host_addr(1)),
        "A lost B's endpoints"
    );

    // C cut off for longer than its lease while B takes its endpoint's address: back, C finds
    // the address taken and disconnects its endpoint, so one container answers for it.
    let cc = container(&h.hosts[2]);
    let ip_c = connect(&h.hosts[2], "shared", &cc);
    let mac = cc.exec(&["cat", "/sys/class/net/eth0/address"]);
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
    assert!(eventually(5, || fdb(h.a(), &vx).contains(&mac)));
    h.hosts[2].ip(&["link", "set", "eth0", "down"]);
    assert!(
        eventually(LEASE_SECS * 5, || !fdb(h.a(), &vx).contains(&mac)),
        "A kept the cut-off host's endpoint"
    );
    let thief = container(&h.hosts[1]);
    let r = h.hosts[1].post(
        "/networks/shared/connect",
        &json!({"Container": thief.name,
            "EndpointConfig": {"IPAMConfig": {"IPv4Address": ip_c}}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    h.hosts[2].ip(&["link", "set", "eth0", "up"]);
    let kept = || {
        containers(&h.hosts[2].get("/networks/shared").json())
            .iter()
            .any(|e| e["Name"] == cc.name.as_str())
    };
    assert!(
        eventually(20, || !kept()),
        "C kept an endpoint whose address B holds:\n{}",
        h.hosts[2].log()
    );
    assert!(
        !cc.exec(&["ip", "link", "show", "eth0"]).status.success(),
        "C's container kept its interface"
    );
    assert!(reaches(&cs[0], &ip_c, 5), "A cannot reach B's container");
    assert!(
        !fdb(h.a(), &vx).contains(&mac),
        "A learned C's endpoint again"
    );
    common::consistency::assert_consistent(&h.hosts[2], "after the address was taken");
}

#[test]
fn concurrent_connects_from_three_hosts_get_distinct_addresses() {
    let _one = serial();
    let h = Hosts::new();
    create_overlay(&h, 0, "busy", "10.230.0.0/22");
    for d in &h.hosts {
        assert!(eventually(5, || d.get("/networks/busy").status == 200));
    }
    const PER_HOST: usize = 50;
    let cs: Vec<Vec<common::Netns>> = h
        .hosts
        .iter()
        .map(|d| (0..PER_HOST).map(|_| container(d)).collect())
        .collect();
    std::thread::scope(|s| {
        for (d, list) in h.hosts.iter().zip(&cs) {
            for c in list {
                s.spawn(move || {
                    let r = d.post("/networks/busy/connect", &json!({"Container": c.name}));
                    assert_eq!(r.status, 200, "{}", r.body);
                });
            }
        }
    });
    let v: Value = h.a().get("/networks/busy").json();
    let mut ips: Vec<String> = containers(&v)
        .iter()
        .map(|e| e["IPv4Address"].as_str().unwrap_or("").to_string())
        .collect();
    let total = ips.len();
    ips.sort();
    ips.dedup();
    assert!(
        eventually(5, || containers(&h.a().get("/networks/busy").json()).len()
            == 3 * PER_HOST),
        "A sees {total}"
    );
    let v: Value = h.a().get("/networks/busy").json();
    let mut ips: Vec<String> = containers(&v)
        .iter()
        .map(|e| e["IPv4Address"].as_str().unwrap_or("").to_string())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3 * PER_HOST, "addresses were handed out twice");
}

/// A CA, and the server and client certificates it signs for `san`: (CA PEM, [(cert PEM,
/// key PEM); 2]).
fn pki(san: &str) -> (String, [(String, String); 2]) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "nbt etcd CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |cn: &str, usage: Vec<ExtendedKeyUsagePurpose>| {
        let mut p = CertificateParams::new(vec![san.to_string()]).expect("leaf params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = usage;
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    // etcd's JSON gateway dials its own gRPC server with the server certificate as a client
    // certificate: it needs both usages.
    let server = leaf(
        "etcd",
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let client = leaf("netbridge", vec![ExtendedKeyUsagePurpose::ClientAuth]);
    (ca_pem, [server, client])
}

#[test]
fn the_cluster_store_is_reached_over_tls_with_a_client_certificate() {
    let _one = serial();
    let addr = "10.9.1.1";
    let scratch =
        Scratch(std::env::temp_dir().join(format!("netbridge-etcd-tls-{}", common::rand_hex(8))));
    let dir = scratch.0.clone();
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, [(server_cert, server_key), (client_cert, client_key)]) = pki(addr);
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write pem");
        p.display().to_string()
    };
    let (ca, sc, sk) = (
        file("ca.pem", &ca),
        file("server.pem", &server_cert),
        file("server-key.pem", &server_key),
    );
    let (cc, ck) = (
        file("client.pem", &client_cert),
        file("client-key.pem", &client_key),
    );
    let d = common::Daemon::start_with(&[
        "--cluster-store",
        &format!("etcds://{addr}:2379"),
        "--advertise-addr",
        addr,
        "--cluster-ca",
        &ca,
        "--cluster-cert",
        &cc,
        "--cluster-key",
        &ck,
    ]);
    d.ip(&["link", "add", "u0", "type", "veth", "peer", "name", "u1"]);
    d.ip(&["addr", "add", &format!("{addr}/24"), "dev", "u0"]);
    d.ip(&["link", "set", "u0", "up"]);
    d.ip(&["link", "set", "u1", "up"]);
    let args: Vec<String> = [
        "--name",
        "h0",
        "--listen-client-urls",
        &format!("https://{addr}:2379"),
        "--advertise-client-urls",
        &format!("https://{addr}:2379"),
        "--listen-peer-urls",
        &format!("http://{addr}:2380"),
        "--initial-advertise-peer-urls",
        &format!("http://{addr}:2380"),
        "--initial-cluster",
        &format!("h0=http://{addr}:2380"),
        "--cert-file",
        &sc,
        "--key-file",
        &sk,
        "--trusted-ca-file",
        &ca,
        "--client-cert-auth",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let etcd = start_etcd(&d.ns.name, dir.join("etcd"), &args);
    assert!(
        eventually(30, || d.log().contains("cluster lease granted")),
        "no lease over TLS:\n{}\n{}",
        d.log(),
        std::fs::read_to_string(etcd.dir.join("etcd.log")).unwrap_or_default()
    );
    create_overlay_on(&d, "secure", "10.250.0.0/24");
    let v = d.get("/networks/secure").json();
    assert_eq!(v["Scope"], "global", "{v}");
    // etcd refuses a client without a certificate: the daemon's access was its certificate.
    let url = format!("https://{addr}:2379/v3/kv/range");
    let netns = format!("--net=/run/netns/{}", d.ns.name);
    let bare = common::run(
        "nsenter",
        &[
            &netns,
            "--",
            "curl",
            "-sS",
            "--max-time",
            "3",
            "--cacert",
            &ca,
            "-XPOST",
            &url,
            "-d",
            "{}",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&bare.stdout).contains("header"),
        "etcd answered a client without a certificate"
    );
    drop(etcd);
}

/// A temp dir removed on drop, also when the test fails.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn create_overlay_on(d: &common::Daemon, name: &str, subnet: &str) -> String {
    d.create_network(
        &json!({"Name": name, "Driver": "overlay", "IPAM": {"Config": [{"Subnet": subnet}]}}),
    )
}
