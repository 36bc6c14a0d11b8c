//! The server's one error type, [`ApiError`], and the one place where errors
//! become HTTP responses.
//!
//! Kinto clients read error bodies (`code`, `errno`, `error`, `message`,
//! `info`, `details`), so those bodies are API: every constructor here
//! produces exactly what Kinto 26.5 answers in the same situation (checked
//! against the reference server, spec `api-core.md` section 19). The mapping
//! from error to HTTP status, `errno` and `error` title lives in one
//! function, [`ApiError::code`]; nothing else in the server picks a status
//! for an error.
//!
//! Internal causes (I/O errors, bugs) are logged once, when the error is
//! built by [`ApiError::internal`], and never sent to the client.
//!
//! The module also holds [`python_str`]: Kinto words many validation
//! messages with Python's `str()` of the offending value (`True`, `None`,
//! `{'a': 1}`), and we reproduce those words.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::header::{
    HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, ETAG, LAST_MODIFIED, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::StatusCode;
use serde_json::{json, Map, Value};

/// Kinto's application error numbers (spec section 19, `kinto.core.errors.ERRORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Errno {
    MissingAuthToken = 104,
    InvalidAuthToken = 105,
    BadJson = 106,
    InvalidParameters = 107,
    MissingParameters = 108,
    InvalidPostedData = 109,
    InvalidResourceId = 110,
    MissingResource = 111,
    MissingContentLength = 112,
    RequestTooLarge = 113,
    ModifiedMeanwhile = 114,
    MethodNotAllowed = 115,
    VersionNotAvailable = 116,
    ClientReachedCapacity = 117,
    Forbidden = 121,
    ConstraintViolated = 122,
    Backend = 201,
    ServiceDeprecated = 202,
    Undefined = 999,
}

/// Where an invalid parameter was found (the `location` of a detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Querystring,
    Header,
    Path,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Querystring => "querystring",
            Location::Header => "header",
            Location::Path => "path",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the `details` list of a 400/406/415 (errno 107) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDetail {
    pub location: Location,
    /// `None` is rendered as JSON `null`; Kinto also uses `""` (malformed JSON).
    pub name: Option<String>,
    pub description: String,
}

impl InvalidDetail {
    pub fn new(location: Location, name: Option<&str>, description: impl Into<String>) -> Self {
        InvalidDetail {
            location,
            name: name.map(str::to_owned),
            description: description.into(),
        }
    }

    /// The message Kinto derives from one detail (`json_error_handler`):
    /// the description alone when it already mentions the name, else
    /// `"{name} in {location}: {description}"`, or `"{location}: {description}"`
    /// when there is no name.
    fn message(&self) -> String {
        match &self.name {
            Some(name) if self.description.contains(name.as_str()) => self.description.clone(),
            Some(name) => format!("{name} in {}: {}", self.location, self.description),
            None => format!("{}: {}", self.location, self.description),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "location": self.location.as_str(),
            "name": self.name,
            "description": self.description,
        })
    }
}

/// Kinto's default `error_info_link`, sent as `info` with every 500.
const ERROR_INFO_LINK: &str = "https://github.com/Kinto/kinto/issues/";
/// The challenge sent with every 401 (one per auth policy: we have Basic Auth only).
const WWW_AUTHENTICATE_BASIC: &str = "Basic realm=\"Realm\"";

