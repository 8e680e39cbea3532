//! Network operations: create, look up, list, inspect, remove, prune.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::events::network_event;
use super::filters::{self, Filters, NetworkFilter};
use super::reconcile::MARK;
use super::{Daemon, Error, Result, crash};
use crate::ipam::{self, AllocError, Cidr, ConfigError, ConfigRequest};
use crate::kernel::{BridgeSpec, KernelError};
use crate::metrics::timed;
use crate::model::{self, Container, Endpoint, Network, PREDEFINED_NAMES, parse_go_bool};

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
const OPT_ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Bridge driver options whose values Docker parses as booleans at create.
const BOOL_OPTIONS: [&str; 4] = [
    OPT_ICC,
    OPT_MASQUERADE,
    "com.docker.network.bridge.inhibit_ipv4",
    "com.docker.network.bridge.default_bridge",
];

/// A create request in domain terms (the HTTP layer has already decoded the JSON).
#[derive(Clone, Debug, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub config_from: String,
    /// `None` = not sent (Docker's default applies, or the driver option).
    pub enable_ipv4: Option<bool>,
    pub enable_ipv6: Option<bool>,
    pub ipam_driver: String,
    /// `None` = not sent (shown as `null`, as Docker does).
    pub ipam_options: Option<BTreeMap<String, String>>,
    pub ipam_config: Vec<ConfigRequest>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Which operation looks a network up: Docker words its errors differently for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Inspect,
    Delete,
    Connect,
}

/// Everything `GET /networks/{id}` shows.
pub struct NetworkView {
    pub network: Network,
    pub endpoints: Vec<(Endpoint, Container)>,
    pub status: Vec<SubnetStatus>,
}

pub struct SubnetStatus {
    pub subnet: Cidr,
    pub in_use: u64,
    pub available: u64,
}

