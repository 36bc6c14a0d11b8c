//! `cairn log show`: the events of the log, filtered by commit time, object
//! path (a prefix allowed), user id and action, as a table for people or
//! JSON lines for tools. It answers "who changed this record, when, and
//! what did it look like before and after".
//!
//! The log stores the full state after each change and deletions, not the
//! action: whether a put created or updated an object, and what it looked
//! like before, is worked out by following the log from the start. Deleting
//! a bucket or collection removes everything below it with a single event
//! (Kinto's cascade); rows for the objects it removed are shown too, with
//! `cascade_of` naming the deleted parent, so a record's history does not
//! end silently.
//!
//! Memory: the paths of the live objects (for the action), plus the last
//! state of the objects matching `--object` when one is given (for
//! `before`). Without `--object`, `before` is not tracked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use projections::{Change, Commit, Permissions, Resource, EVENT_SCHEMA};
use serde_json::{json, Value};

use super::progress::{Progress, ProgressMode, Unit};
use super::time::format_ms;
use super::walk::{walk_dir, RecordRef, Rules, Visitor};
use super::{DataDir, ToolError};

/// What changed an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Result<Action, ToolError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "create" => Ok(Action::Create),
            "update" => Ok(Action::Update),
            "delete" => Ok(Action::Delete),
            other => Err(ToolError::Usage(format!(
                "unknown action {other:?}: create, update or delete"
            ))),
        }
    }
}

/// Which objects `--object` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectPattern {
    /// One object: `/buckets/b/collections/c/records/r`.
    Exact(String),
    /// `/buckets/b/*`: the object itself and everything below it.
    Below(String),
    /// `/buckets/b/collections/c/records/abc*`: any path starting so.
    Prefix(String),
}

impl ObjectPattern {
    /// Parses a path as written in URLs; a leading `/v1` is dropped, so a
    /// URL copied from a request works.
    pub fn parse(s: &str) -> Result<ObjectPattern, ToolError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ToolError::Usage("empty --object".into()));
        }
        let mut path = if s.starts_with('/') {
            s.to_string()
        } else {
            format!("/{s}")
        };
        if let Some(rest) = path.strip_prefix("/v1/") {
            path = format!("/{rest}");
        }
        if let Some(parent) = path.strip_suffix("/*") {
            return Ok(ObjectPattern::Below(parent.to_string()));
        }
        if let Some(prefix) = path.strip_suffix('*') {
            return Ok(ObjectPattern::Prefix(prefix.to_string()));
        }
        Ok(ObjectPattern::Exact(path.trim_end_matches('/').to_string()))
    }

    pub fn matches(&self, uri: &str) -> bool {
        match self {
            ObjectPattern::Exact(p) => uri == p,
            ObjectPattern::Below(p) => {
                uri == p || (uri.starts_with(p.as_str()) && uri[p.len()..].starts_with('/'))
            }
            ObjectPattern::Prefix(p) => uri.starts_with(p.as_str()),
        }
    }
}

/// The filters of `log show`; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Commit time at or after (epoch ms).
    pub since: Option<u64>,
    /// Commit time at or before (epoch ms).
    pub until: Option<u64>,
    pub object: Option<ObjectPattern>,
    /// Any of these user ids.
    pub users: Vec<String>,
    /// Any of these actions.
    pub actions: Vec<Action>,
    /// At most this many rows.
    pub limit: Option<u64>,
}

/// One row: one change to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub offset: u64,
    pub ts_ms: u64,
    pub request_id: String,
    pub user_id: Option<String>,
    pub action: Action,
    pub path: String,
    pub resource: Resource,
    pub id: String,
    pub last_modified: u64,
    /// State after (`None` for a deletion).
    pub data: Option<Value>,
    pub permissions: Option<Permissions>,
    /// State before: `None` when not tracked (no `--object`),
    /// `Some(None)` when the object did not exist.
    pub before: Option<Option<(Value, Permissions)>>,
    /// The deleted bucket or collection that removed this object.
    pub cascade_of: Option<String>,
}

impl Row {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "offset": self.offset,
            "ts_ms": self.ts_ms,
            "time": format_ms(self.ts_ms),
            "request_id": self.request_id,
            "user_id": self.user_id,
            "action": self.action.name(),
            "path": self.path,
            "resource": self.resource.name(),
            "id": self.id,
            "last_modified": self.last_modified,
            "data": self.data,
            "permissions": self.permissions,
        });
        if let Some(before) = &self.before {
            v["before"] = match before {
                Some((data, perms)) => json!({"data": data, "permissions": perms}),
                None => Value::Null,
            };
        }
        if let Some(parent) = &self.cascade_of {
            v["cascade_of"] = json!(parent);
        }
        v
    }

    pub const TABLE_HEADER: &'static str = "OFFSET   TIME                      ACTION  PATH  USER";

    pub fn to_table_line(&self) -> String {
        let action = if self.cascade_of.is_some() {
            "delete*"
        } else {
            self.action.name()
        };
        format!(
            "{:<8} {:<25} {:<7} {}  {}",
            self.offset,
            format_ms(self.ts_ms),
            action,
            self.path,
            self.user_id.as_deref().unwrap_or("-")
        )
    }
}

