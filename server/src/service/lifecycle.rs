//! Docker's container lifecycle, for networking: a container made with Docker's create body
//! (`docker create`, `docker run -d`) is a sandbox that joins its networks when started and
//! leaves them when stopped, keeping its configuration (and static addresses) in between.
//!
//! Built on the public operations (sandbox create and remove, connect, disconnect): each step
//! below is journaled as a whole, and [`Daemon::roll_back_lifecycle`] finishes or undoes a step
//! that a crash cut short, before the rest of the reconcile runs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::journal::Op;
use super::{ConnectRequest, Daemon, Error, Lookup, Result, crash, forget_lock, lock_in};
use crate::kernel::{remove_netns_etc, write_netns_etc};
use crate::model::{self, Container, ContainerKind, Lifecycle, PlannedEndpoint, RunState};

/// What every route that would need a process says: netbridge has namespaces, not processes.
pub const NO_PROCESSES: &str = "netbridge runs no processes: a container here is only a network namespace. Run commands in it with `ip netns exec <container name> <command>`, and create containers with `docker run -d` or `docker create`";

/// Containers a client attached to and has not started since: netbridge has no output to
/// give them, so the start that follows (`docker run` without `-d`, `docker start -a`) is
/// refused with [`NO_PROCESSES`] rather than leaving the client waiting forever. Kept in
/// memory only, like the attach itself.
fn attached() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static ATTACHED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    ATTACHED.get_or_init(Default::default)
}

/// A create body's DNS settings, for the name server, which writes the container's
/// resolv.conf (the one place it is rendered); unparsable servers (Docker refuses them at
/// create) are skipped.
pub(super) fn container_dns(body: &Value) -> super::ContainerDns {
    let names = NameConfig::of(body);
    super::ContainerDns {
        servers: names.dns.iter().filter_map(|d| d.parse().ok()).collect(),
        search: names.dns_search,
        options: names.dns_options,
    }
}

/// The name-resolution parts of a create body: HostConfig.Dns, DnsSearch, DnsOptions,
/// ExtraHosts and Config.Hostname.
#[derive(Default)]
struct NameConfig {
    hostname: Option<String>,
    dns: Vec<String>,
    dns_search: Vec<String>,
    dns_options: Vec<String>,
    extra_hosts: Vec<String>,
}

impl NameConfig {
    fn of(body: &Value) -> NameConfig {
        let list = |key: &str| -> Vec<String> {
            body.get("HostConfig")
                .and_then(|h| h.get(key))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        NameConfig {
            hostname: body
                .get("Hostname")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            dns: list("Dns"),
            dns_search: list("DnsSearch"),
            dns_options: list("DnsOptions"),
            extra_hosts: list("ExtraHosts"),
        }
    }

    fn is_empty(&self) -> bool {
        self.hostname.is_none()
            && self.dns.is_empty()
            && self.dns_search.is_empty()
            && self.dns_options.is_empty()
            && self.extra_hosts.is_empty()
    }

    /// `hosts` as Docker writes it: the standard entries, ExtraHosts (`name:ip` or
    /// `name=ip`; `host-gateway` is the default bridge's gateway), then the container's own
    /// name at its address once it has one.
    fn hosts(&self, hostname: &str, address: Option<IpAddr>, gateway: Option<&str>) -> String {
        let mut out = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n",
        );
        for entry in &self.extra_hosts {
            let Some((name, ip)) = entry.split_once('=').or_else(|| entry.split_once(':')) else {
                continue;
            };
            let ip = match ip {
                "host-gateway" => gateway.unwrap_or(ip),
                other => other.trim_start_matches('[').trim_end_matches(']'),
            };
            out.push_str(&format!("{ip}\t{name}\n"));
        }
        if let Some(a) = address {
            out.push_str(&format!("{a}\t{hostname}\n"));
        }
        out
    }
}

