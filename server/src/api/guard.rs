//! What stands in front of every route: request IDs, CORS, authentication of TCP clients,
//! limits, metrics and the audit log. A refused request never reaches the service, so it
//! changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::error::ApiError;
use super::session::{self, Sessions};
use super::tokens::Tokens;

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: u64 = 1024 * 1024;

/// Who is on the other end of a connection; the listener puts it in every request.
#[derive(Clone, Debug)]
pub enum Peer {
    /// The Unix socket: the peer's uid from SO_PEERCRED.
    Unix { uid: Option<u32> },
    /// TCP, with or without TLS.
    Tcp { addr: SocketAddr, tls: bool },
}

/// The guard's settings.
pub struct Guard {
    /// Tokens every TCP request must carry; `None` only with `--insecure-tcp`.
    pub tokens: Option<Tokens>,
    /// Origins allowed to call from a browser.
    pub cors_origins: Vec<String>,
    /// Requests served at once.
    pub in_flight: Semaphore,
    /// Browser sessions (the dashboard and the docs over TCP).
    pub sessions: Arc<Sessions>,
}

impl Guard {
    pub fn new(tokens: Option<Tokens>, cors_origins: Vec<String>, max_in_flight: usize) -> Guard {
        Guard {
            tokens,
            cors_origins,
            in_flight: Semaphore::new(max_in_flight.max(1)),
            sessions: Arc::new(Sessions::default()),
        }
    }
}

/// Everything but the routes' own work.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::model::new_id()[..16].to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route_label(&path);
    let span = tracing::info_span!("request", id = %id, method = %method, path = %path);
    async move {
        let started = Instant::now();
        let peer = req.extensions().get::<Peer>().cloned();
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (mut response, who) = admit(&g, req, next, peer.as_ref(), origin.as_deref()).await;
        super::ui::secure(&path, &mut response);
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", v);
        }
        if let Some(origin) = origin.filter(|o| g.cors_origins.iter().any(|a| a == o))
            && let Ok(v) = HeaderValue::from_str(&origin)
        {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Api-Version, X-Request-Id"),
            );
        }
        let status = response.status().as_u16();
        let took = started.elapsed();
        crate::metrics::request(route, method.as_str(), status, took);
        if method == Method::POST || method == Method::DELETE || method == Method::PUT {
            tracing::info!(target: "audit", who = %who, method = %method, path = %path, status,
                took_ms = took.as_millis() as u64, "state-changing request");
        } else {
            tracing::debug!(status, took_us = took.as_micros() as u64, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// Checks the request; returns the response and who made it (for the audit log).
async fn admit(
    g: &Guard,
    req: Request,
    next: Next,
    peer: Option<&Peer>,
    origin: Option<&str>,
) -> (Response, String) {
    let mut who = match peer {
        Some(Peer::Unix { uid: Some(uid) }) => format!("uid:{uid}"),
        Some(Peer::Unix { uid: None }) => "unix".to_string(),
        Some(Peer::Tcp { addr, .. }) => format!("tcp:{addr}"),
        None => "unknown".to_string(),
    };
    // CORS: a browser page from an origin not on the list is refused outright, so not even a
    // "simple" cross-site POST can change anything.
    if let Some(origin) = origin {
        if !g.cors_origins.iter().any(|a| a == origin) && !same_origin(&req, peer, origin) {
            return (
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("origin {origin} is not allowed (see --cors-origin)"),
                )
                .into_response(),
                who,
            );
        }
        if req.method() == Method::OPTIONS {
            return (preflight(), who);
        }
    }
    // Authentication: every TCP request carries a token or a browser session (the Unix
    // socket's permissions are its authentication); the login page does its own.
    if let (Some(Peer::Tcp { .. }), Some(tokens)) = (peer, &g.tokens)
        && !session::is_login_path(req.uri().path())
    {
        match authenticate(g, tokens, &req) {
            Ok(id) => who = format!("{who} {id}"),
            Err(refusal) => return (*refusal, format!("{who} (refused)")),
        }
    }
    // Limits.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return (
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {BODY_LIMIT} bytes"),
            )
            .into_response(),
            who,
        );
    }
    let Ok(_permit) = g.in_flight.try_acquire() else {
        return (
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight; try again shortly",
            )
            .into_response(),
            who,
        );
    };
    (next.run(req).await, who)
}

