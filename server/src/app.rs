//! The HTTP application: one entry point that turns a request into a
//! [`Ctx`], resolves its route, calls the handler and renders the answer or
//! Kinto's error JSON. Built by one function, used by `main` and by tests.

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::Router;
use projections::Resource;
use serde_json::json;

use crate::access::Target;
use crate::default_bucket::default_bucket_id;
use crate::errors::{ApiError, Location};
use crate::ids::is_valid_id;
use crate::personal_bucket::DefaultScope;
use crate::request::{parse_query, Ctx, Identity, AUTHENTICATED};
use crate::response::{Exposure, Reply};
use crate::routes::{resolve, Resolved, ResourcePath, Route, OBJECT_METHODS, PLURAL_METHODS};
use crate::sequencer::WriteFn;
use crate::state::AppState;
use crate::{objects, plural, root};

/// The whole application as an axum router.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state).layer(
        // Only bodies worth it: small answers stay byte-for-byte as Kinto's.
        tower_http::compression::CompressionLayer::new()
            .gzip(true)
            .compress_when(tower_http::compression::predicate::SizeAbove::new(1024)),
    )
}

async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response<Body> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let is_head = req.method() == Method::HEAD;
    let (started, method, path) = (
        std::time::Instant::now(),
        req.method().clone(),
        req.uri().path().to_owned(),
    );
    // The date is only worth computing when an end of service is set.
    let today = match state.settings.eos {
        Some(_) => crate::service::today(),
        None => String::new(),
    };
    let (answer, eos_alert) = match crate::service::end_of_service(&state.settings, &today) {
        crate::service::EndOfService::Ended(e) => (Err(Answer::Error(e)), None),
        crate::service::EndOfService::Soon(alert) => (serve(&state, req).await, Some(alert)),
        crate::service::EndOfService::Running => (serve(&state, req).await, None),
    };
    let mut resp = match answer {
        Ok(reply) => reply.into_response(is_head),
        Err(Answer::Error(e)) => {
            let mut r = axum::response::IntoResponse::into_response(e);
            if is_head {
                *r.body_mut() = Body::empty();
            }
            r
        }
        Err(Answer::Raw(r)) => r,
    };
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if is_json {
        crate::response::add_json_headers(resp.headers_mut());
    }
    crate::service::decorate(&state.settings, eos_alert.as_deref(), resp.headers_mut());
    if resp.headers().contains_key(header::ACCESS_CONTROL_MAX_AGE) {
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(state.settings.cors_max_age_seconds),
        );
    }
    if let Some(origin) = origin {
        let allowed = &state.settings.cors_origins;
        if allowed.iter().any(|o| o == "*") {
            resp.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else if allowed
            .iter()
            .any(|o| origin.to_str().is_ok_and(|v| v == o))
        {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }
    crate::plugins::observe(&state, &method, &path, resp.status(), started.elapsed());
    resp
}

/// A response that is not a [`Reply`]: an error, or a redirect.
enum Answer {
    Error(ApiError),
    Raw(Response<Body>),
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        Answer::Error(e)
    }
}

fn redirect(location: String) -> Answer {
    let body =
        format!("<html><body>Redirecting to <a href=\"{location}\">{location}</a></body></html>");
    let r = Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, location)
        .header(header::CONTENT_TYPE, "text/html")
        .header(header::CACHE_CONTROL, "max-age=3600")
        .header(
            header::EXPIRES,
            httpdate::fmt_http_date(
                std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
            ),
        )
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()));
    Answer::Raw(r)
}

