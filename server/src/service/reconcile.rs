//! Reconcile: after a crash (at every start-up) or on demand, roll back every operation the
//! journal shows as cut short, then bring the kernel in line with the store, which is the truth.
//! Only objects carrying netbridge's mark (the link alias `netbridge:<id>`) or named by the
//! journal are ever removed. A second run repairs nothing.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::containers::{create_netns, delete_netns};
use super::driver::{self, Attach};
use super::journal::Op;
use super::{Daemon, Result};
use crate::kernel::Gateways;
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
            // A macvlan's disconnect, answered; its entry closes once the reaper has run.
            if self.reaper.holds(entry.id) {
                continue;
            }
            self.roll_back(&entry, &mut repairs).await?;
            self.store.end_op(entry.id).await?;
        }
        // Links cut off before a crash (or not yet reaped) go first, so the check below sees
        // only live links: an endpoint whose row stands but whose veth was cut off is
        // re-attached.
        match self.kernel.reap_doomed().await {
            Ok(true) => tracing::info!("doomed links deleted"),
            Ok(false) => {}
            Err(e) => repairs.push(format!("doomed links could not be deleted: {e}")),
        }
        self.sync_kernel(&mut repairs).await?;
        if let Err(e) = self.firewall_apply_all().await {
            tracing::error!(error = %e, "cannot apply the firewall rules");
            repairs.push(format!("firewall could not be applied: {e}"));
        } else if let Err(e) = self.sync_ports(&mut repairs).await {
            tracing::error!(error = %e, "cannot apply the published ports");
            repairs.push(format!("published ports could not be applied: {e}"));
        }
        for r in &repairs {
            tracing::warn!(repair = %r, "reconcile");
        }
        self.sync_all_resolvers().await;
        crate::memory::give_back();
        Ok(repairs)
    }

    /// Undoes one interrupted operation, as its journal entry says (see `journal::Op`).
    async fn roll_back(&self, entry: &JournalEntry, repairs: &mut Vec<String>) -> Result<()> {
        match Op::read(entry) {
            Some(op) => repairs.extend(op.undo(self, &entry.subject).await?),
            None => repairs.push(format!(
                "interrupted {} of {} left alone: unknown to this build",
                entry.op, entry.subject
            )),
        }
        Ok(())
    }

    /// Brings the kernel in line with the store: bridges, sandboxes' namespaces, endpoints'
    /// veths; removes marked links no row claims; drops endpoints whose namespace is gone.
    async fn sync_kernel(&self, repairs: &mut Vec<String>) -> Result<()> {
        let networks = self.store.networks().await?;

        // Each driver's networks, checked together (one dump for all bridges, say).
        let env = self.driver_env();
        for driver in driver::all() {
            let mine: Vec<&Network> = networks
                .iter()
                .filter(|n| n.driver == driver.name())
                .map(|n| &**n)
                .collect();
            if !mine.is_empty() {
                repairs.extend(driver.ensure(env, &mine).await?);
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
            let orphan = !network_ids.contains(owner)
                && !endpoint_ids.contains(owner)
                && driver::all().any(|d| d.claims(l));
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
            if let Some(n) = networks.iter().find(|n| n.id == e.network_id) {
                let _ = self.detach_endpoint(n, e, None).await;
            }
            self.store.delete_endpoint(&e.id).await?;
            repairs.push(format!(
                "endpoint {} dropped: its namespace is gone",
                &e.id[..12]
            ));
        }
        endpoints.retain(|e| !gone.contains(&e.container_id));

        // Endpoints' kernel objects, as each one's driver checks them.
        let by_id: HashMap<&str, &Network> =
            networks.iter().map(|n| (n.id.as_str(), &**n)).collect();
        let mut touched = HashSet::new();
        for e in &endpoints {
            let Some(n) = by_id.get(e.network_id.as_str()) else {
                continue;
            };
            let Some(c) = self.store.container(&e.container_id).await? else {
                continue;
            };
            let driver = driver::of(n)?;
            // Only a driver whose endpoint lives inside needs the namespace opened to check it.
            let ns = match driver.lives_inside() {
                true => self.open_namespace(&c).await,
                false => None,
            };
            let intact = !recreated.contains(&e.container_id)
                && driver
                    .intact(env, n, e, ns.as_ref(), &links)
                    .await
                    .unwrap_or(false);
            if intact {
                continue;
            }
            touched.insert(e.container_id.clone());
            self.repair_endpoint(e, n, repairs).await?;
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

    /// Re-attaches an endpoint whose kernel objects are missing or wrong, with its recorded
    /// name, MAC, addresses and sysctls, or drops it when that fails (its address is then free
    /// again).
    async fn repair_endpoint(
        &self,
        e: &Endpoint,
        n: &Network,
        repairs: &mut Vec<String>,
    ) -> Result<()> {
        let driver = driver::of(n)?;
        let ns = match self.store.container(&e.container_id).await? {
            Some(c) => self.open_namespace(&c).await,
            None => None,
        };
        let _ = driver
            .detach(self.driver_env(), &e.id, &e.host_ifname, ns.as_ref())
            .await;
        let Some(ns) = ns else {
            self.store.delete_endpoint(&e.id).await?;
            repairs.push(format!(
                "endpoint {} on network {} dropped: its namespace is gone",
                &e.id[..12],
                n.name
            ));
            return Ok(());
        };
        let mut addresses: Vec<(IpAddr, u8)> = [(e.ipv4, n.ipv4()), (e.ipv6, n.ipv6())]
            .into_iter()
            .filter_map(|(ip, cfg)| Some((ip?, cfg?.subnet.prefix)))
            .collect();
        addresses.extend(super::endpoints::link_local_addresses(e));
        let attach = Attach {
            endpoint: e,
            ns: &ns,
            ifname: (!e.ifname.is_empty()).then(|| e.ifname.clone()),
            mac: model::parse_mac(&e.mac).unwrap_or_else(model::random_mac),
            addresses,
            sysctls: super::endpoints::recorded_sysctls(e),
            gateways: Gateways::default(),
        };
        let (go, ready) = tokio::sync::oneshot::channel();
        let _ = go.send(true);
        match driver
            .attach(self.driver_env(), n, attach, ready.into())
            .await
        {
            Ok(ifname) => {
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
