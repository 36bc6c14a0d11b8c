//! Reads of objects and lists: one object, a list's timestamp and count,
//! and listings in `last_modified` order.
//!
//! A live object's data lives in its `lst/` entry, keyed newest first, so a
//! page of the default `-last_modified` order is one forward range scan
//! from the start of the list, or from the `(ts, id)` the previous page
//! ended at: O(page size), one entry read per object, nothing else.

use std::ops::Bound;

use crate::error::ProjectionError;
use crate::event::{ObjectKey, Resource};
use crate::keys;
use crate::store::{KvIter, Store};
use crate::values::{decode_u64, LiveVal, ObjHead};
use crate::{Permissions, RawObject, StoredObject};

impl Store {
    /// Two reads (`obj/` for the timestamp, then `lst/`), so run as one
    /// consistent read: a batch landing between them makes it retry.
    pub(crate) fn get_raw(&self, key: &ObjectKey) -> Result<Option<RawObject>, ProjectionError> {
        self.consistent(|| {
            let k = keys::obj(key);
            let Some(head) = self.views().get(&k)? else {
                return Ok(None);
            };
            let head = ObjHead::decode(&k, &head)?;
            if head.deleted {
                return Ok(None);
            }
            let lk = keys::ordered(keys::LST, key, head.last_modified);
            let v = self.views().get(&lk)?.ok_or_else(|| {
                ProjectionError::corrupt(&lk, "live object without its list entry")
            })?;
            let live = LiveVal::decode(&lk, &v)?;
            Ok(Some(RawObject {
                last_modified: head.last_modified,
                data: live.data,
                permissions: live.permissions,
            }))
        })
    }

    pub(crate) fn list_timestamp(
        &self,
        parent: &str,
        resource: Resource,
    ) -> Result<Option<u64>, ProjectionError> {
        let k = keys::list_prefix(keys::LTS, parent, resource);
        self.views()
            .get(&k)?
            .map(|b| decode_u64(&k, &b))
            .transpose()
    }

    pub(crate) fn count(&self, parent: &str, resource: Resource) -> Result<u64, ProjectionError> {
        let k = keys::list_prefix(keys::CNT, parent, resource);
        Ok(self
            .views()
            .get(&k)?
            .map(|b| decode_u64(&k, &b))
            .transpose()?
            .unwrap_or(0))
    }

    /// Live objects of a list, newest first when `newest_first` (ties by
    /// ascending id; exactly the reverse otherwise), starting strictly
    /// after `after = (ts, id)`.
    pub(crate) fn list_raw(
        &self,
        parent: &str,
        resource: Resource,
        after: Option<(u64, String)>,
        newest_first: bool,
    ) -> RawListIter {
        let prefix = keys::list_prefix(keys::LST, parent, resource);
        let end = match keys::prefix_end(&prefix) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let start = Bound::Included(prefix);
        let at = after.map(|(ts, id)| keys::ordered_at(keys::LST, parent, resource, ts, &id));
        let range = match (at, newest_first) {
            (None, _) => (start, end),
            (Some(at), true) => (Bound::Excluded(at), end),
            (Some(at), false) => (start, Bound::Excluded(at)),
        };
        RawListIter {
            inner: self.views().range::<Vec<u8>, _>(range),
            newest_first,
        }
    }
}

pub(crate) fn to_stored(
    key: &[u8],
    last_modified: u64,
    data: &[u8],
    permissions: Permissions,
) -> Result<StoredObject, ProjectionError> {
    let data = serde_json::from_slice(data)
        .map_err(|e| ProjectionError::corrupt(key, format!("object data: {e}")))?;
    Ok(StoredObject {
        last_modified,
        data,
        permissions,
    })
}

/// A listing in progress, objects as stored (data as JSON bytes). Owns what
/// it needs (no borrow of [`crate::Projections`]), so it can be kept or
/// moved to another thread. Not a snapshot: wrap reads that must agree
/// with a list timestamp in [`crate::Projections::consistent`].
pub struct RawListIter {
    inner: KvIter,
    newest_first: bool,
}

impl std::fmt::Debug for RawListIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawListIter")
            .field("newest_first", &self.newest_first)
            .finish_non_exhaustive()
    }
}

impl Iterator for RawListIter {
    type Item = Result<RawObject, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = if self.newest_first {
            self.inner.next()
        } else {
            self.inner.next_back()
        };
        let (k, v) = match entry? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e)),
        };
        let decoded = keys::decode_ordered(keys::LST, &k).and_then(|(_, ts)| {
            let live = LiveVal::decode(&k, &v)?;
            Ok(RawObject {
                last_modified: ts,
                data: live.data,
                permissions: live.permissions,
            })
        });
        Some(decoded)
    }
}

/// A listing in progress, objects parsed ([`StoredObject`]); see
/// [`RawListIter`].
#[derive(Debug)]
pub struct ListIter {
    raw: RawListIter,
}

impl ListIter {
    pub(crate) fn new(raw: RawListIter) -> Self {
        ListIter { raw }
    }
}

impl Iterator for ListIter {
    type Item = Result<StoredObject, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.raw.next()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        Some(to_stored(
            b"lst/",
            raw.last_modified,
            &raw.data,
            raw.permissions,
        ))
    }
}
