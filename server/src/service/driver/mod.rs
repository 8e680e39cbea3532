//! Drivers: what makes a network real in the kernel. The service's operations (create, remove,
//! connect, disconnect, reconcile) are the same for every network; a [`Driver`] supplies the
//! parts that differ: its options and stored state, its kernel objects, how an endpoint is
//! attached and detached, its firewall rules, and how reconcile recognises what it made.
//!
//! Adding a driver is one file here, registered in [`DRIVERS`], plus (where it needs new
//! netlink) one in `kernel/`.

mod bridge;
mod macvlan;
mod overlay;
mod predefined;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use serde_json::Value;

use super::networks::CreateNetwork;
use super::{Error, Result};
use crate::kernel::{
    Gateways, InterfaceSysctl, Kernel, KernelError, LinkInfo, LinkKinds, Netns, NetworkRules,
};
use crate::model::{Endpoint, Network};
use crate::store::Store;

pub(super) use bridge::{BridgeState, OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQUERADE, OPT_MTU};
pub(super) use overlay::OverlayState;

/// A driver's asynchronous answer.
pub(super) type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// What a driver works with.
#[derive(Clone, Copy)]
pub(super) struct Env<'a> {
    pub kernel: &'a Kernel,
    pub store: &'a Store,
    /// The link kinds this kernel offers (probed at start-up).
    pub kinds: &'a LinkKinds,
}

/// A network about to be made, as its driver sees it.
pub(super) struct Draft<'a> {
    pub id: &'a str,
    pub internal: bool,
    /// What the driver's [`Driver::check`] made of the options.
    pub checked: Value,
}

/// What a driver decided for a new network.
pub(super) struct Plan {
    /// The kernel link the network claims for itself alone (see `Network::link`).
    pub link: Option<String>,
    /// The driver's state, stored with the network and journaled with its create.
    pub state: Value,
}

/// One endpoint's attachment, in the driver's terms.
pub(super) struct Attach<'a> {
    pub endpoint: &'a Endpoint,
    /// The container's namespace.
    pub ns: &'a Netns,
    /// The interface name inside, or `None` for the lowest free eth<N>.
    pub ifname: Option<String>,
    pub mac: [u8; 6],
    /// The network's addresses, then any extra (link-local) ones.
    pub addresses: Vec<(IpAddr, u8)>,
    /// The client's per-interface sysctls.
    pub sysctls: Vec<InterfaceSysctl>,
    pub gateways: Gateways,
}

/// One network driver.
pub(super) trait Driver: Send + Sync {
    /// Docker's name for it (`docker network create -d NAME`).
    fn name(&self) -> &'static str;

    /// Link kinds it cannot work without; a kernel lacking one refuses the driver.
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Docker's checks of a create request's options, in Docker's words; pure. Returns what
    /// the driver makes of them, handed to [`Driver::plan`].
    fn check(&self, req: &CreateNetwork) -> Result<Value>;