impl Daemon {
    /// `POST /networks/create`, with Docker's checks in Docker's order. Returns the new ID.
    pub async fn create_network(&self, req: CreateNetwork) -> Result<String> {
        let _shared = self.exclusive.read().await;
        // 1. Predefined names.
        if PREDEFINED_NAMES.contains(&req.name.as_str()) {
            return Err(Error::Forbidden(format!(
                "operation is not permitted on predefined {} network ",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        // 2. Address families.
        let enable_ipv4 = family_switch(req.enable_ipv4, &req.options, OPT_ENABLE_IPV4, true)?;
        let enable_ipv6 = family_switch(req.enable_ipv6, &req.options, OPT_ENABLE_IPV6, false)?;
        // 3. IPAM config.
        let parsed =
            ipam::validate(&req.ipam_config, enable_ipv4, enable_ipv6).map_err(|e| match e {
                ConfigError::Malformed(text) => {
                    Error::InvalidParameter(format!("invalid JSON: {text}"))
                }
                invalid @ ConfigError::Invalid(_) => Error::InvalidParameter(invalid.to_string()),
            })?;
        // 4. Name.
        if req.name.trim().is_empty() {
            return Err(Error::InvalidParameter(
                "invalid name: name is empty".to_string(),
            ));
        }
        let _topology = self.topology.lock().await;
        // 5. Unique names (Docker >= 25 ignores CheckDuplicate).
        if self.store.network_by_name(&req.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        // 6. Drivers.
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(Error::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )));
            }
            other => return Err(Error::NotFound(format!("plugin \"{other}\" not found"))),
        }
        if !(req.ipam_driver.is_empty() || req.ipam_driver == "default") {
            return Err(Error::NotFound(format!(
                "plugin \"{}\" not found",
                req.ipam_driver
            )));
        }
        if !(req.scope.is_empty() || req.scope == "local") {
            return Err(Error::InvalidParameter(format!(
                "netbridge networks are local; scope \"{}\" is not supported",
                req.scope
            )));
        }
        if req.ingress {
            return Err(Error::Forbidden(
                "ingress networks need swarm mode, which netbridge does not provide".to_string(),
            ));
        }
        if req.config_only || !req.config_from.is_empty() {
            return Err(Error::InvalidParameter(
                "config-only networks are not supported by netbridge".to_string(),
            ));
        }
        // 7. Bridge options.
        let bridge_opts = parse_bridge_options(&req.options)?;
        // 8. Subnets.
        let taken = self.store.taken_subnets().await?;
        let reserved = self.reserved_prefixes().await?;
        let ipam_cfg = ipam::allocate(
            &parsed,
            enable_ipv4,
            enable_ipv6,
            &self.settings.pools,
            &taken,
            &reserved,
        )
        .map_err(alloc_error)?;
        // 9. Bridge device.
        let id = model::new_id();
        let bridge = bridge_opts
            .name
            .clone()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        // One indexed lookup and one link query: create stays flat as networks pile up.
        if let Some(other) = self.store.network_id_with_bridge(&bridge).await? {
            return Err(Error::Forbidden(format!(
                "cannot create network {id} ({bridge}): conflicts with network {other} ({bridge}): networks have same bridge name"
            )));
        }
        let existing = self
            .kernel
            .link(&bridge)
            .await
            .map_err(Error::kernel(format!("looking up {bridge}")))?;
        if let Some(link) = &existing
            && link.kind.as_deref() != Some("bridge")
        {
            return Err(Error::Forbidden(format!(
                "cannot create network {id} ({bridge}): a {} device of that name exists and is not a bridge",
                link.kind.as_deref().unwrap_or("network")
            )));
        }
        let network = Network {
            id: id.clone(),
            name: req.name,
            driver,
            scope: "local".to_string(),
            created_nanos: model::now_nanos(),
            enable_ipv4,
            enable_ipv6,
            internal: req.internal,
            attachable: req.attachable,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin: false,
            bridge: Some(bridge),
            bridge_adopted: existing.is_some(),
            mtu: bridge_opts.mtu,
            options: req.options,
            labels: req.labels,
            ipam_driver: "default".to_string(),
            ipam_options: req.ipam_options,
            ipam: ipam_cfg,
        };
        // Journal, row, bridge, firewall: a crash anywhere is rolled back at start-up.
        let op = self
            .store
            .begin_op(
                "create_network",
                &network.id,
                &json!({"bridge": network.bridge, "adopted": network.bridge_adopted}),
            )
            .await?;
        crash::point("network.create.journaled");
        // Row and bridge side by side: the journal already names the bridge, so a crash with
        // either or both done is rolled back like any other.
        let (row, bridge) = tokio::join!(
            self.store.insert_network(&network),
            self.make_bridge(&network)
        );
        if let Err(e) = row {
            if bridge.is_ok() {
                self.undo_create(&network).await;
            }
            self.store.end_op(op).await?;
            return Err(match e {
                crate::store::StoreError::Duplicate(_) => {
                    Error::Conflict(format!("network with name {} already exists", network.name))
                }
                other => other.into(),
            });
        }
        crash::point("network.create.row");
        let made = match bridge {
            Ok(()) => {
                crash::point("network.create.bridge");
                self.firewall_add(&network).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            self.undo_create(&network).await;
            self.store.end_op(op).await?;
            return Err(e);
        }
        crash::point("network.create.firewall");
        let event = network_event("create", &network, None);
        self.store.finish_op(op, &event).await?;
        self.broadcast(event);
        tracing::info!(network = %network.id, name = %network.name, bridge = ?network.bridge, "network created");
        Ok(id)
    }

    /// Rolls back a half-made network: its firewall elements, its bridge (unless adopted), its row.
    pub(super) async fn undo_create(&self, network: &Network) {
        self.firewall_remove(network).await;
        if let Some(bridge) = network
            .bridge
            .as_deref()
            .filter(|_| !network.bridge_adopted)
            && let Err(e) = self.kernel.delete_link(bridge).await
        {
            tracing::error!(network = %network.id, %bridge, error = %e, "cannot roll back a bridge");
        }
        if let Err(e) = self.store.delete_network(&network.id).await {
            tracing::error!(network = %network.id, error = %e, "cannot roll back a network row");
        }
    }

    /// Makes (or adopts) the network's bridge with its gateway addresses.
    pub(super) async fn make_bridge(&self, n: &Network) -> Result<()> {
        let Some(spec) = bridge_spec(n) else {
            return Ok(());
        };
        let made = if n.bridge_adopted {
            timed("netlink", "ensure_bridge", self.kernel.ensure_bridge(&spec)).await
        } else {
            timed("netlink", "create_bridge", self.kernel.create_bridge(&spec)).await
        };
        made.map(|_| ()).map_err(Error::kernel(format!(
            "failed to create bridge {}",
            spec.name
        )))
    }

    /// Finds a network by full ID, then exact name, then unique ID prefix.
    pub async fn find_network(&self, term: &str, style: Lookup) -> Result<Network> {
        if let Some(n) = self.store.network(term).await? {
            return Ok(n);
        }
        if let Some(n) = self.store.network_by_name(term).await? {
            return Ok(n);
        }
        let ids = self.store.network_ids_with_prefix(term).await?;
        match ids.as_slice() {
            [] => Err(Error::NotFound(format!("network {term} not found"))),
            [id] => self
                .store
                .network(id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("network {term} not found"))),
            many => Err(Error::InvalidParameter(match style {
                Lookup::Inspect => format!(
                    "{} matches found based on ID prefix: network {term} is ambiguous",
                    many.len()
                ),
                Lookup::Delete | Lookup::Connect => format!(
                    "network {term} is ambiguous ({} matches found based on ID prefix)",
                    many.len()
                ),
            })),
        }
    }

    /// `GET /networks/{id}`.
    pub async fn inspect_network(&self, term: &str, scope: Option<&str>) -> Result<NetworkView> {
        let network = self.find_network(term, Lookup::Inspect).await?;
        if let Some(scope) = scope.filter(|s| !s.is_empty())
            && scope != network.scope
        {
            return Err(Error::NotFound(format!("network {term} not found")));
        }
        let endpoints = self.store.endpoints_of_network(&network.id).await?;
        let mut joined = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            if let Some(c) = self.store.container(&e.container_id).await? {
                joined.push((e, c));
            }
        }
        let used: BTreeSet<IpAddr> = joined
            .iter()
            .flat_map(|(e, _)| e.ipv4.into_iter().chain(e.ipv6))
            .collect();
        let status = network
            .ipam
            .iter()
            .map(|cfg| {
                let (in_use, available) = ipam::status(cfg, &used);
                SubnetStatus {
                    subnet: cfg.subnet,
                    in_use,
                    available,
                }
            })
            .collect();
        Ok(NetworkView {
            network,
            endpoints: joined,
            status,
        })
    }

