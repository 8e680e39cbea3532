//! Following the cluster: the lease that keeps this host's endpoints alive, and the watch
//! that mirrors global networks and programs remote endpoints. Both outlive etcd outages:
//! the lease is renewed (or a new one granted, and this host's endpoints claimed again), the
//! watch resumes from the revision it last saw.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Cluster, ClusterEndpoint, ClusterEvent, GLOBAL, Snapshot};
use crate::service::Daemon;

/// Pause before trying etcd again after a failure.
const RETRY: Duration = Duration::from_millis(250);

impl Daemon {
    /// Starts following the cluster, if there is one; after start-up.
    pub fn follow_cluster(self: &Arc<Self>) {
        let Some(cluster) = self.cluster().cloned() else {
            return;
        };
        tokio::spawn(self.clone().hold_lease(cluster.clone()));
        tokio::spawn(self.clone().watch_cluster(cluster));
    }

    async fn hold_lease(self: Arc<Self>, cluster: Arc<Cluster>) {
        let ttl = cluster.lease_ttl;
        let beat = Duration::from_millis(ttl * 1000 / 3);
        let mut first = true;
        loop {
            let lease = match cluster.store.grant(ttl).await {
                Ok(id) => id,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot get a cluster lease yet");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            cluster.lease.store(lease, Ordering::Release);
            tracing::info!(lease, ttl, "cluster lease granted");
            self.publish_own(&cluster, lease, first).await;
            first = false;
            let mut fenced = cluster.store.fence_generation();
            let mut published: Option<Vec<String>> = None;
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                // A disconnect that answered 503 may have released its claim after all.
                let generation = cluster.store.fence_generation();
                if generation != fenced {
                    fenced = generation;
                    self.publish_own(&cluster, lease, false).await;
                }
                let subnets = self.local_subnets().await;
                if published.as_ref() != Some(&subnets)
                    && cluster
                        .store
                        .publish_host(cluster.host, &subnets, lease)
                        .await
                        .is_ok()
                {
                    published = Some(subnets);
                }
                tokio::time::sleep(beat.min(RETRY * 4)).await;
                match cluster.store.keep_alive(lease).await {
                    Ok(true) => last_renewal = tokio::time::Instant::now(),
                    Ok(false) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot renew the cluster lease");
                        if last_renewal.elapsed() > Duration::from_secs(ttl) {
                            break;
                        }
                    }
                }
            }
            tracing::warn!(
                lease,
                "cluster lease lost; claiming this host's endpoints again"
            );
            cluster.lease.store(0, Ordering::Release);
        }
    }

    /// The subnets of this host's local networks.
    async fn local_subnets(&self) -> Vec<String> {
        let networks = self.store.networks().await.unwrap_or_default();
        let mut subnets: Vec<String> = networks
            .iter()
            .filter(|n| n.scope != GLOBAL)
            .flat_map(|n| n.ipam.iter().map(|c| c.subnet.to_string()))
            .collect();
        subnets.sort();
        subnets
    }

    /// Makes the cluster hold this host's endpoints of global networks: each local one
    /// claimed under `lease`. At start-up (`release_stale`) each claim of this host without a
    /// local endpoint (a connect cut short by a crash) is released too; later, such a claim is
    /// a connect in flight (claimed, row not yet written), which must keep it. An endpoint
    /// whose address another host took meanwhile (this one was cut off for longer than its
    /// lease) is disconnected here: two containers must not answer for one address.
    async fn publish_own(&self, cluster: &Cluster, lease: i64, release_stale: bool) {
        let lost = self.claim_own(cluster, lease, release_stale).await;
        for (network, container, ip) in lost {
            tracing::error!(network = %network, container = %container, %ip,
                "another host holds this endpoint's address now; disconnecting it here");
            if let Err(e) = self.disconnect(&network, &container, true).await {
                tracing::warn!(network = %network, container = %container, error = %e,
                    "cannot disconnect an endpoint whose address was taken");
            }
        }
    }

    /// [`Daemon::publish_own`]'s claims; returns the endpoints (network, container, address)
    /// whose address another host holds.
    async fn claim_own(
        &self,
        cluster: &Cluster,
        lease: i64,
        release_stale: bool,
    ) -> Vec<(String, String, Ipv4Addr)> {
        let _shared = self.exclusive.read().await;
        let snap = match cluster.store.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster to publish endpoints");
                return Vec::new();
            }
        };
        // Endpoint ID → its claim and its container's ID.
        let mut mine: BTreeMap<String, (ClusterEndpoint, String)> = BTreeMap::new();
        let networks = self.store.networks().await.unwrap_or_default();
        for n in networks.iter().filter(|n| n.scope == GLOBAL) {
            for e in self
                .store
                .endpoints_of_network(&n.id)
                .await
                .unwrap_or_default()
            {
                let Some(IpAddr::V4(ip)) = e.ipv4 else {
                    continue;
                };
                let name = match self.store.container(&e.container_id).await {
                    Ok(Some(c)) => c.name,
                    _ => e.container_id.clone(),
                };
                let claim = ClusterEndpoint {
                    network: n.id.clone(),
                    endpoint: e.id.clone(),
                    ip,
                    mac: e.mac.clone(),
                    host: cluster.host,
                    container: name,
                };
                mine.insert(e.id.clone(), (claim, e.container_id.clone()));
            }
        }
        for stale in snap
            .endpoints
            .iter()
            .filter(|_| release_stale)
            .filter(|c| c.host == cluster.host && !mine.contains_key(&c.endpoint))
        {
            tracing::info!(endpoint = %stale.endpoint, ip = %stale.ip, "releasing a claim no local endpoint holds");
            let _ = cluster
                .store
                .release(&stale.network, stale.ip, &stale.endpoint)
                .await;
        }
        let mut lost = Vec::new();
        for (e, container) in mine.into_values() {
            match cluster.store.republish(&e, lease).await {
                Ok(true) => {}
                Ok(false) => lost.push((e.network, container, e.ip)),
                Err(err) => {
                    tracing::warn!(endpoint = %e.endpoint, error = %err, "cannot publish an endpoint")
                }
            }
        }
        lost
    }

    async fn watch_cluster(self: Arc<Self>, cluster: Arc<Cluster>) {
        let mut revision = 0;
        loop {
            if revision == 0 {
                match cluster.store.snapshot().await {
                    Ok(snap) => {
                        revision = snap.revision;
                        self.apply_snapshot(&cluster, snap).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the cluster yet");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            let mut stream = match cluster.store.watch(revision + 1).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, revision, "cannot watch the cluster");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            while let Some(batch) = stream.recv().await {
                match batch {
                    Ok((_, events)) => {
                        for (rev, event) in events {
                            self.apply_event(&cluster, event).await;
                            revision = revision.max(rev);
                        }
                    }
                    Err(e) => {
                        tracing::info!(error = %e, revision, "cluster watch interrupted; resuming");
                        if e.to_string().contains("compacted") {
                            revision = 0;
                        }
                        break;
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Brings this host in line with a full read of the cluster.
    async fn apply_snapshot(&self, cluster: &Cluster, snap: Snapshot) {
        let old: Vec<ClusterEndpoint> = cluster.view().endpoints.values().cloned().collect();
        {
            let mut view = cluster.view();
            view.networks = snap
                .networks
                .iter()
                .map(|n| (n.id.clone(), n.clone()))
                .collect();
            view.endpoints = snap
                .endpoints
                .iter()
                .map(|e| ((e.network.clone(), e.ip), e.clone()))
                .collect();
            for e in &snap.endpoints {
                view.saw(e);
            }
        }
        for e in old.iter().filter(|e| !snap.endpoints.contains(e)) {
            self.peer_changed(cluster, e, false).await;
        }
        for g in &snap.networks {
            self.mirror_quietly(cluster, g).await;
        }
        let known: Vec<&str> = snap.networks.iter().map(|n| n.id.as_str()).collect();
        for n in self.store.networks().await.unwrap_or_default() {
            if n.scope == GLOBAL && !known.contains(&n.id.as_str()) {
                self.unmirror(cluster, &n.id).await;
            }
        }
    }

    async fn apply_event(&self, cluster: &Cluster, event: ClusterEvent) {
        match event {
            ClusterEvent::Network(g) => {
                cluster.view().networks.insert(g.id.clone(), g.clone());
                self.mirror_quietly(cluster, &g).await;
            }
            ClusterEvent::NetworkGone(id) => {
                cluster.view().networks.remove(&id);
                self.unmirror(cluster, &id).await;
            }
            ClusterEvent::Endpoint(e) => {
                let old = {
                    let mut view = cluster.view();
                    view.saw(&e);
                    view.endpoints.insert((e.network.clone(), e.ip), e.clone())
                };
                if let Some(old) = old.filter(|o| *o != e) {
                    self.peer_changed(cluster, &old, false).await;
                }
                self.peer_changed(cluster, &e, true).await;
            }
            ClusterEvent::EndpointGone { network, ip } => {
                let old = cluster.view().endpoints.remove(&(network, ip));
                if let Some(old) = old {
                    self.peer_changed(cluster, &old, false).await;
                }
            }
        }
    }

    async fn peer_changed(&self, cluster: &Cluster, e: &ClusterEndpoint, add: bool) {
        if e.host == cluster.host {
            return;
        }
        if let Ok(Some(n)) = self.store.network(&e.network).await {
            self.program_peer(&n, e, add).await;
        }
    }

    async fn mirror_quietly(&self, cluster: &Cluster, g: &super::GlobalNetwork) {
        // Same order as a create (shared lock, then the mirror's): never one waiting on the other.
        let _shared = self.exclusive.read().await;
        let _mirror = cluster.mirror.lock().await;
        if let Err(e) = self.mirror_network(cluster, g).await {
            tracing::error!(network = %g.name, error = %e, "cannot mirror a global network");
        }
    }

    /// Removes a global network that left the cluster from this host, unless a local
    /// endpoint still uses it.
    async fn unmirror(&self, cluster: &Cluster, id: &str) {
        let _shared = self.exclusive.read().await;
        let _mirror = cluster.mirror.lock().await;
        let Ok(Some(n)) = self.store.network(id).await else {
            return;
        };
        match self.remove_local(&n).await {
            // This host removed it itself, meanwhile.
            Ok(()) | Err(crate::service::Error::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "cannot remove a global network that left the cluster")
            }
        }
    }
}
