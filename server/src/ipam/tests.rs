//! Tests of create-time validation and allocation, and of endpoint addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;

fn c(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn req(subnet: &str, ip_range: &str, gateway: &str, aux: &[(&str, &str)]) -> ConfigRequest {
    ConfigRequest {
        subnet: subnet.into(),
        ip_range: ip_range.into(),
        gateway: gateway.into(),
        aux: aux
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn subnet_only(s: &str) -> ConfigRequest {
    req(s, "", "", &[])
}

/// The validation error's Display text.
fn invalid(configs: &[ConfigRequest], ipv4: bool, ipv6: bool) -> String {
    validate(configs, ipv4, ipv6).unwrap_err().to_string()
}

fn cfg(subnet: &str, ip_range: Option<&str>, gateway: &str, aux: &[(&str, &str)]) -> NetworkConfig {
    NetworkConfig {
        subnet: c(subnet),
        ip_range: ip_range.map(c),
        gateway: ip(gateway),
        aux: aux.iter().map(|(k, v)| (k.to_string(), ip(v))).collect(),
    }
}

fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
    addrs.iter().map(|a| ip(a)).collect()
}

fn v6_pools() -> Vec<Pool> {
    let mut pools = default_pools();
    pools.push("base=fd00:ab::/48,size=64".parse().unwrap());
    pools
}

/// Validates and allocates with Docker's default pools, as a create would.
fn create(
    configs: &[ConfigRequest],
    ipv4: bool,
    ipv6: bool,
    taken: &[Cidr],
) -> Result<Vec<NetworkConfig>, AllocError> {
    let parsed = validate(configs, ipv4, ipv6).unwrap();
    allocate(&parsed, ipv4, ipv6, &v6_pools(), taken, &[])
}

// ---- step 3: validate ----

#[test]
fn validation_collects_dockers_items_in_dockers_order() {
    let configs = [req(
        "10.0.0.0/8",
        "192.168.0.1/24",
        "192.168.0.1",
        &[("DefaultGatewayIPv4", "192.168.0.1")],
    )];
    assert_eq!(
        invalid(&configs, true, false),
        "invalid network config:\n\
         * invalid ip-range 192.168.0.1/24: it should be 192.168.0.0/24\n\
         * invalid ip-range 192.168.0.1/24: parent subnet 10.0.0.0/8 doesn't contain ip-range\n\
         * invalid gateway 192.168.0.1: parent subnet 10.0.0.0/8 doesn't contain this address\n\
         * invalid auxiliary address DefaultGatewayIPv4: parent subnet 10.0.0.0/8 doesn't contain this address"
    );
}

#[test]
fn a_single_item_is_shown_bare() {
    assert_eq!(
        invalid(&[subnet_only("10.10.10.0/8")], true, false),
        "invalid network config:\ninvalid subnet 10.10.10.0/8: it should be 10.0.0.0/8"
    );
    assert_eq!(
        invalid(&[subnet_only("fd00::1/64")], true, true),
        "invalid network config:\ninvalid subnet fd00::1/64: it should be fd00::/64"
    );
}

#[test]
fn ip_range_items() {
    let one = |subnet: &str, range: &str| invalid(&[req(subnet, range, "", &[])], true, true);
    assert_eq!(
        one("10.10.10.0/24", "10.0.0.0/8"),
        "invalid network config:\ninvalid ip-range 10.0.0.0/8: CIDR block is bigger than its parent subnet 10.10.10.0/24"
    );
    assert_eq!(
        one("10.0.0.0/8", "10.10.10.0/16"),
        "invalid network config:\ninvalid ip-range 10.10.10.0/16: it should be 10.10.0.0/16"
    );
    assert_eq!(
        one("10.0.0.0/8", "11.0.0.0/16"),
        "invalid network config:\ninvalid ip-range 11.0.0.0/16: parent subnet 10.0.0.0/8 doesn't contain ip-range"
    );
    assert_eq!(
        one("10.0.0.0/8", "fd00::/64"),
        "invalid network config:\ninvalid ip-range fd00::/64: parent subnet is an IPv4 block"
    );
    assert_eq!(
        one("fd00::/64", "10.0.0.0/24"),
        "invalid network config:\ninvalid ip-range 10.0.0.0/24: parent subnet is an IPv6 block"
    );
    // Bigger and elsewhere: both items.
    assert_eq!(
        one("10.10.10.0/24", "11.0.0.0/8"),
        "invalid network config:\n\
         * invalid ip-range 11.0.0.0/8: CIDR block is bigger than its parent subnet 10.10.10.0/24\n\
         * invalid ip-range 11.0.0.0/8: parent subnet 10.10.10.0/24 doesn't contain ip-range"
    );
}

#[test]
fn gateway_and_aux_items() {
    let gw = |subnet: &str, g: &str| invalid(&[req(subnet, "", g, &[])], true, true);
    assert_eq!(
        gw("10.0.0.0/24", "10.0.1.1"),
        "invalid network config:\ninvalid gateway 10.0.1.1: parent subnet 10.0.0.0/24 doesn't contain this address"
    );
    assert_eq!(
        gw("10.0.0.0/24", "fd00::1"),
        "invalid network config:\ninvalid gateway fd00::1: parent subnet is an IPv4 block"
    );
    assert_eq!(
        gw("fd00::/64", "10.0.0.1"),
        "invalid network config:\ninvalid gateway 10.0.0.1: parent subnet is an IPv6 block"
    );
    let aux = [("a", "10.0.1.1"), ("b", "fd00::2"), ("c", "10.0.0.3")];
    assert_eq!(
        invalid(&[req("10.0.0.0/24", "", "", &aux)], true, false),
        "invalid network config:\n\
         * invalid auxiliary address a: parent subnet 10.0.0.0/24 doesn't contain this address\n\
         * invalid auxiliary address b: parent subnet is an IPv4 block"
    );
    assert_eq!(
        invalid(
            &[req("fd00::/64", "", "", &[("x", "10.0.0.1")])],
            false,
            true
        ),
        "invalid network config:\ninvalid auxiliary address x: parent subnet is an IPv6 block"
    );
}

#[test]
fn items_of_several_entries_are_collected() {
    let configs = [
        subnet_only("10.0.0.1/24"),
        req("fd00::/64", "", "fd01::1", &[]),
        req("172.20.0.0/16", "", "172.21.0.1", &[]),
    ];
    assert_eq!(
        invalid(&configs, true, true),
        "invalid network config:\n\
         * invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24\n\
         * invalid gateway fd01::1: parent subnet fd00::/64 doesn't contain this address\n\
         * invalid gateway 172.21.0.1: parent subnet 172.20.0.0/16 doesn't contain this address"
    );
}

#[test]
fn entries_of_disabled_families_are_skipped_even_when_invalid() {
    let configs = [
        subnet_only("10.0.0.0/24"),
        req("fd00::1/64", "", "fd01::1", &[]),
    ];
    let kept = validate(&configs, true, false).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].subnet, Some(c("10.0.0.0/24")));
    let configs = [
        req("10.0.0.1/24", "", "10.9.9.9", &[]),
        subnet_only("fd00::/64"),
    ];
    let kept = validate(&configs, false, true).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].subnet, Some(c("fd00::/64")));
    assert!(validate(&configs, false, false).unwrap().is_empty());
}

