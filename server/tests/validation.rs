//! Client mistakes that used to reach the kernel and come back as 500 (issue 11): an over-long
//! sandbox name, a MAC no interface can have, a subnet no bridge can serve. Each must be a 4xx
//! with Docker's JSON body and change nothing. Also `IPAM.Options` as Docker shows it, and IPv6
//! subnets picked without a pool being configured (a per-daemon ULA /48 cut into /64s).

mod attach;
mod common;

use std::net::Ipv6Addr;

use attach::*;
use common::{Daemon, Netns, Value, json, rand_hex};

/// Names of the networks the daemon lists.
fn network_names(d: &Daemon) -> Vec<String> {
    let r = d.get("/networks");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut names: Vec<String> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n["Name"].as_str().expect("Name").to_string())
        .collect();
    names.sort();
    names
}

/// Names of the bridges in the daemon's namespace.
fn bridges(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = d
        .ip(&["-o", "link", "show", "type", "bridge"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    names.sort();
    names
}

/// The IPv6 subnet and gateway of a network, from inspect.
fn ipv6_config(d: &Daemon, net: &str) -> (String, String) {
    let v = inspect_net(d, net);
    let cfg = v["IPAM"]["Config"]
        .as_array()
        .expect("Config")
        .iter()
        .find(|c| c["Subnet"].as_str().is_some_and(|s| s.contains(':')))
        .unwrap_or_else(|| panic!("no IPv6 config: {v}"))
        .clone();
    (
        cfg["Subnet"].as_str().expect("Subnet").to_string(),
        cfg["Gateway"].as_str().expect("Gateway").to_string(),
    )
}

/// The IPv6 addresses (with prefix) on `dev` in the daemon's namespace, link-local left out.
fn inet6(d: &Daemon, dev: &str) -> Vec<String> {
    d.ip(&["-6", "addr", "show", "dev", dev])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("inet6 "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|a| !a.starts_with("fe80:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn sandbox_names_over_the_limit_are_refused() {
    let d = Daemon::start();
    let before = listed_containers(&d);
    let long = "s".repeat(10_000);
    let r = d.post(&format!("/containers/create?name={long}"), &json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    let msg = r.message();
    assert!(msg.contains("at most 128 characters"), "{msg}");
    assert!(msg.contains("10000"), "says how long it was: {msg}");
    assert!(msg.len() < 400, "does not echo the whole name: {msg}");

    // 129 is refused, 128 is fine.
    let stem = format!("nbt-{}", rand_hex(8));
    let over = format!("{stem}{}", "s".repeat(129 - stem.len()));
    let r = d.post(&format!("/containers/create?name={over}"), &json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!netns_exists(&over));
    assert_eq!(listed_containers(&d), before, "nothing made");

    let max = &over[..128];
    let r = d.post(&format!("/containers/create?name={max}"), &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(netns_exists(max));
    let r = d.delete(&format!("/containers/{max}?force=1"));
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!netns_exists(max));
}

#[test]
fn macs_no_interface_can_have_are_refused() {
    let d = Daemon::start();
    let id = create_net(&d, "macs", "172.30.7.0/24", json!({}));
    let bridge = br(&id);
    let ns = Netns::new("nbt");
    for bad in [
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "33:33:00:00:00:01",
        "03:00:00:00:00:01",
    ] {
        let r = connect(
            &d,
            "macs",
            json!({"Container": ns.name, "EndpointConfig": {"MacAddress": bad}}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(
            r.message(),
            format!("invalid endpoint settings:\ninvalid MAC address: {bad}")
        );
        assert!(link(&ns.name, "eth0").is_none(), "{bad}: no eth0");
        assert!(port_names(&d, &bridge).is_empty(), "{bad}: no port");
        assert!(containers_of(&d, "macs").is_empty(), "{bad}: no endpoint");
    }
    // A locally administered unicast MAC still works.
    let r = connect(
        &d,
        "macs",
        json!({"Container": ns.name, "EndpointConfig": {"MacAddress": "02:00:00:00:00:01"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn subnets_no_bridge_can_serve_are_refused() {
    let d = Daemon::start();
    let names = network_names(&d);
    let links = bridges(&d);
    let cases: &[(&str, &str)] = &[
        (
            "224.0.0.0/24",
            "invalid subnet 224.0.0.0/24: multicast addresses cannot be a network's subnet",
        ),
        (
            "239.1.0.0/16",
            "invalid subnet 239.1.0.0/16: multicast addresses cannot be a network's subnet",
        ),
        (
            "127.0.0.0/8",
            "invalid subnet 127.0.0.0/8: loopback addresses cannot be a network's subnet",
        ),
        (
            "169.254.0.0/16",
            "invalid subnet 169.254.0.0/16: link-local addresses cannot be a network's subnet",
        ),
        (
            "0.1.0.0/16",
            "invalid subnet 0.1.0.0/16: addresses in 0.0.0.0/8 (\"this network\") cannot be a network's subnet",
        ),
        (
            "192.0.0.0/2",
            "invalid subnet 192.0.0.0/2: it overlaps 224.0.0.0/4, and multicast addresses cannot be a network's subnet",
        ),
        (
            "10.0.0.0/31",
            "invalid subnet 10.0.0.0/31: a /31 or /32 leaves no address for a container beside the gateway; use /30 or shorter",
        ),
        (
            "10.0.0.1/32",
            "invalid subnet 10.0.0.1/32: a /31 or /32 leaves no address for a container beside the gateway; use /30 or shorter",
        ),
        (
            "ff02::/64",
            "invalid subnet ff02::/64: multicast addresses cannot be a network's subnet",
        ),
        (
            "fe80::/80",
            "invalid subnet fe80::/80: link-local addresses cannot be a network's subnet",
        ),
        (
            "::1/128",
            "invalid subnet ::1/128: loopback addresses cannot be a network's subnet",
        ),
        (
            "fd00::/127",
            "invalid subnet fd00::/127: a /127 or /128 leaves no address for a container beside the gateway; use /126 or shorter",
        ),
    ];
    for (subnet, want) in cases {
        let r = d.post(
            "/networks/create",
            &json!({"Name": "bad", "EnableIPv6": true,
                    "IPAM": {"Config": [{"Subnet": subnet}]}}),
        );
        assert_eq!(r.status, 400, "{subnet}: {}", r.body);
        assert_eq!(
            r.message(),
            format!("invalid network config:\n{want}"),
            "{subnet}"
        );
        assert_eq!(network_names(&d), names, "{subnet}: no network");
        assert_eq!(bridges(&d), links, "{subnet}: no bridge");
    }
    // Several at once are listed together, as Docker lists its IPAM errors.
    let r = d.post(
        "/networks/create",
        &json!({"Name": "bad", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "224.0.0.0/24"}, {"Subnet": "ff00::/64"}]}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.message(),
        "invalid network config:\n\
         * invalid subnet 224.0.0.0/24: multicast addresses cannot be a network's subnet\n\
         * invalid subnet ff00::/64: multicast addresses cannot be a network's subnet"
    );
    // Neighbours of those ranges are fine, and so is Docker's "any free /N".
    for (name, subnet) in [
        ("n1", "223.255.255.0/24"),
        ("n2", "10.0.0.0/30"),
        ("n3", "0.0.0.0/24"),
    ] {
        d.create_network(&json!({"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}}));
    }
}

#[test]
fn ipam_options_are_null_unless_the_client_sent_them() {
    let mut d = Daemon::start();
    d.create_network(&json!({"Name": "none-sent"}));
    d.create_network(&json!({"Name": "no-options", "IPAM": {"Driver": "default"}}));
    d.create_network(&json!({"Name": "empty", "IPAM": {"Options": {}}}));
    d.create_network(&json!({"Name": "given", "IPAM": {"Options": {"k": "v"}}}));
    let want = [
        ("bridge", Value::Null),
        ("none-sent", Value::Null),
        ("no-options", Value::Null),
        ("empty", json!({})),
        ("given", json!({"k": "v"})),
    ];
    for round in ["before restart", "after restart"] {
        for (name, options) in &want {
            let v = inspect_net(&d, name);
            assert_eq!(
                &v["IPAM"]["Options"], options,
                "{round}: inspect {name}: {v}"
            );
            assert!(v["IPAM"].get("Options").is_some(), "{round}: present: {v}");
        }
        let r = d.get("/networks");
        assert_eq!(r.status, 200, "{}", r.body);
        for n in r.json().as_array().expect("array") {
            let name = n["Name"].as_str().expect("Name");
            if let Some((_, options)) = want.iter().find(|(w, _)| *w == name) {
                assert_eq!(&n["IPAM"]["Options"], options, "{round}: list {name}: {n}");
            }
        }
        d.restart();
    }
}

/// The `n`-th /64 of the /48 that holds `first` (a `…::/64` text), as inspect prints it.
fn slash64(first: &str, n: u16) -> String {
    let addr: Ipv6Addr = first
        .trim_end_matches("/64")
        .parse()
        .unwrap_or_else(|e| panic!("{first}: {e}"));
    let mut segments = addr.segments();
    segments[3] = n;
    format!("{}/64", Ipv6Addr::from(segments))
}

#[test]
fn ipv6_without_a_subnet_gets_a_ula_slash64_of_this_daemon() {
    let mut d = Daemon::start();
    d.create_network(&json!({"Name": "v6a", "EnableIPv6": true}));
    let (first, gw) = ipv6_config(&d, "v6a");
    // fdXX:XXXX:XXXX::/64, the first /64 of a ULA /48, with its first address as gateway, on
    // the bridge.
    let addr: Ipv6Addr = first.trim_end_matches("/64").parse().expect("an IPv6 /64");
    assert!(first.ends_with("/64"), "{first}");
    assert_eq!(addr.segments()[0] >> 8, 0xfd, "ULA: {first}");
    assert_eq!(addr.segments()[3..], [0; 5], "first /64 of a /48: {first}");
    let gateway = Ipv6Addr::from(u128::from(addr) + 1).to_string();
    assert_eq!(gw, gateway);
    let id = inspect_net(&d, "v6a")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    assert_eq!(inet6(&d, &br(&id)), vec![format!("{gateway}/64")]);

    // The next one is the next /64 of the same /48; the /48 survives a restart.
    d.create_network(&json!({"Name": "v6b", "EnableIPv6": true}));
    assert_eq!(ipv6_config(&d, "v6b").0, slash64(&first, 1));
    d.restart();
    d.create_network(&json!({"Name": "v6c", "EnableIPv6": true}));
    assert_eq!(ipv6_config(&d, "v6c").0, slash64(&first, 2));
    // First fit: a freed /64 is handed out again, one a user took is skipped.
    assert_eq!(d.delete("/networks/v6a").status, 204);
    d.create_network(&json!({"Name": "v6d", "EnableIPv6": true}));
    assert_eq!(ipv6_config(&d, "v6d").0, first);
    d.create_network(&json!({"Name": "v6e", "EnableIPv6": true,
        "IPAM": {"Config": [{"Subnet": slash64(&first, 3)}]}}));
    d.create_network(&json!({"Name": "v6f", "EnableIPv6": true}));
    assert_eq!(ipv6_config(&d, "v6f").0, slash64(&first, 4));

    // Another daemon (another database) has another /48.
    let other = Daemon::start();
    other.create_network(&json!({"Name": "v6a", "EnableIPv6": true}));
    assert_ne!(ipv6_config(&other, "v6a").0, first);
}

#[test]
fn ipv6_default_address_pools_are_used_when_given() {
    let d = Daemon::start_with(&[
        "--default-address-pool",
        "base=10.123.0.0/16,size=24",
        "--default-address-pool",
        "base=fd12:3456:789a::/48,size=64",
    ]);
    d.create_network(&json!({"Name": "p1", "EnableIPv6": true}));
    assert_eq!(
        ipv6_config(&d, "p1"),
        (
            "fd12:3456:789a::/64".to_string(),
            "fd12:3456:789a::1".to_string()
        )
    );
    d.create_network(&json!({"Name": "p2", "EnableIPv6": true}));
    assert_eq!(ipv6_config(&d, "p2").0, "fd12:3456:789a:1::/64");
    let v4 = inspect_net(&d, "p2")["IPAM"]["Config"][0]["Subnet"].clone();
    assert!(
        v4.as_str().is_some_and(|s| s.starts_with("10.123.")),
        "{v4}"
    );
}
