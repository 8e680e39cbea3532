//! A published port as the firewall holds it: one element of one of the four DNAT maps
//! (`ports_v4`, `ports_v6`: any local address; `ports_addr_v4`, `ports_addr_v6`: one host
//! address), keyed by protocol and host port, mapping to the container's address and port.

use std::net::IpAddr;

use super::script::Set;
use crate::kernel::KernelError;

/// The transport protocols a port can be published for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// Docker's spelling (`80/tcp`), which is also nft's.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number (`meta l4proto`).
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

/// One published port: traffic for `host_ip` (`None`: any local address of the target's
/// family) `proto`/`host_port` goes to `target`:`target_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRule {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub target: IpAddr,
    pub target_port: u16,
}

impl PortRule {
    /// Refuses a rule whose host address is not of its target's family (no map holds it).
    pub(super) fn check(&self) -> Result<(), KernelError> {
        match self.host_ip {
            Some(h) if h.is_ipv4() != self.target.is_ipv4() => Err(KernelError::invalid(
                "published port",
                format!(
                    "host address {h} and container address {} differ in family",
                    self.target
                ),
            )),
            _ if self.host_port == 0 || self.target_port == 0 => {
                Err(KernelError::invalid("published port", "port 0".to_string()))
            }
            _ => Ok(()),
        }
    }

    /// The map that holds it.
    pub(super) fn set(&self) -> Set {
        match (self.host_ip.is_some(), self.target.is_ipv4()) {
            (false, true) => Set::PortsV4,
            (false, false) => Set::PortsV6,
            (true, true) => Set::PortsAddrV4,
            (true, false) => Set::PortsAddrV6,
        }
    }

    /// The key bytes: each part of the concatenation padded to 4 bytes, the port big-endian.
    pub(super) fn key(&self) -> Vec<u8> {
        let mut key = self.host_ip.map(address_bytes).unwrap_or_default();
        key.extend([self.proto.number(), 0, 0, 0]);
        key.extend(port_bytes(self.host_port));
        key
    }

    /// The data bytes: the container's address, then its port.
    pub(super) fn data(&self) -> Vec<u8> {
        let mut data = address_bytes(self.target);
        data.extend(port_bytes(self.target_port));
        data
    }
}

fn address_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn port_bytes(port: u16) -> [u8; 4] {
    let [hi, lo] = port.to_be_bytes();
    [hi, lo, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes nft 1.0.6 sends for the same elements (`nft --debug=netlink add element`).
    #[test]
    fn keys_and_data_are_encoded_as_nft_encodes_them() {
        let any = PortRule {
            proto: Proto::Udp,
            host_ip: None,
            host_port: 53,
            target: "10.0.0.3".parse().expect("v4"),
            target_port: 5353,
        };
        // nft: element 00000011 00003500 : 0300000a 0000e914 (little-endian words)
        assert_eq!(any.key(), [17, 0, 0, 0, 0, 53, 0, 0]);
        assert_eq!(any.data(), [10, 0, 0, 3, 0x14, 0xe9, 0, 0]);
        assert_eq!(any.set(), Set::PortsV4);
        let one = PortRule {
            host_ip: Some("fd00::1".parse().expect("v6")),
            target: "fd00::3".parse().expect("v6"),
            ..any
        };
        let mut key = vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        key.extend([17, 0, 0, 0, 0, 53, 0, 0]);
        assert_eq!(one.key(), key);
        assert_eq!(one.set(), Set::PortsAddrV6);
        let mixed = PortRule {
            host_ip: Some("127.0.0.1".parse().expect("v4")),
            ..one
        };
        assert!(mixed.check().is_err(), "families differ");
        assert!(one.check().is_ok());
    }
}
