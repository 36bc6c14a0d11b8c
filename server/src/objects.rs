//! Object endpoints (`/buckets/{bid}`, `…/collections/{cid}`,
//! `…/groups/{gid}`, `…/records/{rid}`): GET, HEAD, PUT, PATCH, DELETE.
//!
//! Every handler has the same shape: parse the request, then either read
//! the projections (GET) or hand a closure to the sequencer, which loads the
//! object and its ancestors, checks permissions and preconditions, and
//! records the events — all at sequencing time.

use axum::http::StatusCode;
use projections::{Permissions, StoredObject};
use serde_json::{json, Map, Value};

use crate::access::{Access, Loaded, Target};
use crate::body::{
    check_body_id, check_json_content_type, parse_envelope, parse_json, patch_kind,
    requested_timestamp, validate_data, Envelope,
};
use crate::errors::{ApiError, Location};
use crate::headers::Precondition;
use crate::ids::is_valid_id;
use crate::patch;
use crate::permissions::Need;
use crate::personal_bucket::{ensure_in_txn, DefaultScope};
use crate::request::{Conditions, Ctx, Identity};
use crate::response::{Exposure, Reply};
use crate::schema::validate_write;
use crate::sequencer::{Outcome, Txn, TxnError, WriteFn};
use crate::state::AppState;

/// The `{data, permissions}` answer for one object; `permissions` is `{}`
/// unless the caller is named in the object's own `write`.
pub fn envelope(obj: &StoredObject, access: &Access) -> Value {
    let perms = if access.shows_permissions(&obj.permissions) {
        serde_json::to_value(&obj.permissions).unwrap_or_else(|_| json!({}))
    } else {
        json!({})
    };
    json!({"data": Value::Object(obj.data.clone()), "permissions": perms})
}

/// [`envelope`], serialized directly.
fn envelope_bytes(obj: &StoredObject, access: &Access) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        data: &'a Map<String, Value>,
        permissions: &'a Permissions,
    }
    let none = Permissions::new();
    let permissions = if access.shows_permissions(&obj.permissions) {
        &obj.permissions
    } else {
        &none
    };
    serde_json::to_vec(&Envelope {
        data: &obj.data,
        permissions,
    })
    .unwrap_or_default()
}

/// A tombstone as Kinto shows it.
pub fn tombstone(id: &str, last_modified: u64) -> Value {
    json!({"id": id, "last_modified": last_modified, "deleted": true})
}

/// 412 for an existing object: `details.existing` only for who may read it.
fn modified_meanwhile(
    access: &Access,
    loaded: &Loaded,
    target: &Target,
    obj: &StoredObject,
) -> ApiError {
    let existing = access
        .allows(loaded, target, Access::read_need(target.resource))
        .then(|| Value::Object(obj.data.clone()));
    ApiError::precondition_failed(existing, obj.last_modified)
}

/// Checks If-Match / If-None-Match for a write on an existing object.
fn check_write_conditions(
    conds: &Conditions,
    access: &Access,
    loaded: &Loaded,
    target: &Target,
    obj: &StoredObject,
) -> Result<(), ApiError> {
    if let Some(Precondition::Timestamp(t)) = conds.if_match {
        if t != obj.last_modified {
            return Err(modified_meanwhile(access, loaded, target, obj));
        }
    }
    if conds.if_none_match == Some(Precondition::Any) {
        return Err(modified_meanwhile(access, loaded, target, obj));
    }
    Ok(())
}

/// With the attachments plugin, PUT and PATCH may not change an existing
/// record's `attachment` (its files are reference-counted from it).
fn check_attachment_unchanged(
    w: &WriteCtx,
    existing: Option<&StoredObject>,
    data: &Map<String, Value>,
) -> Result<(), ApiError> {
    if !w.attachments || w.target.resource != projections::Resource::Record {
        return Ok(());
    }
    let before = existing
        .and_then(|o| o.data.get("attachment"))
        .filter(|v| !v.is_null());
    match (before, data.get("attachment")) {
        (Some(old), Some(new)) if old != new => Err(ApiError::invalid(
            Location::Body,
            Some("attachment"),
            "Attachment metadata cannot be modified.",
        )),
        (None, Some(new)) if !new.is_null() => Err(ApiError::invalid(
            Location::Body,
            Some("attachment"),
            "Attachment metadata cannot be modified.",
        )),
        _ => Ok(()),
    }
}

