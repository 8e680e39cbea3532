//! The bridge driver (Docker's default): a kernel bridge per network holding the gateway
//! addresses, a veth pair per endpoint with its host end on the bridge, and the firewall's
//! isolation, masquerade and ICC rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Attach, Draft, Driver, Env, Fut, Plan, mark, network_link, read_state, state_of};
use crate::kernel::{Attachment, BridgeSpec, Ensured, KernelError, LinkInfo, Netns, NetworkRules};
use crate::metrics::timed;
use crate::model::{Endpoint, Network, parse_go_bool, valid_ifname};
use crate::service::networks::CreateNetwork;
use crate::service::{Error, Result};

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
/// Bridge driver options whose values Docker parses as booleans at create.
const BOOL_OPTIONS: [&str; 4] = [
    OPT_ICC,
    OPT_MASQUERADE,
    "com.docker.network.bridge.inhibit_ipv4",
    "com.docker.network.bridge.default_bridge",
];

/// The kernel's "exchange full": a bridge takes at most 1024 ports.
const EXFULL: i32 = 54;

pub(in crate::service) struct Bridge;

/// What the bridge driver stores with a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::service) struct BridgeState {
    /// The kernel bridge.
    pub bridge: String,
    /// It existed before the network and is not ours to delete.
    #[serde(default)]
    pub adopted: bool,
    /// `None` leaves the kernel default (1500).
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// The options as checked, before the bridge's name is settled.
#[derive(Serialize, Deserialize)]
struct Checked {
    name: Option<String>,
    mtu: Option<u32>,
}

impl BridgeState {
    /// The bridge as the kernel layer wants it: marked, with the network's gateways.
    pub(in crate::service) fn spec(&self, n: &Network) -> BridgeSpec {
        BridgeSpec {
            name: self.bridge.clone(),
            mtu: self.mtu,
            alias: mark(&n.id),
            addresses: n
                .ipam
                .iter()
                .map(|c| (c.gateway, c.subnet.prefix))
                .collect(),
        }
    }
}