/// Every error the HTTP API answers with. Build them with the constructors
/// below (they carry Kinto's exact wording); turn them into responses with
/// [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// errno 107 with a `details` list. `status` is 400, 406 (Accept) or 415
    /// (Content-Type): Kinto reports all three as "Invalid parameters".
    #[error("{message}")]
    InvalidParameters {
        status: StatusCode,
        message: String,
        details: Vec<InvalidDetail>,
    },
    #[error("Please authenticate yourself to use this endpoint.")]
    Unauthorized,
    #[error("This user cannot access this resource.")]
    Forbidden,
    /// The object addressed by the last path segment does not exist (errno 110).
    #[error("{resource_name} {id} not found")]
    NotFound { resource_name: String, id: String },
    /// A parent object in the path does not exist (errno 111).
    #[error("parent {resource_name} {id} not found")]
    MissingParent { resource_name: String, id: String },
    #[error("The resource you are looking for could not be found.")]
    UnknownUrl,
    #[error("The requested API version is not available on this server.")]
    VersionUnavailable,
    #[error("Method not allowed on this endpoint.")]
    MethodNotAllowed { allow: &'static str },
    /// `existing`: the current object's data, only when it exists and the
    /// caller may read it. `current_timestamp` goes to `ETag`/`Last-Modified`.
    #[error("Resource was modified meanwhile")]
    PreconditionFailed {
        existing: Option<Value>,
        current_timestamp: u64,
    },
    #[error("Integrity constraint violated, please retry.")]
    Conflict { retry_after_secs: u64 },
    #[error("Request body too large.")]
    RequestTooLarge,
    /// The end-of-service date (setting `eos`) has passed.
    #[error("{message}")]
    ServiceEnded { message: String, alert: String },
    /// The cause was logged by [`ApiError::internal`] and is not kept.
    #[error("A programmatic error occurred, developers have been informed.")]
    Internal,
    #[error(
        "Service temporary unavailable due to overloading or maintenance, please retry later."
    )]
    Unavailable { retry_after_secs: u64 },
}

impl ApiError {
    /// 400, errno 107, one detail. Message as Kinto words it, e.g.
    /// `"permissions in body: \"bogus\" is not one of read, write"` or
    /// `"path: Invalid object id"`.
    pub fn invalid(location: Location, name: Option<&str>, description: impl Into<String>) -> Self {
        Self::invalid_details(vec![InvalidDetail::new(location, name, description)])
    }

    /// 400, errno 107, several details. As Kinto: the message describes the
    /// first detail after sorting by name (`None` sorts as Python's `"None"`);
    /// `details` keeps the given order.
    pub fn invalid_details(details: Vec<InvalidDetail>) -> Self {
        Self::invalid_with_status(StatusCode::BAD_REQUEST, details)
    }

    fn invalid_with_status(status: StatusCode, details: Vec<InvalidDetail>) -> Self {
        let message = details
            .iter()
            .min_by(|a, b| sort_key(a).cmp(sort_key(b)))
            .map(InvalidDetail::message)
            .unwrap_or_default();
        ApiError::InvalidParameters {
            status,
            message,
            details,
        }
    }

    /// A request body that is not JSON (malformed, invalid UTF-8, `NaN`):
    /// 400, errno 107 (not 106), message `"Invalid JSON: {reason}"`. The
    /// reference also lists a second detail, `"Required"` (the body it could
    /// not read), which we reproduce.
    pub fn invalid_json(reason: impl Into<String>) -> Self {
        let description = format!("Invalid JSON: {}", reason.into());
        Self::invalid_details(vec![
            InvalidDetail::new(Location::Body, Some(""), description),
            InvalidDetail::new(Location::Body, Some(""), "Required"),
        ])
    }

    /// 401, errno 104, with `WWW-Authenticate: Basic realm="Realm"`.
    pub fn unauthorized() -> Self {
        ApiError::Unauthorized
    }

    /// 403, errno 121.
    pub fn forbidden() -> Self {
        ApiError::Forbidden
    }

    /// 404, errno 110, `details: {id, resource_name}` and no `message`.
    pub fn not_found(resource_name: &str, id: &str) -> Self {
        ApiError::NotFound {
            resource_name: resource_name.to_owned(),
            id: id.to_owned(),
        }
    }

    /// 404, errno 111, `details: {id, resource_name}` and no `message`: a
    /// parent in the path is missing (or its id is invalid), e.g. records of
    /// a missing collection.
    pub fn missing_parent(resource_name: &str, id: &str) -> Self {
        ApiError::MissingParent {
            resource_name: resource_name.to_owned(),
            id: id.to_owned(),
        }
    }

    /// 404, errno 111: no route for this URL under `/v1`.
    pub fn unknown_url() -> Self {
        ApiError::UnknownUrl
    }

    /// 404, errno 116: a path outside `/v1` (e.g. `/v2/buckets`).
    pub fn version_unavailable() -> Self {
        ApiError::VersionUnavailable
    }

