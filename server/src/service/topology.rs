//! The whole picture in one read: every network, container and endpoint, so a dashboard draws
//! the host from one request instead of one per network.

use std::sync::Arc;

use super::{Daemon, Lookup, Result};
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

    /// One network's part of the picture: the network, its endpoints and their containers (a
    /// page following events refreshes just the network an event names).
    pub async fn topology_of(&self, term: &str) -> Result<Topology> {
        let network = self.find_network(term, Lookup::Inspect).await?;
        let endpoints = self.store.endpoints_of_network(&network.id).await?;
        let mut containers = Vec::with_capacity(endpoints.len());
        for e in &endpoints {
            if let Some(c) = self.store.container(&e.container_id).await? {
                containers.push(c);
            }
        }
        Ok(Topology {
            networks: vec![Arc::new(network)],
            containers,
            endpoints,
        })
    }
}
