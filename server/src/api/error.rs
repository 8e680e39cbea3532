//! Error → HTTP response, as Docker maps its errdefs classes to status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire::ErrorResponse;
use crate::service;

/// An error on its way to the client: a status and Docker's message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found_page() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> ApiError {
        use service::Error as E;
        let status = match &e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::System(_) | E::Store(_) | E::Kernel { .. } => {
                tracing::error!(error = %e, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorResponse {
            message: self.message,
        })
        .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec());
        // Exactly "application/json": the Go client parses error bodies only for that literal.
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}