#[test]
fn malformed_text_fails_first_whatever_the_family() {
    let malformed = |configs: &[ConfigRequest]| match validate(configs, true, false) {
        Err(ConfigError::Malformed(text)) => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        malformed(&[subnet_only("foo")]),
        "invalid CIDR address: foo"
    );
    assert_eq!(
        malformed(&[subnet_only("10.0.0.0")]),
        "invalid CIDR address: 10.0.0.0"
    );
    assert_eq!(
        malformed(&[req("10.0.0.0/8", "10.1.0.0", "", &[])]),
        "invalid CIDR address: 10.1.0.0"
    );
    assert_eq!(
        malformed(&[req("10.0.0.0/8", "", "10.0.0.256", &[])]),
        "invalid IP address: 10.0.0.256"
    );
    assert_eq!(
        malformed(&[req("10.0.0.0/8", "", "", &[("host", "dummy")])]),
        "invalid IP address: dummy"
    );
    // IPv6 is disabled, yet its garbage still fails decoding; and it wins over step-3 items.
    assert_eq!(
        malformed(&[subnet_only("10.0.0.1/8"), req("fd00::/64", "", "nope", &[])]),
        "invalid IP address: nope"
    );
    let err = validate(&[subnet_only("x")], true, true).unwrap_err();
    assert_eq!(err.to_string(), "invalid CIDR address: x");
}

#[test]
fn empty_strings_are_unset_and_empty_entries_dropped() {
    let kept = validate(&[req("10.0.0.0/24", "", "", &[])], true, false).unwrap();
    assert_eq!(
        kept,
        vec![ParsedConfig {
            subnet: Some(c("10.0.0.0/24")),
            ..ParsedConfig::default()
        }]
    );
    assert!(
        validate(&[ConfigRequest::default()], true, true)
            .unwrap()
            .is_empty()
    );
    assert!(validate(&[], true, true).unwrap().is_empty());
}

