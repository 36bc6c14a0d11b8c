//! Plural endpoints (`/buckets`, `…/collections`, `…/groups`, `…/records`):
//! GET and HEAD (listing, `_since` sync, pagination), POST (create), DELETE
//! (bulk delete), with Kinto's partial-access rules (spec 4.6).

use std::collections::BTreeMap;

use axum::http::{HeaderName, StatusCode};
use projections::{Resource, StoredObject};
use serde_json::{json, Value};

use crate::access::{Access, Loaded, Target};
use crate::body::{
    check_json_content_type, parse_envelope, parse_json, requested_timestamp, validate_data,
};
use crate::errors::{ApiError, Location};
use crate::headers::Precondition;
use crate::ids::{generate_id, is_valid_id};
use crate::listing::{ListQuery, Page};
use crate::objects::{envelope, tombstone};
use crate::personal_bucket::{ensure_in_txn, DefaultScope};
use crate::request::{Conditions, Ctx, Identity};
use crate::response::Reply;
use crate::schema::validate_write;
use crate::sequencer::{Outcome, Txn, TxnError, WriteFn};
use crate::state::AppState;

/// Object-level permissions that make an object visible in its list.
fn listing_perms(resource: Resource) -> &'static [&'static str] {
    match resource {
        // A bucket is readable through any of its permissions (spec 4.2 ⚠).
        Resource::Bucket => &["read", "write", "collection:create", "group:create"],
        // So is a collection, through `record:create` too.
        Resource::Collection => &["read", "write", "record:create"],
        _ => &["read", "write"],
    }
}

/// Which objects of a list the caller may see or change.
#[derive(Debug)]
enum Visible {
    All,
    /// Only these ids (possibly none).
    Some(BTreeMap<String, Vec<String>>),
}

impl Visible {
    fn contains(&self, id: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Some(m) => m.contains_key(id),
        }
    }
}

/// Decides 4.6 for a read (`write = false`) or a bulk delete (`write = true`).
fn visibility(
    state: &AppState,
    access: &Access,
    loaded: &Loaded,
    target: &Target,
    write: bool,
) -> Result<Visible, ApiError> {
    let whole = if write {
        access.can_write_parent(loaded, target)
    } else {
        access.can_read_parent(loaded, target)
    };
    if whole {
        return Ok(Visible::All);
    }
    let wanted: &[&str] = if write {
        &["write"]
    } else {
        listing_perms(target.resource)
    };
    let mut ids = state
        .projections
        .objects_for_principals(
            &access.identity.principals,
            &target.parent(),
            target.resource,
        )
        .map_err(ApiError::internal)?;
    ids.retain(|_, perms| perms.iter().any(|p| wanted.contains(&p.as_str())));
    if ids.is_empty() && !access.can_create(loaded, target) {
        return Err(access.identity.denied());
    }
    Ok(Visible::Some(ids))
}

/// The list's timestamp: the newest change it ever saw, else (never
/// written) its parent's own timestamp, else the server start.
fn list_timestamp(state: &AppState, loaded: &Loaded, target: &Target) -> Result<u64, ApiError> {
    if let Some(t) = state
        .projections
        .list_timestamp(&target.parent(), target.resource)
        .map_err(ApiError::internal)?
    {
        return Ok(t);
    }
    let parent = match target.resource {
        Resource::Bucket | Resource::Account => None,
        Resource::Collection | Resource::Group => loaded.bucket.as_ref(),
        Resource::Record => loaded.collection.as_ref(),
    };
    Ok(parent.map(|o| o.last_modified).unwrap_or(state.started_ms))
}

