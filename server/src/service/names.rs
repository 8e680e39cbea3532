//! Names for the embedded DNS server: what a name means to one container (read from the
//! store's in-memory tables, no SQL), and keeping each container's resolver in step with the
//! networks it is on.
//!
//! A container has a resolver while it is on at least one user-defined network (Docker's rule:
//! the predefined `bridge` has no names). The service decides when; the name server (`dns`)
//! does the listening and the files.

use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::Daemon;
use crate::model::Container;
use crate::store::Store;

/// What the service asks of the name server. Each call is idempotent and carries the state
/// after the change; calls for one container never overlap (they are made under its lock, or
/// under reconcile's exclusive lock).
pub trait NameServer: Send + Sync {
    /// Serves `container` (a listener in its namespace; for a sandbox, its resolv.conf points
    /// there) when `serve`, else stops serving it (a sandbox's resolv.conf then lists the
    /// upstream servers instead).
    /// `dns` is the container's own settings (empty for containers without a create body).
    fn set<'a>(
        &'a self,
        container: &'a Container,
        serve: bool,
        dns: &'a ContainerDns,
    ) -> BoxFuture<'a, ()>;
    /// The container is gone: stops serving it and removes what was written for it.
    fn forget<'a>(&'a self, container: &'a Container) -> BoxFuture<'a, ()>;
    /// Stops serving every container whose ID is not in `live`.
    fn retain<'a>(&'a self, live: &'a [String]) -> BoxFuture<'a, ()>;
}

/// A container's own DNS settings, from its create body (HostConfig.Dns, DnsSearch,
/// DnsOptions): the name server renders them into its resolv.conf, and its resolver forwards
/// to `servers` when there are any, as Docker's does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerDns {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Resolvers opened at once at start-up (each opens on a namespace thread of its own).
const RESOLVERS_AT_ONCE: usize = 8;

/// Read access to the names, for the DNS server. Cheap to clone.
#[derive(Clone)]
pub struct Names {
    store: Store,
    /// Global networks' endpoints on other hosts, when in a cluster.
    cluster: Option<Arc<super::Cluster>>,
}

impl Names {
    /// The addresses a lowercase `name` stands for to `asker` (a container ID) on the
    /// user-defined networks it shares with the name's holders, or only on the one named
    /// `network`; `None` when it is no name there.
    pub fn resolve(&self, asker: &str, name: &str, network: Option<&str>) -> Option<Vec<IpAddr>> {
        let local = self.store.resolve_name(asker, name, network);
        let Some(cluster) = &self.cluster else {
            return local;
        };
        let networks = self.store.user_network_ids(asker, network);
        let remote = cluster.remote_names(&networks, name);
        if remote.is_empty() {
            return local;
        }
        let mut all = local.unwrap_or_default();
        for ip in remote {
            if !all.contains(&ip) {
                all.push(ip);
            }
        }
        Some(all)
    }

    /// Whether a lowercase `name` is a container's name on any user-defined network (here,
    /// or on a global network on another host).
    pub fn held_anywhere(&self, name: &str) -> bool {
        self.store.name_held_anywhere(name)
            || self
                .cluster
                .as_ref()
                .is_some_and(|c| !c.remote_names_anywhere(name).is_empty())
    }

    /// `<container>.<network>` for an address on one of `asker`'s user-defined networks.
    pub fn reverse(&self, asker: &str, ip: IpAddr) -> Option<String> {
        self.store.reverse_name(asker, ip)
    }
}

impl Daemon {
    /// The names, for the DNS server.
    pub fn names(&self) -> Names {
        Names {
            store: self.store.clone(),
            cluster: self.cluster().cloned(),
        }
    }

    /// Installs the name server; before [`Daemon::start`], so start-up opens the resolvers.
    pub fn set_name_server(&self, server: Arc<dyn NameServer>) {
        if self.name_server.set(server).is_err() {
            tracing::warn!("a name server was already installed");
        }
    }

    /// Brings one container's resolver in line with the networks it is on now. The caller
    /// holds the container's lock.
    pub(super) async fn sync_resolver(&self, container: &Container) {
        let Some(server) = self.name_server.get() else {
            return;
        };
        let serve = self.store.on_user_network(&container.id);
        let dns = self.container_dns(&container.id).await;
        server.set(container, serve, &dns).await;
    }

    /// The container's own DNS settings; none for a container without a create body.
    async fn container_dns(&self, id: &str) -> ContainerDns {
        match self.store.lifecycle(id).await {
            Ok(Some(l)) => super::lifecycle::container_dns(&l.body),
            Ok(None) => ContainerDns::default(),
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "cannot read a container's DNS settings");
                ContainerDns::default()
            }
        }
    }

    /// A removed container's resolver and files go with it.
    pub(super) async fn forget_resolver(&self, container: &Container) {
        let Some(server) = self.name_server.get() else {
            return;
        };
        server.forget(container).await;
    }

    /// [`Daemon::forget_resolver`] for a sandbox whose row is already gone (a removal that a
    /// crash cut short).
    pub(super) async fn forget_sandbox_resolver(&self, id: &str, name: &str) {
        let sandbox = Container {
            id: id.to_string(),
            name: name.to_string(),
            kind: crate::model::ContainerKind::Sandbox,
            netns_path: self.settings.netns_dir.join(name).display().to_string(),
            namespace: crate::model::UNKNOWN_NAMESPACE,
            created_nanos: 0,
        };
        self.forget_resolver(&sandbox).await;
    }

    /// Every container's resolver in line with the store (start-up and reconcile, under the
    /// exclusive lock), several at once.
    pub(super) async fn sync_all_resolvers(&self) {
        let Some(server) = self.name_server.get() else {
            return;
        };
        let containers = match self.store.containers().await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "cannot list containers for their resolvers");
                return;
            }
        };
        let own: std::collections::HashMap<String, ContainerDns> =
            match self.store.lifecycles().await {
                Ok(all) => all
                    .into_iter()
                    .map(|l| (l.container_id, super::lifecycle::container_dns(&l.body)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read containers' DNS settings");
                    Default::default()
                }
            };
        let none = ContainerDns::default();
        let live: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
        server.retain(&live).await;
        futures::stream::iter(&containers)
            .for_each_concurrent(RESOLVERS_AT_ONCE, |c| {
                let dns = own.get(&c.id).unwrap_or(&none);
                server.set(c, self.store.on_user_network(&c.id), dns)
            })
            .await;
    }
}
