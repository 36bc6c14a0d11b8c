//! `POST /v1/batch` (spec section 17): several requests in one.
//!
//! Consecutive write sub-requests become one closure in the sequencer, so
//! they commit as one log record: all of them or none. A sub-request that
//! fails with a 4xx is undone (its events are dropped) and the others go on,
//! as Kinto does; a 5xx aborts the whole run, and then no sub-response claims
//! success. Reads (and plugin routes) see every write before them: the
//! pending writes are committed first.

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::app::{dispatch, identify, plan, Plan};
use crate::errors::{ApiError, Location};
use crate::request::{parse_query, Ctx};
use crate::response::{Exposure, Reply};
use crate::routes::{resolve, Resolved, Route, PREFIX};
use crate::sequencer::{Outcome, TxnError, WriteFn};
use crate::state::AppState;

/// One sub-request after `defaults` are merged in.
#[derive(Debug, Clone)]
struct SubRequest {
    method: Method,
    /// Path below the API root, without `/v1`, with its query.
    path: String,
    headers: Map<String, Value>,
    body: Option<Value>,
}

fn invalid(name: &str, description: impl Into<String>) -> ApiError {
    ApiError::invalid(Location::Body, Some(name), description)
}

/// Deep merge where `over` wins; objects merge key by key.
fn merge_defaults(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(bv) => merge_defaults(bv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

fn parse_request(i: usize, v: &Value) -> Result<SubRequest, ApiError> {
    let name = format!("requests.{i}");
    let Value::Object(m) = v else {
        return Err(invalid(&name, format!("{v} is not a mapping type")));
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "method" | "path" | "headers" | "body") {
            return Err(invalid(
                &name,
                format!("Unrecognized keys in mapping: \"{{'{k}': ...}}\""),
            ));
        }
    }
    let path = match m.get("path") {
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        Some(_) => return Err(invalid(&format!("{name}.path"), "Invalid path")),
        None => return Err(invalid(&format!("{name}.path"), "Required")),
    };
    let method = match m.get("method") {
        None => Method::GET,
        Some(Value::String(s)) => match s.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "HEAD" => Method::HEAD,
            "DELETE" => Method::DELETE,
            "TRACE" => Method::TRACE,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            other => {
                return Err(invalid(
                    &format!("{name}.method"),
                    format!("\"{other}\" is not one of GET, HEAD, DELETE, TRACE, POST, PUT, PATCH"),
                ))
            }
        },
        Some(other) => {
            return Err(invalid(
                &format!("{name}.method"),
                format!("{other} is not a string"),
            ))
        }
    };
    let headers = match m.get("headers") {
        None => Map::new(),
        Some(Value::Object(h)) if h.values().all(Value::is_string) => h.clone(),
        Some(_) => {
            return Err(invalid(
                &format!("{name}.headers"),
                "Headers must be strings",
            ))
        }
    };
    let body = match m.get("body") {
        None => None,
        Some(b @ (Value::Object(_) | Value::Array(_))) => Some(b.clone()),
        Some(other) => {
            return Err(invalid(
                &format!("{name}.body"),
                format!("{other} is not a mapping type"),
            ))
        }
    };
    Ok(SubRequest {
        method,
        path,
        headers,
        body,
    })
}

