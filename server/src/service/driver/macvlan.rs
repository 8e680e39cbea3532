//! The macvlan driver: each endpoint is a macvlan of the network's parent link, born in the
//! container's namespace with its own MAC, so containers sit directly on the parent's network
//! and the gateway is a router out there, never an address on a host interface.
//!
//! Without a parent (or with `--internal`) netbridge makes an isolated parent of its own, as
//! Docker does with a dummy link. The kernel may lack dummy links, and an empty bridge has no
//! carrier (so its macvlans would pass nothing): the parent is one end of a veth pair whose
//! other end sits unused beside it, up, with carrier, leading nowhere. It carries netbridge's
//! mark and goes with the network.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Attach, Draft, Driver, Env, Fut, Plan, kind_feature, mark, network_link, read_state, state_of,
};
use crate::kernel::{LinkInfo, MacvlanAttachment, MacvlanMode, Netns};
use crate::metrics::timed;
use crate::model::{Endpoint, Network, valid_ifname};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

pub const OPT_PARENT: &str = "parent";
pub const OPT_MODE: &str = "macvlan_mode";

pub(in crate::service) struct Macvlan;

/// What the macvlan driver stores with a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::service) struct MacvlanState {
    /// The link the endpoints' macvlans hang off, in the daemon's namespace.
    pub parent: String,
    /// Docker's mode name: bridge, vepa, private or passthru.
    pub mode: String,
    /// The parent is netbridge's own isolated one, made and removed with the network.
    pub own_parent: bool,
}

/// The options as checked: the parent asked for (if any) and the mode.
#[derive(Serialize, Deserialize)]
struct Checked {
    parent: Option<String>,
    mode: String,
}

fn mode_of(name: &str) -> Option<MacvlanMode> {
    match name {
        "bridge" => Some(MacvlanMode::Bridge),
        "vepa" => Some(MacvlanMode::Vepa),
        "private" => Some(MacvlanMode::Private),
        "passthru" => Some(MacvlanMode::Passthru),
        _ => None,
    }
}

/// Docker's option checks: a known mode (default bridge), a parent that can be one.
fn check_options(options: &BTreeMap<String, String>) -> Result<(Option<String>, String)> {
    let mode = match options.get(OPT_MODE).map(String::as_str) {
        None | Some("") => "bridge".to_string(),
        Some(m) if mode_of(m).is_some() => m.to_string(),
        Some(m) => {
            return Err(Error::InvalidParameter(format!(
                "requested macvlan mode '{m}' is not valid, 'bridge' mode is the macvlan driver default"
            )));
        }
    };
    let parent = match options.get(OPT_PARENT).map(String::as_str) {
        None | Some("") => None,
        Some("lo") => {
            return Err(Error::InvalidParameter(
                "loopback interface is not a valid macvlan parent link".to_string(),
            ));
        }
        Some(p) if !valid_ifname(p) => {
            return Err(Error::InvalidParameter(format!(
                "-o parent interface name is not valid: {p}"
            )));
        }
        Some(p) => Some(p.to_string()),
    };
    Ok((parent, mode))
}

/// The isolated parent of a network without one: Docker's dummy link name.
fn own_parent_name(id: &str) -> String {
    format!("dm-{}", &id[..12])
}

/// The other end of an isolated parent ("dm-" becomes "dp-").
fn own_parent_peer(parent: &str) -> String {
    format!("dp-{}", parent.trim_start_matches("dm-"))
}

/// Makes a network's isolated parent.
async fn make_own_parent(env: Env<'_>, n_id: &str, parent: &str) -> Result<()> {
    let (peer, alias) = (own_parent_peer(parent), mark(n_id));
    let made = env.kernel.create_isolated_pair(parent, &peer, &alias);
    timed("netlink", "create_isolated_parent", made)
        .await
        .map(|_| ())
        .map_err(Error::kernel(format!(
            "failed to create the isolated parent {parent}"
        )))
}

impl Macvlan {
    /// Docker's rule for a shared parent: other macvlan networks may use it too, unless one
    /// of them (the new one or an existing one) is in passthru mode.
    async fn check_shared_parent(&self, env: Env<'_>, parent: &str, mode: &str) -> Result<()> {
        for other in env.store.networks().await? {
            if other.driver != self.name() {
                continue;
            }
            let Ok(state) = read_state::<MacvlanState>(&other.driver_state) else {
                continue;
            };
            if state.parent != parent {
                continue;
            }
            if mode == "passthru" {
                return Err(Error::Forbidden(format!(
                    "cannot use mode passthru, macvlan network {} is already using parent interface {parent}",
                    other.id
                )));
            }
            if state.mode == "passthru" {
                return Err(Error::Forbidden(format!(
                    "macvlan network {} is already using parent interface {parent} in mode passthru",
                    other.id
                )));
            }
        }
        Ok(())
    }