/// Follows the log and emits the rows that pass the filter.
struct Shower<'a> {
    filter: &'a Filter,
    /// Paths of the live objects.
    live: BTreeSet<String>,
    /// Last state of the live objects matching `--object`.
    states: BTreeMap<String, (Value, Permissions)>,
    track_before: bool,
    rows: u64,
    done: bool,
    emit: &'a mut dyn FnMut(&Row) -> Result<(), ToolError>,
}

impl Shower<'_> {
    fn wanted(&self, ts_ms: u64, user: Option<&str>, action: Action, path: &str) -> bool {
        let f = self.filter;
        f.since.is_none_or(|s| ts_ms >= s)
            && f.until.is_none_or(|u| ts_ms <= u)
            && (f.users.is_empty() || user.is_some_and(|u| f.users.iter().any(|x| x == u)))
            && (f.actions.is_empty() || f.actions.contains(&action))
            && f.object.as_ref().is_none_or(|o| o.matches(path))
    }

    fn push(&mut self, row: Row) -> Result<(), ToolError> {
        if self.done {
            return Ok(());
        }
        (self.emit)(&row)?;
        self.rows += 1;
        if self.filter.limit.is_some_and(|l| self.rows >= l) {
            self.done = true;
        }
        Ok(())
    }

    fn tracks(&self, path: &str) -> bool {
        self.track_before && self.filter.object.as_ref().is_some_and(|o| o.matches(path))
    }
}

impl Visitor for Shower<'_> {
    fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
        if self.filter.until.is_some_and(|u| r.ts_ms > u) {
            // Times never decrease along the log: nothing later matches.
            self.done = true;
            return Ok(());
        }
        let commit = decode_commit(r)?;
        let user = commit.user_id.as_deref();
        for ev in &commit.events {
            let path = ev.key.uri();
            let (action, data, permissions) = match &ev.change {
                Change::Put { data, permissions } => {
                    let action = if self.live.insert(path.clone()) {
                        Action::Create
                    } else {
                        Action::Update
                    };
                    let value: Value =
                        serde_json::from_slice(data).map_err(|e| ToolError::Payload {
                            offset: r.offset,
                            reason: format!("data of {path} is not JSON: {e}"),
                        })?;
                    (action, Some(value), Some(permissions.clone()))
                }
                Change::Delete => {
                    self.live.remove(&path);
                    (Action::Delete, None, None)
                }
            };
            let before = if self.tracks(&path) {
                let prev = self.states.remove(&path);
                if let (Some(d), Some(p)) = (&data, &permissions) {
                    self.states.insert(path.clone(), (d.clone(), p.clone()));
                }
                Some(prev)
            } else {
                None
            };
            if self.wanted(r.ts_ms, user, action, &path) {
                self.push(Row {
                    offset: r.offset,
                    ts_ms: r.ts_ms,
                    request_id: commit.request_id.clone(),
                    user_id: commit.user_id.clone(),
                    action,
                    path: path.clone(),
                    resource: ev.key.resource,
                    id: ev.key.id.clone(),
                    last_modified: ev.last_modified,
                    data,
                    permissions,
                    before,
                    cascade_of: None,
                })?;
            }
            if matches!(ev.change, Change::Delete)
                && matches!(ev.key.resource, Resource::Bucket | Resource::Collection)
            {
                self.cascade(r, &commit, &path, ev.last_modified)?;
            }
        }
        Ok(())
    }

    fn wants_more(&self) -> bool {
        !self.done
    }
}

impl Shower<'_> {
    /// Rows for the objects a bucket or collection deletion removed.
    fn cascade(
        &mut self,
        r: &RecordRef<'_>,
        commit: &Commit,
        parent: &str,
        last_modified: u64,
    ) -> Result<(), ToolError> {
        let prefix = format!("{parent}/");
        let below: Vec<String> = self
            .live
            .range(prefix.clone()..)
            .take_while(|p| p.starts_with(&prefix))
            .cloned()
            .collect();
        for path in below {
            self.live.remove(&path);
            let before = if self.tracks(&path) {
                Some(self.states.remove(&path))
            } else {
                None
            };
            if !self.wanted(r.ts_ms, commit.user_id.as_deref(), Action::Delete, &path) {
                continue;
            }
            let (resource, id) = resource_of(&path);
            self.push(Row {
                offset: r.offset,
                ts_ms: r.ts_ms,
                request_id: commit.request_id.clone(),
                user_id: commit.user_id.clone(),
                action: Action::Delete,
                path: path.clone(),
                resource,
                id,
                last_modified,
                data: None,
                permissions: None,
                before,
                cascade_of: Some(parent.to_string()),
            })?;
        }
        Ok(())
    }
}

