//! The sequencer: the one writer that orders every change.
//!
//! Handlers describe a write as a closure over a [`Txn`]; the sequencer thread
//! runs the closures one after the other, so preconditions (existence,
//! `If-Match`, permissions) are checked against the state every earlier write
//! left, and timestamps are assigned in commit order. Closures that arrive
//! together share one log append and one fdatasync (group commit); the
//! projections are applied after the sync, then every caller gets its answer.
//!
//! Inside one group, a closure that reads an object an earlier closure of the
//! same group wrote cannot see that write yet (the projections are applied
//! only after the sync). Such a read returns [`TxnError::Conflict`]: the
//! sequencer commits the group so far and runs the closure again, so no
//! overlay of uncommitted state is needed. Cascading deletes run alone in
//! their group for the same reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use eventlog::{Log, NewRecord};
use projections::{
    Change, Commit, Event, ObjectKey, Permissions, Projections, Resource, StoredObject,
    EVENT_SCHEMA,
};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::errors::ApiError;

/// What a write closure returns to its handler: the whole answer is decided
/// inside the sequencer, so it can depend on the state at sequencing time.
#[derive(Debug)]
pub struct Outcome {
    pub status: http::StatusCode,
    pub body: Value,
    /// Timestamp for `ETag` / `Last-Modified`.
    pub timestamp: Option<u64>,
    /// Extra headers (e.g. `Next-Page` of a paginated bulk delete).
    pub headers: Vec<(http::HeaderName, String)>,
}

/// Why a closure did not produce an outcome.
#[derive(Debug)]
pub enum TxnError {
    /// It read something written earlier in the same group: commit the
    /// group and run it again.
    Conflict,
    /// A final answer for the client (403, 404, 412…). Events recorded by
    /// the closure are dropped.
    Api(ApiError),
}

impl From<ApiError> for TxnError {
    fn from(e: ApiError) -> Self {
        TxnError::Api(e)
    }
}

impl From<projections::ProjectionError> for TxnError {
    fn from(e: projections::ProjectionError) -> Self {
        TxnError::Api(ApiError::internal(e))
    }
}

pub type WriteFn = Box<dyn Fn(&mut Txn<'_>) -> Result<Outcome, TxnError> + Send>;

struct WriteRequest {
    request_id: String,
    user_id: Option<String>,
    op: WriteFn,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// Handle to the sequencer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<WriteRequest>,
}

/// Most requests one group commit takes; bounds the latency of the first.
const MAX_GROUP: usize = 1024;
/// Requests waiting for the sequencer before handlers wait too.
const QUEUE_DEPTH: usize = 4096;

impl Sequencer {
    /// Starts the sequencer thread. It owns the log writer; it stops when
    /// every `Sequencer` handle is dropped, after answering what it holds.
    pub fn start(log: Log, projections: Arc<Projections>) -> (Sequencer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("cairn-sequencer".into())
            .spawn(move || Worker::new(log, projections).run(rx))
            .expect("spawning the sequencer thread");
        (Sequencer { tx }, handle)
    }

    /// Runs `op` in the sequencer and waits until its changes are durable
    /// and visible to readers.
    pub async fn submit(
        &self,
        request_id: String,
        user_id: Option<String>,
        op: WriteFn,
    ) -> Result<Outcome, ApiError> {
        let (reply, rx) = oneshot::channel();
        let req = WriteRequest {
            request_id,
            user_id,
            op,
            reply,
        };
        if self.tx.send(req).await.is_err() {
            return Err(ApiError::unavailable(3));
        }
        rx.await.unwrap_or_else(|_| Err(ApiError::unavailable(3)))
    }
}

/// A write in progress: reads through the projections, records events.
#[derive(Debug)]
pub struct Txn<'a> {
    projections: &'a Projections,
    /// URIs written by earlier closures of the current group.
    dirty: &'a HashSet<String>,
    /// Sequencer-wide last timestamp per list, `(parent, resource)`.
    list_ts: &'a HashMap<(String, Resource), u64>,
    /// This closure's own timestamp bumps, merged on success.
    local_ts: HashMap<(String, Resource), u64>,
    events: Vec<Event>,
    written: Vec<String>,
    now: u64,
    cascade: bool,
}

