//! `/_ping` and `/version`: what the docker CLI asks before anything else.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::version::{MAX, MIN};
use super::wire::{ComponentVersion, ErrorResponse, Platform, SystemVersion};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn ping_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        ),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("builder-version"),
            HeaderValue::from_static("2"),
        ),
        (
            HeaderName::from_static("swarm"),
            HeaderValue::from_static("inactive"),
        ),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
    ]
}

/// Ping: the CLI reads `Api-Version` from it to pick the version it speaks.
#[utoipa::path(get, path = "/_ping", tag = "System", operation_id = "SystemPing",
    responses((status = 200, description = "no error", body = String, content_type = "text/plain",
        headers(("Api-Version" = String, description = "Max API Version the server supports"),
            ("Builder-Version" = String, description = "Default version of docker image builder"),
            ("Docker-Experimental" = bool, description = "If the server is running with experimental mode enabled"),
            ("Swarm" = String, description = "Swarm status of the daemon: always inactive"),
            ("Cache-Control" = String, description = "no-cache, no-store, must-revalidate"),
            ("Pragma" = String, description = "no-cache"))),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn ping() -> Response {
    (ping_headers(), "OK").into_response()
}

/// Ping without a body; the CLI tries this first.
#[utoipa::path(head, path = "/_ping", tag = "System", operation_id = "SystemPingHead",
    responses((status = 200, description = "no error",
        headers(("Api-Version" = String, description = "Max API Version the server supports"),
            ("Builder-Version" = String, description = "Default version of docker image builder"),
            ("Docker-Experimental" = bool, description = "If the server is running with experimental mode enabled"),
            ("Swarm" = String, description = "Swarm status of the daemon: always inactive"),
            ("Cache-Control" = String, description = "no-cache, no-store, must-revalidate"),
            ("Pragma" = String, description = "no-cache"))),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn ping_head() -> Response {
    (
        ping_headers(),
        [(header::CONTENT_LENGTH, HeaderValue::from_static("0"))],
    )
        .into_response()
}

/// Version of the daemon; `docker version` prints its Server section from this.
#[utoipa::path(get, path = "/version", tag = "System", operation_id = "SystemVersion",
    responses((status = 200, description = "no error", body = SystemVersion),
        (status = 500, description = "server error", body = ErrorResponse)))]
pub async fn version() -> Json<SystemVersion> {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
    .to_string();
    let git_commit = option_env!("NETBRIDGE_GIT_COMMIT")
        .unwrap_or("unknown")
        .to_string();
    let details: BTreeMap<String, String> = [
        ("ApiVersion", MAX.to_string()),
        ("MinAPIVersion", MIN.to_string()),
        ("GitCommit", git_commit.clone()),
        ("GoVersion", "n/a (Rust)".to_string()),
        ("Os", "linux".to_string()),
        ("Arch", arch.clone()),
        ("KernelVersion", kernel.clone()),
        ("Experimental", "false".to_string()),
        ("BuildTime", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Json(SystemVersion {
        platform: Platform {
            name: "netbridge".to_string(),
        },
        components: vec![ComponentVersion {
            name: "Engine".to_string(),
            version: VERSION.to_string(),
            details,
        }],
        version: VERSION.to_string(),
        api_version: MAX.to_string(),
        min_api_version: MIN.to_string(),
        git_commit,
        go_version: "n/a (Rust)".to_string(),
        os: "linux".to_string(),
        arch,
        kernel_version: kernel,
        build_time: String::new(),
    })
}
