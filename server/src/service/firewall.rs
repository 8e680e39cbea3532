//! The service's side of the firewall: the rules each network's driver asks for, applied
//! through the kernel layer's [`Firewall`] on a blocking thread.

use std::sync::Arc;

use super::{Daemon, Error, Result};
use crate::kernel::{Firewall, NetworkRules, PortRule};
use crate::model::Network;

/// A network's rules, as its driver asks for them (`None`: the driver needs none).
fn rules(n: &Network) -> Option<NetworkRules> {
    super::driver::of(n).ok()?.rules(n)
}

async fn blocking<T: Send + 'static>(
    firewall: &Arc<dyn Firewall>,
    work: impl FnOnce(&dyn Firewall) -> std::result::Result<T, crate::kernel::KernelError>
    + Send
    + 'static,
) -> Result<T> {
    let firewall = firewall.clone();
    tokio::task::spawn_blocking(move || work(firewall.as_ref()))
        .await
        .map_err(|e| Error::System(format!("firewall worker failed: {e}")))?
        .map_err(Error::kernel("firewall"))
}

impl Daemon {
    /// Adds a network's firewall elements (isolation, masquerade, ICC).
    pub(super) async fn firewall_add(&self, n: &Network) -> Result<()> {
        let Some(r) = rules(n) else { return Ok(()) };
        let work = blocking(&self.firewall, move |f| f.add_network(&r));
        crate::metrics::timed("nftables", "add_network", work).await
    }

    /// Removes a network's firewall elements; a failure is logged (start-up re-applies all).
    pub(super) async fn firewall_remove(&self, n: &Network) {
        let Some(r) = rules(n) else { return };
        let work = blocking(&self.firewall, move |f| f.remove_network(&r));
        if let Err(e) = crate::metrics::timed("nftables", "remove_network", work).await {
            tracing::warn!(network = %n.id, error = %e, "cannot remove firewall elements");
        }
    }

    /// Published ports changed: `remove` (as added) go, `add` come, in one transaction.
    pub(super) async fn firewall_change_ports(
        &self,
        remove: Vec<PortRule>,
        add: Vec<PortRule>,
    ) -> Result<()> {
        let work = blocking(&self.firewall, move |f| f.change_ports(&remove, &add));
        crate::metrics::timed("nftables", "change_ports", work).await
    }

    /// The published ports made exactly `all`.
    pub(super) async fn firewall_replace_ports(&self, all: Vec<PortRule>) -> Result<()> {
        blocking(&self.firewall, move |f| f.replace_ports(&all)).await
    }

    /// Replaces the whole ruleset with the rules of every network in the store.
    pub(super) async fn firewall_apply_all(&self) -> Result<()> {
        let all: Vec<NetworkRules> = self
            .store
            .networks()
            .await?
            .iter()
            .filter_map(|n| rules(n))
            .collect();
        blocking(&self.firewall, move |f| f.apply_all(&all)).await
    }
}
