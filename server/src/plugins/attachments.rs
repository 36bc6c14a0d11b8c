//! Attachments (the `kinto_attachment` 9.x API, `includes = kinto_attachment`):
//! files attached to records.
//!
//! * `POST /buckets/{bid}/collections/{cid}/records/{rid}/attachment`
//!   (multipart/form-data: file part `attachment`, optional `data` and
//!   `permissions` JSON parts) stores the file and sets the record's
//!   `attachment` field, creating the record if it does not exist: 201
//!   when created, 200 when updated, `Location:` the record's URL, body =
//!   the metadata `{filename, location, hash, mimetype, size}` (plus
//!   `original` with `attachment.gzipped`). Needs `write` on the record, or
//!   `record:create` on the collection when the record does not exist.
//! * `DELETE …/attachment` sets `attachment` to `null` (204).
//! * `GET /v1/attachments/{location}` serves the files. `location` is
//!   relative to the capability's `base_url`, which is `attachment.extra.base_url`,
//!   else `attachment.base_url`, else this server's `/v1/attachments/`.
//!   (`/attachments/…` outside `/v1` answers a 307 to it, as every
//!   unversioned path.)
//!
//! Storage (`files`): one file per distinct content, named by its blake3,
//! under `DATA/attachments` (`attachment.base_path`), written durably
//! before the record event that references it is appended. `location` is
//! `[folder/]<blake3>.<ext>`; `hash` is the SHA-256 of the bytes, as
//! kinto-attachment records it (clients verify downloads with it).
//!
//! Collection (`gc`): a file no live record references is deleted, found
//! by following the log; see `gc` for what this means for history and
//! snapshots, and `attachment.keep_old_files` to keep every file.
//!
//! Shape of a handler, as `objects.rs`: check the caller may write (before
//! reading the body into a file), parse and check the form (`upload`),
//! hash and store the file on a blocking thread, then one closure for the
//! sequencer that loads the record, checks permissions and preconditions
//! again, and records the event (`write`).
//!
//! Modules: `upload` (form parsing, kinto-attachment's rules, metadata),
//! `files` (the content-addressed store, uploads in flight), `write` (the
//! record write in the sequencer), `gc` (the file collector).

mod files;
mod gc;
mod upload;
mod write;

use axum::http::{header, HeaderName, Method, StatusCode};
use projections::Resource;
use serde_json::{json, Value};

use crate::body::check_body_id;
use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::{Exposure, Reply};
use crate::routes::{Parents, ResourcePath, PREFIX};
use crate::sequencer::{Outcome, Txn, TxnError};
use crate::settings::Settings;
use crate::state::AppState;
use write::{delete_op, fields, PostOp, WriteCtx};

use files::Dirs;
pub use files::Store;

/// The kinto-attachment version whose API this is (the capability's
/// `version`).
pub const VERSION: &str = "9.0.1";
/// `Allow` of `…/attachment`.
const METHODS: &str = "POST, DELETE, OPTIONS";
/// `Allow` of a file.
const FILE_METHODS: &str = "GET, HEAD, OPTIONS";
/// Where the files are served, below `/v1`.
const FILES_PATH: &str = "/attachments/";

/// A path the plugin serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/buckets/{bid}/collections/{cid}/records/{rid}/attachment`.
    Record {
        bucket: String,
        collection: String,
        id: String,
    },
    /// `/attachments/{location}`.
    File(String),
}

impl Route {
    /// The route's name in metrics (kinto-attachment's service name).
    pub fn endpoint(&self) -> &'static str {
        match self {
            Route::Record { .. } => "attachment",
            Route::File(_) => "attachment-file",
        }
    }
}

/// The plugin's paths, as segments below `/v1`.
pub fn resolve(segs: &[&str]) -> Option<Route> {
    match segs {
        ["buckets", bid, "collections", cid, "records", rid, "attachment"] if !rid.is_empty() => {
            Some(Route::Record {
                bucket: (*bid).to_owned(),
                collection: (*cid).to_owned(),
                id: (*rid).to_owned(),
            })
        }
        ["attachments", rest @ ..] if !rest.is_empty() && rest.iter().all(|s| !s.is_empty()) => {
            Some(Route::File(rest.join("/")))
        }
        _ => None,
    }
}

/// The `attachments` capability of `GET /v1/`.
pub fn capability(s: &Settings) -> Value {
    json!({
        "description": "Add file attachments to records",
        "url": "https://github.com/Kinto/kinto-attachment/",
        "version": VERSION,
        "base_url": base_url(s),
        "gzipped": s.attachment.gzipped,
    })
}

