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