#[test]
fn addresses_without_a_subnet_are_refused() {
    assert_eq!(
        invalid(
            &[req("", "10.0.0.0/24", "10.0.0.1", &[("h", "10.0.0.9")])],
            true,
            false
        ),
        "invalid network config:\n\
         * invalid ip-range 10.0.0.0/24: no subnet is given for it\n\
         * invalid gateway 10.0.0.1: no subnet is given for it\n\
         * invalid auxiliary address h: no subnet is given for it"
    );
}

#[test]
fn any_subnet_request_cannot_hold_addresses() {
    assert!(validate(&[subnet_only("0.0.0.0/24")], true, false).is_ok());
    assert_eq!(
        invalid(&[req("0.0.0.0/16", "", "0.0.0.1", &[])], true, false),
        "invalid network config:\ninvalid gateway 0.0.0.1: subnet 0.0.0.0/16 only asks for any free /16 from the default pools, so it cannot hold addresses"
    );
    assert_eq!(
        invalid(&[req("::/64", "::/80", "", &[])], false, true),
        "invalid network config:\ninvalid ip-range ::/80: subnet ::/64 only asks for any free /64 from the default pools, so it cannot hold addresses"
    );
}

#[test]
fn a_valid_entry_keeps_everything() {
    let kept = validate(
        &[req(
            "10.0.0.0/8",
            "10.10.0.0/16",
            "10.10.0.1",
            &[("DefaultGatewayIPv4", "10.10.0.1")],
        )],
        true,
        false,
    )
    .unwrap();
    assert_eq!(
        kept,
        vec![ParsedConfig {
            subnet: Some(c("10.0.0.0/8")),
            ip_range: Some(c("10.10.0.0/16")),
            gateway: Some(ip("10.10.0.1")),
            aux: BTreeMap::from([("DefaultGatewayIPv4".to_string(), ip("10.10.0.1"))]),
        }]
    );
}

// ---- step 8: allocate ----

#[test]
fn default_network_gets_the_next_pool_subnet_and_its_first_host() {
    let got = create(&[], true, false, &[c("172.17.0.0/16")]).unwrap();
    assert_eq!(got, vec![cfg("172.18.0.0/16", None, "172.18.0.1", &[])]);
}

#[test]
fn given_subnet_must_not_overlap_taken_but_may_overlap_reserved() {
    let taken = [c("172.17.0.0/16"), c("10.0.0.0/8")];
    let err = create(&[subnet_only("10.1.0.0/16")], true, false, &taken).unwrap_err();
    assert_eq!(err, AllocError::Overlap);
    assert_eq!(
        err.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space"
    );
    // Covering a taken subnet is an overlap too.
    assert_eq!(
        create(&[subnet_only("172.0.0.0/8")], true, false, &taken),
        Err(AllocError::Overlap)
    );
    let parsed = validate(&[subnet_only("192.168.1.0/24")], true, false).unwrap();
    let got = allocate(
        &parsed,
        true,
        false,
        &default_pools(),
        &taken,
        &[c("192.168.1.0/24")],
    )
    .unwrap();
    assert_eq!(got, vec![cfg("192.168.1.0/24", None, "192.168.1.1", &[])]);
}

#[test]
fn dynamic_picks_avoid_reserved_routes() {
    let reserved = [c("172.17.0.0/16"), c("172.18.0.0/16"), c("172.19.0.53/32")];
    let got = allocate(&[], true, false, &default_pools(), &[], &reserved).unwrap();
    assert_eq!(got[0].subnet, c("172.20.0.0/16"));
}

#[test]
fn gateway_defaults_to_the_first_address_of_ip_range() {
    let got = create(
        &[req("10.0.0.0/16", "10.0.5.0/24", "", &[])],
        true,
        false,
        &[],
    )
    .unwrap();
    assert_eq!(
        got,
        vec![cfg("10.0.0.0/16", Some("10.0.5.0/24"), "10.0.5.0", &[])]
    );
    let got = create(
        &[req("10.0.0.0/16", "10.0.0.0/24", "", &[])],
        true,
        false,
        &[],
    )
    .unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.1"));
    // A given gateway may lie outside the range.
    let got = create(
        &[req("10.0.0.0/16", "10.0.5.0/24", "10.0.0.254", &[])],
        true,
        false,
        &[],
    )
    .unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.254"));
}

#[test]
fn default_gateway_skips_aux_addresses() {
    let got = create(
        &[req("10.0.0.0/24", "", "", &[("router", "10.0.0.1")])],
        true,
        false,
        &[],
    )
    .unwrap();
    assert_eq!(
        got,
        vec![cfg(
            "10.0.0.0/24",
            None,
            "10.0.0.2",
            &[("router", "10.0.0.1")]
        )]
    );
}