/// Does a sub-request path address the batch endpoint itself (`/batch`,
/// `/v1/batch/`, `/batch?x`)? Kinto refuses any path merely containing
/// `/batch`, so a collection named `batches` cannot be written in a batch
/// there; Cairn refuses only the recursion.
fn targets_batch(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    let below = path
        .strip_prefix(PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    below.trim_end_matches('/') == "/batch"
}

/// Parses the batch body: `{"defaults": {...}, "requests": [...]}`.
fn parse_batch(value: Value, max: u64) -> Result<Vec<SubRequest>, ApiError> {
    let Value::Object(mut top) = value else {
        return Err(ApiError::invalid(
            Location::Body,
            None,
            "Body is not a mapping type",
        ));
    };
    let defaults = top.remove("defaults").unwrap_or_else(|| json!({}));
    let requests = top.remove("requests");
    if let Some(k) = top.keys().next() {
        return Err(ApiError::invalid(
            Location::Body,
            None,
            format!("Unrecognized keys in mapping: \"{{'{k}': ...}}\""),
        ));
    }
    if !defaults.is_object() {
        return Err(invalid(
            "defaults",
            format!("{defaults} is not a mapping type"),
        ));
    }
    let requests = match requests {
        Some(Value::Array(r)) => r,
        Some(other) => return Err(invalid("requests", format!("{other} is not iterable"))),
        None => return Err(invalid("requests", "Required")),
    };
    // Kinto's order: every request's shape, then the count, then recursion
    // (both named `requests`).
    let subs = requests
        .iter()
        .enumerate()
        .map(|(i, r)| parse_request(i, &merge_defaults(&defaults, r)))
        .collect::<Result<Vec<_>, _>>()?;
    if subs.len() as u64 > max {
        return Err(invalid(
            "requests",
            format!("Number of requests is limited to {max}"),
        ));
    }
    if subs.iter().any(|s| targets_batch(&s.path)) {
        return Err(invalid(
            "requests",
            "Recursive call on /batch endpoint is forbidden.",
        ));
    }
    Ok(subs)
}

/// A sub-response as the batch answer shows it.
async fn render(path: &str, resp: Response<Body>, head: bool) -> Value {
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        if let Ok(v) = v.to_str() {
            headers.insert(canonical(k.as_str()), Value::String(v.to_owned()));
        }
    }
    let bytes = to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if head || bytes.is_empty() {
        Value::String(String::new())
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    json!({"status": status, "path": path, "headers": headers, "body": body})
}

/// `etag` → `ETag`, `content-type` → `Content-Type`.
fn canonical(name: &str) -> String {
    if name == "etag" {
        return "ETag".into();
    }
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A sub-request ready to run.
struct Prepared {
    index: usize,
    path: String,
    head: bool,
    ctx: Ctx,
    route: Route,
}

/// A sub-request's answer, before rendering.
enum Answered {
    Reply(Reply),
    Error(ApiError),
}

impl Answered {
    fn into_response(self, head: bool) -> Response<Body> {
        match self {
            Answered::Reply(r) => r.into_response(head),
            Answered::Error(e) => axum::response::IntoResponse::into_response(e),
        }
    }
}

/// `POST /batch`.
pub async fn batch(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    if ctx.method == Method::OPTIONS {
        // CORS preflight: a browser asks before every JSON `POST /batch`.
        return crate::root::preflight(ctx, "POST, OPTIONS");
    }
    if ctx.method != Method::POST {
        return Err(ApiError::method_not_allowed("POST, OPTIONS"));
    }
    crate::body::check_json_content_type(ctx)?;
    let subs = parse_batch(
        crate::body::parse_json(ctx)?,
        state.settings.batch_max_requests,
    )?;
    let mut responses: Vec<Option<Value>> = vec![None; subs.len()];
    let mut pending: Vec<(Prepared, WriteFn)> = Vec::new();
    for (index, sub) in subs.into_iter().enumerate() {
        let prepared = match prepare(state, ctx, index, sub).await {
            Ok(p) => p,
            Err((path, e)) => {
                responses[index] =
                    Some(render(&path, Answered::Error(e).into_response(false), false).await);
                continue;
            }
        };
        if state.settings.readonly && !matches!(prepared.ctx.method, Method::GET | Method::HEAD) {
            let e = ApiError::method_not_allowed("GET, HEAD, OPTIONS");
            responses[index] = Some(
                render(
                    &prepared.path,
                    Answered::Error(e).into_response(false),
                    false,
                )
                .await,
            );
            continue;
        }
        let is_write = matches!(prepared.route, Route::Resource(_))
            && matches!(
                prepared.ctx.method,
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            );
        let same_user = pending
            .first()
            .is_none_or(|(p, _)| p.ctx.identity.user_id == prepared.ctx.identity.user_id);
        if !is_write || !same_user {
            flush(state, &mut pending, &mut responses).await?;
        }
        if is_write {
            let Route::Resource(rp) = prepared.route.clone() else {
                continue;
            };
            match plan(state, &prepared.ctx, rp).await {
                Ok(Plan::Write(op)) => pending.push((prepared, op)),
                Ok(Plan::Done(reply)) => {
                    responses[index] =
                        Some(render(&prepared.path, reply.into_response(false), false).await)
                }
                Err(e) => {
                    responses[index] = Some(
                        render(
                            &prepared.path,
                            Answered::Error(e).into_response(false),
                            false,
                        )
                        .await,
                    )
                }
            }
            continue;
        }
        let answer = match dispatch(state, &prepared.ctx, prepared.route.clone()).await {
            Ok(r) => Answered::Reply(r),
            Err(e) => Answered::Error(e),
        };
        responses[index] = Some(
            render(
                &prepared.path,
                answer.into_response(prepared.head),
                prepared.head,
            )
            .await,
        );
    }
    flush(state, &mut pending, &mut responses).await?;
    let responses: Vec<Value> = responses
        .into_iter()
        .map(|r| r.unwrap_or(Value::Null))
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        json!({"responses": responses}),
        None,
        Exposure::Basic,
    ))
}

