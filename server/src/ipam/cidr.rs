//! Addresses and prefixes as numbers, so that subnet arithmetic is plain integer arithmetic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address with a prefix length as the user typed it: host bits may be set.
///
/// Keeping the typed address lets validation quote the user's text back ("it should be ...").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Text that is not an address or prefix; the wording is Go's, which Docker users see.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid CIDR address: {0}")]
    Cidr(String),
    #[error("invalid IP address: {0}")]
    Ip(String),
}

/// Parses a bare IPv4 or IPv6 address; strict: no zones, no leading zeros, no brackets.
pub fn parse_ip(s: &str) -> Result<IpAddr, ParseError> {
    IpAddr::from_str(s).map_err(|_| ParseError::Ip(s.to_string()))
}

impl FromStr for Cidr {
    type Err = ParseError;

    /// "172.30.0.0/24" or "fd00::/64"; the prefix is decimal without sign or leading zeros.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Cidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let canonical_number = !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && (prefix == "0" || !prefix.starts_with('0'));
        if !canonical_number {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let addr = IpAddr::from_str(addr).map_err(|_| bad())?;
        Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// None when the prefix is longer than the family allows.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        (prefix <= width(addr)).then_some(Cidr { addr, prefix })
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Host bits cleared.
    pub fn network(&self) -> IpAddr {
        from_bits(self.addr, self.first_bits())
    }

    pub fn masked(&self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    pub fn is_masked(&self) -> bool {
        self.addr == self.network()
    }

    /// Last address of the block (the IPv4 broadcast for prefixes up to /30).
    pub fn last(&self) -> IpAddr {
        from_bits(self.addr, self.last_bits())
    }

    /// False across families.
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(self.addr, ip) && to_bits(ip) & !self.host_mask() == self.first_bits()
    }

    /// Whether every address of `other` is in `self`; false across families.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two blocks share an address; false across families.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if !same_family(self.addr, other.addr) {
            return false;
        }
        let (wider, narrower) = if self.prefix <= other.prefix {
            (self, other)
        } else {
            (other, self)
        };
        wider.contains(narrower.addr)
    }

    /// IPv4 only; /31 and /32 have none (RFC 3021: both addresses are hosts).
    pub fn broadcast(&self) -> Option<IpAddr> {
        (self.is_ipv4() && self.prefix <= 30).then(|| self.last())
    }

    /// Number of addresses, saturating at `u128::MAX` for an IPv6 /0.
    pub fn size(&self) -> u128 {
        self.host_mask().saturating_add(1)
    }

    /// The family's address length in bits.
    pub(crate) fn width(&self) -> u8 {
        width(self.addr)
    }

    /// Mask of the host part, in the family's numeric domain.
    pub(crate) fn host_mask(&self) -> u128 {
        host_mask(self.width() - self.prefix.min(self.width()))
    }

    /// Network address as a number.
    pub(crate) fn first_bits(&self) -> u128 {
        to_bits(self.addr) & !self.host_mask()
    }

    /// Last address as a number.
    pub(crate) fn last_bits(&self) -> u128 {
        self.first_bits() | self.host_mask()
    }
}