async fn serve(state: &AppState, req: Request<Body>) -> Result<Reply, Answer> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let route = match resolve(&path) {
        Resolved::Route(r) => r,
        Resolved::Redirect(to) => {
            let q = parts
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            return Err(redirect(format!("http://{host}{to}{q}")));
        }
        Resolved::OtherVersion => return Err(ApiError::version_unavailable().into()),
        Resolved::NotFound => return Err(ApiError::unknown_url().into()),
    };
    if let Some(accept) = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        if !accepts_json(accept) {
            return Err(ApiError::not_acceptable().into());
        }
    }
    let limit = usize::try_from(state.settings.request_body_max_bytes).unwrap_or(usize::MAX);
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::request_too_large())?;
    let query = parse_query(parts.uri.query())?;
    let identity = identify(state, parts.headers.get(header::AUTHORIZATION)).await?;
    if state.settings.readonly
        && matches!(route, Route::Resource(_) | Route::Batch)
        && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !(route == Route::Batch && parts.method == Method::POST)
    {
        // Read-only mode: the write methods do not exist.
        return Err(ApiError::method_not_allowed("GET, HEAD, OPTIONS").into());
    }
    let ctx = Ctx {
        request_id: crate::request::next_request_id(),
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        query,
        identity,
        body,
    };
    dispatch(state, &ctx, route).await.map_err(Answer::from)
}

/// Serves a resolved route (also used for the sub-requests of a batch).
pub async fn dispatch(state: &AppState, ctx: &Ctx, route: Route) -> Result<Reply, ApiError> {
    let utility = matches!(
        route,
        Route::Root
            | Route::Heartbeat
            | Route::LbHeartbeat
            | Route::Version
            | Route::Api
            | Route::Contribute
    );
    if utility && ctx.method == Method::OPTIONS {
        // CORS preflight, as on every other endpoint (browsers ask before
        // `GET /v1/` with an `Authorization` header).
        return root::preflight(ctx, "GET, HEAD, OPTIONS");
    }
    match route {
        Route::Root => only_get(ctx).map(|_| root::root(state, ctx)),
        Route::Heartbeat => only_get(ctx).map(|_| root::heartbeat()),
        Route::LbHeartbeat => {
            only_get(ctx).map(|_| Reply::json(StatusCode::OK, json!({}), None, Exposure::Basic))
        }
        Route::Version => only_get(ctx).map(|_| root::version(state)),
        Route::Api => only_get(ctx).map(|_| root::api(state, ctx)),
        Route::Contribute => only_get(ctx).map(|_| root::contribute()),
        // Boxed: a batch dispatches its sub-requests (never another batch).
        Route::Batch => Box::pin(crate::batch::batch(state, ctx)).await,
        Route::Resource(rp) => resource(state, ctx, rp).await,
        Route::Plugin(p) => crate::plugins::handle(state, ctx, p).await,
    }
}

fn only_get(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.method == Method::GET || ctx.method == Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed("GET, HEAD"))
    }
}

/// Does an `Accept` header allow JSON?
fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mt = part.split(';').next().unwrap_or("").trim();
        matches!(mt, "*/*" | "application/*" | "application/json" | "") || mt.ends_with("+json")
    })
}

