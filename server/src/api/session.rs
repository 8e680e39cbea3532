//! Browser sessions over TCP, for `/ui/` and `/docs/`: a browser cannot send a bearer header on
//! navigation, so it logs in once and then carries a session cookie.
//!
//! Two ways in, neither putting a long-lived token anywhere a browser keeps or shows it:
//! - a one-time login code, minted over an authenticated connection (`netbridge login-url`
//!   asks the Unix socket), carried in a URL that dies at first use or after two minutes;
//! - a form that posts a token once; the token is only compared, never stored or echoed.
//!
//! Either sets an HttpOnly, SameSite=Strict cookie holding a random session ID (Secure over
//! TLS). A request authenticated by that cookie that changes state must also carry the
//! [`CSRF_HEADER`]: a cross-site page can neither send it without a CORS preflight (which the
//! guard refuses) nor make the browser send the cookie at all (SameSite=Strict).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::guard::Guard;
use super::wire::ErrorResponse;

/// The session cookie's name.
pub const COOKIE: &str = "netbridge_session";
/// The header a cookie-authenticated state-changing request must carry (any value).
pub const CSRF_HEADER: &str = "x-netbridge-csrf";
/// How long a login code lives if unused.
const CODE_TTL: Duration = Duration::from_secs(120);
/// How long a session lives.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Login codes and sessions in force (in memory: a restart logs every browser out).
#[derive(Default)]
pub struct Sessions {
    codes: Mutex<HashMap<String, Instant>>,
    sessions: Mutex<HashMap<String, Instant>>,
    /// `http://127.0.0.1:2375` or `https://…`: where the TCP listener is, for login URLs.
    pub login_base: Option<String>,
    /// Cookies get `Secure` when the listener speaks TLS.
    pub secure: bool,
}

fn secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes `key` from `map` if it is there and unexpired; drops expired entries on the way.
fn take_live(map: &Mutex<HashMap<String, Instant>>, key: &str, remove: bool) -> bool {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    m.retain(|_, expiry| *expiry > now);
    if remove {
        m.remove(key).is_some()
    } else {
        m.contains_key(key)
    }
}

impl Sessions {
    /// Sessions for the TCP listener at `addr` (an unspecified address is reached as loopback).
    pub fn for_listener(addr: Option<std::net::SocketAddr>, tls: bool) -> Sessions {
        let login_base = addr.map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("{}://{a}", if tls { "https" } else { "http" })
        });
        Sessions {
            login_base,
            secure: tls,
            ..Sessions::default()
        }
    }

    /// A new one-time login code.
    pub fn mint_code(&self) -> String {
        let code = secret();
        let mut m = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(code.clone(), Instant::now() + CODE_TTL);
        code
    }

    /// Spends a login code: true once, for a code minted and not yet expired.
    pub fn redeem(&self, code: &str) -> bool {
        take_live(&self.codes, code, true)
    }

    pub fn open(&self) -> String {
        let id = secret();
        let mut m = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(id.clone(), Instant::now() + SESSION_TTL);
        id
    }

    pub fn is_live(&self, id: &str) -> bool {
        take_live(&self.sessions, id, false)
    }

    pub fn close(&self, id: &str) {
        take_live(&self.sessions, id, true);
    }

    fn cookie(&self, id: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }
}

/// The session ID a request's cookie carries, if any.
pub fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Paths that do their own authentication (or need none: the login page's stylesheet),
/// before any session exists.
pub fn is_login_path(path: &str) -> bool {
    matches!(path, "/ui/login" | "/ui/logout" | "/ui/style.css")
}

#[derive(Serialize, ToSchema)]
pub struct LoginCode {
    /// Open this in a browser: it logs in once, then the code is spent.
    #[serde(rename = "Url")]
    pub url: String,
    /// Seconds the code stays valid if unused.
    #[serde(rename = "ExpiresIn")]
    pub expires_in: u64,
}

/// A one-time login URL for the dashboard (`/ui/`) and docs on the TCP listener. The code in it
/// dies at first use or after two minutes, and opens a browser session (an HttpOnly,
/// SameSite=Strict cookie). `netbridge login-url` asks for one over the Unix socket.
#[utoipa::path(post, path = "/netbridge/login-code", tag = "netbridge", operation_id = "LoginCode",
    responses((status = 201, description = "A one-time login URL", body = LoginCode),
        (status = 409, description = "No TCP listener to log in to", body = ErrorResponse)))]
