//! A create request's IPAM.Config: validation (SEMANTICS §5 step 3) and allocation (step 8, bridge step 9).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::address::{first_free_in, network_address_reserved};
use super::cidr::{Cidr, parse_ip};
use super::pool::{Pool, pick_subnet, usable_pools};

/// One IPAM.Config entry of a create request, raw strings as on the wire. "" means unset (older CLIs send "Gateway":"").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    pub subnet: String,
    pub ip_range: String,
    pub gateway: String,
    pub aux: BTreeMap<String, String>,
}

/// One entry after parsing and validation; `subnet` is always set by `validate` (empty entries are dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedConfig {
    pub subnet: Option<Cidr>,
    pub ip_range: Option<Cidr>,
    pub gateway: Option<IpAddr>,
    pub aux: BTreeMap<String, IpAddr>,
}

/// A network's resolved IPAM config for one address family, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Masked.
    pub subnet: Cidr,
    pub ip_range: Option<Cidr>,
    pub gateway: IpAddr,
    pub aux: BTreeMap<String, IpAddr>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Text that is not an address/CIDR at all (Docker fails JSON decoding for it). Display: the parse error text, e.g. "invalid CIDR address: foo".
    #[error("{0}")]
    Malformed(String),
    /// Docker's step-3 validation items, shown one bare or several as a "* " list.
    #[error("invalid network config:\n{}", list(.0))]
    Invalid(Vec<String>),
}

/// Docker's multierror layout: a single item bare, several as "* item" lines.
fn list(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        _ => format!("* {}", items.join("\n* ")),
    }
}