#[test]
fn gateway_on_network_or_broadcast_address_is_refused() {
    let bad =
        |subnet: &str, g: &str| create(&[req(subnet, "", g, &[])], true, true, &[]).unwrap_err();
    let err = bad("10.0.0.0/24", "10.0.0.0");
    assert_eq!(err, AllocError::BadGateway("10.0.0.0".into()));
    assert_eq!(
        err.to_string(),
        "failed to allocate gateway (10.0.0.0): Address already in use"
    );
    assert_eq!(
        bad("10.0.0.0/24", "10.0.0.255").to_string(),
        "failed to allocate gateway (10.0.0.255): Address already in use"
    );
    assert_eq!(
        bad("fd00::/64", "fd00::").to_string(),
        "failed to allocate gateway (fd00::): Address already in use"
    );
    // In a /31 both addresses are hosts (validation refuses a given /31; allocation still copes).
    let got = allocate_unchecked("10.0.0.0/31", Some("10.0.0.1"), true, false).unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.1"));
}

#[test]
fn aux_clashes_are_refused_in_dockers_words() {
    let err = create(
        &[req("10.0.0.0/24", "", "10.0.0.1", &[("r", "10.0.0.1")])],
        true,
        false,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err,
        AllocError::AuxInUse {
            name: "r".into(),
            addr: ip("10.0.0.1")
        }
    );
    assert_eq!(
        err.to_string(),
        "failed to allocate secondary ip address (r:10.0.0.1): Address already in use"
    );
    let err = create(
        &[req("10.0.0.0/24", "", "", &[("b", "10.0.0.255")])],
        true,
        false,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to allocate secondary ip address (b:10.0.0.255): Address already in use"
    );
    let err = create(
        &[req("10.0.0.0/24", "", "", &[("n", "10.0.0.0")])],
        true,
        false,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to allocate secondary ip address (n:10.0.0.0): Address already in use"
    );
    let twice = [("one", "10.0.0.9"), ("two", "10.0.0.9")];
    let err = create(&[req("10.0.0.0/24", "", "", &twice)], true, false, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to allocate secondary ip address (two:10.0.0.9): Address already in use"
    );
}

#[test]
fn multiple_subnets_per_family_are_refused_after_allocation() {
    let two = [subnet_only("10.1.0.0/16"), subnet_only("10.2.0.0/16")];
    let err = create(&two, true, false, &[]).unwrap_err();
    assert_eq!(err, AllocError::MultipleSubnets);
    assert_eq!(
        err.to_string(),
        "bridge driver doesn't support multiple subnets"
    );
    // Allocation errors come first, as in Docker (step 8 before step 9), including self-overlap.
    let clash = [subnet_only("10.1.0.0/16"), subnet_only("10.1.2.0/24")];
    assert_eq!(create(&clash, true, false, &[]), Err(AllocError::Overlap));
    let two_v6 = [subnet_only("fd00:1::/64"), subnet_only("fd00:2::/64")];
    assert_eq!(
        create(&two_v6, true, true, &[]),
        Err(AllocError::MultipleSubnets)
    );
    // One per family is fine.
    let dual = [subnet_only("fd00:1::/64"), subnet_only("10.1.0.0/16")];
    assert_eq!(create(&dual, true, true, &[]).unwrap().len(), 2);
}

#[test]
fn ipv4_comes_first_then_ipv6() {
    let dual = [
        req("fd00:1::/64", "", "fd00:1::fe", &[]),
        subnet_only("10.1.0.0/16"),
    ];
    let got = create(&dual, true, true, &[]).unwrap();
    assert_eq!(
        got,
        vec![
            cfg("10.1.0.0/16", None, "10.1.0.1", &[]),
            cfg("fd00:1::/64", None, "fd00:1::fe", &[]),
        ]
    );
}

#[test]
fn ipv6_subnets_come_from_ipv6_pools() {
    let got = create(&[], true, true, &[c("172.17.0.0/16"), c("fd00:ab::/64")]).unwrap();
    assert_eq!(
        got,
        vec![
            cfg("172.18.0.0/16", None, "172.18.0.1", &[]),
            cfg("fd00:ab:0:1::/64", None, "fd00:ab:0:1::1", &[]),
        ]
    );
    // IPv6 only.
    let got = create(&[], false, true, &[]).unwrap();
    assert_eq!(got, vec![cfg("fd00:ab::/64", None, "fd00:ab::1", &[])]);
}

