//! Reconcile: after a crash (at every start-up) or on demand, roll back every operation the
//! journal shows as cut short, then bring the kernel in line with the store, which is the truth.
//! Only objects carrying netbridge's mark (the link alias `netbridge:<id>`) or named by the
//! journal are ever removed. A second run repairs nothing.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::containers::{create_netns, delete_netns};
use super::{Daemon, Result};
use crate::kernel::{Attachment, Ensured, LinkInfo};
use crate::model::{self, ContainerKind, Endpoint, Network, UNKNOWN_NAMESPACE};
use crate::store::JournalEntry;

/// The alias prefix that marks a link as netbridge's.
pub const MARK: &str = "netbridge:";

impl Daemon {
    /// Repairs whatever a crash left and returns one line per repair (empty when all was well).
    /// Waits for every operation in flight, and holds them off while it runs.
    pub async fn reconcile(&self) -> Result<Vec<String>> {
        let _exclusive = self.exclusive.write().await;
        let mut repairs = Vec::new();
        self.roll_back_lifecycle(&mut repairs).await?;
        for entry in self.store.unfinished_ops().await? {
            self.roll_back(&entry, &mut repairs).await?;
            self.store.end_op(entry.id).await?;
        }
        self.sync_kernel(&mut repairs).await?;
        if let Err(e) = self.firewall_apply_all().await {
            tracing::error!(error = %e, "cannot apply the firewall rules");
            repairs.push(format!("firewall could not be applied: {e}"));
        }
        for r in &repairs {
            tracing::warn!(repair = %r, "reconcile");
        }
        crate::memory::give_back();
        Ok(repairs)
    }

