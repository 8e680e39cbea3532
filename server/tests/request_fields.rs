//! Nothing accepted and then dropped: every field of every request body (and every query
//! parameter of a state-changing route) in `openapi/netbridge.json` is either honoured, and
//! checked here or by a named test, or refused and written down in `openapi/DIFFERENCES.md`.
//! Then the endpoint options end to end: link-local addresses on the container's interface,
//! per-interface sysctls inside its namespace, links and driver options echoed, the interface
//! name option, all kept across a restart and re-applied by reconcile; and bad values refused
//! with Docker's text, leaving nothing behind.

mod attach;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use attach::*;
use common::{Daemon, Netns, Value, json};

// ---------------------------------------------------------------------------------------------
// The classification
// ---------------------------------------------------------------------------------------------

/// How a request field is known not to be dropped.
#[derive(Debug)]
enum How {
    /// The value sent in this file's full request comes back unchanged at this JSON pointer of
    /// the inspect (`GET /networks/{id}` for create, the container's
    /// `NetworkSettings.Networks.<net>` for connect).
    Echo(&'static str),
    /// Echoed at the pointer and also acted on in the kernel or in behaviour, checked by the
    /// named test.
    EchoAndTest(&'static str, &'static str),
    /// Acted on (it names what to act on, or changes behaviour), checked by the named test.
    Test(&'static str),
    /// Accepted and ignored because Docker ignores it too; listed in the `request-fields`
    /// block of DIFFERENCES.md.
    IgnoredAsDocker,
}

use How::*;

/// Every request field of the document. A field added to the document without a line here
/// fails `every_request_field_of_the_document_is_classified`.
const FIELDS: &[(&str, How)] = &[
    // POST /networks/create
    ("POST /networks/create body Name", Echo("/Name")),
    ("POST /networks/create body Driver", Echo("/Driver")),
    ("POST /networks/create body Scope", Echo("/Scope")),
    ("POST /networks/create body Internal", Echo("/Internal")),
    ("POST /networks/create body Attachable", Echo("/Attachable")),
    ("POST /networks/create body Ingress", Echo("/Ingress")),
    ("POST /networks/create body ConfigOnly", Echo("/ConfigOnly")),
    (
        "POST /networks/create body ConfigFrom.Network",
        Echo("/ConfigFrom/Network"),
    ),
    (
        "POST /networks/create body IPAM.Driver",
        Echo("/IPAM/Driver"),
    ),
    (
        "POST /networks/create body IPAM.Config[].Subnet",
        Echo("/IPAM/Config/0/Subnet"),
    ),
    (
        "POST /networks/create body IPAM.Config[].IPRange",
        Echo("/IPAM/Config/0/IPRange"),
    ),
    (
        "POST /networks/create body IPAM.Config[].Gateway",
        Echo("/IPAM/Config/0/Gateway"),
    ),
    (
        "POST /networks/create body IPAM.Config[].AuxiliaryAddresses",
        Echo("/IPAM/Config/0/AuxiliaryAddresses"),
    ),
    (
        "POST /networks/create body IPAM.Options",
        Echo("/IPAM/Options"),
    ),
    ("POST /networks/create body EnableIPv4", Echo("/EnableIPv4")),
    ("POST /networks/create body EnableIPv6", Echo("/EnableIPv6")),
    (
        "POST /networks/create body Options",
        EchoAndTest("/Options", "create_honours_bridge_name_and_mtu_options"),
    ),
    ("POST /networks/create body Labels", Echo("/Labels")),
    ("POST /networks/create body CheckDuplicate", IgnoredAsDocker),
    // POST /networks/{id}/connect
    (
        "POST /networks/{id}/connect body Container",
        Test("experiment_with_the_docker_cli"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.IPAMConfig.IPv4Address",
        EchoAndTest("/IPAMConfig/IPv4Address", "static_ip_rules"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.IPAMConfig.IPv6Address",
        Echo("/IPAMConfig/IPv6Address"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.IPAMConfig.LinkLocalIPs",
        EchoAndTest(
            "/IPAMConfig/LinkLocalIPs",
            "endpoint_options_reach_the_kernel_survive_a_restart_and_come_back_with_reconcile",
        ),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.Links",
        Echo("/Links"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.MacAddress",
        EchoAndTest("/MacAddress", "mtu_option_and_requested_mac"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.Aliases",
        Echo("/Aliases"),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.DriverOpts",
        EchoAndTest(
            "/DriverOpts",
            "endpoint_options_reach_the_kernel_survive_a_restart_and_come_back_with_reconcile",
        ),
    ),
    (
        "POST /networks/{id}/connect body EndpointConfig.GwPriority",
        EchoAndTest("/GwPriority", "default_route_follows_dockers_rule"),
    ),
    // POST /networks/{id}/disconnect
    (
        "POST /networks/{id}/disconnect body Container",
        Test("connected_twice_remove_prune_and_not_connected"),
    ),
    (
        "POST /networks/{id}/disconnect body Force",
        Test("restart_keeps_attachments_and_vanished_namespace_can_be_forced_out"),
    ),
    // Query parameters of the routes that change state.
    (
        "POST /containers/create query name",
        Test("experiment_with_raw_http_and_sandboxes"),
    ),
    (
        "DELETE /containers/{id} query force",
        Test("docker_inspect_and_rm_on_a_sandbox"),
    ),
    (
        "POST /networks/prune query filters",
        Test("prune_with_filters_removes_matching_networks_and_their_bridges"),
    ),
    // POST /containers/create with Docker's body, and the lifecycle routes (lifecycle.rs).
    (
        "POST /containers/create body Image",
        Test("the_article_verbatim_with_the_docker_cli"),
    ),
    (
        "POST /containers/create body Cmd",
        Test("the_article_verbatim_with_the_docker_cli"),
    ),
    (
        "POST /containers/create body Entrypoint",
        Test("network_modes_and_endpoints_config"),
    ),
    (
        "POST /containers/create body Hostname",
        Test("dns_and_hosts_are_where_ip_netns_exec_reads_them"),
    ),
    (
        "POST /containers/create body MacAddress",
        Test("network_modes_and_endpoints_config"),
    ),
    (
        "POST /containers/create body HostConfig.NetworkMode",
        Test("network_modes_and_endpoints_config"),
    ),
    (
        "POST /containers/create body ExposedPorts",
        Test("conflicts_are_refused_and_change_nothing"),
    ),
    (
        "POST /containers/create body HostConfig.PortBindings",
        Test("a_published_port_answers_from_another_machine_the_host_and_other_containers"),
    ),
    (
        "POST /containers/create body HostConfig.PublishAllPorts",
        Test("conflicts_are_refused_and_change_nothing"),
    ),
    (
        "POST /containers/create body NetworkingConfig.EndpointsConfig",
        Test("network_modes_and_endpoints_config"),
    ),
    (
        "POST /containers/prune query filters",
        Test("docker_errors_and_routes_that_need_processes"),
    ),
    (
        "POST /containers/{id}/wait query condition",
        Test("stop_releases_endpoints_and_start_joins_again"),
    ),
    // netbridge's own diagnose route (dashboard.rs).
    (
        "POST /netbridge/diagnose body Source",
        Test("diagnose_explains_then_probes_from_inside_the_source"),
    ),
    (
        "POST /netbridge/diagnose body Target",
        Test("diagnose_explains_then_probes_from_inside_the_source"),
    ),
    (
        "POST /netbridge/diagnose body Count",
        Test("diagnose_refuses_what_it_cannot_do"),
    ),
    (
        "POST /netbridge/diagnose body TimeoutMs",
        Test("diagnose_refuses_what_it_cannot_do"),
    ),
];

/// Values of honoured fields that netbridge refuses where Docker would act on them, with the
/// status; each is listed in the `request-fields` block of DIFFERENCES.md and checked by
/// `refused_values_are_refused_with_their_status`.
const REFUSED: &[(&str, &str, u16)] = &[
    ("POST /networks/create body Driver", r#""overlay""#, 400),
    ("POST /networks/create body Scope", r#""swarm""#, 400),
    ("POST /networks/create body Ingress", "true", 403),
    ("POST /networks/create body ConfigOnly", "true", 400),
    (
        "POST /networks/create body ConfigFrom.Network",
        r#""base""#,
        400,
    ),
    ("POST /networks/create body IPAM.Driver", r#""dhcp""#, 404),
];

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// Follows `$ref` and the `oneOf: [X, null]` that nullable fields are.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            schema = &doc["components"]["schemas"][name];
        } else if let Some(alts) = schema["oneOf"].as_array() {
            let Some(inner) = alts.iter().find(|a| a["type"] != "null") else {
                return schema;
            };
            schema = inner;
        } else {
            return schema;
        }
    }
}

/// Dotted paths of the leaves under `schema`: objects with properties are walked, arrays of
/// such objects too (as `[]`); maps and scalars are leaves.
fn walk(doc: &Value, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = resolve(doc, schema);
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            walk(doc, sub, &path, out);
        }
        return;
    }
    let items = resolve(doc, &schema["items"]);
    if items["properties"].is_object() {
        walk(doc, items, &format!("{prefix}[]"), out);
        return;
    }
    out.insert(prefix.to_string());
}

/// Every request field of the document, keyed `METHOD PATH body FIELD` or
/// `METHOD PATH query NAME`.
fn document_fields() -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(&read("openapi/netbridge.json")).expect("document");
    let mut all = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let method = method.to_uppercase();
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for media in content.values() {
                    let mut fields = BTreeSet::new();
                    walk(&doc, &media["schema"], "", &mut fields);
                    all.extend(
                        fields
                            .into_iter()
                            .map(|f| format!("{method} {path} body {f}")),
                    );
                }
            }
            if method == "GET" || method == "HEAD" {
                continue;
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" {
                    all.insert(format!(
                        "{method} {path} query {}",
                        p["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    all
}

/// The `KEY: …` lines of DIFFERENCES.md's ```request-fields block.
fn listed_request_fields() -> BTreeMap<String, String> {
    let text = read("openapi/DIFFERENCES.md");
    let mut in_block = false;
    let mut listed = BTreeMap::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```request-fields";
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        let (key, rest) = trimmed
            .split_once(": ")
            .unwrap_or_else(|| panic!("request-fields line without `: `: {trimmed}"));
        listed.insert(key.to_string(), rest.to_string());
    }
    listed
}

/// Whether a test function of that name exists among the integration tests.
fn test_exists(name: &str) -> bool {
    let dir = repo_file("server/tests");
    let needle = format!("fn {name}()");
    std::fs::read_dir(&dir)
        .expect("tests dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&needle)))
}

#[test]
fn every_request_field_of_the_document_is_classified() {
    let in_document = document_fields();
    let classified: BTreeSet<String> = FIELDS.iter().map(|(k, _)| k.to_string()).collect();
    let unclassified: Vec<_> = in_document.difference(&classified).collect();
    assert!(
        unclassified.is_empty(),
        "request fields in openapi/netbridge.json that nobody decided about (honour and add to \
         FIELDS with how it is checked, or refuse with 400 and list in DIFFERENCES.md): \
         {unclassified:#?}"
    );
    let stale: Vec<_> = classified.difference(&in_document).collect();
    assert!(
        stale.is_empty(),
        "FIELDS names fields the document does not have: {stale:#?}"
    );

    let listed = listed_request_fields();
    let mut expected_listed = BTreeSet::new();
    for (field, how) in FIELDS {
        match how {
            Test(name) | EchoAndTest(_, name) => {
                assert!(test_exists(name), "{field}: no test named {name}");
            }
            IgnoredAsDocker => {
                expected_listed.insert(field.to_string());
                let line = listed.get(*field).unwrap_or_else(|| {
                    panic!("{field} is ignored but not listed in DIFFERENCES.md's request-fields")
                });
                assert!(line.starts_with("ignored"), "{field}: {line}");
            }
            Echo(_) => {}
        }
    }
    for (field, value, _) in REFUSED {
        expected_listed.insert(field.to_string());
        let line = listed
            .get(*field)
            .unwrap_or_else(|| panic!("{field} = {value} is refused but not in DIFFERENCES.md"));
        assert!(
            line.starts_with("refused") && line.contains(value),
            "{field}: the listed line names the refused value {value}: {line}"
        );
    }
    let listed_keys: BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(
        listed_keys, expected_listed,
        "DIFFERENCES.md's request-fields block and this test's tables agree"
    );
}

/// The value at a dotted field path (with `[]` meaning the first element) of a request body.
fn sent<'a>(body: &'a Value, field: &str) -> &'a Value {
    field
        .split('.')
        .fold(body, |v, part| match part.strip_suffix("[]") {
            Some(name) => &v[name][0],
            None => &v[part],
        })
}

/// The create and connect bodies with every field set to a value netbridge accepts.
fn full_create(name: &str) -> Value {
    json!({
        "Name": name,
        "Driver": "bridge",
        "Scope": "local",
        "Internal": true,
        "Attachable": true,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": {"Network": ""},
        "IPAM": {
            "Driver": "default",
            "Config": [
                {"Subnet": "172.30.40.0/24", "IPRange": "172.30.40.128/25",
                 "Gateway": "172.30.40.254", "AuxiliaryAddresses": {"printer": "172.30.40.250"}},
                {"Subnet": "fd00:40::/64"}
            ],
            "Options": {"com.example.ipam": "kept"}
        },
        "EnableIPv4": true,
        "EnableIPv6": true,
        "Options": {"com.example.note": "kept"},
        "Labels": {"team": "a"},
        "CheckDuplicate": true
    })
}

fn full_connect(container: &str) -> Value {
    json!({
        "Container": container,
        "EndpointConfig": {
            "IPAMConfig": {
                "IPv4Address": "172.30.40.130",
                "IPv6Address": "fd00:40::130",
                "LinkLocalIPs": ["169.254.40.1", "fe80::40:1"]
            },
            "Links": ["web", "db:database"],
            "MacAddress": "02:42:ac:1e:28:82",
            "Aliases": ["alpha", "beta"],
            "DriverOpts": {
                "com.example.endpoint": "kept",
                "com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.arp_ignore=1"
            },
            "GwPriority": 7
        }
    })
}

#[test]
fn every_echoed_field_comes_back_in_inspect() {
    let d = Daemon::start();
    let ns = Netns::new("nbt");
    let create = full_create("fullnet");
    let r = d.post("/networks/create", &create);
    assert_eq!(r.status, 201, "full create: {}", r.body);
    let network = inspect_net(&d, "fullnet");
    let connect_body = full_connect(&ns.name);
    let r = connect(&d, "fullnet", connect_body.clone());
    assert_eq!(r.status, 200, "full connect: {}", r.body);
    let r = d.get(&format!("/containers/{}/json", ns.name));
    assert_eq!(r.status, 200, "{}", r.body);
    let settings = r.json()["NetworkSettings"]["Networks"]["fullnet"].clone();

    let mut checked = 0;
    for (field, how) in FIELDS {
        let (Echo(pointer) | EchoAndTest(pointer, _)) = how else {
            continue;
        };
        let (body, answer, field_path) =
            if let Some(f) = field.strip_prefix("POST /networks/create body ") {
                (&create, &network, f)
            } else if let Some(f) = field.strip_prefix("POST /networks/{id}/connect body ") {
                let f = f.trim_start_matches("EndpointConfig.");
                (&connect_body["EndpointConfig"], &settings, f)
            } else {
                panic!("{field}: Echo is only defined for the create and connect bodies");
            };
        let want = sent(body, field_path);
        assert!(!want.is_null(), "{field}: the full request sets it");
        assert_eq!(
            answer.pointer(pointer),
            Some(want),
            "{field} is echoed at {pointer}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "{checked} fields echoed");
}

#[test]
fn refused_values_are_refused_with_their_status() {
    let d = Daemon::start();
    for (i, (field, value, status)) in REFUSED.iter().enumerate() {
        let name = format!("refused{i}");
        let mut body = json!({"Name": name, "IPAM": {"Config": [{"Subnet": "172.30.41.0/24"}]}});
        let path = field
            .strip_prefix("POST /networks/create body ")
            .expect("only create values are refused");
        let value: Value = serde_json::from_str(value).expect("JSON value");
        let mut slot = &mut body;
        for part in path.split('.') {
            slot = &mut slot[part];
        }
        *slot = value;
        let r = d.post("/networks/create", &body);
        assert_eq!(r.status, *status, "{field}: {}", r.body);
        assert!(!r.message().is_empty());
        assert_eq!(
            d.get(&format!("/networks/{name}")).status,
            404,
            "{field}: nothing made"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The endpoint options end to end
// ---------------------------------------------------------------------------------------------

const SYSCTLS: &str = "com.docker.network.endpoint.sysctls";
const IFNAME: &str = "com.docker.network.endpoint.ifname";

/// `address/prefixlen` of every address on a device, both families.
fn addresses_of(ns: &str, dev: &str) -> Vec<String> {
    let out = common::run("ip", &["-j", "-n", ns, "addr", "show", "dev", dev]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect()
}

/// A sysctl as the namespace sees it.
fn sysctl_in(ns: &Netns, path: &str) -> String {
    let out = ns.exec(&["cat", &format!("/proc/sys/{path}")]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn settings_of(d: &Daemon, container: &str, net: &str) -> Value {
    let r = d.get(&format!("/containers/{container}/json"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["NetworkSettings"]["Networks"][net].clone()
}

fn assert_options_in_place(ns: &Netns, when: &str) {
    let addrs = addresses_of(&ns.name, "eth0");
    for want in ["172.30.50.2/24", "169.254.50.5/16", "fe80::50:5/64"] {
        assert!(
            addrs.contains(&want.to_string()),
            "{when}: {want} on eth0: {addrs:?}"
        );
    }
    assert_eq!(
        sysctl_in(ns, "net/ipv4/conf/eth0/arp_ignore"),
        "1",
        "{when}"
    );
    assert_eq!(
        sysctl_in(ns, "net/ipv4/conf/eth0/log_martians"),
        "1",
        "{when}"
    );
    assert_eq!(
        sysctl_in(ns, "net/ipv6/conf/eth0/hop_limit"),
        "33",
        "{when}"
    );
}

/// Link-local addresses go on the interface with Docker's prefix lengths, the sysctls are
/// written inside the container's namespace for its interface, and links and driver options
/// are echoed; all of it is kept across a restart and re-applied when reconcile re-attaches
/// the endpoint.
#[test]
fn endpoint_options_reach_the_kernel_survive_a_restart_and_come_back_with_reconcile() {
    let mut d = Daemon::start();
    let ns = Netns::new("nbt");
    let id = create_net(&d, "opts", "172.30.50.0/24", json!({}));
    let opts = json!({
        SYSCTLS: "net.ipv4.conf.IFNAME.arp_ignore=1,net.ipv4.conf.ifname.log_martians=1,net.ipv6.conf.IFNAME.hop_limit=33",
        "com.example.endpoint": "kept",
    });
    let r = connect(
        &d,
        "opts",
        json!({"Container": ns.name, "EndpointConfig": {
            "IPAMConfig": {"LinkLocalIPs": ["169.254.50.5", "fe80::50:5", "::ffff:169.254.50.6"]},
            "Links": ["web:db"],
            "DriverOpts": opts,
        }}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_options_in_place(&ns, "after connect");
    assert!(addresses_of(&ns.name, "eth0").contains(&"169.254.50.6/16".to_string()));

    let want = |s: &Value| {
        // IPv4-mapped addresses are echoed unmapped, as Docker normalises them.
        assert_eq!(
            s["IPAMConfig"],
            json!({"LinkLocalIPs": ["169.254.50.5", "fe80::50:5", "169.254.50.6"]})
        );
        assert_eq!(s["Links"], json!(["web:db"]));
        assert_eq!(s["DriverOpts"], opts);
    };
    want(&settings_of(&d, &ns.name, "opts"));
    assert!(
        entry_named(&d, "opts", &ns.name).is_some(),
        "network inspect lists it"
    );

    d.restart();
    want(&settings_of(&d, &ns.name, "opts"));

    // The veth is lost; reconcile re-makes it with the same options.
    let host_end = port_names(&d, &br(&id));
    assert_eq!(host_end.len(), 1);
    d.ip(&["link", "del", &host_end[0]]);
    assert!(link(&ns.name, "eth0").is_none());
    let r = d.post("/netbridge/reconcile", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("re-attached"), "{}", r.body);
    assert_options_in_place(&ns, "after reconcile");
    want(&settings_of(&d, &ns.name, "opts"));
}

/// `com.docker.network.endpoint.ifname` names the interface in the container; a name taken
/// there is refused and leaves nothing behind.
#[test]
fn endpoint_ifname_option_names_the_interface() {
    let d = Daemon::start();
    let ns = Netns::new("nbt");
    let first = create_net(&d, "first", "172.30.51.0/24", json!({}));
    let second = create_net(&d, "second", "172.30.52.0/24", json!({}));
    let r = connect(
        &d,
        "first",
        json!({"Container": ns.name, "EndpointConfig": {"DriverOpts": {IFNAME: "data0"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(link(&ns.name, "data0").is_some(), "data0 in the namespace");
    assert!(link(&ns.name, "eth0").is_none());
    assert_eq!(ipv4_of(&ns.name, "data0"), vec!["172.30.51.2/24"]);
    assert_eq!(
        settings_of(&d, &ns.name, "first")["DriverOpts"][IFNAME],
        "data0"
    );

    let r = connect(
        &d,
        "second",
        json!({"Container": ns.name, "EndpointConfig": {"DriverOpts": {IFNAME: "data0"}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.message(),
        "an interface named data0 already exists in the container"
    );
    assert!(ports(&d, &br(&second)).is_empty(), "no veth left");
    assert!(containers_of(&d, "second").is_empty());
    assert_eq!(ports(&d, &br(&first)).len(), 1);
}

/// Bad endpoint options: Docker's status and text, and nothing changed (no interface in the
/// container, no veth on the bridge, no endpoint, no container record).
#[test]
fn bad_endpoint_options_are_refused_and_change_nothing() {
    let d = Daemon::start();
    let ns = Netns::new("nbt");
    let id = create_net(&d, "bad", "172.30.53.0/24", json!({}));
    let bridge = br(&id);
    let unrecognised = |s: &str| {
        format!(
            "invalid endpoint settings:\nunrecognised network interface sysctl '{s}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
        )
    };
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"IPAMConfig": {"LinkLocalIPs": ["10.1.2.3"]}}),
            "invalid link local IP address: 10.1.2.3".to_string(),
        ),
        (
            json!({"IPAMConfig": {"LinkLocalIPs": ["fd00::1"]}}),
            "invalid link local IP address: fd00::1".to_string(),
        ),
        (
            json!({"IPAMConfig": {"LinkLocalIPs": ["0.0.0.0"]}}),
            "invalid endpoint settings:\ninvalid link-local IP address: 0.0.0.0".to_string(),
        ),
        (
            json!({"IPAMConfig": {"LinkLocalIPs": ["banana"]}}),
            "invalid endpoint settings:\ninvalid link-local IP address: banana".to_string(),
        ),
        (
            json!({"DriverOpts": {SYSCTLS: "net.ipv4.conf.eth0.forwarding=1"}}),
            unrecognised("net.ipv4.conf.eth0.forwarding=1"),
        ),
        (
            json!({"DriverOpts": {SYSCTLS: "net.core.conf.IFNAME.x=1"}}),
            unrecognised("net.core.conf.IFNAME.x=1"),
        ),
        (json!({"DriverOpts": {SYSCTLS: ""}}), unrecognised("")),
        (
            json!({"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.forwarding"}}),
            "expected sysctl 'net.ipv4.conf.IFNAME.forwarding' to have format name=value"
                .to_string(),
        ),
        (
            json!({"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.a.b=1"}}),
            "expected sysctl 'net.ipv4.conf.IFNAME.a.b=1' to have format net.X.Y.IFNAME.Z"
                .to_string(),
        ),
        (
            json!({"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.arp_ignore=1,net.ipv4.conf.IFNAME.no_such_knob=1"}}),
            "/proc/sys/net/ipv4/conf/eth0/no_such_knob is not a sysctl file".to_string(),
        ),
        (
            json!({"DriverOpts": {IFNAME: "bad/name"}}),
            "invalid endpoint settings:\ninvalid interface name: bad/name".to_string(),
        ),
        (
            json!({"Links": ["a:b:c"]}),
            "bad format for links: a:b:c".to_string(),
        ),
        (
            json!({"Links": [""]}),
            "empty string specified for links".to_string(),
        ),
    ];
    for (settings, message) in cases {
        let r = connect(
            &d,
            "bad",
            json!({"Container": ns.name, "EndpointConfig": settings}),
        );
        assert_eq!(r.status, 400, "{settings}: {}", r.body);
        assert_eq!(r.message(), message, "{settings}");
        assert!(
            link(&ns.name, "eth0").is_none(),
            "{settings}: eth0 left behind"
        );
        assert!(
            ports(&d, &bridge).is_empty(),
            "{settings}: a veth left behind"
        );
        assert!(
            containers_of(&d, "bad").is_empty(),
            "{settings}: an endpoint left"
        );
        assert!(
            !listed_containers(&d).contains(&ns.name),
            "{settings}: a container record left"
        );
    }
    // An unwritable value: the kernel's refusal, as a client mistake, rolled back.
    let r = connect(
        &d,
        "bad",
        json!({"Container": ns.name, "EndpointConfig": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.arp_ignore=banana"}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.message()
            .starts_with("unable to write to '/proc/sys/net/ipv4/conf/eth0/arp_ignore': "),
        "{}",
        r.body
    );
    assert!(link(&ns.name, "eth0").is_none());
    assert!(ports(&d, &bridge).is_empty());

    // The same namespace connects cleanly afterwards: its address was never held.
    connect_ok(&d, "bad", &ns.name);
    assert_eq!(ipv4_of(&ns.name, "eth0"), vec!["172.30.53.2/24"]);
}

/// The docker CLI's flags for the same options: `--link-local-ip`, `--link`, `--driver-opt`
/// (which the CLI sends in lower case, hence Docker's `ifname` spelling of the placeholder).
#[test]
fn the_docker_cli_options_reach_the_container() {
    let d = Daemon::start();
    let ns = Netns::new("nbt");
    create_net(&d, "clinet", "172.30.54.0/24", json!({}));
    d.docker_ok(&[
        "network",
        "connect",
        "--link-local-ip",
        "169.254.54.4",
        "--link",
        "web:db",
        "--driver-opt",
        "com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.arp_ignore=2",
        "clinet",
        &ns.name,
    ]);
    assert!(
        addresses_of(&ns.name, "eth0").contains(&"169.254.54.4/16".to_string()),
        "{:?}",
        addresses_of(&ns.name, "eth0")
    );
    assert_eq!(sysctl_in(&ns, "net/ipv4/conf/eth0/arp_ignore"), "2");
    let format = "{{json .NetworkSettings.Networks.clinet}}";
    let shown: Value = serde_json::from_str(
        d.docker_ok(&["inspect", "--format", format, &ns.name])
            .trim(),
    )
    .expect("JSON from docker inspect");
    assert_eq!(shown["IPAMConfig"]["LinkLocalIPs"], json!(["169.254.54.4"]));
    assert_eq!(shown["Links"], json!(["web:db"]));
    assert!(
        shown["DriverOpts"]["com.docker.network.endpoint.sysctls"]
            .as_str()
            .is_some_and(|s| s.ends_with("arp_ignore=2")),
        "{shown}"
    );
}