/// Docker's refusal to connect a container that shares a namespace (`host` mode).
const SHARED_NAMESPACE: &str = "container sharing network namespace with another container or host cannot be connected to any other network";
/// Docker's refusal to connect a `none` container.
const PRIVATE_MODE: &str = "container cannot be connected to multiple networks with one of the networks in private (none) mode";

fn no_such_container(term: &str) -> Error {
    Error::NotFound(format!("No such container: {term}"))
}

/// Exit codes a stopped container reports: as a shell that honours SIGTERM, or one killed.
const EXIT_STOPPED: i64 = 143;
pub(super) const EXIT_KILLED: i64 = 137;

/// `POST /containers/create` with Docker's body, in domain terms.
#[derive(Clone, Debug, Default)]
pub struct CreateContainer {
    pub name: Option<String>,
    /// The body as sent, echoed by inspect.
    pub body: Value,
    /// `HostConfig.NetworkMode` as sent (empty = default).
    pub network_mode: String,
    /// `NetworkingConfig.EndpointsConfig`: network as named → endpoint settings.
    pub endpoints: BTreeMap<String, PlannedEndpoint>,
}

/// What `POST /containers/{id}/wait` waits for (Docker's `condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    NotRunning,
    NextExit,
    Removed,
}

/// How a stop ends a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    Stop,
    Kill,
}

