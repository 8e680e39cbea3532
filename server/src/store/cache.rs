//! The tables, held in memory as well.
//!
//! netbridge is the only writer of its database, so a copy updated right after each statement
//! that writes a row (and only when that statement succeeded) cannot drift. SQLite stays the
//! truth that survives a crash and the judge of uniqueness (names, addresses); reads that every
//! request makes (look-ups by ID, name or prefix, lists, the addresses taken on a network)
//! cost a map look-up instead of a round trip to SQLite's thread, and stay flat as networks
//! and endpoints pile up.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::ipam::Cidr;
use crate::kernel::NamespaceId;
use crate::model::{Container, Endpoint, Network, UNKNOWN_NAMESPACE};

/// Everything in memory, under one lock.
#[derive(Default)]
pub(super) struct Tables {
    pub(super) networks: Networks,
    pub(super) containers: Containers,
    pub(super) endpoints: Endpoints,
}

#[derive(Default)]
pub(super) struct Networks {
    /// By ID; ordered, so an ID prefix is a range.
    by_id: BTreeMap<String, Arc<Network>>,
    /// By name; ordered, which is the order of the list.
    by_name: BTreeMap<String, Arc<Network>>,
    /// Claimed kernel link (bridge, macvlan parent) to network ID.
    by_link: HashMap<String, String>,
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
        if let Some(link) = &n.link {
            self.by_link.insert(link.clone(), n.id.clone());
        }
        self.by_name.insert(n.name.clone(), n.clone());
        self.by_id.insert(n.id.clone(), n);
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(n) = self.by_id.remove(id) {
            self.by_name.remove(&n.name);
            if let Some(link) = &n.link {
                self.by_link.remove(link);
            }
        }
    }

    pub(super) fn by_id(&self, id: &str) -> Option<Network> {
        self.by_id.get(id).map(|n| Network::clone(n))
    }

    pub(super) fn by_name(&self, name: &str) -> Option<Network> {
        self.by_name.get(name).map(|n| Network::clone(n))
    }

    pub(super) fn id_with_link(&self, link: &str) -> Option<String> {
        self.by_link.get(link).cloned()
    }

    /// Up to `limit` IDs starting with `prefix`.
    pub(super) fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<String> {
        keys_with_prefix(&self.by_id, prefix, limit)
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

/// Up to `limit` keys of `map` (IDs) starting with `prefix`. IDs are lowercase hex: any other
/// prefix, or none, matches nothing.
fn keys_with_prefix<V>(map: &BTreeMap<String, V>, prefix: &str, limit: usize) -> Vec<String> {
    let hex = |c: u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
    if prefix.is_empty() || !prefix.bytes().all(hex) {
        return Vec::new();
    }
    map.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    ))
    .take_while(|(key, _)| key.starts_with(prefix))
    .take(limit)
    .map(|(key, _)| key.clone())
    .collect()
}

#[derive(Default)]
pub(super) struct Containers {
    by_id: BTreeMap<String, Arc<Container>>,
    /// Name to ID.
    by_name: HashMap<String, String>,
    /// Namespace identity to ID.
    by_namespace: HashMap<NamespaceId, String>,
}

impl Containers {
    pub(super) fn insert(&mut self, c: Container) {
        self.by_name.insert(c.name.clone(), c.id.clone());
        if c.namespace != UNKNOWN_NAMESPACE {
            self.by_namespace.insert(c.namespace, c.id.clone());
        }
        self.by_id.insert(c.id.clone(), Arc::new(c));
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(c) = self.by_id.remove(id) {
            self.by_name.remove(&c.name);
            if self.by_namespace.get(&c.namespace).is_some_and(|i| i == id) {
                self.by_namespace.remove(&c.namespace);
            }
        }
    }

    pub(super) fn by_id(&self, id: &str) -> Option<Container> {
        self.by_id.get(id).map(|c| Container::clone(c))
    }

