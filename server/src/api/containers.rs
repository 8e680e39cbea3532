//! `/containers…` routes. A container is a network namespace: a sandbox made through the API
//! (with Docker's create body it also has Docker's lifecycle: start joins its networks, stop
//! leaves them), a named namespace, or a PID. Routes that need a process (exec, attach, logs)
//! or an image answer 501 and name `ip netns exec`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{DockerJson, QueryMap};
use super::version::ApiVersion;
use super::wire::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerPruneResponse,
    ContainerSummary, ContainerWaitResponse, ErrorResponse,
};
use crate::model::{PlannedEndpoint, RunState};
use crate::service::filters::Filters;
use crate::service::{ContainerView, CreateContainer, Daemon, Halt, NO_PROCESSES, WaitFor};

type Daemon_ = State<Arc<Daemon>>;
type Version = Option<axum::Extension<ApiVersion>>;

fn at_least(version: &Version, major: u32, minor: u32) -> bool {
    version.as_ref().is_none_or(|v| v.0.at_least(major, minor))
}

/// Create a container: a sandbox (a named network namespace with `lo` up). With Docker's
/// create body it has Docker's lifecycle: its networks (HostConfig.NetworkMode, default
/// `bridge`; NetworkingConfig) are joined when it is started and left when it is stopped;
/// image and command are recorded and echoed, never run. With no body (or `{}`) it is a bare
/// sandbox, running from the start and attached only by `POST /networks/{id}/connect`.
#[utoipa::path(post, path = "/containers/create", tag = "Container", operation_id = "ContainerCreate",
    params(("name" = Option<String>, Query, pattern = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$",
        description = "Container name (a leading `/` is dropped); also the namespace's name under /run/netns")),
    request_body(content = ContainerCreateRequest, description = "Docker's container configuration"),
    responses((status = 201, description = "Container created", body = ContainerCreateResponse),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "sandboxes are turned off (`--container-refs`)", body = ErrorResponse),
        (status = 404, description = "no such network", body = ErrorResponse),
        (status = 409, description = "name already in use", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse),
        (status = 501, description = "`container:` network mode", body = ErrorResponse)))]
pub async fn create(
    State(d): Daemon_,
    version: Version,
    q: QueryMap,
    DockerJson(body): DockerJson<Value>,
) -> Result<Response, ApiError> {
    let bare = body.is_null() || body.as_object().is_some_and(|o| o.is_empty());
    let c = if bare {
        // netbridge's own bare sandbox: running from the start, attached only by connect.
        let name = q.get("name").map(str::to_string);
        super::detached(async move { d.create_sandbox(name.as_deref()).await }).await?
    } else {
        let req = create_request(q.get("name"), body, &version)?;
        super::detached(async move { d.create_container(req).await }).await?
    };
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse {
            id: c.id,
            warnings: Vec::new(),
        }),
    )
        .into_response())
}