/// `GET` / `HEAD` of a list.
pub async fn list(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
    head: bool,
) -> Result<Reply, ApiError> {
    scope.ensure(state, ctx).await?;
    let access = Access {
        identity: &ctx.identity,
        bucket_create_principals: &state.settings.bucket_create_principals,
    };
    let mut p = &*state.projections;
    let loaded = access.load(&mut p, &target)?;
    let visible = visibility(state, &access, &loaded, &target, false)?;
    let mut query = ListQuery::parse(ctx, target.resource, &state.settings)?;
    query.need_total = head;
    let ts = list_timestamp(state, &loaded, &target)?;
    query.snapshot = Some(ts);
    let conds = ctx.conditions()?;
    if let Some(Precondition::Timestamp(t)) = conds.if_match {
        if t != ts {
            return Err(ApiError::precondition_failed(None, ts));
        }
    }
    match conds.if_none_match {
        Some(Precondition::Any) => return Err(ApiError::precondition_failed(None, ts)),
        Some(Precondition::Timestamp(t)) if t == ts => return Ok(Reply::not_modified(ts)),
        _ => {}
    }
    let parent = target.parent();
    let page: Page = match &visible {
        Visible::All => query.run(state, &parent, target.resource, &|_| true, true)?,
        Visible::Some(ids) => query.run(
            state,
            &parent,
            target.resource,
            &|id| ids.contains_key(id),
            false,
        )?,
    };
    let mut reply = query.reply(ctx, page, Some(ts), head);
    if query.deprecated_to {
        reply = reply.with_header(
            HeaderName::from_static("alert"),
            json!({"code": "soft-eol", "message": "_to is now deprecated, you should use _before instead", "url": "https://kinto.readthedocs.io/en/stable/api/1.x/timestamps.html"}).to_string(),
        );
    }
    Ok(reply)
}

/// Owned inputs of a plural write closure.
#[derive(Debug, Clone)]
struct PluralCtx {
    target: Target,
    schemas: std::sync::Arc<crate::schema::SchemaCache>,
    identity: Identity,
    bucket_create_principals: Vec<String>,
    conds: Conditions,
    scope: DefaultScope,
}

impl PluralCtx {
    fn access(&self) -> Access<'_> {
        Access {
            identity: &self.identity,
            bucket_create_principals: &self.bucket_create_principals,
        }
    }
}

/// `POST`: create (or return the existing object with that id). Returns
/// the write for the sequencer.
pub fn post(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<WriteFn, ApiError> {
    check_json_content_type(ctx)?;
    let env = parse_envelope(parse_json(ctx)?, target.resource)?;
    let mut data = env.data.clone().unwrap_or_default();
    let id = match data.remove("id") {
        None => None,
        Some(Value::String(s)) if is_valid_id(&s) => Some(s),
        Some(_) => return Err(ApiError::invalid(Location::Path, None, "Invalid object id")),
    };
    let requested = requested_timestamp(&data);
    data.remove("last_modified");
    validate_data(target.resource, &mut data)?;
    let pc = PluralCtx {
        target,
        schemas: state.schemas.clone(),
        identity: ctx.identity.clone(),
        bucket_create_principals: state.settings.bucket_create_principals.clone(),
        conds: ctx.conditions()?,
        scope,
    };
    let perms = env.permissions.clone().unwrap_or_default();
    Ok(Box::new(move |txn| {
        post_op(txn, &pc, id.as_deref(), &data, &perms, requested)
    }))
}

fn post_op(
    txn: &mut Txn<'_>,
    pc: &PluralCtx,
    id: Option<&str>,
    data: &serde_json::Map<String, Value>,
    perms: &projections::Permissions,
    requested: Option<u64>,
) -> Result<Outcome, TxnError> {
    ensure_in_txn(txn, &pc.scope)?;
    let access = pc.access();
    let mut loaded = access.load(txn, &pc.target)?;
    let id = match id {
        Some(id) => id.to_owned(),
        None => generate_id(pc.target.resource),
    };
    let key = pc.target.key_for(&id);
    let mut object_target = pc.target.clone();
    object_target.id = Some(id.clone());
    if let Some(existing) = txn.get(&key)? {
        loaded.object = Some(existing.clone());
        if !access.allows(
            &loaded,
            &object_target,
            Access::read_need(pc.target.resource),
        ) {
            return Err(pc.identity.denied().into());
        }
        return Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::OK,
            body: envelope(&existing, &access),
            timestamp: Some(existing.last_modified),
        });
    }
    if !access.can_create(&loaded, &pc.target) {
        return Err(pc.identity.denied().into());
    }
    if pc.conds.if_match.is_some() {
        let current = txn.list_timestamp(&pc.target.parent(), pc.target.resource)?;
        return Err(ApiError::precondition_failed(None, current).into());
    }
    let mut perms = perms.clone();
    if let Some(uid) = &pc.identity.user_id {
        let w = perms.entry("write".to_owned()).or_default();
        if !w.contains(uid) {
            w.push(uid.clone());
        }
    }
    let mut data = data.clone();
    validate_write(&pc.schemas, &loaded, &object_target, &mut data)?;
    let stored: StoredObject = txn.put(&key, data, perms, requested)?;
    Ok(Outcome {
        headers: Vec::new(),
        status: StatusCode::CREATED,
        body: envelope(&stored, &access),
        timestamp: Some(stored.last_modified),
    })
}

