//! Published ports (`docker run -p`, `-P`), in the kernel and without a userland proxy. Each
//! is three things: a host port held by a bound socket in the daemon's namespace (so no other
//! process takes it, and one already taken is refused), a `published_port` row (written at
//! start, deleted at stop), and one element of the firewall's DNAT maps pointing at the
//! container's address on its publishing network. The rows are the truth: start-up makes
//! the maps and the held sockets equal to them.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{Daemon, Error, Lookup, Result};
use crate::kernel::{PortRule, Proto, Reservation, reserve_port};
use crate::model::{Container, Endpoint, Lifecycle, Network, PublishedPort};

/// Tries at finding one ephemeral port free for every address a binding needs.
const EPHEMERAL_TRIES: usize = 32;

/// One binding asked for: a container port, published on a host address and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Binding {
    proto: Proto,
    container_port: u16,
    /// `None`: every address, IPv4 (and IPv6 when the publishing network has it).
    host_ip: Option<IpAddr>,
    /// The first and last host port to try; `None`: one the kernel picks.
    host_ports: Option<(u16, u16)>,
}

/// `80/tcp` (protocol `tcp` when left out).
fn port_key(key: &str) -> Result<(u16, Proto)> {
    let bad = || Error::InvalidParameter(format!("invalid port specification: \"{key}\""));
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = Proto::parse(&proto.to_ascii_lowercase()).ok_or_else(bad)?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(bad)?;
    Ok((port, proto))
}