impl<'a> Txn<'a> {
    /// The object as the closure's earlier events and the committed state
    /// say it is.
    pub fn get(&mut self, key: &ObjectKey) -> Result<Option<StoredObject>, TxnError> {
        let uri = key.uri();
        if self.dirty.contains(&uri) {
            return Err(TxnError::Conflict);
        }
        // An event of this very closure wins over the projections.
        for ev in self.events.iter().rev() {
            if ev.key == *key {
                return Ok(match &ev.change {
                    Change::Put { data, permissions } => Some(StoredObject {
                        last_modified: ev.last_modified,
                        data: serde_json::from_slice(data).map_err(ApiError::internal)?,
                        permissions: permissions.clone(),
                    }),
                    Change::Delete => None,
                });
            }
        }
        Ok(self.projections.get(key)?)
    }

    /// Timestamp of a list as the sequencer knows it (0 when never written).
    pub fn list_timestamp(&self, parent: &str, resource: Resource) -> Result<u64, TxnError> {
        let k = (parent.to_owned(), resource);
        if let Some(t) = self.local_ts.get(&k).or_else(|| self.list_ts.get(&k)) {
            return Ok(*t);
        }
        Ok(self
            .projections
            .list_timestamp(parent, resource)?
            .unwrap_or(0))
    }

    /// Picks the next timestamp of a list: strictly above everything the list
    /// has seen. A client-supplied value is honoured only when it keeps that
    /// rule (Kinto also takes one from the past on create, which hides the
    /// object from `_since` pollers; Cairn does not).
    fn next_timestamp(
        &mut self,
        parent: &str,
        resource: Resource,
        requested: Option<u64>,
    ) -> Result<u64, TxnError> {
        let last = self.list_timestamp(parent, resource)?;
        let ts = match requested {
            Some(r) if r > last => r,
            _ => self.now.max(last + 1),
        };
        self.local_ts.insert((parent.to_owned(), resource), ts);
        Ok(ts)
    }

    /// Creates or replaces an object. `data` must not hold `id` or
    /// `last_modified`: they are set here.
    pub fn put(
        &mut self,
        key: &ObjectKey,
        mut data: Map<String, Value>,
        permissions: Permissions,
        requested_timestamp: Option<u64>,
    ) -> Result<StoredObject, TxnError> {
        let ts = self.next_timestamp(&key.parent, key.resource, requested_timestamp)?;
        data.insert("id".into(), Value::String(key.id.clone()));
        data.insert("last_modified".into(), Value::from(ts));
        let bytes = serde_json::to_vec(&data).map_err(ApiError::internal)?;
        let permissions: Permissions = permissions
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        self.events.push(Event {
            key: key.clone(),
            last_modified: ts,
            change: Change::Put {
                data: bytes,
                permissions: permissions.clone(),
            },
        });
        self.written.push(key.uri());
        Ok(StoredObject {
            last_modified: ts,
            data,
            permissions,
        })
    }

    /// Deletes an object (cascading below buckets and collections) and
    /// returns the tombstone's timestamp.
    pub fn delete(
        &mut self,
        key: &ObjectKey,
        requested_timestamp: Option<u64>,
    ) -> Result<u64, TxnError> {
        if matches!(key.resource, Resource::Bucket | Resource::Collection) {
            // The projections' cascade sees only committed state: run alone.
            if !self.dirty.is_empty() {
                return Err(TxnError::Conflict);
            }
            self.cascade = true;
        }
        let ts = self.next_timestamp(&key.parent, key.resource, requested_timestamp)?;
        self.events.push(Event {
            key: key.clone(),
            last_modified: ts,
            change: Change::Delete,
        });
        self.written.push(key.uri());
        Ok(ts)
    }

    /// Marks the current point, to undo what follows (a failed
    /// sub-request of a batch).
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            events: self.events.len(),
            written: self.written.len(),
            local_ts: self.local_ts.clone(),
            cascade: self.cascade,
        }
    }

    /// Forgets every event recorded since the savepoint.
    pub fn rollback(&mut self, sp: Savepoint) {
        self.events.truncate(sp.events);
        self.written.truncate(sp.written);
        self.local_ts = sp.local_ts;
        self.cascade = sp.cascade;
    }

    /// For writes that scan committed state (bulk deletes): run in a group
    /// of their own, after everything before them is committed.
    pub fn require_alone(&mut self) -> Result<(), TxnError> {
        if !self.dirty.is_empty() {
            return Err(TxnError::Conflict);
        }
        self.cascade = true;
        Ok(())
    }

    /// The sequencer's clock for this closure (epoch ms).
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn projections(&self) -> &Projections {
        self.projections
    }
}

/// A point in a [`Txn`] to roll back to.
#[derive(Debug)]
pub struct Savepoint {
    events: usize,
    written: usize,
    local_ts: HashMap<(String, Resource), u64>,
    cascade: bool,
}