impl Driver for Bridge {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn needs(&self) -> &'static [&'static str] {
        &["bridge", "veth"]
    }

    fn check(&self, req: &CreateNetwork) -> Result<Value> {
        let (name, mtu) = parse_options(&req.options)?;
        Ok(serde_json::to_value(Checked { name, mtu }).unwrap_or(Value::Null))
    }

    fn plan<'a>(&'a self, env: Env<'a>, draft: Draft<'a>) -> Fut<'a, Plan> {
        Box::pin(async move {
            let checked: Checked = read_state(&draft.checked)
                .map_err(|e| Error::System(format!("bridge options: {e}")))?;
            let id = draft.id;
            let bridge = checked.name.unwrap_or_else(|| format!("br-{}", &id[..12]));
            // One indexed lookup and one link query: create stays flat as networks pile up.
            if let Some(other) = env.store.network_id_with_link(&bridge).await? {
                return Err(Error::Forbidden(format!(
                    "cannot create network {id} ({bridge}): conflicts with network {other} ({bridge}): networks have same bridge name"
                )));
            }
            let existing = env
                .kernel
                .link(&bridge)
                .await
                .map_err(Error::kernel(format!("looking up {bridge}")))?;
            if let Some(link) = &existing
                && link.kind.as_deref() != Some("bridge")
            {
                return Err(Error::Forbidden(format!(
                    "cannot create network {id} ({bridge}): a {} device of that name exists and is not a bridge",
                    link.kind.as_deref().unwrap_or("network")
                )));
            }
            let state = BridgeState {
                bridge: bridge.clone(),
                adopted: existing.is_some(),
                mtu: checked.mtu,
            };
            Ok(Plan {
                link: Some(bridge),
                state: serde_json::to_value(state).unwrap_or(Value::Null),
            })
        })
    }

    fn create<'a>(&'a self, env: Env<'a>, n: &'a Network) -> Fut<'a, ()> {
        Box::pin(async move {
            let state: BridgeState = state_of(n)?;
            let spec = state.spec(n);
            let made = if state.adopted {
                timed("netlink", "ensure_bridge", env.kernel.ensure_bridge(&spec)).await
            } else {
                timed("netlink", "create_bridge", env.kernel.create_bridge(&spec)).await
            };
            made.map(|_| ()).map_err(Error::kernel(format!(
                "failed to create bridge {}",
                spec.name
            )))
        })
    }

    fn remove<'a>(
        &'a self,
        env: Env<'a>,
        _id: &'a str,
        state: &'a Value,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let Ok(state) = read_state::<BridgeState>(state) else {
                return Ok(None);
            };
            if state.adopted || state.bridge.is_empty() {
                return Ok(None);
            }
            let deleted = timed(
                "netlink",
                "delete_bridge",
                env.kernel.delete_link(&state.bridge),
            )
            .await
            .map_err(Error::kernel(format!(
                "failed to delete bridge {}",
                state.bridge
            )))?;
            Ok(deleted.then(|| format!("bridge {}", state.bridge)))
        })
    }

    fn doom<'a>(&'a self, env: Env<'a>, _id: &'a str, state: &'a Value) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let Ok(state) = read_state::<BridgeState>(state) else {
                return Ok(None);
            };
            if state.adopted || state.bridge.is_empty() {
                return Ok(None);
            }
            let doomed = timed(
                "netlink",
                "doom_bridge",
                env.kernel.doom_bridge(&state.bridge),
            )
            .await
            .map_err(Error::kernel(format!(
                "failed to cut off bridge {}",
                state.bridge
            )))?;
            Ok(doomed.then(|| format!("bridge {}", state.bridge)))
        })
    }

    fn ensure<'a>(&'a self, env: Env<'a>, networks: &'a [&'a Network]) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            // Every bridge checked against one dump of links and addresses.
            let mut owners = Vec::new();
            let mut specs = Vec::new();
            for n in networks {
                let state: BridgeState = state_of(n)?;
                specs.push(state.spec(n));
                owners.push((n, state.bridge));
            }
            let ensured = env
                .kernel
                .ensure_bridges(specs)
                .await
                .map_err(Error::kernel("checking bridges"))?;
            let mut repairs = Vec::new();
            for ((n, bridge), result) in owners.iter().zip(ensured) {
                match result {
                    Ok(Ensured::Created) => {
                        repairs.push(format!("bridge {bridge} of network {} re-created", n.name))
                    }
                    Ok(Ensured::Existed) => {}
                    Err(e) => repairs.push(format!(
                        "bridge {bridge} of network {} could not be made: {e}",
                        n.name
                    )),
                }
            }
            Ok(repairs)
        })
    }

    fn claims(&self, link: &LinkInfo) -> bool {
        matches!(link.kind.as_deref(), Some("bridge" | "veth"))
    }

    fn host_ifname(&self, _endpoint_id: &str) -> String {
        // Random rather than derived from the ID, so a clash is retried with a new name.
        format!("veth{}", &crate::model::new_id()[..7])
    }

    fn attach<'a>(
        &'a self,
        env: Env<'a>,
        n: &'a Network,
        a: Attach<'a>,
        ready: crate::kernel::Ready,
    ) -> Fut<'a, String> {
        Box::pin(async move {
            let state: BridgeState = state_of(n)?;
            let bridge = &state.bridge;
            let bridge_index = network_link(env, n, "bridge", bridge).await?;
            let attachment = Attachment {
                host_name: a.endpoint.host_ifname.clone(),
                container_name: a.ifname,
                bridge_index,
                mtu: state.mtu,
                mac: a.mac,
                alias: mark(&a.endpoint.id),
                addresses: a.addresses,
                sysctls: a.sysctls,
                gateway_v4: a.gateways.v4,
                gateway_v6: a.gateways.v6,
            };
            let attached = timed(
                "netlink",
                "attach",
                env.kernel.attach_when(a.ns, &attachment, ready),
            )
            .await;
            attached
                .map(|(ifname, _)| ifname)
                .map_err(|e| attach_error(bridge, e))
        })
    }

    fn detach<'a>(
        &'a self,
        env: Env<'a>,
        _endpoint_id: &'a str,
        host_ifname: &'a str,
        _ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            timed("netlink", "detach", env.kernel.detach(host_ifname))
                .await
                .map_err(Error::kernel(format!("cannot delete {host_ifname}")))
        })
    }

    fn cut_off<'a>(
        &'a self,
        env: Env<'a>,
        e: &'a Endpoint,
        ns: Option<&'a Netns>,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let cut = env.kernel.cut_off(&e.host_ifname, ns, &e.ifname);
            timed("netlink", "cut_off", cut)
                .await
                .map_err(Error::kernel(format!("cannot cut off {}", e.host_ifname)))
        })
    }

    fn intact<'a>(
        &'a self,
        _env: Env<'a>,
        n: &'a Network,
        e: &'a Endpoint,
        _ns: Option<&'a Netns>,
        links: &'a [LinkInfo],
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let state: BridgeState = state_of(n)?;
            let bridge = links.iter().find(|l| l.name == state.bridge);
            let host = links.iter().find(|l| l.name == e.host_ifname);
            Ok(!e.ifname.is_empty()
                && matches!((host, bridge), (Some(h), Some(b))
                    if h.kind.as_deref() == Some("veth") && h.master == Some(b.index)))
        })
    }

    fn bridge(&self, n: &Network) -> Option<String> {
        state_of::<BridgeState>(n).ok().map(|s| s.bridge)
    }

    fn rules(&self, n: &Network) -> Option<NetworkRules> {
        let state: BridgeState = state_of(n).ok()?;
        Some(NetworkRules {
            bridge: state.bridge,
            subnets: n
                .ipam
                .iter()
                .map(|c| (c.subnet.network(), c.subnet.prefix))
                .collect(),
            internal: n.internal,
            icc: n.bool_option(OPT_ICC, true),
            masquerade: n.bool_option(OPT_MASQUERADE, true),
        })
    }
}

