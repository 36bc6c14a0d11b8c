//! History (`kinto.plugins.history`): `GET /buckets/{bid}/history`,
//! answered from the event log, which already is the history of every
//! change: Cairn writes no separate history entries.
//!
//! Each event of a bucket's buckets, collections, groups and records is an
//! entry, shaped as Kinto's (`uri`, `date`, `action`, `resource_name`,
//! `user_id`, `<resource>_id`s, `target: {data, permissions}`). Deleting a
//! bucket forgets its history (as Kinto purges it); a deleted collection
//! leaves one entry, none for its records.
//!
//! Cost: [`Index`] is built in memory from the log on the first history
//! request (one sequential read of the log), then kept up to date
//! incrementally from the log head; it holds per entry only its position
//! in the log and what filtering by permissions needs. A request reads the
//! bucket's entries back from the log (consecutive ones share a record)
//! and pages them in memory: cost grows with the bucket's history.
//!
//! Permissions (as Kinto's): readers of the bucket see every entry; others
//! see the entries whose object they could read at the time of the change
//! (read or write on the bucket, the collection or the object then).
//! `history.exclude_resources` and `history.exclude_user_ids` hide entries.
//!
//! Differences from Kinto: entry ids are derived from the log position
//! (stable, not random UUIDs); `DELETE /buckets/{bid}/history` is refused
//! (405): the log is append-only; the exclusion settings apply to past
//! entries too (they filter at read time).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::Method;
use projections::{Change, Commit, Event, ObjectKey, Permissions, Resource, EVENT_SCHEMA};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::filters::Op;
use crate::listing::ListQuery;
use crate::permissions::{is_allowed, AclChain, Need};
use crate::request::Ctx;
use crate::response::Reply;
use crate::settings::Settings;
use crate::state::AppState;

const METHODS: &str = "GET, HEAD, OPTIONS";

/// The history of every bucket, as positions in the log. Guarded by a std
/// `Mutex`, taken only on blocking threads (catching up reads the log).
#[derive(Debug, Default)]
pub struct Index {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Last log offset indexed.
    scanned: u64,
    buckets: HashMap<String, BucketHistory>,
}

/// One bucket's entries since its latest creation, and what is needed to
/// tell creations from updates and who could read an object at the time.
#[derive(Debug, Default, Clone)]
struct BucketHistory {
    entries: Vec<Entry>,
    last_ts: u64,
    /// URIs of the live objects of the bucket (the bucket included).
    live: BTreeSet<String>,
    bucket_perms: Permissions,
    collection_perms: HashMap<String, Permissions>,
}

#[derive(Debug, Clone)]
struct Entry {
    offset: u64,
    idx: u32,
    /// The entry's own `last_modified`: strictly increasing in the bucket.
    ts: u64,
    /// Commit time (the `date`).
    date_ms: u64,
    action: &'static str,
    key: ObjectKey,
    user_id: Option<Arc<str>>,
    /// Read and write principals of the bucket, collection and object at
    /// the time of the change (Kinto's explicit `read` ACE of the entry).
    readers: Vec<String>,
}

/// The bucket id an object lives in (`None` for accounts).
fn bucket_of(key: &ObjectKey) -> Option<String> {
    match key.resource {
        Resource::Account => None,
        Resource::Bucket => Some(key.id.clone()),
        _ => key
            .parent
            .strip_prefix("/buckets/")
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned()),
    }
}

/// `(bucket, collection)` of a record's parent.
fn collection_of(key: &ObjectKey) -> Option<String> {
    match key.resource {
        Resource::Record => key.parent.split('/').nth(4).map(str::to_owned),
        Resource::Collection => Some(key.id.clone()),
        _ => None,
    }
}

fn readers_of(perms: &Permissions, out: &mut BTreeSet<String>) {
    for name in ["read", "write"] {
        if let Some(list) = perms.get(name) {
            out.extend(list.iter().cloned());
        }
    }
}