/// `HostPort`: empty (ephemeral), `8080` or `8080-8090`.
fn host_ports(s: &str) -> Result<Option<(u16, u16)>> {
    let bad = || Error::InvalidParameter(format!("invalid hostPort: {s}"));
    if s.is_empty() {
        return Ok(None);
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a = a.parse::<u16>().map_err(|_| bad())?;
    let b = b.parse::<u16>().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    // Port 0 is Docker's "any": an ephemeral one.
    Ok((a != 0).then_some((a, b)))
}

/// `HostConfig.PortBindings`, then every `ExposedPorts` port without a binding when
/// `HostConfig.PublishAllPorts` (`-P`) is set. Refuses what Docker refuses at create.
pub(super) fn bindings(body: &Value) -> Result<Vec<Binding>> {
    let host = body.get("HostConfig");
    let mut out = Vec::new();
    let mut bound = Vec::new();
    if let Some(Value::Object(map)) = host.and_then(|h| h.get("PortBindings")) {
        for (key, list) in map {
            let (container_port, proto) = port_key(key)?;
            bound.push((container_port, proto));
            for b in list.as_array().into_iter().flatten() {
                let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default();
                let host_ip = match text("HostIp").trim_start_matches('[').trim_end_matches(']') {
                    "" => None,
                    ip => Some(ip.parse::<IpAddr>().map_err(|_| {
                        Error::InvalidParameter(format!("invalid IP address: {ip}"))
                    })?),
                };
                out.push(Binding {
                    proto,
                    container_port,
                    host_ip,
                    host_ports: host_ports(text("HostPort"))?,
                });
            }
        }
    }
    let all = host
        .and_then(|h| h.get("PublishAllPorts"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if all && let Some(Value::Object(exposed)) = body.get("ExposedPorts") {
        for key in exposed.keys() {
            let (container_port, proto) = port_key(key)?;
            if !bound.contains(&(container_port, proto)) {
                out.push(Binding {
                    proto,
                    container_port,
                    host_ip: None,
                    host_ports: None,
                });
            }
        }
    }
    Ok(out)
}

/// The ports a container exposes without publishing them (`ExposedPorts`, and PortBindings
/// keys), as `(port, proto)`: inspect and list show them without a host side.
pub(super) fn exposed(body: &Value) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let keys = [
        body.get("ExposedPorts"),
        body.get("HostConfig").and_then(|h| h.get("PortBindings")),
    ];
    for map in keys.into_iter().flatten().filter_map(Value::as_object) {
        for key in map.keys() {
            if let Ok((port, proto)) = port_key(key)
                && !out.contains(&(port, proto.name().to_string()))
            {
                out.push((port, proto.name().to_string()));
            }
        }
    }
    out.sort();
    out
}

/// What the daemon holds for published ports, in memory: the bound sockets, and what the
/// firewall's maps hold per container.
#[derive(Debug, Default)]
pub(super) struct PortTable {
    held: HashMap<(Proto, IpAddr, u16), (String, Reservation)>,
    applied: HashMap<String, Vec<PortRule>>,
}

impl PortTable {
    /// Who of netbridge's containers holds a port that `ip`:`port` would overlap (the same
    /// address, or either is "every address" of the other's family).
    fn holder(&self, proto: Proto, ip: IpAddr, port: u16) -> Option<&str> {
        self.held
            .iter()
            .find_map(|((p, held_ip, held_port), (c, _))| {
                let overlap = *held_ip == ip
                    || (held_ip.is_ipv4() == ip.is_ipv4()
                        && (held_ip.is_unspecified() || ip.is_unspecified()));
                (*p == proto && *held_port == port && overlap).then_some(c.as_str())
            })
    }

    fn release(&mut self, container: &str) {
        self.held.retain(|_, (c, _)| c != container);
    }

    /// Holds `port` (0: an ephemeral one) on every address of `ips` for `container`, or none.
    fn hold_all(
        &mut self,
        container: &str,
        proto: Proto,
        ips: &[IpAddr],
        port: u16,
    ) -> std::result::Result<u16, HoldError> {
        let mut got: Vec<(IpAddr, Reservation)> = Vec::new();
        let mut port = port;
        for ip in ips {
            if port != 0 && self.holder(proto, *ip, port).is_some() {
                return Err(HoldError::Ours(*ip, port));
            }
            let unspecified = ip.is_unspecified();
            let r = reserve_port(proto, (!unspecified).then_some(*ip), ip.is_ipv6(), port)
                .map_err(|e| HoldError::Os(*ip, port, e))?;
            port = r.port;
            got.push((*ip, r));
        }
        for (ip, r) in got {
            self.held
                .insert((proto, ip, port), (container.to_string(), r));
        }
        Ok(port)
    }
}

enum HoldError {
    Ours(IpAddr, u16),
    Os(IpAddr, u16, crate::kernel::KernelError),
}

/// `0.0.0.0:8080`, `[::]:8080`.
fn host_text(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl HoldError {
    /// Docker's words: its own allocation's for a port netbridge holds, the bind's otherwise.
    fn into_error(self, proto: Proto) -> Error {
        match self {
            HoldError::Ours(ip, port) => Error::Conflict(format!(
                "Bind for {} failed: port is already allocated",
                host_text(ip, port)
            )),
            HoldError::Os(ip, port, e) => {
                let why = match e.errno() {
                    Some(libc::EADDRINUSE) => "address already in use".to_string(),
                    Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".to_string(),
                    _ => e.to_string(),
                };
                Error::Conflict(format!(
                    "failed to bind host port {}/{}: {why}",
                    host_text(ip, port),
                    proto.name()
                ))
            }
        }
    }
}

/// The host addresses a binding covers on a network with or without IPv6.
fn addresses(b: &Binding, v6: bool) -> Vec<IpAddr> {
    match b.host_ip {
        Some(ip) => vec![ip],
        None if v6 => vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ],
        None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
    }
}

/// Whether a network's endpoints can publish ports: Docker's bridge driver, not internal.
fn publishes(n: &Network) -> bool {
    n.driver == "bridge" && !n.internal
}

/// The addresses of a container's publishing endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Target {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
}

impl From<&Endpoint> for Target {
    fn from(e: &Endpoint) -> Target {
        Target {
            ipv4: e.ipv4,
            ipv6: e.ipv6,
        }
    }
}

/// The firewall rules for a container's rows, given its publishing endpoint's addresses.
fn rules_of(rows: &[PublishedPort], target: Option<Target>) -> Vec<PortRule> {
    let Some(e) = target else { return Vec::new() };
    let mut out = Vec::new();
    for r in rows {
        let Some(proto) = Proto::parse(&r.proto) else {
            continue;
        };
        let to = if r.host_ip.is_ipv4() { e.ipv4 } else { e.ipv6 };
        let Some(to) = to.filter(|t| t.is_ipv4() == r.host_ip.is_ipv4()) else {
            continue;
        };
        out.push(PortRule {
            proto,
            host_ip: (!r.host_ip.is_unspecified()).then_some(r.host_ip),
            host_port: r.host_port,
            target: to,
            target_port: r.container_port,
        });
    }
    out
}

impl Daemon {
    fn port_table(&self) -> std::sync::MutexGuard<'_, PortTable> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds the host ports a start publishes, before any network is joined, so a conflict
    /// changes nothing. Nothing is published for `host`/`none` containers, or when no planned
    /// network publishes (only internal ones, Docker's rule).
    pub(super) async fn hold_ports(
        &self,
        c: &Container,
        l: &Lifecycle,
    ) -> Result<Vec<PublishedPort>> {
        let wanted = bindings(&l.body)?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut network = None;
        for p in &l.networks {
            if let Ok(n) = self.find_network(&p.network, Lookup::Connect).await
                && publishes(&n)
            {
                network = Some(n);
                break;
            }
        }
        let Some(network) = network else {
            return Ok(Vec::new());
        };
        let v6 = network.enable_ipv6 && network.ipv6().is_some();
        let mut table = self.port_table();
        let mut out = Vec::new();
        for b in &wanted {
            match hold_binding(&mut table, &c.id, b, v6) {
                Ok(rows) => out.extend(rows),
                Err(e) => {
                    table.release(&c.id);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Lets go of the ports [`Daemon::hold_ports`] held, for a start that failed.
    pub(super) fn release_ports(&self, c: &Container) {
        self.port_table().release(&c.id);
    }

    /// Records held ports and puts them in the firewall (after the start joined its networks).
    pub(super) async fn publish_ports(&self, c: &Container, ports: &[PublishedPort]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        self.store.insert_published_ports(ports).await?;
        self.retarget_ports(c).await
    }

    /// Points a container's published ports at its publishing endpoint as it is now (after a
    /// start, connect or disconnect): one transaction of the firewall's.
    pub(super) async fn retarget_ports(&self, c: &Container) -> Result<()> {
        let rows = self.store.published_ports(&c.id).await?;
        let target = self.port_target(c).await?;
        let new = rules_of(&rows, target);
        let old = self
            .port_table()
            .applied
            .get(&c.id)
            .cloned()
            .unwrap_or_default();
        if old == new {
            return Ok(());
        }
        self.firewall_change_ports(old, new.clone()).await?;
        let mut table = self.port_table();
        if new.is_empty() {
            table.applied.remove(&c.id);
        } else {
            table.applied.insert(c.id.clone(), new);
        }
        Ok(())
    }

    /// Undoes a container's publishing: firewall elements, rows, held sockets. The rows go
    /// even when the firewall fails (start-up makes the maps equal to the rows).
    pub(super) async fn unpublish_ports(&self, container_id: &str) -> Result<()> {
        let old = self.port_table().applied.remove(container_id);
        if let Some(old) = old
            && let Err(e) = self.firewall_change_ports(old, Vec::new()).await
        {
            tracing::warn!(container = %container_id, error = %e, "cannot remove published ports");
        }
        self.store.delete_published_ports(container_id).await?;
        self.port_table().release(container_id);
        Ok(())
    }

    /// The endpoint a container's ports lead to: on its network mode's network if that
    /// publishes, else on the first of its networks that does.
    async fn port_target(&self, c: &Container) -> Result<Option<Target>> {
        let mode = self
            .store
            .lifecycle(&c.id)
            .await?
            .map(|l| l.network_mode)
            .unwrap_or_default();
        let mut first = None;
        for e in self.store.endpoints_of_container(&c.id).await? {
            let Some(n) = self.store.network(&e.network_id).await? else {
                continue;
            };
            if !publishes(&n) {
                continue;
            }
            if n.name == mode || n.id == mode {
                return Ok(Some(Target::from(&e)));
            }
            first.get_or_insert(Target::from(&e));
        }
        Ok(first)
    }

    /// At reconcile: the firewall's maps made equal to the rows (of running containers; rows
    /// of others are dropped), and every row's host port held again.
    pub(super) async fn sync_ports(&self, repairs: &mut Vec<String>) -> Result<()> {
        let mut by_container: BTreeMap<String, Vec<PublishedPort>> = BTreeMap::new();
        for p in self.store.all_published_ports().await? {
            by_container
                .entry(p.container_id.clone())
                .or_default()
                .push(p);
        }
        let mut applied = HashMap::new();
        let mut all = Vec::new();
        for (id, rows) in &by_container {
            let running = self
                .store
                .lifecycle(id)
                .await?
                .is_some_and(|l| l.state == crate::model::RunState::Running);
            let container = self.store.container(id).await?;
            let Some(c) = container.filter(|_| running) else {
                self.store.delete_published_ports(id).await?;
                repairs.push(format!("published ports of stopped container {id} removed"));
                continue;
            };
            let rules = rules_of(rows, self.port_target(&c).await?);
            all.extend(rules.iter().copied());
            applied.insert(id.clone(), rules);
        }
        self.firewall_replace_ports(all).await?;
        let mut table = self.port_table();
        table.applied = applied;
        table.held.retain(|_, (c, _)| by_container.contains_key(c));
        for (id, rows) in &by_container {
            for r in rows {
                let Some(proto) = Proto::parse(&r.proto) else {
                    continue;
                };
                if table.held.contains_key(&(proto, r.host_ip, r.host_port)) {
                    continue;
                }
                if let Err(e) = table.hold_all(id, proto, &[r.host_ip], r.host_port) {
                    let e = e.into_error(proto);
                    tracing::warn!(container = %id, error = %e, "a published port is taken by another process");
                }
            }
        }
        Ok(())
    }
}

/// Holds one binding's host port: the given one, the first free one of a range, or an
/// ephemeral one; on every address it covers. Returns its rows.
fn hold_binding(
    table: &mut PortTable,
    container: &str,
    b: &Binding,
    v6: bool,
) -> Result<Vec<PublishedPort>> {
    let ips = addresses(b, v6);
    let port = match b.host_ports {
        None => {
            // The kernel picks a port free for the first address; another address of the
            // binding may hold it already, then the kernel picks again.
            let mut result = table.hold_all(container, b.proto, &ips, 0);
            for _ in 1..EPHEMERAL_TRIES {
                if result.is_ok() {
                    break;
                }
                result = table.hold_all(container, b.proto, &ips, 0);
            }
            result.map_err(|e| e.into_error(b.proto))?
        }
        Some((first, last)) => {
            let mut result = Err(HoldError::Ours(ips[0], first));
            for port in first..=last {
                result = table.hold_all(container, b.proto, &ips, port);
                if result.is_ok() {
                    break;
                }
            }
            result.map_err(|e| e.into_error(b.proto))?
        }
    };
    Ok(ips
        .into_iter()
        .map(|ip| PublishedPort {
            container_id: container.to_string(),
            proto: b.proto.name().to_string(),
            host_ip: ip,
            host_port: port,
            container_port: b.container_port,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_as_the_docker_cli_sends_them() {
        let body = json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}},
            "HostConfig": {"PublishAllPorts": true, "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "81": [{"HostIp": "127.0.0.1", "HostPort": "8081-8090"}],
                "82/tcp": [{"HostIp": "", "HostPort": ""}]}}});
        let got = bindings(&body).expect("valid");
        let short: Vec<String> = got
            .iter()
            .map(|b| {
                format!(
                    "{}/{} {:?} {:?}",
                    b.container_port,
                    b.proto.name(),
                    b.host_ip,
                    b.host_ports
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                "80/tcp None Some((8080, 8080))",
                "81/tcp Some(127.0.0.1) Some((8081, 8090))",
                "82/tcp None None",
                "53/udp None None",
                "9000/tcp None None",
            ]
        );
        for bad in [
            json!({"HostConfig": {"PortBindings": {"x/tcp": []}}}),
            json!({"HostConfig": {"PortBindings": {"80/icmp": []}}}),
            json!({"HostConfig": {"PortBindings": {"80": [{"HostPort": "9-8"}]}}}),
            json!({"HostConfig": {"PortBindings": {"80": [{"HostIp": "nope"}]}}}),
        ] {
            assert!(
                matches!(bindings(&bad), Err(Error::InvalidParameter(_))),
                "{bad}"
            );
        }
        assert_eq!(
            exposed(&body),
            [
                (53, "udp".to_string()),
                (80, "tcp".to_string()),
                (81, "tcp".to_string()),
                (82, "tcp".to_string()),
                (9000, "tcp".to_string())
            ]
        );
    }

    #[test]
    fn rules_follow_the_rows_and_the_endpoint_families() {
        let row = |ip: &str| PublishedPort {
            container_id: "c".into(),
            proto: "udp".into(),
            host_ip: ip.parse().unwrap(),
            host_port: 5353,
            container_port: 53,
        };
        let e = Target {
            ipv4: "10.0.0.2".parse().ok(),
            ipv6: None,
        };
        let rules = rules_of(&[row("0.0.0.0"), row("::"), row("127.0.0.1")], Some(e));
        assert_eq!(rules.len(), 2, "no IPv6 address: no IPv6 rule");
        assert_eq!(rules[0].host_ip, None);
        assert_eq!(rules[1].host_ip, "127.0.0.1".parse().ok());
        assert!(rules_of(&[row("0.0.0.0")], None).is_empty());
    }
}
