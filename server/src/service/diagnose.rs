//! "Can A reach B, and why (not)?": an explanation from netbridge's own model and firewall
//! policy, then an actual ICMP echo from inside A's namespace.
//!
//! The policy read here is the one `kernel::firewall` enforces: containers on one bridge talk
//! unless `enable_icc=false`; traffic between two of netbridge's bridges is dropped (network
//! isolation); nothing enters or leaves an internal network's bridge; anything else leaves
//! through the container's default route and the host's own forwarding decides.

use std::net::IpAddr;
use std::time::Duration;

use super::driver::{OPT_ICC, bridge_of as kernel_bridge};
use super::{Daemon, Error, Result};
use crate::kernel::Netns;
use crate::kernel::probe::{self, EchoSpec};
use crate::model::{Container, Endpoint, Network};

/// At most this many echoes per probe.
pub const MAX_ECHOES: u16 = probe::MAX_ECHOES;
/// A probe never takes longer than this.
pub const MAX_PROBE_TIME: Duration = probe::MAX_DEADLINE;

/// What the probe saw: one round-trip time per echo answered.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    pub sent: u16,
    pub received: u16,
    pub rtts: Vec<Duration>,
    /// Why echoes could not even be sent (e.g. "Network is unreachable": no route).
    pub error: Option<String>,
}

/// What to diagnose: from a recorded container to a container reference or an address.
#[derive(Clone, Debug)]
pub struct DiagnoseRequest {
    pub source: String,
    pub target: String,
    /// Echoes to send; 0 skips the probe. At most [`probe::MAX_ECHOES`].
    pub count: u16,
    /// At most [`probe::MAX_DEADLINE`].
    pub timeout: Duration,
}

/// The policy's answer for one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The policy lets the traffic through.
    Reachable,
    /// The policy (or a missing route) stops it.
    Blocked,
    /// It leaves netbridge's networks; the host's forwarding decides.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reachable => "reachable",
            Verdict::Blocked => "blocked",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One reason, with a stable code a client can key on.
#[derive(Clone, Debug)]
pub struct Reason {
    pub code: &'static str,
    pub network: Option<String>,
    pub message: String,
}

fn reason(code: &'static str, network: Option<&Network>, message: String) -> Reason {
    Reason {
        code,
        network: network.map(|n| n.name.clone()),
        message,
    }
}

pub struct Diagnosis {
    pub source: Container,
    pub target_container: Option<Container>,
    /// The address probed (the target's, on the network the path goes through).
    pub address: Option<IpAddr>,
    pub shared: Vec<String>,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    pub probe: Option<ProbeReport>,
}

/// A container's attachments, each with its network.
type Attachments = Vec<(Endpoint, Network)>;

fn networks_of(a: &Attachments) -> Vec<&Network> {
    a.iter().map(|(_, n)| n).collect()
}

impl Daemon {
    /// `POST /netbridge/diagnose`.
    pub async fn diagnose(&self, req: DiagnoseRequest) -> Result<Diagnosis> {
        let source = self.find_recorded_container(&req.source).await?;
        let mine = self.attachments(&source).await?;
        let mut d = match req.target.parse::<IpAddr>() {
            Ok(ip) => self.explain_address(source, &mine, ip).await?,
            Err(_) => {
                let target = self.find_recorded_container(&req.target).await?;
                let theirs = self.attachments(&target).await?;
                explain_containers(source, &mine, target, &theirs)
            }
        };
        if let (Some(address), true) = (d.address, req.count > 0) {
            d.probe = Some(self.probe(&d.source, address, &req).await?);
        }
        Ok(d)
    }

    async fn attachments(&self, c: &Container) -> Result<Attachments> {
        let mut out = Vec::new();
        for e in self.store.endpoints_of_container(&c.id).await? {
            if let Some(n) = self.store.network(&e.network_id).await? {
                out.push((e, n));
            }
        }
        Ok(out)
    }

