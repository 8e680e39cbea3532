//! The macvlan driver against the real kernel. The parent is a veth in the daemon's throwaway
//! namespace whose other end sits in a second throwaway namespace, standing for "the outside
//! network" and holding the gateway address. Containers are throwaway namespaces too: traffic
//! never leaves namespaces the test made, and all of them go when the test ends, also on
//! failure.

mod attach;
mod common;

use attach::*;
use common::consistency::assert_consistent;
use common::{Daemon, Netns, Value, inet, json, run};

const SUBNET: &str = "10.77.0.0/24";
const GATEWAY: &str = "10.77.0.1";
const PARENT: &str = "mvp0";

/// The outside network: `mvp0` in the daemon's namespace, its peer `out0` in `outside` with
/// the gateway's address.
fn outside(d: &Daemon) -> Netns {
    let out = Netns::new("nbt");
    d.ip(&[
        "link", "add", PARENT, "type", "veth", "peer", "name", "out0", "netns", &out.name,
    ]);
    d.ip(&["link", "set", PARENT, "up"]);
    out.ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "out0"]);
    out.ip(&["link", "set", "out0", "up"]);
    out
}

fn create_macvlan(d: &Daemon, name: &str, options: Value) -> common::Response {
    d.post(
        "/networks/create",
        &json!({"Name": name, "Driver": "macvlan", "Options": options,
                "IPAM": {"Config": [{"Subnet": SUBNET, "Gateway": GATEWAY}]}}),
    )
}

fn create_ok(d: &Daemon, name: &str, options: Value) -> String {
    let r = create_macvlan(d, name, options);
    assert_eq!(r.status, 201, "create {name}: {}", r.message());
    r.json()["Id"].as_str().unwrap_or_default().to_string()
}

fn kind_of(ns: &str, dev: &str) -> String {
    let out = run("ip", &["-n", ns, "-d", "-j", "link", "show", "dev", dev]);
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    links[0]["linkinfo"]["info_kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn remove(d: &Daemon, net: &str) {
    let r = d.delete(&format!("/networks/{net}"));
    assert_eq!(r.status, 204, "remove {net}: {}", r.message());
}

#[test]
fn two_containers_reach_each_other_and_the_outside_host() {
    let d = Daemon::start();
    let out = outside(&d);
    let id = create_ok(&d, "mv", json!({"parent": PARENT}));
    let (c1, c2) = (Netns::new("nbt"), Netns::new("nbt"));
    connect_ok(&d, "mv", &c1.name);
    connect_ip_ok(&d, "mv", &c2.name, "10.77.0.20");

    for (c, ip) in [(&c1, "10.77.0.2/24"), (&c2, "10.77.0.20/24")] {
        assert_eq!(ipv4_of(&c.name, "eth0"), vec![ip]);
        assert_eq!(kind_of(&c.name, "eth0"), "macvlan", "eth0 in {}", c.name);
        assert_eq!(
            default_routes(&c.name)
                .into_iter()
                .map(|(g, _)| g)
                .collect::<Vec<_>>(),
            vec![GATEWAY.to_string()]
        );
    }
    assert!(ping(&c1.name, "10.77.0.20"), "container to container");
    assert!(ping(&c2.name, "10.77.0.2"), "and back");
    assert!(ping(&c1.name, GATEWAY), "container to the outside host");
    assert!(
        run(
            "ip",
            &[
                "netns",
                "exec",
                &out.name,
                "ping",
                "-c1",
                "-W2",
                "10.77.0.20"
            ]
        )
        .status
        .success(),
        "the outside host to a container"
    );
    // The gateway is out there, never on a host interface.
    assert!(inet(&d, PARENT).is_empty(), "no address on the parent");

    // Inspect as Docker shows it.
    let n = inspect_net(&d, "mv");
    assert_eq!(n["Driver"], "macvlan");
    assert_eq!(n["Options"], json!({"parent": PARENT}));
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], GATEWAY);
    let members = containers_of(&d, "mv");
    assert_eq!(members.len(), 2);
    let (_, e) = entry_named(&d, "mv", &c1.name).expect("c1 listed");
    assert_eq!(e["IPv4Address"], "10.77.0.2/24");
    let mac_inside = mac(&link(&c1.name, "eth0").expect("eth0"));
    assert_eq!(e["MacAddress"], mac_inside.as_str());
    assert_consistent(&d, "two macvlan endpoints");

    // The CLI shows the same.
    let text = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Options.parent}}",
        "mv",
    ]);
    assert_eq!(text.trim(), format!("macvlan {PARENT}"));

    disconnect_ok(&d, "mv", &c1.name);
    assert!(link(&c1.name, "eth0").is_none(), "eth0 gone from c1");
    disconnect_ok(&d, "mv", &c2.name);
    remove(&d, &id);
    assert!(d.has_link(PARENT), "a parent the client named stays");
    assert_consistent(&d, "after removal");
}

