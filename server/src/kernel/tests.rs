//! Kernel tests. Every one runs inside throwaway network namespaces made by unsharing a
//! fresh thread, so nothing is ever created in the machine's own namespace and everything
//! vanishes with the thread.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket},
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use futures::TryStreamExt;
use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};
use rtnetlink::{
    Handle, LinkBridge, LinkVeth, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        link::{LinkAttribute, LinkFlags, LinkMessage},
        route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope},
    },
};

use super::{
    Attachment, BridgeSpec, Ensured, Kernel, KernelError, Netns, Ready,
    address::address_of,
    link::{get_link, link_mtu},
    netns::run_in_netns,
    set_sysctl,
};

/// Runs `body` on a new thread that first moves into a new, empty network namespace, with a
/// current-thread runtime there; every netlink socket it opens lives and dies in it.
fn in_throwaway_netns<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let test = thread::spawn(move || {
        match unshare(CloneFlags::CLONE_NEWNET) {
            Ok(()) => {}
            // Never fall back to the machine's own namespace: without the privilege to make
            // a throwaway one, there is nothing safe to test.
            Err(nix::errno::Errno::EPERM) => {
                eprintln!("SKIPPED: needs CAP_SYS_ADMIN to make a throwaway network namespace");
                return;
            }
            Err(e) => panic!("unshare a throwaway network namespace: {e}"),
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("current-thread runtime");
        runtime.block_on(body());
    });
    if let Err(panic) = test.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A second throwaway namespace standing in for a container's, held by fd only.
fn throwaway_container() -> Netns {
    thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare a container namespace");
        Netns::open(Path::new("/proc/thread-self/ns/net")).expect("open the new namespace")
    })
    .join()
    .expect("container namespace thread")
}

/// Runs blocking `f` on a thread inside `ns` (for sockets and sysctls there).
fn on_thread_in<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let fd = ns.as_fd().try_clone_to_owned().expect("dup namespace fd");
    thread::spawn(move || {
        setns(&fd, CloneFlags::CLONE_NEWNET).expect("enter namespace");
        f()
    })
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().expect("IPv4 literal"))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("IPv6 literal"))
}

fn bridge_spec(name: &str, addresses: Vec<(IpAddr, u8)>) -> BridgeSpec {
    BridgeSpec {
        name: name.to_owned(),
        mtu: None,
        alias: format!("netbridge:{name}"),
        addresses,
    }
}

fn attachment(
    host_name: &str,
    bridge_index: u32,
    address: &str,
    gateway: Option<&str>,
) -> Attachment {
    Attachment {
        host_name: host_name.to_owned(),
        container_name: None,
        bridge_index,
        mtu: None,
        mac: [0x02, 0x42, 0x0a, 0x00, 0x00, 0x02],
        alias: format!("netbridge:{host_name}"),
        addresses: vec![(v4(address), 24)],
        gateway_v4: gateway.map(|g| g.parse().expect("gateway literal")),
        gateway_v6: None,
        sysctls: Vec::new(),
    }
}

fn is_up(msg: &LinkMessage) -> bool {
    msg.header.flags.contains(LinkFlags::Up)
}

fn mac_of(msg: &LinkMessage) -> Option<Vec<u8>> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(mac) => Some(mac.clone()),
        _ => None,
    })
}

async fn link(handle: &Handle, name: &str) -> LinkMessage {
    get_link(handle, name)
        .await
        .expect("look up link")
        .unwrap_or_else(|| panic!("link {name} missing"))
}

async fn addresses_of(handle: &Handle, index: u32) -> Vec<(IpAddr, u8)> {
    handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect::<Vec<_>>()
        .await
        .expect("dump addresses")
        .iter()
        .filter_map(|m| address_of(m).map(|ip| (ip, m.header.prefix_len)))
        .collect()
}

/// Default routes of the main table as (gateway, output ifindex), both families.
async fn default_routes(handle: &Handle) -> Vec<(IpAddr, u32)> {
    let mut found = Vec::new();
    for query in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let routes: Vec<_> = handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .expect("dump routes");
        for r in routes.iter().filter(|r| {
            r.header.destination_prefix_length == 0 && r.header.table == RouteHeader::RT_TABLE_MAIN
        }) {
            let gateway = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
                RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
                _ => None,
            });
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if let (Some(gateway), Some(oif)) = (gateway, oif) {
                found.push((gateway, oif));
            }
        }
    }
    found
}

