//! Containers: the network namespaces netbridge attaches. A sandbox is one made through the API
//! (ours to delete); a named namespace or a process's namespace is recorded when first
//! connected and forgotten when its last endpoint goes, and is never deleted by netbridge.

use std::path::{Path, PathBuf};

use super::journal::Op;
use super::{Daemon, Error, Result, crash};
use crate::kernel::{KernelError, NamespaceId, Netns, find_process_in};
use crate::model::{
    self, Container, ContainerKind, Endpoint, Lifecycle, Network, PlannedEndpoint, RunState,
    UNKNOWN_NAMESPACE,
};

/// Makes the named namespace `name` under the netns directory (mount work: a blocking thread)
/// and returns its identity.
pub(super) async fn create_netns(
    dir: &Path,
    name: &str,
) -> std::result::Result<NamespaceId, KernelError> {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    tokio::task::spawn_blocking(move || Netns::create_named(&dir, &name).and_then(|ns| ns.id()))
        .await
        .unwrap_or(Err(KernelError::Worker {
            op: "create namespace",
        }))
}

/// Deletes the named namespace `name`; one already gone is fine.
pub(super) async fn delete_netns(dir: &Path, name: &str) -> std::result::Result<(), KernelError> {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    tokio::task::spawn_blocking(move || Netns::delete_named(&dir, &name))
        .await
        .unwrap_or(Err(KernelError::Worker {
            op: "delete namespace",
        }))
}

/// A container with its endpoints and their networks, for the container routes.
pub struct ContainerView {
    pub container: Container,
    /// The resolv.conf netbridge writes for it: sandboxes only (Docker's `ResolvConfPath`).
    pub resolv_conf_path: Option<PathBuf>,
    pub endpoints: Vec<(Endpoint, Network)>,
    /// For a container made with Docker's create body: what it asked for, where it stands.
    pub lifecycle: Option<Lifecycle>,
    /// While such a container is not running: the networks it joins at start, by the
    /// network's name and ID (empty while there is no such network), as Docker shows them.
    pub planned: Vec<(String, String, PlannedEndpoint)>,
    /// The host ports it publishes (while running).
    pub ports: Vec<crate::model::PublishedPort>,
    /// The ports it exposes or binds, as `(port, proto)`, shown without a host side when not
    /// published.
    pub exposed: Vec<(u16, String)>,
}

fn no_such(term: &str) -> Error {
    Error::NotFound(format!("No such container: {term}"))
}

/// Longest sandbox name: it becomes a file name under the netns directory, where the kernel
/// allows at most 255 bytes; 128 leaves room and is easy to state.
const SANDBOX_NAME_MAX: usize = 128;

/// Docker's container-name rule.
fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A container reference resolved to a namespace, before any lock is taken.
pub(super) struct Reached {
    /// The recorded container, or the record a first connect stores.
    pub container: Container,
    pub recorded: bool,
}

impl Daemon {
    /// Finds the container a reference names. A full ID first; then the namespace the term
    /// reaches as a named namespace or as a PID, by that namespace's identity (so every
    /// reference to one namespace is one container); then a recorded name; then a unique ID
    /// prefix. Kinds turned off by `--container-refs` are not consulted.
    pub(super) async fn resolve_container(&self, term: &str) -> Result<Reached> {
        if term.is_empty() {
            return Err(Error::InvalidParameter(
                "invalid name or ID supplied: \"\"".to_string(),
            ));
        }
        let reached = self.resolve_unchecked(term).await?;
        if self
            .settings
            .off_limits
            .contains(&reached.container.namespace)
        {
            return Err(Error::Forbidden(format!(
                "container {term} is the daemon's own or the host's network namespace: netbridge never puts interfaces there"
            )));
        }
        Ok(reached)
    }

