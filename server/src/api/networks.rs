//! `/networks…` routes: decode the Docker request, call the service, encode Docker's answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{DockerJson, QueryMap};
use super::version::ApiVersion;
use super::wire::{
    ErrorResponse, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkInspect, NetworkPruneResponse, NetworkSummary,
};
use crate::ipam::ConfigRequest;
use crate::service::filters::Filters;
use crate::service::{ConnectRequest, CreateNetwork, Daemon};

type Daemon_ = State<Arc<Daemon>>;

/// List networks. Filters (JSON, `{"key":{"value":true}}` or `{"key":["value"]}`): `dangling`,
/// `driver`, `id`, `label`, `name`, `scope`, `type`.
#[utoipa::path(get, path = "/networks", tag = "Network", operation_id = "NetworkList",
    params(("filters" = Option<String>, Query, description = "Filters, JSON: `{\"key\":[\"value\"]}`, or `{\"key\":{\"value\":true}}` as the docker CLI sends; `null` is no filter")),
    responses((status = 200, description = "No error", body = Vec<NetworkSummary>),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn list(State(d): Daemon_, q: QueryMap) -> Result<Json<Vec<NetworkSummary>>, ApiError> {
    let filters = Filters::parse(q.get("filters").unwrap_or_default())?;
    let networks = d.list_networks(filters).await?;
    Ok(Json(
        networks
            .iter()
            .map(|n| NetworkSummary::from(&**n))
            .collect(),
    ))
}

/// Inspect a network by full ID, exact name, or unique ID prefix.
#[utoipa::path(get, path = "/networks/{id}", tag = "Network", operation_id = "NetworkInspect",
    params(("id" = String, Path, description = "Network ID or name"),
        ("verbose" = Option<bool>, Query, description = "Detailed inspect output for troubleshooting"),
        ("scope" = Option<String>, Query, description = "Filter the network by scope (swarm, global, or local)")),
    responses((status = 200, description = "No error", body = NetworkInspect),
        (status = 400, description = "bad parameter or ambiguous prefix", body = ErrorResponse),
        (status = 404, description = "Network not found", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn inspect(
    State(d): Daemon_,
    version: Option<axum::Extension<ApiVersion>>,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<NetworkInspect>, ApiError> {
    q.go_bool("verbose")?;
    let view = d.inspect_network(&id, q.get("scope")).await?;
    let with_status = version.is_none_or(|v| v.0.at_least(1, 52));
    Ok(Json(NetworkInspect::new(&view, with_status)))
}

/// Create a network.
#[utoipa::path(post, path = "/networks/create", tag = "Network", operation_id = "NetworkCreate",
    request_body(content = NetworkCreateRequest, description = "Network configuration"),
    responses((status = 201, description = "Network created successfully", body = NetworkCreateResponse),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "operation not permitted (predefined name, overlapping pool)", body = ErrorResponse),
        (status = 404, description = "plugin not found", body = ErrorResponse),
        (status = 409, description = "name already in use", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn create(
    State(d): Daemon_,
    version: Option<axum::Extension<ApiVersion>>,
    DockerJson(req): DockerJson<NetworkCreateRequest>,
) -> Result<Response, ApiError> {
    let honour_ipv4 = version.is_none_or(|v| v.0.at_least(1, 48));
    let ipam = req.ipam.unwrap_or_default();
    let spec = CreateNetwork {
        name: req.name.unwrap_or_default(),
        driver: req.driver.unwrap_or_default(),
        scope: req.scope.unwrap_or_default(),
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        ingress: req.ingress.unwrap_or(false),
        config_only: req.config_only.unwrap_or(false),
        config_from: req.config_from.and_then(|c| c.network).unwrap_or_default(),
        enable_ipv4: req.enable_ipv4.filter(|_| honour_ipv4),
        enable_ipv6: req.enable_ipv6,
        ipam_driver: ipam.driver.unwrap_or_default(),
        ipam_options: ipam.options,
        ipam_config: ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| ConfigRequest {
                subnet: c.subnet.unwrap_or_default(),
                ip_range: c.ip_range.unwrap_or_default(),
                gateway: c.gateway.unwrap_or_default(),
                aux: c.auxiliary_addresses.unwrap_or_default(),
            })
            .collect(),
        options: req.options.unwrap_or_default(),
        labels: req.labels.unwrap_or_default(),
    };
    let id = super::detached(async move { d.create_network(spec).await }).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id,
            warning: String::new(),
        }),
    )
        .into_response())
}

