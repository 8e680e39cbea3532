//! The experiment with raw HTTP only: sandboxes made through `POST /containers/create`, the
//! container routes (list, inspect by ID, name and prefix, remove with and without force), and
//! `docker inspect` / `docker rm -f` against a sandbox. Sandboxes are `nbt-<random>` namespaces
//! under /run/netns, removed on drop even when a test fails; namespaces netbridge did not make are
//! never deleted by it.

mod attach;
mod common;

use attach::*;
use common::{Daemon, Netns, Value, json};

/// `GET /containers/{term}/json`, which must succeed.
fn inspect_container(d: &Daemon, term: &str) -> Value {
    let r = d.get(&format!("/containers/{term}/json"));
    assert_eq!(r.status, 200, "inspect container {term}: {}", r.body);
    r.json()
}

#[test]
fn experiment_with_raw_http_and_sandboxes() {
    let d = Daemon::start();
    let s1 = Sandbox::create(&d);
    let s2 = Sandbox::create(&d);
    let s3 = Sandbox::create(&d);

    // Each is a named namespace with lo up.
    for s in [&s1, &s2, &s3] {
        assert!(netns_listed(&s.name), "{} in ip netns list", s.name);
        let lo = link(&s.name, "lo").expect("lo");
        assert!(
            flags(&lo).contains(&"UP".to_string()),
            "lo up in {}: {lo}",
            s.name
        );
        assert!(link(&s.name, "eth0").is_none());
    }

    let r = d.post(
        "/networks/create",
        &json!({"Name": "mynet", "IPAM": {"Config": [{"Subnet": "172.30.0.0/24"}]}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let net_id = r.json()["Id"].as_str().expect("Id").to_string();
    let bridge = br(&net_id);

    // s1 by name, s2 by full ID at a static address, s3 by unique ID prefix.
    connect_ok(&d, "mynet", &s1.name);
    connect_ip_ok(&d, "mynet", &s2.id, "172.30.0.20");
    connect_ok(&d, "mynet", &s3.id[..12]);
    assert_eq!(ipv4_of(&s1.name, "eth0"), vec!["172.30.0.2/24"]);
    assert_eq!(ipv4_of(&s2.name, "eth0"), vec!["172.30.0.20/24"]);
    assert_eq!(ipv4_of(&s3.name, "eth0"), vec!["172.30.0.3/24"]);
    assert!(ping(&s1.name, "172.30.0.20"), "s1 → s2");
    assert!(ping(&s2.name, "172.30.0.2"), "s2 → s1");
    assert_eq!(ports(&d, &bridge).len(), 3);

    // Network inspect keys the sandboxes by their IDs.
    let containers = containers_of(&d, "mynet");
    for s in [&s1, &s2, &s3] {
        let e = &containers[&s.id];
        assert_eq!(e["Name"], s.name.as_str(), "{e}");
    }

    // GET /containers/json lists them.
    let r = d.get("/containers/json");
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json();
    let list = list.as_array().expect("array");
    for s in [&s1, &s2, &s3] {
        let item = list
            .iter()
            .find(|c| c["Id"] == s.id.as_str())
            .unwrap_or_else(|| panic!("{} not listed: {}", s.name, r.body));
        assert_eq!(item["Names"], json!([format!("/{}", s.name)]), "{item}");
        assert!(
            item["NetworkSettings"]["Networks"]["mynet"].is_object(),
            "Networks.mynet in the list item: {item}"
        );
    }

    // GET /containers/{id}/json by ID, name and unique prefix: the same answer.
    let by_id = inspect_container(&d, &s1.id);
    assert_eq!(inspect_container(&d, &s1.name), by_id, "by name");
    assert_eq!(inspect_container(&d, &s1.id[..10]), by_id, "by prefix");
    assert_eq!(by_id["Id"], s1.id.as_str());
    assert_eq!(by_id["Name"], format!("/{}", s1.name));
    assert_eq!(by_id["State"]["Running"], true, "{}", by_id["State"]);
    let eth0 = link(&s1.name, "eth0").expect("eth0");
    let ep = &by_id["NetworkSettings"]["Networks"]["mynet"];
    assert_eq!(ep["IPAddress"], "172.30.0.2", "{ep}");
    assert_eq!(ep["IPPrefixLen"], 24, "{ep}");
    assert_eq!(ep["MacAddress"], mac(&eth0).as_str(), "kernel MAC: {ep}");
    assert_eq!(ep["Gateway"], "172.30.0.1", "{ep}");
    assert_eq!(ep["NetworkID"], net_id.as_str(), "{ep}");
    assert!(is_hex64(ep["EndpointID"].as_str().unwrap_or("")), "{ep}");
    assert_eq!(
        ep["EndpointID"], containers[&s1.id]["EndpointID"],
        "same endpoint as network inspect"
    );
    let ep2 = &inspect_container(&d, &s2.name)["NetworkSettings"]["Networks"]["mynet"];
    assert_eq!(ep2["IPAddress"], "172.30.0.20", "{ep2}");

    // Unknown → 404.
    let r = d.get("/containers/nbt-nosuch/json");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.message(), "No such container: nbt-nosuch");

    // Remove while connected: 409 without force, the namespace stays.
    let r = d.delete(&format!("/containers/{}", s1.id));
    assert_eq!(r.status, 409, "{}", r.body);
    r.message();
    assert!(netns_exists(&s1.name));
    assert!(ping(&s1.name, "172.30.0.20"), "still attached");

    // With force=1: 204, the namespace file is gone, its veth and endpoint too.
    let host_ports_before = ports(&d, &bridge).len();
    let r = d.delete(&format!("/containers/{}?force=1", s1.id));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, "");
    assert!(
        !netns_exists(&s1.name),
        "/run/netns/{} still there",
        s1.name
    );
    assert!(!netns_listed(&s1.name));
    assert_eq!(ports(&d, &bridge).len(), host_ports_before - 1);
    assert!(!containers_of(&d, "mynet").contains_key(&s1.id));
    assert_eq!(d.get(&format!("/containers/{}/json", s1.id)).status, 404);
    assert!(!listed_containers(&d).contains(&s1.name));

    // Its address is free again.
    let s4 = Sandbox::create(&d);
    connect_ok(&d, "mynet", &s4.name);
    assert_eq!(ipv4_of(&s4.name, "eth0"), vec!["172.30.0.2/24"]);

    // Disconnect, then a plain remove (not connected) works.
    disconnect_ok(&d, "mynet", &s3.name);
    assert!(link(&s3.name, "eth0").is_none());
    let r = d.delete(&format!("/containers/{}", s3.name));
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!netns_exists(&s3.name));
}

