//! `/containers…` routes: sandboxes (network namespaces) made and removed through the API, so
//! remote users can run the whole experiment without a shell on the host. A subset of Docker's
//! shapes; `docker inspect` and `docker rm -f` work against it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{DockerJson, QueryMap};
use super::wire::{ContainerCreateResponse, ContainerInspect, ContainerSummary, ErrorResponse};
use crate::service::Daemon;

type Daemon_ = State<Arc<Daemon>>;

/// Create a sandbox: a named network namespace with `lo` up. Of the body (Docker's container
/// config) only `HostConfig.NetworkMode` is read: `none` puts the sandbox on the `none`
/// network, where it keeps nothing but `lo` and may join no other network.
#[utoipa::path(post, path = "/containers/create", tag = "Container", operation_id = "ContainerCreate",
    params(("name" = Option<String>, Query, pattern = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$",
        description = "Sandbox name (a leading `/` is dropped); also the namespace's name under /run/netns")),
    responses((status = 201, description = "Sandbox created", body = ContainerCreateResponse),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "sandboxes are turned off (`--container-refs`)", body = ErrorResponse),
        (status = 409, description = "name already in use", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn create(
    State(d): Daemon_,
    q: QueryMap,
    DockerJson(body): DockerJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let name = q.get("name").map(str::to_string);
    let mode = body["HostConfig"]["NetworkMode"]
        .as_str()
        .map(str::to_string);
    let c = super::detached(async move {
        d.create_sandbox_in_mode(name.as_deref(), mode.as_deref())
            .await
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse {
            id: c.id,
            warnings: Vec::new(),
        }),
    )
        .into_response())
}

/// List containers: sandboxes and every namespace attached to a network.
#[utoipa::path(get, path = "/containers/json", tag = "Container", operation_id = "ContainerList",
    responses((status = 200, description = "No error", body = Vec<ContainerSummary>),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn list(State(d): Daemon_) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let views = d.list_containers().await?;
    Ok(Json(views.iter().map(ContainerSummary::from).collect()))
}

/// Inspect a container by ID, name, unique ID prefix, named namespace or any PID inside it.
#[utoipa::path(get, path = "/containers/{id}/json", tag = "Container", operation_id = "ContainerInspect",
    params(("id" = String, Path, description = "Container ID, name, unique ID prefix, named namespace or PID")),
    responses((status = 200, description = "No error", body = ContainerInspect),
        (status = 403, description = "the daemon's own or the host's namespace", body = ErrorResponse),
        (status = 404, description = "No such container", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn inspect(
    State(d): Daemon_,
    Path(id): Path<String>,
) -> Result<Json<ContainerInspect>, ApiError> {
    let view = d.inspect_container(&id).await?;
    Ok(Json(ContainerInspect::from(&view)))
}

/// Remove a container. `force` disconnects it first. Only namespaces netbridge made are
/// deleted; others are only forgotten.
#[utoipa::path(delete, path = "/containers/{id}", tag = "Container", operation_id = "ContainerDelete",
    params(("id" = String, Path, description = "Container ID, name, unique ID prefix, named namespace or PID"),
        ("force" = Option<bool>, Query, description = "Disconnect it from its networks first")),
    responses((status = 204, description = "No error"),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "the daemon's own or the host's namespace", body = ErrorResponse),
        (status = 404, description = "No such container", body = ErrorResponse),
        (status = 409, description = "still connected and not forced", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn remove(
    State(d): Daemon_,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<StatusCode, ApiError> {
    let force = q.go_bool("force")?;
    super::detached(async move { d.remove_container(&id, force).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