#[test]
fn private_mode_blocks_traffic_between_containers() {
    let d = Daemon::start();
    let _out = outside(&d);
    create_ok(
        &d,
        "mvp",
        json!({"parent": PARENT, "macvlan_mode": "private"}),
    );
    let (c1, c2) = (Netns::new("nbt"), Netns::new("nbt"));
    connect_ok(&d, "mvp", &c1.name);
    connect_ok(&d, "mvp", &c2.name);
    assert!(ping(&c1.name, GATEWAY), "the outside host is reachable");
    assert!(!ping(&c1.name, "10.77.0.3"), "the other container is not");
    assert_consistent(&d, "private mode");
}

#[test]
fn passthru_allows_one_endpoint_and_owns_its_parent() {
    let d = Daemon::start();
    let _out = outside(&d);
    create_ok(
        &d,
        "mvpt",
        json!({"parent": PARENT, "macvlan_mode": "passthru"}),
    );
    let (c1, c2) = (Netns::new("nbt"), Netns::new("nbt"));
    connect_ok(&d, "mvpt", &c1.name);
    let r = connect(&d, "mvpt", json!({"Container": c2.name}));
    assert_eq!(r.status, 403, "second endpoint: {}", r.message());
    assert!(r.message().contains("passthru"), "{}", r.message());
    assert!(link(&c2.name, "eth0").is_none(), "nothing half made");

    // A second network on a parent used in passthru mode is refused, as Docker does.
    let r = d.post(
        "/networks/create",
        &json!({"Name": "mv2", "Driver": "macvlan", "Options": {"parent": PARENT},
                "IPAM": {"Config": [{"Subnet": "10.78.0.0/24"}]}}),
    );
    assert_eq!(r.status, 403, "{}", r.message());
    assert!(
        r.message().ends_with(&format!(
            "is already using parent interface {PARENT} in mode passthru"
        )),
        "{}",
        r.message()
    );
    assert_consistent(&d, "passthru");
}

#[test]
fn a_passthru_network_on_a_used_parent_is_refused() {
    let d = Daemon::start();
    let _out = outside(&d);
    let first = create_ok(&d, "mv1", json!({"parent": PARENT}));
    let r = d.post(
        "/networks/create",
        &json!({"Name": "mv2", "Driver": "macvlan",
                "Options": {"parent": PARENT, "macvlan_mode": "passthru"},
                "IPAM": {"Config": [{"Subnet": "10.78.0.0/24"}]}}),
    );
    assert_eq!(r.status, 403, "{}", r.message());
    assert_eq!(
        r.message(),
        format!(
            "cannot use mode passthru, macvlan network {first} is already using parent interface {PARENT}"
        )
    );
}

#[test]
fn a_network_without_parent_is_isolated_and_its_parent_goes_with_it() {
    let d = Daemon::start();
    let id = d.create_network(&json!({"Name": "iso", "Driver": "macvlan",
        "IPAM": {"Config": [{"Subnet": SUBNET}]}}));
    let own = format!("dm-{}", &id[..12]);
    let parent = link(&d.ns.name, &own).expect("isolated parent");
    assert_eq!(parent["ifalias"], format!("netbridge:{id}"));
    assert_eq!(kind_of(&d.ns.name, &own), "veth", "a veth leading nowhere");
    assert!(inet(&d, &own).is_empty(), "no gateway on a host interface");
    let (c1, c2) = (Netns::new("nbt"), Netns::new("nbt"));
    connect_ok(&d, "iso", &c1.name);
    connect_ok(&d, "iso", &c2.name);
    assert!(ping(&c1.name, "10.77.0.3"), "containers reach each other");
    assert_consistent(&d, "isolated macvlan");

    // --internal with a parent still gets an isolated parent of its own.
    let _out = outside(&d);
    let internal = d.create_network(&json!({"Name": "int", "Driver": "macvlan",
        "Internal": true, "Options": {"parent": PARENT},
        "IPAM": {"Config": [{"Subnet": "10.78.0.0/24"}]}}));
    assert!(d.has_link(&format!("dm-{}", &internal[..12])));

    disconnect_ok(&d, "iso", &c1.name);
    disconnect_ok(&d, "iso", &c2.name);
    remove(&d, "iso");
    remove(&d, "int");
    assert!(
        !d.has_link(&own),
        "isolated parent removed with its network"
    );
    assert_consistent(&d, "after removal");
}

