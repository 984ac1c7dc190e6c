//! Errors as RFC 9457 problem details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: an HTTP status and what the caller should know.
#[derive(Debug)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub detail: String,
    /// The record and field to blame, for a refused pack.
    pub record: Option<(usize, String)>,
    /// The form field or query parameter to blame, for a refused form.
    pub field: Option<String>,
}

impl Problem {
    /// A problem with a status and a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            record: None,
            field: None,
        }
    }

    /// 400, naming the form field or query parameter to blame.
    pub fn field(field: &str, detail: impl Into<String>) -> Problem {
        Problem {
            field: Some(field.to_owned()),
            ..Problem::bad_request(detail)
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401.
    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "this needs a token: send `Authorization: Bearer <token>` (fedwatt token create)",
        )
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, detail)
    }

    /// 500; the cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
        tracing::error!("{cause}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the node failed; its log says why",
        )
    }
}

impl From<store::Error> for Problem {
    fn from(e: store::Error) -> Problem {
        match e {
            store::Error::Refused(r) => Problem {
                status: StatusCode::BAD_REQUEST,
                detail: format!("pack refused, nothing stored: {r}"),
                record: Some((r.record, r.field.to_owned())),
                field: None,
            },
            store::Error::InvalidField { field, detail } => Problem::field(field, detail),
            store::Error::Invalid(detail) => Problem::bad_request(detail),
            store::Error::NotFound(detail) => Problem::new(StatusCode::NOT_FOUND, detail),
            store::Error::Conflict(detail) => Problem::new(StatusCode::CONFLICT, detail),
            other => Problem::internal(&other),
        }
    }
}

impl From<senml::Error> for Problem {
    fn from(e: senml::Error) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            detail: format!("pack refused, nothing stored: {e}"),
            record: e.record.map(|i| (i, e.field.clone().unwrap_or_default())),
            field: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some((record, field)) = self.record {
            body["record"] = json!(record);
            if !field.is_empty() {
                body["field"] = json!(field);
            }
        }
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
