//! netbridge: the Docker Engine network API over SQLite and Linux bridges.
//!
//! Layers, outermost first (each folder is one concern):
//! - [`api`]: HTTP routes, Docker wire types and error mapping. Knows nothing of netlink or SQL.
//! - [`service`]: orders store and kernel work so that a crash at any point can be repaired.
//! - [`store`]: every SQL statement; SQLite in WAL mode.
//! - [`ipam`]: pure functions over addresses and subnets.
//! - [`kernel`]: netlink (bridges, veths, namespaces, addresses, routes) and the firewall.

pub mod api;
pub mod config;
pub mod dns;
pub mod ipam;
pub mod kernel;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod service;
pub mod store;