    /// `GET /networks`.
    pub async fn list_networks(&self, filters: Filters) -> Result<Vec<Arc<Network>>> {
        let filter = NetworkFilter::new(filters)?;
        let counts = if filter.needs_endpoint_counts() {
            self.store.endpoint_counts().await?
        } else {
            HashMap::new()
        };
        let networks = self.store.networks().await?;
        Ok(networks
            .into_iter()
            .filter(|n| filter.matches(n, counts.get(&n.id).copied().unwrap_or(0)))
            .collect())
    }

    /// `DELETE /networks/{id}`. Only this network's lock is held, so removing one network
    /// (the kernel takes ~40 ms to delete a bridge) never holds up work on others.
    pub async fn remove_network(&self, term: &str) -> Result<()> {
        let _shared = self.exclusive.read().await;
        let network = self.find_network(term, Lookup::Delete).await?;
        self.remove_resolved(&network).await
    }

    async fn remove_resolved(&self, network: &Network) -> Result<()> {
        if network.builtin {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        let guard = self.network_lock(&network.id).lock_owned().await;
        // Removed meanwhile by another request.
        if self.store.network(&network.id).await?.is_none() {
            return Err(Error::NotFound(format!(
                "network {} not found",
                network.name
            )));
        }
        let endpoints = self.store.endpoints_of_network(&network.id).await?;
        if !endpoints.is_empty() {
            let mut names = Vec::new();
            for e in &endpoints {
                let name = match self.store.container(&e.container_id).await? {
                    Some(c) => c.name,
                    None => e.container_id.clone(),
                };
                names.push(format!("name:\"{name}\" id:\"{}\"", &e.id[..12]));
            }
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} has active endpoints ({})",
                network.name,
                names.join(", ")
            )));
        }
        // Kernel first, row last: a crash in between leaves the row, and start-up restores
        // the bridge and its rules, so the network is wholly there and removing it again works.
        let op = self
            .store
            .begin_op(
                "remove_network",
                &network.id,
                &json!({"bridge": network.bridge}),
            )
            .await?;
        crash::point("network.remove.journaled");
        // Both wait on the kernel (an nf_tables commit, an RCU grace period), not the CPU:
        // side by side they cost one wait instead of two.
        let bridge = network
            .bridge
            .as_deref()
            .filter(|_| !network.bridge_adopted);
        let delete_bridge = async {
            match bridge {
                Some(bridge) => timed("netlink", "delete_bridge", self.kernel.delete_link(bridge))
                    .await
                    .map(|_| ()),
                None => Ok(()),
            }
        };
        let ((), deleted) = tokio::join!(self.firewall_remove(network), delete_bridge);
        crash::point("network.remove.firewall");
        if let (Some(bridge), Err(e)) = (bridge, deleted) {
            // Put the rules back: the network stays, whole.
            if let Err(again) = self.firewall_add(network).await {
                tracing::error!(network = %network.id, error = %again, "cannot restore firewall rules");
            }
            self.store.end_op(op).await?;
            return Err(Error::kernel(format!("failed to delete bridge {bridge}"))(
                e,
            ));
        }
        crash::point("network.remove.bridge");
        self.store.delete_network(&network.id).await?;
        crash::point("network.remove.row");
        self.store.end_op(op).await?;
        self.emit_network("destroy", network, None).await;
        drop(guard);
        self.forget_network_lock(&network.id);
        tracing::info!(network = %network.id, name = %network.name, "network removed");
        Ok(())
    }

    /// `POST /networks/prune`: removes unused custom networks. Returns their names.
    pub async fn prune_networks(&self, filters: Filters) -> Result<Vec<String>> {
        let _shared = self.exclusive.read().await;
        filters.check_keys(&filters::PRUNE_KEYS)?;
        let until = match filters.get("until") {
            None => None,
            Some(values) if values.len() > 1 => {
                return Err(Error::InvalidParameter(
                    "more than one until filter specified".to_string(),
                ));
            }
            Some(values) => {
                let value = values.iter().next().map(String::as_str).unwrap_or_default();
                Some(filters::parse_until(value, model::now_nanos()).ok_or_else(|| {
                    Error::InvalidParameter(format!(
                        "failed to parse value of filter (until): {value}: not a timestamp, date or duration"
                    ))
                })?)
            }
        };
        if self.prune_running.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict(
                "a prune operation is already running".to_string(),
            ));
        }
        let result = self.prune_locked(&filters, until).await;
        self.prune_running.store(false, Ordering::Release);
        result
    }

    async fn prune_locked(&self, filters: &Filters, until: Option<i64>) -> Result<Vec<String>> {
        let counts: HashMap<String, usize> = self.store.endpoint_counts().await?;
        let mut deleted = Vec::new();
        for n in self.store.networks().await? {
            let wanted = !n.builtin
                && !n.config_only
                && counts.get(&n.id).copied().unwrap_or(0) == 0
                && filters
                    .get("label")
                    .is_none_or(|ls| ls.iter().all(|l| filters::label_matches(l, &n.labels)))
                && filters
                    .get("label!")
                    .is_none_or(|ls| !ls.iter().any(|l| filters::label_matches(l, &n.labels)))
                && until.is_none_or(|u| n.created_nanos <= u);
            if !wanted {
                continue;
            }
            match self.remove_resolved(&n).await {
                Ok(()) => deleted.push(n.name.clone()),
                // Docker skips networks it cannot remove.
                Err(e) => tracing::warn!(network = %n.id, error = %e, "prune skipped a network"),
            }
        }
        Ok(deleted)
    }

    /// Prefixes a new automatic subnet must avoid: the host's connected routes and addresses,
    /// and its nameservers.
    pub(super) async fn reserved_prefixes(&self) -> Result<Vec<Cidr>> {
        let mut reserved: Vec<Cidr> = self
            .kernel
            .reserved_prefixes()
            .await
            .map_err(Error::kernel("reading host routes"))?
            .into_iter()
            .filter_map(|(addr, prefix)| Cidr::new(addr, prefix))
            .collect();
        reserved.extend(nameservers().into_iter().filter_map(|ip| {
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            Cidr::new(ip, bits)
        }));
        Ok(reserved)
    }
}

