//! Helpers for the attach tests (connect.rs, sandboxes.rs, firewall.rs): sandboxes made through
//! the API and removed on drop, connect/disconnect over raw HTTP, and the kernel state of a
//! namespace read with `ip -j`. Every namespace touched here is one a test made (`nbt-…`) or the
//! daemon's own throwaway namespace; the machine's namespace is never used.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::common::{Daemon, Netns, Response, Value, eventually, json, must, rand_hex, run};

/// `/run/netns/<name>` exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Whether `ip netns list` shows `name`.
pub fn netns_listed(name: &str) -> bool {
    must("ip", &["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// An HTTP request that never panics (for Drop): the status, or None if the daemon is gone.
pub fn try_status(d: &Daemon, method: &str, path: &str) -> Option<u16> {
    let mut s = UnixStream::connect(&d.socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// A sandbox made with `POST /containers/create?name=nbt-<random>`; removed on drop with
/// `DELETE /containers/<name>?force=1` (and, should the daemon be unable to, `ip netns del` of
/// that same `nbt-` name).
pub struct Sandbox<'a> {
    d: &'a Daemon,
    pub name: String,
    pub id: String,
}

impl<'a> Sandbox<'a> {
    pub fn create(d: &'a Daemon) -> Sandbox<'a> {
        let name = format!("nbt-{}", rand_hex(8));
        let r = d.post(&format!("/containers/create?name={name}"), &json!({}));
        // The guard exists before any assertion, so a half-made sandbox is still removed.
        let mut sb = Sandbox {
            d,
            name,
            id: String::new(),
        };
        assert_eq!(r.status, 201, "create sandbox {}: {}", sb.name, r.body);
        let v = r.json();
        sb.id = v["Id"].as_str().expect("Id").to_string();
        assert!(is_hex64(&sb.id), "Id is 64 hex: {}", r.body);
        assert_eq!(v["Warnings"], json!([]), "Warnings: {}", r.body);
        sb
    }

    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        let status = try_status(
            self.d,
            "DELETE",
            &format!("/containers/{}?force=1", self.name),
        );
        if !matches!(status, Some(204) | Some(404))
            && self.name.starts_with("nbt-")
            && netns_exists(&self.name)
        {
            let _ = run("ip", &["netns", "del", &self.name]);
        }
    }
}

/// A process started inside a namespace (`ip netns exec <ns> sleep 30`), killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn sleep_in(ns: &Netns) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sleep", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let p = Proc(child);
        // `ip netns exec` execs in place: wait until that PID is inside the namespace.
        let want = ns_inode(&format!("/run/netns/{}", ns.name));
        let link = format!("/proc/{}/ns/net", p.pid());
        assert!(
            eventually(10, || std::fs::read_link(&link)
                .map(|t| t.to_string_lossy() == format!("net:[{want}]"))
                .unwrap_or(false)),
            "process {} never entered {}",
            p.pid(),
            ns.name
        );
        p
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("namespace file").ino()
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The kernel bridge Docker names after a network ID.
pub fn br(id: &str) -> String {
    format!("br-{}", &id[..12])
}

// ---- the API ----

/// `POST /networks/create` with a name, one IPv4 subnet and driver options; returns the ID.
pub fn create_net(d: &Daemon, name: &str, subnet: &str, options: Value) -> String {
    d.create_network(&json!({
        "Name": name,
        "IPAM": {"Config": [{"Subnet": subnet}]},
        "Options": options,
    }))
}

pub fn connect(d: &Daemon, net: &str, body: Value) -> Response {
    d.post(&format!("/networks/{net}/connect"), &body)
}

/// Connects `container` with no endpoint settings; must answer 200 with an empty body.
pub fn connect_ok(d: &Daemon, net: &str, container: &str) {
    let r = connect(d, net, json!({"Container": container}));
    assert_eq!(r.status, 200, "connect {container} to {net}: {}", r.body);
    assert_eq!(r.body, "", "connect answers an empty body");
}

/// Connects with a static IPv4 address; must succeed.
pub fn connect_ip_ok(d: &Daemon, net: &str, container: &str, ip: &str) {
    let r = connect(
        d,
        net,
        json!({"Container": container, "EndpointConfig": {"IPAMConfig": {"IPv4Address": ip}}}),
    );
    assert_eq!(
        r.status, 200,
        "connect {container} to {net} at {ip}: {}",
        r.body
    );
}

pub fn disconnect(d: &Daemon, net: &str, container: &str, force: bool) -> Response {
    d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": container, "Force": force}),
    )
}

pub fn disconnect_ok(d: &Daemon, net: &str, container: &str) {
    let r = disconnect(d, net, container, false);
    assert_eq!(
        r.status, 200,
        "disconnect {container} from {net}: {}",
        r.body
    );
}

/// `GET /networks/{net}`, which must succeed.
pub fn inspect_net(d: &Daemon, net: &str) -> Value {
    let r = d.get(&format!("/networks/{net}"));
    assert_eq!(r.status, 200, "inspect {net}: {}", r.body);
    r.json()
}

/// The network's `Containers` map.
pub fn containers_of(d: &Daemon, net: &str) -> serde_json::Map<String, Value> {
    inspect_net(d, net)["Containers"]
        .as_object()
        .unwrap_or_else(|| panic!("Containers is not an object in {net}"))
        .clone()
}

/// The `Containers` entry whose `Name` is `name`, with its key (the container ID).
pub fn entry_named(d: &Daemon, net: &str, name: &str) -> Option<(String, Value)> {
    containers_of(d, net)
        .into_iter()
        .find(|(_, v)| v["Name"] == name)
}

/// The names `GET /containers/json` lists (without the leading `/`).
pub fn listed_containers(d: &Daemon) -> Vec<String> {
    let r = d.get("/containers/json");
    assert_eq!(r.status, 200, "GET /containers/json: {}", r.body);
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", r.body))
        .iter()
        .flat_map(|c| c["Names"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(|s| s.trim_start_matches('/').to_string()))
        .collect()
}

// ---- the kernel, read with `ip -j` ----

fn ip_json(args: &[&str]) -> Option<Value> {
    let out = run("ip", args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// One link of a namespace (`ip -j -n <ns> link show dev <dev>`), None if absent.
pub fn link(ns: &str, dev: &str) -> Option<Value> {
    ip_json(&["-j", "-n", ns, "link", "show", "dev", dev])?
        .as_array()?
        .first()
        .cloned()
}

/// Every link of a namespace.
pub fn links(ns: &str) -> Vec<Value> {
    ip_json(&["-j", "-n", ns, "link", "show"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The ports of a bridge in the daemon's namespace (`ip link show master <br>`), but for
/// those a disconnect cut off: disabled, without carrier, awaiting deletion by the reaper.
pub fn ports(d: &Daemon, bridge: &str) -> Vec<Value> {
    ip_json(&["-j", "-n", &d.ns.name, "link", "show", "master", bridge])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l["ifalias"] != "netbridge-doomed")
        .collect()
}

pub fn port_names(d: &Daemon, bridge: &str) -> Vec<String> {
    ports(d, bridge)
        .iter()
        .map(|l| l["ifname"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `address/prefixlen` of each IPv4 address on a device.
pub fn ipv4_of(ns: &str, dev: &str) -> Vec<String> {
    ip_json(&["-j", "-n", ns, "-4", "addr", "show", "dev", dev])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect()
}

/// The IPv4 default routes of a namespace: `(gateway, device)`.
pub fn default_routes(ns: &str) -> Vec<(String, String)> {
    ip_json(&["-j", "-n", ns, "-4", "route", "show", "default"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["gateway"].as_str().unwrap_or_default().to_string(),
                r["dev"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn flags(l: &Value) -> Vec<String> {
    l["flags"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

pub fn mac(l: &Value) -> String {
    l["address"].as_str().unwrap_or_default().to_string()
}

/// `ping -c1 -W2` from inside a namespace the test made.
pub fn ping(ns: &str, ip: &str) -> bool {
    run("ip", &["netns", "exec", ns, "ping", "-c1", "-W2", ip])
        .status
        .success()
}