impl State {
    fn apply(&mut self, offset: u64, date_ms: u64, user: &Option<Arc<str>>, idx: u32, ev: &Event) {
        let Some(bid) = bucket_of(&ev.key) else {
            return;
        };
        if ev.key.resource == Resource::Bucket && matches!(ev.change, Change::Delete) {
            // Kinto purges a deleted bucket's history.
            self.buckets.remove(&bid);
            return;
        }
        let bh = self.buckets.entry(bid).or_default();
        let uri = ev.key.uri();
        let (action, perms) = match &ev.change {
            Change::Put { permissions, .. } => {
                let created = bh.live.insert(uri.clone());
                (
                    if created { "create" } else { "update" },
                    permissions.clone(),
                )
            }
            Change::Delete => {
                bh.live.remove(&uri);
                if ev.key.resource == Resource::Collection {
                    let below = format!("{uri}/");
                    let gone: Vec<String> = bh
                        .live
                        .range(below.clone()..)
                        .take_while(|u| u.starts_with(&below))
                        .cloned()
                        .collect();
                    for g in gone {
                        bh.live.remove(&g);
                    }
                }
                ("delete", Permissions::new())
            }
        };
        match ev.key.resource {
            Resource::Bucket => bh.bucket_perms = perms.clone(),
            Resource::Collection => {
                if action == "delete" {
                    bh.collection_perms.remove(&ev.key.id);
                } else {
                    bh.collection_perms.insert(ev.key.id.clone(), perms.clone());
                }
            }
            _ => {}
        }
        let mut readers = BTreeSet::new();
        readers_of(&bh.bucket_perms, &mut readers);
        if let Some(cid) = collection_of(&ev.key) {
            if let Some(p) = bh.collection_perms.get(&cid) {
                readers_of(p, &mut readers);
            }
        }
        readers_of(&perms, &mut readers);
        let ts = ev.last_modified.max(bh.last_ts + 1);
        bh.last_ts = ts;
        bh.entries.push(Entry {
            offset,
            idx,
            ts,
            date_ms,
            action,
            key: ev.key.clone(),
            user_id: user.clone(),
            readers: readers.into_iter().collect(),
        });
    }
}

impl Index {
    /// Indexes the log up to its head, then returns the bucket's entries
    /// and its permissions as the history saw them. Blocking.
    fn entries(&self, state: &AppState, bid: &str) -> Result<Vec<Entry>, ApiError> {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let head = state.log.head().offset;
        if st.scanned < head {
            for rec in state.log.iter_from(st.scanned + 1) {
                let rec = rec.map_err(ApiError::internal)?;
                if rec.offset > head {
                    break;
                }
                if rec.schema == EVENT_SCHEMA {
                    let commit = Commit::decode(&rec.payload).map_err(ApiError::internal)?;
                    let user: Option<Arc<str>> = commit.user_id.as_deref().map(Arc::from);
                    for (idx, ev) in commit.events.iter().enumerate() {
                        st.apply(rec.offset, rec.ts_ms, &user, idx as u32, ev);
                    }
                }
                st.scanned = rec.offset;
            }
        }
        Ok(st
            .buckets
            .get(bid)
            .map(|b| b.entries.clone())
            .unwrap_or_default())
    }
}

pub fn capability(s: &Settings) -> Value {
    let mut cap = json!({
        "description": "Track changes on data.",
        "url": "http://kinto.readthedocs.io/en/latest/api/1.x/history.html",
    });
    if !s.history_exclude_resources.is_empty() {
        let excluded: Vec<Value> = s
            .history_exclude_resources
            .iter()
            .filter_map(|uri| excluded_shape(uri))
            .collect();
        cap["excluded_resources"] = Value::Array(excluded);
    }
    cap
}

/// `/buckets/b/collections/c` → `{"bucket": "b", "collection": "c"}`.
fn excluded_shape(uri: &str) -> Option<Value> {
    let segs: Vec<&str> = uri.trim_matches('/').split('/').collect();
    let mut out = Map::new();
    let mut it = segs.chunks(2);
    for pair in it.by_ref() {
        let [kind, id] = pair else { return None };
        let name = kind.strip_suffix('s')?;
        out.insert(name.to_owned(), Value::String((*id).to_owned()));
    }
    Some(Value::Object(out))
}