fn read_sysctl(key: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .expect("read sysctl")
        .trim()
        .to_owned()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn create_bridge_sets_mtu_alias_addresses_and_up() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let spec = BridgeSpec {
            mtu: Some(1400),
            ..bridge_spec(
                "nb-test0",
                vec![(v4("10.77.0.1"), 24), (v6("fd00:77::1"), 64)],
            )
        };
        let index = kernel.create_bridge(&spec).await.expect("create bridge");

        let seen = kernel.links().await.expect("links");
        let bridge = seen
            .iter()
            .find(|l| l.name == "nb-test0")
            .expect("bridge listed");
        assert_eq!(bridge.index, index);
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        assert_eq!(bridge.alias.as_deref(), Some("netbridge:nb-test0"));
        assert_eq!(bridge.master, None);
        assert_eq!(
            kernel.link_index("nb-test0").await.expect("index"),
            Some(index)
        );

        let raw = link(&kernel.handle, "nb-test0").await;
        assert!(is_up(&raw), "bridge is up");
        assert_eq!(link_mtu(&raw), Some(1400));
        let mac = mac_of(&raw).expect("bridge MAC");
        assert_eq!(
            mac[0] & 0x03,
            0x02,
            "pinned MAC is locally administered unicast"
        );

        let addresses = addresses_of(&kernel.handle, index).await;
        assert!(addresses.contains(&(v4("10.77.0.1"), 24)), "{addresses:?}");
        assert!(addresses.contains(&(v6("fd00:77::1"), 64)), "{addresses:?}");
        assert_eq!(read_sysctl("net/ipv6/conf/nb-test0/accept_ra"), "0");
        assert_eq!(read_sysctl("net/ipv6/conf/nb-test0/disable_ipv6"), "0");

        // An IPv4-only bridge has IPv6 off: nothing but its IPv4 gateway on it.
        let v4_only = kernel
            .create_bridge(&bridge_spec("nb-test1", vec![(v4("10.78.0.1"), 24)]))
            .await
            .expect("create IPv4-only bridge");
        assert_eq!(read_sysctl("net/ipv6/conf/nb-test1/disable_ipv6"), "1");
        assert_eq!(
            addresses_of(&kernel.handle, v4_only).await,
            vec![(v4("10.78.0.1"), 24)]
        );
    });
}

#[test]
fn create_bridge_twice_is_exists() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let spec = bridge_spec("nb-twice", vec![(v4("10.78.0.1"), 24)]);
        let index = kernel.create_bridge(&spec).await.expect("first create");
        let again = kernel.create_bridge(&spec).await;
        assert!(
            matches!(&again, Err(KernelError::Exists { name, .. }) if name == "nb-twice"),
            "{again:?}"
        );
        assert_eq!(
            kernel.link_index("nb-twice").await.expect("index"),
            Some(index),
            "the existing bridge is untouched"
        );
    });
}

#[test]
fn create_bridge_failure_leaves_no_bridge() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        // The kernel refuses the second, duplicate address after the bridge exists.
        let spec = bridge_spec(
            "nb-fail",
            vec![(v4("10.79.0.1"), 24), (v4("10.79.0.1"), 24)],
        );
        let failed = kernel.create_bridge(&spec).await;
        assert!(
            matches!(
                &failed,
                Err(KernelError::Netlink {
                    op: "add address",
                    ..
                })
            ),
            "{failed:?}"
        );
        assert_eq!(
            failed.as_ref().err().and_then(KernelError::errno),
            Some(libc::EEXIST)
        );
        assert_eq!(kernel.link_index("nb-fail").await.expect("index"), None);

        // Refused before anything is made.
        let spec = bridge_spec("nb-fail", vec![(v4("10.79.0.1"), 33)]);
        let refused = kernel.create_bridge(&spec).await;
        assert!(
            matches!(refused, Err(KernelError::Invalid { .. })),
            "{refused:?}"
        );
        let spec = bridge_spec("name-far-too-long", vec![]);
        let refused = kernel.create_bridge(&spec).await;
        assert!(
            matches!(refused, Err(KernelError::Invalid { .. })),
            "{refused:?}"
        );
        assert_eq!(kernel.links().await.expect("links").len(), 1, "only lo");
    });
}

#[test]
fn ensure_bridge_recreates_a_deleted_bridge_and_adopts_an_existing_one() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let spec = bridge_spec("nb-ensure", vec![(v4("10.80.0.1"), 24)]);
        let first = kernel.ensure_bridge(&spec).await.expect("ensure creates");
        assert_eq!(
            kernel
                .ensure_bridge(&spec)
                .await
                .expect("ensure is idempotent"),
            first
        );

        assert!(kernel.delete_link("nb-ensure").await.expect("delete"));
        let recreated = kernel.ensure_bridge(&spec).await.expect("ensure recreates");
        let raw = link(&kernel.handle, "nb-ensure").await;
        assert_eq!(raw.header.index, recreated);
        assert!(is_up(&raw));
        assert_eq!(
            addresses_of(&kernel.handle, recreated).await,
            vec![(v4("10.80.0.1"), 24)]
        );

        // A bare bridge made by someone else: down, no alias, no address, default MTU.
        kernel
            .handle
            .link()
            .add(rtnetlink::LinkMessageBuilder::<LinkBridge>::new("nb-adopt").build())
            .execute()
            .await
            .expect("make a foreign bridge");
        let foreign = link(&kernel.handle, "nb-adopt").await;
        assert!(!is_up(&foreign));
        let spec = BridgeSpec {
            mtu: Some(1450),
            ..bridge_spec(
                "nb-adopt",
                vec![(v4("10.81.0.1"), 24), (v6("fd00:81::1"), 64)],
            )
        };
        let adopted = kernel.ensure_bridge(&spec).await.expect("ensure adopts");
        assert_eq!(adopted, foreign.header.index, "adopted, not recreated");
        let raw = link(&kernel.handle, "nb-adopt").await;
        assert!(is_up(&raw));
        assert_eq!(link_mtu(&raw), Some(1450));
        let info = kernel.links().await.expect("links");
        let info = info.iter().find(|l| l.name == "nb-adopt").expect("listed");
        assert_eq!(info.alias.as_deref(), Some("netbridge:nb-adopt"));
        let addresses = addresses_of(&kernel.handle, adopted).await;
        assert!(addresses.contains(&(v4("10.81.0.1"), 24)), "{addresses:?}");
        assert!(addresses.contains(&(v6("fd00:81::1"), 64)), "{addresses:?}");

        // Not a bridge: refused, left alone.
        kernel
            .handle
            .link()
            .add(LinkVeth::new("nb-veth", "nb-vethp").build())
            .execute()
            .await
            .expect("make a veth pair");
        let refused = kernel.ensure_bridge(&bridge_spec("nb-veth", vec![])).await;
        assert!(
            matches!(&refused, Err(KernelError::NotBridge { kind: Some(kind), .. }) if kind == "veth"),
            "{refused:?}"
        );
    });
}