#[test]
fn refusals_name_what_is_missing() {
    let d = Daemon::start();
    let _out = outside(&d);
    let r = create_macvlan(&d, "x", json!({"parent": "nosuch0"}));
    assert_eq!(r.status, 400, "{}", r.message());
    assert_eq!(
        r.message(),
        "-o parent interface was not found on the host: nosuch0"
    );
    let r = create_macvlan(&d, "x", json!({"parent": format!("{PARENT}.10")}));
    assert_eq!(r.status, 400, "{}", r.message());
    assert!(r.message().contains("802.1Q"), "{}", r.message());
    let r = create_macvlan(&d, "x", json!({"parent": PARENT, "macvlan_mode": "l3"}));
    assert_eq!(r.status, 400, "{}", r.message());
    let r = d.post(
        "/networks/create",
        &json!({"Name": "x", "Driver": "ipvlan", "Options": {"parent": PARENT}}),
    );
    assert_eq!(r.status, 400, "{}", r.message());
    assert!(
        r.message().contains("IP-VLAN") && r.message().contains("\"ipvlan\""),
        "{}",
        r.message()
    );
    let r = d.post(
        "/networks/create",
        &json!({"Name": "x", "Driver": "nosuch"}),
    );
    assert_eq!(r.status, 404, "{}", r.message());
    assert_eq!(d.get("/networks/x").status, 404, "nothing was made");
    // The probe is reported in the log and by the drivers route.
    assert!(d.log().contains("link kinds this kernel offers"));
    let report = d.get("/netbridge/drivers").json();
    let driver = |name: &str| {
        report["Drivers"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["Name"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(driver("bridge")["Available"], true, "{report}");
    assert_eq!(driver("macvlan")["Available"], true, "{report}");
    assert_eq!(driver("ipvlan")["Available"], false, "{report}");
    assert!(
        driver("ipvlan")["Reason"]
            .as_str()
            .is_some_and(|r| r.contains("IP-VLAN")),
        "{report}"
    );
    assert!(
        report["LinkKinds"]
            .as_array()
            .is_some_and(|k| k.contains(&json!("macvlan")))
    );
}

#[test]
fn reconcile_puts_back_what_went_missing() {
    let d = Daemon::start();
    let _out = outside(&d);
    create_ok(&d, "mv", json!({"parent": PARENT}));
    let iso = d.create_network(&json!({"Name": "iso", "Driver": "macvlan",
        "IPAM": {"Config": [{"Subnet": "10.79.0.0/24"}]}}));
    let (c1, c2) = (Netns::new("nbt"), Netns::new("nbt"));
    connect_ok(&d, "mv", &c1.name);
    connect_ok(&d, "iso", &c2.name);
    let mac_before = mac(&link(&c1.name, "eth0").expect("eth0"));

    // A container's macvlan deleted behind the daemon's back, and an isolated parent.
    c1.ip(&["link", "del", "eth0"]);
    d.ip(&["link", "del", &format!("dm-{}", &iso[..12])]);
    let r = d.post("/netbridge/reconcile", &json!({}));
    assert_eq!(r.status, 200);
    let repairs = r.json()["Repairs"].to_string();
    assert!(repairs.contains("re-attached"), "{repairs}");
    assert!(repairs.contains("re-created"), "{repairs}");
    assert_eq!(ipv4_of(&c1.name, "eth0"), vec!["10.77.0.2/24"]);
    assert_eq!(mac(&link(&c1.name, "eth0").expect("eth0")), mac_before);
    assert_eq!(kind_of(&c2.name, "eth0"), "macvlan");
    assert!(ping(&c1.name, GATEWAY));
    assert_consistent(&d, "after reconcile");

    // A restart finds everything in place.
    let mut d = d;
    d.restart();
    assert_consistent(&d, "after restart");
}

/// A disconnect answers once the macvlan is cut off inside the container (down, out of the
/// way of the next `eth0`, marked doomed); the reaper deletes it there soon after, and a
/// reconnect at once works.
#[test]
fn disconnect_cuts_the_macvlan_off_at_once_and_the_reaper_deletes_it() {
    let d = Daemon::start();
    let _out = outside(&d);
    create_ok(&d, "mv", json!({"parent": PARENT}));
    let c = Netns::new("nbt");
    let others = |ns: &str| -> Vec<Value> {
        links(ns)
            .into_iter()
            .filter(|l| l["ifname"] != "lo")
            .collect()
    };
    for round in 0..3 {
        connect_ok(&d, "mv", &c.name);
        disconnect_ok(&d, "mv", &c.name);
        assert!(
            link(&c.name, "eth0").is_none(),
            "round {round}: eth0 still there"
        );
        for l in others(&c.name) {
            assert!(
                !flags(&l).iter().any(|f| f == "UP"),
                "round {round}: a usable interface is left: {l}"
            );
            assert_eq!(
                l["ifalias"], "netbridge-doomed",
                "round {round}: not marked doomed: {l}"
            );
        }
        assert!(
            !ping(&c.name, GATEWAY),
            "round {round}: the gateway is still reachable"
        );
        connect_ok(&d, "mv", &c.name);
        assert!(
            ping(&c.name, GATEWAY),
            "round {round}: reconnected, yet the gateway is unreachable"
        );
        disconnect_ok(&d, "mv", &c.name);
    }
    assert!(
        common::eventually(10, || others(&c.name).is_empty()),
        "doomed macvlans never deleted: {:?}",
        others(&c.name)
    );
    assert_consistent(&d, "after macvlan disconnects");
    remove(&d, "mv");
}