/// The kernel bridge a network needs, if its driver has one.
pub(super) fn bridge_spec(n: &Network) -> Option<BridgeSpec> {
    let name = n.bridge.clone()?;
    Some(BridgeSpec {
        name,
        mtu: n.mtu,
        alias: format!("{MARK}{}", n.id),
        addresses: n
            .ipam
            .iter()
            .map(|c| (c.gateway, c.subnet.prefix))
            .collect(),
    })
}

/// Docker's rule for the address-family switches: the top-level field wins; when it is absent
/// the driver option is honoured; else the default.
fn family_switch(
    field: Option<bool>,
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool> {
    if let Some(v) = field {
        return Ok(v);
    }
    match options.get(key) {
        None => Ok(default),
        Some(text) => parse_go_bool(text).ok_or_else(|| {
            Error::InvalidParameter(format!("driver-opt \"{key}\" is not a valid bool"))
        }),
    }
}

struct BridgeOptions {
    name: Option<String>,
    mtu: Option<u32>,
}

fn parse_bridge_options(options: &BTreeMap<String, String>) -> Result<BridgeOptions> {
    let parse_err = |key: &str, value: &str, reason: String| {
        Error::InvalidParameter(format!("failed to parse {key} value: {value} ({reason})"))
    };
    for key in BOOL_OPTIONS {
        if let Some(v) = options.get(key)
            && parse_go_bool(v).is_none()
        {
            return Err(parse_err(
                key,
                v,
                format!("strconv.ParseBool: parsing \"{v}\": invalid syntax"),
            ));
        }
    }
    let mtu = match options.get(OPT_MTU) {
        None => None,
        Some(v) => {
            let n: i64 = v.trim().parse().map_err(|_| {
                parse_err(
                    OPT_MTU,
                    v,
                    format!("strconv.Atoi: parsing \"{v}\": invalid syntax"),
                )
            })?;
            if n < 0 {
                return Err(Error::InvalidParameter(format!("invalid MTU number: {n}")));
            }
            match n {
                0 => None,
                68..=65535 => Some(n as u32),
                _ => {
                    return Err(Error::InvalidParameter(format!(
                        "invalid MTU number: {n} (the kernel accepts 68 to 65535)"
                    )));
                }
            }
        }
    };
    let name = match options.get(OPT_BRIDGE_NAME) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            if !valid_ifname(v) {
                return Err(parse_err(
                    OPT_BRIDGE_NAME,
                    v,
                    "an interface name is 1 to 15 characters without '/', ':' or white space"
                        .to_string(),
                ));
            }
            Some(v.clone())
        }
    };
    Ok(BridgeOptions { name, mtu })
}