    /// Decides the network's kernel objects against what the kernel and store hold.
    fn plan<'a>(&'a self, env: Env<'a>, draft: Draft<'a>) -> Fut<'a, Plan>;

    /// Makes the network's kernel objects. Leaves nothing behind on failure.
    fn create<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, ()>;

    /// Removes what [`Driver::create`] made for network `id`, given its state (a row's, or a
    /// journal entry's when a crash cut the create short). Returns what was removed, if
    /// anything.
    fn remove<'a>(&'a self, env: Env<'a>, id: &'a str, state: &'a Value)
    -> Fut<'a, Option<String>>;

    /// Start-up and reconcile: makes each network's kernel objects match its row, with as
    /// few kernel round trips as possible. Returns one line per repair.
    fn ensure<'a>(&'a self, env: Env<'a>, networks: &'a [&'a Network]) -> Fut<'a, Vec<String>> {
        let _ = (env, networks);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Whether a link of this kind carrying netbridge's mark may be one of this driver's (in
    /// the daemon's namespace): reconcile removes such a link when no row claims its mark.
    fn claims(&self, link: &LinkInfo) -> bool {
        let _ = link;
        false
    }

    /// Docker's refusals of a connect to a network of this driver, given how many endpoints
    /// the network already has.
    fn check_connect(&self, n: &Network, endpoints: usize) -> Result<()> {
        let _ = (n, endpoints);
        Ok(())
    }

    /// The MAC an endpoint must have, when the driver does not let it be chosen (a macvlan
    /// in passthru mode takes its parent's).
    fn fixed_mac<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, Option<[u8; 6]>> {
        let _ = (env, n);
        Box::pin(async { Ok(None) })
    }

    /// Docker's refusal of a disconnect from a network of this driver.
    fn check_disconnect(&self) -> Result<()> {
        Ok(())
    }

    /// The endpoint's name in the daemon's namespace, chosen before its journal entry (a
    /// veth's host end); drivers without one return a token no link can carry.
    fn host_ifname(&self, endpoint_id: &str) -> String;

    /// Attaches an endpoint; all or nothing. Nothing is changed until `ready` says go, and
    /// addresses it brings late are added with the rest.
    /// Returns the interface name inside the container's namespace.
    fn attach<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        a: Attach<'a>,
        ready: crate::kernel::Ready,
    ) -> Fut<'a, String>;

    /// Whether an endpoint's links live only inside the container's namespace (then detach
    /// and the reconcile check get it opened; otherwise they need not pay for that).
    fn lives_inside(&self) -> bool {
        false
    }

    /// Detaches an endpoint, given its ID, its host-side name and (if the driver lives
    /// inside) the container's namespace, `None` when that is gone; `Ok(false)` if it was
    /// already gone (a vanished namespace takes its links with it).
    fn detach<'a>(
        &'a self,
        env: Env<'a>,
        endpoint_id: &'a str,
        host_ifname: &'a str,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool>;

    /// Cuts an endpoint off for a disconnect: once this returns it carries nothing and its
    /// name inside is free; what is left may be deleted later by the reaper (see
    /// `kernel::doomed`). `Ok(false)` if it was already gone. Drivers without deferred
    /// deletion detach at once.
    fn cut_off<'a>(
        &'a self,
        env: Env<'a>,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        self.detach(env, &e.id, &e.host_ifname, ns)
    }

    /// Cuts a removed network's kernel objects off, leaving their deletion to the reaper;
    /// drivers without deferred deletion remove them at once (see [`Driver::remove`]).
    fn doom<'a>(&'a self, env: Env<'a>, id: &'a str, state: &'a Value) -> Fut<'a, Option<String>> {
        self.remove(env, id, state)
    }

    /// Reconcile: whether an endpoint's kernel objects are all there, given a dump of the
    /// daemon's links and (if the driver lives inside) the container's namespace.
    fn intact<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
        links: &'a [LinkInfo],
    ) -> Fut<'a, bool>;

    /// The kernel bridge the network's containers share, if the driver has one (what the
    /// firewall's isolation and ICC rules are about).
    fn bridge(&self, n: &Network) -> Option<String> {
        let _ = n;
        None
    }

    /// The firewall rules the network needs, if any.
    fn rules(&self, n: &Network) -> Option<NetworkRules> {
        let _ = n;
        None
    }
}

/// The index of link `name`, which network `n` needs as its `role` (its bridge, its parent):
/// a missing one is the daemon's fault, not the client's.
async fn network_link(env: Env<'_>, n: &Network, role: &str, name: &str) -> Result<u32> {
    env.kernel
        .link_index(name)
        .await
        .map_err(Error::kernel(format!("cannot look up {role} {name}")))?
        .ok_or_else(|| Error::System(format!("{role} {name} of network {} is missing", n.name)))
}

/// Every driver netbridge has.
static DRIVERS: [&dyn Driver; 5] = [
    &bridge::Bridge,
    &macvlan::Macvlan,
    &overlay::Overlay,
    &predefined::NULL,
    &predefined::HOST,
];

/// Docker's drivers that netbridge has no file for, with the link kind each would need: a
/// request for one names what is missing instead of answering `plugin not found`.
const UNIMPLEMENTED: [(&str, &str); 1] = [("ipvlan", "ipvlan")];

/// The driver called `name`.
pub(super) fn find(name: &str) -> Option<&'static dyn Driver> {
    DRIVERS.iter().copied().find(|d| d.name() == name)
}