#[test]
fn ipv6_without_subnet_or_pool_says_what_to_do() {
    let err = allocate(&[], true, true, &default_pools(), &[], &[]).unwrap_err();
    assert_eq!(err, AllocError::NoIpv6Pool);
    let text = err.to_string();
    assert!(
        text.contains("--subnet") && text.contains("--default-address-pool"),
        "{text}"
    );
    // A given IPv6 subnet needs no pool.
    let parsed = validate(&[subnet_only("fd00:5::/64")], true, true).unwrap();
    let got = allocate(&parsed, true, true, &default_pools(), &[], &[]).unwrap();
    assert_eq!(got[1], cfg("fd00:5::/64", None, "fd00:5::1", &[]));
}

#[test]
fn exhausted_pools_are_reported_per_family_with_a_hint() {
    let mut taken = Vec::new();
    for _ in 0..31 {
        let got = allocate(&[], true, false, &default_pools(), &taken, &[]).unwrap();
        taken.push(got[0].subnet);
    }
    assert_eq!(taken[30], c("192.168.240.0/20"));
    let err = allocate(&[], true, false, &default_pools(), &taken, &[]).unwrap_err();
    assert_eq!(err, AllocError::Exhausted { v6: false });
    assert_eq!(
        err.to_string(),
        "all predefined address pools have been fully subnetted; add pools with --default-address-pool base=CIDR,size=N, or remove unused networks (docker network prune)"
    );
    let pools: Vec<Pool> = vec!["base=fd00::/63,size=64".parse().unwrap()];
    let taken = [c("fd00::/64"), c("fd00:0:0:1::/64")];
    assert_eq!(
        allocate(&[], false, true, &pools, &taken, &[]),
        Err(AllocError::Exhausted { v6: true })
    );
    // No IPv4 pool at all is exhaustion too.
    assert_eq!(
        allocate(&[], true, false, &pools, &[], &[]),
        Err(AllocError::Exhausted { v6: false })
    );
}

#[test]
fn disabled_families_allocate_nothing() {
    let dual = [subnet_only("10.1.0.0/16"), subnet_only("fd00:1::/64")];
    let parsed = validate(&dual, true, true).unwrap();
    let got = allocate(&parsed, false, true, &[], &[], &[]).unwrap();
    assert_eq!(got, vec![cfg("fd00:1::/64", None, "fd00:1::1", &[])]);
    assert_eq!(allocate(&parsed, false, false, &[], &[], &[]), Ok(vec![]));
}

/// Allocates an entry that skipped validation, as a subnet cut from a pool would arrive.
fn allocate_unchecked(
    subnet: &str,
    gateway: Option<&str>,
    ipv4: bool,
    ipv6: bool,
) -> Result<Vec<NetworkConfig>, AllocError> {
    let entry = ParsedConfig {
        subnet: Some(c(subnet)),
        gateway: gateway.map(ip),
        ..ParsedConfig::default()
    };
    allocate(&[entry], ipv4, ipv6, &v6_pools(), &[], &[])
}

#[test]
fn tiny_subnets() {
    let got = allocate_unchecked("10.0.0.0/31", None, true, false).unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.0"));
    let got = allocate_unchecked("10.0.0.7/32", None, true, false).unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.7"));
    let got = create(&[subnet_only("10.0.0.4/30")], true, false, &[]).unwrap();
    assert_eq!(got[0].gateway, ip("10.0.0.5"));
    let got = allocate_unchecked("fd00::/127", None, true, true).unwrap();
    assert_eq!(got[1].gateway, ip("fd00::1"));
    let got = create(&[subnet_only("fd00::/126")], false, true, &[]).unwrap();
    assert_eq!(got[0].gateway, ip("fd00::1"));
    let err = allocate_unchecked("fd00::7/128", None, false, true).unwrap_err();
    assert_eq!(err, AllocError::NoGatewayAddress(c("fd00::7/128")));
    assert_eq!(
        err.to_string(),
        "failed to allocate gateway (): no available addresses in fd00::7/128"
    );
    // An ip-range holding only the broadcast leaves no gateway.
    let err = create(
        &[req("10.0.0.0/24", "10.0.0.255/32", "", &[])],
        true,
        false,
        &[],
    )
    .unwrap_err();
    assert_eq!(err, AllocError::NoGatewayAddress(c("10.0.0.255/32")));
}

