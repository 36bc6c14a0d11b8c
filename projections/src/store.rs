//! The storage-engine side: how the one fjall keyspace is opened and
//! configured, the write set ([`Overlay`]) that turns one `apply` call into
//! one atomic batch, and the generation counter that lets readers detect a
//! batch landing mid-read.
//!
//! Everything engine-specific lives here: the other modules see [`Views`]
//! (get, prefix and range scans over byte keys) and [`Bytes`]. The engine
//! was sled 0.34 until its ~80k key inserts/s capped a projection rebuild
//! near 16k events/s (issue 6 asks for 100k); `docs/architecture.md`
//! ("Why fjall") has the measurements.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::iter::Peekable;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use eventlog::Head;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::error::ProjectionError;
use crate::keys;
use crate::values::AppliedMeta;

/// Bytes read from the store: reference counted, cheap to clone.
pub(crate) type Bytes = fjall::Slice;

/// Block cache. The projections are disposable and rebuilt from the log,
/// so a smaller cache only costs speed, never data (R11 d).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// The keyspace holding every view (one keyspace: one batch per commit
/// group, prefix scans across views, one journal).
const KEYSPACE: &str = "views";

/// The head of a store that has applied nothing: offset 0 and the chain's
/// genesis hash, which is also what an empty log reports as its head.
pub(crate) fn nothing_applied() -> Head {
    Head {
        offset: 0,
        hash: eventlog::genesis(),
        ts_ms: 0,
    }
}

/// The opened projection store and the in-memory state that goes with it.
pub(crate) struct Store {
    db: Database,
    dir: PathBuf,
    views: Views,
    /// Held by `apply` for its whole read-modify-write, so two writers can
    /// never build batches from the same stale reads. Readers never take it
    /// (except as the last resort of [`Store::consistent`]).
    writer: Mutex<()>,
    /// Mirror of `meta/applied`, updated after each successful batch; a
    /// `RwLock` so that `applied()` never waits for a batch being built.
    applied: RwLock<Head>,
    /// Seqlock generation: odd while a batch is being written. Separate
    /// reads (an object's head, then its list entry) are not one snapshot,
    /// so multi-key reads check it before and after.
    generation: AtomicU64,
    /// Only while a store filled from empty is built: which objects it may
    /// hold (see [`Store::track_new_objects`]).
    known: Option<KnownObjects>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("applied", &self.applied())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Batches are journaled but not pushed to the OS one by one: the
    /// journal's buffer goes out when full, at [`Store::flush`] and on
    /// drop. A killed process can lose the last applied batches; the
    /// startup replay applies them again from the log, which is the
    /// durable copy (R11 a).
    pub(crate) fn open(dir: &Path) -> Result<Store, fjall::Error> {
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .manual_journal_persist(true)
            .open()?;
        Store::from_db(db, dir)
    }

    /// On an empty store, starts remembering which objects it is given, so
    /// that a build from the whole log skips lookups of new objects (see
    /// [`KnownObjects`]). Does nothing on a store that holds anything.
    pub(crate) fn track_new_objects(&mut self) -> Result<(), ProjectionError> {
        if self.views.is_empty()? {
            self.known = Some(KnownObjects::default());
        }
        Ok(())
    }

    /// Ends [`Store::track_new_objects`] and frees its memory.
    pub(crate) fn forget_new_objects(&mut self) {
        self.known = None;
    }

    /// A store in a temporary directory removed on drop (tests).
    #[cfg(test)]
    pub(crate) fn temporary() -> Store {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let db = Database::builder(&dir)
            .temporary(true)
            .open()
            .expect("temporary store");
        Store::from_db(db, &dir).expect("temporary keyspace")
    }

    fn from_db(db: Database, dir: &Path) -> Result<Store, fjall::Error> {
        let ks = db.keyspace(KEYSPACE, KeyspaceCreateOptions::default)?;
        Ok(Store {
            db,
            dir: dir.to_path_buf(),
            views: Views { ks },
            writer: Mutex::new(()),
            applied: RwLock::new(nothing_applied()),
            generation: AtomicU64::new(0),
            known: None,
        })
    }

    pub(crate) fn views(&self) -> &Views {
        &self.views
    }