/// An invalid id in the last path segment: 400 for whoever passes the
/// permission check on the parent, the permission error otherwise.
fn invalid_id(access: &Access, loaded: &Loaded, target: &Target) -> ApiError {
    if access.can_read_parent(loaded, target) || access.can_create(loaded, target) {
        ApiError::invalid(Location::Path, None, "Invalid object id")
    } else {
        access.identity.denied()
    }
}

/// `GET` / `HEAD` of one object.
pub async fn get(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<Reply, ApiError> {
    scope.ensure(state, ctx).await?;
    let conds = ctx.conditions()?;
    let access = Access {
        identity: &ctx.identity,
        bucket_create_principals: &state.settings.bucket_create_principals,
    };
    let mut p = &*state.projections;
    let loaded = access.load(&mut p, &target)?;
    let id = target.id.as_deref().unwrap_or("");
    if !is_valid_id(id) {
        return Err(invalid_id(&access, &loaded, &target));
    }
    let Some(obj) = loaded.object.as_ref() else {
        return Err(access.missing(&loaded, &target));
    };
    if !access.allows(&loaded, &target, Access::read_need(target.resource)) {
        return Err(ctx.identity.denied());
    }
    match conds.if_match {
        Some(Precondition::Timestamp(t)) if t != obj.last_modified => {
            return Err(modified_meanwhile(&access, &loaded, &target, obj))
        }
        _ => {}
    }
    match conds.if_none_match {
        Some(Precondition::Any) => return Err(modified_meanwhile(&access, &loaded, &target, obj)),
        Some(Precondition::Timestamp(t)) if t == obj.last_modified => {
            return Ok(Reply::not_modified(obj.last_modified))
        }
        _ => {}
    }
    // `_fields` keeps only those fields (plus id and last_modified), and
    // then the answer has no `permissions` key (spec section 12).
    let body = match ctx.query_value("_fields") {
        Some(f) => {
            let fields = crate::listing::parse_fields(f)?;
            json!({"data": Value::Object(crate::listing::select_fields(&obj.data, &fields))})
        }
        None => {
            // The common case, serialized straight from the stored object
            // (no intermediate JSON value).
            let bytes = envelope_bytes(obj, &access);
            let mut reply = Reply::raw(StatusCode::OK, "application/json", bytes);
            reply.timestamp = Some(obj.last_modified);
            reply.exposure = Exposure::Object;
            return Ok(if ctx.identity.user_id.is_some() {
                reply.with_header(axum::http::header::CACHE_CONTROL, "no-cache, no-store")
            } else {
                reply
            });
        }
    };
    let reply = Reply::json(
        StatusCode::OK,
        body,
        Some(obj.last_modified),
        Exposure::Object,
    );
    Ok(if ctx.identity.user_id.is_some() {
        reply.with_header(axum::http::header::CACHE_CONTROL, "no-cache, no-store")
    } else {
        reply
    })
}

/// The caller's user id added to `write` (the writer rule, spec 4.5).
fn with_writer(mut perms: Permissions, identity: &Identity) -> Permissions {
    if let Some(uid) = &identity.user_id {
        let w = perms.entry("write".to_owned()).or_default();
        if !w.contains(uid) {
            w.push(uid.clone());
        }
    }
    perms
}

/// Drops the fields the server owns from client data.
fn strip_owned_fields(data: &mut Map<String, Value>) {
    data.remove("id");
    data.remove("last_modified");
}

/// Context a write closure needs, owned so the closure can be re-run.
#[derive(Debug, Clone)]
struct WriteCtx {
    target: Target,
    schemas: std::sync::Arc<crate::schema::SchemaCache>,
    /// With `kinto_attachment`, a record's `attachment` field is the
    /// plugin's: PUT and PATCH may not change it.
    attachments: bool,
    identity: Identity,
    bucket_create_principals: Vec<String>,
    conds: Conditions,
    scope: DefaultScope,
}

impl WriteCtx {
    fn new(
        state: &AppState,
        ctx: &Ctx,
        target: Target,
        scope: DefaultScope,
    ) -> Result<Self, ApiError> {
        Ok(WriteCtx {
            target,
            schemas: state.schemas.clone(),
            identity: ctx.identity.clone(),
            bucket_create_principals: state.settings.bucket_create_principals.clone(),
            conds: ctx.conditions()?,
            scope,
            attachments: state.settings.includes(crate::settings::plugin::ATTACHMENT),
        })
    }

    fn access(&self) -> Access<'_> {
        Access {
            identity: &self.identity,
            bucket_create_principals: &self.bucket_create_principals,
        }
    }

    /// Creates the personal bucket (and collection) if the URL needs them,
    /// then loads the target.
    fn load(&self, txn: &mut Txn<'_>) -> Result<Loaded, TxnError> {
        ensure_in_txn(txn, &self.scope)?;
        self.access().load(txn, &self.target)
    }
}

