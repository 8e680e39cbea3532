//! The dashboard at `/ui/`: plain HTML, CSS and JavaScript from the repository's `ui/`
//! folder, embedded in the binary (no CDN, no build step), and the security headers it and the
//! docs are served with.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Everything the page loads comes from here; scripts only from files of this origin.
const UI_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";
/// Swagger UI sets inline styles and draws data: images; its scripts are files all the same.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' \
    'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../../ui/index.html");
const APP_JS: &str = include_str!("../../../ui/app.js");
const STYLE: &str = include_str!("../../../ui/style.css");

pub fn router() -> Router {
    Router::new()
        .route("/ui", get(|| async { moved() }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn moved() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/")]).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Is this a page a browser navigates to (the dashboard or the docs)?
pub fn is_browser_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/") || path == "/docs" || path.starts_with("/docs/")
}

/// Adds the Content-Security-Policy and friends to the dashboard's and the docs' responses.
/// `same-origin` keeps a login link's code out of any Referer header sent elsewhere (and
/// `no-referrer` would make Chromium send `Origin: null` on the login form's own post).
pub fn secure(path: &str, response: &mut Response) {
    let policy = if path.starts_with("/docs") {
        DOCS_POLICY
    } else if path.starts_with("/ui") {
        UI_POLICY
    } else {
        return;
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