/// Remove a network.
#[utoipa::path(delete, path = "/networks/{id}", tag = "Network", operation_id = "NetworkDelete",
    params(("id" = String, Path, description = "Network ID or name")),
    responses((status = 204, description = "No error"),
        (status = 400, description = "an ID prefix matching several networks", body = ErrorResponse),
        (status = 403, description = "operation not supported for pre-defined networks, or the network has active endpoints", body = ErrorResponse),
        (status = 404, description = "no such network", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn remove(State(d): Daemon_, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    super::detached(async move { d.remove_network(&id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete unused networks. Filters: `until`, `label`, `label!`.
#[utoipa::path(post, path = "/networks/prune", tag = "Network", operation_id = "NetworkPrune",
    params(("filters" = Option<String>, Query, description = "Filters to process on the prune list, JSON: `{\"key\":[\"value\"]}`, or `{\"key\":{\"value\":true}}`; `null` is no filter")),
    responses((status = 200, description = "No error", body = NetworkPruneResponse),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 409, description = "a prune operation is already running", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn prune(State(d): Daemon_, q: QueryMap) -> Result<Json<NetworkPruneResponse>, ApiError> {
    let filters = Filters::parse(q.get("filters").unwrap_or_default())?;
    let deleted = super::detached(async move { d.prune_networks(filters).await }).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: (!deleted.is_empty()).then_some(deleted),
    }))
}

/// Connect a container: a sandbox (by ID, name or unique ID prefix), a named namespace under
/// /run/netns, or a PID.
#[utoipa::path(post, path = "/networks/{id}/connect", tag = "Network", operation_id = "NetworkConnect",
    params(("id" = String, Path, description = "Network ID or name")),
    request_body(content = NetworkConnectRequest),
    responses((status = 200, description = "No error"),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "Operation forbidden (already connected, address in use, the daemon's own or the host's namespace)", body = ErrorResponse),
        (status = 404, description = "Network or container not found", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn connect(
    State(d): Daemon_,
    version: Option<axum::Extension<ApiVersion>>,
    Path(id): Path<String>,
    DockerJson(req): DockerJson<NetworkConnectRequest>,
) -> Result<StatusCode, ApiError> {
    let honour_mac = version.is_none_or(|v| v.0.at_least(1, 54));
    let cfg = req.endpoint_config.unwrap_or_default();
    let ipam = cfg.ipam_config.unwrap_or_default();
    let request = ConnectRequest {
        container: req.container.unwrap_or_default(),
        ipv4: ipam.ipv4_address,
        ipv6: ipam.ipv6_address,
        mac: cfg.mac_address.filter(|_| honour_mac),
        aliases: cfg.aliases.unwrap_or_default(),
        gw_priority: cfg.gw_priority.unwrap_or(0),
        link_local_ips: ipam.link_local_ips.unwrap_or_default(),
        links: cfg.links.unwrap_or_default(),
        driver_opts: cfg.driver_opts.unwrap_or_default(),
    };
    super::detached(async move { d.connect_container(&id, request).await }).await?;
    Ok(StatusCode::OK)
}

/// Disconnect a container; `Force` also works when its namespace has vanished.
#[utoipa::path(post, path = "/networks/{id}/disconnect", tag = "Network", operation_id = "NetworkDisconnect",
    params(("id" = String, Path, description = "Network ID or name")),
    request_body(content = NetworkDisconnectRequest),
    responses((status = 200, description = "No error"),
        (status = 400, description = "bad parameter, or not connected", body = ErrorResponse),
        (status = 403, description = "Operation not supported for swarm scoped networks, or the daemon's own or the host's namespace", body = ErrorResponse),
        (status = 404, description = "Network or container not found", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn disconnect(
    State(d): Daemon_,
    Path(id): Path<String>,
    DockerJson(req): DockerJson<NetworkDisconnectRequest>,
) -> Result<StatusCode, ApiError> {
    let container = req.container.unwrap_or_default();
    let force = req.force.unwrap_or(false);
    super::detached(async move { d.disconnect_container(&id, &container, force).await }).await?;
    Ok(StatusCode::OK)
}