#[test]
fn namespaces_netbridge_did_not_make_are_never_deleted() {
    let d = Daemon::start();
    let ns = Netns::new("nbt");
    let peer = Sandbox::create(&d);
    let r = d.post(
        "/networks/create",
        &json!({"Name": "mynet", "IPAM": {"Config": [{"Subnet": "172.30.0.0/24"}]}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    connect_ok(&d, "mynet", &ns.name);
    connect_ok(&d, "mynet", &peer.name);
    assert!(ping(&ns.name, "172.30.0.3"));

    // Inspectable like a sandbox while connected.
    let v = inspect_container(&d, &ns.name);
    assert_eq!(v["Name"], format!("/{}", ns.name));
    assert!(listed_containers(&d).contains(&ns.name));

    // Not forced: 409, nothing changes.
    let r = d.delete(&format!("/containers/{}", ns.name));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(link(&ns.name, "eth0").is_some());

    // Forced: disconnected and forgotten, but the namespace stays.
    let r = d.delete(&format!("/containers/{}?force=1", ns.name));
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(
        netns_listed(&ns.name),
        "{} was deleted by netbridge",
        ns.name
    );
    assert!(link(&ns.name, "eth0").is_none(), "disconnected first");
    assert_eq!(
        link(&ns.name, "lo").map(|l| flags(&l).contains(&"UP".to_string())),
        Some(true),
        "the namespace itself is untouched"
    );
    assert!(entry_named(&d, "mynet", &ns.name).is_none());
    assert_eq!(d.get(&format!("/containers/{}/json", ns.name)).status, 404);

    // It can be connected again afterwards.
    connect_ok(&d, "mynet", &ns.name);
    assert!(ping(&ns.name, "172.30.0.3"));

    // A namespace never connected is unknown to the container routes: 404, still there.
    let other = Netns::new("nbt");
    let r = d.delete(&format!("/containers/{}?force=1", other.name));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(netns_listed(&other.name));
}

#[test]
fn sandbox_create_rules() {
    let d = Daemon::start();
    let s = Sandbox::create(&d);

    // Same name again → 409; the first stays.
    let r = d.post(&format!("/containers/create?name={}", s.name), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    r.message();
    assert!(netns_exists(&s.name));
    assert_eq!(inspect_container(&d, &s.name)["Id"], s.id.as_str());

    // A name an existing namespace already uses → 409, that namespace untouched.
    let ns = Netns::new("nbt");
    let r = d.post(&format!("/containers/create?name={}", ns.name), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(netns_listed(&ns.name));
    assert_eq!(d.get(&format!("/containers/{}/json", ns.name)).status, 404);

    // Names that are not Docker container names → 400, nothing made.
    // (All start from an `nbt-` name, so should one be made by mistake it is recognisable; it is
    // then removed again before the assertion fails.)
    let base = format!("nbt-{}", common::rand_hex(8));
    let bads = [
        format!("-{base}"),
        format!("{base}%20x"),
        format!("{base}%2Fx"),
        format!("..%2F{base}"),
        "..".to_string(),
    ];
    for bad in &bads {
        let r = d.post(&format!("/containers/create?name={bad}"), &json!({}));
        if r.status == 201 {
            let id = r.json()["Id"].as_str().unwrap_or_default().to_string();
            let _ = d.delete(&format!("/containers/{id}?force=1"));
        }
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        r.message();
    }
    assert!(!netns_exists(&format!("-{base}")));
    assert_eq!(listed_containers(&d), vec![s.name.clone()]);
}

#[test]
fn docker_inspect_and_rm_on_a_sandbox() {
    let d = Daemon::start();
    let s = Sandbox::create(&d);
    d.docker_ok(&["network", "create", "--subnet", "172.30.0.0/24", "mynet"]);
    d.docker_ok(&["network", "connect", "mynet", &s.name]);

    let out = d.docker_ok(&["inspect", &s.name]);
    let v: Value = serde_json::from_str(&out).expect("docker inspect JSON");
    assert_eq!(v[0]["Id"], s.id.as_str(), "{out}");
    assert_eq!(v[0]["Name"], format!("/{}", s.name), "{out}");
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["mynet"]["IPAddress"], "172.30.0.2",
        "{out}"
    );
    let out = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.mynet.IPAddress}}",
        &s.id[..12],
    ]);
    assert_eq!(out.trim(), "172.30.0.2");

    let out = d.docker_ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    assert!(
        out.contains(&format!("{} {}", s.id, s.name)),
        "docker ps: {out}"
    );

    // `docker rm` without -f refuses while connected; with -f it removes the namespace.
    let out = d.docker(&["rm", &s.name]);
    assert!(
        !out.status.success(),
        "docker rm of a connected sandbox must fail"
    );
    assert!(netns_exists(&s.name));
    let out = d.docker_ok(&["rm", "-f", &s.name]);
    assert_eq!(out.trim(), s.name, "docker rm -f prints the argument");
    assert!(!netns_exists(&s.name), "namespace removed");
    let out = d.docker_ok(&["network", "inspect", "mynet"]);
    let v: Value = serde_json::from_str(&out).expect("inspect JSON");
    assert_eq!(v[0]["Containers"], json!({}), "{out}");
    d.docker_ok(&["network", "rm", "mynet"]);
}
