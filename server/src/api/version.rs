//! API versions: the `/v1.NN` prefix every route also lives under, and the headers the docker
//! CLI negotiates with.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The newest API version whose shapes netbridge serves (what bare paths mean).
pub const MAX: ApiVersion = ApiVersion {
    major: 1,
    minor: 55,
};
/// The oldest prefix accepted, as Docker 29 by default.
pub const MIN: ApiVersion = ApiVersion {
    major: 1,
    minor: 40,
};

/// The API version a request was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// The major and minor parts of a prefix Docker accepted ([`check`] has passed).
    fn from_parts(parts: &[i64]) -> ApiVersion {
        let part = |i: usize| u32::try_from(parts.get(i).copied().unwrap_or(0)).unwrap_or(u32::MAX);
        ApiVersion {
            major: part(0),
            minor: part(1),
        }
    }

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion { major, minor }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A prefix's version as Docker compares it: dot-separated numbers where an empty part is 0 and
/// an overflowing one saturates (Go's `strconv.Atoi`), so `1.55.0` is 1.55 and `1..41` is 1.0.41.
fn parts(text: &str) -> Vec<i64> {
    text.split('.')
        .map(|p| {
            if p.is_empty() {
                0
            } else {
                p.parse().unwrap_or(i64::MAX)
            }
        })
        .collect()
}

/// Docker's version order: part by part, missing parts counting as 0.
fn compare(a: &[i64], b: &[i64]) -> std::cmp::Ordering {
    (0..a.len().max(b.len()))
        .map(|i| {
            let (x, y) = (a.get(i).unwrap_or(&0), b.get(i).unwrap_or(&0));
            x.cmp(y)
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// A prefix outside [MIN, MAX]. Docker checks it only once a route matched (an unknown path
/// stays 404), so it travels to [`refuse_unsupported`] rather than being answered at once.
#[derive(Clone, Debug)]
pub struct Unsupported {
    message: String,
    /// Below 1.24 Docker answers in plain text, for clients too old to read a JSON error.
    plain: bool,
}

/// Checks a prefix's version against [MIN, MAX], with Docker's texts.
fn check(text: &str) -> Result<ApiVersion, Unsupported> {
    let v = parts(text);
    let bound = |b: ApiVersion| [i64::from(b.major), i64::from(b.minor)];
    if compare(&v, &bound(MIN)).is_lt() {
        return Err(Unsupported {
            message: format!(
                "client version {text} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version"
            ),
            plain: compare(&v, &[1, 24]).is_lt(),
        });
    }
    if compare(&v, &bound(MAX)).is_gt() {
        return Err(Unsupported {
            message: format!(
                "client version {text} is too new. Maximum supported API version is {MAX}"
            ),
            plain: false,
        });
    }
    Ok(ApiVersion::from_parts(&v))
}

/// Runs on matched routes only: answers a request whose prefix [`negotiate`] found outside the
/// supported range.
pub async fn refuse_unsupported(req: Request, next: Next) -> Response {
    match req.extensions().get::<Unsupported>() {
        None => next.run(req).await,
        Some(u) if u.plain => (
            StatusCode::BAD_REQUEST,
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{}\n", u.message),
        )
            .into_response(),
        Some(u) => ApiError::bad_request(u.message.clone()).into_response(),
    }
}

/// Splits `/v1.44/networks` into ("1.44", "/networks"); Docker's prefix is `/v[0-9.]+`.
fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    if version.is_empty() || !version.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    Some((version, tail))
}

/// Runs before routing: answers OPTIONS, strips and checks the version prefix, records the
/// version for the handlers, and stamps Docker's headers on every response.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let mut response = route(req, next).await;
    stamp(response.headers_mut());
    response
}

async fn route(mut req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    let mut version = MAX;
    let path = req.uri().path().to_string();
    let mut tail = path.as_str();
    if let Some((text, rest)) = split_prefix(&path) {
        match check(text) {
            Ok(v) => version = v,
            Err(unsupported) => {
                req.extensions_mut().insert(unsupported);
            }
        }
        tail = if rest.is_empty() { "/" } else { rest };
    }
    let rewritten = super::paths::rewrite(req.method(), tail);
    if rewritten.is_some() || tail != path {
        let tail = rewritten.as_deref().unwrap_or(tail);
        let uri = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        match uri.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return ApiError::not_found_page().into_response(),
        }
    }
    req.extensions_mut().insert(version);
    next.run(req).await
}

fn stamp(headers: &mut HeaderMap) {
    headers.insert("Api-Version", HeaderValue::from_static("1.55"));
    headers.insert(
        "Server",
        HeaderValue::from_static(concat!("netbridge/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("/v1.44/networks"), Some(("1.44", "/networks")));
        assert_eq!(split_prefix("/v1.55"), Some(("1.55", "")));
        assert_eq!(split_prefix("/version"), None);
        assert_eq!(split_prefix("/networks"), None);
        assert_eq!(split_prefix("/v1.x/networks"), None);
    }

    #[test]
    fn versions_compare_as_docker_does() {
        let v = |t: &str| check(t).map_err(|e| e.message);
        assert_eq!(
            v("1.44"),
            Ok(ApiVersion {
                major: 1,
                minor: 44
            })
        );
        assert_eq!(v("1.55.0").map(|v| v.minor), Ok(55));
        assert_eq!(v("1.41.").map(|v| v.minor), Ok(41));
        assert!(v("1.55.1").unwrap_err().contains("too new"));
        assert!(v("1.99999999999999999999").unwrap_err().contains("too new"));
        assert!(v("1..41").unwrap_err().contains("too old"));
        assert!(check("1").is_err_and(|e| e.plain));
        assert!(check("1.39").is_err_and(|e| !e.plain));
        assert!(ApiVersion::from_parts(&[1, 9]) < ApiVersion::from_parts(&[1, 40]));
    }

    #[test]
    fn max_header_matches_constant() {
        assert_eq!(MAX.to_string(), "1.55");
    }
}
