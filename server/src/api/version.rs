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
    fn parse(text: &str) -> Option<ApiVersion> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(m) => m.parse().ok()?,
            None => 0,
        };
        if parts.any(|p| p.parse::<u32>().is_err()) {
            return None;
        }
        Some(ApiVersion { major, minor })
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
    if let Some((text, tail)) = split_prefix(&path) {
        let Some(v) = ApiVersion::parse(text) else {
            return ApiError::not_found_page().into_response();
        };
        if v > MAX {
            return ApiError::bad_request(format!(
                "client version {text} is too new. Maximum supported API version is {MAX}"
            ))
            .into_response();
        }
        if v < MIN {
            return ApiError::bad_request(format!(
                "client version {text} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version"
            ))
            .into_response();
        }
        version = v;
        let tail = if tail.is_empty() { "/" } else { tail };
        let rewritten = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        match rewritten.parse::<Uri>() {
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
        assert_eq!(
            ApiVersion::parse("1.44"),
            Some(ApiVersion {
                major: 1,
                minor: 44
            })
        );
        assert!(ApiVersion::parse("1.9") < ApiVersion::parse("1.40"));
        assert_eq!(ApiVersion::parse("1..2"), None);
    }

    #[test]
    fn max_header_matches_constant() {
        assert_eq!(MAX.to_string(), "1.55");
    }
}