    pub(super) fn by_name(&self, name: &str) -> Option<Container> {
        self.by_name.get(name).and_then(|id| self.by_id(id))
    }

    pub(super) fn by_namespace(&self, namespace: NamespaceId) -> Option<Container> {
        self.by_namespace
            .get(&namespace)
            .and_then(|id| self.by_id(id))
    }

    pub(super) fn ids_with_prefix(&self, prefix: &str, limit: usize) -> Vec<String> {
        keys_with_prefix(&self.by_id, prefix, limit)
    }

    /// Every container, oldest first.
    pub(super) fn all(&self) -> Vec<Container> {
        let mut all: Vec<Container> = self.by_id.values().map(|c| Container::clone(c)).collect();
        all.sort_by(|a, b| (a.created_nanos, &a.id).cmp(&(b.created_nanos, &b.id)));
        all
    }
}

/// An endpoint keyed by its ID, so the set needs no second copy of the ID as a key.
struct ById(Arc<Endpoint>);

impl std::hash::Hash for ById {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl std::borrow::Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

/// Endpoints, with a list per network and per container that shares their memory (thousands
/// of them are held). Lists keep the order endpoints were made in.
#[derive(Default)]
pub(super) struct Endpoints {
    by_id: HashSet<ById>,
    by_network: HashMap<String, Vec<Arc<Endpoint>>>,
    by_container: HashMap<String, Vec<Arc<Endpoint>>>,
}

impl Endpoints {
    pub(super) fn insert(&mut self, e: Endpoint) {
        self.remove(&e.id);
        let e = Arc::new(e);
        for (index, owner) in [
            (&mut self.by_network, &e.network_id),
            (&mut self.by_container, &e.container_id),
        ] {
            let list = index.entry(owner.clone()).or_default();
            // Oldest first; endpoints almost always arrive in that order.
            let at = list.partition_point(|x| (x.created_nanos, &x.id) <= (e.created_nanos, &e.id));
            list.insert(at, e.clone());
        }
        self.by_id.insert(ById(e));
    }

    pub(super) fn remove(&mut self, id: &str) {
        let Some(ById(e)) = self.by_id.take(id) else {
            return;
        };
        for (index, owner) in [
            (&mut self.by_network, &e.network_id),
            (&mut self.by_container, &e.container_id),
        ] {
            if let Some(list) = index.get_mut(owner) {
                list.retain(|x| x.id != id);
                if list.is_empty() {
                    index.remove(owner);
                }
            }
        }
    }

    pub(super) fn set_ifname(&mut self, id: &str, ifname: &str) {
        if let Some(ById(e)) = self.by_id.get(id) {
            let mut changed = Endpoint::clone(e);
            changed.ifname = ifname.to_string();
            self.insert(changed);
        }
    }

    fn listed(list: Option<&Vec<Arc<Endpoint>>>) -> Vec<Endpoint> {
        list.into_iter()
            .flatten()
            .map(|e| Endpoint::clone(e))
            .collect()
    }

    pub(super) fn of_network(&self, network_id: &str) -> Vec<Endpoint> {
        Self::listed(self.by_network.get(network_id))
    }

    pub(super) fn of_container(&self, container_id: &str) -> Vec<Endpoint> {
        Self::listed(self.by_container.get(container_id))
    }

    /// Every endpoint, oldest first.
    pub(super) fn all(&self) -> Vec<Endpoint> {
        let mut all: Vec<Endpoint> = self.by_id.iter().map(|e| Endpoint::clone(&e.0)).collect();
        all.sort_by(|a, b| (a.created_nanos, &a.id).cmp(&(b.created_nanos, &b.id)));
        all
    }

    /// How many endpoints one network has, without copying them.
    pub(super) fn count_of_network(&self, network_id: &str) -> usize {
        self.by_network.get(network_id).map_or(0, Vec::len)
    }

    pub(super) fn counts(&self) -> HashMap<String, usize> {
        self.by_network
            .iter()
            .map(|(id, list)| (id.clone(), list.len()))
            .collect()
    }