/// Step 3: parse and validate entries; IPv6 entries are skipped (dropped from the result) unless ipv6 is enabled, IPv4 ones unless ipv4 is enabled. Collect all errors.
///
/// Malformed text anywhere fails first, whatever the family, as Docker's JSON decoding would.
/// An entry with nothing set is dropped: a Docker user sending `Config:[{}]` means "defaults".
pub fn validate(
    configs: &[ConfigRequest],
    ipv4: bool,
    ipv6: bool,
) -> Result<Vec<ParsedConfig>, ConfigError> {
    let parsed = configs
        .iter()
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let mut errors = Vec::new();
    let mut kept = Vec::new();
    for entry in parsed {
        match entry.subnet {
            None => no_subnet_errors(&entry, &mut errors),
            Some(subnet) if subnet.is_ipv4() && !ipv4 => {}
            Some(subnet) if !subnet.is_ipv4() && !ipv6 => {}
            Some(subnet) => {
                subnet_errors(subnet, &entry, &mut errors);
                kept.push(entry);
            }
        }
    }
    if errors.is_empty() {
        Ok(kept)
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// Parses one entry's strings, "" meaning unset.
fn parse_entry(req: &ConfigRequest) -> Result<ParsedConfig, ConfigError> {
    let malformed = |e: super::ParseError| ConfigError::Malformed(e.to_string());
    let cidr = |s: &str| (!s.is_empty()).then(|| s.parse::<Cidr>()).transpose();
    let aux = req
        .aux
        .iter()
        .map(|(name, value)| Ok((name.clone(), parse_ip(value)?)))
        .collect::<Result<_, super::ParseError>>()
        .map_err(malformed)?;
    Ok(ParsedConfig {
        subnet: cidr(&req.subnet).map_err(malformed)?,
        ip_range: cidr(&req.ip_range).map_err(malformed)?,
        gateway: (!req.gateway.is_empty())
            .then(|| parse_ip(&req.gateway))
            .transpose()
            .map_err(malformed)?,
        aux,
    })
}

/// Addresses without a subnet cannot be placed (the docker CLI refuses them client-side).
fn no_subnet_errors(entry: &ParsedConfig, errors: &mut Vec<String>) {
    const WHY: &str = "no subnet is given for it";
    if let Some(r) = entry.ip_range {
        errors.push(format!("invalid ip-range {r}: {WHY}"));
    }
    if let Some(g) = entry.gateway {
        errors.push(format!("invalid gateway {g}: {WHY}"));
    }
    for name in entry.aux.keys() {
        errors.push(format!("invalid auxiliary address {name}: {WHY}"));
    }
}

/// Docker's checks, in Docker's order, for an entry of an enabled family.
fn subnet_errors(subnet: Cidr, entry: &ParsedConfig, errors: &mut Vec<String>) {
    if !subnet.is_masked() {
        errors.push(format!(
            "invalid subnet {subnet}: it should be {}",
            subnet.masked()
        ));
    }
    if let Some(why) = unusable_subnet(subnet.masked()) {
        errors.push(format!("invalid subnet {subnet}: {why}"));
    }
    if let Some(range) = entry.ip_range {
        ip_range_errors(subnet, range, errors);
    }
    let gateway_error = entry
        .gateway
        .and_then(|g| Some((g, address_error(subnet, g)?)));
    if let Some((g, why)) = gateway_error {
        errors.push(format!("invalid gateway {g}: {why}"));
    }
    for (name, a) in &entry.aux {
        if let Some(why) = address_error(subnet, *a) {
            errors.push(format!("invalid auxiliary address {name}: {why}"));
        }
    }
}

/// Ranges that no bridge subnet may touch, and why: the kernel refuses multicast addresses on an
/// interface, and the others already mean something on every host, so a network there would
/// only fail later (as netlink's EINVAL) or break the host's own traffic.
fn special_ranges() -> [(Cidr, &'static str); 8] {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let v4 = |a: u8, b: u8, prefix: u8| Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(a, b, 0, 0)),
        prefix,
    };
    let v6 = |addr: Ipv6Addr, prefix: u8| Cidr {
        addr: IpAddr::V6(addr),
        prefix,
    };
    [
        (v4(0, 0, 8), "addresses in 0.0.0.0/8 (\"this network\")"),
        (v4(127, 0, 8), "loopback addresses"),
        (v4(169, 254, 16), "link-local addresses"),
        (v4(224, 0, 4), "multicast addresses"),
        (v6(Ipv6Addr::LOCALHOST, 128), "loopback addresses"),
        (
            v6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
            "IPv4-mapped addresses",
        ),
        (
            v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
            "link-local addresses",
        ),
        (
            v6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
            "multicast addresses",
        ),
    ]
}

/// Why `subnet` (masked) cannot be a bridge's. A subnet of "0.0.0.0/N" or "::/N" asks for any
/// free /N from the pools, so only its size is checked. fe80::/64 itself stays allowed, as
/// Docker allows it: it is the prefix the kernel gives every interface anyway.
fn unusable_subnet(subnet: Cidr) -> Option<String> {
    if !subnet.network().is_unspecified() {
        let link_local_64 = Cidr {
            addr: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
            prefix: 64,
        };
        let clash = special_ranges()
            .into_iter()
            .find(|(range, _)| range.overlaps(&subnet) && subnet != link_local_64);
        if let Some((range, what)) = clash {
            return Some(if range.contains_cidr(&subnet) {
                format!("{what} cannot be a network's subnet")
            } else {
                format!("it overlaps {range}, and {what} cannot be a network's subnet")
            });
        }
    }
    let width = subnet.width();
    (subnet.prefix + 1 >= width).then(|| {
        format!(
            "a /{} or /{width} leaves no address for a container beside the gateway; use /{} or shorter",
            width - 1,
            width - 2
        )
    })
}

fn family_name(c: &Cidr) -> &'static str {
    if c.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Docker checks containment by overlap, so a range wider than its subnet gets only the "bigger" item.
fn ip_range_errors(subnet: Cidr, range: Cidr, errors: &mut Vec<String>) {
    if range.is_ipv4() != subnet.is_ipv4() {
        errors.push(format!(
            "invalid ip-range {range}: parent subnet is an {} block",
            family_name(&subnet)
        ));
        return;
    }
    if range.prefix < subnet.prefix {
        errors.push(format!(
            "invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}"
        ));
    }
    if !range.is_masked() {
        errors.push(format!(
            "invalid ip-range {range}: it should be {}",
            range.masked()
        ));
    }
    if !subnet.overlaps(&range) {
        errors.push(format!(
            "invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range"
        ));
    } else if subnet.network().is_unspecified() {
        errors.push(format!(
            "invalid ip-range {range}: {}",
            any_subnet_reason(subnet)
        ));
    }
}

/// Why a gateway or aux address does not fit `subnet`, in Docker's words.
fn address_error(subnet: Cidr, a: IpAddr) -> Option<String> {
    if a.is_ipv4() != subnet.is_ipv4() {
        Some(format!(
            "parent subnet is an {} block",
            family_name(&subnet)
        ))
    } else if !subnet.contains(a) {
        Some(format!(
            "parent subnet {subnet} doesn't contain this address"
        ))
    } else if subnet.network().is_unspecified() {
        Some(any_subnet_reason(subnet))
    } else {
        None
    }
}

/// "0.0.0.0/N" (or "::/N") asks for any free /N, so addresses inside it mean nothing.
fn any_subnet_reason(subnet: Cidr) -> String {
    format!(
        "subnet {subnet} only asks for any free /{} from the default pools, so it cannot hold addresses",
        subnet.prefix
    )
}

const POOL_HINT: &str = "add pools with --default-address-pool base=CIDR,size=N, or remove unused networks (docker network prune)";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    /// Docker's v27+ text followed by what the user can do about it.
    #[error("all predefined address pools have been fully subnetted; {POOL_HINT}")]
    Exhausted { v6: bool },
    #[error("bridge driver doesn't support multiple subnets")]
    MultipleSubnets,
    /// IPv6 enabled but no IPv6 subnet given and no IPv6 pool passed in. The daemon always
    /// passes one (see `with_ipv6_pool`), so only direct callers of `allocate` meet this.
    #[error(
        "no IPv6 subnet given and no IPv6 default address pool configured: pass --subnet with an IPv6 prefix (e.g. --subnet fd00:1::/64), or add a pool with --default-address-pool base=fd00::/48,size=64"
    )]
    NoIpv6Pool,
    /// An explicit gateway that is the subnet's network address or broadcast; holds the gateway's text.
    #[error("failed to allocate gateway ({0}): Address already in use")]
    BadGateway(String),
    /// An aux address that is the network address, the broadcast, the gateway or another aux address.
    #[error("failed to allocate secondary ip address ({name}:{addr}): Address already in use")]
    AuxInUse { name: String, addr: IpAddr },
    /// No address left for the gateway (e.g. an IPv6 /128, whose only address is reserved).
    #[error("failed to allocate gateway (): no available addresses in {0}")]
    NoGatewayAddress(Cidr),
}

