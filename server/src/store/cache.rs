//! The networks table, held in memory as well.
//!
//! netbridge is the only writer of its database and a network row never changes after it is
//! written, so a copy kept beside the two statements that write it (insert and delete) cannot
//! drift. Reads that every request makes (look-up by ID, name or prefix, the list, the subnets
//! a new network must avoid) then cost a map look-up instead of SQL round trips, and stay
//! flat as networks pile up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::ipam::Cidr;
use crate::model::Network;

#[derive(Default)]
pub(super) struct Networks {
    /// By ID; ordered, so an ID prefix is a range.
    by_id: BTreeMap<String, Arc<Network>>,
    /// By name; ordered, which is the order of the list.
    by_name: BTreeMap<String, Arc<Network>>,
    /// Kernel bridge name to network ID.
    by_bridge: HashMap<String, String>,
}

impl Networks {
    pub(super) fn new(all: Vec<Network>) -> Networks {
        let mut index = Networks::default();
        for n in all {
            index.insert(n);
        }
        index
    }

    pub(super) fn insert(&mut self, n: Network) {
        let n = Arc::new(n);
        if let Some(bridge) = &n.bridge {
            self.by_bridge.insert(bridge.clone(), n.id.clone());
        }
        self.by_name.insert(n.name.clone(), n.clone());
        self.by_id.insert(n.id.clone(), n);
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(n) = self.by_id.remove(id) {
            self.by_name.remove(&n.name);
            if let Some(bridge) = &n.bridge {
                self.by_bridge.remove(bridge);
            }
        }
    }

    pub(super) fn by_id(&self, id: &str) -> Option<Network> {
        self.by_id.get(id).map(|n| Network::clone(n))
    }

    pub(super) fn by_name(&self, name: &str) -> Option<Network> {
        self.by_name.get(name).map(|n| Network::clone(n))
    }

    pub(super) fn id_with_bridge(&self, bridge: &str) -> Option<String> {
        self.by_bridge.get(bridge).cloned()
    }

    /// Up to `limit` IDs starting with `prefix`.
    pub(super) fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<String> {
        self.by_id
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(id, _)| id.starts_with(prefix))
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every network, by name.
    pub(super) fn all(&self) -> Vec<Arc<Network>> {
        self.by_name.values().cloned().collect()
    }

    pub(super) fn subnets(&self) -> Vec<Cidr> {
        self.by_id
            .values()
            .flat_map(|n| n.ipam.iter().map(|cfg| cfg.subnet))
            .collect()
    }
}
