//! The HTTP layer: Docker's routes, wire types and error mapping. It speaks only to the service
//! layer and knows nothing of netlink or SQL.
//!
//! Every route is registered once, on its bare path, with a utoipa annotation; the OpenAPI
//! document is generated from those annotations. The `/v1.NN` prefixes are handled before
//! routing by [`version::negotiate`], which strips them (and rewrites network names holding
//! `/`, see [`paths`]); an unsupported version is refused once a route matched. The swarm
//! routes ([`swarm`]) answer 503 and stay out of the document.

mod admin;
mod containers;
mod dashboard;
pub mod error;
mod events;
mod extract;
pub mod guard;
mod networks;
mod paths;
pub mod session;
mod swarm;
mod system;
pub mod tokens;
mod ui;
pub mod version;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Daemon;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "netbridge",
        description = "The Docker Engine network API (1.55) served by netbridge: networks in SQLite, \
            Linux bridges and veth pairs over netlink. Every path also exists under `/v1.40` … `/v1.55`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "Network", description = "Networks that containers (network namespaces) can be attached to."),
        (name = "Container", description = "Sandboxes: network namespaces made through the API (a subset of Docker's container routes)."),
        (name = "System", description = "Ping and version, as the docker CLI negotiates them."),
        (name = "netbridge", description = "netbridge's own routes, outside Docker's API.")
    )
)]
struct ApiDoc;

/// The routes, still without state, with the OpenAPI document they describe.
fn routes() -> OpenApiRouter<Arc<Daemon>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::ping, system::ping_head))
        .routes(routes!(system::version))
        .routes(routes!(networks::list))
        .routes(routes!(networks::inspect, networks::remove))
        .routes(routes!(networks::create))
        .routes(routes!(networks::prune))
        .routes(routes!(networks::connect))
        .routes(routes!(networks::disconnect))
        .routes(routes!(containers::create))
        .routes(routes!(containers::list))
        .routes(routes!(containers::inspect))
        .routes(routes!(containers::remove))
        .routes(routes!(containers::start))
        .routes(routes!(containers::stop))
        .routes(routes!(containers::kill))
        .routes(routes!(containers::restart))
        .routes(routes!(containers::wait))
        .routes(routes!(containers::prune))
        .routes(routes!(containers::exec))
        .routes(routes!(containers::attach))
        .routes(routes!(containers::logs))
        .routes(routes!(containers::image_create))
        .routes(routes!(admin::reconcile))
        .routes(routes!(admin::metrics))
        .routes(routes!(admin::drivers))
        .routes(routes!(events::events))
        .routes(routes!(dashboard::topology))
        .routes(routes!(dashboard::diagnose))
        .routes(routes!(session::login_code))
}

/// The OpenAPI document generated from the code (`openapi/netbridge.json` is a copy of it).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = routes().into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    filters_as_json(&mut doc);
    doc
}

/// Docker's `filters` query parameter is a JSON object, not free text. utoipa's `params` cannot
/// declare a parameter's `content`, so each `filters` is described here: JSON of a map from
/// filter key to the values it takes, which generated clients then serialise themselves.
fn filters_as_json(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Content, RefOr};
    let schema = serde_json::json!({
        "schema": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"label": ["team=a"], "driver": ["bridge"]}
        }
    });
    let Ok(content) = serde_json::from_value::<Content>(schema) else {
        return;
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.delete,
            &mut item.put,
        ];
        for op in operations.into_iter().flatten() {
            for param in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = param
                    && p.name == "filters"
                {
                    p.schema = None;
                    p.content = [("application/json".to_string(), RefOr::T(content.clone()))]
                        .into_iter()
                        .collect();
                }
            }
        }
    }
}

/// Runs a state-changing operation to its end even if the client hangs up: a dropped future
/// would stop it half-way, leaving its journal entry open until the next reconcile.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, crate::service::Error>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("operation failed: {e}"),
        )),
    }
}

/// The whole application: the guard (request IDs, CORS, tokens, limits, metrics, audit), then
/// version negotiation, then the routes.
pub fn app(daemon: Arc<Daemon>, guard: Arc<guard::Guard>) -> Router {
    let (router, _) = routes().split_for_parts();
    // The interactive docs and the document itself, served from the binary (no CDN).
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi());
    let router = router
        .merge(docs)
        .merge(swarm::router())
        .route_layer(axum::middleware::from_fn(version::refuse_unsupported))
        .layer(axum::Extension(guard.sessions.clone()))
        .fallback(|| async { ApiError::not_found_page() })
        .method_not_allowed_fallback(|| async { ApiError::not_found_page() })
        .with_state(daemon);
    // The prefix must be stripped before routing, so negotiation wraps the routed app as a
    // fallback service rather than as a route layer.
    Router::new()
        .merge(session::router(guard.clone()))
        .merge(ui::router())
        .fallback_service(router)
        .layer(axum::middleware::from_fn(version::negotiate))
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
}
