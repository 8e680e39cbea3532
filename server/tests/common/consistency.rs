//! The consistency checker of the crash-safety tests (issue 4): asserts, against a live daemon
//! and the kernel, that
//!
//! (a) store and kernel agree: every bridge network's bridge exists in the daemon's namespace,
//!     carries netbridge's mark and holds its gateway addresses; every endpoint in a network's
//!     `Containers` has its interface in its namespace (the container's `SandboxKey`) with the
//!     recorded IP and MAC, paired with a marked host veth on the network's bridge; every link on
//!     a netbridge bridge is the host end of a recorded endpoint of that network; every marked
//!     bridge or veth is claimed by a network or an endpoint; every container's namespace exists;
//! (b) no address is held twice within a network;
//! (d) the firewall's port maps hold exactly the published ports the container list shows,
//!     each pointing at one of its container's addresses;
//! (c) `POST /netbridge/reconcile` repairs nothing (`{"Repairs":[]}`): reconcile is idempotent.
//!
//! Everything is read: the API over the socket, the kernel with `ip -j -d addr show` in the
//! daemon's namespace and (through `nsenter --net=<SandboxKey>`) in each container's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::{Daemon, Value, run};

/// The mark netbridge puts on its links (`ip link` alias).
pub const MARK: &str = "netbridge:";
/// The alias of a link cut off and awaiting deletion.
pub const DOOMED_ALIAS: &str = "netbridge-doomed";

/// What a passing check saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    pub networks: usize,
    pub endpoints: usize,
    pub containers: usize,
}

/// Runs [`check`] and panics with every disagreement found and the tail of the daemon's log.
pub fn assert_consistent(d: &Daemon, context: &str) -> Seen {
    match check(d) {
        Ok(seen) => seen,
        Err(problems) => panic!(
            "{context}: inconsistent state ({} problems):\n  - {}\n--- daemon log (tail) ---\n{}",
            problems.len(),
            problems.join("\n  - "),
            log_tail(d, 80)
        ),
    }
}