pub async fn login_code(
    axum::Extension(sessions): axum::Extension<Arc<Sessions>>,
) -> Result<(StatusCode, Json<LoginCode>), ApiError> {
    let Some(base) = &sessions.login_base else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this daemon has no TCP listener for a browser: start it with --tcp 127.0.0.1:PORT \
             and --token-file",
        ));
    };
    let code = sessions.mint_code();
    Ok((
        StatusCode::CREATED,
        Json(LoginCode {
            url: format!("{base}/ui/login?code={code}"),
            expires_in: CODE_TTL.as_secs(),
        }),
    ))
}

/// `/ui/login` and `/ui/logout`, which need the guard's tokens and sessions.
pub fn router(guard: Arc<Guard>) -> Router {
    Router::new()
        .route("/ui/login", get(login_link).post(login_form))
        .route("/ui/logout", post(logout))
        .with_state(guard)
}

#[derive(Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

/// A login link (spends its code) or, without a code, the token form.
async fn login_link(State(g): State<Arc<Guard>>, Query(q): Query<CodeQuery>) -> Response {
    match q.code {
        Some(code) if g.sessions.redeem(&code) => logged_in(&g.sessions),
        Some(_) => login_page(
            StatusCode::UNAUTHORIZED,
            "This login link is invalid, already used or expired. Run netbridge login-url for a new one.",
        ),
        None if g.tokens.is_none() => redirect("/ui/", None),
        None => login_page(StatusCode::OK, ""),
    }
}

/// The token form's post: the token is compared, never kept.
async fn login_form(State(g): State<Arc<Guard>>, req: Request) -> Response {
    let Ok(body) = axum::body::to_bytes(req.into_body(), 16 * 1024).await else {
        return login_page(StatusCode::PAYLOAD_TOO_LARGE, "The form was too large.");
    };
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let accepted = match &g.tokens {
        Some(tokens) => tokens.check(token.as_bytes()).is_some(),
        None => true,
    };
    if accepted {
        logged_in(&g.sessions)
    } else {
        login_page(StatusCode::UNAUTHORIZED, "Invalid token.")
    }
}

async fn logout(State(g): State<Arc<Guard>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_of(&headers) {
        g.sessions.close(id);
    }
    redirect("/ui/login", Some(g.sessions.cookie("", 0)))
}

fn logged_in(sessions: &Sessions) -> Response {
    let id = sessions.open();
    redirect("/ui/", Some(sessions.cookie(&id, SESSION_TTL.as_secs())))
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

const LOGIN_HTML: &str = include_str!("../../../ui/login.html");

/// The token form, with `message` shown above it (plain HTML, no script).
fn login_page(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = LOGIN_HTML.replace("{{message}}", &escaped);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_die_at_first_use() {
        let s = Sessions::default();
        let code = s.mint_code();
        assert!(s.redeem(&code));
        assert!(!s.redeem(&code));
        assert!(!s.redeem("nope"));
        let id = s.open();
        assert!(s.is_live(&id));
        s.close(&id);
        assert!(!s.is_live(&id));
    }

    #[test]
    fn tls_listeners_get_https_links_and_secure_cookies() {
        let tls = Sessions::for_listener("0.0.0.0:2376".parse().ok(), true);
        assert_eq!(tls.login_base.as_deref(), Some("https://127.0.0.1:2376"));
        assert!(tls.cookie("x", 5).ends_with("; Secure"));
        let plain = Sessions::for_listener("127.0.0.1:2375".parse().ok(), false);
        assert_eq!(plain.login_base.as_deref(), Some("http://127.0.0.1:2375"));
        assert!(!plain.cookie("x", 5).contains("Secure"));
        assert_eq!(Sessions::for_listener(None, false).login_base, None);
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; netbridge_session=abc; c=d"),
        );
        assert_eq!(session_of(&h), Some("abc"));
        assert!(
            Sessions::default()
                .cookie("x", 5)
                .contains("HttpOnly; SameSite=Strict")
        );
    }
}
