//! Docker's wire shapes (Engine API 1.55), field for field, and their conversion from domain
//! records. Names follow `networks.swagger.yaml`; see it for what each field means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{self, Container, Endpoint, Network};
use crate::service::{NetworkView, SubnetStatus};

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
pub struct Ipam {
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Config")]
    pub config: Vec<IpamConfig>,
}

#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
pub struct IpamConfig {
    #[serde(rename = "Subnet", default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(rename = "Gateway", default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(
        rename = "AuxiliaryAddresses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
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
}

#[derive(Serialize, ToSchema)]
pub struct NetworkStatus {
    #[serde(rename = "IPAM")]
    pub ipam: IpamStatus,
}

#[derive(Serialize, ToSchema)]
pub struct IpamStatus {
    #[serde(rename = "Subnets")]
    pub subnets: BTreeMap<String, SubnetStatusWire>,
}

#[derive(Serialize, ToSchema)]
pub struct SubnetStatusWire {
    #[serde(rename = "IPsInUse")]
    pub ips_in_use: u64,
    #[serde(rename = "DynamicIPsAvailable")]
    pub dynamic_ips_available: u64,
}

/// `POST /networks/create` body. Every field may be absent or null; unknown fields are ignored.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(default)]
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
#[serde(default)]
pub struct ConfigReferenceRequest {
    #[serde(rename = "Network")]
    pub network: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(default)]
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
        let containers = view
            .endpoints
            .iter()
            .map(|(e, c)| (c.id.clone(), endpoint_resource(n, e, c)))
            .collect();
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
    }
}
