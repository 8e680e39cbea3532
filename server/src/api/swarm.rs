//! Swarm routes (`/swarm…`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`): netbridge
//! is never part of a swarm, so each answers as Docker does on a node outside one, 503, which
//! client libraries expect and skip. They are left out of the OpenAPI document: a generated
//! client would only get methods that always fail.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::error::ApiError;

/// Docker's answer to leaving a swarm the node is not part of.
const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
/// Docker's answer to every other swarm route on a node outside a swarm.
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
                             \"docker swarm join\" to connect this node to swarm and try again.";
/// Init and join, which Docker would carry out: netbridge has no swarm mode to join.
const NO_SWARM_MODE: &str = "netbridge has no swarm mode: this node cannot init or join a swarm";

/// A route answering `methods` with 503 and `message`; other methods fall through to 404.
fn refuse<S: Clone + Send + Sync + 'static>(
    methods: MethodFilter,
    message: &'static str,
) -> MethodRouter<S> {
    on(methods, move || async move {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    })
}

/// The swarm routes, each answering 503 with Docker's text.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let (get, post) = (MethodFilter::GET, MethodFilter::POST);
    let get_or_delete = MethodFilter::GET.or(MethodFilter::DELETE);
    let mut r = Router::new()
        .route("/swarm/leave", refuse(post, NOT_IN_A_SWARM))
        .route("/swarm/init", refuse(post, NO_SWARM_MODE))
        .route("/swarm/join", refuse(post, NO_SWARM_MODE))
        .route("/swarm", refuse(get, NOT_A_MANAGER))
        .route("/swarm/unlockkey", refuse(get, NOT_A_MANAGER))
        .route("/swarm/update", refuse(post, NOT_A_MANAGER))
        .route("/swarm/unlock", refuse(post, NOT_A_MANAGER))
        .route("/nodes", refuse(get, NOT_A_MANAGER))
        .route("/nodes/{id}", refuse(get_or_delete, NOT_A_MANAGER))
        .route("/nodes/{id}/update", refuse(post, NOT_A_MANAGER))
        .route("/services/{id}/logs", refuse(get, NOT_A_MANAGER))
        .route("/tasks", refuse(get, NOT_A_MANAGER))
        .route("/tasks/{id}", refuse(get, NOT_A_MANAGER))
        .route("/tasks/{id}/logs", refuse(get, NOT_A_MANAGER));
    for kind in ["services", "secrets", "configs"] {
        r = r
            .route(&format!("/{kind}"), refuse(get, NOT_A_MANAGER))
            .route(&format!("/{kind}/create"), refuse(post, NOT_A_MANAGER))
            .route(
                &format!("/{kind}/{{id}}"),
                refuse(get_or_delete, NOT_A_MANAGER),
            )
            .route(
                &format!("/{kind}/{{id}}/update"),
                refuse(post, NOT_A_MANAGER),
            );
    }
    r
}
