//! `projections`: how Kinto events become materialized views and indexes.
//!
//! API CONTRACT (stub — being implemented; the server codes against these
//! signatures).

pub mod event;

use std::collections::BTreeMap;
use std::path::Path;

pub use event::{Change, Commit, Event, ObjectKey, Permissions, Resource, EVENT_SCHEMA};
use eventlog::{Head, LogReader};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error("projection store: {0}")]
    Store(#[from] sled::Error),
    #[error("log: {0}")]
    Log(#[from] eventlog::LogError),
    #[error("undecodable event at log offset {offset}: {reason}")]
    Decode { offset: u64, reason: String },
}

/// An object as materialized: `data` includes `id` and `last_modified`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub last_modified: u64,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub permissions: Permissions,
}

/// One entry of a changes feed: the object's latest state, or its tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedObject {
    pub id: String,
    pub last_modified: u64,
    /// `None` for a tombstone.
    pub object: Option<StoredObject>,
}

#[derive(Debug)]
pub struct Projections {}

impl Projections {
    /// Opens the projection store in `dir`, checks `meta/applied` against the
    /// log, replays the log after it (or rebuilds from scratch).
    pub fn open(_dir: &Path, _log: &LogReader) -> Result<Projections, ProjectionError> {
        todo!()
    }
    /// Applies durable commits (in log order) in one atomic sled batch that
    /// also records the applied head.
    pub fn apply(&self, _commits: &[(Head, &Commit)]) -> Result<(), ProjectionError> {
        todo!()
    }
    pub fn applied(&self) -> Head {
        todo!()
    }
    pub fn get(&self, _key: &ObjectKey) -> Result<Option<StoredObject>, ProjectionError> {
        todo!()
    }
    /// Highest `last_modified` ever given to an object or tombstone of this
    /// list; survives deletion of the parent (never goes back).
    pub fn list_timestamp(&self, _parent: &str, _resource: Resource) -> Result<Option<u64>, ProjectionError> {
        todo!()
    }
    /// Live objects of a list, newest first (`-last_modified`), starting
    /// strictly after `after` = (last_modified, id) when given.
    pub fn list(
        &self,
        _parent: &str,
        _resource: Resource,
        _after: Option<(u64, String)>,
    ) -> impl Iterator<Item = Result<StoredObject, ProjectionError>> + '_ {
        std::iter::empty()
    }
    pub fn count(&self, _parent: &str, _resource: Resource) -> Result<u64, ProjectionError> {
        todo!()
    }
    /// Objects of a list on which any of `principals` is named directly in
    /// the object's own ACL: id → permission names held.
    pub fn objects_for_principals(
        &self,
        _principals: &[String],
        _parent: &str,
        _resource: Resource,
    ) -> Result<BTreeMap<String, Vec<String>>, ProjectionError> {
        todo!()
    }
    /// Group URIs whose `members` contain `member`.
    pub fn groups_of(&self, _member: &str) -> Result<Vec<String>, ProjectionError> {
        todo!()
    }
    /// Changes of a list with `since < last_modified < before`, each object
    /// once in its latest state (tombstones included), read from the log,
    /// newest first.
    pub fn changes(
        &self,
        _parent: &str,
        _resource: Resource,
        _since: Option<u64>,
        _before: Option<u64>,
    ) -> Result<Vec<ChangedObject>, ProjectionError> {
        todo!()
    }
}