impl Daemon {
    /// `POST /containers/create` with Docker's body: a sandbox that records what to join at
    /// start. Nothing is attached yet.
    pub async fn create_container(&self, req: CreateContainer) -> Result<Container> {
        if !self.allows(ContainerKind::Sandbox) {
            return Err(Error::Forbidden(
                "sandboxes are turned off on this daemon (--container-refs)".to_string(),
            ));
        }
        super::ports::bindings(&req.body)?;
        let (network_mode, networks) = self.plan_networks(&req).await?;
        let _shared = self.exclusive.read().await;
        let name = match req.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => n.strip_prefix('/').unwrap_or(n).to_string(),
            None => format!("sandbox_{}", &model::new_id()[..12]),
        };
        let journaled = Op::CreateContainer { name: name.clone() };
        let op = self.journal(&name, &journaled).await?;
        crash::point("container.create.journaled");
        let container = match self.create_sandbox_shared(Some(&name)).await {
            Ok(c) => c,
            Err(e) => {
                self.store.end_op(op).await?;
                return Err(e);
            }
        };
        crash::point("container.create.sandbox");
        self.write_name_files(&container, &req.body, None).await;
        let record = Lifecycle {
            container_id: container.id.clone(),
            body: req.body,
            network_mode,
            networks,
            state: RunState::Created,
            started_nanos: None,
            finished_nanos: None,
            exit_code: 0,
        };
        if let Err(e) = self.store.insert_lifecycle(&record).await {
            // Undo: the sandbox goes again, so the name is free for a retry.
            if let Err(undo) = self.remove_container_locked(&container).await {
                tracing::error!(container = %container.id, error = %undo, "cannot undo a container create");
            }
            self.store.end_op(op).await?;
            return Err(e.into());
        }
        crash::point("container.create.recorded");
        self.store.end_op(op).await?;
        {
            // Its resolv.conf, now that its DNS settings are recorded.
            let _container = self.lock_container(container.namespace).await;
            self.sync_resolver(&container).await;
        }
        Ok(container)
    }

    /// Docker's reading of NetworkMode and EndpointsConfig: the mode as reported, and the
    /// networks to join at start, the mode's own first.
    async fn plan_networks(&self, req: &CreateContainer) -> Result<(String, Vec<PlannedEndpoint>)> {
        let mut endpoints = req.endpoints.clone();
        let mut mode = req.network_mode.clone();
        if mode.is_empty() || mode == "default" {
            mode = "bridge".to_string();
            if let Some(e) = endpoints.remove("default") {
                endpoints.insert(mode.clone(), e);
            }
        }
        if mode.starts_with("container:") || mode == "container" {
            check_container_mode(&mode, &req.body)?;
            let target = mode.trim_start_matches("container").trim_start_matches(':');
            self.find_recorded_container(target).await?;
            return Err(Error::NotImplemented(format!(
                "network mode {mode} (sharing another container's namespace) is not supported by netbridge: connect both namespaces to one network instead"
            )));
        }
        if mode == "none" || mode == "host" {
            if endpoints.keys().any(|k| *k != mode) {
                let refusal = if mode == "none" {
                    PRIVATE_MODE
                } else {
                    SHARED_NAMESPACE
                };
                return Err(Error::InvalidParameter(refusal.to_string()));
            }
            return Ok((mode, Vec::new()));
        }
        // As on Docker, a network that does not exist (yet) is only an error at start.
        let main = self.find_network(&mode, Lookup::Connect).await.ok();
        match main.as_ref().map(|n| n.driver.as_str()) {
            Some("null") => return Ok(("none".to_string(), Vec::new())),
            Some("host") => return Ok(("host".to_string(), Vec::new())),
            _ => {}
        }
        let mut first = endpoints
            .remove(&mode)
            .or_else(|| main.as_ref().and_then(|n| endpoints.remove(&n.name)))
            .unwrap_or_default();
        first.network = mode.clone();
        let mut planned = vec![first];
        for (term, mut settings) in endpoints {
            settings.network = term;
            planned.push(settings);
        }
        for p in &planned {
            let Ok(n) = self.find_network(&p.network, Lookup::Connect).await else {
                continue;
            };
            if n.driver == "null" || n.driver == "host" {
                return Err(Error::InvalidParameter(SHARED_NAMESPACE.to_string()));
            }
            if n.builtin {
                check_predefined(&p.network, p)?;
            }
        }
        Ok((mode, planned))
    }

    /// `POST /containers/{id}/attach`: nothing can be attached, but the client is let in so
    /// that it reads why; its next start is refused. Returns the container.
    pub async fn note_attach(&self, term: &str) -> Result<Container> {
        let c = self.find_recorded_container(term).await?;
        attached()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone());
        Ok(c)
    }

    /// `POST /containers/{id}/start`: joins the recorded networks. `false` when it was
    /// already started (Docker's 304); namespaces netbridge only attaches are always started.
    pub async fn start_container(&self, term: &str) -> Result<bool> {
        let _shared = self.exclusive.read().await;
        let c = self.find_recorded_container(term).await?;
        if attached()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id)
        {
            return Err(Error::NotImplemented(format!(
                "cannot start container {} attached: {NO_PROCESSES}",
                c.name
            )));
        }
        let _lock = self.lifecycle_lock(&c).await;
        let Some(l) = self.store.lifecycle(&c.id).await? else {
            return Ok(false);
        };
        if l.state == RunState::Running {
            return Ok(false);
        }
        // Host ports first: a port already taken refuses the start before anything changes.
        let held = self.hold_ports(&c, &l).await.map_err(setup_failed)?;
        let journaled = Op::StartContainer {
            name: c.name.clone(),
        };
        let op = match self.journal(&c.id, &journaled).await {
            Ok(op) => op,
            Err(e) => {
                self.release_ports(&c);
                return Err(e);
            }
        };
        crash::point("container.start.journaled");
        let mut joined = Ok(());
        for p in &l.networks {
            joined = self
                .connect_shared(&p.network, connect_request(&c, p))
                .await;
            if joined.is_err() {
                break;
            }
            crash::point("container.start.attached");
        }
        if joined.is_ok() {
            joined = self.publish_ports(&c, &held).await;
            crash::point("container.start.published");
        }
        if let Err(e) = joined {
            let e = setup_failed(e);
            // Undo: a container that failed to start holds no endpoint and no port.
            if let Err(undo) = self.unpublish_ports(&c.id).await {
                tracing::error!(container = %c.id, error = %undo, "cannot undo a partial start");
            }
            if let Err(undo) = self.release_endpoints(&c).await {
                tracing::error!(container = %c.id, error = %undo, "cannot undo a partial start");
            }
            self.store.end_op(op).await?;
            return Err(e);
        }
        let address = self
            .store
            .endpoints_of_container(&c.id)
            .await?
            .into_iter()
            .find_map(|e| e.ipv4);
        self.write_name_files(&c, &l.body, address).await;
        self.store
            .set_run_state(&c.id, RunState::Running, Some(model::now_nanos()), None, 0)
            .await?;
        crash::point("container.start.running");
        self.store.end_op(op).await?;
        self.emit_container("start", &c).await;
        tracing::info!(container = %c.id, name = %c.name, "container started");
        Ok(true)
    }

    /// `POST /containers/{id}/stop` and `kill`: leaves every network (dynamic addresses are
    /// freed), keeps the configuration. `false` when it was not running (Docker's 304 for
    /// stop; the caller turns it into kill's 409).
    pub async fn stop_container(&self, term: &str, halt: Halt) -> Result<bool> {
        let _shared = self.exclusive.read().await;
        let c = self.find_recorded_container(term).await?;
        let _lock = self.lifecycle_lock(&c).await;
        let Some(l) = self.store.lifecycle(&c.id).await? else {
            return Err(Error::Conflict(format!(
                "cannot stop container {term}: it is a namespace netbridge attaches to networks, not one it made with a create body; disconnect it instead"
            )));
        };
        if l.state != RunState::Running {
            return Ok(false);
        }
        let code = match halt {
            Halt::Stop => EXIT_STOPPED,
            Halt::Kill => EXIT_KILLED,
        };
        let journaled = Op::StopContainer {
            name: c.name.clone(),
            exit_code: code,
        };
        let op = self.journal(&c.id, &journaled).await?;
        crash::point("container.stop.journaled");
        let mut released = self.unpublish_ports(&c.id).await;
        if released.is_ok() {
            released = self.release_endpoints(&c).await;
        }
        if let Err(e) = released {
            self.store.end_op(op).await?;
            return Err(e);
        }
        crash::point("container.stop.released");
        self.mark_exited(&c.id, code).await?;
        self.store.end_op(op).await?;
        self.emit_container(if halt == Halt::Kill { "kill" } else { "stop" }, &c)
            .await;
        self.emit_container("die", &c).await;
        tracing::info!(container = %c.id, name = %c.name, "container stopped");
        Ok(true)
    }

    async fn mark_exited(&self, id: &str, code: i64) -> Result<()> {
        self.store
            .set_run_state(id, RunState::Exited, None, Some(model::now_nanos()), code)
            .await?;
        Ok(())
    }

    /// Disconnects the container from every network it is on; tries them all, then reports
    /// the first failure.
    async fn release_endpoints(&self, c: &Container) -> Result<()> {
        let mut first_error = None;
        for e in self.store.endpoints_of_container(&c.id).await? {
            let Some(n) = self.store.network(&e.network_id).await? else {
                continue;
            };
            if let Err(err) = self.disconnect_if_connected(&n, c).await {
                tracing::warn!(container = %c.id, network = %n.name, error = %err, "cannot release an endpoint");
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `POST /containers/{id}/wait`: the exit code once `until` holds. A container never
    /// started answers `NotRunning` at once, as on Docker; namespaces netbridge only attaches
    /// never exit.
    pub async fn wait_container(&self, term: &str, until: WaitFor) -> Result<i64> {
        let c = self.find_recorded_container(term).await?;
        let first = self.store.lifecycle(&c.id).await?;
        let first_exit = first.as_ref().and_then(|l| l.finished_nanos);
        loop {
            let now = self.store.lifecycle(&c.id).await?;
            let gone = self.store.container(&c.id).await?.is_none();
            let code = now.as_ref().map_or(0, |l| l.exit_code);
            let done = match (until, &now) {
                (_, _) if gone => true,
                (WaitFor::Removed, _) | (_, None) => false,
                (WaitFor::NotRunning, Some(l)) => l.state != RunState::Running,
                (WaitFor::NextExit, Some(l)) => {
                    l.state != RunState::Running && l.finished_nanos != first_exit
                }
            };
            if done {
                return Ok(code);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `DELETE /containers/{id}`, with Docker's refusal of a running container unless forced.
    pub async fn remove_any_container(&self, term: &str, force: bool) -> Result<()> {
        let c = self.find_recorded_container(term).await?;
        if !force
            && let Some(l) = self.store.lifecycle(&c.id).await?
            && l.state == RunState::Running
        {
            return Err(Error::Conflict(format!(
                "cannot remove container \"{term}\": container is running: stop the container before removing or force remove"
            )));
        }
        let lifecycle = self.store.lifecycle(&c.id).await?;
        if force {
            self.unpublish_ports(&c.id).await?;
        }
        self.remove_container(&c.id, force).await?;
        if let Some(l) = lifecycle {
            self.remove_name_files(&c.name, &l.body).await;
            forget_lock(&self.container_locks, &lifecycle_key(&c));
            attached()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&c.id);
        }
        Ok(())
    }

    /// Writes the container's `hosts` (ExtraHosts; Hostname with the container's address once
    /// started) where `ip netns exec` reads it, when the create body asked for any name
    /// settings. Best effort: the network work stands without it. Its `resolv.conf` is the name
    /// server's (HostConfig.Dns, DnsSearch and DnsOptions reach it through [`container_dns`]).
    async fn write_name_files(&self, c: &Container, body: &Value, address: Option<IpAddr>) {
        let names = NameConfig::of(body);
        if names.is_empty() {
            return;
        }
        let gateway = match self.find_network("bridge", Lookup::Connect).await {
            Ok(n) => n.ipv4().map(|cfg| cfg.gateway.to_string()),
            Err(_) => None,
        };
        let hostname = names
            .hostname
            .clone()
            .unwrap_or_else(|| c.id[..12].to_string());
        // resolv.conf is the name server's (see `container_dns`): only hosts here.
        let files = vec![("hosts", names.hosts(&hostname, address, gateway.as_deref()))];
        let (dir, name) = (self.settings.netns_etc_dir.clone(), c.name.clone());
        let written =
            tokio::task::spawn_blocking(move || write_netns_etc(&dir, &name, &files)).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(container = %c.name, result = ?written, "cannot write the container's resolv.conf and hosts");
        }
    }

    /// Undoes [`Daemon::write_name_files`].
    async fn remove_name_files(&self, name: &str, body: &Value) {
        if NameConfig::of(body).is_empty() {
            return;
        }
        let (dir, name) = (self.settings.netns_etc_dir.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || remove_netns_etc(&dir, &name)).await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::warn!(result = ?removed, "cannot remove a container's resolv.conf and hosts");
        }
    }

    /// `POST /containers/prune`: removes every container made with a create body that is not
    /// running. Returns their IDs.
    pub async fn prune_containers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for l in self.store.lifecycles().await? {
            if l.state == RunState::Running {
                continue;
            }
            match self.remove_any_container(&l.container_id, true).await {
                Ok(()) => removed.push(l.container_id),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// `POST /networks/{id}/connect`. A container made with a create body keeps the network
    /// in its configuration, as Docker does: joined now if it is running, at its next start if
    /// not. A `host` or `none` container joins no network.
    pub async fn connect_container(&self, network_term: &str, req: ConnectRequest) -> Result<()> {
        let Some(c) = self.lifecycle_container(&req.container).await? else {
            return self.connect(network_term, req).await;
        };
        let _shared = self.exclusive.read().await;
        let _lock = self.lifecycle_lock(&c).await;
        let Some(l) = self.store.lifecycle(&c.id).await? else {
            return Err(no_such_container(&req.container));
        };
        match l.network_mode.as_str() {
            "host" => return Err(Error::InvalidParameter(SHARED_NAMESPACE.to_string())),
            "none" => return Err(Error::InvalidParameter(PRIVATE_MODE.to_string())),
            _ => {}
        }
        let network = self.find_network(network_term, Lookup::Connect).await?;
        if self.planned_index(&l, &network.id).await?.is_some() {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, network.name
            )));
        }
        let planned = PlannedEndpoint {
            network: network.name.clone(),
            ipv4: req.ipv4.clone().filter(|a| !a.is_empty()),
            ipv6: req.ipv6.clone().filter(|a| !a.is_empty()),
            mac: req.mac.clone().filter(|m| !m.is_empty()),
            aliases: req.aliases.clone(),
            gw_priority: req.gw_priority,
            link_local_ips: req.link_local_ips.clone(),
            links: req.links.clone(),
            driver_opts: req.driver_opts.clone(),
        };
        if network.builtin {
            check_predefined(&network.name, &planned)?;
        }
        if l.state == RunState::Running {
            self.connect_shared(&network.id, connect_request(&c, &planned))
                .await?;
            self.retarget_ports(&c).await?;
        }
        let mut networks = l.networks;
        networks.push(planned);
        self.store.set_planned_networks(&c.id, &networks).await?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`. A container made with a create body also drops the
    /// network from its configuration, so it does not join it at its next start.
    pub async fn disconnect_container(
        &self,
        network_term: &str,
        container_term: &str,
        force: bool,
    ) -> Result<()> {
        let Some(c) = self.lifecycle_container(container_term).await? else {
            return self.disconnect(network_term, container_term, force).await;
        };
        let _shared = self.exclusive.read().await;
        let _lock = self.lifecycle_lock(&c).await;
        let Some(l) = self.store.lifecycle(&c.id).await? else {
            return Err(no_such_container(container_term));
        };
        let network = self.find_network(network_term, Lookup::Connect).await?;
        let index = self.planned_index(&l, &network.id).await?;
        let was_connected = self.disconnect_if_connected(&network, &c).await?;
        if was_connected {
            self.retarget_ports(&c).await?;
        }
        let Some(index) = index else {
            return if was_connected {
                Ok(())
            } else {
                Err(super::endpoints::not_connected(&c.id, &network.name))
            };
        };
        let mut networks = l.networks;
        networks.remove(index);
        self.store.set_planned_networks(&c.id, &networks).await?;
        Ok(())
    }

    /// The container a reference names, when it was made with a create body.
    async fn lifecycle_container(&self, term: &str) -> Result<Option<Container>> {
        let Ok(reached) = self.resolve_container(term).await else {
            return Ok(None);
        };
        if !reached.recorded || self.store.lifecycle(&reached.container.id).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(reached.container))
    }

    /// Where the network `network_id` is in a container's configuration (its entries name
    /// networks as the client did, so each is looked up).
    async fn planned_index(&self, l: &Lifecycle, network_id: &str) -> Result<Option<usize>> {
        for (i, p) in l.networks.iter().enumerate() {
            if let Ok(n) = self.find_network(&p.network, Lookup::Connect).await
                && n.id == network_id
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Orders the lifecycle steps of one container (start, stop); connects and disconnects
    /// take their own locks inside.
    async fn lifecycle_lock(&self, c: &Container) -> tokio::sync::OwnedMutexGuard<()> {
        lock_in(&self.container_locks, &lifecycle_key(c))
            .lock_owned()
            .await
    }

    /// At reconcile, before anything else: finishes or undoes each lifecycle step a crash cut
    /// short, and closes its journal entry. A create without its record loses its sandbox (a
    /// retry then succeeds); a start not recorded as done leaves every network again; a stop
    /// is finished.
    pub(super) async fn roll_back_lifecycle(&self, repairs: &mut Vec<String>) -> Result<()> {
        for entry in self.store.unfinished_ops().await? {
            match Op::read(&entry) {
                Some(op) if op.is_lifecycle() => {
                    repairs.extend(op.undo(self, &entry.subject).await?);
                    self.store.end_op(entry.id).await?;
                }
                _ => continue,
            }
        }
        Ok(())
    }

    pub(super) async fn undo_create_container(&self, name: &str) -> Result<String> {
        if let Some(c) = self.store.container_by_name(name).await?
            && c.kind == ContainerKind::Sandbox
            && self.store.lifecycle(&c.id).await?.is_none()
        {
            let _ = super::containers::delete_netns(&self.settings.netns_dir, &c.name).await;
            let (dir, name) = (self.settings.netns_etc_dir.clone(), c.name.clone());
            let _ = tokio::task::spawn_blocking(move || remove_netns_etc(&dir, &name)).await;
            self.store.delete_container(&c.id).await?;
        }
        Ok(format!(
            "interrupted create of container {name} rolled back"
        ))
    }

    pub(super) async fn undo_start_container(&self, id: &str) -> Result<String> {
        if let Some(c) = self.store.container(id).await?
            && let Some(l) = self.store.lifecycle(&c.id).await?
            && l.state != RunState::Running
        {
            self.unpublish_ports(&c.id).await?;
            self.release_endpoints(&c).await?;
        }
        Ok(format!("interrupted start of container {id} rolled back"))
    }

    pub(super) async fn finish_stop_container(&self, id: &str, code: i64) -> Result<String> {
        if let Some(c) = self.store.container(id).await? {
            self.unpublish_ports(&c.id).await?;
            self.release_endpoints(&c).await?;
            self.mark_exited(&c.id, code).await?;
        }
        Ok(format!("interrupted stop of container {id} finished"))
    }
}

/// The key of a container's lifecycle lock, beside the namespace-keyed container locks.
fn lifecycle_key(c: &Container) -> String {
    format!("lifecycle:{}", c.id)
}

/// Docker's checks of a `container:<name|id>` network mode, in Docker's order: options that
/// belong to the shared namespace's owner cannot be given.
fn check_container_mode(mode: &str, body: &Value) -> Result<()> {
    let host = |key: &str| body.get("HostConfig").and_then(|h| h.get(key));
    let given = |v: Option<&Value>| match v {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Bool(b)) => *b,
        _ => false,
    };
    let refusal = if mode
        .trim_start_matches("container")
        .trim_start_matches(':')
        .is_empty()
    {
        "invalid network mode: invalid container format container:<name|id>"
    } else if given(body.get("Hostname")) {
        "conflicting options: hostname and the network mode"
    } else if given(host("Links")) {
        "conflicting options: container type network can't be used with links. This would result in undefined behavior"
    } else if given(host("Dns")) {
        "conflicting options: dns and the network mode"
    } else if given(host("ExtraHosts")) {
        "conflicting options: custom host-to-IP mapping and the network mode"
    } else if given(host("PortBindings")) || given(host("PublishAllPorts")) {
        "conflicting options: port publishing and the container type network mode"
    } else if given(body.get("ExposedPorts")) {
        "conflicting options: port exposing and the container type network mode"
    } else {
        return Ok(());
    };
    Err(Error::InvalidParameter(refusal.to_string()))
}

/// Docker's words for a start whose networks could not be joined; the kind (and so the
/// status) stays the cause's.
fn setup_failed(e: Error) -> Error {
    const SETUP: &str = "failed to set up container networking";
    match e {
        Error::NotFound(m) => Error::NotFound(format!("{SETUP}: {m}")),
        Error::InvalidParameter(m) => Error::InvalidParameter(format!("{SETUP}: {m}")),
        Error::Conflict(m) => Error::Conflict(format!("{SETUP}: {m}")),
        Error::Forbidden(m) => Error::Forbidden(format!("{SETUP}: {m}")),
        other => other,
    }
}

/// Docker refuses static addresses and aliases on its predefined networks.
fn check_predefined(network: &str, p: &PlannedEndpoint) -> Result<()> {
    let mut problems = Vec::new();
    if p.ipv4.as_deref().is_some_and(|a| !a.is_empty())
        || p.ipv6.as_deref().is_some_and(|a| !a.is_empty())
    {
        problems.push("user-specified IP address is supported on user-defined networks only");
    }
    if !p.aliases.is_empty() {
        problems.push("network-scoped aliases are only supported for user-defined networks");
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidParameter(format!(
        "invalid config for network {network}: invalid endpoint settings:\n{}",
        problems.join("\n")
    )))
}

fn connect_request(c: &Container, p: &PlannedEndpoint) -> ConnectRequest {
    ConnectRequest {
        container: c.id.clone(),
        ipv4: p.ipv4.clone(),
        ipv6: p.ipv6.clone(),
        mac: p.mac.clone(),
        aliases: p.aliases.clone(),
        gw_priority: p.gw_priority,
        link_local_ips: p.link_local_ips.clone(),
        links: p.links.clone(),
        driver_opts: p.driver_opts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns_settings_and_hosts_as_docker_writes_them() {
        let names = NameConfig::of(&json!({"Hostname": "web", "HostConfig": {
            "Dns": ["10.0.0.53", "10.0.0.54"], "DnsSearch": ["a.example", "b.example"],
            "DnsOptions": ["ndots:2"],
            "ExtraHosts": ["db:10.1.2.3", "gw:host-gateway", "v6=[fd00::1]"]}}));
        let dns = container_dns(&json!({"HostConfig": {
            "Dns": ["10.0.0.53", "10.0.0.54", "bad"], "DnsSearch": ["a.example", "b.example"],
            "DnsOptions": ["ndots:2"]}}));
        assert_eq!(
            dns.servers,
            [
                "10.0.0.53".parse::<IpAddr>().unwrap(),
                "10.0.0.54".parse().unwrap()
            ]
        );
        assert_eq!(dns.search, ["a.example", "b.example"]);
        assert_eq!(dns.options, ["ndots:2"]);
        let hosts = names.hosts("web", "172.17.0.2".parse().ok(), Some("172.17.0.1"));
        assert!(
            hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        );
        assert!(
            hosts.ends_with("10.1.2.3\tdb\n172.17.0.1\tgw\nfd00::1\tv6\n172.17.0.2\tweb\n"),
            "{hosts}"
        );
        assert!(NameConfig::of(&json!({"Image": "busybox"})).is_empty());
        assert_eq!(
            container_dns(&json!({"Hostname": "x"})),
            super::super::ContainerDns::default()
        );
    }

    #[test]
    fn container_mode_refusals_in_dockers_order() {
        let refused = |mode: &str, body: Value| match check_container_mode(mode, &body) {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("{mode} {body}: {other:?}"),
        };
        assert!(refused("container:", json!({})).starts_with("invalid network mode"));
        assert_eq!(
            refused(
                "container:a",
                json!({"Hostname": "h", "HostConfig": {"Dns": ["1.1.1.1"]}})
            ),
            "conflicting options: hostname and the network mode"
        );
        assert_eq!(
            refused("container:a", json!({"HostConfig": {"Dns": ["1.1.1.1"]}})),
            "conflicting options: dns and the network mode"
        );
        assert!(check_container_mode("container:a", &json!({"HostConfig": {"Dns": []}})).is_ok());
    }

    #[test]
    fn static_addresses_and_aliases_on_a_predefined_network() {
        let p = PlannedEndpoint {
            ipv4: Some("172.17.0.9".to_string()),
            aliases: vec!["a".to_string()],
            ..PlannedEndpoint::default()
        };
        match check_predefined("bridge", &p) {
            Err(Error::InvalidParameter(m)) => assert_eq!(
                m,
                "invalid config for network bridge: invalid endpoint settings:\nuser-specified IP address is supported on user-defined networks only\nnetwork-scoped aliases are only supported for user-defined networks"
            ),
            other => panic!("{other:?}"),
        }
        assert!(check_predefined("bridge", &PlannedEndpoint::default()).is_ok());
    }
}
