//! Network operations: create, look up, list, inspect, remove, prune.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::driver::{self, Draft, Driver};
use super::events::network_event;
use super::filters::{self, Filters, NetworkFilter};
use super::journal::Op;
use super::{Daemon, Error, Result, crash};
use crate::ipam::{self, AllocError, Cidr, ConfigError, ConfigRequest};
use crate::kernel::{KernelError, LinkKinds};
use crate::model::{self, Container, Endpoint, Network, PREDEFINED_NAMES, parse_go_bool};

const OPT_ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";

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
    /// A global network's endpoints on other hosts, as last seen from the cluster.
    pub remote: Vec<super::ClusterEndpoint>,
    /// A global network's host here (its underlay address), `None` for local networks.
    pub host: Option<std::net::Ipv4Addr>,
    pub status: Vec<SubnetStatus>,
}

pub struct SubnetStatus {
    pub subnet: Cidr,
    pub in_use: u64,
    pub available: u64,
}

/// A create request that passed Docker's checks: what applying it needs.
pub(super) struct CheckedCreate {
    pub driver: &'static dyn Driver,
    pub enable_ipv4: bool,
    pub enable_ipv6: bool,
    pub ipam: Vec<ipam::ParsedConfig>,
    /// What the driver made of the options (see `Driver::check`).
    pub driver_options: serde_json::Value,
}

/// Docker's checks of `POST /networks/create`, in Docker's order; pure. `name_taken` says
/// whether a network of that name exists.
pub(super) fn check_create(
    req: &CreateNetwork,
    name_taken: bool,
    kinds: &LinkKinds,
) -> Result<CheckedCreate> {
    // 1. Predefined names.
    if PREDEFINED_NAMES.contains(&req.name.as_str()) {
        return Err(Error::Forbidden(format!(
            "operation is not permitted on predefined {} network ",
            req.name
        )));
    }
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
    // 5. Unique names (Docker >= 25 ignores CheckDuplicate).
    if name_taken {
        return Err(Error::Conflict(format!(
            "network with name {} already exists",
            req.name
        )));
    }
    // 6. Drivers.
    let name = if req.driver.is_empty() {
        "bridge"
    } else {
        req.driver.as_str()
    };
    let driver = driver::for_create(name, kinds)?;
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
    // 7. Driver options.
    let driver_options = driver.check(req)?;
    Ok(CheckedCreate {
        driver,
        enable_ipv4,
        enable_ipv6,
        ipam: parsed,
        driver_options,
    })
}