#[test]
fn subnets_no_bridge_can_serve_are_refused_with_why() {
    let one = |subnet: &str| invalid(&[subnet_only(subnet)], true, true);
    let refused = |subnet: &str, why: &str| {
        assert_eq!(
            one(subnet),
            format!("invalid network config:\ninvalid subnet {subnet}: {why}"),
        )
    };
    let cannot = |what: &str| format!("{what} addresses cannot be a network's subnet");
    refused("224.0.0.0/24", &cannot("multicast"));
    refused("239.255.255.0/24", &cannot("multicast"));
    refused("224.0.0.0/4", &cannot("multicast"));
    refused("127.0.0.0/8", &cannot("loopback"));
    refused("127.1.2.0/24", &cannot("loopback"));
    refused("169.254.0.0/16", &cannot("link-local"));
    refused("169.254.7.0/24", &cannot("link-local"));
    refused(
        "0.0.1.0/24",
        "addresses in 0.0.0.0/8 (\"this network\") cannot be a network's subnet",
    );
    refused("ff00::/8", &cannot("multicast"));
    refused("ff02::/64", &cannot("multicast"));
    refused("::1/128", &cannot("loopback"));
    refused("::ffff:10.0.0.0/120", &cannot("IPv4-mapped"));
    refused("fe80::/10", &cannot("link-local"));
    refused("fe80::/80", &cannot("link-local"));
    refused("febf:1::/64", &cannot("link-local"));
    // Wider subnets that take in one of those ranges.
    refused(
        "192.0.0.0/2",
        "it overlaps 224.0.0.0/4, and multicast addresses cannot be a network's subnet",
    );
    refused(
        "120.0.0.0/5",
        "it overlaps 127.0.0.0/8, and loopback addresses cannot be a network's subnet",
    );
    refused(
        "169.0.0.0/8",
        "it overlaps 169.254.0.0/16, and link-local addresses cannot be a network's subnet",
    );
    refused(
        "fe00::/7",
        "it overlaps fe80::/10, and link-local addresses cannot be a network's subnet",
    );
    // No room for a container beside the gateway.
    let v4_tiny =
        "a /31 or /32 leaves no address for a container beside the gateway; use /30 or shorter";
    let v6_tiny =
        "a /127 or /128 leaves no address for a container beside the gateway; use /126 or shorter";
    refused("10.0.0.0/31", v4_tiny);
    refused("10.0.0.7/32", v4_tiny);
    refused("0.0.0.0/31", v4_tiny);
    refused("fd00::/127", v6_tiny);
    refused("fd00::7/128", v6_tiny);
    refused("::/128", v6_tiny);
    // Host bits set: both items, the masked subnet judged.
    assert_eq!(
        one("224.0.0.5/24"),
        "invalid network config:\n\
         * invalid subnet 224.0.0.5/24: it should be 224.0.0.0/24\n\
         * invalid subnet 224.0.0.5/24: multicast addresses cannot be a network's subnet"
    );
    // A disabled family's entries are not judged.
    assert!(validate(&[subnet_only("ff02::/64")], true, false).is_ok());
    // Next to those ranges, Docker's "any free /N", and fe80::/64 itself (Docker allows it) are fine.
    for fine in [
        "223.255.255.0/24",
        "240.0.0.0/24",
        "126.255.0.0/16",
        "169.253.0.0/16",
        "1.0.0.0/8",
        "10.0.0.0/30",
        "0.0.0.0/0",
        "0.0.0.0/24",
        "fd00::/126",
        "fe80::/64",
        "fec0::/10",
        "fe7f::/16",
        "::/0",
        "::/64",
        "2001:db8::/32",
    ] {
        assert!(
            validate(&[subnet_only(fine)], true, true).is_ok(),
            "{fine}: {:?}",
            validate(&[subnet_only(fine)], true, true)
        );
    }
}

#[test]
fn any_subnet_of_a_size_comes_from_the_pools() {
    let taken = [c("172.17.0.0/16")];
    let got = create(&[subnet_only("0.0.0.0/24")], true, false, &taken).unwrap();
    assert_eq!(got, vec![cfg("172.18.0.0/24", None, "172.18.0.1", &[])]);
    // No default pool can hold a /8.
    assert_eq!(
        create(&[subnet_only("0.0.0.0/8")], true, false, &[]),
        Err(AllocError::Exhausted { v6: false })
    );
    // /0 means the pools' own sizes.
    let got = create(&[subnet_only("0.0.0.0/0")], true, false, &taken).unwrap();
    assert_eq!(got[0].subnet, c("172.18.0.0/16"));
    let got = create(&[subnet_only("::/56")], false, true, &[]).unwrap();
    assert_eq!(got[0].subnet, c("fd00:ab::/56"));
    let parsed = validate(&[subnet_only("::/64")], false, true).unwrap();
    assert_eq!(
        allocate(&parsed, false, true, &default_pools(), &[], &[]),
        Err(AllocError::NoIpv6Pool)
    );
}

// ---- endpoint addresses ----