/// `PUT`: create or replace. Returns the write for the sequencer.
pub fn put(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<WriteFn, ApiError> {
    check_json_content_type(ctx)?;
    let env = parse_envelope(parse_json(ctx)?, target.resource)?;
    let w = WriteCtx::new(state, ctx, target, scope)?;
    Ok(Box::new(move |txn| put_op(txn, &w, &env)))
}

fn put_op(txn: &mut Txn<'_>, w: &WriteCtx, env: &Envelope) -> Result<Outcome, TxnError> {
    let access = w.access();
    let loaded = w.load(txn)?;
    let target = &w.target;
    let id = target.id.clone().unwrap_or_default();
    match &loaded.object {
        Some(obj) => {
            if w.conds.if_none_match == Some(Precondition::Any) {
                // "Create only if absent": judged as a create.
                if !access.can_create(&loaded, target) {
                    return Err(w.identity.denied().into());
                }
                return Err(modified_meanwhile(&access, &loaded, target, obj).into());
            }
            if !access.allows(&loaded, target, Need::Write) {
                return Err(w.identity.denied().into());
            }
            check_write_conditions(&w.conds, &access, &loaded, target, obj)?;
        }
        None => {
            if !access.can_create(&loaded, target) {
                return Err(w.identity.denied().into());
            }
            if !is_valid_id(&id) {
                return Err(ApiError::invalid(Location::Path, None, "Invalid object id").into());
            }
            if w.conds.if_match.is_some() {
                let current = txn.list_timestamp(&target.parent(), target.resource)?;
                return Err(ApiError::precondition_failed(None, current).into());
            }
        }
    }
    let existing = loaded.object.as_ref();
    let mut data = match (&env.data, existing) {
        (Some(d), _) => d.clone(),
        (None, Some(obj)) => obj.data.clone(),
        (None, None) => Map::new(),
    };
    check_body_id(&data, &id)?;
    check_attachment_unchanged(w, existing, &data)?;
    let requested = requested_timestamp(&data);
    strip_owned_fields(&mut data);
    validate_data(target.resource, &mut data)?;
    validate_write(&w.schemas, &loaded, target, &mut data)?;
    let perms = match (&env.permissions, existing) {
        (Some(p), _) => p.clone(),
        (None, Some(obj)) => obj.permissions.clone(),
        (None, None) => Permissions::new(),
    };
    let key = target.key_for(&id);
    let stored = txn.put(&key, data, with_writer(perms, &w.identity), requested)?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(Outcome {
        headers: Vec::new(),
        status,
        body: envelope(&stored, &access),
        timestamp: Some(stored.last_modified),
    })
}

/// `PATCH`: update an existing object (three body flavours). Returns the
/// write for the sequencer.
pub fn patch(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<WriteFn, ApiError> {
    let kind = patch_kind(ctx)?;
    let body = parse_json(ctx)?;
    let request = patch::PatchRequest::parse(kind, body, target.resource)?;
    let behavior = patch::ResponseBehavior::from_header(ctx.header_str("Response-Behavior"))?;
    let w = WriteCtx::new(state, ctx, target, scope)?;
    Ok(Box::new(move |txn| patch_op(txn, &w, &request, behavior)))
}

/// The shared checks of PATCH and DELETE, in Kinto's order: a valid id,
/// an existing object (404 only for who may read the parent), `write` on
/// it, then If-Match / If-None-Match. Returns the loaded chain, the object
/// and its id.
fn load_existing_for_write(
    txn: &mut Txn<'_>,
    w: &WriteCtx,
) -> Result<(Loaded, StoredObject, String), TxnError> {
    let access = w.access();
    let loaded = w.load(txn)?;
    let target = &w.target;
    let id = target.id.clone().unwrap_or_default();
    if !is_valid_id(&id) {
        return Err(invalid_id(&access, &loaded, target).into());
    }
    let Some(obj) = loaded.object.as_ref() else {
        return Err(access.missing(&loaded, target).into());
    };
    if !access.allows(&loaded, target, Need::Write) {
        return Err(w.identity.denied().into());
    }
    check_write_conditions(&w.conds, &access, &loaded, target, obj)?;
    let obj = obj.clone();
    Ok((loaded, obj, id))
}

fn patch_op(
    txn: &mut Txn<'_>,
    w: &WriteCtx,
    request: &patch::PatchRequest,
    behavior: patch::ResponseBehavior,
) -> Result<Outcome, TxnError> {
    let access = w.access();
    let target = &w.target;
    let (loaded, obj, id) = load_existing_for_write(txn, w)?;
    let obj = &obj;
    let (mut data, perms) = request.apply(obj, target.resource)?;
    check_body_id(&data, &id)?;
    check_attachment_unchanged(w, Some(obj), &data)?;
    let requested = requested_timestamp(&data).filter(|t| *t > obj.last_modified);
    strip_owned_fields(&mut data);
    validate_data(target.resource, &mut data)?;
    validate_write(&w.schemas, &loaded, target, &mut data)?;
    let key = target.key_for(&id);
    let stored = txn.put(&key, data, with_writer(perms, &w.identity), requested)?;
    let body = behavior.render(request, &stored, envelope(&stored, &access));
    Ok(Outcome {
        headers: Vec::new(),
        status: StatusCode::OK,
        body,
        timestamp: Some(stored.last_modified),
    })
}

/// `DELETE` of one object (cascading below buckets and collections).
/// Returns the write for the sequencer.
pub fn delete(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<WriteFn, ApiError> {
    let requested = match ctx.query_value("last_modified") {
        Some(v) => Some(v.trim_matches('"').parse::<u64>().map_err(|_| {
            ApiError::invalid(
                Location::Querystring,
                Some("last_modified"),
                format!("\"{v}\" is not a number"),
            )
        })?),
        None => None,
    };
    let w = WriteCtx::new(state, ctx, target, scope)?;
    Ok(Box::new(move |txn| delete_op(txn, &w, requested)))
}

fn delete_op(txn: &mut Txn<'_>, w: &WriteCtx, requested: Option<u64>) -> Result<Outcome, TxnError> {
    let (_, obj, id) = load_existing_for_write(txn, w)?;
    let requested = requested.filter(|t| *t > obj.last_modified);
    let ts = txn.delete(&w.target.key_for(&id), requested)?;
    Ok(Outcome {
        headers: Vec::new(),
        status: StatusCode::OK,
        body: json!({"data": tombstone(&id, ts)}),
        timestamp: Some(ts),
    })
}