/// Turns a sub-request into a request context and a route; on failure,
/// the path to report and the error.
async fn prepare(
    state: &AppState,
    batch: &Ctx,
    index: usize,
    sub: SubRequest,
) -> Result<Prepared, (String, ApiError)> {
    let (raw_path, query) = match sub.path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (sub.path.clone(), None),
    };
    let mut path = if raw_path == PREFIX || raw_path.starts_with(&format!("{PREFIX}/")) {
        raw_path
    } else {
        format!("{PREFIX}{raw_path}")
    };
    let route = loop {
        match resolve(&path) {
            Resolved::Route(r) => break r,
            // Trailing-slash redirects are followed inside a batch.
            Resolved::Redirect(to) if to != path => path = to,
            Resolved::Redirect(_) | Resolved::NotFound => {
                return Err((path, ApiError::unknown_url()))
            }
            Resolved::OtherVersion => return Err((path, ApiError::version_unavailable())),
        }
    };
    let fail = |e: ApiError| (path.clone(), e);
    let mut headers: HeaderMap = batch.headers.clone();
    headers.remove(axum::http::header::CONTENT_LENGTH);
    for (k, v) in &sub.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            fail(ApiError::invalid(
                Location::Body,
                Some("headers"),
                format!("Invalid header {k}"),
            ))
        })?;
        let value = HeaderValue::from_str(v.as_str().unwrap_or("")).map_err(|_| {
            fail(ApiError::invalid(
                Location::Body,
                Some("headers"),
                format!("Invalid header {k}"),
            ))
        })?;
        headers.insert(name, value);
    }
    let body = match &sub.body {
        Some(b) => {
            if !sub
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Bytes::from(serde_json::to_vec(b).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    let uri: Uri = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    }
    .parse()
    .map_err(|_| {
        fail(ApiError::invalid(
            Location::Body,
            Some("path"),
            "Invalid path",
        ))
    })?;
    let query = parse_query(query.as_deref()).map_err(fail)?;
    let identity = identify(state, headers.get(axum::http::header::AUTHORIZATION))
        .await
        .map_err(fail)?;
    let head = sub.method == Method::HEAD;
    let ctx = Ctx {
        request_id: format!("{}/{index}", batch.request_id),
        method: sub.method,
        uri,
        headers,
        query,
        identity,
        body,
    };
    Ok(Prepared {
        index,
        path,
        head,
        ctx,
        route,
    })
}

/// Commits the pending writes as one closure (one log record) and fills
/// in their responses.
async fn flush(
    state: &AppState,
    pending: &mut Vec<(Prepared, WriteFn)>,
    responses: &mut [Option<Value>],
) -> Result<(), ApiError> {
    if pending.is_empty() {
        return Ok(());
    }
    let run: Vec<(Prepared, WriteFn)> = std::mem::take(pending);
    let (meta, ops): (Vec<Prepared>, Vec<WriteFn>) = run.into_iter().unzip();
    let user_id = meta[0].ctx.identity.user_id.clone();
    let request_id = meta[0].ctx.request_id.clone();
    let out = state
        .sequencer
        .submit(
            request_id,
            user_id,
            Box::new(move |txn| {
                let mut results = Vec::with_capacity(ops.len());
                for op in &ops {
                    let sp = txn.savepoint();
                    match op(txn) {
                        Ok(o) => results.push(json!({"ok": true, "status": o.status.as_u16(), "body": o.body, "timestamp": o.timestamp})),
                        Err(TxnError::Conflict) => return Err(TxnError::Conflict),
                        Err(TxnError::Api(e)) if e.status().is_server_error() => return Err(TxnError::Api(e)),
                        Err(TxnError::Api(e)) => {
                            txn.rollback(sp);
                            results.push(json!({"ok": false, "status": e.status().as_u16(), "error": error_parts(&e)}));
                        }
                    }
                }
                Ok(Outcome { headers: Vec::new(), status: StatusCode::OK, body: Value::Array(results), timestamp: None })
            }),
        )
        .await?;
    let results = out.body.as_array().cloned().unwrap_or_default();
    for (p, r) in meta.iter().zip(results) {
        let resp = if r["ok"] == Value::Bool(true) {
            let status = StatusCode::from_u16(r["status"].as_u64().unwrap_or(200) as u16)
                .unwrap_or(StatusCode::OK);
            Reply::json(
                status,
                r["body"].clone(),
                r["timestamp"].as_u64(),
                Exposure::Basic,
            )
            .into_response(false)
        } else {
            rebuild_error(&r["error"])
        };
        responses[p.index] = Some(render(&p.path, resp, false).await);
    }
    Ok(())
}

/// An error's status, headers and body, carried out of the sequencer.
fn error_parts(e: &ApiError) -> Value {
    let headers: Map<String, Value> = e
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(v.to_str().unwrap_or("").to_owned()),
            )
        })
        .collect();
    json!({"status": e.status().as_u16(), "headers": headers, "body": e.body()})
}