#[test]
fn ensure_bridges_checks_many_bridges_against_one_dump_each() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let specs: Vec<BridgeSpec> = (0..4)
            .map(|i| {
                bridge_spec(
                    &format!("nb-many{i}"),
                    vec![(v4(&format!("10.90.{i}.1")), 24)],
                )
            })
            .collect();
        for spec in &specs[..3] {
            kernel.create_bridge(spec).await.expect("create bridge");
        }
        // nb-many0 is right; nb-many1 lost its address; nb-many2 went down; nb-many3 is missing;
        // nb-many4 is a veth, not a bridge.
        let index1 = kernel
            .link_index("nb-many1")
            .await
            .expect("index")
            .expect("present");
        let mut gone = kernel
            .handle
            .address()
            .get()
            .set_link_index_filter(index1)
            .execute();
        let address = gone.try_next().await.expect("dump").expect("one address");
        kernel
            .handle
            .address()
            .del(address)
            .execute()
            .await
            .expect("delete address");
        kernel
            .handle
            .link()
            .set(
                rtnetlink::LinkUnspec::new_with_name("nb-many2")
                    .down()
                    .build(),
            )
            .execute()
            .await
            .expect("set down");
        kernel
            .handle
            .link()
            .add(LinkVeth::new("nb-many4", "nb-many4p").build())
            .execute()
            .await
            .expect("make a veth pair");
        let mut all = specs.clone();
        all.push(bridge_spec("nb-many4", vec![]));

        let results = kernel.ensure_bridges(all).await.expect("ensure bridges");
        assert!(matches!(results[0], Ok(Ensured::Existed)), "{results:?}");
        assert!(matches!(results[1], Ok(Ensured::Existed)), "{results:?}");
        assert!(matches!(results[2], Ok(Ensured::Existed)), "{results:?}");
        assert!(matches!(results[3], Ok(Ensured::Created)), "{results:?}");
        assert!(
            matches!(results[4], Err(KernelError::NotBridge { .. })),
            "{results:?}"
        );
        for (i, spec) in specs.iter().enumerate() {
            let raw = link(&kernel.handle, &spec.name).await;
            assert!(is_up(&raw), "{} is up", spec.name);
            assert_eq!(
                addresses_of(&kernel.handle, raw.header.index).await,
                vec![(v4(&format!("10.90.{i}.1")), 24)],
                "{}",
                spec.name
            );
        }
        let veth = link(&kernel.handle, "nb-many4").await;
        assert!(!is_up(&veth), "the veth is left alone");
    });
}

#[test]
fn delete_link_reports_whether_it_existed() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        kernel
            .create_bridge(&bridge_spec("nb-del", vec![]))
            .await
            .expect("create bridge");
        assert!(kernel.delete_link("nb-del").await.expect("delete"));
        assert_eq!(kernel.link_index("nb-del").await.expect("index"), None);
        assert!(!kernel.delete_link("nb-del").await.expect("delete again"));
    });
}

/// A scope-link IPv4 route on `index`, like a VPN's pushed route: no address of ours in it.
fn link_route(index: u32, dst: Ipv4Addr, len: u8) -> RouteMessage {
    let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst, len)
        .output_interface(index)
        .scope(RouteScope::Link)
        .build();
    route.header.address_family = AddressFamily::Inet;
    route
}

