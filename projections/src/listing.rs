//! Reads of the object view and of lists: one object, a list's timestamp
//! and count, and the default-order listing.
//!
//! Listings walk `lst/` (live objects only, keyed by `(last_modified, id)`),
//! so a page of the default `-last_modified` order costs O(page size): a
//! reverse range scan from the end of the list, or from the `(ts, id)` the
//! previous page ended at.

use std::ops::Bound;

use sled::IVec;

use crate::error::ProjectionError;
use crate::event::{ObjectKey, Resource};
use crate::keys;
use crate::store::Store;
use crate::values::{decode_u64, ObjVal};
use crate::{RawObject, StoredObject};

impl Store {
    pub(crate) fn get_raw(&self, key: &ObjectKey) -> Result<Option<RawObject>, ProjectionError> {
        let k = keys::obj(key);
        match self.tree().get(&k)? {
            None => Ok(None),
            Some(v) => {
                let v = ObjVal::decode(&k, &v)?;
                Ok((!v.deleted).then_some(RawObject {
                    last_modified: v.last_modified,
                    data: v.data,
                    permissions: v.permissions,
                }))
            }
        }
    }

    pub(crate) fn list_timestamp(
        &self,
        parent: &str,
        resource: Resource,
    ) -> Result<Option<u64>, ProjectionError> {
        let k = keys::list_prefix(keys::LTS, parent, resource);
        self.tree().get(&k)?.map(|b| decode_u64(&k, &b)).transpose()
    }

    pub(crate) fn count(&self, parent: &str, resource: Resource) -> Result<u64, ProjectionError> {
        let k = keys::list_prefix(keys::CNT, parent, resource);
        Ok(self
            .tree()
            .get(&k)?
            .map(|b| decode_u64(&k, &b))
            .transpose()?
            .unwrap_or(0))
    }

    /// Live objects of a list in `last_modified` order, newest first when
    /// `newest_first`, starting strictly after `after = (ts, id)`.
    pub(crate) fn list(
        &self,
        parent: &str,
        resource: Resource,
        after: Option<(u64, String)>,
        newest_first: bool,
    ) -> ListIter {
        let prefix = keys::list_prefix(keys::LST, parent, resource);
        let start = Bound::Included(prefix.clone());
        let end = match keys::prefix_end(&prefix) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let (start, end) = match (after, newest_first) {
            (None, _) => (start, end),
            (Some((ts, id)), true) => (
                start,
                Bound::Excluded(keys::ordered_at(keys::LST, parent, resource, ts, &id)),
            ),
            (Some((ts, id)), false) => (
                Bound::Excluded(keys::ordered_at(keys::LST, parent, resource, ts, &id)),
                end,
            ),
        };
        ListIter {
            tree: self.tree().clone(),
            inner: self.tree().range::<Vec<u8>, _>((start, end)),
            newest_first,
        }
    }
}

pub(crate) fn to_stored(
    key: &[u8],
    last_modified: u64,
    data: &[u8],
    permissions: crate::Permissions,
) -> Result<StoredObject, ProjectionError> {
    let data = serde_json::from_slice(data)
        .map_err(|e| ProjectionError::corrupt(key, format!("object data: {e}")))?;
    Ok(StoredObject {
        last_modified,
        data,
        permissions,
    })
}

/// A listing in progress. Owns what it needs (no borrow of
/// [`crate::Projections`]), so it can be held across calls or moved to
/// another thread. Entries whose object moved or vanished since the scan
/// started are skipped: a write landed meanwhile; wrap the read in
/// [`crate::Projections::consistent`] to see one state.
pub struct ListIter {
    tree: sled::Tree,
    inner: sled::Iter,
    newest_first: bool,
}

impl std::fmt::Debug for ListIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListIter")
            .field("newest_first", &self.newest_first)
            .finish_non_exhaustive()
    }
}

impl ListIter {
    fn next_entry(&mut self) -> Option<sled::Result<(IVec, IVec)>> {
        if self.newest_first {
            self.inner.next_back()
        } else {
            self.inner.next()
        }
    }
}

impl Iterator for ListIter {
    type Item = Result<StoredObject, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (k, _) = match self.next_entry()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let step = || -> Result<Option<StoredObject>, ProjectionError> {
                let (key, ts) = keys::decode_ordered(keys::LST, &k)?;
                let ok = keys::obj(&key);
                let Some(v) = self.tree.get(&ok)? else {
                    return Ok(None);
                };
                let v = ObjVal::decode(&ok, &v)?;
                if v.deleted || v.last_modified != ts {
                    return Ok(None);
                }
                to_stored(&ok, v.last_modified, &v.data, v.permissions).map(Some)
            };
            match step() {
                Ok(Some(obj)) => return Some(Ok(obj)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
