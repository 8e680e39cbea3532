//! The kernel layer: Linux bridges, veth pairs and network namespaces over netlink.
//!
//! It knows nothing of HTTP or SQL: callers pass names, addresses and ownership marks (the
//! IFLA_IFALIAS "netbridge:<id>") and get ifindexes and link lists back. Everything runs
//! in-process over netlink; no `ip`/`iptables` processes, each of which would cost
//! milliseconds.
//!
//! Work inside a container's namespace happens on a dedicated OS thread per operation (see
//! `netns`), never on a tokio worker, because `setns` changes the whole thread.

mod error;
mod firewall;
mod link;
mod netns;
mod netns_etc;
mod prefixes;
pub mod probe;
mod sysctl;
mod veth;

#[cfg(test)]
mod tests;

pub use error::KernelError;
pub use firewall::{DEFAULT_TABLE, FORWARD_MARK, Firewall, NetworkRules, Nftables};
pub use link::{BridgeSpec, Ensured, Kernel, LinkInfo};
pub use netns::{
    NamespaceId, Netns, find_process_in, is_kernel_thread, namespace_of_pid, off_limits_namespaces,
};
pub use netns_etc::{ETC_FILES, remove_netns_etc, write_netns_etc};
pub use sysctl::{InterfaceSysctl, set_sysctl};
pub use veth::Attachment;
