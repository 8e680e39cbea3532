//! Docker's wire shapes (Engine API 1.55), field for field, and their conversion from domain
//! records. Names follow `networks.swagger.yaml`; see it for what each field means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{self, Container, ContainerKind, Endpoint, Network, PlannedEndpoint, RunState};
use crate::service::{ContainerView, NetworkView, SubnetStatus};

/// `{"message": …}`: every error body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// The error message.
    pub message: String,
}

#[derive(Serialize, ToSchema, Default)]
pub struct ConfigReference {
    #[serde(rename = "Network")]
    pub network: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = IPAM)]
pub struct Ipam {
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Exactly as given at create: `null` when none were sent (predefined networks too).
    #[serde(rename = "Options")]
    #[schema(required = true)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Config")]
    pub config: Vec<IpamConfig>,
}

#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[schema(as = IPAMConfig)]
pub struct IpamConfig {
    #[serde(rename = "Subnet", skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(rename = "Gateway", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(rename = "AuxiliaryAddresses", skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// The fields every network shape shares (Docker's `Network` definition).
#[derive(Serialize, ToSchema)]
pub struct NetworkSummary {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

/// `GET /networks/{id}`: the summary plus the attached containers and, from API 1.52, status.
#[derive(Serialize, ToSchema)]
pub struct NetworkInspect {
    #[serde(flatten)]
    pub summary: NetworkSummary,
    /// Endpoints keyed by container ID.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, EndpointResource>,
    #[serde(rename = "Status", skip_serializing_if = "Option::is_none")]
    pub status: Option<NetworkStatus>,
    /// Global networks: the hosts with endpoints on it (this one first), as Docker's overlay
    /// shows them.
    #[serde(rename = "Peers", skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<PeerInfo>>,
}

#[derive(Serialize, ToSchema)]
pub struct PeerInfo {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "IP")]
    pub ip: String,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointResource {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Address with the subnet's prefix length, e.g. `172.30.0.2/24`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
    /// Global networks only (a netbridge addition): the underlay address of the endpoint's
    /// host. Endpoints on other hosts are keyed `ep-<endpoint ID>`, as Docker's verbose view.
    #[serde(rename = "Host", skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NetworkStatus {
    #[serde(rename = "IPAM")]
    pub ipam: IpamStatus,
}

#[derive(Serialize, ToSchema)]
#[schema(as = IPAMStatus)]
pub struct IpamStatus {
    #[serde(rename = "Subnets")]
    pub subnets: BTreeMap<String, SubnetStatusWire>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SubnetStatus)]
pub struct SubnetStatusWire {
    #[serde(rename = "IPsInUse")]
    pub ips_in_use: u64,
    #[serde(rename = "DynamicIPsAvailable")]
    pub dynamic_ips_available: u64,
}

