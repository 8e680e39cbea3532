//! The journal, in types: every operation that touches the kernel is one [`Op`], recorded
//! before its first kernel call and closed after its last. Each variant says what it does and,
//! in [`Op::undo`], how start-up undoes it when a crash cut it short; the match there is
//! exhaustive, so a new operation cannot be added without its rollback.
//!
//! Stored as the store's `op` (the variant's name) and `detail` (its fields, as JSON). The field
//! names are the ones older journals used, so an entry left by an older build still reads.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::path::Path;

use super::containers::delete_netns;
use super::{Daemon, Result, driver};
use crate::kernel::Netns;
use crate::store::JournalEntry;

fn bridge_driver() -> String {
    "bridge".to_string()
}

/// One journaled operation: what its kernel work names, so a crash at any point can be undone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Op {
    /// Do: row, then the driver's kernel objects, then firewall. Undo: endpoints, firewall,
    /// row, then whatever the driver made (its state says what).
    CreateNetwork {
        #[serde(default = "bridge_driver")]
        driver: String,
        #[serde(flatten)]
        state: Map<String, Value>,
    },
    /// Do: firewall and the driver's cut-off of its kernel objects (a bridge goes down, is
    /// renamed and joins the doomed group), then the row. Undo: nothing; the row still
    /// stands, or the work was done, and the kernel sync puts back what a row needs.
    RemoveNetwork {
        #[serde(default = "bridge_driver")]
        driver: String,
    },
    /// Do: row (reserving the address), then the driver's attach. Undo: the driver's detach,
    /// the row, and the namespace's record if nothing else uses it.
    Connect {
        #[serde(default = "bridge_driver")]
        driver: String,
        host_ifname: String,
        container: String,
        /// The container's namespace, for drivers whose interface lives only in there.
        #[serde(default)]
        netns: String,
    },
    /// Do: the driver's cut-off (its links into the doomed group that the reaper and
    /// start-up delete, the container end down and renamed), then the row. Undo: the doomed
    /// links inside `netns` deleted; then the row stands and is re-attached, or it is gone and
    /// the work was done.
    Disconnect {
        host_ifname: String,
        /// The container's namespace, for drivers whose interface lives only in there: its
        /// doomed group is the reaper's to delete, and the entry stays open until it has.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        netns: String,
    },
    /// Do: row, then namespace. Undo: row and namespace.
    CreateSandbox { name: String, path: String },
    /// Do: namespace, then row. Undo: a namespace whose row is gone is finished off.
    RemoveSandbox {
        name: String,
        #[serde(default)]
        kind: String,
    },
    /// Do: the sandbox, then its lifecycle record. Undo: a sandbox without its record goes
    /// (a retry then succeeds). Subject: the container's name.
    CreateContainer { name: String },
    /// Do: host ports held, each planned network joined (each its own connect), ports
    /// published (rows, firewall), then recorded running. Undo: a start not recorded as done
    /// unpublishes its ports and leaves every network again.
    StartContainer { name: String },
    /// Do: every network left, then recorded exited with `exit_code`. Undo: the stop is
    /// finished.
    StopContainer {
        name: String,
        #[serde(default = "killed")]
        exit_code: i64,
    },
}

/// The exit code of a stop whose journal entry does not say (a kill's).
fn killed() -> i64 {
    super::lifecycle::EXIT_KILLED
}

impl Op {
    /// The store's form: the variant's name and its fields.
    pub(super) fn record(&self) -> (&'static str, Value) {
        let name = match self {
            Op::CreateNetwork { .. } => "create_network",
            Op::RemoveNetwork { .. } => "remove_network",
            Op::Connect { .. } => "connect",
            Op::Disconnect { .. } => "disconnect",
            Op::CreateSandbox { .. } => "create_sandbox",
            Op::RemoveSandbox { .. } => "remove_sandbox",
            Op::CreateContainer { .. } => "create_container",
            Op::StartContainer { .. } => "start_container",
            Op::StopContainer { .. } => "stop_container",
        };
        let mut detail = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut detail {
            fields.remove("op");
        }
        (name, detail)
    }

    /// A container's lifecycle step: settled before every other operation, since a start's
    /// and a stop's connects and disconnects are journaled (and rolled back) on their own.
    pub(super) fn is_lifecycle(&self) -> bool {
        matches!(
            self,
            Op::CreateContainer { .. } | Op::StartContainer { .. } | Op::StopContainer { .. }
        )
    }

    /// Reads a stored entry back; `None` for one this build does not know.
    pub(super) fn read(entry: &JournalEntry) -> Option<Op> {
        let mut fields = match &entry.detail {
            Value::Object(fields) => fields.clone(),
            _ => Map::new(),
        };
        fields.insert("op".to_string(), Value::String(entry.op.clone()));
        serde_json::from_value(Value::Object(fields)).ok()
    }

