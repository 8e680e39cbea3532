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

impl Daemon {
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
