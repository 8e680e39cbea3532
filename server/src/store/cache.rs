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
    pub(super) names: Names,
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
        self.change(id, |e| e.ifname = ifname.to_string());
    }

    pub(super) fn change(&mut self, id: &str, f: impl FnOnce(&mut Endpoint)) {
        if let Some(ById(e)) = self.by_id.get(id) {
            let mut changed = Endpoint::clone(e);
            f(&mut changed);
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

/// An endpoint that holds a name, with what an answer needs.
#[derive(Clone, Debug)]
struct Holder {
    endpoint: Arc<str>,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
}

/// The names containers answer to on user-defined networks (the predefined `bridge` has none,
/// as in Docker), lowercased, so a DNS query is one map look-up per network of the asker.
#[derive(Default)]
pub(super) struct Names {
    /// Network ID → name → the endpoints holding it, oldest first.
    by_network: HashMap<String, HashMap<Arc<str>, Vec<Holder>>>,
    /// Endpoint ID → its network and the names it holds, to take them away again.
    held: HashMap<Arc<str>, (String, Vec<Arc<str>>)>,
    /// Name → how many endpoints hold it on any network (is it someone's name at all?). Its
    /// key is the one string all three maps share.
    anywhere: HashMap<Arc<str>, usize>,
}

impl Names {
    fn add(&mut self, e: &Endpoint, names: Vec<String>) {
        self.remove(&e.id);
        let endpoint: Arc<str> = Arc::from(e.id.as_str());
        let holder = Holder {
            endpoint: endpoint.clone(),
            ipv4: e.ipv4,
            ipv6: e.ipv6,
        };
        let mut lowered: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        lowered.sort();
        lowered.dedup();
        // One allocation per distinct name, shared by every map and endpoint that holds it.
        let keys: Vec<Arc<str>> = lowered
            .into_iter()
            .map(|n| match self.anywhere.get_key_value(n.as_str()) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(n),
            })
            .collect();
        let table = self.by_network.entry(e.network_id.clone()).or_default();
        for key in &keys {
            // Most names have one holder: no room for four (Vec's first growth).
            table
                .entry(key.clone())
                .or_insert_with(|| Vec::with_capacity(1))
                .push(holder.clone());
            *self.anywhere.entry(key.clone()).or_default() += 1;
        }
        self.held.insert(endpoint, (e.network_id.clone(), keys));
    }

    fn remove(&mut self, endpoint: &str) {
        let Some((network, keys)) = self.held.remove(endpoint) else {
            return;
        };
        let Some(table) = self.by_network.get_mut(&network) else {
            return;
        };
        for key in keys {
            if let Some(count) = self.anywhere.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.anywhere.remove(&key);
                }
            }
            if let Some(holders) = table.get_mut(&key) {
                holders.retain(|h| &*h.endpoint != endpoint);
                if holders.is_empty() {
                    table.remove(&key);
                }
            }
        }
        if table.is_empty() {
            self.by_network.remove(&network);
        }
    }

    fn holders(&self, network: &str, name: &str) -> Option<&[Holder]> {
        self.by_network.get(network)?.get(name).map(Vec::as_slice)
    }

    fn held_anywhere(&self, name: &str) -> bool {
        self.anywhere.contains_key(name)
    }
}

impl Tables {
    /// Indexes every endpoint's names; after loading the tables.
    pub(super) fn index_names(&mut self) {
        let all: Vec<Endpoint> = self.endpoints.all();
        for e in &all {
            self.index_endpoint_names(e);
        }
    }

    pub(super) fn insert_endpoint(&mut self, e: Endpoint) {
        self.index_endpoint_names(&e);
        self.endpoints.insert(e);
    }

    pub(super) fn remove_endpoint(&mut self, id: &str) {
        self.names.remove(id);
        self.endpoints.remove(id);
    }

    fn index_endpoint_names(&mut self, e: &Endpoint) {
        let user_defined = self
            .networks
            .by_id
            .get(&e.network_id)
            .is_some_and(|n| !n.builtin);
        match self.containers.by_id.get(&e.container_id) {
            Some(c) if user_defined => self.names.add(e, crate::model::dns_names(c, e)),
            _ => self.names.remove(&e.id),
        }
    }

