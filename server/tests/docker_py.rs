//! The issue's walkthrough through docker-py (`pip install docker`), which negotiates its API
//! version from `GET /version` and uses the legacy `{"k":["v"]}` filter encoding. Each script
//! asserts with Python's `assert` (a failure exits non-zero with a traceback) and prints only
//! what the Rust side checks.

mod common;

use common::{Daemon, inet, is_id};

/// Runs a docker-py script against `d`; it must succeed. Returns its stdout.
fn py(d: &Daemon, body: &str) -> String {
    let script = format!(
        "import os, docker\nc = docker.DockerClient(base_url='unix://' + os.environ['SOCKET'])\n{body}"
    );
    let out = d.python(&script);
    assert!(
        out.status.success(),
        "docker-py script failed (is `pip install docker` done?):\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- daemon log ---\n{}",
        script,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn docker_py_version_ping_and_predefined_networks() {
    let d = Daemon::start();
    let out = py(
        &d,
        r#"
assert c.ping() is True
v = c.version()
assert v["ApiVersion"] == "1.55", v
assert v["MinAPIVersion"] == "1.40", v
assert v["Os"] == "linux", v
assert v["Platform"]["Name"] == "netbridge", v
assert v["Components"][0]["Name"] == "Engine", v
# docker-py negotiated the server's version for its requests
assert c.api.api_version == "1.55", c.api.api_version
nets = c.networks.list()
assert sorted(n.name for n in nets) == ["bridge", "host", "none"], nets
drivers = {n.name: n.attrs["Driver"] for n in nets}
assert drivers == {"bridge": "bridge", "host": "host", "none": "null"}, drivers
b = c.networks.get("bridge")
assert b.attrs["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}], b.attrs
assert b.attrs["Options"]["com.docker.network.bridge.name"] == "nb0", b.attrs
print("ok")
"#,
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn docker_py_network_walkthrough() {
    let d = Daemon::start();

    let out = py(
        &d,
        r#"
ipam = docker.types.IPAMConfig(pool_configs=[
    docker.types.IPAMPool(subnet="172.30.0.0/24", gateway="172.30.0.254")])
n = c.networks.create("mynet", driver="bridge", ipam=ipam, labels={"team": "a"})
assert n.name == "mynet", n.attrs
assert n.attrs["IPAM"]["Config"] == [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.254"}], n.attrs
assert n.attrs["Labels"] == {"team": "a"}, n.attrs
assert n.attrs["Scope"] == "local" and n.attrs["Driver"] == "bridge", n.attrs
assert n.attrs["Containers"] == {}, n.attrs
assert c.networks.get("mynet").id == n.id
assert c.networks.get(n.id[:12]).name == "mynet"

a = c.networks.create("auto1")
assert a.attrs["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}], a.attrs

def names(**kw):
    return sorted(x.name for x in c.networks.list(**kw))

assert names(filters={"label": "team=a"}) == ["mynet"], names(filters={"label": "team=a"})
assert names(filters={"label": ["team=a"], "driver": "bridge"}) == ["mynet"]
assert names(filters={"type": "custom"}) == ["auto1", "mynet"]
assert names(filters={"dangling": True}) == ["auto1", "mynet"]
assert names(names=["auto1"]) == ["auto1"]
assert names(ids=[n.id]) == ["mynet"]

try:
    c.networks.create("mynet")
    raise SystemExit("duplicate create succeeded")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
    assert e.explanation == "network with name mynet already exists", e.explanation

try:
    c.networks.get("missing")
    raise SystemExit("missing network found")
except docker.errors.NotFound as e:
    assert e.status_code == 404, e
    assert e.explanation == "network missing not found", e.explanation

try:
    c.networks.get("bridge").remove()
    raise SystemExit("removed bridge")
except docker.errors.APIError as e:
    assert e.status_code == 403, e
    assert e.explanation == "bridge is a pre-defined network and cannot be removed", e.explanation

print(n.id)
print(a.id)
"#,
    );
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids.len(), 2, "{out}");
    assert!(ids.iter().all(|id| is_id(id)), "{out}");
    let mynet_br = format!("br-{}", &ids[0][..12]);
    let auto_br = format!("br-{}", &ids[1][..12]);
    assert_eq!(inet(&d, &mynet_br), vec!["172.30.0.254/24".to_string()]);
    assert_eq!(inet(&d, &auto_br), vec!["172.18.0.1/16".to_string()]);

    let out = py(
        &d,
        r#"
c.networks.get("mynet").remove()
assert sorted(x.name for x in c.networks.list()) == ["auto1", "bridge", "host", "none"]
assert c.networks.prune(filters={"label": "nothing-has-this"}) == {"NetworksDeleted": None}
c.networks.create("kept", labels={"keep": "1"})
r = c.networks.prune(filters={"label!": "keep"})
assert r == {"NetworksDeleted": ["auto1"]}, r
r = c.networks.prune()
assert r == {"NetworksDeleted": ["kept"]}, r
r = c.networks.prune()
assert r == {"NetworksDeleted": None}, r
assert sorted(x.name for x in c.networks.list()) == ["bridge", "host", "none"]
print("ok")
"#,
    );
    assert_eq!(out, "ok\n");
    assert!(!d.has_link(&mynet_br));
    assert!(!d.has_link(&auto_br));
    assert!(d.has_link("nb0"));
}

#[test]
fn docker_py_pinned_older_api_version() {
    let d = Daemon::start();
    let out = py(
        &d,
        r#"
old = docker.DockerClient(base_url='unix://' + os.environ['SOCKET'], version="1.41")
n = old.networks.create("old", check_duplicate=True)
got = old.api.inspect_network(n.id)
assert got["Name"] == "old", got
assert "Status" not in got, got
assert old.networks.get("old").id == n.id
new = c.api.inspect_network(n.id)
assert new["Status"]["IPAM"]["Subnets"]["172.18.0.0/16"] == {"IPsInUse": 3, "DynamicIPsAvailable": 65533}, new
try:
    docker.DockerClient(base_url='unix://' + os.environ['SOCKET'], version="1.39").networks.list()
    raise SystemExit("1.39 accepted")
except docker.errors.APIError as e:
    assert e.status_code == 400, e
    assert "client version 1.39 is too old" in e.explanation, e.explanation
old.networks.get("old").remove()
print("ok")
"#,
    );
    assert_eq!(out, "ok\n");
}