impl Daemon {
    /// `POST /networks/create`: Docker's checks, then the network made. Returns the new ID.
    pub async fn create_network(&self, req: CreateNetwork) -> Result<String> {
        let _shared = self.exclusive.read().await;
        if req.driver == "overlay" {
            // Boxed: a local create need not carry the cluster's larger future.
            return Box::pin(self.create_global(req)).await;
        }
        // Checked before waiting for the topology lock, so a bad request never waits.
        let name_taken = self.store.network_by_name(&req.name).await?.is_some();
        let checked = check_create(&req, name_taken, self.kinds())?;
        let _topology = self.topology.lock().await;
        // Names are unique: one taken meanwhile, by a create that held the lock, is refused.
        if self.store.network_by_name(&req.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        self.apply_create(req, checked).await
    }

    /// Subnets, the driver's plan, then journal, row, kernel objects and firewall: a crash
    /// anywhere is rolled back at start-up. Runs under the topology lock.
    async fn apply_create(&self, req: CreateNetwork, checked: CheckedCreate) -> Result<String> {
        let (v4, v6) = (checked.enable_ipv4, checked.enable_ipv6);
        // 8. Subnets.
        let taken = self.store.taken_subnets().await?;
        let reserved = self.reserved_prefixes().await?;
        let ipam_cfg = ipam::allocate(
            &checked.ipam,
            v4,
            v6,
            &self.settings.pools,
            &taken,
            &reserved,
        )
        .map_err(alloc_error)?;
        // 9. The driver's kernel objects.
        let id = model::new_id();
        let driver = checked.driver;
        let draft = Draft {
            id: &id,
            internal: req.internal,
            checked: checked.driver_options,
        };
        let plan = driver.plan(self.driver_env(), draft).await?;
        let network = Network {
            id: id.clone(),
            name: req.name,
            driver: driver.name().to_string(),
            scope: "local".to_string(),
            created_nanos: model::now_nanos(),
            enable_ipv4: v4,
            enable_ipv6: v6,
            internal: req.internal,
            attachable: req.attachable,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin: false,
            link: plan.link,
            driver_state: plan.state,
            options: req.options,
            labels: req.labels,
            ipam_driver: "default".to_string(),
            ipam_options: req.ipam_options,
            ipam: ipam_cfg,
        };
        self.store_network(network, driver).await
    }

    /// Journal, row, kernel objects and firewall of a network already decided. Runs under the
    /// topology lock.
    pub(super) async fn store_network(
        &self,
        network: Network,
        driver: &'static dyn Driver,
    ) -> Result<String> {
        let id = network.id.clone();
        let state = match &network.driver_state {
            serde_json::Value::Object(fields) => fields.clone(),
            _ => serde_json::Map::new(),
        };
        let journaled = Op::CreateNetwork {
            driver: network.driver.clone(),
            state,
        };
        let op = self.journal(&network.id, &journaled).await?;
        crash::point("network.create.journaled");
        // Row and kernel objects side by side: the journal already names what the driver
        // makes, so a crash with either or both done is rolled back like any other.
        let env = self.driver_env();
        let (row, made) = tokio::join!(
            self.store.insert_network(&network),
            driver.create(env, &network)
        );
        if let Err(e) = row {
            if made.is_ok() {
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
        let made = match made {
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
        tracing::info!(network = %network.id, name = %network.name, driver = %network.driver, link = ?network.link, "network created");
        Ok(id)
    }

    /// Rolls back a half-made network: its firewall elements, its driver's kernel objects, its
    /// row.
    pub(super) async fn undo_create(&self, network: &Network) {
        self.firewall_remove(network).await;
        if let Ok(driver) = driver::of(network)
            && let Err(e) = driver
                .remove(self.driver_env(), &network.id, &network.driver_state)
                .await
        {
            tracing::error!(network = %network.id, error = %e, "cannot roll back a network's kernel objects");
        }
        if let Err(e) = self.store.delete_network(&network.id).await {
            tracing::error!(network = %network.id, error = %e, "cannot roll back a network row");
        }
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
        let cluster = self
            .cluster()
            .filter(|_| network.scope == super::cluster::GLOBAL);
        let remote = cluster.map_or_else(Vec::new, |c| c.remote_endpoints(&network.id));
        let used: BTreeSet<IpAddr> = joined
            .iter()
            .flat_map(|(e, _)| e.ipv4.into_iter().chain(e.ipv6))
            .chain(remote.iter().map(|r| IpAddr::V4(r.ip)))
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
            host: cluster.map(|c| c.host),
            network,
            endpoints: joined,
            remote,
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
        self.remove_row_and_kernel(network, true).await
    }

    /// Removes a global network that left the cluster from this host only.
    pub(super) async fn remove_local(&self, network: &Network) -> Result<()> {
        self.remove_row_and_kernel(network, false).await
    }

    /// `in_cluster`: a global network is removed from the cluster first (which refuses while
    /// another host has endpoints on it, and fails with nothing changed when unreachable).
    async fn remove_row_and_kernel(&self, network: &Network, in_cluster: bool) -> Result<()> {
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
        if in_cluster && network.scope == super::cluster::GLOBAL {
            Box::pin(self.remove_global(network)).await?;
        }
        // Kernel first, row last: a crash in between leaves the row, and start-up restores
        // the kernel objects and rules, so the network is wholly there and removing it again
        // works.
        let driver = driver::of(network)?;
        let journaled = Op::RemoveNetwork {
            driver: network.driver.clone(),
        };
        let cutting = self.reaper.cutting();
        let op = self.journal(&network.id, &journaled).await?;
        crash::point("network.remove.journaled");
        // Both wait on the kernel (an nf_tables commit, an RCU grace period), not the CPU:
        // side by side they cost one wait instead of two.
        let remove = driver.doom(self.driver_env(), &network.id, &network.driver_state);
        let ((), removed) = tokio::join!(self.firewall_remove(network), remove);
        crash::point("network.remove.firewall");
        if let Err(e) = removed {
            // Put the rules back: the network stays, whole.
            if let Err(again) = self.firewall_add(network).await {
                tracing::error!(network = %network.id, error = %again, "cannot restore firewall rules");
            }
            self.store.end_op(op).await?;
            return Err(e);
        }
        crash::point("network.remove.bridge");
        self.store.delete_network(&network.id).await?;
        crash::point("network.remove.row");
        self.store.end_op(op).await?;
        self.reaper.wake();
        drop(cutting);
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

    fn create(name: &str, driver: &str, options: &[(&str, &str)]) -> CreateNetwork {
        CreateNetwork {
            name: name.to_string(),
            driver: driver.to_string(),
            options: opts(options),
            ..CreateNetwork::default()
        }
    }

    fn refusal(req: &CreateNetwork, taken: bool, kinds: &LinkKinds) -> String {
        match check_create(req, taken, kinds) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn create_checks_run_in_dockers_order() {
        let all = LinkKinds::assume_all();
        assert_eq!(
            refusal(&create("host", "nope", &[]), true, &all),
            "operation is not permitted on predefined host network "
        );
        assert_eq!(
            refusal(&create(" ", "nope", &[]), true, &all),
            "invalid name: name is empty"
        );
        assert_eq!(
            refusal(&create("a", "nope", &[]), true, &all),
            "network with name a already exists"
        );
        assert_eq!(
            refusal(&create("a", "nope", &[]), false, &all),
            "plugin \"nope\" not found"
        );
        assert_eq!(
            refusal(&create("a", "null", &[]), false, &all),
            "only one instance of \"null\" network is allowed"
        );
        assert_eq!(
            refusal(&create("a", "", &[(OPT_ENABLE_IPV6, "x")]), false, &all),
            "driver-opt \"com.docker.network.enable_ipv6\" is not a valid bool"
        );
        let c = check_create(&create("a", "", &[]), false, &all).unwrap();
        assert_eq!(c.driver.name(), "bridge");
        assert!(c.enable_ipv4 && !c.enable_ipv6);
    }

    #[test]
    fn drivers_whose_link_kind_is_missing_are_refused_naming_it() {
        let here = LinkKinds::from_names(["bridge", "veth", "macvlan", "vxlan"]);
        let e = refusal(&create("a", "ipvlan", &[]), false, &here);
        assert!(e.contains("IP-VLAN") && e.contains("\"ipvlan\""), "{e}");
        let bare = LinkKinds::from_names(["bridge", "veth"]);
        let e = refusal(&create("a", "macvlan", &[]), false, &bare);
        assert!(e.contains("MAC-VLAN"), "{e}");
        assert!(check_create(&create("a", "macvlan", &[]), false, &here).is_ok());
        let e = refusal(
            &create("a", "macvlan", &[("macvlan_mode", "l2")]),
            false,
            &here,
        );
        assert!(
            e.starts_with("requested macvlan mode 'l2' is not valid"),
            "{e}"
        );
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