    /// Undoes one interrupted operation. Creates are undone; removals were ordered so that what
    /// is left (the row) is restored by the kernel sync that follows.
    async fn roll_back(&self, entry: &JournalEntry, repairs: &mut Vec<String>) -> Result<()> {
        let text = |key: &str| {
            entry
                .detail
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        match entry.op.as_str() {
            "create_network" => {
                if let Some(n) = self.store.network(&entry.subject).await? {
                    for e in self.store.endpoints_of_network(&n.id).await? {
                        let _ = self.kernel.detach(&e.host_ifname).await;
                        self.store.delete_endpoint(&e.id).await?;
                    }
                    self.firewall_remove(&n).await;
                    self.store.delete_network(&n.id).await?;
                }
                let adopted = entry
                    .detail
                    .get("adopted")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if let Some(bridge) = text("bridge").filter(|_| !adopted)
                    && self.kernel.delete_link(&bridge).await.unwrap_or(false)
                {
                    repairs.push(format!(
                        "interrupted create of network {}: bridge {bridge} removed",
                        entry.subject
                    ));
                }
                repairs.push(format!(
                    "interrupted create of network {} rolled back",
                    entry.subject
                ));
            }
            "connect" => {
                if let Some(host) = text("host_ifname") {
                    let _ = self.kernel.detach(&host).await;
                }
                self.store.delete_endpoint(&entry.subject).await?;
                if let Some(c) = text("container") {
                    self.forget_unused_namespace(&c).await?;
                }
                repairs.push(format!(
                    "interrupted connect of endpoint {} rolled back",
                    entry.subject
                ));
            }
            "create_sandbox" => {
                self.store.delete_container(&entry.subject).await?;
                if let Some(name) = text("name") {
                    let _ = delete_netns(&self.settings.netns_dir, &name).await;
                }
                repairs.push(format!(
                    "interrupted create of sandbox {} rolled back",
                    entry.subject
                ));
            }
            "remove_sandbox" => {
                // Row gone: the removal had finished but for its journal entry.
                if self.store.container(&entry.subject).await?.is_none()
                    && text("kind").as_deref() == Some("sandbox")
                    && let Some(name) = text("name")
                {
                    let _ = delete_netns(&self.settings.netns_dir, &name).await;
                }
                repairs.push(format!(
                    "interrupted removal of sandbox {} settled",
                    entry.subject
                ));
            }
            // remove_network, disconnect: the row still stands, or the work was done; the
            // kernel sync below puts back what the row needs.
            other => {
                repairs.push(format!("interrupted {other} of {} settled", entry.subject));
            }
        }
        Ok(())
    }

    /// Brings the kernel in line with the store: bridges, sandboxes' namespaces, endpoints'
    /// veths; removes marked links no row claims; drops endpoints whose namespace is gone.
    async fn sync_kernel(&self, repairs: &mut Vec<String>) -> Result<()> {
        let networks = self.store.networks().await?;

        // Bridges of every network, all checked against one dump of links and addresses.
        let (owners, specs): (Vec<&Arc<Network>>, Vec<_>) = networks
            .iter()
            .filter_map(|n| Some((n, super::networks::bridge_spec(n)?)))
            .unzip();
        let ensured = self
            .kernel
            .ensure_bridges(specs)
            .await
            .map_err(super::Error::kernel("checking bridges"))?;
        for (n, result) in owners.iter().zip(ensured) {
            let bridge = n.bridge.as_deref().unwrap_or_default();
            match result {
                Ok(Ensured::Created) => {
                    repairs.push(format!("bridge {bridge} of network {} re-created", n.name))
                }
                Ok(Ensured::Existed) => {}
                Err(e) => repairs.push(format!(
                    "bridge {bridge} of network {} could not be made: {e}",
                    n.name
                )),
            }
        }
        let mut links = self.kernel.links().await?;

        // Marked links that no row claims.
        let network_ids: HashSet<&str> = networks.iter().map(|n| n.id.as_str()).collect();
        let endpoints = self.store.endpoints().await?;
        let endpoint_ids: HashSet<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
        let mut removed = HashSet::new();
        for l in &links {
            let Some(owner) = l.alias.as_deref().and_then(|a| a.strip_prefix(MARK)) else {
                continue;
            };
            let orphan = match l.kind.as_deref() {
                Some("bridge") => !network_ids.contains(owner),
                Some("veth") => !endpoint_ids.contains(owner),
                _ => false,
            };
            if orphan && self.kernel.delete_link(&l.name).await.unwrap_or(false) {
                removed.insert(l.name.clone());
                repairs.push(format!(
                    "{} {} left by a crash removed",
                    l.kind.as_deref().unwrap_or("link"),
                    l.name
                ));
            }
        }
        // Ports of a removed bridge stay, unenslaved; no endpoint counts on them.
        links.retain(|l| !removed.contains(&l.name));

        // Sandboxes' namespaces. A re-created namespace is empty: its endpoints must be
        // attached again even if an old host end still lingers while the kernel tears the old
        // namespace down.
        let mut recreated = HashSet::new();
        for c in self.store.containers().await? {
            if let Some(ns) = self.open_namespace(&c).await {
                if c.namespace == UNKNOWN_NAMESPACE
                    && let Ok(id) = ns.id()
                {
                    // A row from before identities were stored.
                    self.store
                        .set_container_namespace(&c.id, &c.netns_path, id)
                        .await?;
                }
                continue;
            }
            if c.kind == ContainerKind::Sandbox {
                let dir = &self.settings.netns_dir;
                let _ = delete_netns(dir, &c.name).await;
                match create_netns(dir, &c.name).await {
                    Ok(id) => {
                        self.store
                            .set_container_namespace(&c.id, &c.netns_path, id)
                            .await?;
                        recreated.insert(c.id.clone());
                        repairs.push(format!("namespace of sandbox {} re-created", c.name));
                    }
                    Err(e) => repairs.push(format!(
                        "namespace of sandbox {} could not be made: {e}",
                        c.name
                    )),
                }
            }
        }

        // Endpoints whose namespace is gone (or going: `ip netns del` removes the name at once,
        // the kernel tears the namespace down later) are dropped and their addresses freed.
        let mut gone = HashSet::new();
        for c in self.store.containers().await? {
            if self.open_namespace(&c).await.is_none() {
                gone.insert(c.id);
            }
        }
        let mut endpoints = endpoints;
        for e in endpoints.iter().filter(|e| gone.contains(&e.container_id)) {
            let _ = self.kernel.detach(&e.host_ifname).await;
            self.store.delete_endpoint(&e.id).await?;
            repairs.push(format!(
                "endpoint {} dropped: its namespace is gone",
                &e.id[..12]
            ));
        }
        endpoints.retain(|e| !gone.contains(&e.container_id));

        // Endpoints' veths.
        let by_name: HashMap<&str, &LinkInfo> =
            links.iter().map(|l| (l.name.as_str(), l)).collect();
        let by_id: HashMap<&str, &Network> =
            networks.iter().map(|n| (n.id.as_str(), &**n)).collect();
        let mut touched = HashSet::new();
        for e in &endpoints {
            let Some(n) = by_id.get(e.network_id.as_str()) else {
                continue;
            };
            let bridge_index = n
                .bridge
                .as_deref()
                .and_then(|b| by_name.get(b))
                .map(|l| l.index);
            let host = by_name.get(e.host_ifname.as_str());
            let healthy = matches!((host, bridge_index), (Some(l), Some(b)) if l.kind.as_deref() == Some("veth") && l.master == Some(b));
            if healthy && !e.ifname.is_empty() && !recreated.contains(&e.container_id) {
                continue;
            }
            touched.insert(e.container_id.clone());
            self.repair_endpoint(e, n, bridge_index, host.is_some(), repairs)
                .await?;
        }
        for container_id in touched {
            if let Some(c) = self.store.container(&container_id).await? {
                self.rehome_gateway(&c).await;
            }
        }
        // Namespaces netbridge did not make are recorded only while they have endpoints.
        for c in self.store.containers().await? {
            if c.kind != ContainerKind::Sandbox {
                self.forget_unused_namespace(&c.id).await?;
            }
        }
        Ok(())
    }

    /// Re-attaches an endpoint whose veth is missing or wrong, or drops it when its namespace
    /// is gone (its address is then free again).
    async fn repair_endpoint(
        &self,
        e: &Endpoint,
        n: &Network,
        bridge_index: Option<u32>,
        host_present: bool,
        repairs: &mut Vec<String>,
    ) -> Result<()> {
        let ns = match self.store.container(&e.container_id).await? {
            Some(c) => self.open_namespace(&c).await,
            None => None,
        };
        let (Some(ns), Some(bridge_index)) = (ns, bridge_index) else {
            if host_present {
                let _ = self.kernel.detach(&e.host_ifname).await;
            }
            self.store.delete_endpoint(&e.id).await?;
            repairs.push(format!(
                "endpoint {} on network {} dropped: its namespace is gone",
                &e.id[..12],
                n.name
            ));
            return Ok(());
        };
        if host_present {
            let _ = self.kernel.detach(&e.host_ifname).await;
        }
        let mut addresses: Vec<(IpAddr, u8)> = [(e.ipv4, n.ipv4()), (e.ipv6, n.ipv6())]
            .into_iter()
            .filter_map(|(ip, cfg)| Some((ip?, cfg?.subnet.prefix)))
            .collect();
        addresses.extend(super::endpoints::link_local_addresses(e));
        let attachment = Attachment {
            host_name: e.host_ifname.clone(),
            container_name: (!e.ifname.is_empty()).then(|| e.ifname.clone()),
            bridge_index,
            mtu: n.mtu,
            mac: model::parse_mac(&e.mac).unwrap_or_else(model::random_mac),
            alias: format!("{MARK}{}", e.id),
            addresses,
            sysctls: super::endpoints::recorded_sysctls(e),
            gateway_v4: None,
            gateway_v6: None,
        };
        match self.kernel.attach(&ns, &attachment).await {
            Ok((ifname, _)) => {
                if ifname != e.ifname {
                    self.store.set_endpoint_ifname(&e.id, &ifname).await?;
                }
                repairs.push(format!(
                    "endpoint {} on network {} re-attached",
                    &e.id[..12],
                    n.name
                ));
            }
            Err(err) => {
                self.store.delete_endpoint(&e.id).await?;
                repairs.push(format!(
                    "endpoint {} on network {} dropped: cannot re-attach: {err}",
                    &e.id[..12],
                    n.name
                ));
            }
        }
        Ok(())
    }
}