/// Step 8 (+ bridge step 9 multi-subnet check): decide each enabled family's subnet (given one must not overlap `taken` → Overlap; user-given subnets are NOT checked against `reserved`; none given → pick_subnet from the pools of that family), gateway (given, else the first host address: of ip_range when given, else of the subnet — i.e. lowest address that is not the network address), ip_range, aux. More than one entry per family → MultipleSubnets. Returns IPv4 config first, then IPv6.
///
/// Like Docker, all entries are allocated (IPv4, then IPv6) before the multiple-subnets check, and a
/// subnet of "0.0.0.0/N" or "::/N" is picked from the pools cut into /N (the pools' own sizes for /0).
/// The default gateway also skips aux addresses, where Docker would fail on the clash.
pub fn allocate(
    parsed: &[ParsedConfig],
    ipv4: bool,
    ipv6: bool,
    pools: &[Pool],
    taken: &[Cidr],
    reserved: &[Cidr],
) -> Result<Vec<NetworkConfig>, AllocError> {
    let mut taken: Vec<Cidr> = taken.to_vec();
    let mut out = Vec::new();
    let mut per_family = [0usize; 2];
    for (family_v4, enabled) in [(true, ipv4), (false, ipv6)] {
        if !enabled {
            continue;
        }
        let entries: Vec<&ParsedConfig> = parsed
            .iter()
            .filter(|e| e.subnet.is_some_and(|s| s.is_ipv4() == family_v4))
            .collect();
        let default_entry = ParsedConfig::default();
        let entries = if entries.is_empty() {
            vec![&default_entry]
        } else {
            entries
        };
        per_family[usize::from(family_v4)] = entries.len();
        for entry in entries {
            let subnet = choose_subnet(entry.subnet, family_v4, pools, &taken, reserved)?;
            taken.push(subnet);
            // A picked subnet has no addresses of the user's to place.
            let given = entry.subnet.is_some_and(|s| !s.network().is_unspecified());
            out.push(resolve_addresses(
                subnet,
                if given { entry } else { &default_entry },
            )?);
        }
    }
    if per_family.iter().any(|n| *n > 1) {
        return Err(AllocError::MultipleSubnets);
    }
    Ok(out)
}

