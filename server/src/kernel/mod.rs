//! The kernel layer: netlink primitives (`link`, `address`, `inside`) and what drivers build
//! from them (`bridge`, `veth`, `macvlan`), network namespaces, the firewall.
//!
//! It knows nothing of HTTP or SQL: callers pass names, addresses and ownership marks (the
//! IFLA_IFALIAS "netbridge:<id>") and get ifindexes and link lists back. Everything runs
//! in-process over netlink; no `ip`/`iptables` processes, each of which would cost
//! milliseconds.
//!
//! Work inside a container's namespace happens on a dedicated OS thread per operation (see
//! `netns`), never on a tokio worker, because `setns` changes the whole thread.

mod address;
mod bridge;
mod datagrams;
mod doomed;
mod error;
mod firewall;
mod inside;
mod kinds;
mod link;
mod macvlan;
mod netns;
mod netns_etc;
mod prefixes;
pub mod probe;
mod reservation;
mod resolver;
mod sysctl;
mod task;
mod veth;
mod vxlan;

#[cfg(test)]
mod tests;

pub use address::Gateways;
pub use bridge::{BridgeSpec, Ensured};
pub use datagrams::{BATCH, Inbox, Outbox, Peer};
pub use doomed::{DOOMED_ALIAS, DOOMED_GROUP, DoomedLinks, reap_doomed_in};
pub use error::KernelError;
pub use firewall::{
    DEFAULT_TABLE, FORWARD_MARK, Firewall, NetworkRules, Nftables, PortRule, Proto,
};
pub use inside::{LateAddresses, Ready};
pub use kinds::{LinkKinds, PROBED as PROBED_KINDS};
pub use link::{Kernel, LinkInfo};
pub use macvlan::{MacvlanAttachment, MacvlanMode};
pub use netns::{
    NamespaceId, Netns, find_process_in, is_kernel_thread, namespace_of_pid, off_limits_namespaces,
};
pub use netns_etc::{ETC_FILES, remove_netns_etc, write_netns_etc};
pub use reservation::{Reservation, reserve_port};
pub use resolver::{ResolverSockets, open_resolver_sockets};
pub use sysctl::{InterfaceSysctl, set_sysctl};
pub use veth::Attachment;
pub use vxlan::{RemotePeer, VXLAN_OVERHEAD, VXLAN_PORT, VxlanSpec};
