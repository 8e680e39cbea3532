//! The overlay driver: a global network's presence on this host. A bridge as the bridge driver
//! makes it (the gateway on it, containers on veth pairs, the same firewall rules), plus a
//! VXLAN port that carries the network to the other hosts. Its definition and remote
//! endpoints come from the cluster (`service::cluster`); this file only makes and checks the
//! kernel objects.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bridge::Bridge;
use super::{Attach, Draft, Driver, Env, Fut, Plan, mark, read_state, state_of};
use crate::kernel::{LinkInfo, Netns, NetworkRules, VxlanSpec};
use crate::metrics::timed;
use crate::model::{Endpoint, Network};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

pub(in crate::service) struct Overlay;

/// What the overlay driver stores with a network. `bridge` and `mtu` read as a
/// [`super::BridgeState`], so the bridge driver's endpoint code serves overlay endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::service) struct OverlayState {
    pub bridge: String,
    pub vxlan: String,
    pub vni: u32,
    /// This host's underlay address.
    pub local: Ipv4Addr,
    pub mtu: Option<u32>,
}

impl OverlayState {
    pub(in crate::service) fn new(id: &str, vni: u32, local: Ipv4Addr, mtu: u32) -> OverlayState {
        OverlayState {
            bridge: format!("ov-{}", &id[..12]),
            vxlan: format!("vx-{}", &id[..12]),
            vni,
            local,
            mtu: Some(mtu),
        }
    }

    fn vxlan_spec(&self, n_id: &str) -> VxlanSpec {
        VxlanSpec {
            name: self.vxlan.clone(),
            vni: self.vni,
            local: self.local,
            mtu: self.mtu.unwrap_or(1450),
            bridge: self.bridge.clone(),
            alias: mark(n_id),
        }
    }
}

impl Overlay {
    async fn make_vxlan(&self, env: Env<'_>, n_id: &str, state: &OverlayState) -> Result<bool> {
        timed(
            "netlink",
            "ensure_vxlan",
            env.kernel.ensure_vxlan(&state.vxlan_spec(n_id)),
        )
        .await
        .map_err(Error::kernel(format!(
            "failed to create VXLAN link {}",
            state.vxlan
        )))
    }
}

impl Driver for Overlay {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn needs(&self) -> &'static [&'static str] {
        &["bridge", "veth", "vxlan"]
    }

    fn check(&self, _req: &CreateNetwork) -> Result<Value> {
        // Creates go through the cluster (`Daemon::create_global`), never the local path.
        Err(Error::InvalidParameter(
            "the overlay driver needs a cluster store: start netbridge with --cluster-store and --advertise-addr"
                .to_string(),
        ))
    }

    fn plan<'a>(&'a self, _env: Env<'a>, _draft: Draft<'a>) -> Fut<'a, Plan> {
        Box::pin(async {
            Err(Error::System(
                "overlay networks are planned by the cluster".to_string(),
            ))
        })
    }

    fn create<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, ()> {
        Box::pin(async move {
            let state: OverlayState = state_of(n)?;
            Bridge.create(env, n).await?;
            if let Err(e) = self.make_vxlan(env, &n.id, &state).await {
                let _ = env.kernel.delete_link(&state.bridge).await;
                return Err(e);
            }
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        env: Env<'a>,
        id: &'a str,
        state: &'a Value,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let Ok(s) = read_state::<OverlayState>(state) else {
                return Ok(None);
            };
            env.kernel
                .delete_link(&s.vxlan)
                .await
                .map_err(Error::kernel(format!("failed to delete {}", s.vxlan)))?;
            Bridge.remove(env, id, state).await
        })
    }

    fn doom<'a>(&'a self, env: Env<'a>, id: &'a str, state: &'a Value) -> Fut<'a, Option<String>> {
        self.remove(env, id, state)
    }

    fn ensure<'a>(&'a self, env: Env<'a>, networks: &'a [&'a Network]) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let mut repairs = Bridge.ensure(env, networks).await?;
            for n in networks {
                let state: OverlayState = state_of(n)?;
                match self.make_vxlan(env, &n.id, &state).await {
                    Ok(true) => repairs.push(format!(
                        "VXLAN link {} of network {} re-created",
                        state.vxlan, n.name
                    )),
                    Ok(false) => {}
                    Err(e) => repairs.push(format!(
                        "VXLAN link {} of network {} could not be made: {e}",
                        state.vxlan, n.name
                    )),
                }
            }
            Ok(repairs)
        })
    }

    fn claims(&self, link: &LinkInfo) -> bool {
        matches!(link.kind.as_deref(), Some("bridge" | "veth" | "vxlan"))
    }

    fn host_ifname(&self, endpoint_id: &str) -> String {
        Bridge.host_ifname(endpoint_id)
    }

    fn attach<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        a: Attach<'a>,
        ready: crate::kernel::Ready,
    ) -> Fut<'a, String> {
        Bridge.attach(env, n, a, ready)
    }

    fn detach<'a>(
        &'a self,
        env: Env<'a>,
        endpoint_id: &'a str,
        host_ifname: &'a str,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Bridge.detach(env, endpoint_id, host_ifname, ns)
    }

    fn cut_off<'a>(
        &'a self,
        env: Env<'a>,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Bridge.cut_off(env, e, ns)
    }

    fn intact<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
        links: &'a [LinkInfo],
    ) -> Fut<'a, bool> {
        Bridge.intact(env, n, e, ns, links)
    }

    fn bridge(&self, n: &Network) -> Option<String> {
        Bridge.bridge(n)
    }

    fn rules(&self, n: &Network) -> Option<NetworkRules> {
        Bridge.rules(n)
    }
}
