//! Containers: the network namespaces netbridge attaches. A sandbox is one made through the API
//! (ours to delete); a named namespace or a process's namespace is recorded when first
//! connected and forgotten when its last endpoint goes, and is never deleted by netbridge.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Daemon, Error, Result, crash};
use crate::kernel::{KernelError, Netns};
use crate::model::{self, Container, ContainerKind, Endpoint, Network};

/// Makes the named namespace `name` under the netns directory (mount work: a blocking thread).
pub(super) async fn create_netns(dir: &Path, name: &str) -> std::result::Result<(), KernelError> {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    tokio::task::spawn_blocking(move || Netns::create_named(&dir, &name).map(drop))
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
    pub endpoints: Vec<(Endpoint, Network)>,
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

impl Daemon {
    /// Finds a container: a recorded one by full ID, name or unique ID prefix; else a named
    /// namespace under the netns directory; else a decimal PID. The second value says whether
    /// the record still has to be stored (a namespace seen for the first time).
    pub(super) async fn resolve_container(&self, term: &str) -> Result<(Container, bool)> {
        if term.is_empty() {
            return Err(Error::InvalidParameter(
                "invalid name or ID supplied: \"\"".to_string(),
            ));
        }
        if let Some(c) = self.find_recorded_container(term).await? {
            return Ok((c, false));
        }
        if term.contains('/') || term.contains('\0') || term == "." || term == ".." {
            return Err(no_such(term));
        }
        let named = self.settings.netns_dir.join(term);
        if is_namespace(&named) {
            return Ok((new_record(term, ContainerKind::Netns, &named), true));
        }
        if term.bytes().all(|c| c.is_ascii_digit()) && !term.starts_with('0') {
            let path = PathBuf::from(format!("/proc/{term}/ns/net"));
            if is_namespace(&path) {
                return Ok((new_record(term, ContainerKind::Pid, &path), true));
            }
        }
        Err(no_such(term))
    }

    /// A recorded container by full ID, exact name or unique ID prefix.
    pub(super) async fn find_recorded_container(&self, term: &str) -> Result<Option<Container>> {
        if let Some(c) = self.store.container_by_id_or_name(term).await? {
            return Ok(Some(c));
        }
        let ids = self.store.container_ids_with_prefix(term).await?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(self.store.container(id).await?),
            _ => Err(Error::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {term}"
            ))),
        }
    }

    /// `POST /containers/create?name=NAME`: a new named namespace with `lo` up.
    pub async fn create_sandbox(&self, name: Option<&str>) -> Result<Container> {
        let _shared = self.exclusive.read().await;
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
        let container = new_record(&name, ContainerKind::Sandbox, &path);
        let op = self
            .store
            .begin_op(
                "create_sandbox",
                &container.id,
                &json!({"name": container.name, "path": container.netns_path}),
            )
            .await?;
        crash::point("sandbox.create.journaled");
        if let Err(e) = self.store.insert_container(&container).await {
            self.store.end_op(op).await?;
            return Err(e.into());
        }
        crash::point("sandbox.create.row");
        if let Err(e) = create_netns(&self.settings.netns_dir, &name).await {
            if let Err(undo) = self.store.delete_container(&container.id).await {
                tracing::error!(container = %container.id, error = %undo, "cannot roll back a sandbox row");
            }
            self.store.end_op(op).await?;
            return Err(match e {
                KernelError::Exists { .. } => Error::Conflict(format!(
                    "Conflict. A network namespace named \"{}\" already exists",
                    container.name
                )),
                other => Error::Kernel {
                    context: format!("cannot create the namespace of {}", container.name),
                    source: other,
                },
            });
        }
        crash::point("sandbox.create.netns");
        self.store.end_op(op).await?;
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
        let c = self
            .find_recorded_container(term)
            .await?
            .ok_or_else(|| no_such(term))?;
        self.container_view(c).await
    }

    async fn container_view(&self, container: Container) -> Result<ContainerView> {
        let mut endpoints = Vec::new();
        for e in self.store.endpoints_of_container(&container.id).await? {
            if let Some(n) = self.store.network(&e.network_id).await? {
                endpoints.push((e, n));
            }
        }
        Ok(ContainerView {
            container,
            endpoints,
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
        let c = self
            .find_recorded_container(term)
            .await?
            .ok_or_else(|| no_such(term))?;
        let endpoints = self.store.endpoints_of_container(&c.id).await?;
        if !endpoints.is_empty() && !force {
            return Err(Error::Conflict(format!(
                "cannot remove container \"/{}\": it is connected to {} network(s): disconnect it first or force remove",
                c.name,
                endpoints.len()
            )));
        }
        for e in endpoints {
            if let Some(n) = self.store.network(&e.network_id).await? {
                // Disconnected meanwhile by another request: nothing left to do.
                self.disconnect_if_connected(&n, &c).await?;
            }
        }
        // Namespace first, row last: a crash in between leaves the row, and start-up makes the
        // (empty) namespace again, so removing it again works.
        let op = self
            .store
            .begin_op(
                "remove_sandbox",
                &c.id,
                &json!({"name": c.name, "path": c.netns_path, "kind": c.kind.as_str()}),
            )
            .await?;
        crash::point("sandbox.remove.journaled");
        if c.kind == ContainerKind::Sandbox {
            if let Err(e) = delete_netns(&self.settings.netns_dir, &c.name).await {
                self.store.end_op(op).await?;
                return Err(Error::kernel(format!(
                    "cannot delete the namespace of {}",
                    c.name
                ))(e));
            }
        }
        crash::point("sandbox.remove.netns");
        self.store.delete_container(&c.id).await?;
        crash::point("sandbox.remove.row");
        self.store.end_op(op).await?;
        self.forget_container_lock(&c.netns_path);
        self.emit_container("destroy", &c).await;
        tracing::info!(container = %c.id, name = %c.name, "container removed");
        Ok(())
    }
}

fn new_record(name: &str, kind: ContainerKind, path: &Path) -> Container {
    Container {
        id: model::new_id(),
        name: name.to_string(),
        kind,
        netns_path: path.display().to_string(),
        created_nanos: model::now_nanos(),
    }
}

/// Whether `path` can be opened as a network namespace right now.
fn is_namespace(path: &Path) -> bool {
    Netns::open(path).is_ok()
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
