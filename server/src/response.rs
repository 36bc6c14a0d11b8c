//! Building responses: JSON bodies, timestamp headers, CORS exposure lists
//! and the security headers Kinto sends on every JSON answer.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::headers::{etag, http_date};

/// Which `Access-Control-Expose-Headers` list an answer carries (spec 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Writes and everything else.
    Basic,
    /// Object GET/HEAD.
    Object,
    /// Plural GET.
    List,
    /// Plural HEAD.
    ListHead,
}

impl Exposure {
    fn headers(self) -> &'static str {
        match self {
            Exposure::Basic => "Alert, Backoff, Retry-After, Content-Type, Content-Length",
            Exposure::Object => "Alert, Backoff, Retry-After, Content-Type, Content-Length, ETag, Last-Modified, Cache-Control, Expires, Pragma",
            Exposure::List => "Alert, Backoff, Retry-After, Content-Type, Content-Length, ETag, Last-Modified, Cache-Control, Expires, Pragma, Next-Page",
            Exposure::ListHead => "Alert, Backoff, Retry-After, Content-Type, Content-Length, ETag, Last-Modified, Cache-Control, Expires, Pragma, Next-Page, Total-Objects, Total-Records",
        }
    }
}

/// A successful answer before it becomes HTTP.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `None`: no body (304).
    pub body: Option<Value>,
    /// For `ETag` and `Last-Modified`.
    pub timestamp: Option<u64>,
    pub exposure: Exposure,
    pub headers: Vec<(HeaderName, String)>,
    /// A body that is not JSON (metrics text, files), sent as it is; its
    /// `Content-Type` is in `headers`.
    pub raw: Option<Vec<u8>>,
}

impl Reply {
    pub fn json(
        status: StatusCode,
        body: Value,
        timestamp: Option<u64>,
        exposure: Exposure,
    ) -> Self {
        Reply {
            status,
            body: Some(body),
            timestamp,
            exposure,
            headers: Vec::new(),
            raw: None,
        }
    }

    /// A non-JSON answer of `content_type`.
    pub fn raw(status: StatusCode, content_type: &str, bytes: Vec<u8>) -> Self {
        Reply {
            status,
            body: None,
            timestamp: None,
            exposure: Exposure::Basic,
            headers: vec![(header::CONTENT_TYPE, content_type.to_owned())],
            raw: Some(bytes),
        }
    }

    pub fn not_modified(timestamp: u64) -> Self {
        Reply {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            timestamp: Some(timestamp),
            exposure: Exposure::Basic,
            headers: Vec::new(),
            raw: None,
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Serializes the reply; `head` keeps the headers (and the length the
    /// body would have) but sends no body.
    pub fn into_response(self, head: bool) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        let hdrs = builder.headers_mut().expect("a fresh builder has headers");
        if let Some(ts) = self.timestamp {
            insert(hdrs, header::ETAG, &etag(ts));
            insert(hdrs, header::LAST_MODIFIED, &http_date(ts));
        }
        for (name, value) in &self.headers {
            insert(hdrs, name.clone(), value);
        }
        hdrs.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(self.exposure.headers()),
        );
        let bytes = match (&self.body, self.raw) {
            (_, Some(raw)) => raw,
            (Some(v), None) => {
                add_json_headers(hdrs);
                serde_json::to_vec(v).unwrap_or_default()
            }
            (None, None) => Vec::new(),
        };
        if self.body.is_some() || hdrs.contains_key(header::CONTENT_TYPE) {
            hdrs.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        let body = if head {
            Body::empty()
        } else {
            Body::from(bytes)
        };
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// `Content-Type` and the security headers of every JSON answer.
pub fn add_json_headers(hdrs: &mut axum::http::HeaderMap) {
    hdrs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    hdrs.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    hdrs.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none';"),
    );
}

fn insert(hdrs: &mut axum::http::HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        hdrs.insert(name, v);
    }
}