fn rebuild_error(parts: &Value) -> Response<Body> {
    let status = StatusCode::from_u16(parts["status"].as_u64().unwrap_or(500) as u16)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(h) = parts["headers"].as_object() {
        for (k, v) in h {
            builder = builder.header(k.as_str(), v.as_str().unwrap_or(""));
        }
    }
    builder
        .body(Body::from(
            serde_json::to_vec(&parts["body"]).unwrap_or_default(),
        ))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_merge_deeply_and_requests_win() {
        let subs = parse_batch(
            json!({
                "defaults": {"method": "PUT", "body": {"data": {"a": 1, "b": 1}}},
                "requests": [{"path": "/buckets/b", "body": {"data": {"b": 2}}}, {"path": "/x", "method": "get"}]
            }),
            25,
        )
        .unwrap();
        assert_eq!(subs[0].method, Method::PUT);
        assert_eq!(subs[0].body, Some(json!({"data": {"a": 1, "b": 2}})));
        assert_eq!(subs[1].method, Method::GET);
    }

    #[test]
    fn limits_and_bad_shapes() {
        let many: Vec<Value> = (0..26).map(|_| json!({"path": "/"})).collect();
        let e = parse_batch(json!({"requests": many}), 25).unwrap_err();
        assert_eq!(e.body()["message"], "Number of requests is limited to 25");
        for path in ["/batch", "/v1/batch", "/v1/batch/", "/batch?x=1"] {
            let e = parse_batch(json!({"requests": [{"path": path}]}), 25).unwrap_err();
            assert_eq!(
                e.body()["details"][0],
                json!({"location": "body", "name": "requests",
                       "description": "Recursive call on /batch endpoint is forbidden."}),
                "{path}"
            );
        }
        // Only the batch endpoint: a collection may be named `batches`.
        for path in [
            "/buckets/b/collections/batches/records",
            "/buckets?x=/batch",
            "/v1/batchy",
        ] {
            assert!(
                parse_batch(json!({"requests": [{"path": path}]}), 25).is_ok(),
                "{path}"
            );
        }
        // Each request's shape is checked first.
        let e = parse_batch(
            json!({"requests": [{"path": "/v1/batch"}, {"path": "x"}]}),
            25,
        )
        .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "requests.1.path");
        assert!(parse_batch(json!({"requests": [{"path": "x"}]}), 25).is_err());
        assert!(parse_batch(json!({"requests": [{"path": "/a", "foo": 1}]}), 25).is_err());
        assert!(parse_batch(json!({"requests": [], "bar": 1}), 25).is_err());
        assert!(parse_batch(json!({"requests": []}), 25).unwrap().is_empty());
    }

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical("etag"), "ETag");
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("last-modified"), "Last-Modified");
    }
}