/// Resolves the caller: plugin policies (accounts) first, then the Basic Auth user id (invalid credentials are
/// anonymous, as in Kinto), then the groups naming them.
pub async fn identify(
    state: &AppState,
    authorization: Option<&HeaderValue>,
) -> Result<Identity, ApiError> {
    // The `multiauth.policies` pipeline (accounts, Basic Auth) in order.
    let Some(uid) = crate::plugins::authenticate(state, authorization).await? else {
        return Ok(Identity::anonymous());
    };
    let p = &state.projections;
    let mut groups = state
        .memberships
        .groups_of(p, &uid)
        .map_err(ApiError::internal)?;
    for g in state
        .memberships
        .groups_of(p, AUTHENTICATED)
        .map_err(ApiError::internal)?
    {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(Identity::authenticated(uid, groups))
}

/// Turns the URL's ids into a [`Target`], resolving `default` to the
/// caller's personal bucket.
pub(crate) fn target_of(
    state: &AppState,
    ctx: &Ctx,
    rp: ResourcePath,
) -> Result<(Target, DefaultScope), ApiError> {
    let ResourcePath {
        resource,
        parents,
        id,
    } = rp;
    let mut scope = DefaultScope::default();
    let uses_default = crate::plugins::default_bucket_enabled(state)
        && (parents.bucket.as_deref() == Some("default")
            || (resource == Resource::Bucket && id.as_deref() == Some("default")));
    let mut bucket = parents.bucket.clone();
    let mut id = id;
    if uses_default {
        let Some(uid) = ctx.identity.user_id.clone() else {
            return Err(ApiError::unauthorized());
        };
        let bid = default_bucket_id(state.settings.default_bucket_hmac_secret.expose(), &uid);
        if resource == Resource::Bucket {
            id = Some(bid.clone());
        } else {
            bucket = Some(bid.clone());
        }
        let collection = match resource {
            Resource::Record => parents.collection.clone(),
            Resource::Collection => id.clone(),
            _ => None,
        };
        if let Some(c) = &collection {
            if !is_valid_id(c) {
                return Err(ApiError::invalid(
                    Location::Path,
                    None,
                    "Invalid collection id",
                ));
            }
        }
        scope = DefaultScope {
            user_id: Some(uid),
            bucket: Some(bid),
            collection,
        };
    }
    // A parent that could never exist.
    if let Some(b) = bucket.as_deref().filter(|b| !is_valid_id(b)) {
        return Err(ApiError::missing_parent("bucket", b));
    }
    if let Some(c) = parents.collection.as_deref().filter(|c| !is_valid_id(c)) {
        return Err(ApiError::missing_parent("collection", c));
    }
    Ok((
        Target {
            resource,
            bucket,
            collection: parents.collection,
            id,
        },
        scope,
    ))
}

/// What a resource request needs: an answer already computed (reads), or
/// a write for the sequencer.
pub enum Plan {
    Done(Reply),
    Write(WriteFn),
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::Done(r) => f.debug_tuple("Done").field(r).finish(),
            Plan::Write(_) => f.write_str("Write(..)"),
        }
    }
}

/// Runs the read or prepares the write a resource request asks for.
pub async fn plan(state: &AppState, ctx: &Ctx, rp: ResourcePath) -> Result<Plan, ApiError> {
    let is_object = rp.id.is_some();
    let allow = if is_object {
        OBJECT_METHODS
    } else {
        PLURAL_METHODS
    };
    if ctx.method == Method::OPTIONS {
        // CORS preflight needs no authentication, not even under `default`.
        return root::preflight(ctx, allow).map(Plan::Done);
    }
    let (target, scope) = target_of(state, ctx, rp)?;
    let done = Plan::Done;
    let write = Plan::Write;
    let m = &ctx.method;
    if is_object {
        match *m {
            Method::GET | Method::HEAD => objects::get(state, ctx, target, scope).await.map(done),
            Method::PUT => objects::put(state, ctx, target, scope).map(write),
            Method::PATCH => objects::patch(state, ctx, target, scope).map(write),
            Method::DELETE => objects::delete(state, ctx, target, scope).map(write),
            Method::OPTIONS => root::preflight(ctx, allow).map(done),
            _ => Err(ApiError::method_not_allowed(allow)),
        }
    } else {
        match *m {
            Method::GET => plural::list(state, ctx, target, scope, false)
                .await
                .map(done),
            Method::HEAD => plural::list(state, ctx, target, scope, true)
                .await
                .map(done),
            Method::POST => plural::post(state, ctx, target, scope).map(write),
            Method::DELETE => plural::delete(state, ctx, target, scope).map(write),
            Method::OPTIONS => root::preflight(ctx, allow).map(done),
            _ => Err(ApiError::method_not_allowed(allow)),
        }
    }
}

async fn resource(state: &AppState, ctx: &Ctx, rp: ResourcePath) -> Result<Reply, ApiError> {
    match plan(state, ctx, rp).await? {
        Plan::Done(reply) => Ok(reply),
        Plan::Write(op) => {
            let out = state
                .sequencer
                .submit(ctx.request_id.clone(), ctx.identity.user_id.clone(), op)
                .await?;
            let mut reply = Reply::json(out.status, out.body, out.timestamp, Exposure::Basic);
            reply.headers.extend(out.headers);
            Ok(reply)
        }
    }
}