#[test]
fn reserved_prefixes_see_addresses_and_connected_routes() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        kernel
            .handle
            .link()
            .add(LinkVeth::new("uplink0", "uplink0p").up().build())
            .execute()
            .await
            .expect("make a veth pair");
        let index = kernel
            .link_index("uplink0")
            .await
            .expect("index")
            .expect("dummy exists");
        kernel
            .handle
            .address()
            .add(index, v4("10.99.3.7"), 16)
            .execute()
            .await
            .expect("add address");
        // Like a VPN's pushed route: scope link, no address of ours in it.
        kernel
            .handle
            .route()
            .add(link_route(index, Ipv4Addr::new(172, 30, 0, 0), 15))
            .execute()
            .await
            .expect("add route");
        // A default route must not reserve everything.
        let default = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(Ipv4Addr::new(10, 99, 0, 1))
            .output_interface(index)
            .build();
        kernel
            .handle
            .route()
            .add(default)
            .execute()
            .await
            .expect("add default route");

        let reserved = kernel.reserved_prefixes().await.expect("reserved prefixes");
        assert!(reserved.contains(&(v4("10.99.0.0"), 16)), "{reserved:?}");
        assert!(reserved.contains(&(v4("172.30.0.0"), 15)), "{reserved:?}");
        assert!(!reserved.iter().any(|(_, len)| *len == 0), "{reserved:?}");
        assert!(reserved.iter().all(|(ip, _)| ip.is_ipv4()), "{reserved:?}");
        assert_eq!(
            reserved,
            kernel.dump_reserved_prefixes().await.expect("dump"),
            "the watched answer is the dumped one"
        );

        // Later answers come from notifications: changes made just before are in them.
        kernel
            .handle
            .address()
            .add(index, v4("10.98.1.1"), 24)
            .execute()
            .await
            .expect("add a second address");
        let reserved = kernel.reserved_prefixes().await.expect("reserved prefixes");
        assert!(reserved.contains(&(v4("10.98.1.0"), 24)), "{reserved:?}");
        kernel
            .handle
            .route()
            .del(link_route(index, Ipv4Addr::new(172, 30, 0, 0), 15))
            .execute()
            .await
            .expect("delete the VPN route");
        let mut addresses = kernel
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(a) = addresses.try_next().await.expect("dump addresses") {
            if address_of(&a) == Some(v4("10.99.3.7")) {
                kernel
                    .handle
                    .address()
                    .del(a)
                    .execute()
                    .await
                    .expect("delete the first address");
                break;
            }
        }
        let reserved = kernel.reserved_prefixes().await.expect("reserved prefixes");
        assert!(!reserved.contains(&(v4("172.30.0.0"), 15)), "{reserved:?}");
        assert!(!reserved.contains(&(v4("10.99.0.0"), 16)), "{reserved:?}");
        assert!(reserved.contains(&(v4("10.98.1.0"), 24)), "{reserved:?}");
        assert_eq!(
            reserved,
            kernel.dump_reserved_prefixes().await.expect("dump"),
            "still the dumped answer"
        );

        // A link going away takes its addresses and their routes out at once. A route without
        // an address on it is flushed without a notification: it stays reserved until the
        // next dump, which errs on the side of avoiding a subnet.
        kernel
            .handle
            .route()
            .add(link_route(index, Ipv4Addr::new(192, 168, 77, 0), 24))
            .execute()
            .await
            .expect("add a LAN route");
        let reserved = kernel.reserved_prefixes().await.expect("reserved prefixes");
        assert!(reserved.contains(&(v4("192.168.77.0"), 24)), "{reserved:?}");
        assert!(kernel.delete_link("uplink0").await.expect("delete uplink0"));
        let reserved = kernel.reserved_prefixes().await.expect("reserved prefixes");
        assert!(!reserved.contains(&(v4("10.98.1.0"), 24)), "{reserved:?}");
        assert_eq!(reserved, vec![(v4("192.168.77.0"), 24)]);
        assert!(
            kernel
                .dump_reserved_prefixes()
                .await
                .expect("dump")
                .is_empty()
        );
    });
}

#[test]
fn set_sysctl_writes_in_the_callers_namespace() {
    in_throwaway_netns(|| async {
        set_sysctl("net/ipv4/ip_forward", "1").expect("set ip_forward");
        assert_eq!(read_sysctl("net/ipv4/ip_forward"), "1");
        assert!(matches!(
            set_sysctl("net/../../etc/x", "1"),
            Err(KernelError::Invalid { .. })
        ));
        let missing = set_sysctl("net/ipv4/conf/no-such-if/arp_notify", "1");
        assert_eq!(missing.err().and_then(|e| e.errno()), Some(libc::ENOENT));
    });
}

#[test]
fn attach_configures_the_container_side_and_the_host_end() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec(
                "nb-att",
                vec![(v4("10.50.0.1"), 24), (v6("fd00:50::1"), 64)],
            ))
            .await
            .expect("create bridge");
        let bridge_mac = mac_of(&link(&kernel.handle, "nb-att").await);
        let container = throwaway_container();
        let a = Attachment {
            mtu: Some(1400),
            mac: [0x02, 0x42, 0x0a, 0x32, 0x00, 0x02],
            addresses: vec![(v4("10.50.0.2"), 24), (v6("fd00:50::2"), 64)],
            gateway_v6: Some("fd00:50::1".parse().expect("v6 gateway")),
            sysctls: Vec::new(),
            ..attachment("veth1a2b3c4", bridge, "10.50.0.2", Some("10.50.0.1"))
        };
        let (name, index) = kernel.attach(&container, &a).await.expect("attach");
        assert_eq!(name, "eth0");
        assert_eq!(
            mac_of(&link(&kernel.handle, "nb-att").await),
            bridge_mac,
            "the bridge MAC stays pinned when a port joins"
        );

        // Host end: on the bridge, marked, up, same MTU.
        let host = kernel.links().await.expect("links");
        let host_end = host
            .iter()
            .find(|l| l.name == "veth1a2b3c4")
            .expect("host end");
        assert_eq!(host_end.kind.as_deref(), Some("veth"));
        assert_eq!(host_end.master, Some(bridge));
        assert_eq!(host_end.alias.as_deref(), Some("netbridge:veth1a2b3c4"));
        let raw = link(&kernel.handle, "veth1a2b3c4").await;
        assert!(is_up(&raw));
        assert_eq!(link_mtu(&raw), Some(1400));
        // A bridge port has no IPv6 of its own: no link-local address, no routes to walk.
        assert_eq!(read_sysctl("net/ipv6/conf/veth1a2b3c4/disable_ipv6"), "1");
        assert_eq!(addresses_of(&kernel.handle, host_end.index).await, vec![]);
        // The dual-stack bridge keeps its IPv6.
        assert_eq!(read_sysctl("net/ipv6/conf/nb-att/disable_ipv6"), "0");

        // Container side, seen from inside.
        let listed = kernel
            .links_in(&container)
            .await
            .expect("links in namespace");
        let names: Vec<_> = listed.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["lo", "eth0"]);
        assert_eq!(listed[1].index, index);
        let (lo, eth0, addresses, routes, arp_notify, accept_dad) =
            run_in_netns(&container, "inspect", |inner| async move {
                let lo = link(&inner.handle, "lo").await;
                let eth0 = link(&inner.handle, "eth0").await;
                let addresses = addresses_of(&inner.handle, eth0.header.index).await;
                let routes = default_routes(&inner.handle).await;
                Ok((
                    is_up(&lo),
                    eth0,
                    addresses,
                    routes,
                    read_sysctl("net/ipv4/conf/eth0/arp_notify"),
                    read_sysctl("net/ipv6/conf/eth0/accept_dad"),
                ))
            })
            .await
            .expect("inspect namespace");
        assert!(lo, "lo is up");
        assert!(is_up(&eth0), "eth0 is up");
        assert_eq!(link_mtu(&eth0), Some(1400));
        assert_eq!(mac_of(&eth0), Some(a.mac.to_vec()));
        assert!(addresses.contains(&(v4("10.50.0.2"), 24)), "{addresses:?}");
        assert!(addresses.contains(&(v6("fd00:50::2"), 64)), "{addresses:?}");
        assert!(routes.contains(&(v4("10.50.0.1"), index)), "{routes:?}");
        assert!(routes.contains(&(v6("fd00:50::1"), index)), "{routes:?}");
        assert_eq!(arp_notify, "1");
        assert_eq!(accept_dad, "0");
    });
}

