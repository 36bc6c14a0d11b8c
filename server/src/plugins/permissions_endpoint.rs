//! `GET /permissions` (`experimental_permissions_endpoint = true`): every
//! object on which the caller holds a permission, with the permissions it
//! holds there.
//!
//! As Kinto: objects whose own ACL names one of the caller's principals
//! (from the projections' principal index, one prefix scan per principal),
//! plus what settings grant (`bucket:create`, `account:create` at the root,
//! every account for account administrators). Children of an accessible
//! parent are not expanded; permissions are expanded within the object
//! (`write` on a bucket implies `read`, `read:attributes`,
//! `collection:create`, `group:create`). Default order `-uri`; filters,
//! `_sort`, `_limit` and pagination work as on other lists.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use projections::{ObjectKey, Resource};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::filters::SortKey;
use crate::listing::ListQuery;
use crate::request::Ctx;
use crate::response::Reply;
use crate::settings::plugin;
use crate::state::AppState;

const METHODS: &str = "GET, HEAD, OPTIONS";

/// What holding `perm` on an object of `resource` amounts to on that same
/// object (Kinto's inheritance, restricted to one object).
fn expand(resource: Resource, perm: &str) -> &'static [&'static str] {
    match (resource, perm) {
        (Resource::Bucket, "write") => &[
            "write",
            "read",
            "read:attributes",
            "collection:create",
            "group:create",
        ],
        (Resource::Bucket, "read") => &["read", "read:attributes"],
        (Resource::Bucket, "collection:create") => &["collection:create", "read:attributes"],
        (Resource::Bucket, "group:create") => &["group:create", "read:attributes"],
        (Resource::Collection, "write") => &["write", "read", "read:attributes", "record:create"],
        (Resource::Collection, "read") => &["read", "read:attributes"],
        (Resource::Collection, "record:create") => &["record:create", "read:attributes"],
        (_, "write") => &["write", "read"],
        (_, "read") => &["read"],
        _ => &[],
    }
}

/// `uri`, `resource_name`, `id` and the `<resource>_id`s of an object.
fn describe(key: &ObjectKey) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("uri".into(), Value::String(key.uri()));
    m.insert(
        "resource_name".into(),
        Value::String(key.resource.name().into()),
    );
    m.insert("id".into(), Value::String(key.id.clone()));
    let segs: Vec<&str> = key.parent.split('/').collect();
    if let Some(b) = segs.get(2) {
        m.insert("bucket_id".into(), Value::String((*b).to_owned()));
    }
    if let Some(c) = segs.get(4) {
        m.insert("collection_id".into(), Value::String((*c).to_owned()));
    }
    m.insert(
        format!("{}_id", key.resource.name()),
        Value::String(key.id.clone()),
    );
    m
}

pub async fn handle(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    let head = match ctx.method {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS => return crate::root::preflight(ctx, METHODS),
        _ => return Err(ApiError::method_not_allowed(METHODS)),
    };
    let s = &state.settings;
    let principals = &ctx.identity.principals;
    let has = |list: &[String]| principals.iter().any(|p| list.contains(p));
    if !has(&s.permissions_read_principals) {
        return Err(ctx.identity.denied());
    }
    let mut query = ListQuery::parse(ctx, Resource::Bucket, s)?;
    if ctx.query_value("_sort").is_none() {
        query.sort = vec![SortKey {
            field: "uri".into(),
            descending: true,
        }];
    }
    let mut held: BTreeMap<ObjectKey, BTreeSet<&'static str>> = BTreeMap::new();
    for p in principals {
        for (key, perms) in state
            .projections
            .objects_naming(p)
            .map_err(ApiError::internal)?
        {
            let set = held.entry(key.clone()).or_default();
            for perm in &perms {
                set.extend(expand(key.resource, perm));
            }
        }
    }
    let accounts = s.includes(plugin::ACCOUNTS);
    if accounts && has(&s.account_write_principals) {
        for obj in state.projections.list("", Resource::Account, None) {
            let obj = obj.map_err(ApiError::internal)?;
            if let Some(id) = obj.data.get("id").and_then(Value::as_str) {
                held.entry(ObjectKey::account(id))
                    .or_default()
                    .extend(["read", "write"]);
            }
        }
    }
    let mut items: Vec<Map<String, Value>> = held
        .into_iter()
        .map(|(key, perms)| {
            let mut m = describe(&key);
            m.insert("permissions".into(), json!(perms));
            m
        })
        .collect();
    let mut root = Vec::new();
    if has(&s.bucket_create_principals) {
        root.push("bucket:create");
    }
    if accounts && has(&s.account_create_principals) {
        root.push("account:create");
    }
    if !root.is_empty() {
        let mut m = Map::new();
        m.insert("uri".into(), json!("/"));
        m.insert("resource_name".into(), json!("root"));
        m.insert("permissions".into(), json!(root));
        items.push(m);
    }
    let page = query.run_on(items);
    Ok(query.reply(ctx, page, None, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_entries() {
        let m = describe(&ObjectKey::record("b", "c", "r"));
        assert_eq!(
            Value::Object(m),
            json!({"uri": "/buckets/b/collections/c/records/r", "resource_name": "record",
                   "id": "r", "bucket_id": "b", "collection_id": "c", "record_id": "r"})
        );
        let m = describe(&ObjectKey::account("bob"));
        assert_eq!(
            Value::Object(m),
            json!({"uri": "/accounts/bob", "resource_name": "account", "id": "bob", "account_id": "bob"})
        );
        assert_eq!(expand(Resource::Bucket, "write").len(), 5);
        assert_eq!(expand(Resource::Record, "write"), &["write", "read"]);
    }
}
