//! netbridge's own routes, outside Docker's API.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
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

/// Repair now what the daemon repairs at every start-up: roll back interrupted operations, put
/// back missing bridges, veths and sandboxes' namespaces, remove marked leftovers, drop
/// endpoints whose namespace is gone, re-apply the firewall. Waits for operations in flight.
#[utoipa::path(post, path = "/netbridge/reconcile", tag = "netbridge", operation_id = "Reconcile",
    responses((status = 200, description = "What was repaired", body = ReconcileReport),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn reconcile(State(d): State<Arc<Daemon>>) -> Result<Json<ReconcileReport>, ApiError> {
    let repairs = d.reconcile().await?;
    Ok(Json(ReconcileReport { repairs }))
}