/// Where clients download files: `base_url` + `location`. Always ends
/// with `/` (kinto-attachment forces it too).
fn base_url(s: &Settings) -> String {
    let configured = s
        .attachment
        .extra_base_url
        .clone()
        .or_else(|| s.attachment.base_url.clone())
        .filter(|u| !u.is_empty());
    let mut url = configured.unwrap_or_else(|| {
        // The capability is built without the request: the address the
        // server listens on stands for its own URL.
        let host = match s.host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1".to_owned(),
            "::" => "[::1]".to_owned(),
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_owned(),
        };
        format!("http://{host}:{}{PREFIX}{FILES_PATH}", s.port)
    });
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// Starts the file collector if it is not running yet (called for every
/// request while the plugin is on; cheap after the first).
pub fn ensure_collector(state: &AppState) {
    let shared = &state.plugins.attachments.shared;
    if shared.worker.get().is_none() {
        gc::start(
            shared.clone(),
            state.log.clone(),
            Dirs::from_settings(&state.settings),
            state.settings.attachment.clone(),
        );
    }
}

pub async fn handle(state: &AppState, ctx: &Ctx, route: Route) -> Result<Reply, ApiError> {
    let result = match route {
        Route::Record {
            bucket,
            collection,
            id,
        } => record_attachment(state, ctx, bucket, collection, id).await,
        Route::File(location) => serve_file(state, ctx, &location).await,
    };
    result.or_else(AttachmentError::into_reply)
}

// ---- errors --------------------------------------------------------------

/// What a request of this plugin fails with: the core's errors, or the
/// plain `http_error(HTTPBadRequest, errno, message)` answers of
/// kinto-attachment (`error: "Bad Request"`, no `details`), which the
/// core's table has no entry for.
#[derive(Debug)]
pub enum AttachmentError {
    Api(ApiError),
    BadRequest { errno: u16, message: String },
}

impl AttachmentError {
    fn bad_request(errno: u16, message: impl Into<String>) -> Self {
        AttachmentError::BadRequest {
            errno,
            message: message.into(),
        }
    }

    /// Status and body as the client sees them (tests).
    #[cfg(test)]
    fn status_and_body(self) -> (StatusCode, Value) {
        match self {
            AttachmentError::Api(e) => (e.status(), e.body()),
            AttachmentError::BadRequest { errno, message } => {
                (StatusCode::BAD_REQUEST, bad_request_body(errno, &message))
            }
        }
    }

    fn into_reply(self) -> Result<Reply, ApiError> {
        match self {
            AttachmentError::Api(e) => Err(e),
            AttachmentError::BadRequest { errno, message } => Ok(Reply::json(
                StatusCode::BAD_REQUEST,
                bad_request_body(errno, &message),
                None,
                Exposure::Basic,
            )),
        }
    }
}

fn bad_request_body(errno: u16, message: &str) -> Value {
    json!({"code": 400, "errno": errno, "error": "Bad Request", "message": message})
}

impl From<ApiError> for AttachmentError {
    fn from(e: ApiError) -> Self {
        AttachmentError::Api(e)
    }
}

// ---- POST / DELETE …/attachment ------------------------------------------

async fn record_attachment(
    state: &AppState,
    ctx: &Ctx,
    bucket: String,
    collection: String,
    id: String,
) -> Result<Reply, AttachmentError> {
    if ctx.method == Method::OPTIONS {
        return Ok(crate::root::preflight(ctx, METHODS)?);
    }
    let is_post = match ctx.method {
        Method::POST => true,
        Method::DELETE => false,
        _ => return Err(ApiError::method_not_allowed(METHODS).into()),
    };
    if state.settings.readonly {
        return Err(ApiError::method_not_allowed("OPTIONS").into());
    }
    let rules = upload::Rules::new(&state.settings.attachment, &bucket, &collection, &id);
    let rp = ResourcePath {
        resource: Resource::Record,
        parents: Parents {
            bucket: Some(bucket),
            collection: Some(collection),
        },
        id: Some(id),
    };
    let (target, scope) = crate::app::target_of(state, ctx, rp)?;
    let w = WriteCtx {
        target,
        scope,
        identity: ctx.identity.clone(),
        bucket_create_principals: state.settings.bucket_create_principals.clone(),
        schemas: state.schemas.clone(),
        conds: ctx.conditions()?,
    };
    // Refuse callers who may not write before storing anything.
    w.precheck(state)?;
    let location_header = format!(
        "{}{PREFIX}/buckets/{}/collections/{}/records/{}",
        ctx.origin(),
        w.target.bucket.as_deref().unwrap_or_default(),
        w.target.collection.as_deref().unwrap_or_default(),
        w.target.id.as_deref().unwrap_or_default(),
    );
    if !is_post {
        let outcome = submit(state, ctx, None, move |txn| delete_op(txn, &w)).await?;
        return Ok(Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            timestamp: outcome.timestamp,
            exposure: Exposure::Basic,
            headers: Vec::new(),
            raw: None,
        });
    }

    let parts = upload::parse(ctx.header_str("content-type"), ctx.body.clone()).await?;
    let up = upload::check(parts, &rules)?;
    // The record fields sent along, validated as a PATCH body would be.
    let (env, patch) = fields(&up)?;
    if let Some(data) = &env.data {
        check_body_id(data, w.id())?;
    }
    let prepared = {
        let rules = rules.clone();
        tokio::task::spawn_blocking(move || upload::prepare(&up, &rules))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?
    };
    // From here until the sequencer answers, the collector spares the file.
    let pending = state.plugins.attachments.begin(prepared.file);
    {
        let dirs = Dirs::from_settings(&state.settings);
        let (file, bytes) = (prepared.file, prepared.stored);
        tokio::task::spawn_blocking(move || files::write_durable(&dirs, &file, &bytes))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    }
    let meta = prepared.meta;
    let op = PostOp {
        w,
        env,
        patch,
        meta: meta.clone(),
    };
    let outcome = submit(state, ctx, Some(pending), move |txn| op.run(txn)).await?;
    Ok(Reply::json(
        outcome.status,
        Value::Object(meta),
        outcome.timestamp,
        Exposure::Basic,
    )
    .with_header(header::LOCATION, location_header))
}

