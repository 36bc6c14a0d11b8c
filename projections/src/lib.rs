//! `projections`: how Kinto events become materialized views and indexes.
//!
//! The log is the source of truth; everything here is disposable and can be
//! rebuilt from it. One fjall keyspace holds every view, so applying a group of
//! commits is one atomic batch that also records the log position applied.
//!
//! Module map:
//!
//! * [`event`]: the events written to the log (`Commit`, `Event`, `Change`,
//!   `ObjectKey`) and their encoding: the wire contract with the server.
//! * `error`: [`ProjectionError`], the crate's one error type.
//! * `keys`: the key layout of the one keyspace (read its header first).
//! * `values`: how view entries are encoded.
//! * `store`: the storage engine (fjall) behind [`store::Views`], the per-batch write set with
//!   read-your-writes, and the generation counter behind [`Projections::consistent`].
//! * `apply`: how an event changes the views (including cascades).
//! * `listing`: single objects, list timestamps, counts, default-order listings.
//! * `acl_index`: the principal → objects and member → groups indexes.
//! * `changes`: `_since`/`_before` from the change index and the log.
//! * `cache`: a read cache of single objects, invalidated by `apply`.
//! * `rebuild`: startup checks, replay and rebuild-from-scratch.
//! * `dump`: a canonical text dump of all views, for tests and operators.

// Lets shared test code (`tests/common`) name this crate from unit tests too.
#[cfg(test)]
extern crate self as projections;

mod acl_index;
mod apply;
mod cache;
mod changes;
mod dump;
mod error;
pub mod event;
mod keys;
mod listing;
mod rebuild;
mod store;
mod values;

use std::collections::BTreeMap;
use std::path::Path;

pub use changes::ChangesIter;
pub use error::ProjectionError;
pub use event::{Change, Commit, Event, ObjectKey, Permissions, Resource, EVENT_SCHEMA};
use eventlog::{Head, LogReader};
pub use listing::{ListIter, RawListIter};
pub use rebuild::Replayed;
use store::Store;

/// Version of the key layout and value encodings. A store written by
/// another version is rebuilt from the log at open: bump this whenever
/// `keys`, `values` or the meaning of a view changes.
pub const PROJECTION_VERSION: u32 = 2;

/// An object as materialized: `data` includes `id` and `last_modified`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub last_modified: u64,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub permissions: Permissions,
}

/// An object with its data as the JSON bytes of its event, unparsed: for
/// callers that can send or splice them as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct RawObject {
    pub last_modified: u64,
    pub data: Vec<u8>,
    pub permissions: Permissions,
}

/// The order of a listing by `last_modified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `-last_modified`, Kinto's default; ties by ascending id.
    NewestFirst,
    /// `last_modified`; ties by descending id (the exact reverse).
    OldestFirst,
}

/// One entry of a changes feed: the object's latest state, or its tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedObject {
    pub id: String,
    pub last_modified: u64,
    /// `None` for a tombstone.
    pub object: Option<StoredObject>,
}

/// The materialized views, kept in step with the log.
///
/// `Send + Sync`: reads run concurrently from any thread, `apply` is
/// serialized internally (the sequencer is its only caller). Reads of a
/// single key see one state; a read across several keys may see a batch
/// half-landed unless wrapped in [`Projections::consistent`].
#[derive(Debug)]
pub struct Projections {
    store: Store,
    /// Where `_since` reads events back.
    log: LogReader,
    /// Recently read single objects; see `cache.rs` for why it is safe.
    cache: cache::ObjectCache,
}

impl Projections {
    /// Opens the projection store in `dir`, checks `meta/applied` against
    /// the log, and replays the log after it, or rebuilds from scratch when
    /// the store is damaged, from another version, ahead of the log, or
    /// from another log. Call it before the log takes new writes.
    pub fn open(dir: &Path, log: &LogReader) -> Result<Projections, ProjectionError> {
        Projections::open_with_progress(dir, log, &mut |_| {})
    }

    /// [`Projections::open`], calling `progress` after each replayed batch
    /// (about 10k events), for tools that show how far a rebuild is.
    pub fn open_with_progress(
        dir: &Path,
        log: &LogReader,
        progress: &mut dyn FnMut(Replayed),
    ) -> Result<Projections, ProjectionError> {
        let store = rebuild::open(dir, log, progress)?;
        Ok(Projections {
            store,
            log: log.clone(),
            cache: cache::ObjectCache::default(),
        })
    }

    /// Applies durable commits (in log order) in one atomic batch that
    /// also records the last head. Commits at or below [`Self::applied`]
    /// are skipped, so applying twice is harmless. Apply only what the log
    /// has made durable: the projections must never be ahead of the log.
    pub fn apply(&self, commits: &[(Head, &Commit)]) -> Result<(), ProjectionError> {
        let result = apply::apply_commits(&self.store, commits).map(|_| ());
        // Whatever happened, forget what these commits may have changed.
        for (_, commit) in commits {
            for event in &commit.events {
                let cascades = matches!(event.change, Change::Delete)
                    && matches!(event.key.resource, Resource::Bucket | Resource::Collection);
                if cascades {
                    self.cache.clear();
                } else {
                    self.cache.remove(&event.key);
                }
            }
        }
        result
    }

    /// The last log record whose events are in the views.
    pub fn applied(&self) -> Head {
        self.store.applied()
    }