/// The last `n` lines of the daemon's log.
pub fn log_tail(d: &Daemon, n: usize) -> String {
    let log = d.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `ip -j -d addr show` in a namespace given by path (`nsenter --net=<path>`).
fn ns_links(path: &str) -> Result<Vec<Value>, String> {
    let net = format!("--net={path}");
    let out = run("nsenter", &[&net, "--", "ip", "-j", "-d", "addr", "show"]);
    if !out.status.success() {
        return Err(format!(
            "cannot read the links of namespace {path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .ok_or_else(|| format!("ip -j addr in {path}: not a JSON array"))
}

/// A macvlan network: its isolated parent (when it has no parent of its own, or is internal),
/// marked and kept in `own_parents` for the claim check; each endpoint a marked, up macvlan in its
/// container's namespace with its recorded MAC and addresses.
fn check_macvlan(
    d: &Daemon,
    n: &Value,
    own_parents: &mut BTreeMap<String, [String; 2]>,
    endpoints: &mut HashMap<String, Recorded>,
    namespaces: &mut HashMap<String, Result<Vec<Value>, String>>,
    p: &mut Vec<String>,
) {
    let id = s(n, "Id").to_string();
    let name = s(n, "Name").to_string();
    let parent = s(&n["Options"], "parent");
    if parent.is_empty() || n["Internal"].as_bool() == Some(true) {
        let own = format!("dm-{}", &id[..12.min(id.len())]);
        let path = format!("/run/netns/{}", d.ns.name);
        let host = namespaces
            .entry(path.clone())
            .or_insert_with(|| ns_links(&path));
        match host
            .as_ref()
            .ok()
            .and_then(|l| l.iter().find(|l| s(l, "ifname") == own))
        {
            None => p.push(format!(
                "macvlan network {name}: isolated parent {own} missing"
            )),
            Some(l) if alias(l) != format!("{MARK}{id}") => p.push(format!(
                "macvlan network {name}: {own} carries alias {:?}",
                alias(l)
            )),
            Some(_) => {}
        }
        // Its own parent is a marked veth whose marked peer (dp-…) sits beside it: both are
        // claimed by the network.
        let peer = format!("dp-{}", &own[3..]);
        own_parents.insert(id.clone(), [own, peer]);
    }
    let members = n["Containers"].as_object().cloned().unwrap_or_default();
    for (cid, e) in &members {
        let eid = s(e, "EndpointID");
        endpoints.insert(
            eid.to_string(),
            Recorded {
                network: id.clone(),
                network_name: name.clone(),
                container: cid.clone(),
            },
        );
        let what = format!(
            "macvlan endpoint {} of {} on {name}",
            short(eid),
            s(e, "Name")
        );
        let key = match get_json(d, &format!("/containers/{cid}/json")) {
            Ok(c) => s(&c["NetworkSettings"], "SandboxKey").to_string(),
            Err(err) => {
                p.push(format!("{what}: its container: {err}"));
                continue;
            }
        };
        let links = namespaces
            .entry(key.clone())
            .or_insert_with(|| ns_links(&key));
        let Ok(links) = links else {
            p.push(format!("{what}: cannot read {key}"));
            continue;
        };
        let mark = format!("{MARK}{eid}");
        let Some(inner) = links.iter().find(|l| alias(l) == mark) else {
            p.push(format!("{what}: no interface marked {mark} in {key}"));
            continue;
        };
        if kind(inner) != "macvlan" || !is_up(inner) || s(inner, "address") != s(e, "MacAddress") {
            p.push(format!(
                "{what}: {} is kind {:?}, up {}, MAC {} (want macvlan, up, {})",
                s(inner, "ifname"),
                kind(inner),
                is_up(inner),
                s(inner, "address"),
                s(e, "MacAddress")
            ));
        }
        if let Some(want) = split_cidr(s(e, "IPv4Address"))
            && !addrs(inner).contains(&want)
        {
            p.push(format!(
                "{what}: {} lacks {}/{}",
                s(inner, "ifname"),
                want.0,
                want.1
            ));
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn kind(l: &Value) -> &str {
    l["linkinfo"]["info_kind"].as_str().unwrap_or_default()
}

fn alias(l: &Value) -> &str {
    s(l, "ifalias")
}

fn is_up(l: &Value) -> bool {
    l["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

/// The `(address, prefixlen)` pairs a link holds.
fn addrs(l: &Value) -> BTreeSet<(String, u64)> {
    l["addr_info"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                s(a, "local").to_string(),
                a["prefixlen"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// `"10.0.0.2/24"` → `("10.0.0.2", 24)`; `""` → None.
fn split_cidr(text: &str) -> Option<(String, u64)> {
    let (ip, len) = text.split_once('/')?;
    Some((ip.to_string(), len.parse().ok()?))
}

/// A GET that must answer 200 with JSON.
fn get_json(d: &Daemon, path: &str) -> Result<Value, String> {
    let r = d
        .try_request("GET", path, None, None)
        .map_err(|e| format!("GET {path}: {e}"))?;
    if r.status != 200 {
        return Err(format!("GET {path}: {} {}", r.status, r.body));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("GET {path}: not JSON ({e}): {}", r.body))
}

/// One endpoint as the store shows it.
struct Recorded {
    network: String,
    network_name: String,
    container: String,
}

/// Every check of the module doc; `Err` lists every problem found.
pub fn check(d: &Daemon) -> Result<Seen, Vec<String>> {
    let mut p = Vec::new();
    let seen = check_into(d, &mut p);
    check_published_ports(d, &mut p);
    // (c) idempotence: a reconcile right after must repair nothing.
    match d.try_request("POST", "/netbridge/reconcile", None, None) {
        Err(e) => p.push(format!("POST /netbridge/reconcile: {e}")),
        Ok(r) if r.status != 200 => p.push(format!(
            "POST /netbridge/reconcile: {} {}",
            r.status, r.body
        )),
        Ok(r) => match serde_json::from_str::<Value>(&r.body) {
            Ok(v) if v["Repairs"] == Value::Array(vec![]) => {}
            Ok(v) => p.push(format!(
                "reconcile is not idempotent: a second run repaired {}",
                v["Repairs"]
            )),
            Err(e) => p.push(format!("reconcile answer is not JSON ({e}): {}", r.body)),
        },
    }
    if p.is_empty() { Ok(seen) } else { Err(p) }
}

fn check_into(d: &Daemon, p: &mut Vec<String>) -> Seen {
    let mut seen = Seen::default();
    let list = match get_json(d, "/networks") {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(e) => {
            p.push(e);
            return seen;
        }
    };
    let host_links = match ns_links(&format!("/run/netns/{}", d.ns.name)) {
        Ok(l) => l,
        Err(e) => {
            p.push(e);
            return seen;
        }
    };
    let by_name: HashMap<&str, &Value> = host_links.iter().map(|l| (s(l, "ifname"), l)).collect();
    let by_alias: HashMap<&str, &Value> = host_links
        .iter()
        .filter(|l| alias(l).starts_with(MARK))
        .map(|l| (alias(l), l))
        .collect();

    // Network ID → its bridge's name; endpoint ID → what recorded it.
    let mut bridges: BTreeMap<String, String> = BTreeMap::new();
    // Macvlan network ID → its isolated parent (a marked veth).
    let mut own_parents: BTreeMap<String, [String; 2]> = BTreeMap::new();
    let mut endpoints: HashMap<String, Recorded> = HashMap::new();
    let mut namespaces: HashMap<String, Result<Vec<Value>, String>> = HashMap::new();
    let mut containers: HashMap<String, Value> = HashMap::new();

    for summary in &list {
        let id = s(summary, "Id").to_string();
        let n = match get_json(d, &format!("/networks/{id}")) {
            Ok(n) => n,
            Err(e) => {
                p.push(e);
                continue;
            }
        };
        seen.networks += 1;
        let name = s(&n, "Name").to_string();
        if s(&n, "Driver") == "macvlan" {
            check_macvlan(d, &n, &mut own_parents, &mut endpoints, &mut namespaces, p);
            seen.endpoints += n["Containers"].as_object().map_or(0, |m| m.len());
            continue;
        }
        // An overlay network is a bridge here (plus its VXLAN port), named after its ID.
        let overlay = s(&n, "Driver") == "overlay";
        if s(&n, "Driver") != "bridge" && !overlay {
            continue;
        }
        let bridge = n["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .filter(|b| !b.is_empty() && !overlay)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let prefix = if overlay { "ov" } else { "br" };
                format!("{prefix}-{}", &id[..12.min(id.len())])
            });
        bridges.insert(id.clone(), bridge.clone());

        // The bridge, marked, with its gateways.
        let Some(br) = by_name.get(bridge.as_str()) else {
            p.push(format!("network {name} ({id}): bridge {bridge} missing"));
            continue;
        };
        if kind(br) != "bridge" {
            p.push(format!(
                "network {name}: {bridge} is a {:?}, not a bridge",
                kind(br)
            ));
        }
        if alias(br) != format!("{MARK}{id}") {
            p.push(format!(
                "network {name}: bridge {bridge} carries alias {:?}, not {MARK}{id}",
                alias(br)
            ));
        }
        let held = addrs(br);
        for cfg in n["IPAM"]["Config"].as_array().cloned().unwrap_or_default() {
            let gw = s(&cfg, "Gateway");
            let Some((_, prefix)) = split_cidr(s(&cfg, "Subnet")) else {
                continue;
            };
            if !gw.is_empty() && !held.contains(&(gw.to_string(), prefix)) {
                p.push(format!(
                    "network {name}: bridge {bridge} lacks its gateway {gw}/{prefix} (holds {held:?})"
                ));
            }
        }

        // Its endpoints (an overlay's on other hosts, keyed `ep-…`, are not this daemon's).
        let mut members = n["Containers"].as_object().cloned().unwrap_or_default();
        members.retain(|k, _| !k.starts_with("ep-"));
        let mut v4: HashMap<String, Vec<String>> = HashMap::new();
        let mut v6: HashMap<String, Vec<String>> = HashMap::new();
        let mut endpoint_ids = BTreeSet::new();
        for (cid, e) in &members {
            seen.endpoints += 1;
            let eid = s(e, "EndpointID").to_string();
            let what = format!("endpoint {} of {} on {name}", short(&eid), s(e, "Name"));
            endpoint_ids.insert(eid.clone());
            endpoints.insert(
                eid.clone(),
                Recorded {
                    network: id.clone(),
                    network_name: name.clone(),
                    container: cid.clone(),
                },
            );
            let ipv4 = split_cidr(s(e, "IPv4Address"));
            let ipv6 = split_cidr(s(e, "IPv6Address"));
            if let Some((ip, _)) = &ipv4 {
                v4.entry(ip.clone())
                    .or_default()
                    .push(s(e, "Name").to_string());
            }
            if let Some((ip, _)) = &ipv6 {
                v6.entry(ip.clone())
                    .or_default()
                    .push(s(e, "Name").to_string());
            }
            let mac = s(e, "MacAddress").to_string();

            // The container's view of the same endpoint.
            let c = match containers.get(cid) {
                Some(c) => c.clone(),
                None => match get_json(d, &format!("/containers/{cid}/json")) {
                    Ok(c) => {
                        containers.insert(cid.clone(), c.clone());
                        c
                    }
                    Err(err) => {
                        p.push(format!("{what}: its container: {err}"));
                        continue;
                    }
                },
            };
            let ce = &c["NetworkSettings"]["Networks"][name.as_str()];
            if s(ce, "EndpointID") != eid {
                p.push(format!(
                    "{what}: container inspect shows endpoint {:?} on {name}",
                    s(ce, "EndpointID")
                ));
            }
            if ipv4.as_ref().map(|(ip, _)| ip.as_str()).unwrap_or("") != s(ce, "IPAddress")
                || s(ce, "MacAddress") != mac
            {
                p.push(format!(
                    "{what}: network inspect says {} {mac}, container inspect {} {}",
                    s(e, "IPv4Address"),
                    s(ce, "IPAddress"),
                    s(ce, "MacAddress")
                ));
            }

            // The host end: a marked veth on this network's bridge.
            let host = by_alias.get(format!("{MARK}{eid}").as_str()).copied();
            match host {
                None => p.push(format!("{what}: no host veth marked {MARK}{eid}")),
                Some(h) => {
                    if kind(h) != "veth" || s(h, "master") != bridge || !is_up(h) {
                        p.push(format!(
                            "{what}: host end {} is kind {:?}, master {:?}, up {} (want veth on {bridge}, up)",
                            s(h, "ifname"),
                            kind(h),
                            s(h, "master"),
                            is_up(h)
                        ));
                    }
                }
            }

            // The container end, in the container's namespace.
            let key = s(&c["NetworkSettings"], "SandboxKey").to_string();
            let links = namespaces
                .entry(key.clone())
                .or_insert_with(|| ns_links(&key));
            let links = match links {
                Ok(l) => l,
                Err(err) => {
                    p.push(format!("{what}: {err}"));
                    continue;
                }
            };
            let inner = links.iter().find(|l| s(l, "address") == mac);
            let Some(inner) = inner else {
                p.push(format!(
                    "{what}: no interface with MAC {mac} in {key} (links: {:?})",
                    links.iter().map(|l| s(l, "ifname")).collect::<Vec<_>>()
                ));
                continue;
            };
            let held = addrs(inner);
            for want in [&ipv4, &ipv6].into_iter().flatten() {
                if !held.contains(want) {
                    p.push(format!(
                        "{what}: {} in {key} lacks {}/{} (holds {held:?})",
                        s(inner, "ifname"),
                        want.0,
                        want.1
                    ));
                }
            }
            if kind(inner) != "veth" || !is_up(inner) {
                p.push(format!(
                    "{what}: {} in {key} is kind {:?}, up {}",
                    s(inner, "ifname"),
                    kind(inner),
                    is_up(inner)
                ));
            }
            if let Some(h) = host
                && (inner["link_index"] != h["ifindex"] || h["link_index"] != inner["ifindex"])
            {
                p.push(format!(
                    "{what}: {} in {key} and host {} are not each other's peer",
                    s(inner, "ifname"),
                    s(h, "ifname")
                ));
            }
        }

        // (b) No address held twice; none is the gateway's.
        for (family, seen_ips) in [("IPv4", &v4), ("IPv6", &v6)] {
            for (ip, holders) in seen_ips {
                if holders.len() > 1 {
                    p.push(format!(
                        "network {name}: {family} address {ip} held by {holders:?}"
                    ));
                }
            }
        }
        for cfg in n["IPAM"]["Config"].as_array().cloned().unwrap_or_default() {
            let gw = s(&cfg, "Gateway");
            if !gw.is_empty() && (v4.contains_key(gw) || v6.contains_key(gw)) {
                p.push(format!(
                    "network {name}: an endpoint holds the gateway {gw}"
                ));
            }
        }

        // Every port of the bridge is a recorded endpoint's host end, but for ports cut off by
        // a disconnect (no carrier, awaiting deletion in the doomed group).
        let ports: Vec<&Value> = host_links
            .iter()
            .filter(|l| s(l, "master") == bridge && alias(l) != DOOMED_ALIAS)
            .filter(|l| !(overlay && kind(l) == "vxlan"))
            .collect();
        for port in &ports {
            let owner = alias(port).strip_prefix(MARK).unwrap_or_default();
            if kind(port) != "veth" || !endpoint_ids.contains(owner) {
                p.push(format!(
                    "network {name}: port {} (kind {:?}, alias {:?}) of {bridge} is no endpoint of the network",
                    s(port, "ifname"),
                    kind(port),
                    alias(port)
                ));
            }
        }
        if ports.len() != members.len() {
            p.push(format!(
                "network {name}: {bridge} has {} ports for {} endpoints",
                ports.len(),
                members.len()
            ));
        }
    }

    // Every marked link is claimed: a bridge by its network, a veth by its endpoint.
    for l in &host_links {
        let Some(owner) = alias(l).strip_prefix(MARK) else {
            continue;
        };
        match kind(l) {
            "bridge" if bridges.get(owner).map(String::as_str) != Some(s(l, "ifname")) => {
                p.push(format!(
                    "bridge {} marked {} belongs to no network",
                    s(l, "ifname"),
                    alias(l)
                ));
            }
            "veth"
                if own_parents
                    .get(owner)
                    .is_some_and(|pair| pair.iter().any(|n| n == s(l, "ifname"))) => {}
            "veth" => match endpoints.get(owner) {
                None => p.push(format!(
                    "veth {} marked {} belongs to no endpoint (master {:?})",
                    s(l, "ifname"),
                    alias(l),
                    s(l, "master")
                )),
                Some(r) if bridges.get(&r.network).map(String::as_str) != Some(s(l, "master")) => {
                    p.push(format!(
                        "veth {} of endpoint {} hangs off {:?}, not the bridge of {} (container {})",
                        s(l, "ifname"),
                        short(owner),
                        s(l, "master"),
                        r.network_name,
                        short(&r.container)
                    ))
                }
                Some(_) => {}
            },
            _ => {}
        }
    }

    // Every recorded container (stopped ones too): its namespace exists, and its networks
    // match the networks'.
    match get_json(d, "/containers/json?all=1") {
        Err(e) => p.push(e),
        Ok(list) => {
            for c in list.as_array().cloned().unwrap_or_default() {
                seen.containers += 1;
                let cid = s(&c, "Id").to_string();
                let full = match containers.get(&cid) {
                    Some(full) => full.clone(),
                    None => match get_json(d, &format!("/containers/{cid}/json")) {
                        Ok(full) => full,
                        Err(e) => {
                            p.push(e);
                            continue;
                        }
                    },
                };
                let key = s(&full["NetworkSettings"], "SandboxKey");
                if key.is_empty() || !Path::new(key).exists() {
                    p.push(format!(
                        "container {} ({}): namespace {key:?} does not exist",
                        s(&full, "Name"),
                        short(&cid)
                    ));
                }
                let nets = full["NetworkSettings"]["Networks"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let running = full["State"]["Running"].as_bool().unwrap_or(true);
                for (net, e) in nets {
                    let eid = s(&e, "EndpointID");
                    if !running && eid.is_empty() {
                        // A stopped container's configured network: nothing to hold.
                        continue;
                    }
                    let ok = endpoints
                        .get(eid)
                        .is_some_and(|r| r.container == cid && r.network_name == net);
                    if !ok {
                        p.push(format!(
                            "container {}: endpoint {} on {net} is missing from the network's Containers",
                            s(&full, "Name"),
                            short(eid)
                        ));
                    }
                }
            }
        }
    }
    seen
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The elements of the firewall's four port maps as `(host address, proto, host port)` (the
/// address `0.0.0.0` or `::` for the maps of every address)
/// → `(target address, target port)`; empty when there is no firewall table.
fn port_elements(d: &Daemon) -> BTreeMap<(String, String, u64), (String, u64)> {
    let mut out = BTreeMap::new();
    for map in ["ports_v4", "ports_v6", "ports_addr_v4", "ports_addr_v6"] {
        let listed = run(
            "ip",
            &[
                "netns",
                "exec",
                &d.ns.name,
                "nft",
                "-j",
                "list",
                "map",
                "inet",
                "netbridge",
                map,
            ],
        );
        let Ok(v) = serde_json::from_slice::<Value>(&listed.stdout) else {
            continue;
        };
        let elems = v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["map"]["elem"].as_array())
            .flatten();
        for e in elems {
            let key = e[0]["concat"].as_array().cloned().unwrap_or_default();
            let data = e[1]["concat"].as_array().cloned().unwrap_or_default();
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
            let any = if map == "ports_v4" { "0.0.0.0" } else { "::" };
            let (host, rest) = if key.len() == 3 {
                (text(&key[0]), &key[1..])
            } else {
                (any.to_string(), &key[..])
            };
            if rest.len() != 2 || data.len() != 2 {
                continue;
            }
            out.insert(
                (host, text(&rest[0]), rest[1].as_u64().unwrap_or(0)),
                (text(&data[0]), data[1].as_u64().unwrap_or(0)),
            );
        }
    }
    out
}

/// (d): every map element is a port the container list shows as published, to one of that
/// container's addresses; every published IPv4 port of a running container is in the maps.
fn check_published_ports(d: &Daemon, p: &mut Vec<String>) {
    let list = match get_json(d, "/containers/json?all=1") {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(e) => return p.push(e),
    };
    let mut elements = port_elements(d);
    for c in &list {
        let addresses: BTreeSet<String> = c["NetworkSettings"]["Networks"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .flat_map(|e| [s(e, "IPAddress"), s(e, "GlobalIPv6Address")])
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        for port in c["Ports"].as_array().into_iter().flatten() {
            let Some(public) = port["PublicPort"].as_u64() else {
                continue;
            };
            let ip = s(port, "IP");
            let key = (ip.to_string(), s(port, "Type").to_string(), public);
            match elements.remove(&key) {
                Some((target, target_port))
                    if !addresses.contains(&target)
                        || Some(target_port) != port["PrivatePort"].as_u64() =>
                {
                    p.push(format!(
                        "published port {ip}:{public} of {} leads to {target}:{target_port}, not to its container",
                        s(c, "Id")
                    ));
                }
                Some(_) => {}
                None if !ip.contains(':') && s(c, "State") == "running" => p.push(format!(
                    "published port {ip}:{public}/{} of {} is not in the firewall",
                    s(port, "Type"),
                    s(c, "Id")
                )),
                None => {}
            }
        }
    }
    for (k, v) in elements {
        p.push(format!(
            "firewall publishes {k:?} -> {v:?}, which no container publishes"
        ));
    }
}