#[test]
fn second_attach_gets_eth1_and_keeps_the_default_route() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let first = kernel
            .create_bridge(&bridge_spec("nb-one", vec![(v4("10.51.0.1"), 24)]))
            .await
            .expect("bridge one");
        let second = kernel
            .create_bridge(&bridge_spec("nb-two", vec![(v4("10.52.0.1"), 24)]))
            .await
            .expect("bridge two");
        let container = throwaway_container();
        let (name0, index0) = kernel
            .attach(
                &container,
                &attachment("veth0000001", first, "10.51.0.2", Some("10.51.0.1")),
            )
            .await
            .expect("first attach");
        let (name1, _) = kernel
            .attach(
                &container,
                &attachment("veth0000002", second, "10.52.0.2", Some("10.52.0.1")),
            )
            .await
            .expect("second attach");
        assert_eq!((name0.as_str(), name1.as_str()), ("eth0", "eth1"));

        let named = Attachment {
            container_name: Some("data0".into()),
            ..attachment("veth0000003", second, "10.52.0.3", None)
        };
        let (name2, _) = kernel
            .attach(&container, &named)
            .await
            .expect("named attach");
        assert_eq!(name2, "data0");
        let taken = Attachment {
            container_name: Some("eth1".into()),
            ..attachment("veth0000004", second, "10.52.0.4", None)
        };
        let refused = kernel.attach(&container, &taken).await;
        assert!(
            matches!(&refused, Err(KernelError::Exists { name, .. }) if name == "eth1"),
            "{refused:?}"
        );
        assert_eq!(kernel.link_index("veth0000004").await.expect("index"), None);

        let routes = run_in_netns(&container, "inspect", |inner| async move {
            Ok(default_routes(&inner.handle).await)
        })
        .await
        .expect("inspect namespace");
        assert_eq!(
            routes,
            vec![(v4("10.51.0.1"), index0)],
            "first network keeps the default route"
        );
    });
}

#[test]
fn attach_called_off_changes_nothing() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-off", vec![(v4("10.54.0.1"), 24)]))
            .await
            .expect("create bridge");
        let container = throwaway_container();
        let a = attachment("veth0000020", bridge, "10.54.0.2", Some("10.54.0.1"));
        for called_off in [true, false] {
            let (go, ready) = tokio::sync::oneshot::channel();
            if called_off {
                let _ = go.send(false);
            } else {
                drop(go);
            }
            let result = kernel.attach_when(&container, &a, ready).await;
            assert!(
                matches!(result, Err(KernelError::CalledOff { .. })),
                "{result:?}"
            );
            assert_eq!(kernel.link_index("veth0000020").await.expect("index"), None);
            let inside = kernel.links_in(&container).await.expect("links inside");
            assert_eq!(inside.len(), 1, "only lo: {inside:?}");
        }
        // Told to go, it attaches as `attach` does.
        let (go, ready) = tokio::sync::oneshot::channel();
        let _ = go.send(true);
        let (name, _) = kernel
            .attach_when(&container, &a, ready)
            .await
            .expect("attach");
        assert_eq!(name, "eth0");
    });
}

/// Attaches `a`, told to go at once; 20 ms later `late` addresses are handed over, or the
/// sender is dropped (`None`: a failed claim).
async fn attach_with_late(
    kernel: &Kernel,
    container: &Netns,
    a: &Attachment,
    late: Option<Vec<(IpAddr, u8)>>,
) -> Result<(String, u32), KernelError> {
    let (go, ready) = tokio::sync::oneshot::channel();
    let (tell, addresses) = tokio::sync::oneshot::channel();
    let _ = go.send(true);
    let ready = Ready {
        go: ready,
        late: Some(addresses),
    };
    let deciding = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if let Some(late) = late {
            let _ = tell.send(late);
        }
    };
    let (result, ()) = tokio::join!(kernel.attach_when(container, a, ready), deciding);
    result
}