    async fn resolve_unchecked(&self, term: &str) -> Result<Reached> {
        let recorded = |c: Container| Reached {
            container: c,
            recorded: true,
        };
        if model::is_full_id(term)
            && let Some(c) = self.store.container(term).await?
        {
            return Ok(recorded(c));
        }
        if is_file_name(term) {
            let path = self.settings.netns_dir.join(term);
            if let Some(reached) = self.reach(term, ContainerKind::Netns, &path).await? {
                return Ok(reached);
            }
        }
        if self.allows(ContainerKind::Pid) && is_pid(term) {
            let path = PathBuf::from(format!("/proc/{term}/ns/net"));
            if let Some(reached) = self.reach(term, ContainerKind::Pid, &path).await? {
                return Ok(reached);
            }
        }
        if let Some(c) = self.store.container_by_name(term).await? {
            return Ok(recorded(c));
        }
        let ids = self.store.container_ids_with_prefix(term).await?;
        match ids.as_slice() {
            [id] => match self.store.container(id).await? {
                Some(c) => Ok(recorded(c)),
                None => Err(self.no_such(term)),
            },
            [] => Err(self.no_such(term)),
            _ => Err(Error::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {term}"
            ))),
        }
    }

    /// The container that the namespace at `path` is, if `path` is a namespace: the recorded
    /// one with its identity, else a new record of `kind` when that kind may be recorded.
    async fn reach(&self, term: &str, kind: ContainerKind, path: &Path) -> Result<Option<Reached>> {
        let Some(namespace) = Netns::open(path).and_then(|ns| ns.id()).ok() else {
            return Ok(None);
        };
        if let Some(c) = self.store.container_by_namespace(namespace).await? {
            return Ok(Some(Reached {
                container: c,
                recorded: true,
            }));
        }
        if self.settings.off_limits.contains(&namespace) {
            // Reported as off limits by the caller, whatever kinds are allowed.
            return Ok(Some(Reached {
                container: new_record(term, kind, path, namespace),
                recorded: false,
            }));
        }
        if !self.allows(kind) {
            return Ok(None);
        }
        Ok(Some(Reached {
            container: new_record(term, kind, path, namespace),
            recorded: false,
        }))
    }

    pub(super) fn allows(&self, kind: ContainerKind) -> bool {
        self.settings.container_refs.contains(&kind)
    }

    fn no_such(&self, term: &str) -> Error {
        if is_pid(term) && !self.allows(ContainerKind::Pid) {
            return Error::NotFound(format!(
                "No such container: {term} (references by PID are turned off on this daemon)"
            ));
        }
        no_such(term)
    }

    /// A recorded container by any reference: 404 for one never connected.
    pub(super) async fn find_recorded_container(&self, term: &str) -> Result<Container> {
        match self.resolve_container(term).await? {
            Reached {
                container,
                recorded: true,
            } => Ok(container),
            Reached { .. } => Err(no_such(term)),
        }
    }

    /// Under the container's lock: the record as it stands now (another request may have
    /// recorded or forgotten it while this one waited), stored if it is not yet.
    pub(super) async fn record_locked(&self, reached: Reached) -> Result<Container> {
        let wanted = reached.container;
        if let Some(c) = self.store.container_by_namespace(wanted.namespace).await? {
            return Ok(c);
        }
        if wanted.kind == ContainerKind::Sandbox {
            // Removed while this request waited.
            return Err(no_such(&wanted.name));
        }
        let mut container = wanted;
        if self
            .store
            .container_by_name(&container.name)
            .await?
            .is_some()
        {
            // The name is held by a namespace of the same name or PID that has gone.
            container.name = format!("{}-{}", container.name, &container.id[..12]);
        }
        self.store.insert_container(&container).await?;
        Ok(container)
    }

    /// The container's namespace, held open, if it still lives. A namespace first reached
    /// through a PID stays reachable through any other process inside it; its path moves there.
    pub(super) async fn open_namespace(&self, c: &Container) -> Option<Netns> {
        let path = Path::new(&c.netns_path);
        if let Ok(ns) = Netns::open(path)
            && ns
                .id()
                .is_ok_and(|id| id == c.namespace || c.namespace == UNKNOWN_NAMESPACE)
        {
            return Some(ns);
        }
        if c.kind != ContainerKind::Pid || c.namespace == UNKNOWN_NAMESPACE {
            return None;
        }
        let namespace = c.namespace;
        let found = tokio::task::spawn_blocking(move || find_process_in(namespace))
            .await
            .ok()
            .flatten()?;
        let ns = Netns::open(&found).ok()?;
        if ns.id().ok()? != c.namespace {
            return None;
        }
        let moved = found.display().to_string();
        if let Err(e) = self
            .store
            .set_container_namespace(&c.id, &moved, c.namespace)
            .await
        {
            tracing::warn!(container = %c.id, error = %e, "cannot record a namespace's new path");
        }
        Some(ns)
    }

    /// `POST /containers/create?name=NAME`: a new named namespace with `lo` up.
    pub async fn create_sandbox(&self, name: Option<&str>) -> Result<Container> {
        if !self.allows(ContainerKind::Sandbox) {
            return Err(Error::Forbidden(
                "sandboxes are turned off on this daemon (--container-refs)".to_string(),
            ));
        }
        let _shared = self.exclusive.read().await;
        self.create_sandbox_shared(name).await
    }

    /// [`Daemon::create_sandbox`] for an operation that already holds the shared lock.
    pub(super) async fn create_sandbox_shared(&self, name: Option<&str>) -> Result<Container> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                // Checked first, so an over-long name is never echoed whole.
                if n.chars().count() > SANDBOX_NAME_MAX {
                    let start: String = n.chars().take(16).collect();
                    return Err(Error::InvalidParameter(format!(
                        "Invalid container name ({start}…): it is {} characters long, and a sandbox name can have at most {SANDBOX_NAME_MAX} characters (it names a file under {})",
                        n.chars().count(),
                        self.settings.netns_dir.display()
                    )));
                }
                if !valid_container_name(n) {
                    return Err(Error::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => format!("sandbox_{}", &model::new_id()[..12]),
        };
        let _topology = self.topology.lock().await;
        if let Some(other) = self.store.container_by_name(&name).await? {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let path = self.settings.netns_dir.join(&name);
        if path.exists() {
            return Err(Error::Conflict(format!(
                "Conflict. A network namespace named \"{name}\" already exists at {}; connect it to a network directly instead.",
                path.display()
            )));
        }
        // Its identity is known once the namespace exists.
        let mut container = new_record(&name, ContainerKind::Sandbox, &path, UNKNOWN_NAMESPACE);
        let journaled = Op::CreateSandbox {
            name: container.name.clone(),
            path: container.netns_path.clone(),
        };
        let op = self.journal(&container.id, &journaled).await?;
        crash::point("sandbox.create.journaled");
        if let Err(e) = self.store.insert_container(&container).await {
            self.store.end_op(op).await?;
            return Err(e.into());
        }
        crash::point("sandbox.create.row");
        let made = match create_netns(&self.settings.netns_dir, &name).await {
            Ok(namespace) => {
                container.namespace = namespace;
                self.store
                    .set_container_namespace(&container.id, &container.netns_path, namespace)
                    .await
                    .map_err(|e| (e.into(), None))
            }
            Err(e) => Err((
                match e {
                    KernelError::Exists { .. } => Error::Conflict(format!(
                        "Conflict. A network namespace named \"{}\" already exists",
                        container.name
                    )),
                    other => Error::Kernel {
                        context: format!("cannot create the namespace of {}", container.name),
                        source: other,
                    },
                },
                Some(()),
            )),
        };
        if let Err((error, failed_in_kernel)) = made {
            if failed_in_kernel.is_none() {
                let _ = delete_netns(&self.settings.netns_dir, &name).await;
            }
            if let Err(undo) = self.store.delete_container(&container.id).await {
                tracing::error!(container = %container.id, error = %undo, "cannot roll back a sandbox row");
            }
            self.store.end_op(op).await?;
            return Err(error);
        }
        crash::point("sandbox.create.netns");
        self.store.end_op(op).await?;
        {
            // A connect may already have found the new sandbox: one at a time.
            let _container = self.lock_container(container.namespace).await;
            self.sync_resolver(&container).await;
        }
        self.emit_container("create", &container).await;
        tracing::info!(container = %container.id, name = %container.name, "sandbox created");
        Ok(container)
    }

    pub async fn list_containers(&self) -> Result<Vec<ContainerView>> {
        let mut views = Vec::new();
        for c in self.store.containers().await? {
            views.push(self.container_view(c).await?);
        }
        Ok(views)
    }

    pub async fn inspect_container(&self, term: &str) -> Result<ContainerView> {
        let c = self.find_recorded_container(term).await?;
        self.container_view(c).await
    }

    async fn container_view(&self, container: Container) -> Result<ContainerView> {
        let mut endpoints = Vec::new();
        for e in self.store.endpoints_of_container(&container.id).await? {
            if let Some(n) = self.store.network(&e.network_id).await? {
                endpoints.push((e, n));
            }
        }
        let resolv_conf_path = (container.kind == ContainerKind::Sandbox).then(|| {
            self.settings
                .netns_etc_dir
                .join(&container.name)
                .join("resolv.conf")
        });
        let lifecycle = self.store.lifecycle(&container.id).await?;
        let mut planned = Vec::new();
        if let Some(l) = lifecycle.as_ref().filter(|l| l.state != RunState::Running) {
            for p in &l.networks {
                let (name, id) = match self.find_network(&p.network, super::Lookup::Connect).await {
                    Ok(n) => (n.name, n.id),
                    Err(_) => (p.network.clone(), String::new()),
                };
                planned.push((name, id, p.clone()));
            }
        }
        let ports = self.store.published_ports(&container.id).await?;
        let exposed = lifecycle
            .as_ref()
            .map(|l| super::ports::exposed(&l.body))
            .unwrap_or_default();
        Ok(ContainerView {
            resolv_conf_path,
            container,
            endpoints,
            lifecycle,
            planned,
            ports,
            exposed,
        })
    }

    /// A namespace netbridge did not make is recorded only while it has endpoints: forgets it
    /// once it has none. Sandboxes stay until removed.
    pub(super) async fn forget_unused_namespace(&self, container_id: &str) -> Result<()> {
        if let Some(c) = self.store.container(container_id).await?
            && c.kind != ContainerKind::Sandbox
            && self.store.endpoints_of_container(&c.id).await?.is_empty()
        {
            self.store.delete_container(&c.id).await?;
        }
        Ok(())
    }

    /// `DELETE /containers/{id}`: `force` disconnects it first. Only sandboxes' namespaces are
    /// deleted; other namespaces are merely forgotten.
    pub async fn remove_container(&self, term: &str, force: bool) -> Result<()> {
        let _shared = self.exclusive.read().await;
        let c = self.find_recorded_container(term).await?;
        // A connect may slip in between the disconnects and the container's lock: go round
        // again then (forced) or refuse.
        let mut rounds = 0;
        let _lock = loop {
            let endpoints = self.store.endpoints_of_container(&c.id).await?;
            if !endpoints.is_empty() && (!force || rounds == 3) {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": it is connected to {} network(s): disconnect it first or force remove",
                    c.name,
                    endpoints.len()
                )));
            }
            for e in &endpoints {
                if let Some(n) = self.store.network(&e.network_id).await? {
                    // Disconnected meanwhile by another request: nothing left to do.
                    self.disconnect_if_connected(&n, &c).await?;
                }
            }
            let lock = self.lock_container(c.namespace).await;
            if self.store.endpoints_of_container(&c.id).await?.is_empty() {
                break lock;
            }
            rounds += 1;
        };
        if self.store.container(&c.id).await?.is_none() {
            // The last disconnect forgot a namespace netbridge did not make: nothing left.
            self.forget_container_lock(c.namespace);
            self.emit_container("destroy", &c).await;
            return Ok(());
        }
        self.remove_container_locked(&c).await
    }

    /// Namespace first, row last: a crash in between leaves the row, and start-up makes the
    /// (empty) namespace again, so removing it again works.
    pub(super) async fn remove_container_locked(&self, c: &Container) -> Result<()> {
        let journaled = Op::RemoveSandbox {
            name: c.name.clone(),
            kind: c.kind.as_str().to_string(),
        };
        let op = self.journal(&c.id, &journaled).await?;
        crash::point("sandbox.remove.journaled");
        if c.kind == ContainerKind::Sandbox
            && let Err(e) = delete_netns(&self.settings.netns_dir, &c.name).await
        {
            self.store.end_op(op).await?;
            return Err(Error::kernel(format!(
                "cannot delete the namespace of {}",
                c.name
            ))(e));
        }
        crash::point("sandbox.remove.netns");
        self.store.delete_container(&c.id).await?;
        crash::point("sandbox.remove.row");
        self.store.end_op(op).await?;
        self.forget_resolver(c).await;
        self.forget_container_lock(c.namespace);
        self.emit_container("destroy", c).await;
        tracing::info!(container = %c.id, name = %c.name, "container removed");
        Ok(())
    }
}

fn new_record(name: &str, kind: ContainerKind, path: &Path, namespace: NamespaceId) -> Container {
    Container {
        id: model::new_id(),
        name: name.to_string(),
        kind,
        netns_path: path.display().to_string(),
        namespace,
        created_nanos: model::now_nanos(),
    }
}

/// A term that can name a file in the netns directory: one path component.
fn is_file_name(term: &str) -> bool {
    !term.contains('/') && !term.contains('\0') && term != "." && term != ".." && term.len() <= 255
}

/// A decimal PID as /proc names it.
fn is_pid(term: &str) -> bool {
    !term.is_empty()
        && term.len() <= 10
        && term.bytes().all(|c| c.is_ascii_digit())
        && !term.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::valid_container_name;

    #[test]
    fn container_names() {
        assert!(valid_container_name("test1"));
        assert!(valid_container_name("a.b_c-d"));
        assert!(!valid_container_name("a"));
        assert!(!valid_container_name("-ab"));
        assert!(!valid_container_name("a/b"));
        assert!(!valid_container_name("a b"));
    }
}