#[test]
fn reserved_addresses_follow_docker() {
    let net = cfg("172.18.0.0/16", None, "172.18.0.1", &[("h", "172.18.9.9")]);
    assert_eq!(
        reserved_addresses(&net),
        set(&["172.18.0.0", "172.18.0.1", "172.18.9.9", "172.18.255.255"])
    );
    assert_eq!(
        reserved_addresses(&cfg("10.0.0.0/31", None, "10.0.0.0", &[])),
        set(&["10.0.0.0"])
    );
    assert_eq!(
        reserved_addresses(&cfg("10.0.0.9/32", None, "10.0.0.9", &[])),
        set(&["10.0.0.9"])
    );
    assert_eq!(
        reserved_addresses(&cfg("fd00::/64", None, "fd00::1", &[])),
        set(&["fd00::", "fd00::1"])
    );
}

#[test]
fn first_free_is_first_fit_and_reuses_released_addresses() {
    let net = cfg("172.18.0.0/16", None, "172.18.0.1", &[]);
    let mut used = BTreeSet::new();
    for want in ["172.18.0.2", "172.18.0.3", "172.18.0.4"] {
        let got = first_free(&net, &used).unwrap();
        assert_eq!(got, ip(want));
        used.insert(got);
    }
    used.remove(&ip("172.18.0.2"));
    assert_eq!(first_free(&net, &used), Some(ip("172.18.0.2")));
    // Aux addresses are skipped.
    let net = cfg("10.0.0.0/24", None, "10.0.0.1", &[("x", "10.0.0.2")]);
    assert_eq!(first_free(&net, &BTreeSet::new()), Some(ip("10.0.0.3")));
}

#[test]
fn first_free_stays_in_ip_range_and_stops_before_broadcast() {
    let net = cfg("10.0.0.0/16", Some("10.0.5.0/24"), "10.0.5.0", &[]);
    assert_eq!(first_free(&net, &BTreeSet::new()), Some(ip("10.0.5.1")));
    let net = cfg("10.0.0.0/24", Some("10.0.0.252/30"), "10.0.0.1", &[]);
    let mut used = BTreeSet::new();
    while let Some(a) = first_free(&net, &used) {
        used.insert(a);
    }
    assert_eq!(used, set(&["10.0.0.252", "10.0.0.253", "10.0.0.254"]));
}

#[test]
fn first_free_in_tiny_subnets() {
    let net = cfg("10.0.0.0/31", None, "10.0.0.0", &[]);
    assert_eq!(first_free(&net, &BTreeSet::new()), Some(ip("10.0.0.1")));
    assert_eq!(first_free(&net, &set(&["10.0.0.1"])), None);
    assert_eq!(
        first_free(&cfg("10.0.0.9/32", None, "10.0.0.9", &[]), &BTreeSet::new()),
        None
    );
    let net = cfg("10.0.0.0/30", None, "10.0.0.1", &[]);
    assert_eq!(first_free(&net, &BTreeSet::new()), Some(ip("10.0.0.2")));
    assert_eq!(first_free(&net, &set(&["10.0.0.2"])), None);
    let net = cfg(
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127",
        None,
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        &[],
    );
    assert_eq!(first_free(&net, &BTreeSet::new()), None);
}

#[test]
fn first_free_on_a_slash64_walks_only_past_used_addresses() {
    let net = cfg("fd00:1::/64", None, "fd00:1::1", &[]);
    let used: BTreeSet<IpAddr> = (2u128..20_002)
        .map(|n| {
            IpAddr::from(std::net::Ipv6Addr::from_bits(
                0xfd00_0001_0000_0000_0000_0000_0000_0000 | n,
            ))
        })
        .collect();
    let start = Instant::now();
    assert_eq!(first_free(&net, &used), Some(ip("fd00:1::4e22")));
    let mut with_gap = used.clone();
    with_gap.remove(&ip("fd00:1::1000"));
    assert_eq!(first_free(&net, &with_gap), Some(ip("fd00:1::1000")));
    assert!(start.elapsed() < Duration::from_secs(1));
    // Addresses of other networks or families in `used` do not matter.
    assert_eq!(
        first_free(&net, &set(&["10.0.0.2", "fd00:2::2"])),
        Some(ip("fd00:1::2"))
    );
}

