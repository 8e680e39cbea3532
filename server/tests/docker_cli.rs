//! The issue's walkthrough with the stock docker CLI pointed at netbridge's socket: the CLI
//! negotiates over `/_ping`, then speaks `/v1.NN/…`; every answer must be one it understands.

mod common;

use std::collections::BTreeSet;

use common::{Daemon, Value, inet, is_id};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `docker …` that must fail with exit status 1 and print `Error response from daemon: <msg>`.
fn docker_fails(d: &Daemon, args: &[&str], message: &str) {
    let out = d.docker(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "docker {args:?} should fail: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let expected = format!("Error response from daemon: {message}");
    assert!(
        stderr(&out).contains(&expected),
        "docker {args:?}: stderr {:?} lacks {expected:?}",
        stderr(&out)
    );
}

/// A 404 for network `name`: current CLIs print the daemon's message, CLIs up to 20.10 their own
/// "No such network" text for it.
fn docker_not_found(d: &Daemon, args: &[&str], name: &str) {
    let out = d.docker(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "docker {args:?}: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Error response from daemon: network {name} not found"
        )) || err.contains(&format!("Error: No such network: {name}")),
        "docker {args:?}: {err:?}"
    );
}

/// `docker network ls` as sorted `name driver scope` lines.
fn ls(d: &Daemon, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ];
    args.extend_from_slice(extra);
    let mut lines: Vec<String> = d.docker_ok(&args).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn docker_version_shows_the_netbridge_server() {
    let d = Daemon::start();
    let out = d.docker_ok(&["version"]);
    let server = out
        .split("Server:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Server section:\n{out}"));
    assert!(server.starts_with(" netbridge\n"), "{out}");
    assert!(server.contains(" Engine:"), "{out}");
    let api_line = server
        .lines()
        .find(|l| l.trim_start().starts_with("API version:"))
        .unwrap_or_else(|| panic!("no server API version:\n{out}"));
    assert!(
        api_line.trim_end().ends_with("1.55 (minimum version 1.40)"),
        "{api_line}"
    );
    let os_line = server
        .lines()
        .find(|l| l.trim_start().starts_with("OS/Arch:"))
        .unwrap_or_else(|| panic!("no OS/Arch:\n{out}"));
    assert!(os_line.contains("linux/"), "{os_line}");
    assert!(
        server
            .lines()
            .any(|l| l.split_whitespace().eq(["Experimental:", "false"])),
        "{out}"
    );

    let fmt = |f: &str| d.docker_ok(&["version", "--format", f]).trim().to_string();
    assert_eq!(fmt("{{.Server.APIVersion}}"), "1.55");
    assert_eq!(fmt("{{.Server.MinAPIVersion}}"), "1.40");
    assert_eq!(fmt("{{.Server.Platform.Name}}"), "netbridge");
    assert_eq!(fmt("{{.Server.Os}}"), "linux");
    assert_eq!(fmt("{{(index .Server.Components 0).Name}}"), "Engine");
}