    /// Reads `meta/applied`; `None` for a store that never applied anything.
    pub(crate) fn read_meta(&self) -> Result<Option<AppliedMeta>, ProjectionError> {
        match self.views.get(keys::META_APPLIED)? {
            Some(b) => Ok(Some(AppliedMeta::decode(&b)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn set_applied(&self, head: Head) {
        *self.applied.write().unwrap_or_else(|e| e.into_inner()) = head;
    }

    pub(crate) fn applied(&self) -> Head {
        *self.applied.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A panic while holding the lock leaves the store untouched (the batch
    /// is atomic and `applied` is only set after it), so poisoning is ignored.
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn overlay(&self) -> Overlay<'_> {
        Overlay {
            views: &self.views,
            known: self.known.as_ref(),
            writes: BTreeMap::new(),
        }
    }

    /// Writes the overlay and `meta/applied = head` as one atomic batch.
    /// The caller holds the writer lock.
    pub(crate) fn commit(
        &self,
        mut overlay: Overlay<'_>,
        head: Head,
    ) -> Result<(), ProjectionError> {
        overlay.put(keys::META_APPLIED.to_vec(), AppliedMeta::new(head).encode());
        let mut batch = self.db.batch();
        for (k, v) in overlay.writes {
            if let (Some(known), Some(_)) = (&self.known, &v) {
                known.add(&k);
            }
            match v {
                Some(v) => batch.insert(&self.views.ks, k, v),
                None => batch.remove(&self.views.ks, k),
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        let result = batch.commit();
        self.generation.fetch_add(1, Ordering::SeqCst);
        result?;
        self.set_applied(head);
        Ok(())
    }

    /// The seqlock generation: changes whenever a batch is applied (odd
    /// while one is being written).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Runs a multi-key read so that it sees no batch half-applied: retried
    /// when a batch landed meanwhile (seqlock), and after a few misses run
    /// under the writer lock so that a steady write load cannot starve it.
    pub(crate) fn consistent<T>(
        &self,
        mut f: impl FnMut() -> Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        for _ in 0..4 {
            let before = self.generation.load(Ordering::SeqCst);
            if before & 1 == 1 {
                std::thread::yield_now();
                continue;
            }
            let result = f();
            if self.generation.load(Ordering::SeqCst) == before {
                return result;
            }
        }
        let _w = self.lock_writer();
        f()
    }

    /// Makes everything applied so far durable: at clean shutdown, at the
    /// end of a rebuild and before a snapshot. The in-memory tables are
    /// written out too, so that the next open does not replay a long
    /// journal.
    pub(crate) fn flush(&self) -> Result<(), ProjectionError> {
        self.views.ks.rotate_memtable_and_wait()?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Bytes the store's files occupy on disk: allocated blocks, not file
    /// lengths, since the engine preallocates its journal as a sparse file.
    pub(crate) fn size_on_disk(&self) -> Result<u64, ProjectionError> {
        fn walk(dir: &Path) -> std::io::Result<u64> {
            use std::os::unix::fs::MetadataExt;
            let mut total = 0;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                total += if meta.is_dir() {
                    walk(&entry.path())?
                } else {
                    meta.blocks() * 512
                };
            }
            Ok(total)
        }
        Ok(walk(&self.dir)?)
    }
}

/// The `obj/` keys a store built from empty has been given (as 64-bit
/// hashes; removals are not tracked). Most events of a rebuild are about
/// an object not seen before, and an engine lookup that finds nothing
/// costs a search of the memtables and a filter probe per table: about a
/// quarter of a rebuild's applying time. A key whose hash is absent was
/// never written, so its lookup is skipped; a collision only costs the
/// lookup. 16 bytes or so per object, for the rebuild's duration only.
#[derive(Default)]
struct KnownObjects {
    hashes: Mutex<HashSet<u64, BuildHasherDefault<PrehashedKey>>>,
}

impl KnownObjects {
    fn hash(key: &[u8]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    fn add(&self, key: &[u8]) {
        if key.starts_with(keys::OBJ) {
            let h = Self::hash(key);
            self.hashes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(h);
        }
    }

    /// False only for an `obj/` key that was certainly never written.
    fn may_hold(&self, key: &[u8]) -> bool {
        !key.starts_with(keys::OBJ)
            || self
                .hashes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&Self::hash(key))
    }
}

/// The set's keys are hashes already: use them as they are.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; fold anything else in, for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Read access to the one keyspace, in the terms the views need.
pub(crate) struct Views {
    ks: Keyspace,
}

impl Views {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>, ProjectionError> {
        Ok(self.ks.get(key)?)
    }

    pub(crate) fn is_empty(&self) -> Result<bool, ProjectionError> {
        Ok(self.ks.first_key_value().is_none())
    }

    /// Every entry starting with `prefix`, in key order (a snapshot taken
    /// when the scan starts).
    pub(crate) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> KvIter {
        KvIter(self.ks.prefix(prefix))
    }

    pub(crate) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> KvIter {
        KvIter(self.ks.range(range))
    }

    pub(crate) fn iter(&self) -> KvIter {
        KvIter(self.ks.iter())
    }

    /// Writes one entry outside any batch: for tests that plant or damage
    /// entries.
    #[cfg(test)]
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), ProjectionError> {
        Ok(self.ks.insert(key.as_ref(), value.as_ref())?)
    }

    #[cfg(test)]
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), ProjectionError> {
        Ok(self.ks.remove(key.as_ref())?)
    }
}

/// A scan over the store: `(key, value)` pairs in key order, either way.
/// Owns a snapshot of the keyspace, so it can be kept or sent to another
/// thread.
pub(crate) struct KvIter(fjall::Iter);

impl Iterator for KvIter {
    type Item = Result<(Bytes, Bytes), ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0
            .next()
            .map(|g| g.into_inner().map_err(ProjectionError::from))
    }
}

impl DoubleEndedIterator for KvIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0
            .next_back()
            .map(|g| g.into_inner().map_err(ProjectionError::from))
    }
}

/// The writes of one `apply` call, not yet in the store. Reads go through
/// it (read-your-writes), so a batch that creates a record and then deletes
/// its collection cascades over the record it has just created, and the
/// resulting state never depends on where batch boundaries fell: replay in
/// 10k-event batches equals one-commit-at-a-time application.
pub(crate) struct Overlay<'a> {
    views: &'a Views,
    known: Option<&'a KnownObjects>,
    /// `None` is a pending removal.
    writes: BTreeMap<Vec<u8>, Option<Bytes>>,
}

impl Overlay<'_> {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>, ProjectionError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None if self.known.is_some_and(|k| !k.may_hold(key)) => Ok(None),
            None => self.views.get(key),
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: impl Into<Bytes>) {
        self.writes.insert(key, Some(value.into()));
    }

    pub(crate) fn del(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Every entry starting with `prefix`, in key order, as the batch sees
    /// it. The result owns its data: the caller may write to the overlay
    /// while walking it (the cascade removes what it walks).
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Merged {
        let pending: Vec<(Vec<u8>, Option<Bytes>)> = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Merged {
            pending: pending.into_iter().peekable(),
            stored: self.views.scan_prefix(prefix).peekable(),
        }
    }
}