/// Address length of the family in bits: 32 or 128.
pub(crate) fn width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// All-ones in the low `host_bits` bits; `host_bits` may be 128.
pub(crate) fn host_mask(host_bits: u8) -> u128 {
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// The address as an unsigned number (IPv4 in the low 32 bits).
pub(crate) fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// The number as an address of the same family as `like`; IPv4 keeps the low 32 bits.
pub(crate) fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(bits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_both_families() {
        assert_eq!(c("172.30.0.0/24").to_string(), "172.30.0.0/24");
        assert_eq!(c("fd00:0:0::/64").to_string(), "fd00::/64");
        assert_eq!(c("10.1.2.3/8").to_string(), "10.1.2.3/8");
        assert_eq!(c("0.0.0.0/0").prefix, 0);
        assert_eq!(c("::/0").to_string(), "::/0");
        assert_eq!(c("1.2.3.4/32").prefix, 32);
        assert_eq!(c("::1/128").prefix, 128);
        assert_eq!(c("::ffff:1.2.3.4/120").to_string(), "::ffff:1.2.3.4/120");
    }

    #[test]
    fn rejects_malformed_cidrs_with_go_wording() {
        for bad in [
            "",
            "foo",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "010.0.0.0/8",
            "fe80::1%eth0/64",
            "[fd00::]/64",
            " 10.0.0.0/8",
            "10.0.0.0/ 8",
            "10.0.0.0/256",
        ] {
            let err = Cidr::from_str(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid CIDR address: {bad}"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_ip_is_strict() {
        assert_eq!(parse_ip("172.17.0.1").unwrap(), ip("172.17.0.1"));
        assert_eq!(parse_ip("fd00::1").unwrap(), ip("fd00::1"));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/32",
            "1.2.3.256",
            "01.2.3.4",
            "fe80::1%1",
            "x",
        ] {
            let err = parse_ip(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid IP address: {bad}"));
        }
    }

    #[test]
    fn new_rejects_too_long_prefixes() {
        assert!(Cidr::new(ip("1.2.3.4"), 32).is_some());
        assert!(Cidr::new(ip("1.2.3.4"), 33).is_none());
        assert!(Cidr::new(ip("::"), 128).is_some());
        assert!(Cidr::new(ip("::"), 129).is_none());
    }

    #[test]
    fn network_masked_and_last() {
        let x = c("10.10.10.7/8");
        assert_eq!(x.network(), ip("10.0.0.0"));
        assert_eq!(x.masked(), c("10.0.0.0/8"));
        assert!(!x.is_masked());
        assert!(x.masked().is_masked());
        assert_eq!(x.last(), ip("10.255.255.255"));
        assert_eq!(c("fd00::1/64").masked().to_string(), "fd00::/64");
        assert_eq!(c("fd00::1/64").last(), ip("fd00::ffff:ffff:ffff:ffff"));
        assert_eq!(c("1.2.3.4/0").network(), ip("0.0.0.0"));
        assert_eq!(c("1.2.3.4/0").last(), ip("255.255.255.255"));
        assert_eq!(c("1:2::3/0").masked(), c("::/0"));
        assert_eq!(c("1.2.3.4/32").network(), ip("1.2.3.4"));
        assert_eq!(c("::5/128").network(), ip("::5"));
    }

    #[test]
    fn contains_respects_family_and_bounds() {
        let net = c("172.17.0.0/16");
        assert!(net.contains(ip("172.17.0.0")));
        assert!(net.contains(ip("172.17.255.255")));
        assert!(!net.contains(ip("172.18.0.0")));
        assert!(!net.contains(ip("::ffff:172.17.0.1")));
        assert!(c("::/0").contains(ip("ffff::1")));
        assert!(!c("::/0").contains(ip("1.2.3.4")));
        assert!(c("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(c("172.17.9.9/16").contains(ip("172.17.0.1")));
    }

    #[test]
    fn contains_cidr_and_overlaps() {
        let big = c("10.0.0.0/8");
        assert!(big.contains_cidr(&c("10.1.0.0/16")));
        assert!(big.contains_cidr(&big));
        assert!(!c("10.1.0.0/16").contains_cidr(&big));
        assert!(!big.contains_cidr(&c("11.0.0.0/16")));
        assert!(big.overlaps(&c("10.1.0.0/16")));
        assert!(c("10.1.0.0/16").overlaps(&big));
        assert!(!c("10.0.0.0/16").overlaps(&c("10.1.0.0/16")));
        assert!(!c("0.0.0.0/0").overlaps(&c("::/0")));
        assert!(c("fd00::/8").overlaps(&c("fd12:3456::/64")));
        assert!(!c("fd00::/64").overlaps(&c("fd00:0:0:1::/64")));
    }

    #[test]
    fn broadcast_only_for_ipv4_up_to_slash_30() {
        assert_eq!(c("172.17.0.0/16").broadcast(), Some(ip("172.17.255.255")));
        assert_eq!(c("10.0.0.0/30").broadcast(), Some(ip("10.0.0.3")));
        assert_eq!(c("10.0.0.0/31").broadcast(), None);
        assert_eq!(c("10.0.0.0/32").broadcast(), None);
        assert_eq!(c("fd00::/64").broadcast(), None);
    }

    #[test]
    fn size_saturates() {
        assert_eq!(c("172.17.0.0/16").size(), 65536);
        assert_eq!(c("10.0.0.0/32").size(), 1);
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("fd00::/64").size(), 1 << 64);
        assert_eq!(c("::/1").size(), 1 << 127);
        assert_eq!(c("::/0").size(), u128::MAX);
    }
}