    /// 405, errno 115, with `Allow: {allow}` (e.g. `"HEAD, GET, POST, DELETE, OPTIONS"`).
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError::MethodNotAllowed { allow }
    }

    /// 406, errno 107: the `Accept` header excludes JSON.
    pub fn not_acceptable() -> Self {
        let description = "Accept header should be one of ['application/json']";
        Self::invalid_with_status(
            StatusCode::NOT_ACCEPTABLE,
            vec![InvalidDetail::new(
                Location::Header,
                Some("Accept"),
                description,
            )],
        )
    }

    /// 415, errno 107: missing or unsupported `Content-Type`. `allowed` is
    /// listed as Python prints a list: `['application/json']`. For PATCH the
    /// reference lists `['application/merge-patch+json', 'application/json',
    /// 'application/json-patch+json']`.
    pub fn unsupported_media_type(allowed: &[&str]) -> Self {
        let list = allowed
            .iter()
            .map(|a| python_repr_str(a))
            .collect::<Vec<_>>()
            .join(", ");
        let description = format!("Content-Type header should be one of [{list}]");
        Self::invalid_with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            vec![InvalidDetail::new(
                Location::Header,
                Some("Content-Type"),
                description,
            )],
        )
    }

    /// 412, errno 114, `details: {existing}` only when `existing` is given;
    /// `ETag` and `Last-Modified` carry `current_timestamp`.
    pub fn precondition_failed(existing: Option<Value>, current_timestamp: u64) -> Self {
        ApiError::PreconditionFailed {
            existing,
            current_timestamp,
        }
    }

    /// 409, errno 122, with `Retry-After` (Kinto's answer to a storage
    /// integrity error; Cairn's sequencer should never need it).
    pub fn conflict(retry_after_secs: u64) -> Self {
        ApiError::Conflict { retry_after_secs }
    }

    /// 413, errno 113: the body exceeds the server's limit. (The reference
    /// never answers this: its limit is 1 GiB; the message is ours.)
    pub fn request_too_large() -> Self {
        ApiError::RequestTooLarge
    }

    /// 410, errno 202: the service reached its end of life; `alert` is the
    /// `Alert` header's JSON (`hard-eol`).
    pub fn service_ended(message: impl Into<String>, alert: impl Into<String>) -> Self {
        ApiError::ServiceEnded {
            message: message.into(),
            alert: alert.into(),
        }
    }

    /// 500, errno 999. Logs `cause` once; the client only gets Kinto's
    /// generic message and `info` link.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ApiError::Internal
    }

    /// 503, errno 201, with `Retry-After: {retry_after_secs}`.
    pub fn unavailable(retry_after_secs: u64) -> Self {
        ApiError::Unavailable { retry_after_secs }
    }

    /// The one table: HTTP status, errno and `error` title of each error.
    /// Titles are those of the reference (WebOb's reason phrases, and
    /// "Invalid parameters" for every errno-107 answer).
    fn code(&self) -> (StatusCode, Errno, &'static str) {
        match self {
            ApiError::InvalidParameters { status, .. } => {
                (*status, Errno::InvalidParameters, "Invalid parameters")
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Errno::MissingAuthToken,
                "Unauthorized",
            ),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, Errno::Forbidden, "Forbidden"),
            ApiError::NotFound { .. } => {
                (StatusCode::NOT_FOUND, Errno::InvalidResourceId, "Not Found")
            }
            ApiError::MissingParent { .. } | ApiError::UnknownUrl => {
                (StatusCode::NOT_FOUND, Errno::MissingResource, "Not Found")
            }
            ApiError::VersionUnavailable => (
                StatusCode::NOT_FOUND,
                Errno::VersionNotAvailable,
                "Not Found",
            ),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                Errno::MethodNotAllowed,
                "Method Not Allowed",
            ),
            ApiError::PreconditionFailed { .. } => (
                StatusCode::PRECONDITION_FAILED,
                Errno::ModifiedMeanwhile,
                "Precondition Failed",
            ),
            ApiError::Conflict { .. } => {
                (StatusCode::CONFLICT, Errno::ConstraintViolated, "Conflict")
            }
            ApiError::RequestTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Errno::RequestTooLarge,
                "Request Entity Too Large",
            ),
            ApiError::ServiceEnded { .. } => (StatusCode::GONE, Errno::ServiceDeprecated, "Gone"),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Errno::Undefined,
                "Internal Server Error",
            ),
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                Errno::Backend,
                "Service Unavailable",
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().0
    }

    pub fn errno(&self) -> u16 {
        self.code().1 as u16
    }

    /// The `message` of the body, if it has one (404 object errors have none).
    fn message(&self) -> Option<String> {
        match self {
            ApiError::NotFound { .. } | ApiError::MissingParent { .. } => None,
            other => Some(other.to_string()),
        }
    }

    /// The exact Kinto JSON body, keys in Kinto's order:
    /// `code, errno, error, message, info, details` (absent ones left out).
    pub fn body(&self) -> Value {
        let (status, errno, title) = self.code();
        let mut body = Map::new();
        body.insert("code".into(), json!(status.as_u16()));
        body.insert("errno".into(), json!(errno as u16));
        body.insert("error".into(), json!(title));
        if let Some(message) = self.message() {
            body.insert("message".into(), json!(message));
        }
        if let ApiError::Internal = self {
            body.insert("info".into(), json!(ERROR_INFO_LINK));
        }
        let details = match self {
            ApiError::InvalidParameters { details, .. } => Some(Value::Array(
                details.iter().map(InvalidDetail::to_json).collect(),
            )),
            ApiError::NotFound { resource_name, id }
            | ApiError::MissingParent { resource_name, id } => {
                Some(json!({"id": id, "resource_name": resource_name}))
            }
            ApiError::PreconditionFailed {
                existing: Some(existing),
                ..
            } => Some(json!({"existing": existing})),
            _ => None,
        };
        if let Some(details) = details {
            body.insert("details".into(), details);
        }
        Value::Object(body)
    }

    /// Headers the error carries besides `Content-Type`.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            ApiError::Unauthorized => vec![(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE_BASIC),
            )],
            ApiError::MethodNotAllowed { allow } => vec![(ALLOW, HeaderValue::from_static(allow))],
            ApiError::PreconditionFailed {
                current_timestamp, ..
            } => vec![
                (ETAG, header_value(crate::headers::etag(*current_timestamp))),
                (
                    LAST_MODIFIED,
                    header_value(crate::headers::http_date(*current_timestamp)),
                ),
            ],
            ApiError::Conflict { retry_after_secs }
            | ApiError::Unavailable { retry_after_secs } => {
                vec![(RETRY_AFTER, HeaderValue::from(*retry_after_secs))]
            }
            ApiError::ServiceEnded { alert, .. } => {
                vec![(
                    HeaderName::from_static("alert"),
                    header_value(alert.clone()),
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// Header values we format ourselves are ASCII; fall back to an empty value
/// rather than panic should that ever change.
fn header_value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Python sorts details by `str(name)`: `None` becomes `"None"`.
fn sort_key(detail: &InvalidDetail) -> &str {
    detail.name.as_deref().unwrap_or("None")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body().to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
        response
    }
}

/// Python's `str()` of a JSON value, as it appears in Kinto's messages:
/// strings as they are, everything else as Python's `repr()` of what
/// Python's JSON parser would have produced (`True`, `None`, `1e+20`,
/// `{'a': [1, 'x']}`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a JSON value.
pub fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                n.as_f64()
                    .map(python_float_repr)
                    .unwrap_or_else(|| n.to_string())
            }
        }
        Value::String(s) => python_repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_repr_str(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text contains a
/// single quote and no double quote; control characters escaped.
pub fn python_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a float: shortest round-trip digits, positional
/// between 1e-4 and 1e16, else scientific with a signed two-digit exponent.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    if !(-4..16).contains(&exponent) {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if exponent >= 0 {
        let int_len = exponent as usize + 1;
        if digits.len() <= int_len {
            format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn invalid_with_name_and_without() {
        let e = ApiError::invalid(
            Location::Body,
            Some("permissions"),
            "\"bogus\" is not one of read, write",
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.errno(), 107);
        assert_eq!(
            e.body(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "permissions in body: \"bogus\" is not one of read, write",
                   "details": [{"location": "body", "name": "permissions",
                                "description": "\"bogus\" is not one of read, write"}]})
        );
        let e = ApiError::invalid(Location::Path, None, "Invalid object id");
        assert_eq!(
            e.body(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "path: Invalid object id",
                   "details": [{"location": "path", "name": null, "description": "Invalid object id"}]})
        );
    }

    #[test]
    fn invalid_message_is_the_description_when_it_names_the_parameter() {
        // As the reference answers `?_since=` (empty).
        let e = ApiError::invalid(
            Location::Querystring,
            Some("_since"),
            "Invalid value for _since",
        );
        assert_eq!(
            e.body(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "Invalid value for _since",
                   "details": [{"location": "querystring", "name": "_since",
                                "description": "Invalid value for _since"}]})
        );
    }

    #[test]
    fn several_details_message_from_first_sorted_by_name() {
        let e = ApiError::invalid_details(vec![
            InvalidDetail::new(
                Location::Body,
                Some("permissions.write.0"),
                "1 is not a string: {'': ''}",
            ),
            InvalidDetail::new(Location::Body, Some("permissions.read.0"), "Required"),
        ]);
        assert_eq!(
            e.body(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "permissions.read.0 in body: Required",
                   "details": [
                       {"location": "body", "name": "permissions.write.0", "description": "1 is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.read.0", "description": "Required"}]})
        );
    }

    #[test]
    fn invalid_json_body_as_reference() {
        let e = ApiError::invalid_json("Parse error at offset 1: Invalid value.");
        assert_eq!(
            e.body(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "Invalid JSON: Parse error at offset 1: Invalid value.",
                   "details": [
                       {"location": "body", "name": "", "description": "Invalid JSON: Parse error at offset 1: Invalid value."},
                       {"location": "body", "name": "", "description": "Required"}]})
        );
    }

    #[test]
    fn unauthorized_body_and_challenge() {
        let e = ApiError::unauthorized();
        assert_eq!(
            e.body(),
            json!({"code": 401, "errno": 104, "error": "Unauthorized",
                   "message": "Please authenticate yourself to use this endpoint."})
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some("Basic realm=\"Realm\"")
        );
        assert_eq!(header(&response, "content-type"), Some("application/json"));
    }

    #[test]
    fn forbidden_body() {
        assert_eq!(
            ApiError::forbidden().body(),
            json!({"code": 403, "errno": 121, "error": "Forbidden",
                   "message": "This user cannot access this resource."})
        );
    }

    #[test]
    fn not_found_has_details_and_no_message() {
        let e = ApiError::not_found("record", "missing");
        assert_eq!(e.errno(), 110);
        assert_eq!(
            e.body(),
            json!({"code": 404, "errno": 110, "error": "Not Found",
                   "details": {"id": "missing", "resource_name": "record"}})
        );
        let e = ApiError::missing_parent("collection", "missing");
        assert_eq!(
            e.body(),
            json!({"code": 404, "errno": 111, "error": "Not Found",
                   "details": {"id": "missing", "resource_name": "collection"}})
        );
    }

    #[test]
    fn unknown_url_and_version() {
        assert_eq!(
            ApiError::unknown_url().body(),
            json!({"code": 404, "errno": 111, "error": "Not Found",
                   "message": "The resource you are looking for could not be found."})
        );
        assert_eq!(
            ApiError::version_unavailable().body(),
            json!({"code": 404, "errno": 116, "error": "Not Found",
                   "message": "The requested API version is not available on this server."})
        );
    }

    #[test]
    fn method_not_allowed_with_allow_header() {
        let e = ApiError::method_not_allowed("HEAD, GET, POST, DELETE, OPTIONS");
        assert_eq!(
            e.body(),
            json!({"code": 405, "errno": 115, "error": "Method Not Allowed",
                   "message": "Method not allowed on this endpoint."})
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            header(&response, "allow"),
            Some("HEAD, GET, POST, DELETE, OPTIONS")
        );
    }

    #[test]
    fn not_acceptable_and_unsupported_media_type() {
        let e = ApiError::not_acceptable();
        assert_eq!(e.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            e.body(),
            json!({"code": 406, "errno": 107, "error": "Invalid parameters",
                   "message": "Accept header should be one of ['application/json']",
                   "details": [{"location": "header", "name": "Accept",
                                "description": "Accept header should be one of ['application/json']"}]})
        );
        let e = ApiError::unsupported_media_type(&["application/json"]);
        assert_eq!(
            e.body(),
            json!({"code": 415, "errno": 107, "error": "Invalid parameters",
                   "message": "Content-Type header should be one of ['application/json']",
                   "details": [{"location": "header", "name": "Content-Type",
                                "description": "Content-Type header should be one of ['application/json']"}]})
        );
        let patch = [
            "application/merge-patch+json",
            "application/json",
            "application/json-patch+json",
        ];
        let e = ApiError::unsupported_media_type(&patch);
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            e.body()["message"],
            json!("Content-Type header should be one of ['application/merge-patch+json', 'application/json', 'application/json-patch+json']")
        );
    }

    #[test]
    fn precondition_failed_with_and_without_existing() {
        let existing = json!({"x": 1, "id": "r1", "last_modified": 1795698126510u64});
        let e = ApiError::precondition_failed(Some(existing.clone()), 1795698126510);
        assert_eq!(
            e.body(),
            json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                   "message": "Resource was modified meanwhile",
                   "details": {"existing": existing}})
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(header(&response, "etag"), Some("\"1795698126510\""));
        assert_eq!(
            header(&response, "last-modified"),
            Some("Thu, 26 Nov 2026 13:02:06 GMT")
        );

        assert_eq!(
            ApiError::precondition_failed(None, 1).body(),
            json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                   "message": "Resource was modified meanwhile"})
        );
    }

    #[test]
    fn internal_never_sends_the_cause() {
        let e = ApiError::internal("disk on fire: /secret/path");
        assert_eq!(
            e.body(),
            json!({"code": 500, "errno": 999, "error": "Internal Server Error",
                   "message": "A programmatic error occurred, developers have been informed.",
                   "info": "https://github.com/Kinto/kinto/issues/"})
        );
        assert!(!e.body().to_string().contains("secret"));
    }

    #[test]
    fn unavailable_and_conflict_carry_retry_after() {
        let e = ApiError::unavailable(3);
        assert_eq!(
            e.body(),
            json!({"code": 503, "errno": 201, "error": "Service Unavailable",
                   "message": "Service temporary unavailable due to overloading or maintenance, please retry later."})
        );
        let response = e.into_response();
        assert_eq!(header(&response, "retry-after"), Some("3"));

        let e = ApiError::conflict(3);
        assert_eq!(
            e.body(),
            json!({"code": 409, "errno": 122, "error": "Conflict",
                   "message": "Integrity constraint violated, please retry."})
        );
        assert_eq!(header(&e.into_response(), "retry-after"), Some("3"));
    }

    #[test]
    fn request_too_large() {
        let e = ApiError::request_too_large();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.errno(), 113);
    }

    #[test]
    fn body_keys_in_kinto_order() {
        let text = ApiError::not_found("record", "x").body().to_string();
        assert_eq!(
            text,
            r#"{"code":404,"errno":110,"error":"Not Found","details":{"id":"x","resource_name":"record"}}"#
        );
        let text = ApiError::internal("x").body().to_string();
        assert!(text.find("\"message\"") < text.find("\"info\""));
    }

    #[test]
    fn response_body_is_the_json_body() {
        let response = ApiError::forbidden().into_response();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("body");
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value, ApiError::forbidden().body());
    }

    #[test]
    fn python_reprs() {
        let v = json!({"a": "it's", "b": [null, true, 1e20, "q\"u"]});
        assert_eq!(
            python_repr(&v),
            r#"{'a': "it's", 'b': [None, True, 1e+20, 'q"u']}"#
        );
        assert_eq!(python_str(&json!("x")), "x");
        assert_eq!(python_str(&json!(["read"])), "['read']");
        assert_eq!(python_str(&json!(false)), "False");
        assert_eq!(python_str(&json!(1)), "1");
        assert_eq!(python_str(&json!(-7)), "-7");
        assert_eq!(python_repr_str("a\nb\\"), r"'a\nb\\'");
        assert_eq!(python_repr_str("both ' and \""), r#"'both \' and "'"#);
        assert_eq!(python_repr_str("é"), "'é'");
    }

    #[test]
    fn python_float_reprs() {
        for (f, expected) in [
            (2.5, "2.5"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-3.25e100, "-3.25e+100"),
            (99999999999999991611392.0, "1e+23"),
        ] {
            assert_eq!(python_float_repr(f), expected, "{f}");
        }
    }
}
