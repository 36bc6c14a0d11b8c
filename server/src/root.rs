//! Service endpoints: `GET /v1/` (server info and the caller), the
//! heartbeats, `/__version__`, and CORS preflight answers.

use axum::http::{HeaderName, StatusCode};
use serde_json::{json, Value};

use crate::default_bucket::default_bucket_id;
use crate::errors::{ApiError, InvalidDetail, Location};
use crate::request::Ctx;
use crate::response::{Exposure, Reply};
use crate::state::AppState;

/// `GET /v1/`.
pub fn root(state: &AppState, ctx: &Ctx) -> Reply {
    let s = &state.settings;
    let mut body = json!({
        "project_name": s.project_name,
        "project_version": s.project_version,
        "http_api_version": s.http_api_version,
        "project_docs": "https://kinto.readthedocs.io/",
        "url": format!("{}/v1/", ctx.origin()),
        "config": Value::Null,
        "settings": {
            "batch_max_requests": s.batch_max_requests,
            "explicit_permissions": true,
            "readonly": s.readonly,
        },
        // basicauth, default_bucket and the other plugins, as configured.
        "capabilities": crate::plugins::capabilities(state),
    });
    if let Some(eos) = &s.eos {
        body["eos"] = json!(eos);
        if let Some(m) = &s.eos_message {
            body["eos_message"] = json!(m);
        }
        if let Some(u) = &s.eos_url {
            body["eos_url"] = json!(u);
        }
    }
    if let Some(uid) = &ctx.identity.user_id {
        body["user"] = json!({
            "id": uid,
            "principals": ctx.identity.principals,
        });
        if crate::plugins::default_bucket_enabled(state) {
            body["user"]["bucket"] = json!(default_bucket_id(
                s.default_bucket_hmac_secret.expose(),
                uid
            ));
        }
    }
    Reply::json(StatusCode::OK, body, None, Exposure::Basic)
}

/// `GET /__heartbeat__`: the log and projections answer if this runs.
pub fn heartbeat() -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({"storage": true, "permission": true, "cache": true}),
        None,
        Exposure::Basic,
    )
}

/// `GET /__version__`.
pub fn version(state: &AppState) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({
            "name": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "source": "https://github.com/cairn/cairn",
            "commit": option_env!("CAIRN_COMMIT").unwrap_or("unknown"),
            "kinto_compatible": state.settings.project_version,
        }),
        None,
        Exposure::Basic,
    )
}

/// `GET /__api__`: the OpenAPI 2.0 document.
pub fn api(state: &AppState, ctx: &Ctx) -> Reply {
    let host = ctx.header_str("host").unwrap_or("localhost");
    Reply::json(
        StatusCode::OK,
        crate::openapi::document(host, &state.settings.http_api_version),
        None,
        Exposure::Basic,
    )
}

/// `GET /contribute.json`: project metadata (Mozilla's contribute format).
pub fn contribute() -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({
            "name": "Cairn",
            "description": "A Kinto-compatible store, sync and share JSON server on an append-only event log.",
            "repository": {"url": "https://github.com/cairn/cairn", "license": "Apache-2.0"},
            "keywords": ["rust", "kinto", "event-sourcing", "json"],
            "participate": {"docs": "https://kinto.readthedocs.io/"},
            "bugs": {"list": "https://github.com/cairn/cairn/issues"},
        }),
        None,
        Exposure::Basic,
    )
}

/// CORS preflight (`OPTIONS`): needs `Origin` and
/// `Access-Control-Request-Method`; echoes the requested headers.
/// (`Access-Control-Max-Age` is set from the settings by the app.)
pub fn preflight(ctx: &Ctx, allow: &'static str) -> Result<Reply, ApiError> {
    let mut missing = Vec::new();
    if ctx.header_str("origin").is_none() {
        missing.push(InvalidDetail::new(
            Location::Header,
            Some("Origin"),
            "this header is mandatory",
        ));
    }
    let method = ctx.header_str("access-control-request-method");
    if method.is_none() {
        missing.push(InvalidDetail::new(
            Location::Header,
            Some("Access-Control-Request-Method"),
            "this header is mandatory",
        ));
    }
    let Some(method) = method.filter(|_| missing.is_empty()) else {
        return Err(ApiError::invalid_details(missing));
    };
    if !allow.split(", ").any(|m| m.eq_ignore_ascii_case(method)) {
        return Err(ApiError::invalid(
            Location::Header,
            Some("Access-Control-Request-Method"),
            "Method not allowed",
        ));
    }
    let requested = ctx
        .header_str("access-control-request-headers")
        .unwrap_or("");
    let mut allowed: Vec<&str> = requested
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    allowed.extend([
        "Alert",
        "Backoff",
        "Retry-After",
        "Content-Type",
        "Content-Length",
        "ETag",
        "Last-Modified",
        "Next-Page",
        "Total-Objects",
        "Total-Records",
    ]);
    Ok(
        Reply::json(StatusCode::OK, Value::Null, None, Exposure::Basic)
            .with_header(
                HeaderName::from_static("access-control-allow-methods"),
                allow.replace(", ", ","),
            )
            .with_header(
                HeaderName::from_static("access-control-allow-headers"),
                allowed.join(", "),
            )
            .with_header(HeaderName::from_static("access-control-max-age"), "3600"),
    )
}