/// Is the entry about an object `history.exclude_resources` names (or
/// one below it)?
fn excluded(s: &Settings, uri: &str, user: Option<&str>) -> bool {
    s.history_exclude_resources
        .iter()
        .any(|x| uri == x || uri.starts_with(&format!("{x}/")))
        || user.is_some_and(|u| s.history_exclude_user_ids.iter().any(|x| x == u))
}

/// The JSON entry of an event.
fn render(e: &Entry, ev: &Event) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(entry_id(e.offset, e.idx)));
    m.insert("last_modified".into(), Value::from(e.ts));
    m.insert("uri".into(), Value::String(e.key.uri()));
    m.insert("date".into(), Value::String(iso_date(e.date_ms)));
    m.insert("action".into(), Value::String(e.action.into()));
    m.insert(
        "resource_name".into(),
        Value::String(e.key.resource.name().into()),
    );
    m.insert(
        "user_id".into(),
        e.user_id
            .as_deref()
            .map_or(Value::Null, |u| Value::String(u.into())),
    );
    let segs: Vec<&str> = e.key.parent.split('/').collect();
    match e.key.resource {
        Resource::Bucket => {
            m.insert("bucket_id".into(), Value::String(e.key.id.clone()));
        }
        Resource::Collection => {
            m.insert("collection_id".into(), Value::String(e.key.id.clone()));
        }
        Resource::Group => {
            m.insert("group_id".into(), Value::String(e.key.id.clone()));
        }
        Resource::Record => {
            if let Some(c) = segs.get(4) {
                m.insert("collection_id".into(), Value::String((*c).to_owned()));
            }
            m.insert("record_id".into(), Value::String(e.key.id.clone()));
        }
        Resource::Account => {}
    }
    let target = match &ev.change {
        Change::Put { data, permissions } => {
            let data: Value = serde_json::from_slice(data).map_err(ApiError::internal)?;
            json!({"data": data, "permissions": permissions})
        }
        Change::Delete => json!({
            "data": {"id": e.key.id, "last_modified": ev.last_modified, "deleted": true},
            "permissions": {},
        }),
    };
    m.insert("target".into(), target);
    Ok(m)
}