#[test]
fn attach_takes_late_addresses_before_up_or_undoes_itself() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-late", vec![(v4("10.55.0.1"), 24)]))
            .await
            .expect("create bridge");
        let container = throwaway_container();
        // The address is decided late (a cluster's claim): the default route via the gateway
        // needs it on the link, so the attach must wait for it.
        let mut a = attachment("veth0000021", bridge, "10.55.0.9", Some("10.55.0.1"));
        a.addresses.clear();

        // The claim fails: the pair, already made, is deleted again.
        let result = attach_with_late(&kernel, &container, &a, None).await;
        assert!(
            matches!(result, Err(KernelError::CalledOff { .. })),
            "{result:?}"
        );
        assert_eq!(kernel.link_index("veth0000021").await.expect("index"), None);
        let inside = kernel.links_in(&container).await.expect("links inside");
        assert_eq!(inside.len(), 1, "only lo: {inside:?}");

        // The claim is won while the pair is made: the address is on before up.
        let won = Some(vec![(v4("10.55.0.9"), 24)]);
        let result = attach_with_late(&kernel, &container, &a, won).await;
        let (name, index) = result.expect("attach");
        assert_eq!(name, "eth0");
        let (addresses, routes) = run_in_netns(&container, "inspect", move |inner| async move {
            Ok((
                addresses_of(&inner.handle, index).await,
                default_routes(&inner.handle).await,
            ))
        })
        .await
        .expect("inspect namespace");
        assert!(addresses.contains(&(v4("10.55.0.9"), 24)), "{addresses:?}");
        assert!(routes.contains(&(v4("10.55.0.1"), index)), "{routes:?}");
    });
}

#[test]
fn attach_failure_leaves_nothing_behind() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-roll", vec![(v4("10.53.0.1"), 24)]))
            .await
            .expect("create bridge");
        let container = throwaway_container();

        // Fails after the pair exists: the second, duplicate address.
        let a = Attachment {
            addresses: vec![(v4("10.53.0.2"), 24), (v4("10.53.0.2"), 24)],
            ..attachment("veth0000010", bridge, "10.53.0.2", None)
        };
        let failed = kernel.attach(&container, &a).await;
        assert!(
            matches!(
                &failed,
                Err(KernelError::Netlink {
                    op: "add address",
                    ..
                })
            ),
            "{failed:?}"
        );
        assert_eq!(kernel.link_index("veth0000010").await.expect("index"), None);

        // Fails at creation: no such bridge.
        let failed = kernel
            .attach(
                &container,
                &attachment("veth0000011", 9999, "10.53.0.3", None),
            )
            .await;
        assert!(
            matches!(&failed, Err(KernelError::Netlink { .. })),
            "{failed:?}"
        );
        assert_eq!(kernel.link_index("veth0000011").await.expect("index"), None);

        // The host name is taken: Exists, and the existing link is not touched.
        kernel
            .handle
            .link()
            .add(LinkVeth::new("veth0000012", "veth0000012p").build())
            .execute()
            .await
            .expect("make a veth pair");
        let failed = kernel
            .attach(
                &container,
                &attachment("veth0000012", bridge, "10.53.0.4", None),
            )
            .await;
        assert!(
            matches!(&failed, Err(KernelError::Exists { name, .. }) if name == "veth0000012"),
            "{failed:?}"
        );
        assert!(
            kernel
                .link_index("veth0000012")
                .await
                .expect("index")
                .is_some()
        );

        let inside = kernel
            .links_in(&container)
            .await
            .expect("links in namespace");
        assert_eq!(
            inside.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            vec!["lo"]
        );
    });
}

#[test]
fn detach_removes_both_ends() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-det", vec![(v4("10.54.0.1"), 24)]))
            .await
            .expect("create bridge");
        let container = throwaway_container();
        kernel
            .attach(
                &container,
                &attachment("veth0000020", bridge, "10.54.0.2", Some("10.54.0.1")),
            )
            .await
            .expect("attach");
        assert!(kernel.detach("veth0000020").await.expect("detach"));
        assert_eq!(kernel.link_index("veth0000020").await.expect("index"), None);
        let inside = kernel
            .links_in(&container)
            .await
            .expect("links in namespace");
        assert_eq!(
            inside.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            vec!["lo"]
        );
        assert!(!kernel.detach("veth0000020").await.expect("detach again"));
    });
}

