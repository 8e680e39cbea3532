//! Container references (issue 11): a container is its namespace, whatever reference reached
//! it (a sandbox's name, a named namespace, any PID inside it); the daemon's own namespace is
//! never a container; `--container-refs` turns kinds of reference off.
//!
//! The daemon's own throwaway namespace stands in for the host's: no request here could put an
//! interface into the machine's own namespace, even if the refusal were broken.

mod common;

use common::{Daemon, Netns, Sleeper, json};

fn network(d: &Daemon, name: &str, subnet: &str) -> String {
    d.create_network(&json!({"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}}))
}

fn connect(d: &Daemon, net: &str, container: &str) -> common::Response {
    d.post(
        &format!("/networks/{net}/connect"),
        &json!({"Container": container}),
    )
}

fn links_in(ns: &str) -> String {
    common::must("ip", &["-n", ns, "-o", "link"])
}

#[test]
fn a_named_namespace_and_a_pid_inside_it_are_one_container() {
    let d = Daemon::start();
    let net = network(&d, "refs", "10.77.0.0/24");
    let v = Netns::new("nbt-ref");
    let inside = Sleeper::in_netns(&v.name);

    let first = connect(&d, &net, &v.name);
    assert_eq!(first.status, 200, "{}", first.body);
    let second = connect(&d, &net, &inside.pid());
    assert_eq!(second.status, 403, "{}", second.body);
    assert_eq!(
        second.message(),
        format!(
            "endpoint with name {} already exists in network refs",
            v.name
        )
    );
    assert!(!links_in(&v.name).contains("eth1"), "{}", links_in(&v.name));

    // Every reference resolves to the one container.
    let by_name = d.get(&format!("/containers/{}/json", v.name)).json();
    let by_pid = d.get(&format!("/containers/{}/json", inside.pid()));
    assert_eq!(by_pid.status, 200, "{}", by_pid.body);
    assert_eq!(by_pid.json()["Id"], by_name["Id"]);
    let list = d.get("/containers/json?all=1").json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    let out = d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": inside.pid()}),
    );
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(!links_in(&v.name).contains("eth0"), "{}", links_in(&v.name));
}

#[test]
fn a_sandbox_and_a_pid_inside_it_are_one_container() {
    let d = Daemon::start();
    let net = network(&d, "refs", "10.77.1.0/24");
    let name = format!("nbt-sbx-{}", common::rand_hex(6));
    let made = d.post(&format!("/containers/create?name={name}"), &json!({}));
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["Id"].as_str().unwrap_or_default().to_string();
    let inside = Sleeper::in_netns(&name);

    assert_eq!(connect(&d, &net, &inside.pid()).status, 200);
    let again = connect(&d, &net, &name);
    assert_eq!(again.status, 403, "{}", again.body);
    let by_pid = d.get(&format!("/containers/{}/json", inside.pid())).json();
    assert_eq!(by_pid["Id"], id.as_str());
    assert_eq!(by_pid["Name"], format!("/{name}"));

    // Removal by the PID removes the sandbox.
    let gone = d.delete(&format!("/containers/{}?force=1", inside.pid()));
    assert_eq!(gone.status, 204, "{}", gone.body);
    drop(inside);
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
}

#[test]
fn a_namespace_stays_its_container_after_the_pid_that_named_it_exits() {
    let mut d = Daemon::start();
    let net = network(&d, "refs", "10.77.2.0/24");
    let v = Netns::new("nbt-ref");
    let first = Sleeper::in_netns(&v.name);
    let second = Sleeper::in_netns(&v.name);

    assert_eq!(connect(&d, &net, &first.pid()).status, 200);
    let id = d.get(&format!("/containers/{}/json", first.pid())).json()["Id"].clone();
    drop(first);

    // Start-up reconcile finds the namespace through the other process.
    d.restart();
    let inspect = d.get(&format!("/networks/{net}")).json();
    let endpoints = inspect["Containers"].as_object().map(|m| m.len());
    assert_eq!(
        endpoints,
        Some(1),
        "endpoint dropped: {inspect}\n{}",
        d.log()
    );
    let by_second = d.get(&format!("/containers/{}/json", second.pid()));
    assert_eq!(by_second.status, 200, "{}", by_second.body);
    assert_eq!(by_second.json()["Id"], id);
    assert!(links_in(&v.name).contains("eth0"));

    let out = d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": second.pid()}),
    );
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(!links_in(&v.name).contains("eth0"));
}

#[test]
fn the_daemons_own_namespace_is_refused_by_every_reference() {
    let d = Daemon::start();
    let net = network(&d, "refs", "10.77.3.0/24");
    let beside = Sleeper::in_netns(&d.ns.name);
    let daemon_pid = d.pid().expect("daemon pid").to_string();
    let before = links_in(&d.ns.name);

    for term in [daemon_pid.as_str(), &beside.pid(), &d.ns.name] {
        let r = connect(&d, &net, term);
        assert_eq!(r.status, 403, "{term}: {}", r.body);
        assert!(
            r.message()
                .contains("daemon's own or the host's network namespace"),
            "{}",
            r.message()
        );
        let inspect = d.get(&format!("/containers/{term}/json"));
        assert_eq!(inspect.status, 403, "{term}: {}", inspect.body);
    }
    assert_eq!(links_in(&d.ns.name), before, "links changed");
    let list = d.get("/containers/json?all=1").json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn container_refs_turns_kinds_of_reference_off() {
    let d = Daemon::start_with(&["--container-refs", "sandbox"]);
    let net = network(&d, "refs", "10.77.4.0/24");
    let v = Netns::new("nbt-ref");
    let inside = Sleeper::in_netns(&v.name);

    let by_name = connect(&d, &net, &v.name);
    assert_eq!(by_name.status, 404, "{}", by_name.body);
    let by_pid = connect(&d, &net, &inside.pid());
    assert_eq!(by_pid.status, 404, "{}", by_pid.body);
    assert!(by_pid.message().contains("PID"), "{}", by_pid.message());
    assert!(!links_in(&v.name).contains("eth0"));

    // A sandbox still works, by its name.
    let name = format!("nbt-sbx-{}", common::rand_hex(6));
    let made = d.post(&format!("/containers/create?name={name}"), &json!({}));
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(connect(&d, &net, &name).status, 200);
    assert_eq!(d.delete(&format!("/containers/{name}?force=1")).status, 204);
    drop(d);

    let d = Daemon::start_with(&["--container-refs", "netns,pid"]);
    let refused = d.post("/containers/create?name=nbt-nope", &json!({}));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.message().contains("--container-refs"));
    let net = network(&d, "refs", "10.77.5.0/24");
    assert_eq!(connect(&d, &net, &inside.pid()).status, 200);
}