    /// Addresses held on one network.
    pub(super) fn used_addresses(&self, network_id: &str) -> BTreeSet<IpAddr> {
        self.by_network
            .get(network_id)
            .into_iter()
            .flatten()
            .flat_map(|e| [e.ipv4, e.ipv6])
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerKind;

    fn endpoint(id: &str, network: &str, container: &str, created: i64, ipv4: &str) -> Endpoint {
        Endpoint {
            id: id.to_string(),
            network_id: network.to_string(),
            container_id: container.to_string(),
            host_ifname: format!("veth{id}"),
            ifname: String::new(),
            mac: "02:42:00:00:00:01".to_string(),
            ipv4: ipv4.parse().ok(),
            ipv6: None,
            aliases: Vec::new(),
            gw_priority: 0,
            created_nanos: created,
            requested_ipv4: None,
            requested_ipv6: None,
            link_local_ips: Vec::new(),
            links: Vec::new(),
            driver_opts: Default::default(),
        }
    }

    #[test]
    fn endpoints_are_indexed_by_network_and_container_oldest_first() {
        let mut e = Endpoints::default();
        e.insert(endpoint("b", "n1", "c1", 20, "10.0.0.3"));
        e.insert(endpoint("a", "n1", "c2", 10, "10.0.0.2"));
        e.insert(endpoint("c", "n2", "c1", 30, "10.1.0.2"));
        let ids = |v: Vec<Endpoint>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(e.of_network("n1")), ["a", "b"]);
        assert_eq!(ids(e.of_container("c1")), ["b", "c"]);
        assert_eq!(ids(e.all()), ["a", "b", "c"]);
        assert_eq!(e.counts().get("n1"), Some(&2));
        let used: Vec<String> = e
            .used_addresses("n1")
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(used, ["10.0.0.2", "10.0.0.3"]);

        e.set_ifname("b", "eth1");
        assert_eq!(e.of_container("c1")[0].ifname, "eth1");

        e.remove("b");
        e.remove("missing");
        assert_eq!(ids(e.of_network("n1")), ["a"]);
        assert_eq!(ids(e.of_container("c1")), ["c"]);
        assert!(
            e.used_addresses("n1")
                .iter()
                .all(|a| a.to_string() == "10.0.0.2")
        );
        e.remove("a");
        assert!(e.of_network("n1").is_empty());
        assert_eq!(e.counts().get("n1"), None, "no empty entries linger");
    }

    #[test]
    fn containers_by_id_name_and_prefix() {
        let mut c = Containers::default();
        for (id, name, created) in [("abc1", "one", 2), ("abd2", "two", 1)] {
            c.insert(Container {
                id: id.to_string(),
                name: name.to_string(),
                kind: ContainerKind::Sandbox,
                netns_path: format!("/run/netns/{name}"),
                namespace: NamespaceId {
                    dev: 4,
                    ino: 100 + created as u64,
                },
                created_nanos: created,
            });
        }
        let by_ns = c.by_namespace(NamespaceId { dev: 4, ino: 101 });
        assert_eq!(by_ns.map(|x| x.name), Some("two".to_string()));
        assert_eq!(c.by_name("two").map(|x| x.id), Some("abd2".to_string()));
        assert_eq!(c.ids_with_prefix("ab", 16), ["abc1", "abd2"]);
        assert_eq!(c.ids_with_prefix("abc", 16), ["abc1"]);
        assert!(c.ids_with_prefix("b", 16).is_empty());
        let order: Vec<String> = c.all().into_iter().map(|x| x.name).collect();
        assert_eq!(order, ["two", "one"]);
        c.remove("abc1");
        assert!(c.by_namespace(NamespaceId { dev: 4, ino: 102 }).is_none());
        assert!(c.by_name("one").is_none());
        assert!(c.by_id("abc1").is_none());
    }
}
