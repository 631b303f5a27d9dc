//! What an admin request can fail with, and the HTTP status each failure answers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::backfill::BackfillError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid {parameter} {value:?}: expected {expected}")]
    InvalidParameter {
        parameter: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("missing query parameter {0:?}")]
    MissingParameter(&'static str),
    #[error("no webhook {0:?}")]
    UnknownWebhook(String),
    /// A form posted from another site: with Basic credentials cached by the browser it
    /// would otherwise act on the admin's behalf.
    #[error("cross-site requests are refused")]
    CrossSite,
    #[error("backfills run in the service (`rowhook run`), which this is not")]
    NoBackfills,
    #[error(transparent)]
    Backfill(#[from] BackfillError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::InvalidParameter { .. } | AdminError::MissingParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            AdminError::UnknownWebhook(_) | AdminError::Store(StoreError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            AdminError::CrossSite => StatusCode::FORBIDDEN,
            AdminError::Store(StoreError::NotRedeliverable { .. }) => StatusCode::CONFLICT,
            AdminError::NoBackfills => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Backfill(BackfillError::NotFound(_)) => StatusCode::NOT_FOUND,
            AdminError::Backfill(BackfillError::Finished { .. }) => StatusCode::CONFLICT,
            AdminError::Backfill(error) if error.is_request_error() => StatusCode::BAD_REQUEST,
            AdminError::Backfill(BackfillError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Backfill(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs failures that are the server's fault; the others are the caller's business.
    pub(super) fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "admin request failed");
        }
    }
}

/// The JSON API's answer: `{"error": "…"}` with the matching status.
impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.log();
        let body = Json(json!({ "error": self.to_string() }));
        (self.status(), body).into_response()
    }
}
