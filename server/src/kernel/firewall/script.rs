//! The nftables script text of netbridge's fixed ruleset, and the set elements of each network
//! (the one list both the script and the netlink batches of `netlink` are made from). Pure
//! functions, so the exact text is unit-tested without a kernel.

use std::{
    collections::BTreeSet,
    fmt::{self, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use super::{NetworkRules, PortRule};
use crate::kernel::KernelError;

/// The packet mark bit set on forwarded traffic that netbridge allows, so that one fixed rule in
/// a host firewall's FORWARD chain (`meta mark & M == M accept`, which iptables-nft shows as
/// `-m mark --mark M/M -j ACCEPT`) lets it pass a drop policy. A single bit, OR-ed in, so the
/// other bits of the mark (kube-proxy 0x4000/0x8000, Tailscale 0xff0000, wg-quick 0xca6c...)
/// are left alone.
pub const FORWARD_MARK: u32 = 0x0100_0000;

/// The named sets of `table inet <table>`. Every network is a handful of elements in them; the
/// rules never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Set {
    /// Every bridge of netbridge's.
    Bridges,
    /// `bridge . bridge` for every bridge: "in and out through the same bridge" as a lookup,
    /// since nftables cannot compare `iifname` with `oifname` directly.
    Same,
    /// Bridges of `Internal` networks.
    Internal,
    /// Bridges with inter-container communication off.
    NoIcc,
    /// IPv4 subnets to masquerade when leaving through anything but one of our bridges.
    MasqV4,
    /// IPv6 subnets, likewise.
    MasqV6,
    /// Published ports on every local IPv4 address: `proto . port : address . port`.
    PortsV4,
    /// Published ports on every local IPv6 address.
    PortsV6,
    /// Published ports on one host IPv4 address: `address . proto . port : address . port`.
    PortsAddrV4,
    /// Published ports on one host IPv6 address.
    PortsAddrV6,
}

impl Set {
    pub(super) const ALL: [Set; 10] = [
        Set::Bridges,
        Set::Same,
        Set::Internal,
        Set::NoIcc,
        Set::MasqV4,
        Set::MasqV6,
        Set::PortsV4,
        Set::PortsV6,
        Set::PortsAddrV4,
        Set::PortsAddrV6,
    ];

    /// The sets that hold networks.
    #[cfg(test)]
    pub(super) const NETWORKS: [Set; 6] = [
        Set::Bridges,
        Set::Same,
        Set::Internal,
        Set::NoIcc,
        Set::MasqV4,
        Set::MasqV6,
    ];

    /// The maps of published ports.
    pub(super) const PORTS: [Set; 4] = [
        Set::PortsV4,
        Set::PortsV6,
        Set::PortsAddrV4,
        Set::PortsAddrV6,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Set::Bridges => "bridges",
            Set::Same => "same",
            Set::Internal => "internal",
            Set::NoIcc => "no_icc",
            Set::MasqV4 => "masq_v4",
            Set::MasqV6 => "masq_v6",
            Set::PortsV4 => "ports_v4",
            Set::PortsV6 => "ports_v6",
            Set::PortsAddrV4 => "ports_addr_v4",
            Set::PortsAddrV6 => "ports_addr_v6",
        }
    }

    fn declaration(self) -> &'static str {
        match self {
            Set::Bridges | Set::Internal | Set::NoIcc => "type ifname;",
            Set::Same => "type ifname . ifname;",
            Set::MasqV4 => "type ipv4_addr; flags interval;",
            Set::MasqV6 => "type ipv6_addr; flags interval;",
            Set::PortsV4 => "type inet_proto . inet_service : ipv4_addr . inet_service;",
            Set::PortsV6 => "type inet_proto . inet_service : ipv6_addr . inet_service;",
            Set::PortsAddrV4 => {
                "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;"
            }
            Set::PortsAddrV6 => {
                "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;"
            }
        }
    }
}

/// A network whose bridge name and subnets were checked (nothing reaches the script that could
/// change its meaning) and whose subnets are in canonical form (host bits cleared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Checked {
    pub(super) bridge: String,
    pub(super) subnets: Vec<(IpAddr, u8)>,
    pub(super) internal: bool,
    pub(super) icc: bool,
    pub(super) masquerade: bool,
}

