//! The API's one error shape: `{"error": {"code": "...", "message": "..."}}` with a status.
//!
//! Codes are stable words a client can branch on; messages are sentences for a person.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcp_audit_store::StoreError;
use serde_json::json;

/// An error the API answers with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The bad lines of a refused ingest body (`{"line", "problem"}` each), so that a client
    /// can point at each; empty for every other error.
    pub lines: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            lines: Vec::new(),
        }
    }

    /// This error with the bad lines of a refused body.
    pub fn with_lines(mut self, lines: Vec<serde_json::Value>) -> ApiError {
        self.lines = lines;
        self
    }

    /// A request the API cannot take as it is (a malformed filter, an unknown field).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The store failed: the message names the problem but not where the database is.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A read or review that could not be put on record: it is refused rather than done
    /// unrecorded.
    pub fn not_recorded(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_recorded",
            format!("the request could not be put on record, so it was refused: {why}"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::InvalidCursor(cursor) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                format!("`{cursor}` is not a cursor this server handed out"),
            ),
            StoreError::Unavailable { .. } | StoreError::Locked { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                error.to_string(),
            ),
            other => {
                tracing::error!("store error: {other}");
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if !self.lines.is_empty() {
            body["error"]["lines"] = serde_json::Value::Array(self.lines);
        }
        crate::api::json_response(self.status, &body)
    }
}