/// What the kernel accepts as an interface name (`dev_valid_name`), minus ':' (alias syntax).
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

fn alloc_error(e: AllocError) -> Error {
    match e {
        AllocError::Overlap | AllocError::MultipleSubnets => Error::Forbidden(e.to_string()),
        AllocError::Exhausted { .. } | AllocError::NoIpv6Pool | AllocError::NoGatewayAddress(_) => {
            Error::InvalidParameter(e.to_string())
        }
        // Docker answers these 500; they are the client's mistake, so 400 with Docker's text.
        AllocError::BadGateway(_) | AllocError::AuxInUse { .. } => {
            Error::InvalidParameter(e.to_string())
        }
    }
}

/// Nameservers in /etc/resolv.conf: Docker keeps automatic subnets off them.
fn nameservers() -> Vec<IpAddr> {
    let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect()
}

impl From<KernelError> for Error {
    fn from(source: KernelError) -> Error {
        Error::Kernel {
            context: "kernel".to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bridge_options_are_checked_like_docker() {
        let e = parse_bridge_options(&opts(&[(OPT_MTU, "abc")]))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)"
        );
        let e = parse_bridge_options(&opts(&[(OPT_MTU, "-5")]))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "invalid MTU number: -5");
        let e = parse_bridge_options(&opts(&[(OPT_ICC, "maybe")]))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("failed to parse com.docker.network.bridge.enable_icc value: maybe")
        );
        let ok = parse_bridge_options(&opts(&[(OPT_MTU, "1400"), (OPT_BRIDGE_NAME, "nbtest0")]))
            .unwrap();
        assert_eq!(ok.mtu, Some(1400));
        assert_eq!(ok.name.as_deref(), Some("nbtest0"));
        assert!(parse_bridge_options(&opts(&[(OPT_BRIDGE_NAME, "a/b")])).is_err());
        assert!(parse_bridge_options(&opts(&[(OPT_BRIDGE_NAME, "sixteen-chars-xx")])).is_err());
    }

    #[test]
    fn family_switch_prefers_the_field() {
        let o = opts(&[(OPT_ENABLE_IPV6, "true")]);
        assert!(family_switch(None, &o, OPT_ENABLE_IPV6, false).unwrap());
        assert!(!family_switch(Some(false), &o, OPT_ENABLE_IPV6, false).unwrap());
        let bad = opts(&[(OPT_ENABLE_IPV6, "yes")]);
        assert_eq!(
            family_switch(None, &bad, OPT_ENABLE_IPV6, false)
                .err()
                .unwrap()
                .to_string(),
            "driver-opt \"com.docker.network.enable_ipv6\" is not a valid bool"
        );
    }
}