    /// The user-defined networks `container` is on, oldest endpoint first, optionally only the
    /// one whose lowercased name is `network`.
    fn user_networks_of<'a>(
        &'a self,
        container: &str,
        network: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Network>> + 'a {
        self.endpoints
            .by_container
            .get(container)
            .into_iter()
            .flatten()
            .filter_map(|e| self.networks.by_id.get(&e.network_id))
            .filter(|n| !n.builtin)
            .filter(move |n| network.is_none_or(|want| n.name.eq_ignore_ascii_case(want)))
    }

    /// The IDs of the user-defined networks `container` is on (or only `network`).
    pub(super) fn user_network_ids(&self, container: &str, network: Option<&str>) -> Vec<String> {
        self.user_networks_of(container, network)
            .map(|n| n.id.clone())
            .collect()
    }

    /// The addresses `name` (lowercase) stands for to `container`, on the networks it shares
    /// with the name's holders (or only on `network`); `None` if it is no name there.
    pub(super) fn resolve_name(
        &self,
        container: &str,
        name: &str,
        network: Option<&str>,
    ) -> Option<Vec<IpAddr>> {
        let mut found = false;
        let mut addresses = Vec::new();
        for n in self.user_networks_of(container, network) {
            for h in self.names.holders(&n.id, name).unwrap_or_default() {
                found = true;
                for ip in [h.ipv4, h.ipv6].into_iter().flatten() {
                    if !addresses.contains(&ip) {
                        addresses.push(ip);
                    }
                }
            }
        }
        found.then_some(addresses)
    }

    pub(super) fn name_held_anywhere(&self, name: &str) -> bool {
        self.names.held_anywhere(name)
    }

    /// Whose address `ip` is on the user-defined networks `container` is on: Docker's
    /// `<container name>.<network name>`.
    pub(super) fn reverse_name(&self, container: &str, ip: IpAddr) -> Option<String> {
        self.user_networks_of(container, None).find_map(|n| {
            let e = self
                .endpoints
                .by_network
                .get(&n.id)?
                .iter()
                .find(|e| e.ipv4 == Some(ip) || e.ipv6 == Some(ip))?;
            let owner = self.containers.by_id.get(&e.container_id)?;
            Some(format!("{}.{}", owner.name, n.name))
        })
    }

    /// Whether a container has an endpoint on a user-defined network (then it has a resolver).
    pub(super) fn on_user_network(&self, container: &str) -> bool {
        self.user_networks_of(container, None).next().is_some()
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

    fn network(id: &str, name: &str, builtin: bool) -> Network {
        Network {
            id: id.to_string(),
            name: name.to_string(),
            driver: "bridge".to_string(),
            scope: "local".to_string(),
            created_nanos: 0,
            enable_ipv4: true,
            enable_ipv6: false,
            internal: false,
            attachable: false,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin,
            link: None,
            driver_state: serde_json::Value::Null,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            ipam_driver: "default".to_string(),
            ipam_options: None,
            ipam: Vec::new(),
        }
    }

    #[test]
    fn names_are_scoped_to_shared_user_defined_networks() {
        let mut t = Tables::default();
        t.networks.insert(network("n1", "front", false));
        t.networks.insert(network("n2", "back", false));
        t.networks.insert(network("nb", "bridge", true));
        for (id, name) in [("c1aaaaaaaaaaaa", "one"), ("c2bbbbbbbbbbbb", "two")] {
            t.containers.insert(Container {
                id: id.to_string(),
                name: name.to_string(),
                kind: ContainerKind::Sandbox,
                netns_path: format!("/run/netns/{name}"),
                namespace: crate::model::UNKNOWN_NAMESPACE,
                created_nanos: 0,
            });
        }
        t.insert_endpoint(endpoint("e1", "n1", "c1aaaaaaaaaaaa", 1, "10.0.0.2"));
        let mut web = endpoint("e2", "n1", "c2bbbbbbbbbbbb", 2, "10.0.0.3");
        web.aliases = vec!["Web".to_string()];
        t.insert_endpoint(web);
        t.insert_endpoint(endpoint("e3", "nb", "c1aaaaaaaaaaaa", 3, "172.17.0.2"));
        t.insert_endpoint(endpoint("e4", "nb", "c2bbbbbbbbbbbb", 4, "172.17.0.3"));
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];

        assert_eq!(
            t.resolve_name("c1aaaaaaaaaaaa", "web", None),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            t.resolve_name("c1aaaaaaaaaaaa", "c2bbbbbbbbbb", None),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            t.resolve_name("c1aaaaaaaaaaaa", "two", Some("FRONT")),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(t.resolve_name("c1aaaaaaaaaaaa", "two", Some("back")), None);
        assert_eq!(
            t.reverse_name("c1aaaaaaaaaaaa", "10.0.0.3".parse().unwrap())
                .as_deref(),
            Some("two.front")
        );
        // The predefined bridge holds no names.
        assert!(
            t.reverse_name("c1aaaaaaaaaaaa", "172.17.0.3".parse().unwrap())
                .is_none()
        );

        t.remove_endpoint("e1");
        assert!(!t.on_user_network("c1aaaaaaaaaaaa"));
        assert_eq!(t.resolve_name("c1aaaaaaaaaaaa", "web", None), None);
        assert!(t.name_held_anywhere("web"));
        t.remove_endpoint("e2");
        assert!(!t.name_held_anywhere("web"));
        assert!(t.names.by_network.is_empty() && t.names.anywhere.is_empty());
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