/// Docker's create body in domain terms, with the version rules Docker applies.
fn create_request(
    name: Option<&str>,
    body: Value,
    version: &Version,
) -> Result<CreateContainer, ApiError> {
    let parsed: ContainerCreateRequest = if body.is_null() {
        ContainerCreateRequest::default()
    } else {
        serde_json::from_value(body.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let configs = parsed
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default();
    if !at_least(version, 1, 44) && configs.len() > 1 {
        let names: Vec<&str> = configs.keys().map(String::as_str).collect();
        return Err(ApiError::bad_request(format!(
            "Container cannot be created with multiple network endpoints: {}",
            names.join(", ")
        )));
    }
    let honour_priority = at_least(version, 1, 48);
    let mut endpoints: BTreeMap<String, PlannedEndpoint> = configs
        .into_iter()
        .map(|(network, cfg)| {
            let ipam = cfg.ipam_config.unwrap_or_default();
            let planned = PlannedEndpoint {
                network: network.clone(),
                ipv4: ipam.ipv4_address.filter(|a| !a.is_empty()),
                ipv6: ipam.ipv6_address.filter(|a| !a.is_empty()),
                mac: cfg.mac_address.filter(|m| !m.is_empty()),
                aliases: cfg.aliases.unwrap_or_default(),
                gw_priority: cfg.gw_priority.filter(|_| honour_priority).unwrap_or(0),
                link_local_ips: ipam.link_local_ips.unwrap_or_default(),
                links: cfg.links.unwrap_or_default(),
                driver_opts: cfg.driver_opts.unwrap_or_default(),
            };
            (network, planned)
        })
        .collect();
    let network_mode = parsed
        .host_config
        .and_then(|h| h.network_mode)
        .unwrap_or_default();
    // Before 1.44 the MAC address of the container's (only) network came in Config.
    if !at_least(version, 1, 44)
        && let Some(mac) = parsed.mac_address.filter(|m| !m.is_empty())
    {
        let key = match network_mode.as_str() {
            "" | "default" => "bridge".to_string(),
            other => other.to_string(),
        };
        let entry = endpoints.entry(key.clone()).or_default();
        entry.network = key;
        entry.mac = Some(mac);
    }
    Ok(CreateContainer {
        name: name.map(str::to_string),
        body,
        network_mode,
        endpoints,
    })
}

/// List containers: by default the running ones (`all` for every one). Filters: `id`,
/// `name`, `network`, `status`.
#[utoipa::path(get, path = "/containers/json", tag = "Container", operation_id = "ContainerList",
    params(("all" = Option<bool>, Query, description = "Also the containers that are not running"),
        ("filters" = Option<String>, Query, description = "JSON map of filters: id, name, network, status")),
    responses((status = 200, description = "No error", body = Vec<ContainerSummary>),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn list(State(d): Daemon_, q: QueryMap) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let all = q.go_bool("all")?;
    let filters = Filters::parse(q.get("filters").unwrap_or_default())?;
    filters.check_keys(&["id", "name", "network", "status"])?;
    let views = d.list_containers().await?;
    Ok(Json(
        views
            .iter()
            .filter(|v| all || filters.get("status").is_some() || is_running(v))
            .filter(|v| matches(v, &filters))
            .map(ContainerSummary::from)
            .collect(),
    ))
}

fn is_running(v: &ContainerView) -> bool {
    v.lifecycle
        .as_ref()
        .is_none_or(|l| l.state == RunState::Running)
}

/// Docker's container filters netbridge has: every key must match one of its values.
fn matches(v: &ContainerView, filters: &Filters) -> bool {
    let c = &v.container;
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        filters
            .get(key)
            .is_none_or(|vals| vals.iter().any(|x| test(x)))
    };
    let status = v.lifecycle.as_ref().map_or("running", |l| l.state.as_str());
    any("id", &|x| c.id.starts_with(x))
        && any("name", &|x| c.name.contains(x.trim_start_matches('/')))
        && any("status", &|x| x == status)
        && any("network", &|x| {
            v.endpoints
                .iter()
                .any(|(_, n)| n.name == x || n.id.starts_with(x))
                || v.planned
                    .iter()
                    .any(|(name, id, _)| name == x || (!id.is_empty() && id.starts_with(x)))
        })
}

/// Inspect a container by ID, name, unique ID prefix, named namespace or any PID inside it.
/// Before API 1.52 the default bridge's settings are also at the top of NetworkSettings.
#[utoipa::path(get, path = "/containers/{id}/json", tag = "Container", operation_id = "ContainerInspect",
    params(("id" = String, Path, description = "Container ID, name, unique ID prefix, named namespace or PID")),
    responses((status = 200, description = "No error", body = ContainerInspect),
        (status = 403, description = "the daemon's own or the host's namespace", body = ErrorResponse),
        (status = 404, description = "No such container", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn inspect(
    State(d): Daemon_,
    version: Version,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = d.inspect_container(&id).await?;
    let typed = ContainerInspect::from(&view);
    let mut out = serde_json::to_value(&typed)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(l) = &view.lifecycle {
        echo_body(&mut out, &l.body, &view.container.id);
    }
    if !at_least(&version, 1, 52) {
        lift_bridge_settings(&mut out);
    }
    Ok(Json(out))
}

/// Echoes the create body: Config as sent (Hostname defaulting to the short ID, as Docker
/// does) and HostConfig as sent, with NetworkMode as resolved.
fn echo_body(out: &mut Value, body: &Value, id: &str) {
    let mut config = body.as_object().cloned().unwrap_or_default();
    config.remove("HostConfig");
    config.remove("NetworkingConfig");
    if config
        .get("Hostname")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        config.insert("Hostname".to_string(), Value::String(id[..12].to_string()));
    }
    if let Some(Value::Object(target)) = out.get_mut("Config") {
        target.extend(config);
    }
    if let (Some(Value::Object(sent)), Some(Value::Object(target))) =
        (body.get("HostConfig"), out.get_mut("HostConfig"))
    {
        for (k, v) in sent {
            if k != "NetworkMode" {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The default bridge's endpoint at the top of NetworkSettings, as Docker shows it to
/// clients older than API 1.52 (`docker inspect -f '{{.NetworkSettings.IPAddress}}'`).
fn lift_bridge_settings(out: &mut Value) {
    let Some(settings) = out
        .get_mut("NetworkSettings")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(bridge) = settings
        .get("Networks")
        .and_then(|n| n.get("bridge"))
        .cloned()
    else {
        return;
    };
    for key in [
        "EndpointID",
        "Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "IPAddress",
        "IPPrefixLen",
        "IPv6Gateway",
        "MacAddress",
    ] {
        if let Some(v) = bridge.get(key) {
            settings.insert(key.to_string(), v.clone());
        }
    }
}

/// Remove a container. `force` stops and disconnects it first. Only namespaces netbridge
/// made are deleted; others are only forgotten.
#[utoipa::path(delete, path = "/containers/{id}", tag = "Container", operation_id = "ContainerDelete",
    params(("id" = String, Path, description = "Container ID, name, unique ID prefix, named namespace or PID"),
        ("force" = Option<bool>, Query, description = "Stop and disconnect it first")),
    responses((status = 204, description = "No error"),
        (status = 400, description = "bad parameter", body = ErrorResponse),
        (status = 403, description = "the daemon's own or the host's namespace", body = ErrorResponse),
        (status = 404, description = "No such container", body = ErrorResponse),
        (status = 409, description = "running or still connected, and not forced", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn remove(
    State(d): Daemon_,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<StatusCode, ApiError> {
    let force = q.go_bool("force")?;
    super::detached(async move { d.remove_any_container(&id, force).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a container: it joins its networks (static addresses as configured, others from
/// IPAM). 304 if it is already started.
#[utoipa::path(post, path = "/containers/{id}/start", tag = "Container", operation_id = "ContainerStart",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 204, description = "no error"),
        (status = 304, description = "container already started"),
        (status = 404, description = "no such container or network", body = ErrorResponse),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn start(State(d): Daemon_, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let started = super::detached(async move { d.start_container(&id).await }).await?;
    Ok(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    })
}

/// Stop a container: it leaves its networks (dynamic addresses are freed) and keeps its
/// configuration. 304 if it is not running.
#[utoipa::path(post, path = "/containers/{id}/stop", tag = "Container", operation_id = "ContainerStop",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 204, description = "no error"),
        (status = 304, description = "container already stopped"),
        (status = 404, description = "no such container", body = ErrorResponse),
        (status = 409, description = "a namespace netbridge only attaches", body = ErrorResponse),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn stop(State(d): Daemon_, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let stopped = super::detached(async move { d.stop_container(&id, Halt::Stop).await }).await?;
    Ok(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    })
}

/// Kill a container: as stop, with exit code 137. 409 if it is not running.
#[utoipa::path(post, path = "/containers/{id}/kill", tag = "Container", operation_id = "ContainerKill",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 204, description = "no error"),
        (status = 404, description = "no such container", body = ErrorResponse),
        (status = 409, description = "container is not running", body = ErrorResponse),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn kill(State(d): Daemon_, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let term = id.clone();
    let view = d.inspect_container(&id).await?;
    let full = view.container.id.clone();
    let killed = super::detached(async move { d.stop_container(&id, Halt::Kill).await }).await?;
    if !killed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("cannot kill container: {term}: container {full} is not running"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Restart a container: stop (if running), then start.
#[utoipa::path(post, path = "/containers/{id}/restart", tag = "Container", operation_id = "ContainerRestart",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 204, description = "no error"),
        (status = 404, description = "no such container", body = ErrorResponse),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn restart(State(d): Daemon_, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    super::detached(async move {
        d.stop_container(&id, Halt::Stop).await?;
        d.start_container(&id).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Wait for a container to stop (`not-running`: at once for one that is not running), to
/// exit next, or to be removed.
#[utoipa::path(post, path = "/containers/{id}/wait", tag = "Container", operation_id = "ContainerWait",
    params(("id" = String, Path, description = "Container ID or name"),
        ("condition" = Option<String>, Query, description = "`not-running` (the default), `next-exit` or `removed`")),
    responses((status = 200, description = "The container has exited", body = ContainerWaitResponse),
        (status = 400, description = "invalid condition", body = ErrorResponse),
        (status = 404, description = "no such container", body = ErrorResponse),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn wait(
    State(d): Daemon_,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let until = match q.get("condition").unwrap_or_default() {
        "" | "not-running" => WaitFor::NotRunning,
        "next-exit" => WaitFor::NextExit,
        "removed" => WaitFor::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )));
        }
    };
    // An unknown container is an error status; then, as Docker does, the headers go out at
    // once (the docker CLI waits for them before it starts the container) and the body when
    // the condition holds.
    let full = d.inspect_container(&id).await?.container.id;
    let body = futures::stream::once(async move {
        let answer = match d.wait_container(&full, until).await {
            Ok(code) => serde_json::json!({"StatusCode": code}),
            Err(e) => serde_json::json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        Ok::<_, std::convert::Infallible>(answer.to_string())
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from_stream(body))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Delete the containers made with a create body that are not running.
#[utoipa::path(post, path = "/containers/prune", tag = "Container", operation_id = "ContainerPrune",
    params(("filters" = Option<String>, Query, description = "None is supported: any filter is refused (400) rather than ignored, so a prune never removes more than asked")),
    responses((status = 200, description = "No error", body = ContainerPruneResponse),
        (status = 400, description = "a filter was given", body = ErrorResponse),
        (status = 500, description = "Server error", body = ErrorResponse)))]
pub async fn prune(
    State(d): Daemon_,
    q: QueryMap,
) -> Result<Json<ContainerPruneResponse>, ApiError> {
    Filters::parse(q.get("filters").unwrap_or_default())?.check_keys(&[])?;
    let removed = super::detached(async move { d.prune_containers().await }).await?;
    Ok(Json(ContainerPruneResponse {
        containers_deleted: (!removed.is_empty()).then_some(removed),
        space_reclaimed: 0,
    }))
}

/// Reads a refused request's body before answering: an answer sent while the client is still
/// writing makes its write fail (a broken pipe) instead of showing the refusal.
async fn drain(request: axum::extract::Request) {
    let limit = usize::try_from(super::guard::BODY_LIMIT).unwrap_or(usize::MAX);
    let _ = axum::body::to_bytes(request.into_body(), limit).await;
}

fn no_processes(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} is not available: {NO_PROCESSES}"),
    )
}

/// 501: netbridge runs no processes, so there is nothing to exec in.
#[utoipa::path(post, path = "/containers/{id}/exec", tag = "Container", operation_id = "ContainerExec",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 501, description = "netbridge runs no processes: use `ip netns exec`", body = ErrorResponse)))]
pub async fn exec(Path(_id): Path<String>, request: axum::extract::Request) -> ApiError {
    drain(request).await;
    no_processes("exec")
}

/// Attach: there is no process, so no output. A client that asks to upgrade the connection
/// (the docker CLI, before it starts a container it attaches to) is answered 101 and the
/// stream ends at once; its next start is then refused with the reason, so `docker run`
/// without `-d` fails with it instead of waiting forever. Any other request gets 501.
#[utoipa::path(post, path = "/containers/{id}/attach", tag = "Container", operation_id = "ContainerAttach",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 101, description = "an empty stream; the next start is refused"),
        (status = 404, description = "no such container", body = ErrorResponse),
        (status = 501, description = "netbridge runs no processes: use `ip netns exec`", body = ErrorResponse)))]
pub async fn attach(
    State(d): Daemon_,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if !headers.contains_key(axum::http::header::UPGRADE) {
        return Err(no_processes("attach"));
    }
    d.note_attach(&id).await?;
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(axum::http::header::CONNECTION, "Upgrade")
        .header(axum::http::header::UPGRADE, "tcp")
        .header(
            axum::http::header::CONTENT_TYPE,
            "application/vnd.docker.multiplexed-stream",
        )
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// 501: netbridge runs no processes, so there are no logs.
#[utoipa::path(get, path = "/containers/{id}/logs", tag = "Container", operation_id = "ContainerLogs",
    params(("id" = String, Path, description = "Container ID or name")),
    responses((status = 501, description = "netbridge runs no processes: use `ip netns exec`", body = ErrorResponse)))]
pub async fn logs(Path(_id): Path<String>) -> ApiError {
    no_processes("logs")
}

/// 501: netbridge keeps no images; the image a container names is only recorded.
#[utoipa::path(post, path = "/images/create", tag = "Container", operation_id = "ImageCreate",
    responses((status = 501, description = "netbridge keeps no images", body = ErrorResponse)))]
pub async fn image_create(request: axum::extract::Request) -> ApiError {
    drain(request).await;
    no_processes("pulling an image")
}
