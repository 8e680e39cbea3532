//! What readers get: facts derived from the records (DNS names, counts) are computed here,
//! once, rather than by each reader (the HTTP layer only shapes them into Docker's JSON).

use super::{ContainerView, Daemon, Result};
use crate::model::Endpoint;

impl ContainerView {
    /// The names the container answers to on an endpoint's network, in Docker's order: its
    /// name, the endpoint's aliases, its short ID.
    pub fn dns_names(&self, e: &Endpoint) -> Vec<String> {
        crate::model::dns_names(&self.container, e)
    }
}

/// How many of each record the daemon holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub networks: u64,
    pub endpoints: u64,
    pub containers: u64,
}

/// One network driver, as this daemon on this kernel can offer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverStatus {
    pub name: String,
    /// Networks of it can be created here.
    pub available: bool,
    /// Why not: the kernel feature it lacks, or that netbridge has no such driver.
    pub reason: Option<String>,
}

impl Daemon {
    /// The network drivers, each with whether it can be used on this kernel.
    pub fn drivers(&self) -> Vec<DriverStatus> {
        let kinds = self.link_kinds();
        super::driver::availability(kinds)
            .into_iter()
            .map(|(name, missing)| {
                let implemented = super::driver::find(name).is_some();
                let reason = match (missing, implemented) {
                    (Some(kind), _) => Some(format!(
                        "the kernel lacks {} (link kind \"{kind}\")",
                        super::driver::kind_feature(kind)
                    )),
                    (None, false) => Some("not implemented by netbridge".to_string()),
                    (None, true) => None,
                };
                DriverStatus {
                    name: name.to_string(),
                    available: reason.is_none(),
                    reason,
                }
            })
            .collect()
    }

    /// Networks, endpoints and containers in the store (the metrics' gauges).
    pub async fn counts(&self) -> Result<Counts> {
        let (networks, endpoints, containers) = self.store.counts().await?;
        Ok(Counts {
            networks,
            endpoints,
            containers,
        })
    }
}