/// `DELETE` of a list: deletes every object the caller may write (matching
/// the filters), each leaving a tombstone.
pub fn delete(
    state: &AppState,
    ctx: &Ctx,
    target: Target,
    scope: DefaultScope,
) -> Result<WriteFn, ApiError> {
    let query = ListQuery::parse(ctx, target.resource, &state.settings)?;
    let pc = PluralCtx {
        target,
        schemas: state.schemas.clone(),
        identity: ctx.identity.clone(),
        bucket_create_principals: state.settings.bucket_create_principals.clone(),
        conds: ctx.conditions()?,
        scope,
    };
    let st = state.clone();
    // `Next-Page` when the filters match more than one page: the same URL
    // with a token after the last object deleted.
    let next_page_prefix = query.next_page_url(ctx, "");
    Ok(Box::new(move |txn| {
        delete_all_op(txn, &st, &pc, &next_page_prefix, &query)
    }))
}

fn delete_all_op(
    txn: &mut Txn<'_>,
    state: &AppState,
    pc: &PluralCtx,
    next_page_prefix: &str,
    query: &ListQuery,
) -> Result<Outcome, TxnError> {
    // The scan below reads committed state: run alone in the group.
    txn.require_alone()?;
    ensure_in_txn(txn, &pc.scope)?;
    let access = pc.access();
    let loaded = access.load(txn, &pc.target)?;
    let visible = visibility(state, &access, &loaded, &pc.target, true)?;
    let parent = pc.target.parent();
    let current = txn.list_timestamp(&parent, pc.target.resource)?;
    if let Some(Precondition::Timestamp(t)) = pc.conds.if_match {
        if t != current {
            return Err(ApiError::precondition_failed(None, current).into());
        }
    }
    if pc.conds.if_none_match == Some(Precondition::Any) {
        return Err(ApiError::precondition_failed(None, current).into());
    }
    let page = query.run(
        state,
        &parent,
        pc.target.resource,
        &|id| visible.contains(id),
        true,
    )?;
    let mut deleted = Vec::new();
    let mut newest = None;
    for item in &page.items {
        let Some(id) = item.get("id").and_then(Value::as_str) else {
            continue;
        };
        if item.get("deleted").is_some() {
            continue;
        }
        let key = pc.target.key_for(id);
        // Read through the transaction so a concurrent change is seen.
        if txn.get(&key)?.is_none() {
            continue;
        }
        let ts = txn.delete(&key, None)?;
        newest = Some(ts);
        deleted.push(tombstone(id, ts));
    }
    let headers = match &page.next_token {
        Some(token) => vec![(
            HeaderName::from_static("next-page"),
            format!("{next_page_prefix}{token}"),
        )],
        None => Vec::new(),
    };
    Ok(Outcome {
        headers,
        status: StatusCode::OK,
        body: json!({"data": deleted}),
        timestamp: Some(newest.unwrap_or(current)),
    })
}
