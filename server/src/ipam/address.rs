//! Endpoint addresses inside one network's subnet (SEMANTICS §6 "Inside a subnet", "Endpoint addresses").

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::cidr::{Cidr, from_bits, to_bits};
use super::config::NetworkConfig;

/// Whether the subnet's first address is kept from hosts: always for IPv6 (the Subnet-Router anycast
/// address), for IPv4 except /31 and /32 (RFC 3021), as Docker does.
pub(crate) fn network_address_reserved(subnet: &Cidr) -> bool {
    !subnet.is_ipv4() || subnet.prefix <= 30
}

/// Addresses never handed to an endpoint: the network address, IPv4 broadcast (not for /31,/32), gateway, aux addresses.
///
/// Like Docker, an IPv4 /31 or /32 keeps no network address either: every address is a host.
pub fn reserved_addresses(cfg: &NetworkConfig) -> BTreeSet<IpAddr> {
    let subnet = cfg.subnet;
    network_address_reserved(&subnet)
        .then(|| subnet.network())
        .into_iter()
        .chain(subnet.broadcast())
        .chain(std::iter::once(cfg.gateway))
        .chain(cfg.aux.values().copied())
        .collect()
}

/// Lowest address of `span` in none of `taken`; walks only past taken addresses, never the whole span.
pub(crate) fn first_free_in(span: &Cidr, taken: &[&BTreeSet<IpAddr>]) -> Option<IpAddr> {
    let last = span.last_bits();
    let mut candidate = span.first_bits();
    loop {
        let addr = from_bits(span.addr, candidate);
        if !taken.iter().any(|set| set.contains(&addr)) {
            return Some(addr);
        }
        candidate = candidate.checked_add(1).filter(|c| *c <= last)?;
    }
}

/// Lowest free address in ip_range (or the subnet), skipping reserved_addresses and `used` (endpoint addresses). First fit, so a released address is handed out again next. Must not iterate a whole IPv6 /64: walk forward from the start skipping the sorted used/reserved set.
pub fn first_free(cfg: &NetworkConfig, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let span = cfg.ip_range.unwrap_or(cfg.subnet);
    first_free_in(&span, &[&reserved_addresses(cfg), used])
}

/// The lowest free address after `after`, wrapping to [`first_free`]: serial allocation, so an
/// address released (or lost with a dead host's lease) is not handed out again at once, while
/// the host that held it may still be coming back.
pub fn next_free(cfg: &NetworkConfig, used: &BTreeSet<IpAddr>, after: IpAddr) -> Option<IpAddr> {
    let span = cfg.ip_range.unwrap_or(cfg.subnet);
    if span.contains(after) {
        let reserved = reserved_addresses(cfg);
        let mut candidate = to_bits(after);
        while let Some(c) = candidate.checked_add(1).filter(|c| *c <= span.last_bits()) {
            candidate = c;
            let addr = from_bits(span.addr, c);
            if !reserved.contains(&addr) && !used.contains(&addr) {
                return Some(addr);
            }
        }
    }
    first_free(cfg, used)
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    #[test]
    fn next_free_goes_on_after_the_last_then_wraps() {
        let cfg = NetworkConfig {
            subnet: "10.0.0.0/24".parse().unwrap(),
            ip_range: None,
            gateway: "10.0.0.1".parse().unwrap(),
            aux: Default::default(),
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let used: BTreeSet<IpAddr> = [ip("10.0.0.2"), ip("10.0.0.6")].into();
        assert_eq!(next_free(&cfg, &used, ip("10.0.0.5")), Some(ip("10.0.0.7")));
        assert_eq!(
            next_free(&cfg, &used, ip("10.0.0.254")),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(next_free(&cfg, &used, ip("10.9.9.9")), Some(ip("10.0.0.3")));
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StaticError {
    #[error("no configured subnet contains IP address {0}")]
    NotInSubnet(IpAddr),
    /// The gateway, an aux address or another endpoint's address.
    #[error("Address already in use")]
    InUse,
    /// Docker answers "Address already in use" here too (the address is pre-reserved); the reason is added.
    #[error("Address already in use: {0} is the subnet's network address")]
    NetworkAddress(IpAddr),
    /// Docker answers "Address already in use" here too (the address is pre-reserved); the reason is added.
    #[error("Address already in use: {0} is the subnet's broadcast address")]
    Broadcast(IpAddr),
}

/// A requested static address: inside the subnet, not network/broadcast, not reserved or used.
///
/// An address outside ip_range but inside the subnet is allowed, as in Docker.
pub fn check_static(
    cfg: &NetworkConfig,
    ip: IpAddr,
    used: &BTreeSet<IpAddr>,
) -> Result<(), StaticError> {
    let subnet = cfg.subnet;
    if !subnet.contains(ip) {
        return Err(StaticError::NotInSubnet(ip));
    }
    if network_address_reserved(&subnet) && ip == subnet.network() {
        return Err(StaticError::NetworkAddress(ip));
    }
    if subnet.broadcast() == Some(ip) {
        return Err(StaticError::Broadcast(ip));
    }
    if ip == cfg.gateway || cfg.aux.values().any(|a| *a == ip) || used.contains(&ip) {
        return Err(StaticError::InUse);
    }
    Ok(())
}

/// Docker's Status.IPAM.Subnets entry: (IPsInUse, DynamicIPsAvailable). InUse counts network address, broadcast, gateway, aux addresses and `used`; Available = size of ip_range (or subnet) minus what is used inside it (saturating at u64::MAX). Fresh /16 with gateway: (3, 65533).
///
/// Addresses in `used` outside the subnet are ignored: Docker's bitmap cannot hold them.
pub fn status(cfg: &NetworkConfig, used: &BTreeSet<IpAddr>) -> (u64, u64) {
    let reserved = reserved_addresses(cfg);
    let all: BTreeSet<IpAddr> = reserved
        .iter()
        .chain(used)
        .copied()
        .filter(|a| cfg.subnet.contains(*a))
        .collect();
    let span = cfg.ip_range.unwrap_or(cfg.subnet);
    let in_span = all
        .range(from_bits(span.addr, span.first_bits())..=from_bits(span.addr, span.last_bits()))
        .count();
    let saturate = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
    let in_use = saturate(all.len() as u128);
    let available = saturate(span.size().saturating_sub(in_span as u128));
    (in_use, available)
}