/// A stable id for the entry at `(offset, idx)`, shaped as a UUID.
fn entry_id(offset: u64, idx: u32) -> String {
    let h = blake3::hash(format!("history:{offset}:{idx}").as_bytes());
    let b = h.as_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&b[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `2026-11-26T11:05:24.240000+00:00` (Python's `isoformat()` of UTC).
fn iso_date(ms: u64) -> String {
    let secs = ms / 1000;
    let micros = (ms % 1000) * 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `GET /buckets/{bid}/history`.
pub async fn handle(state: &AppState, ctx: &Ctx, bid: &str) -> Result<Reply, ApiError> {
    let head = match ctx.method {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS => return crate::root::preflight(ctx, METHODS),
        _ => return Err(ApiError::method_not_allowed(METHODS)),
    };
    let principals = ctx.identity.principals.clone();
    let bucket = state
        .projections
        .get(&ObjectKey::bucket(bid))
        .map_err(ApiError::internal)?;
    let Some(bucket) = bucket else {
        return Err(ctx.identity.denied());
    };
    let chain = AclChain {
        bucket: Some(&bucket.permissions),
        ..AclChain::default()
    };
    let reads_all = is_allowed(&chain, Resource::Bucket, Need::Read, &principals);
    let mut query = ListQuery::parse(ctx, Resource::Bucket, &state.settings)?;
    // Ids in the URL are strings: `record_id=1` means "1".
    for f in &mut query.filters {
        if f.field.ends_with("_id") || f.field == "uri" || f.field == "id" {
            stringify(&mut f.value, f.op);
        }
    }
    let st = state.clone();
    let bid = bid.to_owned();
    let items =
        tokio::task::spawn_blocking(move || -> Result<Vec<Map<String, Value>>, ApiError> {
            let entries = st.plugins.history.entries(&st, &bid)?;
            let mut out = Vec::new();
            let mut cache: Option<(u64, Commit)> = None;
            for e in entries.iter().rev() {
                if excluded(&st.settings, &e.key.uri(), e.user_id.as_deref()) {
                    continue;
                }
                if !reads_all && !e.readers.iter().any(|r| principals.contains(r)) {
                    continue;
                }
                if cache.as_ref().is_none_or(|(o, _)| *o != e.offset) {
                    let rec = st.log.read(e.offset).map_err(ApiError::internal)?;
                    let commit = Commit::decode(&rec.payload).map_err(ApiError::internal)?;
                    cache = Some((e.offset, commit));
                }
                let Some((_, commit)) = &cache else { continue };
                let Some(ev) = commit.events.get(e.idx as usize) else {
                    continue;
                };
                out.push(render(e, ev)?);
            }
            Ok(out)
        })
        .await
        .map_err(ApiError::internal)??;
    if items.is_empty() && !reads_all {
        return Err(ctx.identity.denied());
    }
    let ts = items
        .iter()
        .filter_map(|o| o.get("last_modified").and_then(Value::as_u64))
        .max()
        .unwrap_or(bucket.last_modified);
    let page = query.run_on(items);
    Ok(query.reply(ctx, page, Some(ts), head))
}

/// Numbers in a filter on an id field compared as their text.
fn stringify(v: &mut Value, _op: Op) {
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(|i| stringify(i, _op)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: ObjectKey, ts: u64, perms: &[(&str, &[&str])]) -> Event {
        Event {
            key,
            last_modified: ts,
            change: Change::Put {
                data: b"{}".to_vec(),
                permissions: perms
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            },
        }
    }

    fn del(key: ObjectKey, ts: u64) -> Event {
        Event {
            key,
            last_modified: ts,
            change: Change::Delete,
        }
    }

    #[test]
    fn actions_readers_and_purge() {
        let mut st = State::default();
        let u = Some(Arc::from("basicauth:x"));
        let evs = [
            put(ObjectKey::bucket("b"), 10, &[("write", &["alice"])]),
            put(ObjectKey::collection("b", "c"), 11, &[("read", &["bob"])]),
            put(
                ObjectKey::record("b", "c", "r"),
                12,
                &[("read", &["carol"])],
            ),
            put(ObjectKey::record("b", "c", "r"), 12, &[]),
            del(ObjectKey::collection("b", "c"), 13),
            put(ObjectKey::record("b", "c", "r"), 14, &[]),
        ];
        for (i, ev) in evs.iter().enumerate() {
            st.apply(i as u64 + 1, 1000, &u, 0, ev);
        }
        let e = &st.buckets["b"].entries;
        let actions: Vec<&str> = e.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            ["create", "create", "create", "update", "delete", "create"]
        );
        assert_eq!(e[2].readers, vec!["alice", "bob", "carol"]);
        assert_eq!(e[3].readers, vec!["alice", "bob"]);
        assert_eq!(e[5].readers, vec!["alice"], "the collection is gone");
        let ts: Vec<u64> = e.iter().map(|e| e.ts).collect();
        assert_eq!(ts, [10, 11, 12, 13, 14, 15], "strictly increasing");
        st.apply(9, 1000, &u, 0, &del(ObjectKey::bucket("b"), 20));
        assert!(!st.buckets.contains_key("b"), "deleting a bucket purges it");
    }

    #[test]
    fn dates_and_ids() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso_date(1_795_691_124_241),
            "2026-11-26T11:05:24.241000+00:00"
        );
        assert_eq!(entry_id(1, 0), entry_id(1, 0));
        assert_ne!(entry_id(1, 0), entry_id(1, 1));
        assert_eq!(entry_id(1, 0).len(), 36);
    }

    #[test]
    fn exclusions() {
        let s = Settings {
            history_exclude_resources: vec!["/buckets/b/collections/c".into()],
            ..Settings::default()
        };
        assert!(excluded(&s, "/buckets/b/collections/c", None));
        assert!(excluded(&s, "/buckets/b/collections/c/records/r", None));
        assert!(!excluded(&s, "/buckets/b/collections/cc", None));
        assert_eq!(
            excluded_shape("/buckets/b/collections/c"),
            Some(json!({"bucket": "b", "collection": "c"}))
        );
    }
}
