//! Start-up: the predefined networks, and the kernel brought back in line with the store.

use std::collections::BTreeMap;

use super::driver::{BridgeState, OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQUERADE, OPT_MTU};
use super::{Daemon, Error, Result};
use crate::ipam;
use crate::kernel::LinkKinds;
use crate::model::{self, Network};

impl Daemon {
    /// Runs once before the API is served: the predefined networks, then a reconcile that
    /// repairs whatever a crash left. Returns the repairs made.
    pub async fn start(&self) -> Result<Vec<String>> {
        self.probe_link_kinds().await;
        self.ensure_predefined().await?;
        self.reconcile().await
    }

    /// Creates `bridge`, `host` and `none` on first start. The `bridge` network's subnet is the
    /// first free default pool, so beside a Docker whose docker0 holds 172.17.0.0/16 it takes the
    /// next one instead of colliding.
    async fn ensure_predefined(&self) -> Result<()> {
        let _topology = self.topology.lock().await;
        let now = model::now_nanos();
        if self.store.network_by_name("bridge").await?.is_none() {
            let taken = self.store.taken_subnets().await?;
            let reserved = self.reserved_prefixes().await?;
            let cfg = ipam::allocate(&[], true, false, &self.settings.pools, &taken, &reserved)
                .map_err(|e| {
                    Error::System(format!("cannot pick a subnet for the bridge network: {e}"))
                })?;
            let bridge = self.settings.default_bridge.clone();
            let options: BTreeMap<String, String> = [
                ("com.docker.network.bridge.default_bridge", "true"),
                (OPT_ICC, "true"),
                (OPT_MASQUERADE, "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                (OPT_BRIDGE_NAME, bridge.as_str()),
                (OPT_MTU, "1500"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let mut n = predefined("bridge", "bridge", now);
            n.enable_ipv4 = true;
            let state = BridgeState {
                bridge: bridge.clone(),
                adopted: false,
                mtu: Some(1500),
            };
            n.link = Some(bridge);
            n.driver_state = serde_json::to_value(&state).unwrap_or_default();
            n.options = options;
            n.ipam = cfg;
            self.store.insert_network(&n).await?;
            let spec = state.spec(&n);
            self.kernel
                .ensure_bridge(&spec)
                .await
                .map_err(Error::kernel(format!("cannot make bridge {}", spec.name)))?;
            tracing::info!(subnet = %n.ipam.first().map(|c| c.subnet.to_string()).unwrap_or_default(), "created the predefined bridge network");
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if self.store.network_by_name(name).await?.is_none() {
                self.store
                    .insert_network(&predefined(name, driver, now))
                    .await?;
            }
        }
        Ok(())
    }
}

impl Daemon {
    /// Learns which link kinds the kernel offers, so a driver that needs a missing one is
    /// refused up front, naming it. Logged; `GET /info` reports it too.
    async fn probe_link_kinds(&self) {
        let kinds = match tokio::task::spawn_blocking(LinkKinds::probe).await {
            Ok(Ok(kinds)) => kinds,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot probe link kinds; assuming all");
                LinkKinds::assume_all()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot probe link kinds; assuming all");
                LinkKinds::assume_all()
            }
        };
        let offered: Vec<&str> = kinds.names().collect();
        let missing: Vec<&str> = crate::kernel::PROBED_KINDS
            .iter()
            .copied()
            .filter(|k| !kinds.has(k))
            .collect();
        tracing::info!(offered = ?offered, missing = ?missing, "link kinds this kernel offers");
        let _ = self.kinds.set(kinds);
    }
}

fn predefined(name: &str, driver: &str, now: i64) -> Network {
    Network {
        id: model::new_id(),
        name: name.to_string(),
        driver: driver.to_string(),
        scope: "local".to_string(),
        created_nanos: now,
        enable_ipv4: false,
        enable_ipv6: false,
        internal: false,
        attachable: false,
        ingress: false,
        config_only: false,
        config_from: String::new(),
        builtin: true,
        link: None,
        driver_state: serde_json::Value::Null,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        ipam_driver: "default".to_string(),
        // Docker makes its predefined networks without IPAM options: `null` on the wire.
        ipam_options: None,
        ipam: Vec::new(),
    }
}