    /// Undoes this operation, cut short by a crash, on `subject` (the network, endpoint or
    /// container it was about). Returns what was repaired, one line each.
    pub(super) async fn undo(&self, d: &Daemon, subject: &str) -> Result<Vec<String>> {
        let mut repairs = Vec::new();
        match self {
            Op::CreateNetwork { driver, state } => {
                if let Some(n) = d.store.network(subject).await? {
                    for e in d.store.endpoints_of_network(&n.id).await? {
                        let c = d.store.container(&e.container_id).await?;
                        let _ = d.detach_endpoint(&n, &e, c.as_ref()).await;
                        d.store.delete_endpoint(&e.id).await?;
                    }
                    d.firewall_remove(&n).await;
                    d.store.delete_network(&n.id).await?;
                }
                let state = Value::Object(state.clone());
                if let Some(drv) = driver::find(driver)
                    && let Some(removed) = drv.remove(d.driver_env(), subject, &state).await?
                {
                    repairs.push(format!(
                        "interrupted create of network {subject}: {removed} removed"
                    ));
                }
                repairs.push(format!(
                    "interrupted create of network {subject} rolled back"
                ));
            }
            Op::Connect {
                driver,
                host_ifname,
                container,
                netns,
            } => {
                if let Some(drv) = driver::find(driver) {
                    let ns = match (drv.lives_inside(), d.store.container(container).await?) {
                        (false, _) => None,
                        (true, Some(c)) => d.open_namespace(&c).await,
                        (true, None) => Netns::open(Path::new(netns)).ok(),
                    };
                    let _ = drv
                        .detach(d.driver_env(), subject, host_ifname, ns.as_ref())
                        .await;
                }
                d.store.delete_endpoint(subject).await?;
                d.forget_unused_namespace(container).await?;
                repairs.push(format!(
                    "interrupted connect of endpoint {subject} rolled back"
                ));
            }
            Op::CreateSandbox { name, .. } => {
                d.store.delete_container(subject).await?;
                let _ = delete_netns(&d.settings.netns_dir, name).await;
                repairs.push(format!(
                    "interrupted create of sandbox {subject} rolled back"
                ));
            }
            Op::RemoveSandbox { name, kind } => {
                // Row gone: the removal had finished but for its journal entry.
                if d.store.container(subject).await?.is_none() && kind == "sandbox" {
                    let _ = delete_netns(&d.settings.netns_dir, name).await;
                    d.forget_sandbox_resolver(subject, name).await;
                }
                repairs.push(format!("interrupted removal of sandbox {subject} settled"));
            }
            Op::RemoveNetwork { .. } => {
                repairs.push(format!("interrupted remove_network of {subject} settled"));
            }
            Op::Disconnect { netns, .. } => {
                // A namespace that is gone took its links with it.
                if !netns.is_empty()
                    && let Ok(ns) = Netns::open(Path::new(netns))
                    && let Err(e) = crate::kernel::reap_doomed_in(&ns).await
                {
                    repairs.push(format!("doomed links in {netns} could not be deleted: {e}"));
                }
                repairs.push(format!("interrupted disconnect of {subject} settled"));
            }
            Op::CreateContainer { .. } => repairs.push(d.undo_create_container(subject).await?),
            Op::StartContainer { .. } => repairs.push(d.undo_start_container(subject).await?),
            Op::StopContainer { exit_code, .. } => {
                repairs.push(d.finish_stop_container(subject, *exit_code).await?)
            }
        }
        Ok(repairs)
    }
}

impl Daemon {
    /// Records an operation's intent; returns the entry to close with `end_op`/`finish_op`.
    pub(super) async fn journal(&self, subject: &str, op: &Op) -> Result<i64> {
        let (name, detail) = op.record();
        Ok(self.store.begin_op(name, subject, &detail).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: &str, detail: Value) -> JournalEntry {
        JournalEntry {
            id: 1,
            op: op.to_string(),
            subject: "x".to_string(),
            detail,
            started_nanos: 0,
        }
    }

    #[test]
    fn every_op_reads_back_as_recorded() {
        let ops = [
            Op::CreateNetwork {
                driver: "macvlan".into(),
                state: serde_json::json!({"parent": "eth0"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
            Op::RemoveNetwork {
                driver: "bridge".into(),
            },
            Op::Connect {
                driver: "bridge".into(),
                host_ifname: "veth1234567".into(),
                container: "c".into(),
                netns: "/run/netns/a".into(),
            },
            Op::Disconnect {
                host_ifname: "veth1234567".into(),
                netns: String::new(),
            },
            Op::Disconnect {
                host_ifname: "-".into(),
                netns: "/run/netns/a".into(),
            },
            Op::CreateSandbox {
                name: "a".into(),
                path: "/run/netns/a".into(),
            },
            Op::RemoveSandbox {
                name: "a".into(),
                kind: "sandbox".into(),
            },
            Op::CreateContainer { name: "a".into() },
            Op::StartContainer { name: "a".into() },
            Op::StopContainer {
                name: "a".into(),
                exit_code: 143,
            },
        ];
        for op in ops {
            let (name, detail) = op.record();
            assert_eq!(Op::read(&entry(name, detail)), Some(op));
        }
    }

    #[test]
    fn entries_of_older_builds_still_read() {
        let old = entry(
            "create_network",
            serde_json::json!({"bridge": "br-1", "adopted": false}),
        );
        match Op::read(&old) {
            Some(Op::CreateNetwork { driver, state }) => {
                assert_eq!(driver, "bridge");
                assert_eq!(state.get("bridge"), Some(&Value::from("br-1")));
            }
            other => panic!("read {other:?}"),
        }
        let old = entry(
            "connect",
            serde_json::json!({"host_ifname": "veth1", "container": "c"}),
        );
        assert!(matches!(Op::read(&old), Some(Op::Connect { .. })));
        assert_eq!(Op::read(&entry("unknown", Value::Null)), None);
    }
}