/// The state the sequencer thread owns.
struct Worker {
    log: Log,
    projections: Arc<Projections>,
    list_ts: HashMap<(String, Resource), u64>,
    /// Last record timestamp, so the log's times never go back even if the
    /// wall clock does.
    last_now: u64,
}

/// A caller waiting for its group's commit, and what to tell it then.
type PendingReply = (
    oneshot::Sender<Result<Outcome, ApiError>>,
    Result<Outcome, ApiError>,
);

/// Closures accepted in the current group, waiting for their commit.
#[derive(Default)]
struct Group {
    dirty: HashSet<String>,
    commits: Vec<Commit>,
    /// `commits`, encoded (checked against the log's record size limit).
    payloads: Vec<Vec<u8>>,
    /// Every caller of the group, in order.
    replies: Vec<PendingReply>,
}

impl Worker {
    fn new(log: Log, projections: Arc<Projections>) -> Self {
        let last_now = log.head().ts_ms;
        Worker {
            log,
            projections,
            list_ts: HashMap::new(),
            last_now,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut queue = vec![first];
            while queue.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(r) => queue.push(r),
                    Err(_) => break,
                }
            }
            let mut group = Group::default();
            for req in queue {
                self.sequence(req, &mut group);
            }
            self.commit(group);
        }
        if let Err(e) = self.projections.flush() {
            tracing::warn!(error = %e, "flushing projections at shutdown");
        }
    }

    fn clock(&mut self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn sequence(&mut self, req: WriteRequest, group: &mut Group) {
        loop {
            let now = self.clock();
            let mut txn = Txn {
                projections: &self.projections,
                dirty: &group.dirty,
                list_ts: &self.list_ts,
                local_ts: HashMap::new(),
                events: Vec::new(),
                written: Vec::new(),
                now,
                cascade: false,
            };
            let result = (req.op)(&mut txn);
            match result {
                Err(TxnError::Conflict) => {
                    if group.commits.is_empty() && group.dirty.is_empty() {
                        // Nothing to wait for: a closure bug, not a race.
                        let _ = req
                            .reply
                            .send(Err(ApiError::internal("write conflict on an empty group")));
                        return;
                    }
                    let done = std::mem::take(group);
                    self.commit(done);
                    continue;
                }
                Err(TxnError::Api(e)) => {
                    group.replies.push((req.reply, Err(e)));
                    return;
                }
                Ok(outcome) => {
                    let Txn {
                        events,
                        written,
                        local_ts,
                        cascade,
                        ..
                    } = txn;
                    if !events.is_empty() {
                        let commit = Commit {
                            request_id: req.request_id.clone(),
                            user_id: req.user_id.clone(),
                            events,
                        };
                        let payload = commit.encode();
                        if payload.len() > eventlog::MAX_RECORD {
                            // One request is one log record; a record has a
                            // size limit. Nothing of it is kept.
                            group
                                .replies
                                .push((req.reply, Err(ApiError::request_too_large())));
                            return;
                        }
                        self.list_ts.extend(local_ts);
                        group.dirty.extend(written);
                        group.commits.push(commit);
                        group.payloads.push(payload);
                    }
                    group.replies.push((req.reply, Ok(outcome)));
                    if cascade {
                        let done = std::mem::take(group);
                        self.commit(done);
                    }
                    return;
                }
            }
        }
    }

    /// One append + fdatasync for the group, then the projections, then the
    /// answers. A failed append is never retried: the log refuses further
    /// writes and the process exits so that recovery runs at restart.
    fn commit(&mut self, group: Group) {
        let Group {
            commits,
            payloads,
            replies,
            ..
        } = group;
        if !commits.is_empty() {
            let ts = self.clock();
            let records: Vec<NewRecord> = payloads
                .into_iter()
                .map(|payload| NewRecord {
                    ts_ms: ts,
                    schema: EVENT_SCHEMA,
                    payload,
                })
                .collect();
            let heads = match self.log.append(&records) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "log append failed; no write of this group was acknowledged; exiting");
                    for (reply, _) in replies {
                        let _ = reply.send(Err(ApiError::unavailable(3)));
                    }
                    std::process::exit(70);
                }
            };
            let applied: Vec<_> = heads.into_iter().zip(commits.iter()).collect();
            if let Err(e) = self.projections.apply(&applied) {
                // The log has it; a restart replays it into the projections.
                tracing::error!(error = %e, "applying durable commits to the projections failed; exiting");
                for (reply, _) in replies {
                    let _ = reply.send(Err(ApiError::unavailable(3)));
                }
                std::process::exit(70);
            }
        }
        for (reply, outcome) in replies {
            let _ = reply.send(outcome);
        }
    }
}