#[test]
fn check_static_errors() {
    let net = cfg(
        "172.18.0.0/16",
        Some("172.18.1.0/24"),
        "172.18.0.1",
        &[("h", "172.18.0.9")],
    );
    let used = set(&["172.18.1.0"]);
    let check = |a: &str| check_static(&net, ip(a), &used);
    assert_eq!(
        check("172.18.0.2"),
        Ok(()),
        "outside ip-range but inside the subnet is fine"
    );
    assert_eq!(check("172.18.1.1"), Ok(()));
    let err = check("172.19.0.2").unwrap_err();
    assert_eq!(err, StaticError::NotInSubnet(ip("172.19.0.2")));
    assert_eq!(
        err.to_string(),
        "no configured subnet contains IP address 172.19.0.2"
    );
    assert_eq!(
        check("fd00::2"),
        Err(StaticError::NotInSubnet(ip("fd00::2")))
    );
    let err = check("172.18.0.0").unwrap_err();
    assert_eq!(err, StaticError::NetworkAddress(ip("172.18.0.0")));
    assert_eq!(
        err.to_string(),
        "Address already in use: 172.18.0.0 is the subnet's network address"
    );
    let err = check("172.18.255.255").unwrap_err();
    assert_eq!(err, StaticError::Broadcast(ip("172.18.255.255")));
    assert_eq!(
        err.to_string(),
        "Address already in use: 172.18.255.255 is the subnet's broadcast address"
    );
    for taken in ["172.18.0.1", "172.18.0.9", "172.18.1.0"] {
        let err = check(taken).unwrap_err();
        assert_eq!(err, StaticError::InUse);
        assert_eq!(err.to_string(), "Address already in use");
    }
}

#[test]
fn check_static_in_tiny_and_ipv6_subnets() {
    let p2p = cfg("10.0.0.0/31", None, "10.0.0.0", &[]);
    assert_eq!(check_static(&p2p, ip("10.0.0.1"), &BTreeSet::new()), Ok(()));
    assert_eq!(
        check_static(&p2p, ip("10.0.0.0"), &BTreeSet::new()),
        Err(StaticError::InUse)
    );
    let v6 = cfg("fd00::/64", None, "fd00::1", &[]);
    assert_eq!(
        check_static(&v6, ip("fd00::"), &BTreeSet::new()),
        Err(StaticError::NetworkAddress(ip("fd00::")))
    );
    assert_eq!(
        check_static(&v6, ip("fd00::ffff:ffff:ffff:ffff"), &BTreeSet::new()),
        Ok(())
    );
}

#[test]
fn status_counts_like_docker() {
    let net = cfg("172.18.0.0/16", None, "172.18.0.1", &[]);
    assert_eq!(status(&net, &BTreeSet::new()), (3, 65533));
    assert_eq!(
        status(&net, &set(&["172.18.0.2", "172.18.0.3"])),
        (5, 65531)
    );
    // Addresses outside the subnet are not counted; one listed twice counts once.
    assert_eq!(status(&net, &set(&["10.0.0.2", "172.18.0.1"])), (3, 65533));
    // With an ip-range only what lies inside it reduces the available count.
    let ranged = cfg(
        "172.18.0.0/16",
        Some("172.18.5.0/24"),
        "172.18.0.1",
        &[("h", "172.18.5.7")],
    );
    assert_eq!(status(&ranged, &BTreeSet::new()), (4, 255));
    assert_eq!(
        status(&ranged, &set(&["172.18.5.1", "172.18.0.2"])),
        (6, 254)
    );
    assert_eq!(
        status(&cfg("10.0.0.0/31", None, "10.0.0.0", &[]), &BTreeSet::new()),
        (1, 1)
    );
    assert_eq!(
        status(&cfg("10.0.0.0/24", None, "10.0.0.1", &[]), &BTreeSet::new()),
        (3, 253)
    );
    let v6 = cfg("fd00::/64", None, "fd00::1", &[]);
    assert_eq!(status(&v6, &set(&["fd00::2"])), (3, u64::MAX - 2));
    let wide = cfg("fd00::/48", None, "fd00::1", &[]);
    assert_eq!(status(&wide, &BTreeSet::new()), (2, u64::MAX));
}

#[test]
fn full_lifecycle_of_a_user_network() {
    let taken = [c("172.17.0.0/16")];
    let configs = [req(
        "10.20.0.0/24",
        "10.20.0.128/25",
        "10.20.0.1",
        &[("printer", "10.20.0.200")],
    )];
    let net = create(&configs, true, false, &taken).unwrap().remove(0);
    let mut used = BTreeSet::new();
    let first = first_free(&net, &used).unwrap();
    assert_eq!(first, ip("10.20.0.128"));
    used.insert(first);
    assert_eq!(
        check_static(&net, ip("10.20.0.200"), &used),
        Err(StaticError::InUse)
    );
    assert_eq!(check_static(&net, ip("10.20.0.5"), &used), Ok(()));
    used.insert(ip("10.20.0.5"));
    assert_eq!(first_free(&net, &used), Some(ip("10.20.0.129")));
    // network, broadcast, gateway, aux, two endpoints; range of 128 less .128, .200 and .255.
    assert_eq!(status(&net, &used), (6, 125));
}