/// `POST /networks/create` body. Every field may be absent or null; unknown fields are ignored.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[schema(example = json!({
    "Name": "mynet", "Driver": "bridge",
    "IPAM": {"Driver": "default", "Config": [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.254"}]},
    "Labels": {"team": "a"}
}))]
pub struct NetworkCreateRequest {
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "Driver")]
    pub driver: Option<String>,
    #[serde(rename = "Scope")]
    pub scope: Option<String>,
    #[serde(rename = "Internal")]
    pub internal: Option<bool>,
    #[serde(rename = "Attachable")]
    pub attachable: Option<bool>,
    #[serde(rename = "Ingress")]
    pub ingress: Option<bool>,
    #[serde(rename = "ConfigOnly")]
    pub config_only: Option<bool>,
    #[serde(rename = "ConfigFrom")]
    pub config_from: Option<ConfigReferenceRequest>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Ignored, as by Docker since API 1.44: names are always unique.
    #[serde(rename = "CheckDuplicate")]
    pub check_duplicate: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct ConfigReferenceRequest {
    #[serde(rename = "Network")]
    pub network: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct IpamRequest {
    #[serde(rename = "Driver")]
    pub driver: Option<String>,
    #[serde(rename = "Config")]
    pub config: Option<Vec<IpamConfig>>,
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct NetworkCreateResponse {
    /// The ID of the created network.
    #[serde(rename = "Id")]
    pub id: String,
    /// Always empty: netbridge has nothing to warn about at create.
    #[serde(rename = "Warning")]
    pub warning: String,
}

#[derive(Serialize, ToSchema)]
pub struct NetworkPruneResponse {
    /// Names of the networks removed; `null` when none.
    #[serde(rename = "NetworksDeleted")]
    pub networks_deleted: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct SystemVersion {
    #[serde(rename = "Platform")]
    pub platform: Platform,
    #[serde(rename = "Components")]
    pub components: Vec<ComponentVersion>,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    #[serde(rename = "GoVersion")]
    pub go_version: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(rename = "Arch")]
    pub arch: String,
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
    #[serde(rename = "BuildTime")]
    pub build_time: String,
}

#[derive(Serialize, ToSchema)]
pub struct Platform {
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ComponentVersion {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Details")]
    pub details: BTreeMap<String, String>,
}

// ---- conversions ----

impl From<&Network> for NetworkSummary {
    fn from(n: &Network) -> NetworkSummary {
        NetworkSummary {
            name: n.name.clone(),
            id: n.id.clone(),
            created: model::format_nanos(n.created_nanos),
            scope: n.scope.clone(),
            driver: n.driver.clone(),
            enable_ipv4: n.enable_ipv4,
            enable_ipv6: n.enable_ipv6,
            ipam: Ipam {
                driver: n.ipam_driver.clone(),
                options: n.ipam_options.clone(),
                config: n
                    .ipam
                    .iter()
                    .map(|c| IpamConfig {
                        subnet: Some(c.subnet.to_string()),
                        ip_range: c.ip_range.map(|r| r.to_string()),
                        gateway: Some(c.gateway.to_string()),
                        auxiliary_addresses: (!c.aux.is_empty()).then(|| {
                            c.aux
                                .iter()
                                .map(|(k, v)| (k.clone(), v.to_string()))
                                .collect()
                        }),
                    })
                    .collect(),
            },
            internal: n.internal,
            attachable: n.attachable,
            ingress: n.ingress,
            config_from: ConfigReference {
                network: n.config_from.clone(),
            },
            config_only: n.config_only,
            options: n.options.clone(),
            labels: n.labels.clone(),
        }
    }
}

impl NetworkInspect {
    /// `with_status`: API 1.52 and later show `Status`.
    pub fn new(view: &NetworkView, with_status: bool) -> NetworkInspect {
        let n = &view.network;
        let here = view.host.map(|h| h.to_string());
        let mut containers: BTreeMap<String, EndpointResource> = view
            .endpoints
            .iter()
            .map(|(e, c)| {
                let mut r = endpoint_resource(n, e, c);
                r.host = here.clone();
                (c.id.clone(), r)
            })
            .collect();
        let prefix = n.ipv4().map_or(32, |c| c.subnet.prefix);
        for r in &view.remote {
            containers.insert(
                format!("ep-{}", r.endpoint),
                EndpointResource {
                    name: r.container.clone(),
                    endpoint_id: r.endpoint.clone(),
                    mac_address: r.mac.clone(),
                    ipv4_address: format!("{}/{prefix}", r.ip),
                    ipv6_address: String::new(),
                    host: Some(r.host.to_string()),
                },
            );
        }
        let peers = here.map(|here| {
            let mut hosts: Vec<String> = view.remote.iter().map(|r| r.host.to_string()).collect();
            hosts.sort();
            hosts.dedup();
            std::iter::once(here)
                .chain(hosts)
                .map(|h| PeerInfo {
                    name: h.clone(),
                    ip: h,
                })
                .collect()
        });
        let status = with_status.then(|| NetworkStatus {
            ipam: IpamStatus {
                subnets: view
                    .status
                    .iter()
                    .map(|s: &SubnetStatus| {
                        (
                            s.subnet.to_string(),
                            SubnetStatusWire {
                                ips_in_use: s.in_use,
                                dynamic_ips_available: s.available,
                            },
                        )
                    })
                    .collect(),
            },
        });
        NetworkInspect {
            summary: NetworkSummary::from(n),
            containers,
            status,
            peers,
        }
    }
}

fn endpoint_resource(n: &Network, e: &Endpoint, c: &Container) -> EndpointResource {
    let with_prefix =
        |ip: Option<std::net::IpAddr>, cfg: Option<&crate::ipam::NetworkConfig>| match (ip, cfg) {
            (Some(ip), Some(cfg)) => format!("{ip}/{}", cfg.subnet.prefix),
            (Some(ip), None) => ip.to_string(),
            _ => String::new(),
        };
    EndpointResource {
        name: c.name.clone(),
        endpoint_id: e.id.clone(),
        mac_address: e.mac.clone(),
        ipv4_address: with_prefix(e.ipv4, n.ipv4()),
        ipv6_address: with_prefix(e.ipv6, n.ipv6()),
        host: None,
    }
}

// ---- connect / disconnect ----

/// `POST /networks/{id}/connect` body.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[schema(example = json!({"Container": "test2", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "172.30.0.20"}}}))]
pub struct NetworkConnectRequest {
    /// The container to connect: its ID, name or unique ID prefix, a named namespace under the
    /// netns directory, or the PID of any process inside it. A container is its network
    /// namespace: every reference to one namespace is the same container. The daemon's own
    /// and the host's (initial) namespace are refused (403), and `--container-refs` may turn
    /// named-namespace or PID references off.
    #[serde(rename = "Container")]
    pub container: Option<String>,
    #[serde(rename = "EndpointConfig")]
    pub endpoint_config: Option<EndpointSettingsRequest>,
}

/// `POST /networks/{id}/disconnect` body.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[schema(example = json!({"Container": "test1", "Force": false}))]
pub struct NetworkDisconnectRequest {
    #[serde(rename = "Container")]
    pub container: Option<String>,
    #[serde(rename = "Force")]
    pub force: Option<bool>,
}

/// The configuration part of Docker's EndpointSettings; operational fields a client sends
/// (NetworkID, IPAddress, …) are ignored.
#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct EndpointSettingsRequest {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// Legacy links, `name` or `name:alias`: checked, recorded and echoed (netbridge has no
    /// DNS or /etc/hosts for them to feed).
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "MacAddress")]
    pub mac_address: Option<String>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    /// Recorded and echoed. `com.docker.network.endpoint.sysctls` (`net.X.Y.IFNAME.Z=V,…`) is
    /// applied to the container's interface, `com.docker.network.endpoint.ifname` names it.
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "GwPriority")]
    pub gw_priority: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[schema(as = EndpointIPAMConfig)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Extra addresses for the container's interface: IPv4 in 169.254.0.0/16 (added as /16),
    /// IPv6 in fe80::/10 (added as /64).
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

/// Docker's EndpointSettings as reported for a container's network.
#[derive(Serialize, ToSchema)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "GwPriority")]
    pub gw_priority: i64,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "DNSNames")]
    pub dns_names: Vec<String>,
}

