//! IP address management: pure functions over addresses and subnets (SEMANTICS §5 steps 3, 8, 9 and §6).
//!
//! No I/O here: callers pass in what is taken (existing subnets, host routes, endpoint addresses) and
//! store what comes back, so every rule is testable without a kernel or a database.

mod address;
mod cidr;
mod config;
mod pool;
#[cfg(test)]
mod tests;

pub use address::{StaticError, check_static, first_free, next_free, reserved_addresses, status};
pub use cidr::{Cidr, ParseError, parse_ip};
pub use config::{
    AllocError, ConfigError, ConfigRequest, NetworkConfig, ParsedConfig, allocate, validate,
};
pub use pool::{Pool, PoolParseError, default_pools, pick_subnet, ula_pool, with_ipv6_pool};