/// Who a TCP request is: a bearer token, or a browser session (which must also carry the CSRF
/// header to change anything). A browser without either is sent to the login page.
fn authenticate(g: &Guard, tokens: &Tokens, req: &Request) -> Result<String, Box<Response>> {
    let headers = req.headers();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(t) = presented {
        return tokens
            .check(t.as_bytes())
            .ok_or_else(|| Box::new(unauthorized("invalid bearer token")));
    }
    if let Some(id) = session::session_of(headers).filter(|id| g.sessions.is_live(id)) {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD);
        if !safe && !headers.contains_key(session::CSRF_HEADER) {
            return Err(Box::new(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "a browser session must send the {} header to change anything",
                        session::CSRF_HEADER
                    ),
                )
                .into_response(),
            ));
        }
        return Ok(format!("session:{}", &id[..8.min(id.len())]));
    }
    let path = req.uri().path();
    if req.method() == Method::GET && super::ui::is_browser_path(path) {
        return Err(Box::new(
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/login")]).into_response(),
        ));
    }
    Err(Box::new(unauthorized(
        "authentication required: send Authorization: Bearer <token>",
    )))
}

fn unauthorized(why: &'static str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, why).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"netbridge\""),
    );
    r
}

/// A page of this very listener calling it (the dashboard's own fetches carry `Origin` on
/// POST): its origin is the scheme and the `Host` the request came to. Not cross-site, so not
/// subject to `--cors-origin`.
fn same_origin(req: &Request, peer: Option<&Peer>, origin: &str) -> bool {
    let Some(Peer::Tcp { tls, .. }) = peer else {
        return false;
    };
    let scheme = if *tls { "https" } else { "http" };
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| origin == format!("{scheme}://{host}"))
}

fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, POST, DELETE, OPTIONS"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, X-Request-Id"),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            ),
        ],
    )
        .into_response()
}

/// A route label for metrics, with IDs and the version prefix folded away so the label set
/// stays small.
pub fn route_label(path: &str) -> &'static str {
    let path = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
        }
        _ => path,
    };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "_ping"] => "/_ping",
        ["", "version"] => "/version",
        ["", "events"] => "/events",
        ["", "metrics"] => "/metrics",
        ["", "networks"] => "/networks",
        ["", "networks", "create"] => "/networks/create",
        ["", "networks", "prune"] => "/networks/prune",
        ["", "networks", _] => "/networks/{id}",
        ["", "networks", _, "connect"] => "/networks/{id}/connect",
        ["", "networks", _, "disconnect"] => "/networks/{id}/disconnect",
        ["", "containers", "create"] => "/containers/create",
        ["", "containers", "json"] => "/containers/json",
        ["", "containers", _, "json"] => "/containers/{id}/json",
        ["", "containers", _] => "/containers/{id}",
        ["", "netbridge", "reconcile"] => "/netbridge/reconcile",
        ["", "netbridge", "topology"] => "/netbridge/topology",
        ["", "netbridge", "diagnose"] => "/netbridge/diagnose",
        ["", "netbridge", "login-code"] => "/netbridge/login-code",
        ["", "ui", ..] => "/ui",
        ["", "openapi.json"] => "/openapi.json",
        ["", "docs", ..] => "/docs",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_fold_ids_and_versions() {
        assert_eq!(
            route_label("/v1.44/networks/abc/connect"),
            "/networks/{id}/connect"
        );
        assert_eq!(route_label("/networks/mynet"), "/networks/{id}");
        assert_eq!(route_label("/networks"), "/networks");
        assert_eq!(route_label("/containers/x/json"), "/containers/{id}/json");
        assert_eq!(route_label("/nope/nope/nope"), "other");
    }
}