#[test]
fn docker_network_walkthrough() {
    let d = Daemon::start();

    // The predefined networks, in the default table and as fields.
    let table = d.docker_ok(&["network", "ls"]);
    let header = table.lines().next().unwrap_or_default();
    for col in ["NETWORK ID", "NAME", "DRIVER", "SCOPE"] {
        assert!(header.contains(col), "{table}");
    }
    assert_eq!(table.lines().count(), 4, "{table}");
    assert_eq!(
        ls(&d, &[]),
        vec!["bridge bridge local", "host host local", "none null local"]
    );

    // Create with subnet, gateway and label: the CLI prints the full ID.
    let out = d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "172.30.0.0/24",
        "--gateway",
        "172.30.0.254",
        "--label",
        "team=a",
        "mynet",
    ]);
    let mynet = out.trim().to_string();
    assert!(is_id(&mynet), "create printed {out:?}");
    let bridge = format!("br-{}", &mynet[..12]);
    assert!(d.has_link(&bridge));
    assert_eq!(inet(&d, &bridge), vec!["172.30.0.254/24".to_string()]);

    let auto1 = d
        .docker_ok(&["network", "create", "auto1"])
        .trim()
        .to_string();
    assert!(is_id(&auto1));
    assert_eq!(
        inet(&d, &format!("br-{}", &auto1[..12])),
        vec!["172.18.0.1/16".to_string()]
    );

    // Inspect: a JSON array with the network's fields.
    let out = d.docker_ok(&["network", "inspect", "mynet"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let items = v.as_array().expect("inspect prints an array");
    assert_eq!(items.len(), 1);
    let n = &items[0];
    assert_eq!(n["Name"], "mynet");
    assert_eq!(n["Id"], mynet.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["EnableIPv6"], false);
    assert_eq!(
        n["IPAM"]["Config"],
        serde_json::json!([{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.254"}])
    );
    assert_eq!(n["Labels"], serde_json::json!({"team": "a"}));
    assert_eq!(n["Containers"], serde_json::json!({}));
    let fmt = d.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "auto1",
        &mynet[..12],
    ]);
    assert_eq!(fmt, "auto1 172.18.0.0/16\nmynet 172.30.0.0/24\n");

    // Filters from flags: only mynet has the label and the bridge driver.
    assert_eq!(
        ls(
            &d,
            &["--filter", "label=team=a", "--filter", "driver=bridge"]
        ),
        vec!["mynet bridge local"]
    );
    let quiet = d.docker_ok(&["network", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(quiet.trim(), &mynet[..12]);
    assert_eq!(
        ls(&d, &["--filter", "type=custom"]),
        vec!["auto1 bridge local", "mynet bridge local"]
    );
    assert_eq!(
        ls(&d, &["--filter", "name=auto"]),
        vec!["auto1 bridge local"]
    );

    // rm prints each argument and removes the bridges.
    let out = d.docker_ok(&["network", "rm", "mynet", "auto1"]);
    assert_eq!(out, "mynet\nauto1\n");
    assert!(!d.has_link(&bridge));
    assert!(!d.has_link(&format!("br-{}", &auto1[..12])));
    assert_eq!(
        ls(&d, &[]),
        vec!["bridge bridge local", "host host local", "none null local"]
    );

    // prune -f lists what it deleted; then there is nothing to delete.
    for name in ["p1", "p2"] {
        d.docker_ok(&["network", "create", name]);
    }
    d.docker_ok(&["network", "create", "--label", "keep", "p3"]);
    let out = d.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Deleted Networks:"), "{out}");
    let deleted: BTreeSet<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(deleted, BTreeSet::from(["p1", "p2"]), "{out}");
    let out = d.docker_ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\np3\n\n");
    assert_eq!(d.docker_ok(&["network", "prune", "-f"]), "");
    assert_eq!(ls(&d, &[]).len(), 3);

    // rm -f of something absent succeeds quietly.
    let out = d.docker(&["network", "rm", "-f", "missing"]);
    assert!(out.status.success(), "rm -f missing: {}", stderr(&out));
}

#[test]
fn docker_network_create_options_reach_the_kernel() {
    let d = Daemon::start();
    let id = d
        .docker_ok(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "10.44.0.0/24",
            "--ip-range",
            "10.44.0.128/25",
            "--aux-address",
            "router=10.44.0.2",
            "--subnet",
            "fd00:44::/64",
            "-o",
            "com.docker.network.bridge.name=nbcli0",
            "-o",
            "com.docker.network.driver.mtu=1450",
            "--internal",
            "--attachable",
            "opts",
        ])
        .trim()
        .to_string();
    assert!(is_id(&id));
    assert!(d.has_link("nbcli0"));
    assert_eq!(inet(&d, "nbcli0"), vec!["10.44.0.128/24".to_string()]);
    let v6 = d.ip(&["-6", "addr", "show", "dev", "nbcli0"]);
    assert!(v6.contains("fd00:44::1/64"), "{v6}");
    assert!(
        d.ip(&["link", "show", "dev", "nbcli0"])
            .contains("mtu 1450")
    );

    let out = d.docker_ok(&["network", "inspect", "opts"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let n = &v[0];
    assert_eq!(n["EnableIPv6"], true);
    assert_eq!(n["Internal"], true);
    assert_eq!(n["Attachable"], true);
    assert_eq!(
        n["Options"],
        serde_json::json!({"com.docker.network.bridge.name": "nbcli0", "com.docker.network.driver.mtu": "1450"})
    );
    assert_eq!(
        n["IPAM"]["Config"],
        serde_json::json!([
            {"Subnet": "10.44.0.0/24", "IPRange": "10.44.0.128/25", "Gateway": "10.44.0.128",
             "AuxiliaryAddresses": {"router": "10.44.0.2"}},
            {"Subnet": "fd00:44::/64", "Gateway": "fd00:44::1"}
        ])
    );
    d.docker_ok(&["network", "rm", "opts"]);
    assert!(!d.has_link("nbcli0"));
}

#[test]
fn docker_cli_prints_daemon_errors() {
    let d = Daemon::start();
    d.docker_ok(&["network", "create", "dup"]);

    docker_fails(
        &d,
        &["network", "create", "dup"],
        "network with name dup already exists",
    );
    docker_fails(
        &d,
        &["network", "rm", "bridge"],
        "bridge is a pre-defined network and cannot be removed",
    );
    docker_fails(
        &d,
        &["network", "rm", "none"],
        "none is a pre-defined network and cannot be removed",
    );
    docker_not_found(&d, &["network", "rm", "missing"], "missing");
    docker_not_found(&d, &["network", "inspect", "missing"], "missing");
    docker_fails(
        &d,
        &["network", "create", "bridge"],
        "operation is not permitted on predefined bridge network",
    );
    docker_fails(
        &d,
        &["network", "create", "--driver", "foo", "x"],
        "plugin \"foo\" not found",
    );
    docker_fails(
        &d,
        &["network", "create", "--subnet", "172.30.1.5/24", "x"],
        "invalid network config:\ninvalid subnet 172.30.1.5/24: it should be 172.30.1.0/24",
    );
    docker_fails(
        &d,
        &["network", "create", "--subnet", "172.17.1.0/24", "x"],
        "invalid pool request: Pool overlaps with other one on this address space",
    );
    docker_fails(
        &d,
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.driver.mtu=abc",
            "x",
        ],
        "failed to parse com.docker.network.driver.mtu value: abc",
    );
    docker_fails(
        &d,
        &["network", "ls", "--filter", "colour=red"],
        "invalid filter 'colour'",
    );
    docker_fails(
        &d,
        &["network", "prune", "-f", "--filter", "driver=bridge"],
        "invalid filter 'driver'",
    );

    // None of the failures left a network or a bridge behind.
    assert_eq!(
        ls(&d, &[]),
        vec![
            "bridge bridge local",
            "dup bridge local",
            "host host local",
            "none null local"
        ]
    );
    let links = d.ip(&["-o", "link", "show"]);
    assert_eq!(
        links.lines().filter(|l| l.contains(": br-")).count(),
        1,
        "{links}"
    );
}

/// The macvlan commands with the stock CLI: create on a parent (a veth in the daemon's
/// namespace whose peer, in a second throwaway namespace, holds the gateway), connect, inspect
/// as Docker prints it, the refusals, disconnect and remove.
#[test]
fn docker_macvlan_commands() {
    let d = Daemon::start();
    let outside = common::Netns::new("nbt");
    d.ip(&[
        "link",
        "add",
        "mvp0",
        "type",
        "veth",
        "peer",
        "name",
        "out0",
        "netns",
        &outside.name,
    ]);
    d.ip(&["link", "set", "mvp0", "up"]);
    outside.ip(&["addr", "add", "10.66.0.1/24", "dev", "out0"]);
    outside.ip(&["link", "set", "out0", "up"]);

    let id = d
        .docker_ok(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.66.0.0/24",
            "--gateway",
            "10.66.0.1",
            "-o",
            "parent=mvp0",
            "-o",
            "macvlan_mode=bridge",
            "mv",
        ])
        .trim()
        .to_string();
    assert!(is_id(&id), "docker network create prints the ID: {id:?}");
    assert!(ls(&d, &[]).contains(&"mv macvlan local".to_string()));
    let c = common::Netns::new("nbt");
    d.docker_ok(&["network", "connect", "--ip", "10.66.0.9", "mv", &c.name]);
    assert!(
        c.exec(&["ping", "-c1", "-W2", "10.66.0.1"])
            .status
            .success(),
        "the container reaches the outside gateway"
    );
    let shown = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{json .Options}} {{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "mv",
    ]);
    assert_eq!(
        shown.trim(),
        format!(
            r#"macvlan {{"macvlan_mode":"bridge","parent":"mvp0"}} {} 10.66.0.9/24"#,
            c.name
        )
    );
    docker_fails(
        &d,
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=nosuch0",
            "x",
        ],
        "-o parent interface was not found on the host: nosuch0",
    );
    docker_fails(
        &d,
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=mvp0.10",
            "x",
        ],
        "-o parent=mvp0.10 needs a VLAN sub-interface",
    );
    docker_fails(
        &d,
        &[
            "network",
            "create",
            "-d",
            "ipvlan",
            "-o",
            "parent=mvp0",
            "x",
        ],
        "the ipvlan driver needs the kernel's IP-VLAN",
    );
    d.docker_ok(&["network", "disconnect", "mv", &c.name]);
    d.docker_ok(&["network", "rm", "mv"]);
    assert!(
        d.has_link("mvp0"),
        "the parent is not netbridge's to remove"
    );
}