impl Checked {
    pub(super) fn new(n: &NetworkRules) -> Result<Checked, KernelError> {
        check_ifname(&n.bridge)?;
        let subnets = n
            .subnets
            .iter()
            .map(|&(addr, prefix)| canonical_subnet(addr, prefix))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checked {
            bridge: n.bridge.clone(),
            subnets,
            internal: n.internal,
            icc: n.icc,
            masquerade: n.masquerade,
        })
    }

    pub(super) fn has_ipv6(&self) -> bool {
        self.subnets.iter().any(|(addr, _)| addr.is_ipv6())
    }

    /// The elements this network puts into the sets, given its options. An `Internal` network
    /// never leaves its bridge, so it is never masqueraded.
    pub(super) fn elements(&self) -> Vec<(Set, Element)> {
        let mut out = vec![
            (Set::Bridges, Element::Ifname(self.bridge.clone())),
            (Set::Same, Element::SameIfname(self.bridge.clone())),
        ];
        if self.internal {
            out.push((Set::Internal, Element::Ifname(self.bridge.clone())));
        }
        if !self.icc {
            out.push((Set::NoIcc, Element::Ifname(self.bridge.clone())));
        }
        if self.masquerade && !self.internal {
            out.extend(self.subnet_elements());
        }
        out
    }

    /// Every element the network could own whatever its options, for removal: a network
    /// removed with options other than it was added with still leaves nothing behind.
    pub(super) fn all_elements(&self) -> Vec<(Set, Element)> {
        let mut out = vec![
            (Set::Bridges, Element::Ifname(self.bridge.clone())),
            (Set::Same, Element::SameIfname(self.bridge.clone())),
            (Set::Internal, Element::Ifname(self.bridge.clone())),
            (Set::NoIcc, Element::Ifname(self.bridge.clone())),
        ];
        out.extend(self.subnet_elements());
        out
    }

    fn subnet_elements(&self) -> impl Iterator<Item = (Set, Element)> + '_ {
        self.subnets.iter().map(|&(addr, prefix)| {
            let set = if addr.is_ipv4() {
                Set::MasqV4
            } else {
                Set::MasqV6
            };
            (set, Element::Subnet(addr, prefix))
        })
    }
}

/// One element of one of the sets, typed, so that the script (its text) and the netlink batch
/// (its key bytes, see `netlink`) are made from the same list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Element {
    /// A bridge's name (`bridges`, `internal`, `no_icc`).
    Ifname(String),
    /// `"br" . "br"` (`same`).
    SameIfname(String),
    /// A subnet in canonical form (`masq_v4`, `masq_v6`).
    Subnet(IpAddr, u8),
    /// A published port (the `ports_*` maps).
    Port(PortRule),
}

/// The element as nft's script syntax writes it.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Ifname(name) => write!(f, "{}", quoted(name)),
            Element::SameIfname(name) => write!(f, "{0} . {0}", quoted(name)),
            Element::Subnet(addr, prefix) => write!(f, "{addr}/{prefix}"),
            Element::Port(p) => {
                if let Some(host) = p.host_ip {
                    write!(f, "{host} . ")?;
                }
                write!(
                    f,
                    "{} . {} : {} . {}",
                    p.proto.name(),
                    p.host_port,
                    p.target,
                    p.target_port
                )
            }
        }
    }
}