    async fn probe(
        &self,
        source: &Container,
        address: IpAddr,
        req: &DiagnoseRequest,
    ) -> Result<ProbeReport> {
        let path = std::path::PathBuf::from(&source.netns_path);
        let ns = tokio::task::spawn_blocking(move || Netns::open(&path))
            .await
            .map_err(|e| Error::System(format!("probe worker failed: {e}")))?
            .map_err(|e| {
                Error::Conflict(format!(
                    "cannot enter the namespace of container {}: {e}",
                    source.name
                ))
            })?;
        let spec = EchoSpec {
            target: address,
            count: req.count,
            interval: Duration::from_millis(200),
            deadline: req.timeout,
        };
        let echo = probe::echo(&ns, spec).await.map_err(Error::kernel(format!(
            "probe from {} to {address}",
            source.name
        )))?;
        Ok(ProbeReport {
            sent: echo.sent,
            received: echo.received,
            rtts: echo.rtts,
            error: echo.send_error,
        })
    }

    /// The target is an address: on one of the source's networks, on another netbridge
    /// network, or elsewhere.
    async fn explain_address(
        &self,
        source: Container,
        mine: &Attachments,
        ip: IpAddr,
    ) -> Result<Diagnosis> {
        let owner = self.container_at(ip).await?;
        let mut d = Diagnosis {
            source,
            target_container: owner.clone().map(|(c, _)| c),
            address: Some(ip),
            shared: Vec::new(),
            verdict: Verdict::Unknown,
            reasons: Vec::new(),
            probe: None,
        };
        if let Some((_, n)) = mine
            .iter()
            .find(|(_, n)| n.ipam.iter().any(|c| c.subnet.contains(ip)))
        {
            d.shared.push(n.name.clone());
            (d.verdict, d.reasons) = on_link(n, ip, owner.is_some());
            return Ok(d);
        }
        let networks = self.store.networks().await?;
        let other = networks
            .iter()
            .find(|n| kernel_bridge(n).is_some() && n.ipam.iter().any(|c| c.subnet.contains(ip)));
        (d.verdict, d.reasons) = leaving(&networks_of(mine), ip, other.map(|n| n.as_ref()));
        Ok(d)
    }

    /// The recorded container holding `ip`, with its endpoint.
    async fn container_at(&self, ip: IpAddr) -> Result<Option<(Container, Endpoint)>> {
        let Some(e) = self
            .store
            .endpoints()
            .await?
            .into_iter()
            .find(|e| e.ipv4 == Some(ip) || e.ipv6 == Some(ip))
        else {
            return Ok(None);
        };
        Ok(self.store.container(&e.container_id).await?.map(|c| (c, e)))
    }
}

/// Between two containers of one bridge: allowed unless ICC is off.
fn same_bridge(n: &Network) -> (Verdict, Reason) {
    if !n.bool_option(OPT_ICC, true) {
        let why = format!(
            "network {} has enable_icc=false: containers on it cannot talk to each other",
            n.name
        );
        return (Verdict::Blocked, reason("icc-disabled", Some(n), why));
    }
    let why = format!(
        "both are on network {}, one bridge ({})",
        n.name,
        bridge_of(n)
    );
    (Verdict::Reachable, reason("shared-network", Some(n), why))
}

/// An address in one of the source's own subnets: the gateway (the host), a container's, or
/// nobody's.
fn on_link(n: &Network, ip: IpAddr, held: bool) -> (Verdict, Vec<Reason>) {
    if n.ipam.iter().any(|c| c.gateway == ip) {
        let why = format!(
            "{ip} is the gateway of network {}: the host's end of bridge {}",
            n.name,
            bridge_of(n)
        );
        return (Verdict::Reachable, vec![reason("gateway", Some(n), why)]);
    }
    if !held {
        let why = format!(
            "{ip} is in network {}'s subnet, but no endpoint holds it: nothing will answer",
            n.name
        );
        return (Verdict::Unknown, vec![reason("unassigned", Some(n), why)]);
    }
    let (verdict, why) = same_bridge(n);
    (verdict, vec![why])
}

