//! netbridge's own routes, outside Docker's API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::wire::ErrorResponse;
use crate::service::Daemon;

#[derive(Serialize, ToSchema)]
pub struct ReconcileReport {
    /// One line per repair; empty when store and kernel already agreed.
    #[serde(rename = "Repairs")]
    pub repairs: Vec<String>,
}

/// What this kernel offers netbridge's network drivers.
#[derive(Serialize, ToSchema)]
pub struct DriverReport {
    /// Every network driver netbridge knows of.
    #[serde(rename = "Drivers")]
    pub drivers: Vec<DriverInfo>,
    /// The link kinds the kernel could create when probed at start-up.
    #[serde(rename = "LinkKinds")]
    pub link_kinds: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DriverInfo {
    /// The driver's name, as `docker network create -d` takes it.
    #[serde(rename = "Name")]
    pub name: String,
    /// Whether networks of this driver can be created on this kernel.
    #[serde(rename = "Available")]
    pub available: bool,
    /// Why not, when not available: the missing kernel feature.
    #[serde(rename = "Reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The network drivers and whether this kernel can serve each: the link kinds are probed once
/// at start-up (created and deleted in a scratch namespace).
#[utoipa::path(get, path = "/netbridge/drivers", tag = "netbridge", operation_id = "Drivers",
    responses((status = 200, description = "The drivers and the kernel's link kinds", body = DriverReport)))]
pub async fn drivers(State(d): State<Arc<Daemon>>) -> Json<DriverReport> {
    Json(DriverReport {
        drivers: d
            .drivers()
            .into_iter()
            .map(|s| DriverInfo {
                name: s.name,
                available: s.available,
                reason: s.reason,
            })
            .collect(),
        link_kinds: d.link_kinds().names().map(str::to_string).collect(),
    })
}

/// Prometheus metrics: requests by route and status, latency histograms, netlink and SQLite
/// operation latency, and gauges of networks, endpoints and containers.
#[utoipa::path(get, path = "/metrics", tag = "netbridge", operation_id = "Metrics",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(d): State<Arc<Daemon>>) -> Result<Response, ApiError> {
    let counts = d.counts().await?;
    let text = crate::metrics::render(&[
        (
            "netbridge_networks",
            "Networks in the store.",
            counts.networks,
        ),
        (
            "netbridge_endpoints",
            "Endpoints (attachments) in the store.",
            counts.endpoints,
        ),
        (
            "netbridge_containers",
            "Containers (namespaces) recorded.",
            counts.containers,
        ),
    ]);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// Repair now what the daemon repairs at every start-up: roll back interrupted operations, put
/// back missing bridges, veths and sandboxes' namespaces, remove marked leftovers, drop
/// endpoints whose namespace is gone, re-apply the firewall. Waits for operations in flight.
#[utoipa::path(post, path = "/netbridge/reconcile", tag = "netbridge", operation_id = "Reconcile",
    responses((status = 200, description = "What was repaired", body = ReconcileReport),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn reconcile(State(d): State<Arc<Daemon>>) -> Result<Json<ReconcileReport>, ApiError> {
    let repairs = super::detached(async move { d.reconcile().await }).await?;
    Ok(Json(ReconcileReport { repairs }))
}
