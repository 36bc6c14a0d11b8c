//! A small read cache of single objects in front of the store: every request
//! loads the addressed object and its ancestors, and most of them are the
//! same few hot buckets and collections.
//!
//! Correctness rests on two rules: an entry is inserted only by a read that
//! no batch overlapped (the store's generation was even and unchanged around
//! the read), and `apply` removes the entries of every object it changed
//! once its batch is in the store (a cascade empties the cache). So an entry is
//! never older than the last acknowledged write of its object.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::event::ObjectKey;
use crate::StoredObject;

/// Entries kept at most; the cache is emptied past it.
const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Default)]
pub(crate) struct ObjectCache {
    map: Mutex<HashMap<ObjectKey, Option<StoredObject>>>,
}

impl ObjectCache {
    /// `Some(answer)` on a hit (the answer may be "no such object").
    pub(crate) fn get(&self, key: &ObjectKey) -> Option<Option<StoredObject>> {
        self.map.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn insert(&self, key: &ObjectKey, value: Option<StoredObject>) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key.clone(), value);
        }
    }

    pub(crate) fn remove(&self, key: &ObjectKey) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}
