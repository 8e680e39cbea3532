//! Addresses and routes: the primitives every driver's endpoint and network set-up uses, and
//! the address maths for reading them back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::{
    Handle, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::{AddressAttribute, AddressFlags, AddressMessage},
        route::{RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType},
    },
};
use tracing::debug;

use super::{KernelError, error::netlink_errno};

/// Adds one address; IPv6 ones skip duplicate address detection, since we hand them out
/// ourselves and a tentative address would make the first packets fail.
pub(crate) async fn add_address(
    handle: &Handle,
    index: u32,
    link: &str,
    addr: IpAddr,
    prefix_len: u8,
) -> Result<(), KernelError> {
    let mut request = handle.address().add(index, addr, prefix_len);
    if addr.is_ipv6() {
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request
        .execute()
        .await
        .map_err(|e| KernelError::netlink("add address", format!("{link} {addr}/{prefix_len}"), e))
}

/// An address with its prefix length.
pub(crate) fn prefix_of(msg: &AddressMessage) -> Option<(IpAddr, u8)> {
    address_of(msg).map(|ip| (ip, msg.header.prefix_len))
}

/// The interface's own address of an address message (IFA_LOCAL; IFA_ADDRESS is the peer on
/// point-to-point links).
pub(crate) fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

pub(crate) fn is_connected_v4(route: &RouteMessage) -> bool {
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    route.header.address_family == AddressFamily::Inet
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
        && route.header.scope == RouteScope::Link
        && route.header.kind == RouteType::Unicast
}

/// The network address of `ip/len` (host bits cleared).
pub(crate) fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

pub(crate) fn validate_prefix(addr: IpAddr, len: u8) -> Result<(), KernelError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(KernelError::invalid(
            "address",
            format!("{addr}/{len}: prefix longer than {max}"),
        ));
    }
    Ok(())
}

/// Which default route(s) to point at an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gateways {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

/// Adds the default route(s) via `index`, keeping one that is already there (EEXIST under
/// NLM_F_EXCL): the first network a container joins keeps the default route. With `replace`,
/// whatever default route was there is replaced instead.
pub(crate) async fn add_default_routes(
    handle: &Handle,
    index: u32,
    link: &str,
    gateways: Gateways,
    replace: bool,
) -> Result<(), KernelError> {
    if let Some(gateway) = gateways.v4 {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        add_default_route(handle, route, link, gateway.into(), replace).await?;
    }
    if let Some(gateway) = gateways.v6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        add_default_route(handle, route, link, gateway.into(), replace).await?;
    }
    Ok(())
}

async fn add_default_route(
    handle: &Handle,
    route: RouteMessage,
    link: &str,
    gateway: IpAddr,
    replace: bool,
) -> Result<(), KernelError> {
    let request = handle.route().add(route);
    let request = if replace { request.replace() } else { request };
    match request.execute().await {
        Ok(()) => Ok(()),
        Err(e) if !replace && netlink_errno(&e) == Some(libc::EEXIST) => {
            debug!(link, %gateway, "namespace already has a default route, kept it");
            Ok(())
        }
        Err(e) => Err(KernelError::netlink(
            "add default route",
            format!("{link} via {gateway}"),
            e,
        )),
    }
}
