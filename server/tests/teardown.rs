//! Teardown without the kernel's grace period on the request path: a disconnect, a forced
//! container removal and a network remove answer once the endpoint or bridge is cut off, and
//! the links are deleted in the background, in batches. Checked here: nothing observable
//! breaks (a reconnect at once gets `eth0` back and works, the old endpoint leaves no usable
//! interface, a network re-created at once with the same name, subnet and bridge name works),
//! and every cut-off link is deleted soon after. Speed is in the benchmark, not here.

mod attach;
mod common;

use attach::*;
use common::consistency::{assert_consistent, log_tail};
use common::{Daemon, Netns, Value, eventually, json};

/// What a cut-off link carries instead of netbridge's mark.
const DOOMED_ALIAS: &str = "netbridge-doomed";

/// Links of the daemon's namespace still awaiting deletion.
fn doomed(d: &Daemon) -> Vec<String> {
    links(&d.ns.name)
        .iter()
        .filter(|l| l["ifalias"] == DOOMED_ALIAS)
        .map(|l| l["ifname"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the reaper has deleted every cut-off link.
fn all_reaped(d: &Daemon, context: &str) {
    assert!(
        eventually(10, || doomed(d).is_empty()),
        "{context}: doomed links never deleted: {:?}\n{}",
        doomed(d),
        log_tail(d, 40)
    );
}

fn is_up(l: &Value) -> bool {
    flags(l).iter().any(|f| f == "UP")
}

/// The links of a sandbox other than `lo`.
fn non_loopback(ns: &str) -> Vec<Value> {
    links(ns)
        .into_iter()
        .filter(|l| l["ifname"] != "lo")
        .collect()
}

#[test]
fn reconnect_right_after_disconnect_gets_eth0_and_works() {
    let d = Daemon::start();
    create_net(&d, "tear", "10.77.1.0/24", json!({}));
    let sb = Sandbox::create(&d);
    for round in 0..5 {
        connect_ok(&d, "tear", &sb.name);
        disconnect_ok(&d, "tear", &sb.name);
        // At once, before the reaper can have run: the name is free, the interface is back.
        connect_ok(&d, "tear", &sb.name);
        let eth0 = link(&sb.name, "eth0").unwrap_or_else(|| panic!("round {round}: no eth0"));
        assert!(is_up(&eth0), "round {round}: eth0 is not up: {eth0}");
        assert!(
            ping(&sb.name, "10.77.1.1"),
            "round {round}: gateway unreachable"
        );
        let others: Vec<Value> = non_loopback(&sb.name)
            .into_iter()
            .filter(|l| l["ifname"] != "eth0")
            .collect();
        assert!(
            others.iter().all(|l| !is_up(l)),
            "round {round}: the old endpoint left a usable interface: {others:?}"
        );
        disconnect_ok(&d, "tear", &sb.name);
    }
    all_reaped(&d, "after reconnects");
    assert!(
        non_loopback(&sb.name).is_empty(),
        "the old endpoints' interfaces are gone: {:?}",
        non_loopback(&sb.name)
    );
    assert_consistent(&d, "after reconnects");
}

#[test]
fn disconnect_cuts_the_endpoint_off_before_answering() {
    let d = Daemon::start();
    let id = create_net(&d, "tear", "10.77.2.0/24", json!({}));
    let sb = Sandbox::create(&d);
    connect_ok(&d, "tear", &sb.name);
    let host_end = port_names(&d, &br(&id));
    assert_eq!(host_end.len(), 1, "one port: {host_end:?}");
    disconnect_ok(&d, "tear", &sb.name);
    // Whatever is left at this moment carries nothing: the container end down and renamed,
    // the host end without carrier (a disabled port until it is deleted), marked doomed.
    assert!(link(&sb.name, "eth0").is_none(), "eth0 still there");
    for l in non_loopback(&sb.name) {
        assert!(!is_up(&l), "a usable interface is left inside: {l}");
    }
    if let Some(l) = link(&d.ns.name, &host_end[0]) {
        assert!(
            !flags(&l).iter().any(|f| f == "LOWER_UP"),
            "the host end still has carrier: {l}"
        );
        assert_eq!(
            l["ifalias"], DOOMED_ALIAS,
            "the host end is not marked doomed: {l}"
        );
    }
    assert!(
        !ping(&sb.name, "10.77.2.1"),
        "the gateway is still reachable"
    );
    all_reaped(&d, "after a disconnect");
    assert!(
        port_names(&d, &br(&id)).is_empty(),
        "still a port of the bridge"
    );
    assert!(
        link(&d.ns.name, &host_end[0]).is_none(),
        "host end never deleted"
    );
    assert!(
        non_loopback(&sb.name).is_empty(),
        "container end never deleted"
    );
    assert_consistent(&d, "after a disconnect");
}

#[test]
fn network_recreated_at_once_with_the_same_name_subnet_and_bridge() {
    let d = Daemon::start();
    let options = json!({"com.docker.network.bridge.name": "nbtdoom0"});
    for round in 0..3 {
        create_net(&d, "again", "10.77.3.0/24", options.clone());
        let sb = Sandbox::create(&d);
        connect_ok(&d, "again", &sb.name);
        assert!(
            ping(&sb.name, "10.77.3.1"),
            "round {round}: gateway unreachable"
        );
        drop(sb);
        let r = d.delete("/networks/again");
        assert_eq!(r.status, 204, "round {round}: remove: {}", r.body);
        assert!(
            link(&d.ns.name, "nbtdoom0").is_none(),
            "round {round}: the bridge's name is not free at once"
        );
    }
    all_reaped(&d, "after removals");
    assert_consistent(&d, "after removals");
}

#[test]
fn forced_removal_and_concurrent_disconnects_are_reaped() {
    let d = Daemon::start();
    create_net(&d, "tear", "10.77.4.0/24", json!({}));
    let sandboxes: Vec<Sandbox> = (0..20).map(|_| Sandbox::create(&d)).collect();
    for sb in &sandboxes {
        connect_ok(&d, "tear", &sb.name);
    }
    std::thread::scope(|s| {
        for sb in &sandboxes[..10] {
            s.spawn(|| disconnect_ok(&d, "tear", &sb.name));
        }
        for sb in &sandboxes[10..] {
            s.spawn(|| {
                let r = d.delete(&format!("/containers/{}?force=1", sb.name));
                assert_eq!(r.status, 204, "forced removal of {}: {}", sb.name, r.body);
            });
        }
    });
    assert_eq!(containers_of(&d, "tear").len(), 0, "every endpoint gone");
    all_reaped(&d, "after concurrent teardown");
    assert_consistent(&d, "after concurrent teardown");
    let r = d.delete("/networks/tear");
    assert_eq!(r.status, 204, "remove: {}", r.body);
    all_reaped(&d, "after the network's removal");
}

#[test]
fn a_stopped_daemon_leaves_no_doomed_link() {
    let mut d = Daemon::start();
    create_net(&d, "tear", "10.77.5.0/24", json!({}));
    let namespaces: Vec<Netns> = (0..5).map(|_| Netns::new("nbt")).collect();
    for ns in &namespaces {
        connect_ok(&d, "tear", &ns.name);
    }
    for ns in &namespaces {
        disconnect_ok(&d, "tear", &ns.name);
    }
    assert_eq!(d.stop(), Some(0), "clean stop");
    assert_eq!(
        doomed(&d),
        Vec::<String>::new(),
        "doomed links left at stop"
    );
    for ns in &namespaces {
        assert_eq!(
            non_loopback(&ns.name),
            Vec::<Value>::new(),
            "{} keeps a link",
            ns.name
        );
    }
}
