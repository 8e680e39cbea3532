//! Request extractors that fail the way Docker does: a JSON body checked for its Content-Type
//! and decoded strictly, and query parameters.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body accepted; Docker's network requests are a few hundred bytes.
const BODY_LIMIT: usize = super::guard::BODY_LIMIT as usize;
/// How long a client may take to send its body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A JSON body: an empty body (or `null`) is the default value; a non-JSON Content-Type, bad
/// JSON and trailing data are each refused with Docker's 400 text.
pub struct DockerJson<T>(pub T);

impl<S, T> FromRequest<S> for DockerJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        // A client that trickles its body cannot hold a connection (and a permit) for long.
        let read = axum::body::to_bytes(req.into_body(), BODY_LIMIT);
        let body = tokio::time::timeout(BODY_TIMEOUT, read)
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time",
                )
            })?
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is too large or unreadable: {e}"),
                )
            })?;
        decode(content_type.as_deref(), &body).map(DockerJson)
    }
}

fn decode<T: DeserializeOwned + Default>(
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<T, ApiError> {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if blank && content_type.is_none_or(str::is_empty) {
        return Ok(T::default());
    }
    if let Some(ct) = content_type {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::bad_request(format!(
                "unsupported Content-Type header ({ct}): must be 'application/json'"
            )));
        }
    } else {
        return Err(ApiError::bad_request(
            "unsupported Content-Type header (): must be 'application/json'",
        ));
    }
    if blank {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: serde_json::Value = serde::Deserialize::deserialize(&mut de)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    if de.end().is_err() {
        return Err(ApiError::bad_request("unexpected content after JSON"));
    }
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Query parameters as a map (last value wins); never rejects.
pub struct QueryMap(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryMap(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A Go-syntax boolean parameter; absent or empty is `false`.
    pub fn go_bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some(v) => crate::model::parse_go_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v}: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug)]
    struct Body {
        #[serde(rename = "Name", default)]
        name: String,
    }

    fn run(ct: Option<&str>, body: &str) -> Result<Body, String> {
        decode::<Body>(ct, &Bytes::from(body.to_string())).map_err(|e| e.message)
    }

    #[test]
    fn empty_body_is_default() {
        assert_eq!(run(None, "").unwrap().name, "");
        assert_eq!(run(Some("application/json"), "null").unwrap().name, "");
    }

    #[test]
    fn content_type_must_be_json() {
        assert_eq!(
            run(Some("text/plain"), "{}").unwrap_err(),
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        assert!(run(Some("application/json; charset=utf-8"), r#"{"Name":"a"}"#).is_ok());
    }

    #[test]
    fn bad_json_and_trailing_data() {
        assert!(
            run(Some("application/json"), "{")
                .unwrap_err()
                .starts_with("invalid JSON: ")
        );
        assert_eq!(
            run(Some("application/json"), "{} {}").unwrap_err(),
            "unexpected content after JSON"
        );
        assert!(
            run(Some("application/json"), r#"{"Name":5}"#)
                .unwrap_err()
                .starts_with("invalid JSON: ")
        );
    }
}