// ---- containers (sandboxes) ----

#[derive(Serialize, ToSchema)]
pub struct ContainerCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerState {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Running")]
    pub running: bool,
    #[serde(rename = "Paused")]
    pub paused: bool,
    #[serde(rename = "Restarting")]
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(rename = "Dead")]
    pub dead: bool,
    #[serde(rename = "Pid")]
    pub pid: i64,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "StartedAt")]
    pub started_at: String,
    #[serde(rename = "FinishedAt")]
    pub finished_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct HostConfig {
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerNetworkSettings {
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// The namespace file: `/run/netns/<name>` or `/proc/<pid>/ns/net`.
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
    /// Published ports by container port (`80/tcp`): their host sides, or null for a port
    /// only exposed. Empty while the container is not running.
    #[serde(rename = "Ports")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
}

/// One host side of a published port.
#[derive(Serialize, ToSchema)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// A port in the container list: published (with `IP` and `PublicPort`) or only exposed.
#[derive(Serialize, ToSchema)]
pub struct PortSummary {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerConfig {
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

/// `GET /containers/{id}/json`: the subset of Docker's ContainerInspectResponse netbridge has.
#[derive(Serialize, ToSchema)]
pub struct ContainerInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Args")]
    pub args: Vec<String>,
    #[serde(rename = "State")]
    pub state: ContainerState,
    #[serde(rename = "Image")]
    pub image: String,
    /// The name with Docker's leading `/`.
    #[serde(rename = "Name")]
    pub name: String,
    /// The resolv.conf `ip netns exec` shows the sandbox (`/etc/netns/<name>/resolv.conf`);
    /// empty for namespaces netbridge did not make.
    #[serde(rename = "ResolvConfPath")]
    pub resolv_conf_path: String,
    #[serde(rename = "RestartCount")]
    pub restart_count: i64,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Platform")]
    pub platform: String,
    #[serde(rename = "HostConfig")]
    pub host_config: HostConfig,
    #[serde(rename = "Config")]
    pub config: ContainerConfig,
    #[serde(rename = "NetworkSettings")]
    pub network_settings: ContainerNetworkSettings,
}

#[derive(Serialize, ToSchema)]
pub struct SummaryNetworkSettings {
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/json` item.
#[derive(Serialize, ToSchema)]
pub struct ContainerSummary {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    #[serde(rename = "Command")]
    pub command: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Ports")]
    pub ports: Vec<PortSummary>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "HostConfig")]
    pub host_config: HostConfig,
    #[serde(rename = "NetworkSettings")]
    pub network_settings: SummaryNetworkSettings,
    #[serde(rename = "Mounts")]
    pub mounts: Vec<String>,
}

fn endpoint_settings(e: &Endpoint, n: &Network) -> EndpointSettings {
    let v4 = n.ipv4();
    let v6 = n.ipv6();
    let requested =
        e.requested_ipv4.is_some() || e.requested_ipv6.is_some() || !e.link_local_ips.is_empty();
    EndpointSettings {
        ipam_config: requested.then(|| EndpointIpamConfig {
            ipv4_address: e.requested_ipv4.map(|a| a.to_string()),
            ipv6_address: e.requested_ipv6.map(|a| a.to_string()),
            link_local_ips: (!e.link_local_ips.is_empty())
                .then(|| e.link_local_ips.iter().map(|a| a.to_string()).collect()),
        }),
        links: (!e.links.is_empty()).then(|| e.links.clone()),
        mac_address: e.mac.clone(),
        aliases: (!e.aliases.is_empty()).then(|| e.aliases.clone()),
        driver_opts: (!e.driver_opts.is_empty()).then(|| e.driver_opts.clone()),
        gw_priority: e.gw_priority,
        network_id: n.id.clone(),
        endpoint_id: e.id.clone(),
        gateway: v4.map(|c| c.gateway.to_string()).unwrap_or_default(),
        ip_address: e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
        ip_prefix_len: v4
            .filter(|_| e.ipv4.is_some())
            .map(|c| c.subnet.prefix)
            .unwrap_or(0),
        ipv6_gateway: v6.map(|c| c.gateway.to_string()).unwrap_or_default(),
        global_ipv6_address: e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: v6
            .filter(|_| e.ipv6.is_some())
            .map(|c| c.subnet.prefix)
            .unwrap_or(0),
        dns_names: Vec::new(),
    }
}

/// A network a stopped container joins at start: its configuration, nothing operational.
fn planned_settings(id: &str, p: &PlannedEndpoint) -> EndpointSettings {
    let requested = p.ipv4.is_some() || p.ipv6.is_some() || !p.link_local_ips.is_empty();
    EndpointSettings {
        ipam_config: requested.then(|| EndpointIpamConfig {
            ipv4_address: p.ipv4.clone(),
            ipv6_address: p.ipv6.clone(),
            link_local_ips: (!p.link_local_ips.is_empty()).then(|| p.link_local_ips.clone()),
        }),
        links: (!p.links.is_empty()).then(|| p.links.clone()),
        mac_address: p.mac.clone().unwrap_or_default(),
        aliases: (!p.aliases.is_empty()).then(|| p.aliases.clone()),
        driver_opts: (!p.driver_opts.is_empty()).then(|| p.driver_opts.clone()),
        gw_priority: p.gw_priority,
        network_id: id.to_string(),
        endpoint_id: String::new(),
        gateway: String::new(),
        ip_address: String::new(),
        ip_prefix_len: 0,
        ipv6_gateway: String::new(),
        global_ipv6_address: String::new(),
        global_ipv6_prefix_len: 0,
        dns_names: Vec::new(),
    }
}

fn networks_of(view: &ContainerView) -> BTreeMap<String, EndpointSettings> {
    let planned = view
        .planned
        .iter()
        .map(|(name, id, p)| (name.clone(), planned_settings(id, p)));
    view.endpoints
        .iter()
        .map(|(e, n)| {
            let mut s = endpoint_settings(e, n);
            s.dns_names = view.dns_names(e);
            (n.name.clone(), s)
        })
        .chain(planned)
        .collect()
}

fn network_mode(view: &ContainerView) -> String {
    if let Some(l) = &view.lifecycle {
        return l.network_mode.clone();
    }
    view.endpoints
        .first()
        .map(|(_, n)| n.name.clone())
        .unwrap_or_else(|| "none".to_string())
}

/// Go's zero time, which Docker prints for a time that never was.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn state_of(view: &ContainerView) -> ContainerState {
    let c = &view.container;
    let created = model::format_nanos(c.created_nanos);
    let mut state = ContainerState {
        status: "running".to_string(),
        running: true,
        paused: false,
        restarting: false,
        oom_killed: false,
        dead: false,
        pid: pid_of(c),
        exit_code: 0,
        error: String::new(),
        started_at: created,
        finished_at: ZERO_TIME.to_string(),
    };
    if let Some(l) = &view.lifecycle {
        let time = |t: Option<i64>| t.map_or_else(|| ZERO_TIME.to_string(), model::format_nanos);
        state.status = l.state.as_str().to_string();
        state.running = l.state == RunState::Running;
        state.exit_code = l.exit_code;
        state.started_at = time(l.started_nanos);
        state.finished_at = time(l.finished_nanos);
    }
    state
}

/// `Config.Cmd` or `Config.Entrypoint` as sent: an array, a single string, or nothing.
fn words(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The command a container was created with: entrypoint then arguments.
fn command_of(view: &ContainerView) -> Vec<String> {
    let Some(l) = &view.lifecycle else {
        return Vec::new();
    };
    let mut all = words(l.body.get("Entrypoint"));
    all.extend(words(l.body.get("Cmd")));
    all
}

fn image_of(view: &ContainerView) -> String {
    view.lifecycle
        .as_ref()
        .and_then(|l| l.body.get("Image"))
        .and_then(|i| i.as_str())
        .unwrap_or_default()
        .to_string()
}

impl From<&ContainerView> for ContainerInspect {
    fn from(view: &ContainerView) -> ContainerInspect {
        let c = &view.container;
        let created = model::format_nanos(c.created_nanos);
        let command = command_of(view);
        ContainerInspect {
            id: c.id.clone(),
            created,
            path: command.first().cloned().unwrap_or_default(),
            args: command.iter().skip(1).cloned().collect(),
            state: state_of(view),
            image: image_of(view),
            name: format!("/{}", c.name),
            resolv_conf_path: view
                .resolv_conf_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            restart_count: 0,
            driver: "netns".to_string(),
            platform: "linux".to_string(),
            host_config: HostConfig {
                network_mode: network_mode(view),
            },
            config: ContainerConfig {
                hostname: String::new(),
                image: image_of(view),
                labels: BTreeMap::new(),
            },
            network_settings: ContainerNetworkSettings {
                sandbox_id: String::new(),
                sandbox_key: c.netns_path.clone(),
                networks: networks_of(view),
                ports: ports_of(view),
            },
        }
    }
}

impl From<&ContainerView> for ContainerSummary {
    fn from(view: &ContainerView) -> ContainerSummary {
        let c = &view.container;
        let state = state_of(view);
        let status = match view.lifecycle.as_ref().map(|l| l.state) {
            None | Some(RunState::Running) => "Up".to_string(),
            Some(RunState::Created) => "Created".to_string(),
            Some(RunState::Exited) => format!("Exited ({})", state.exit_code),
        };
        ContainerSummary {
            id: c.id.clone(),
            names: vec![format!("/{}", c.name)],
            image: image_of(view),
            image_id: String::new(),
            command: command_of(view).join(" "),
            created: c.created_nanos.div_euclid(1_000_000_000),
            ports: port_summaries(view),
            labels: BTreeMap::new(),
            state: state.status,
            status,
            host_config: HostConfig {
                network_mode: network_mode(view),
            },
            network_settings: SummaryNetworkSettings {
                networks: networks_of(view),
            },
            mounts: Vec::new(),
        }
    }
}

fn running(view: &ContainerView) -> bool {
    view.lifecycle
        .as_ref()
        .is_some_and(|l| l.state == RunState::Running)
}

/// `NetworkSettings.Ports` as Docker shows it: every exposed port, with its host sides once
/// published; nothing while not running.
fn ports_of(view: &ContainerView) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut out = BTreeMap::new();
    if !running(view) {
        return out;
    }
    for (port, proto) in &view.exposed {
        out.insert(format!("{port}/{proto}"), None);
    }
    for p in &view.ports {
        let sides = out
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new);
        sides.push(PortBinding {
            host_ip: p.host_ip.to_string(),
            host_port: p.host_port.to_string(),
        });
    }
    out
}

/// The container list's `Ports`: one entry per host side, and one per port only exposed.
fn port_summaries(view: &ContainerView) -> Vec<PortSummary> {
    let mut out: Vec<PortSummary> = view
        .ports
        .iter()
        .map(|p| PortSummary {
            ip: Some(p.host_ip.to_string()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            kind: p.proto.clone(),
        })
        .collect();
    for (port, proto) in &view.exposed {
        if !view
            .ports
            .iter()
            .any(|p| p.container_port == *port && p.proto == *proto)
        {
            out.push(PortSummary {
                ip: None,
                private_port: *port,
                public_port: None,
                kind: proto.clone(),
            });
        }
    }
    out
}

/// A PID-backed container reports the process it is reached through now, as Docker reports
/// the init process.
fn pid_of(c: &Container) -> i64 {
    match c.kind {
        ContainerKind::Pid => c
            .netns_path
            .strip_prefix("/proc/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

// ---- container create (Docker's body) ----

/// `POST /containers/create`: Docker's ContainerCreateRequest. The whole body is recorded and
/// echoed by inspect; netbridge runs nothing, so only the network parts take effect.
#[derive(Deserialize, ToSchema, Default)]
#[schema(example = json!({"Image": "busybox", "Cmd": ["/bin/sh", "-c", "while true;do sleep 3600;done"],
    "HostConfig": {"NetworkMode": "mynet"},
    "NetworkingConfig": {"EndpointsConfig": {"mynet": {"IPAMConfig": {"IPv4Address": "172.30.0.20"}}}}}))]
pub struct ContainerCreateRequest {
    #[serde(rename = "Hostname")]
    pub hostname: Option<String>,
    /// Recorded and echoed; no image is pulled or run.
    #[serde(rename = "Image")]
    pub image: Option<String>,
    /// Recorded and echoed (a string or an array of strings).
    #[serde(rename = "Cmd")]
    #[schema(value_type = Option<Vec<String>>)]
    pub cmd: Option<serde_json::Value>,
    #[serde(rename = "Entrypoint")]
    #[schema(value_type = Option<Vec<String>>)]
    pub entrypoint: Option<serde_json::Value>,
    /// Before API 1.44, the MAC address of the container's first network.
    #[serde(rename = "MacAddress")]
    pub mac_address: Option<String>,
    /// Ports the container listens on, as `{"80/tcp": {}}`: shown by inspect and the list,
    /// and published by `HostConfig.PublishAllPorts`.
    #[serde(rename = "ExposedPorts")]
    #[schema(value_type = Option<Object>)]
    pub exposed_ports: Option<serde_json::Value>,
    #[serde(rename = "HostConfig")]
    pub host_config: Option<CreateHostConfig>,
    #[serde(rename = "NetworkingConfig")]
    pub networking_config: Option<NetworkingConfig>,
}

/// The parts of Docker's HostConfig netbridge honours; the rest is recorded and echoed.
#[derive(Deserialize, ToSchema, Default)]
#[schema(as = HostConfigCreate)]
pub struct CreateHostConfig {
    /// `default`/`bridge` (the predefined bridge network), a network's name or ID, `none` (only
    /// `lo`) or `host` (no interface is made). `container:<name|id>` is refused with 501.
    #[serde(rename = "NetworkMode")]
    pub network_mode: Option<String>,
    /// Published ports (`-p`): `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`. HostPort
    /// may be a range (`8080-8090`, the first free one is taken) or empty (an ephemeral
    /// port); HostIp empty publishes on every address. Published at start, in the kernel.
    #[serde(rename = "PortBindings")]
    #[schema(value_type = Option<Object>)]
    pub port_bindings: Option<serde_json::Value>,
    /// `-P`: every `ExposedPorts` port without a binding is published on an ephemeral port.
    #[serde(rename = "PublishAllPorts")]
    pub publish_all_ports: Option<bool>,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NetworkingConfig {
    /// The networks to join at start, keyed by network name or ID; several from API 1.44.
    #[serde(rename = "EndpointsConfig")]
    pub endpoints_config: Option<BTreeMap<String, EndpointSettingsRequest>>,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerWaitResponse {
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ContainerPruneResponse {
    #[serde(rename = "ContainersDeleted")]
    pub containers_deleted: Option<Vec<String>>,
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}
