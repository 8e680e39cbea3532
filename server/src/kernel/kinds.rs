//! Which link kinds this kernel offers: each is created and deleted once in a scratch
//! namespace at start-up, so a driver whose kind is missing is refused with a clear message
//! instead of failing halfway through its first create or connect.

use std::collections::BTreeSet;

use rtnetlink::{
    Handle, LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkVeth, LinkVlan, LinkVxlan,
    packet_route::link::{IpVlanMode, LinkMessage, MacVlanMode},
};

use super::{
    KernelError,
    link::{connect_here, create_link, delete_link_by_name, index_of},
};

/// The link kinds (as `ip link add … type KIND` names them) this kernel could create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkKinds(BTreeSet<String>);

/// Every kind a Docker driver netbridge knows of may need.
pub const PROBED: [&str; 7] = [
    "bridge", "veth", "macvlan", "ipvlan", "vlan", "vxlan", "dummy",
];

impl LinkKinds {
    /// Every kind, for when probing is impossible: then the kernel's own error says what is
    /// missing at the first use.
    pub fn assume_all() -> LinkKinds {
        LinkKinds(PROBED.iter().map(|k| k.to_string()).collect())
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> LinkKinds {
        LinkKinds(names.into_iter().map(str::to_string).collect())
    }

    pub fn has(&self, kind: &str) -> bool {
        self.0.contains(kind)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Probes on a throwaway thread in a fresh namespace of its own, which vanishes with the
    /// thread together with everything made in it.
    pub fn probe() -> Result<LinkKinds, KernelError> {
        let worker = std::thread::Builder::new()
            .name("netbridge-kinds".into())
            .spawn(|| -> Result<LinkKinds, KernelError> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| KernelError::os("unshare namespace", "probe", e))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| KernelError::os("probe", "tokio runtime", e))?;
                runtime.block_on(async {
                    let handle = connect_here("probe link kinds")?;
                    probe_here(&handle).await
                })
            })
            .map_err(|e| KernelError::os("spawn probe thread", "probe", e))?;
        worker
            .join()
            .map_err(|_| KernelError::Worker { op: "probe" })?
    }
}

/// Tries each kind in turn; those that need a parent get the scratch bridge, kept for them.
async fn probe_here(handle: &Handle) -> Result<LinkKinds, KernelError> {
    let mut found = BTreeSet::new();
    let bridge = create_link(handle, LinkBridge::new("nbp-br").build(), "probe", "nbp-br").await;
    if offered(&bridge) {
        found.insert("bridge".to_string());
    }
    // Without a parent (index 0) a kind that exists answers ENODEV or EINVAL, not EOPNOTSUPP.
    let p = index_of(handle, "nbp-br").await.unwrap_or(0);
    let candidates: [(&str, &str, LinkMessage); 6] = [
        (
            "veth",
            "nbp-veth",
            LinkVeth::new("nbp-veth", "nbp-peer").build(),
        ),
        (
            "macvlan",
            "nbp-mv",
            LinkMacVlan::new("nbp-mv", p, MacVlanMode::Bridge).build(),
        ),
        (
            "ipvlan",
            "nbp-ipv",
            LinkIpVlan::new("nbp-ipv", p, IpVlanMode::L2).build(),
        ),
        ("vlan", "nbp-vl", LinkVlan::new("nbp-vl", p, 5).build()),
        ("vxlan", "nbp-vx", LinkVxlan::new("nbp-vx", 42).build()),
        ("dummy", "nbp-dm", LinkDummy::new("nbp-dm").build()),
    ];
    for (kind, name, msg) in candidates {
        if try_kind(handle, name, msg).await {
            found.insert(kind.to_string());
        }
    }
    Ok(LinkKinds(found))
}

async fn try_kind(handle: &Handle, name: &str, msg: LinkMessage) -> bool {
    let created = create_link(handle, msg, "probe link kind", name).await;
    if created.is_ok() {
        // The namespace goes with the thread anyway; this only keeps the probe tidy.
        let _ = delete_link_by_name(handle, name).await;
    }
    offered(&created)
}

/// The kernel answers EOPNOTSUPP for a kind it has no driver for (after trying to load its
/// module); any other answer means the kind exists.
fn offered(created: &Result<(), KernelError>) -> bool {
    match created {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "link kind probe");
            e.errno() != Some(libc::EOPNOTSUPP)
        }
    }
}