/// Hands `op` to the sequencer from a task of its own, so that a client
/// going away cannot cut the upload's bookkeeping short: the pending
/// upload is finished only once the sequencer has answered, with the log
/// head as it is then.
async fn submit(
    state: &AppState,
    ctx: &Ctx,
    pending: Option<files::PendingUpload>,
    op: impl Fn(&mut Txn<'_>) -> Result<Outcome, TxnError> + Send + 'static,
) -> Result<Outcome, ApiError> {
    let sequencer = state.sequencer.clone();
    let log = state.log.clone();
    let (request_id, user_id) = (ctx.request_id.clone(), ctx.identity.user_id.clone());
    tokio::spawn(async move {
        let result = sequencer.submit(request_id, user_id, Box::new(op)).await;
        if let Some(p) = pending {
            p.finish(log.head().offset);
        }
        result
    })
    .await
    .map_err(ApiError::internal)?
}

// ---- GET /attachments/{location} -------------------------------------------

/// Serves a stored file. Files are public to whoever has their URL, as
/// kinto-attachment's (served by a web server or a CDN, without Kinto's
/// permissions). The name is the content's blake3: unguessable without
/// the content itself.
async fn serve_file(state: &AppState, ctx: &Ctx, location: &str) -> Result<Reply, AttachmentError> {
    match ctx.method {
        Method::OPTIONS => return Ok(crate::root::preflight(ctx, FILE_METHODS)?),
        Method::GET | Method::HEAD => {}
        _ => return Err(ApiError::method_not_allowed(FILE_METHODS).into()),
    }
    let Some(file) = gc::hash_of_location(location) else {
        return Err(ApiError::unknown_url().into());
    };
    let etag = format!("\"{file}\"");
    if ctx.header_str("if-none-match") == Some(etag.as_str()) {
        return Ok(Reply {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            timestamp: None,
            exposure: Exposure::Basic,
            headers: vec![(header::ETAG, etag)],
            raw: None,
        });
    }
    let dirs = Dirs::from_settings(&state.settings);
    let bytes = tokio::task::spawn_blocking(move || files::read(&dirs, &file))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::unknown_url)?;
    let name = location.rsplit('/').next().unwrap_or(location);
    let ext = name.split_once('.').map(|(_, e)| e).unwrap_or("");
    let ext = ext.rsplit('.').next().unwrap_or(ext);
    let mime = mime_guess::from_ext(ext).first_or_octet_stream();
    Ok(Reply::raw(StatusCode::OK, mime.essence_str(), bytes)
        .with_header(header::ETAG, etag)
        // The content never changes under a name.
        .with_header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .with_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // Uploaded HTML or SVG must not run as this origin.
        .with_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        )
        .with_header(
            HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            resolve(&[
                "buckets",
                "b",
                "collections",
                "c",
                "records",
                "r",
                "attachment"
            ]),
            Some(Route::Record {
                bucket: "b".into(),
                collection: "c".into(),
                id: "r".into()
            })
        );
        assert_eq!(
            resolve(&[
                "buckets",
                "b",
                "collections",
                "c",
                "records",
                "",
                "attachment"
            ]),
            None
        );
        assert_eq!(
            resolve(&["attachments", "b", "c", "x.txt"]),
            Some(Route::File("b/c/x.txt".into()))
        );
        assert_eq!(resolve(&["attachments"]), None);
        assert_eq!(resolve(&["attachments", "", "x"]), None);
    }

    #[test]
    fn base_urls() {
        let mut s = Settings {
            port: 8888,
            ..Settings::default()
        };
        assert_eq!(base_url(&s), "http://127.0.0.1:8888/v1/attachments/");
        s.host = "0.0.0.0".into();
        assert_eq!(base_url(&s), "http://127.0.0.1:8888/v1/attachments/");
        s.host = "::1".into();
        assert_eq!(base_url(&s), "http://[::1]:8888/v1/attachments/");
        s.attachment.base_url = Some("https://cdn.example.com/files".into());
        assert_eq!(base_url(&s), "https://cdn.example.com/files/");
        s.attachment.extra_base_url = Some("https://public.example.com/f/".into());
        assert_eq!(base_url(&s), "https://public.example.com/f/");
    }

    #[test]
    fn plain_bad_requests_have_kinto_attachment_bodies() {
        let (status, body) =
            AttachmentError::bad_request(109, "Attachment missing.").status_and_body();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"code": 400, "errno": 109, "error": "Bad Request", "message": "Attachment missing."})
        );
    }
}
