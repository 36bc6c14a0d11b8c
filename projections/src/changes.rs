//! `_since` / `_before`: the changes of one list, read back from the log.
//!
//! `chg/` keeps one entry per object of the list (its latest event, live or
//! tombstone), keyed by `(last_modified, id)` and pointing at the event's
//! log offset and index in its commit. A `_since=T` query is a range scan
//! of `chg/` above `T`, plus one log read per live object returned (a
//! tombstone needs no read: its id and timestamp are in the key). The cost
//! grows with the changes returned, not with the log or other lists.

use std::ops::Bound;

use eventlog::{LogReader, Record};

use crate::error::ProjectionError;
use crate::event::{Change, Commit, Resource, EVENT_SCHEMA};
use crate::keys;
use crate::listing::to_stored;
use crate::store::Store;
use crate::values::ChgVal;
use crate::ChangedObject;

/// How many decoded commits a [`ChangesIter`] keeps: consecutive changes
/// often come from one commit (a batch), which is then decoded once.
const COMMIT_CACHE: usize = 4;

/// Decodes a log record into a commit, refusing payload schemas this code
/// does not know (an upcaster would go here).
pub(crate) fn decode_record(record: &Record) -> Result<Commit, ProjectionError> {
    if record.schema != EVENT_SCHEMA {
        return Err(ProjectionError::Decode {
            offset: record.offset,
            reason: format!(
                "payload schema {} (this build reads {EVENT_SCHEMA})",
                record.schema
            ),
        });
    }
    Commit::decode(&record.payload).map_err(|e| ProjectionError::Decode {
        offset: record.offset,
        reason: e.to_string(),
    })
}

impl Store {
    /// Changes with `since < last_modified < before`, newest first.
    pub(crate) fn changes(
        &self,
        log: &LogReader,
        parent: &str,
        resource: Resource,
        since: Option<u64>,
        before: Option<u64>,
    ) -> ChangesIter {
        let prefix = keys::list_prefix(keys::CHG, parent, resource);
        let start = match since {
            None => Some(Bound::Included(prefix.clone())),
            Some(s) => s
                .checked_add(1)
                .map(|s1| Bound::Included(keys::ordered_bound(keys::CHG, parent, resource, s1))),
        };
        let end = match before {
            Some(b) => Bound::Excluded(keys::ordered_bound(keys::CHG, parent, resource, b)),
            None => match keys::prefix_end(&prefix) {
                Some(e) => Bound::Excluded(e),
                None => Bound::Unbounded,
            },
        };
        // No start only for `since = u64::MAX`: nothing can be newer.
        let inner = start.map(|start| self.tree().range::<Vec<u8>, _>((start, end)));
        ChangesIter {
            inner,
            log: log.clone(),
            cache: Vec::with_capacity(COMMIT_CACHE),
        }
    }
}

/// A `_since`/`_before` scan in progress, newest first; owns what it needs.
pub struct ChangesIter {
    inner: Option<sled::Iter>,
    log: LogReader,
    /// Recently decoded commits, by log offset.
    cache: Vec<(u64, Commit)>,
}

impl std::fmt::Debug for ChangesIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangesIter")
            .field("cached_commits", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl ChangesIter {
    fn commit(&mut self, offset: u64) -> Result<&Commit, ProjectionError> {
        let pos = match self.cache.iter().position(|(o, _)| *o == offset) {
            Some(pos) => pos,
            None => {
                let commit = decode_record(&self.log.read(offset)?)?;
                if self.cache.len() == COMMIT_CACHE {
                    self.cache.remove(0);
                }
                self.cache.push((offset, commit));
                self.cache.len() - 1
            }
        };
        Ok(&self.cache[pos].1)
    }

    fn resolve(&mut self, k: &[u8], v: &[u8]) -> Result<ChangedObject, ProjectionError> {
        let (key, ts) = keys::decode_ordered(keys::CHG, k)?;
        let pos = ChgVal::decode(k, v)?;
        if pos.deleted {
            return Ok(ChangedObject {
                id: key.id,
                last_modified: ts,
                object: None,
            });
        }
        let commit = self.commit(pos.offset)?;
        let event = commit.events.get(pos.idx as usize).ok_or_else(|| {
            ProjectionError::corrupt(
                k,
                format!("log offset {} has no event {}", pos.offset, pos.idx),
            )
        })?;
        if event.key != key || event.last_modified != ts {
            return Err(ProjectionError::corrupt(
                k,
                format!(
                    "log offset {} event {} is another change",
                    pos.offset, pos.idx
                ),
            ));
        }
        match &event.change {
            Change::Put { data, permissions } => {
                let object = to_stored(k, ts, data, permissions.clone())?;
                Ok(ChangedObject {
                    id: key.id,
                    last_modified: ts,
                    object: Some(object),
                })
            }
            Change::Delete => Err(ProjectionError::corrupt(
                k,
                "index says live, log says deleted",
            )),
        }
    }
}

impl Iterator for ChangesIter {
    type Item = Result<ChangedObject, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match self.inner.as_mut()?.next_back()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e.into())),
        };
        Some(self.resolve(&k, &v))
    }
}