/// A stored range merged with the overlay's pending writes over that range.
pub(crate) struct Merged {
    pending: Peekable<std::vec::IntoIter<(Vec<u8>, Option<Bytes>)>>,
    stored: Peekable<KvIter>,
}

impl Iterator for Merged {
    type Item = Result<(Bytes, Bytes), ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let stored_key = match self.stored.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => return self.stored.next(),
                None => None,
            };
            let take_pending = match (self.pending.peek(), &stored_key) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((pk, _)), Some(sk)) => {
                    if pk.as_slice() == sk.as_ref() {
                        // The pending write shadows the stored value.
                        self.stored.next();
                        true
                    } else {
                        pk.as_slice() < sk.as_ref()
                    }
                }
            };
            if take_pending {
                match self.pending.next() {
                    Some((k, Some(v))) => return Some(Ok((Bytes::from(k), v))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return self.stored.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_its_own_writes_and_shadows_the_tree() {
        let store = Store::temporary();
        for k in ["p/a", "p/b", "p/c", "q/a"] {
            store.views().insert(k.as_bytes(), k.as_bytes()).unwrap();
        }
        let mut ov = store.overlay();
        ov.del(b"p/b".to_vec());
        ov.put(b"p/bb".to_vec(), &b"new"[..]);
        ov.put(b"p/c".to_vec(), &b"changed"[..]);
        ov.put(b"p/d".to_vec(), &b"d"[..]);
        ov.del(b"p/zz".to_vec());
        assert_eq!(ov.get(b"p/b").unwrap(), None);
        assert_eq!(ov.get(b"p/a").unwrap().as_deref(), Some(&b"p/a"[..]));
        assert_eq!(ov.get(b"p/c").unwrap().as_deref(), Some(&b"changed"[..]));
        let seen: Vec<(Vec<u8>, Vec<u8>)> = ov
            .scan_prefix(b"p/")
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = [
            ("p/a", "p/a"),
            ("p/bb", "new"),
            ("p/c", "changed"),
            ("p/d", "d"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        assert_eq!(seen, want);
        let _w = store.lock_writer();
        store.commit(ov, nothing_applied()).unwrap();
        let after: Vec<Vec<u8>> = store
            .views()
            .iter()
            .map(|kv| kv.unwrap().0.to_vec())
            .filter(|k| k.as_slice() != keys::META_APPLIED)
            .collect();
        assert_eq!(
            after,
            vec![
                b"p/a".to_vec(),
                b"p/bb".to_vec(),
                b"p/c".to_vec(),
                b"p/d".to_vec(),
                b"q/a".to_vec()
            ]
        );
    }
}