fn attach_error(bridge: &str, e: KernelError) -> Error {
    if e.errno() == Some(EXFULL) {
        return Error::Forbidden(format!(
            "bridge {bridge} is full: the kernel allows at most 1024 ports on one bridge (exchange full)"
        ));
    }
    super::attach_error(format!("cannot attach to {bridge}"), e)
}

/// Docker's checks of the bridge options: the booleans, the MTU, the bridge's name.
fn parse_options(options: &BTreeMap<String, String>) -> Result<(Option<String>, Option<u32>)> {
    let parse_err = |key: &str, value: &str, reason: String| {
        Error::InvalidParameter(format!("failed to parse {key} value: {value} ({reason})"))
    };
    for key in BOOL_OPTIONS {
        if let Some(v) = options.get(key)
            && parse_go_bool(v).is_none()
        {
            return Err(parse_err(
                key,
                v,
                format!("strconv.ParseBool: parsing \"{v}\": invalid syntax"),
            ));
        }
    }
    let mtu = parse_mtu(options)?;
    let name = match options.get(OPT_BRIDGE_NAME) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            if !valid_ifname(v) {
                return Err(parse_err(
                    OPT_BRIDGE_NAME,
                    v,
                    "an interface name is 1 to 15 characters without '/', ':' or white space"
                        .to_string(),
                ));
            }
            Some(v.clone())
        }
    };
    Ok((name, mtu))
}

/// `com.docker.network.driver.mtu`, as Docker parses it (0 = the default), within what the
/// kernel accepts.
pub(super) fn parse_mtu(options: &BTreeMap<String, String>) -> Result<Option<u32>> {
    let Some(v) = options.get(OPT_MTU) else {
        return Ok(None);
    };
    let n: i64 = v.trim().parse().map_err(|_| {
        Error::InvalidParameter(format!(
            "failed to parse {OPT_MTU} value: {v} (strconv.Atoi: parsing \"{v}\": invalid syntax)"
        ))
    })?;
    if n < 0 {
        return Err(Error::InvalidParameter(format!("invalid MTU number: {n}")));
    }
    match n {
        0 => Ok(None),
        68..=65535 => Ok(Some(n as u32)),
        _ => Err(Error::InvalidParameter(format!(
            "invalid MTU number: {n} (the kernel accepts 68 to 65535)"
        ))),
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
    fn bridge_options_are_checked_like_docker() {
        let e = parse_options(&opts(&[(OPT_MTU, "abc")])).err().unwrap();
        assert_eq!(
            e.to_string(),
            "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)"
        );
        let e = parse_options(&opts(&[(OPT_MTU, "-5")])).err().unwrap();
        assert_eq!(e.to_string(), "invalid MTU number: -5");
        let e = parse_options(&opts(&[(OPT_ICC, "maybe")])).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("failed to parse com.docker.network.bridge.enable_icc value: maybe")
        );
        let ok = parse_options(&opts(&[(OPT_MTU, "1400"), (OPT_BRIDGE_NAME, "nbtest0")])).unwrap();
        assert_eq!(ok, (Some("nbtest0".to_string()), Some(1400)));
        assert!(parse_options(&opts(&[(OPT_BRIDGE_NAME, "a/b")])).is_err());
        assert!(parse_options(&opts(&[(OPT_BRIDGE_NAME, "sixteen-chars-xx")])).is_err());
    }

    #[test]
    fn state_of_older_rows_reads() {
        let state: BridgeState =
            read_state(&serde_json::json!({"bridge": "br-1", "adopted": true, "mtu": null}))
                .unwrap();
        assert_eq!(
            state,
            BridgeState {
                bridge: "br-1".into(),
                adopted: true,
                mtu: None
            }
        );
    }
}