/// A given subnet if it is free, else the first fit from the family's pools.
fn choose_subnet(
    given: Option<Cidr>,
    family_v4: bool,
    pools: &[Pool],
    taken: &[Cidr],
    reserved: &[Cidr],
) -> Result<Cidr, AllocError> {
    if let Some(s) = given.filter(|s| !s.network().is_unspecified()) {
        let s = s.masked();
        return match taken.iter().any(|t| t.overlaps(&s)) {
            true => Err(AllocError::Overlap),
            false => Ok(s),
        };
    }
    if !family_v4 && !pools.iter().any(|p| !p.base.is_ipv4()) {
        return Err(AllocError::NoIpv6Pool);
    }
    let picked = match given {
        Some(any) if any.prefix > 0 => pick_subnet(
            &resized_pools(pools, family_v4, any.prefix),
            family_v4,
            taken,
            reserved,
        ),
        _ => pick_subnet(pools, family_v4, taken, reserved),
    };
    picked.ok_or(AllocError::Exhausted { v6: !family_v4 })
}

/// Docker's reading of "0.0.0.0/N": every pool that can hold a /N, cut into /N instead.
fn resized_pools(pools: &[Pool], family_v4: bool, size: u8) -> Vec<Pool> {
    usable_pools(pools, family_v4)
        .into_iter()
        .filter(|p| p.base.prefix <= size && size <= p.base.width())
        .map(|p| Pool { base: p.base, size })
        .collect()
}

/// Gateway and aux addresses in Docker's order: the gateway first, then each aux address by name.
fn resolve_addresses(subnet: Cidr, entry: &ParsedConfig) -> Result<NetworkConfig, AllocError> {
    let network = network_address_reserved(&subnet).then(|| subnet.network());
    let broadcast = subnet.broadcast();
    let reserved_by_subnet = |a: IpAddr| Some(a) == network || Some(a) == broadcast;
    let ip_range = entry.ip_range;
    let gateway = match entry.gateway {
        Some(g) if reserved_by_subnet(g) => return Err(AllocError::BadGateway(g.to_string())),
        Some(g) => g,
        None => {
            let skip: BTreeSet<IpAddr> = network
                .into_iter()
                .chain(broadcast)
                .chain(entry.aux.values().copied())
                .collect();
            let span = ip_range.unwrap_or(subnet);
            first_free_in(&span, &[&skip]).ok_or(AllocError::NoGatewayAddress(span))?
        }
    };
    let mut aux = BTreeMap::new();
    for (name, &addr) in &entry.aux {
        if reserved_by_subnet(addr) || addr == gateway || aux.values().any(|a| *a == addr) {
            return Err(AllocError::AuxInUse {
                name: name.clone(),
                addr,
            });
        }
        aux.insert(name.clone(), addr);
    }
    Ok(NetworkConfig {
        subnet,
        ip_range,
        gateway,
        aux,
    })
}