/// The whole ruleset, replacing whatever `table inet <table>` held, in one transaction: the
/// `add`+`delete` pair removes an existing table (and does not fail on a missing one), then the
/// table is declared afresh with exactly `networks`' elements.
pub(super) fn ruleset(table: &str, networks: &[Checked]) -> String {
    let m = format!("{FORWARD_MARK:#010x}");
    let mut s =
        format!("add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
    for set in Set::ALL {
        let kind = if Set::PORTS.contains(&set) {
            "map"
        } else {
            "set"
        };
        let _ = writeln!(s, "\t{kind} {} {{ {} }}", set.name(), set.declaration());
    }
    // Forward, before the `filter` priority where iptables(-nft) and most host firewalls hook:
    // drops here are final; accepts only end this chain, so allowed traffic is also marked for
    // the one accept rule netbridge keeps in a host FORWARD chain (see `host`).
    let _ = write!(
        s,
        "\tchain forward {{
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tiifname != @bridges oifname != @bridges accept
\t\tiifname . oifname @same jump same_bridge
\t\tiifname @internal drop
\t\toifname @internal drop
\t\tct status dnat oifname @bridges meta mark set meta mark | {m} accept
\t\tiifname @bridges oifname @bridges drop
\t\tiifname @bridges meta mark set meta mark | {m} accept
\t\tct state established,related meta mark set meta mark | {m} accept
\t}}
\tchain same_bridge {{
\t\tiifname @no_icc drop
\t\tmeta mark set meta mark | {m} accept
\t}}
\tchain postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr @masq_v4 oifname != @bridges masquerade
\t\tip6 saddr @masq_v6 oifname != @bridges masquerade
\t\tct status dnat iifname . oifname @same masquerade
\t\tip saddr 127.0.0.0/8 oifname @bridges masquerade
\t}}
\tchain published {{
\t\tdnat ip to ip daddr . meta l4proto . th dport map @ports_addr_v4
\t\tdnat ip to meta l4proto . th dport map @ports_v4
\t\tdnat ip6 to ip6 daddr . meta l4proto . th dport map @ports_addr_v6
\t\tdnat ip6 to meta l4proto . th dport map @ports_v6
\t}}
\tchain prerouting {{
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local ip daddr != 127.0.0.0/8 jump published
\t\tfib daddr type local ip6 daddr != ::1 jump published
\t}}
\tchain output {{
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local jump published
\t}}
\tchain localnet {{
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tiifname @bridges ip daddr 127.0.0.0/8 drop
\t}}
}}
"
    );
    // One `add element` per set; subnets deduplicated (two networks never share one, but a
    // duplicate must not make start-up fail).
    for set in Set::ALL {
        let elements: BTreeSet<String> = networks
            .iter()
            .flat_map(Checked::elements)
            .filter(|(s, _)| *s == set)
            .map(|(_, e)| e.to_string())
            .collect();
        push_elements(
            &mut s,
            "add",
            table,
            set,
            elements.iter().map(String::as_str),
        );
    }
    s
}

/// One network's elements added. `add element` of an element already there is not an error,
/// so this is idempotent. (`Nftables::add_network` sends the same elements over netlink; this
/// text is what that batch is checked against.)
#[cfg(test)]
pub(super) fn add_network(table: &str, n: &Checked) -> String {
    let mut s = String::new();
    for (set, element) in n.elements() {
        push_elements(&mut s, "add", table, set, [element.to_string().as_str()]);
    }
    s
}

/// One network's elements removed. nftables 1.0.6 has no `destroy element` (1.0.8), and
/// `delete element` of an absent element fails the transaction, so each element is first added
/// then deleted in the same transaction: present or not, it is gone afterwards. (Likewise sent
/// over netlink by `Nftables::remove_network`.)
#[cfg(test)]
pub(super) fn remove_network(table: &str, n: &Checked) -> String {
    let mut s = String::new();
    for (set, element) in n.all_elements() {
        let element = element.to_string();
        push_elements(&mut s, "add", table, set, [element.as_str()]);
        push_elements(&mut s, "delete", table, set, [element.as_str()]);
    }
    s
}

fn push_elements<'a>(
    s: &mut String,
    verb: &str,
    table: &str,
    set: Set,
    elements: impl IntoIterator<Item = &'a str>,
) {
    let list: Vec<&str> = elements.into_iter().collect();
    if !list.is_empty() {
        let _ = writeln!(
            s,
            "{verb} element inet {table} {} {{ {} }}",
            set.name(),
            list.join(", ")
        );
    }
}

fn quoted(ifname: &str) -> String {
    format!("\"{ifname}\"")
}

/// An interface name as the kernel accepts it (1–15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace), further limited to printable ASCII without `"`, `\` and `*`: inside an nft
/// script a quote would end the string and a trailing `*` would make a wildcard.
pub(super) fn check_ifname(name: &str) -> Result<(), KernelError> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/:\"\\*".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KernelError::invalid(
            "bridge name for the firewall",
            format!("{name:?}"),
        ))
    }
}

/// A table name nft reads as a plain identifier.
pub(super) fn check_table(name: &str) -> Result<(), KernelError> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KernelError::invalid(
            "nftables table name",
            format!("{name:?}"),
        ))
    }
}

/// The subnet's network address (host bits cleared), or `Invalid` for a prefix too long for
/// the family.
fn canonical_subnet(addr: IpAddr, prefix: u8) -> Result<(IpAddr, u8), KernelError> {
    match addr {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Ok((IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), prefix))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Ok((IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), prefix))
        }
        _ => Err(KernelError::invalid(
            "subnet for the firewall",
            format!("{addr}/{prefix}"),
        )),
    }
}
