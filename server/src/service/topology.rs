//! The whole picture in one read: every network, container and endpoint, so a dashboard draws
//! the host from one request instead of one per network.

use std::sync::Arc;

use super::{Daemon, Result};
use crate::model::{Container, Endpoint, Network};

/// Networks, containers and the endpoints that join them, as the store holds them now.
pub struct Topology {
    pub networks: Vec<Arc<Network>>,
    pub containers: Vec<Container>,
    pub endpoints: Vec<Endpoint>,
}

impl Daemon {
    /// `GET /netbridge/topology`.
    pub async fn topology(&self) -> Result<Topology> {
        Ok(Topology {
            networks: self.store.networks().await?,
            containers: self.store.containers().await?,
            endpoints: self.store.endpoints().await?,
        })
    }
}