/// The resource and id of a path (`/buckets/b/collections/c` → collection c).
fn resource_of(path: &str) -> (Resource, String) {
    let mut parts = path.rsplitn(3, '/');
    let id = parts.next().unwrap_or_default().to_string();
    let resource = match parts.next() {
        Some("collections") => Resource::Collection,
        Some("groups") => Resource::Group,
        Some("records") => Resource::Record,
        _ => Resource::Bucket,
    };
    (resource, id)
}

/// The commit in a record, refusing payload schemas this build cannot read.
pub fn decode_commit(r: &RecordRef<'_>) -> Result<Commit, ToolError> {
    if r.schema != EVENT_SCHEMA {
        return Err(ToolError::Payload {
            offset: r.offset,
            reason: format!(
                "payload schema {} (this build reads {EVENT_SCHEMA})",
                r.schema
            ),
        });
    }
    Commit::decode(r.payload).map_err(|e| ToolError::Payload {
        offset: r.offset,
        reason: format!("events do not decode: {e}"),
    })
}

/// Writes the rows of `data`'s log that pass `filter` to `out`; returns
/// how many.
pub fn show(
    data: &DataDir,
    filter: &Filter,
    json_lines: bool,
    out: &mut dyn Write,
) -> Result<u64, ToolError> {
    if !json_lines {
        writeln!(out, "{}", Row::TABLE_HEADER).map_err(ToolError::output)?;
    }
    let mut emit = |row: &Row| -> Result<(), ToolError> {
        let line = if json_lines {
            row.to_json().to_string()
        } else {
            row.to_table_line()
        };
        writeln!(out, "{line}").map_err(ToolError::output)
    };
    let mut shower = Shower {
        filter,
        live: BTreeSet::new(),
        states: BTreeMap::new(),
        track_before: filter.object.is_some(),
        rows: 0,
        done: false,
        emit: &mut emit,
    };
    // The rows are the progress; a bar would mix with them on a terminal.
    let mut progress = Progress::new(ProgressMode::Quiet, "show", 0, Unit::Bytes);
    walk_dir(&data.log(), Rules::PREFIX, &mut shower, &mut progress)?;
    let rows = shower.rows;
    out.flush().map_err(ToolError::output)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::{Log, LogOptions, NewRecord};
    use projections::{Event, ObjectKey};

    fn put(key: ObjectKey, lm: u64, data: Value) -> Event {
        let mut perms = Permissions::new();
        perms.insert("write".into(), vec!["basicauth:alice".into()]);
        Event {
            key,
            last_modified: lm,
            change: Change::Put {
                data: data.to_string().into_bytes(),
                permissions: perms,
            },
        }
    }

    fn del(key: ObjectKey, lm: u64) -> Event {
        Event {
            key,
            last_modified: lm,
            change: Change::Delete,
        }
    }

    /// A small history: alice creates b/c/r1 and r2, bob updates r1, alice
    /// deletes r2, then bob deletes collection c (cascading r1).
    fn history() -> (tempfile::TempDir, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let mut log = Log::open(&data.log(), LogOptions::default()).unwrap();
        let commits = [
            (
                "alice",
                vec![put(ObjectKey::bucket("b"), 1, json!({"id": "b"}))],
            ),
            (
                "alice",
                vec![put(ObjectKey::collection("b", "c"), 2, json!({"id": "c"}))],
            ),
            (
                "alice",
                vec![
                    put(
                        ObjectKey::record("b", "c", "r1"),
                        3,
                        json!({"id": "r1", "v": 1}),
                    ),
                    put(ObjectKey::record("b", "c", "r2"), 4, json!({"id": "r2"})),
                ],
            ),
            (
                "bob",
                vec![put(
                    ObjectKey::record("b", "c", "r1"),
                    5,
                    json!({"id": "r1", "v": 2}),
                )],
            ),
            ("alice", vec![del(ObjectKey::record("b", "c", "r2"), 6)]),
            ("bob", vec![del(ObjectKey::collection("b", "c"), 7)]),
        ];
        for (i, (user, events)) in commits.into_iter().enumerate() {
            let c = Commit {
                request_id: format!("req-{i}"),
                user_id: Some(format!("basicauth:{user}")),
                events,
            };
            log.append(&[NewRecord {
                ts_ms: 1_000 + i as u64 * 100,
                schema: EVENT_SCHEMA,
                payload: c.encode(),
            }])
            .unwrap();
        }
        (dir, data)
    }

    fn rows(data: &DataDir, filter: &Filter) -> Vec<Value> {
        let mut out = Vec::new();
        show(data, filter, true, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn summary(rows: &[Value]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["offset"],
                    r["action"].as_str().unwrap(),
                    r["path"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn whole_history_with_actions_and_cascades() {
        let (_d, data) = history();
        let all = rows(&data, &Filter::default());
        assert_eq!(
            summary(&all),
            [
                "1 create /buckets/b",
                "2 create /buckets/b/collections/c",
                "3 create /buckets/b/collections/c/records/r1",
                "3 create /buckets/b/collections/c/records/r2",
                "4 update /buckets/b/collections/c/records/r1",
                "5 delete /buckets/b/collections/c/records/r2",
                "6 delete /buckets/b/collections/c",
                "6 delete /buckets/b/collections/c/records/r1",
            ]
        );
        assert_eq!(all[7]["cascade_of"], json!("/buckets/b/collections/c"));
        assert!(
            all[0].get("before").is_none(),
            "not tracked without --object"
        );
        assert_eq!(all[0]["time"], json!("1970-01-01T00:00:01.000Z"));
    }

    #[test]
    fn one_record_before_and_after() {
        let (_d, data) = history();
        let f = Filter {
            object: Some(ObjectPattern::parse("/v1/buckets/b/collections/c/records/r1").unwrap()),
            ..Filter::default()
        };
        let r = rows(&data, &f);
        assert_eq!(summary(&r).len(), 3);
        assert_eq!(r[0]["before"], Value::Null);
        assert_eq!(r[1]["user_id"], json!("basicauth:bob"));
        assert_eq!(r[1]["before"]["data"], json!({"id": "r1", "v": 1}));
        assert_eq!(r[1]["data"], json!({"id": "r1", "v": 2}));
        assert_eq!(r[2]["before"]["data"], json!({"id": "r1", "v": 2}));
        assert_eq!(r[2]["data"], Value::Null);
    }

    #[test]
    fn filters_combine() {
        let (_d, data) = history();
        let by = |f: Filter| summary(&rows(&data, &f));
        assert_eq!(
            by(Filter {
                users: vec!["basicauth:bob".into()],
                ..Filter::default()
            }),
            [
                "4 update /buckets/b/collections/c/records/r1",
                "6 delete /buckets/b/collections/c",
                "6 delete /buckets/b/collections/c/records/r1",
            ]
        );
        assert_eq!(
            by(Filter {
                since: Some(1_100),
                until: Some(1_300),
                actions: vec![Action::Create],
                ..Filter::default()
            }),
            [
                "2 create /buckets/b/collections/c",
                "3 create /buckets/b/collections/c/records/r1",
                "3 create /buckets/b/collections/c/records/r2",
            ]
        );
        assert_eq!(
            by(Filter {
                object: Some(ObjectPattern::parse("/buckets/b/collections/c/records/*").unwrap()),
                limit: Some(2),
                ..Filter::default()
            })
            .len(),
            2
        );
        assert_eq!(
            by(Filter {
                object: Some(ObjectPattern::parse("buckets/b/collections/c/records/r*").unwrap()),
                actions: vec![Action::Delete],
                ..Filter::default()
            }),
            [
                "5 delete /buckets/b/collections/c/records/r2",
                "6 delete /buckets/b/collections/c/records/r1",
            ]
        );
    }

    #[test]
    fn table_has_a_header_and_one_line_per_row() {
        let (_d, data) = history();
        let mut out = Vec::new();
        let n = show(&data, &Filter::default(), false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count() as u64, n + 1);
        assert!(text.starts_with("OFFSET"));
        assert!(text.contains("delete*"), "{text}");
    }

    #[test]
    fn object_patterns() {
        let below = ObjectPattern::parse("/buckets/b/*").unwrap();
        assert!(below.matches("/buckets/b"));
        assert!(below.matches("/buckets/b/collections/c"));
        assert!(!below.matches("/buckets/bb"));
        let prefix = ObjectPattern::parse("/buckets/b*").unwrap();
        assert!(prefix.matches("/buckets/bb"));
        let exact = ObjectPattern::parse("/buckets/b/").unwrap();
        assert!(exact.matches("/buckets/b"));
        assert!(!exact.matches("/buckets/b/collections/c"));
        assert_eq!(
            resource_of("/buckets/b/groups/g"),
            (Resource::Group, "g".into())
        );
        assert!(Action::parse("UPDATE").is_ok());
        assert_eq!(Action::parse("move").unwrap_err().exit_code(), 2);
    }
}