fn bridge_of(n: &Network) -> String {
    kernel_bridge(n).unwrap_or_else(|| "no bridge".to_string())
}

/// Two containers: through a network they share, or not at all.
fn explain_containers(
    source: Container,
    mine: &Attachments,
    target: Container,
    theirs: &Attachments,
) -> Diagnosis {
    let shared: Vec<(&Endpoint, &Network)> = theirs
        .iter()
        .filter(|(_, n)| mine.iter().any(|(_, m)| m.id == n.id))
        .map(|(e, n)| (e, n))
        .collect();
    let mut d = Diagnosis {
        source,
        target_container: Some(target),
        address: None,
        shared: shared.iter().map(|(_, n)| n.name.clone()).collect(),
        verdict: Verdict::Blocked,
        reasons: Vec::new(),
        probe: None,
    };
    for (e, n) in &shared {
        let (verdict, why) = same_bridge(n);
        d.reasons.push(why);
        if verdict == Verdict::Reachable && d.verdict != Verdict::Reachable {
            d.verdict = Verdict::Reachable;
            d.address = e.ipv4.or(e.ipv6);
        }
    }
    if d.address.is_none() {
        d.address = theirs.iter().find_map(|(e, _)| e.ipv4.or(e.ipv6));
    }
    if shared.is_empty() {
        match (d.address, theirs.first()) {
            (Some(ip), Some((_, their_net))) => {
                (d.verdict, d.reasons) = leaving(&networks_of(mine), ip, Some(their_net));
            }
            _ => d.reasons.push(reason(
                "target-unattached",
                None,
                format!(
                    "{} is attached to no network: it has no address to reach",
                    d.target_container.as_ref().map_or("", |c| c.name.as_str())
                ),
            )),
        }
    }
    d
}