#[test]
fn cut_off_frees_the_names_and_one_reap_deletes_every_doomed_link() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-cut", vec![(v4("10.55.0.1"), 24)]))
            .await
            .expect("create bridge");
        let container = throwaway_container();
        // Not ours: in no group, it must survive every reap.
        kernel
            .create_isolated_pair("nb-keep0", "nb-keep1", "someone-else")
            .await
            .expect("bystander pair");
        for (i, host) in ["veth0000030", "veth0000031"].iter().enumerate() {
            let address = format!("10.55.0.{}", i + 2);
            let (name, _) = kernel
                .attach(&container, &attachment(host, bridge, &address, None))
                .await
                .expect("attach");
            assert_eq!(name, "eth0", "the name is free again at once");
            assert!(
                kernel
                    .cut_off(host, Some(&container), &name)
                    .await
                    .expect("cut off")
            );
            let cut = link(&kernel.handle, host).await;
            assert!(
                !cut.header.flags.contains(LinkFlags::LowerUp),
                "host end without carrier"
            );
            assert!(
                cut.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Group(g) if *g == super::DOOMED_GROUP)),
                "host end in the doomed group"
            );
        }
        let inside = kernel
            .links_in(&container)
            .await
            .expect("links in namespace");
        let names: Vec<&str> = inside.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names.len(), 3, "lo and two renamed ends: {names:?}");
        assert!(
            names.iter().all(|n| *n == "lo" || n.starts_with("nbd")),
            "{names:?}"
        );
        assert!(kernel.doom_bridge("nb-cut").await.expect("doom bridge"));
        assert_eq!(
            kernel.link_index("nb-cut").await.expect("index"),
            None,
            "name free"
        );

        assert!(kernel.reap_doomed().await.expect("reap"));
        for gone in ["veth0000030", "veth0000031"] {
            assert_eq!(kernel.link_index(gone).await.expect("index"), None);
        }
        let left: Vec<String> = kernel
            .links()
            .await
            .expect("links")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert!(
            left.iter().all(|n| !n.starts_with("nbd")),
            "doomed left: {left:?}"
        );
        assert!(
            left.iter().any(|n| n == "nb-keep0"),
            "a bystander was deleted: {left:?}"
        );
        let inside = kernel
            .links_in(&container)
            .await
            .expect("links in namespace");
        assert_eq!(
            inside.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            vec!["lo"]
        );
        assert!(!kernel.reap_doomed().await.expect("reap nothing"));
        assert!(
            !kernel
                .cut_off("veth0000030", Some(&container), "eth0")
                .await
                .expect("gone")
        );
    });
}

#[test]
fn two_namespaces_on_one_bridge_exchange_udp() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let bridge = kernel
            .create_bridge(&bridge_spec("nb-udp", vec![(v4("10.55.0.1"), 24)]))
            .await
            .expect("create bridge");
        let (server, client) = (throwaway_container(), throwaway_container());
        let mut a = attachment("veth0000030", bridge, "10.55.0.2", Some("10.55.0.1"));
        kernel.attach(&server, &a).await.expect("attach server");
        a = Attachment {
            mac: [0x02, 0x42, 0x0a, 0x37, 0x00, 0x03],
            ..attachment("veth0000031", bridge, "10.55.0.3", Some("10.55.0.1"))
        };
        kernel.attach(&client, &a).await.expect("attach client");

        let (bound, ready) = mpsc::channel();
        let echo = on_thread_in(&server, move || {
            let socket = UdpSocket::bind("10.55.0.2:7777").expect("bind in server namespace");
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            bound.send(()).expect("signal bound");
            let mut buf = [0u8; 64];
            let (n, from) = socket.recv_from(&mut buf).expect("receive");
            socket.send_to(&buf[..n], from).expect("echo");
        });
        ready.recv().expect("server bound");
        let reply = on_thread_in(&client, || {
            let socket = UdpSocket::bind("10.55.0.3:0").expect("bind in client namespace");
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            socket
                .send_to(b"hello across the bridge", "10.55.0.2:7777")
                .expect("send");
            let mut buf = [0u8; 64];
            let (n, _) = socket.recv_from(&mut buf).expect("receive echo");
            buf[..n].to_vec()
        })
        .join()
        .expect("client thread");
        echo.join().expect("server thread");
        assert_eq!(reply, b"hello across the bridge");
    });
}

#[test]
fn create_named_and_delete_named_in_a_temp_dir() {
    in_throwaway_netns(|| async {
        // A private mount namespace too, so the bind mounts never reach the machine's own.
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare a mount namespace");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make mounts private");
        let dir = std::env::temp_dir().join(format!(
            "netbridge-netns-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));

        let ns = Netns::create_named(&dir, "c1").expect("create named namespace");
        assert_eq!(ns.path(), dir.join("c1"));
        let again = Netns::create_named(&dir, "c1");
        assert!(
            matches!(again, Err(KernelError::Exists { .. })),
            "{again:?}"
        );
        let reopened = Netns::open(&dir.join("c1")).expect("open by path");

        let kernel = Kernel::connect().expect("connect");
        let inside = kernel
            .links_in(&reopened)
            .await
            .expect("links in named namespace");
        assert_eq!(inside.len(), 1);
        let lo_up = run_in_netns(&reopened, "inspect", |inner| async move {
            Ok(is_up(&link(&inner.handle, "lo").await))
        })
        .await
        .expect("inspect");
        assert!(lo_up, "lo is up in a new named namespace");

        Netns::delete_named(&dir, "c1").expect("delete named namespace");
        assert!(!dir.join("c1").exists());
        Netns::delete_named(&dir, "c1").expect("deleting twice is fine");
        assert!(matches!(
            Netns::open(&dir.join("c1")),
            Err(KernelError::NotFound { .. })
        ));
        drop((ns, reopened));

        umount2(&dir, MntFlags::MNT_DETACH).expect("unmount the temp dir's self-bind");
        std::fs::remove_dir(&dir).expect("remove temp dir");
    });
}

#[test]
fn open_refuses_a_file_that_is_not_a_namespace() {
    let file: PathBuf =
        std::env::temp_dir().join(format!("netbridge-not-ns-{}", std::process::id()));
    std::fs::write(&file, b"").expect("write temp file");
    let opened = Netns::open(&file);
    std::fs::remove_file(&file).expect("remove temp file");
    assert!(
        matches!(opened, Err(KernelError::Invalid { .. })),
        "{opened:?}"
    );
}

/// Prints what attach and create_bridge cost here (run with --nocapture).
#[test]
fn timings() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let mut bridge_times = Vec::new();
        for i in 0..20 {
            let spec = bridge_spec(
                &format!("nb-time{i}"),
                vec![(v4(&format!("10.60.{i}.1")), 24)],
            );
            let started = Instant::now();
            kernel.create_bridge(&spec).await.expect("create bridge");
            bridge_times.push(started.elapsed());
        }
        let bridge = kernel
            .link_index("nb-time0")
            .await
            .expect("index")
            .expect("bridge");
        let mut attach_times = Vec::new();
        for i in 0..20 {
            let container = throwaway_container();
            let a = attachment(
                &format!("vethtime{i:03}"),
                bridge,
                &format!("10.60.0.{}", i + 2),
                Some("10.60.0.1"),
            );
            let started = Instant::now();
            kernel.attach(&container, &a).await.expect("attach");
            attach_times.push(started.elapsed());
        }
        eprintln!(
            "create_bridge: median {:?}, min {:?} | attach: median {:?}, min {:?} (20 each)",
            median(bridge_times.clone()),
            bridge_times.iter().min().expect("samples"),
            median(attach_times.clone()),
            attach_times.iter().min().expect("samples"),
        );
    });
}

