//! The routes under the dashboard, usable without it: the whole picture in one request, and
//! "can A reach B?" answered from the model and then by a probe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{DockerJson, QueryMap};
use super::wire::ErrorResponse;
use crate::model::{Container, Endpoint, Network};
use crate::service::{Daemon, DiagnoseRequest, Diagnosis, MAX_ECHOES, MAX_PROBE_TIME};

#[derive(Serialize, ToSchema)]
pub struct TopologySubnet {
    #[serde(rename = "Subnet")]
    pub subnet: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopologyNetwork {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    /// The kernel bridge, for networks that have one.
    #[serde(rename = "Bridge")]
    pub bridge: Option<String>,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// `false` when `com.docker.network.bridge.enable_icc=false`.
    #[serde(rename = "ICC")]
    pub icc: bool,
    /// One of the predefined `bridge`, `host`, `none`.
    #[serde(rename = "Builtin")]
    pub builtin: bool,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Subnets")]
    pub subnets: Vec<TopologySubnet>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct TopologyContainer {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    /// `sandbox`, `netns` or `pid`: how netbridge reached the namespace.
    #[serde(rename = "Kind")]
    pub kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopologyEndpoint {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "NetworkId")]
    pub network_id: String,
    #[serde(rename = "ContainerId")]
    pub container_id: String,
    /// The container's end of the veth pair (`eth0`, …).
    #[serde(rename = "Interface")]
    pub interface: String,
    /// The host's end, plugged into the bridge.
    #[serde(rename = "HostInterface")]
    pub host_interface: String,
    #[serde(rename = "MacAddress")]
    pub mac: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4: Option<String>,
    #[serde(rename = "IPv6Address")]
    pub ipv6: Option<String>,
    #[serde(rename = "Aliases")]
    pub aliases: Vec<String>,
}

/// Everything a picture of the host needs, in one answer.
#[derive(Serialize, ToSchema)]
pub struct TopologyResponse {
    #[serde(rename = "Networks")]
    pub networks: Vec<TopologyNetwork>,
    #[serde(rename = "Containers")]
    pub containers: Vec<TopologyContainer>,
    #[serde(rename = "Endpoints")]
    pub endpoints: Vec<TopologyEndpoint>,
}

fn network_out(n: &Network) -> TopologyNetwork {
    TopologyNetwork {
        id: n.id.clone(),
        name: n.name.clone(),
        driver: n.driver.clone(),
        scope: n.scope.clone(),
        bridge: crate::service::bridge_of(n),
        internal: n.internal,
        enable_ipv6: n.enable_ipv6,
        icc: n.bool_option("com.docker.network.bridge.enable_icc", true),
        builtin: n.builtin,
        created: crate::model::format_nanos(n.created_nanos),
        subnets: n
            .ipam
            .iter()
            .map(|c| TopologySubnet {
                subnet: c.subnet.to_string(),
                gateway: c.gateway.to_string(),
            })
            .collect(),
        labels: n.labels.clone(),
    }
}

fn container_out(c: &Container) -> TopologyContainer {
    TopologyContainer {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind.as_str().to_string(),
    }
}

fn endpoint_out(e: &Endpoint) -> TopologyEndpoint {
    TopologyEndpoint {
        id: e.id.clone(),
        network_id: e.network_id.clone(),
        container_id: e.container_id.clone(),
        interface: e.ifname.clone(),
        host_interface: e.host_ifname.clone(),
        mac: e.mac.clone(),
        ipv4: e.ipv4.map(|a| a.to_string()),
        ipv6: e.ipv6.map(|a| a.to_string()),
        aliases: e.aliases.clone(),
    }
}

/// Every network, container and endpoint in one request: what the dashboard draws. With
/// `network`, only that network, its endpoints and their containers.
#[utoipa::path(get, path = "/netbridge/topology", tag = "netbridge", operation_id = "Topology",
    params(("network" = Option<String>, Query, description = "Only this network (ID, name or unique ID prefix)")),
    responses((status = 200, description = "The whole picture", body = TopologyResponse),
        (status = 404, description = "No such network", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn topology(
    State(d): State<Arc<Daemon>>,
    q: QueryMap,
) -> Result<Json<TopologyResponse>, ApiError> {
    let t = match q.get("network").filter(|n| !n.is_empty()) {
        Some(network) => d.topology_of(network).await?,
        None => d.topology().await?,
    };
    Ok(Json(TopologyResponse {
        networks: t.networks.iter().map(|n| network_out(n)).collect(),
        containers: t.containers.iter().map(container_out).collect(),
        endpoints: t.endpoints.iter().map(endpoint_out).collect(),
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseBody {
    /// The container traffic starts from: a name, ID, unique ID prefix or PID netbridge knows.
    #[serde(rename = "Source", default)]
    pub source: String,
    /// A container reference, or an IPv4/IPv6 address.
    #[serde(rename = "Target", default)]
    pub target: String,
    /// ICMP echoes to send from inside the source's namespace (0 = explain only; at most 10;
    /// default 3).
    #[serde(rename = "Count", default)]
    pub count: Option<u16>,
    /// How long the probe may take, in milliseconds (at most 5000; default 2000).
    #[serde(rename = "TimeoutMs", default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct DiagnoseContainer {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct DiagnoseReason {
    /// `shared-network`, `gateway`, `icc-disabled`, `isolated`, `internal`, `no-route`,
    /// `outside`, `unassigned` or `target-unattached`.
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Network")]
    pub network: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProbeResult {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Sent")]
    pub sent: u16,
    #[serde(rename = "Received")]
    pub received: u16,
    /// Percent of echoes unanswered.
    #[serde(rename = "Loss")]
    pub loss: f64,
    /// Round-trip time of each answered echo, in milliseconds.
    #[serde(rename = "RttMs")]
    pub rtt_ms: Vec<f64>,
    /// Why echoes could not be sent at all (e.g. no route), if so.
    #[serde(rename = "Error")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DiagnoseResponse {
    #[serde(rename = "Source")]
    pub source: DiagnoseContainer,
    #[serde(rename = "Target")]
    pub target: Option<DiagnoseContainer>,
    /// The address the path leads to (and the probe went to).
    #[serde(rename = "Address")]
    pub address: Option<String>,
    /// `reachable`, `blocked`, or `unknown` (it leaves netbridge's networks).
    #[serde(rename = "Verdict")]
    pub verdict: String,
    /// Networks both are on.
    #[serde(rename = "SharedNetworks")]
    pub shared: Vec<String>,
    #[serde(rename = "Reasons")]
    pub reasons: Vec<DiagnoseReason>,
    #[serde(rename = "Probe")]
    pub probe: Option<ProbeResult>,
}

fn diagnosis_out(d: Diagnosis) -> DiagnoseResponse {
    let short = |c: &Container| DiagnoseContainer {
        id: c.id.clone(),
        name: c.name.clone(),
    };
    let probe = match (d.probe, d.address) {
        (Some(p), Some(address)) => Some(ProbeResult {
            address: address.to_string(),
            sent: p.sent,
            received: p.received,
            loss: if p.sent == 0 {
                100.0
            } else {
                f64::from(p.sent - p.received.min(p.sent)) * 100.0 / f64::from(p.sent)
            },
            rtt_ms: p.rtts.iter().map(|r| r.as_secs_f64() * 1000.0).collect(),
            error: p.error,
        }),
        _ => None,
    };
    DiagnoseResponse {
        source: short(&d.source),
        target: d.target_container.as_ref().map(short),
        address: d.address.map(|a| a.to_string()),
        verdict: d.verdict.as_str().to_string(),
        shared: d.shared,
        reasons: d
            .reasons
            .into_iter()
            .map(|r| DiagnoseReason {
                code: r.code.to_string(),
                network: r.network,
                message: r.message,
            })
            .collect(),
        probe,
    }
}

/// Can `Source` reach `Target`, and why (not)? Explained from netbridge's networks and firewall
/// policy (shared networks, ICC, isolation between networks, internal networks, routes), then
/// checked by a bounded ICMP echo (at most 10 echoes, at most 5 s) that the daemon sends from
/// inside the source container's namespace.
#[utoipa::path(post, path = "/netbridge/diagnose", tag = "netbridge", operation_id = "Diagnose",
    request_body = DiagnoseBody,
    responses((status = 200, description = "The explanation and the probe's result", body = DiagnoseResponse),
        (status = 400, description = "Bad parameter", body = ErrorResponse),
        (status = 404, description = "No such container", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn diagnose(
    State(d): State<Arc<Daemon>>,
    DockerJson(body): DockerJson<DiagnoseBody>,
) -> Result<Json<DiagnoseResponse>, ApiError> {
    if body.source.is_empty() || body.target.is_empty() {
        return Err(ApiError::bad_request("Source and Target are required"));
    }
    let count = body.count.unwrap_or(3);
    if count > MAX_ECHOES {
        return Err(ApiError::bad_request(format!(
            "Count must be at most {MAX_ECHOES}"
        )));
    }
    let timeout = Duration::from_millis(body.timeout_ms.unwrap_or(2000));
    if timeout > MAX_PROBE_TIME || timeout.is_zero() {
        return Err(ApiError::bad_request(format!(
            "TimeoutMs must be between 1 and {}",
            MAX_PROBE_TIME.as_millis()
        )));
    }
    let req = DiagnoseRequest {
        source: body.source,
        target: body.target,
        count,
        timeout,
    };
    Ok(Json(diagnosis_out(d.diagnose(req).await?)))
}