/// The driver for a create request, or Docker's refusal: unknown drivers are plugins that are
/// not there; known ones whose link kind this kernel lacks say which.
pub(super) fn for_create(name: &str, kinds: &LinkKinds) -> Result<&'static dyn Driver> {
    let missing = |kind: &str| {
        Error::InvalidParameter(format!(
            "the {name} driver needs the kernel's {} support (link kind \"{kind}\"), which this kernel lacks",
            kind_feature(kind)
        ))
    };
    if let Some(d) = find(name) {
        if let Some(kind) = d.needs().iter().find(|k| !kinds.has(k)) {
            return Err(missing(kind));
        }
        return Ok(d);
    }
    if let Some((_, kind)) = UNIMPLEMENTED.iter().find(|(d, _)| *d == name) {
        if !kinds.has(kind) {
            return Err(missing(kind));
        }
        return Err(Error::InvalidParameter(format!(
            "the {name} driver is not implemented by netbridge"
        )));
    }
    Err(Error::NotFound(format!("plugin \"{name}\" not found")))
}

/// The kernel feature behind a link kind, as its Kconfig help names it.
pub(super) fn kind_feature(kind: &str) -> &'static str {
    match kind {
        "vlan" => "802.1Q VLAN (CONFIG_VLAN_8021Q)",
        "ipvlan" => "IP-VLAN (CONFIG_IPVLAN)",
        "macvlan" => "MAC-VLAN (CONFIG_MACVLAN)",
        "dummy" => "dummy network device (CONFIG_DUMMY)",
        "vxlan" => "VXLAN (CONFIG_VXLAN)",
        "veth" => "virtual ethernet pair (CONFIG_VETH)",
        "bridge" => "802.1d Ethernet bridging (CONFIG_BRIDGE)",
        _ => "link",
    }
}

/// The driver of an existing network. Its name was accepted at create, so a miss means a
/// row this build cannot serve.
pub(super) fn of(n: &Network) -> Result<&'static dyn Driver> {
    find(&n.driver).ok_or_else(|| {
        Error::System(format!(
            "network {} uses driver {}, which this build does not have",
            n.name, n.driver
        ))
    })
}

/// Every driver netbridge knows of, with whether this kernel can serve it and, if not, the
/// link kind it lacks.
pub(super) fn availability(kinds: &LinkKinds) -> Vec<(&'static str, Option<&'static str>)> {
    let mut all: Vec<(&'static str, Option<&'static str>)> = DRIVERS
        .iter()
        .map(|d| (d.name(), d.needs().iter().copied().find(|k| !kinds.has(k))))
        .collect();
    for (name, kind) in UNIMPLEMENTED {
        all.push((name, Some(kind).filter(|k| !kinds.has(k))));
    }
    all
}

/// The kernel bridge of a network, if its driver has one.
pub fn bridge_of(n: &Network) -> Option<String> {
    of(n).ok()?.bridge(n)
}

/// Every driver, for reconcile.
pub(super) fn all() -> impl Iterator<Item = &'static dyn Driver> {
    DRIVERS.iter().copied()
}

/// A driver's stored state, read back; a row that does not parse is a corrupt row.
pub(super) fn state_of<T: serde::de::DeserializeOwned>(n: &Network) -> Result<T> {
    read_state(&n.driver_state).map_err(|e| {
        Error::System(format!(
            "network {}: its {} driver state does not read: {e}",
            n.name, n.driver
        ))
    })
}

pub(super) fn read_state<T: serde::de::DeserializeOwned>(
    state: &Value,
) -> std::result::Result<T, serde_json::Error> {
    serde_json::from_value(state.clone())
}

/// An attach's kernel failure in the client's terms: its sysctls or interface name are its
/// mistake (Docker's text), a vanished namespace is not found; the rest is ours.
pub(super) fn attach_error(context: String, e: KernelError) -> Error {
    match e {
        KernelError::NotFound { .. } => {
            Error::NotFound("the container's network namespace vanished".to_string())
        }
        KernelError::InterfaceSysctl { detail } => Error::InvalidParameter(detail),
        KernelError::Exists {
            what: "link in namespace",
            name,
        } => Error::InvalidParameter(format!(
            "an interface named {name} already exists in the container"
        )),
        other => Error::Kernel {
            context,
            source: other,
        },
    }
}

/// The ownership mark on a link: `netbridge:<id>`.
pub(super) fn mark(id: &str) -> String {
    format!("{}{id}", super::reconcile::MARK)
}