#[test]
fn probe_finds_the_kinds_this_kernel_has() {
    let kinds = super::LinkKinds::probe().expect("probe");
    // Everything netbridge itself needs to run its tests is there.
    for kind in ["bridge", "veth"] {
        assert!(kinds.has(kind), "{kind}: {kinds:?}");
    }
    // A kind the kernel has no driver for is told apart from one that needs a parent.
    assert!(!kinds.has("no-such-kind"));
}

#[test]
fn macvlan_attach_is_born_inside_marked_and_deleted_by_its_mark() {
    in_throwaway_netns(|| async {
        let kernel = Kernel::connect().expect("connect");
        let parent = kernel
            .create_isolated_pair("dm-test", "dp-test", "netbridge:net")
            .await
            .expect("isolated parent");
        let links = kernel.links().await.expect("links");
        for name in ["dm-test", "dp-test"] {
            let l = links.iter().find(|l| l.name == name).expect("pair end");
            assert_eq!(l.kind.as_deref(), Some("veth"));
            assert_eq!(
                l.alias.as_deref(),
                Some("netbridge:net"),
                "{name} is marked"
            );
            assert!(is_up(&link(&kernel.handle, name).await), "{name} is up");
        }
        let container = throwaway_container();
        let a = super::MacvlanAttachment {
            parent_index: parent,
            mode: super::MacvlanMode::Bridge,
            container_name: None,
            mtu: None,
            mac: [0x02, 0x42, 0x0a, 0x33, 0x00, 0x02],
            alias: "netbridge:endpoint".to_string(),
            addresses: vec![(v4("10.51.0.2"), 24)],
            sysctls: Vec::new(),
            gateways: super::Gateways {
                v4: Some("10.51.0.1".parse().expect("gateway")),
                v6: None,
            },
        };
        let (go, ready) = tokio::sync::oneshot::channel();
        let _ = go.send(true);
        let (name, index) = kernel
            .attach_macvlan(&container, &a, ready)
            .await
            .expect("attach macvlan");
        assert_eq!(name, "eth0");
        // Nothing of it in the daemon's namespace.
        let here = kernel.links().await.expect("links");
        assert!(here.iter().all(|l| l.name != "eth0"), "{here:?}");
        let inside = kernel.links_in(&container).await.expect("links inside");
        let eth0 = inside.iter().find(|l| l.name == "eth0").expect("eth0");
        assert_eq!(eth0.kind.as_deref(), Some("macvlan"));
        assert_eq!(eth0.alias.as_deref(), Some("netbridge:endpoint"));
        let (raw, addresses, routes) = run_in_netns(&container, "inspect", |inner| async move {
            let eth0 = link(&inner.handle, "eth0").await;
            let addresses = addresses_of(&inner.handle, eth0.header.index).await;
            let routes = default_routes(&inner.handle).await;
            Ok((eth0, addresses, routes))
        })
        .await
        .expect("inspect namespace");
        assert!(is_up(&raw));
        assert_eq!(mac_of(&raw), Some(a.mac.to_vec()));
        assert!(addresses.contains(&(v4("10.51.0.2"), 24)), "{addresses:?}");
        assert!(routes.contains(&(v4("10.51.0.1"), index)), "{routes:?}");

        assert!(
            kernel
                .delete_marked_in(&container, "netbridge:endpoint")
                .await
                .expect("delete by mark")
        );
        assert!(
            !kernel
                .delete_marked_in(&container, "netbridge:endpoint")
                .await
                .expect("already gone")
        );
        let inside = kernel.links_in(&container).await.expect("links inside");
        assert_eq!(inside.len(), 1, "only lo is left: {inside:?}");
        assert!(kernel.delete_link("dm-test").await.expect("delete parent"));
        assert!(
            kernel.link("dp-test").await.expect("look up").is_none(),
            "both ends go"
        );
    });
}