/// Traffic that must leave the source's bridges: is there a route, and does isolation or an
/// internal network stop it?
fn leaving(mine: &[&Network], ip: IpAddr, other: Option<&Network>) -> (Verdict, Vec<Reason>) {
    let mut reasons = Vec::new();
    let family = |n: &Network| {
        n.ipam
            .iter()
            .any(|c| c.subnet.addr.is_ipv4() == ip.is_ipv4())
    };
    let routed: Vec<&Network> = mine
        .iter()
        .copied()
        .filter(|n| !n.internal && kernel_bridge(n).is_some() && family(n))
        .collect();
    for n in mine.iter().filter(|n| n.internal) {
        reasons.push(reason(
            "internal",
            Some(n),
            format!("network {} is internal: nothing leaves its bridge", n.name),
        ));
    }
    let Some(via) = routed.first() else {
        reasons.push(reason(
            "no-route",
            None,
            format!("no route to {ip}: the source shares no network with it and has no default route (no non-internal {} network)",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }),
        ));
        return (Verdict::Blocked, reasons);
    };
    let Some(other) = other else {
        reasons.push(reason(
            "outside",
            Some(via),
            format!("{ip} is outside netbridge's networks: it leaves through the default route via network {}; the host's forwarding decides", via.name),
        ));
        return (Verdict::Unknown, reasons);
    };
    if other.internal {
        reasons.push(reason(
            "internal",
            Some(other),
            format!(
                "network {} is internal: nothing enters its bridge",
                other.name
            ),
        ));
    }
    reasons.push(reason(
        "isolated",
        Some(other),
        format!(
            "no shared network: {ip} is on network {}, and traffic between netbridge's networks ({} → {}) is dropped (network isolation)",
            other.name,
            bridge_of(via),
            bridge_of(other)
        ),
    ));
    (Verdict::Blocked, reasons)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ipam::NetworkConfig;

    fn net(name: &str, subnet: &str, internal: bool, icc: bool) -> Network {
        let subnet: crate::ipam::Cidr = subnet.parse().unwrap();
        let gateway = match subnet.network() {
            IpAddr::V4(a) => IpAddr::from(std::net::Ipv4Addr::from(u32::from(a) + 1)),
            v6 => v6,
        };
        let mut options = BTreeMap::new();
        if !icc {
            options.insert(OPT_ICC.to_string(), "false".to_string());
        }
        Network {
            id: format!("{name:0>64}"),
            name: name.to_string(),
            driver: "bridge".to_string(),
            scope: "local".to_string(),
            created_nanos: 0,
            enable_ipv4: true,
            enable_ipv6: false,
            internal,
            attachable: false,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin: false,
            link: Some(format!("br-{name}")),
            driver_state: serde_json::json!({"bridge": format!("br-{name}"), "adopted": false}),
            options,
            labels: BTreeMap::new(),
            ipam_driver: "default".to_string(),
            ipam_options: None,
            ipam: vec![NetworkConfig {
                subnet,
                ip_range: None,
                gateway,
                aux: BTreeMap::new(),
            }],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn codes(r: &[Reason]) -> Vec<&str> {
        r.iter().map(|r| r.code).collect()
    }

    #[test]
    fn on_one_subnet_the_gateway_answers_and_icc_decides_the_rest() {
        let open = net("a", "172.30.0.0/24", false, true);
        let quiet = net("q", "172.31.0.0/24", false, false);
        let (v, r) = on_link(&open, ip("172.30.0.1"), false);
        assert_eq!((v, codes(&r)), (Verdict::Reachable, vec!["gateway"]));
        let (v, r) = on_link(&open, ip("172.30.0.9"), true);
        assert_eq!((v, codes(&r)), (Verdict::Reachable, vec!["shared-network"]));
        let (v, r) = on_link(&open, ip("172.30.0.9"), false);
        assert_eq!((v, codes(&r)), (Verdict::Unknown, vec!["unassigned"]));
        let (v, r) = on_link(&quiet, ip("172.31.0.9"), true);
        assert_eq!((v, codes(&r)), (Verdict::Blocked, vec!["icc-disabled"]));
        let (v, r) = on_link(&quiet, ip("172.31.0.1"), false);
        assert_eq!(
            v,
            Verdict::Reachable,
            "ICC never cuts off the gateway: {r:?}"
        );
    }

    #[test]
    fn leaving_a_bridge_meets_isolation_internal_networks_or_no_route() {
        let a = net("a", "172.30.0.0/24", false, true);
        let b = net("b", "172.31.0.0/24", false, true);
        let inner = net("i", "172.29.0.0/24", true, true);
        let (v, r) = leaving(&[&a], ip("172.31.0.2"), Some(&b));
        assert_eq!((v, codes(&r)), (Verdict::Blocked, vec!["isolated"]));
        let (v, r) = leaving(&[&a], ip("172.29.0.2"), Some(&inner));
        assert_eq!(
            (v, codes(&r)),
            (Verdict::Blocked, vec!["internal", "isolated"])
        );
        let (v, r) = leaving(&[&inner], ip("172.31.0.2"), Some(&b));
        assert_eq!(
            (v, codes(&r)),
            (Verdict::Blocked, vec!["internal", "no-route"])
        );
        let (v, r) = leaving(&[], ip("10.0.0.1"), None);
        assert_eq!((v, codes(&r)), (Verdict::Blocked, vec!["no-route"]));
        let (v, r) = leaving(&[&a], ip("fd00::1"), None);
        assert_eq!(
            (v, codes(&r)),
            (Verdict::Blocked, vec!["no-route"]),
            "no IPv6 network"
        );
        let (v, r) = leaving(&[&a], ip("10.0.0.1"), None);
        assert_eq!((v, codes(&r)), (Verdict::Unknown, vec!["outside"]));
    }
}