    /// A live object (`None` if it never existed or is deleted).
    pub fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, ProjectionError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit);
        }
        let generation = self.store.generation();
        let found = self.get_uncached(key)?;
        if generation & 1 == 0 && self.store.generation() == generation {
            self.cache.insert(key, found.clone());
        }
        Ok(found)
    }

    fn get_uncached(&self, key: &ObjectKey) -> Result<Option<StoredObject>, ProjectionError> {
        let k = keys::obj(key);
        match self.store.get_raw(key)? {
            Some(raw) => {
                listing::to_stored(&k, raw.last_modified, &raw.data, raw.permissions).map(Some)
            }
            None => Ok(None),
        }
    }

    /// [`Self::get`] without parsing the data.
    /// A counter that changes whenever commits are applied (odd while a
    /// batch is being written): lets callers cache what they derived from the
    /// views and know when it may be stale.
    pub fn generation(&self) -> u64 {
        self.store.generation()
    }

    pub fn get_raw(&self, key: &ObjectKey) -> Result<Option<RawObject>, ProjectionError> {
        self.store.get_raw(key)
    }

    /// Highest `last_modified` ever given to an object or tombstone of this
    /// list; survives deletion of the parent (never goes back). `None` for
    /// a list never written.
    pub fn list_timestamp(
        &self,
        parent: &str,
        resource: Resource,
    ) -> Result<Option<u64>, ProjectionError> {
        self.store.list_timestamp(parent, resource)
    }

    /// Live objects of a list, newest first (`-last_modified`, ties by
    /// ascending id), starting strictly after `after = (last_modified, id)`
    /// when given. A page costs its size: one forward range scan.
    pub fn list(&self, parent: &str, resource: Resource, after: Option<(u64, String)>) -> ListIter {
        ListIter::new(self.store.list_raw(parent, resource, after, true))
    }

    /// Like [`Self::list`], oldest first (`_sort=last_modified`).
    pub fn list_oldest_first(
        &self,
        parent: &str,
        resource: Resource,
        after: Option<(u64, String)>,
    ) -> ListIter {
        ListIter::new(self.store.list_raw(parent, resource, after, false))
    }

    /// A listing with the data left as JSON bytes (no parse): for pages
    /// sent as they are.
    pub fn list_raw(
        &self,
        parent: &str,
        resource: Resource,
        order: Order,
        after: Option<(u64, String)>,
    ) -> RawListIter {
        self.store
            .list_raw(parent, resource, after, order == Order::NewestFirst)
    }

    /// Number of live objects in a list (tombstones excluded); O(1).
    pub fn count(&self, parent: &str, resource: Resource) -> Result<u64, ProjectionError> {
        self.store.count(parent, resource)
    }

    /// Objects of a list on which any of `principals` is named directly in
    /// the object's own ACL: id → permission names held (sorted, unique).
    pub fn objects_for_principals(
        &self,
        principals: &[String],
        parent: &str,
        resource: Resource,
    ) -> Result<BTreeMap<String, Vec<String>>, ProjectionError> {
        self.store
            .objects_for_principals(principals, parent, resource)
    }

    /// Every object (any list) whose own ACL names `principal`, with the
    /// permission names it holds there: the principal index, for removing
    /// a principal everywhere and for the permissions endpoint.
    pub fn objects_naming(
        &self,
        principal: &str,
    ) -> Result<Vec<(ObjectKey, Vec<String>)>, ProjectionError> {
        self.store.objects_naming(principal)
    }

    /// Group URIs whose `members` contain `member`, sorted.
    pub fn groups_of(&self, member: &str) -> Result<Vec<String>, ProjectionError> {
        self.store.groups_of(member)
    }

    /// Changes of a list with `since < last_modified < before`, each object
    /// once in its latest state (tombstones included), read from the log,
    /// newest first.
    pub fn changes(
        &self,
        parent: &str,
        resource: Resource,
        since: Option<u64>,
        before: Option<u64>,
    ) -> Result<Vec<ChangedObject>, ProjectionError> {
        self.changes_iter(parent, resource, since, before).collect()
    }

    /// [`Self::changes`] as a lazy iterator: the log is read only for the
    /// entries taken (for `_limit` pages).
    pub fn changes_iter(
        &self,
        parent: &str,
        resource: Resource,
        since: Option<u64>,
        before: Option<u64>,
    ) -> ChangesIter {
        self.store
            .changes(&self.log, parent, resource, since, before)
    }

    /// Runs `f` so that it sees the views between two batches, never in the
    /// middle of one (each scan is a snapshot, but two reads are two
    /// snapshots). Use it for reads that
    /// combine several keys: a list timestamp with a page, a count with a
    /// listing. `f` may run more than once; after a few retries it runs
    /// while holding off writers, so it always finishes.
    pub fn consistent<T>(
        &self,
        mut f: impl FnMut(&Self) -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        self.store.consistent(|| f(self))
    }

    /// Writes the store out to disk: at clean shutdown and before a snapshot, so
    /// the next start has little to replay. Never needed for durability.
    pub fn flush(&self) -> Result<(), ProjectionError> {
        self.store.flush()
    }

    /// Bytes the store's files occupy on disk (allocated blocks).
    pub fn size_on_disk(&self) -> Result<u64, ProjectionError> {
        self.store.size_on_disk()
    }

    /// Canonical dump of every view and of `meta/applied`, one line per
    /// entry, in key order. Two stores with the same dump are the same.
    pub fn dump(&self) -> Result<String, ProjectionError> {
        self.store.dump()
    }
}