    /// A parent named by the client must exist; `IF.VLAN` would need an 802.1Q link.
    async fn check_parent(&self, env: Env<'_>, parent: &str) -> Result<()> {
        let found = env
            .kernel
            .link(parent)
            .await
            .map_err(Error::kernel(format!("looking up {parent}")))?;
        if found.is_some() {
            return Ok(());
        }
        if let Some((base, vlan)) = parent.rsplit_once('.')
            && !base.is_empty()
            && vlan.parse::<u16>().is_ok()
        {
            if !env.kinds.has("vlan") {
                return Err(Error::InvalidParameter(format!(
                    "-o parent={parent} needs a VLAN sub-interface, and this kernel lacks {} support (link kind \"vlan\")",
                    kind_feature("vlan")
                )));
            }
            return Err(Error::InvalidParameter(format!(
                "-o parent interface was not found on the host: {parent} (netbridge does not make VLAN sub-interfaces; create it first)"
            )));
        }
        Err(Error::InvalidParameter(format!(
            "-o parent interface was not found on the host: {parent}"
        )))
    }
}

impl Driver for Macvlan {
    fn name(&self) -> &'static str {
        "macvlan"
    }

    fn needs(&self) -> &'static [&'static str] {
        &["macvlan"]
    }

    fn check(&self, req: &CreateNetwork) -> Result<Value> {
        let (parent, mode) = check_options(&req.options)?;
        Ok(serde_json::to_value(Checked { parent, mode }).unwrap_or(Value::Null))
    }

    fn plan<'a>(&'a self, env: Env<'a>, draft: Draft<'a>) -> Fut<'a, Plan> {
        Box::pin(async move {
            let checked: Checked = read_state(&draft.checked)
                .map_err(|e| Error::System(format!("macvlan options: {e}")))?;
            let state = match checked.parent {
                Some(parent) if !draft.internal => {
                    self.check_parent(env, &parent).await?;
                    self.check_shared_parent(env, &parent, &checked.mode)
                        .await?;
                    MacvlanState {
                        parent,
                        mode: checked.mode,
                        own_parent: false,
                    }
                }
                _ => MacvlanState {
                    parent: own_parent_name(draft.id),
                    mode: checked.mode,
                    own_parent: true,
                },
            };
            Ok(Plan {
                link: state.own_parent.then(|| state.parent.clone()),
                state: serde_json::to_value(state).unwrap_or(Value::Null),
            })
        })
    }

    fn create<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, ()> {
        Box::pin(async move {
            let state: MacvlanState = state_of(n)?;
            if !state.own_parent {
                return Ok(());
            }
            make_own_parent(env, &n.id, &state.parent).await
        })
    }

    fn remove<'a>(
        &'a self,
        env: Env<'a>,
        _id: &'a str,
        state: &'a Value,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let Ok(state) = read_state::<MacvlanState>(state) else {
                return Ok(None);
            };
            if !state.own_parent {
                return Ok(None);
            }
            let deleted = env
                .kernel
                .delete_link(&state.parent)
                .await
                .map_err(Error::kernel(format!("failed to delete {}", state.parent)))?;
            Ok(deleted.then(|| format!("isolated parent {}", state.parent)))
        })
    }

    fn ensure<'a>(&'a self, env: Env<'a>, networks: &'a [&'a Network]) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let mut repairs = Vec::new();
            for n in networks {
                let state: MacvlanState = state_of(n)?;
                let found = env
                    .kernel
                    .link(&state.parent)
                    .await
                    .map_err(Error::kernel("checking macvlan parents"))?;
                if found.is_some() {
                    continue;
                }
                if !state.own_parent {
                    // Not ours to make, so nothing to repair: warned, and its endpoints are
                    // dropped as they fail to re-attach.
                    tracing::warn!(network = %n.name, parent = %state.parent, "macvlan parent is missing");
                    continue;
                }
                match make_own_parent(env, &n.id, &state.parent).await {
                    Ok(()) => repairs.push(format!(
                        "isolated parent {} of network {} re-created",
                        state.parent, n.name
                    )),
                    Err(e) => repairs.push(format!(
                        "isolated parent {} of network {} could not be made: {e}",
                        state.parent, n.name
                    )),
                }
            }
            Ok(repairs)
        })
    }

    fn claims(&self, link: &LinkInfo) -> bool {
        link.kind.as_deref() == Some("veth")
    }

    fn check_connect(&self, n: &Network, endpoints: usize) -> Result<()> {
        let state: MacvlanState = state_of(n)?;
        if state.mode == "passthru" && endpoints > 0 {
            return Err(Error::Forbidden(format!(
                "network {} is in macvlan mode passthru, which allows one endpoint, and it has one",
                n.name
            )));
        }
        Ok(())
    }

    fn fixed_mac<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, Option<[u8; 6]>> {
        Box::pin(async move {
            let state: MacvlanState = state_of(n)?;
            if state.mode != "passthru" {
                return Ok(None);
            }
            env.kernel
                .link_mac(&state.parent)
                .await
                .map_err(Error::kernel(format!(
                    "cannot read the MAC of {}",
                    state.parent
                )))
        })
    }

    fn lives_inside(&self) -> bool {
        true
    }

    fn host_ifname(&self, endpoint_id: &str) -> String {
        // No host end: a token with ':' can never be a link's name.
        format!("macvlan:{endpoint_id}")
    }

    fn attach<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        a: Attach<'a>,
        ready: crate::kernel::Ready,
    ) -> Fut<'a, String> {
        Box::pin(async move {
            let state: MacvlanState = state_of(n)?;
            let parent = &state.parent;
            let parent_index = network_link(env, n, "parent", parent).await?;
            let attachment = MacvlanAttachment {
                parent_index,
                mode: mode_of(&state.mode).unwrap_or(MacvlanMode::Bridge),
                container_name: a.ifname,
                mtu: None,
                mac: a.mac,
                alias: mark(&a.endpoint.id),
                addresses: a.addresses,
                sysctls: a.sysctls,
                gateways: a.gateways,
            };
            timed(
                "netlink",
                "attach_macvlan",
                env.kernel.attach_macvlan(a.ns, &attachment, ready),
            )
            .await
            .map(|(ifname, _)| ifname)
            .map_err(Error::kernel(format!(
                "cannot attach a macvlan of {parent}"
            )))
        })
    }

    fn detach<'a>(
        &'a self,
        env: Env<'a>,
        endpoint_id: &'a str,
        _host_ifname: &'a str,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            // A vanished namespace took the macvlan with it.
            let Some(ns) = ns else {
                return Ok(false);
            };
            timed(
                "netlink",
                "detach_macvlan",
                env.kernel.delete_marked_in(ns, &mark(endpoint_id)),
            )
            .await
            .map_err(Error::kernel(format!(
                "cannot delete the macvlan of endpoint {endpoint_id}"
            )))
        })
    }

    fn cut_off<'a>(
        &'a self,
        env: Env<'a>,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            // A vanished namespace took the macvlan with it.
            let Some(ns) = ns else {
                return Ok(false);
            };
            // Passthru owns its parent: the next connect needs the old macvlan gone.
            if let Some(n) = env.store.network(&e.network_id).await?
                && state_of::<MacvlanState>(&n)?.mode == "passthru"
            {
                return self.detach(env, &e.id, &e.host_ifname, Some(ns)).await;
            }
            timed(
                "netlink",
                "cut_off_macvlan",
                env.kernel.doom_marked_in(ns, &mark(&e.id)),
            )
            .await
            .map_err(Error::kernel(format!(
                "cannot cut off the macvlan of endpoint {}",
                e.id
            )))
        })
    }

    fn intact<'a>(
        &'a self,
        env: Env<'a>,
        _n: &'a Network,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
        _links: &'a [LinkInfo],
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let Some(ns) = ns else {
                return Ok(false);
            };
            let inside = env
                .kernel
                .links_in(ns)
                .await
                .map_err(Error::kernel("listing a namespace's links"))?;
            let alias = mark(&e.id);
            Ok(inside.iter().any(|l| {
                l.alias.as_deref() == Some(alias.as_str())
                    && l.kind.as_deref() == Some("macvlan")
                    && l.name == e.ifname
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_like_docker() {
        assert_eq!(
            check_options(&opts(&[])).unwrap(),
            (None, "bridge".to_string())
        );
        assert_eq!(
            check_options(&opts(&[(OPT_PARENT, "eth0"), (OPT_MODE, "private")])).unwrap(),
            (Some("eth0".to_string()), "private".to_string())
        );
        assert_eq!(
            check_options(&opts(&[(OPT_MODE, "l3")]))
                .err()
                .unwrap()
                .to_string(),
            "requested macvlan mode 'l3' is not valid, 'bridge' mode is the macvlan driver default"
        );
        assert_eq!(
            check_options(&opts(&[(OPT_PARENT, "lo")]))
                .err()
                .unwrap()
                .to_string(),
            "loopback interface is not a valid macvlan parent link"
        );
        assert!(check_options(&opts(&[(OPT_PARENT, "a/b")])).is_err());
    }
}
