//! The sled side: how the one tree is opened and configured, the write set
//! ([`Overlay`]) that turns one `apply` call into one atomic batch, and the
//! generation counter that lets readers detect a batch landing mid-read.
//!
//! Everything sled-specific lives here, so that moving to another store
//! (fjall, say: see eventlog-notes R11) touches this file and little else.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use eventlog::Head;
use sled::IVec;

use crate::error::ProjectionError;
use crate::keys;
use crate::values::AppliedMeta;

/// sled's default is 1 GiB; the projections are disposable and rebuilt from
/// the log, so a smaller cache only costs speed, never data (R11 d).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// sled is never trusted for durability: this only bounds how much the log
/// replay has to redo after a crash.
const FLUSH_EVERY_MS: u64 = 1000;

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
#[derive(Debug)]
pub(crate) struct Store {
    db: sled::Db,
    /// Held by `apply` for its whole read-modify-write, so two writers can
    /// never build batches from the same stale reads. Readers never take it
    /// (except as the last resort of [`Store::consistent`]).
    writer: Mutex<()>,
    /// Mirror of `meta/applied`, updated after each successful batch; a
    /// `RwLock` so that `applied()` never waits for a batch being built.
    applied: RwLock<Head>,
    /// Seqlock generation: odd while a batch is being written. sled scans
    /// are not snapshots, so multi-key reads check it before and after.
    generation: AtomicU64,
}

/// How a store is opened: live (periodic flush) or for a rebuild (no
/// background flush; one flush at the end, since a crash restarts it anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Live,
    Rebuild,
}

impl Store {
    pub(crate) fn open(dir: &Path, mode: Mode) -> Result<Store, sled::Error> {
        let flush = match mode {
            Mode::Live => Some(FLUSH_EVERY_MS),
            Mode::Rebuild => None,
        };
        // HighThroughput: measured ~10% more inserts/s than the default
        // LowSpace here; disk use is watched and a rebuild compacts.
        let db = sled::Config::new()
            .mode(sled::Mode::HighThroughput)
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(flush)
            .open()?;
        Ok(Store::from_db(db))
    }

    /// A store in a temporary directory that sled removes on drop (tests).
    #[cfg(test)]
    pub(crate) fn temporary() -> Store {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        Store::from_db(db)
    }

    fn from_db(db: sled::Db) -> Store {
        Store {
            db,
            writer: Mutex::new(()),
            applied: RwLock::new(nothing_applied()),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.db
    }

    /// Reads `meta/applied`; `None` for a store that never applied anything.
    pub(crate) fn read_meta(&self) -> Result<Option<AppliedMeta>, ProjectionError> {
        match self.db.get(keys::META_APPLIED)? {
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

    /// A panic while holding the lock leaves sled untouched (the batch is
    /// atomic and `applied` is only set after it), so poisoning is ignored.
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn overlay(&self) -> Overlay<'_> {
        Overlay {
            tree: &self.db,
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
        let batch = overlay.into_batch();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let result = self.db.apply_batch(batch);
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
            if before % 2 == 1 {
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

    pub(crate) fn flush(&self) -> Result<(), ProjectionError> {
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, ProjectionError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// The writes of one `apply` call, not yet in sled. Reads go through it
/// (read-your-writes), so a batch that creates a record and then deletes
/// its collection cascades over the record it has just created, and the
/// resulting state never depends on where batch boundaries fell: replay in
/// 10k-event batches equals one-commit-at-a-time application.
#[derive(Debug)]
pub(crate) struct Overlay<'a> {
    tree: &'a sled::Tree,
    /// `None` is a pending removal.
    writes: BTreeMap<Vec<u8>, Option<IVec>>,
}

impl Overlay<'_> {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<IVec>, ProjectionError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?),
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: impl Into<IVec>) {
        self.writes.insert(key, Some(value.into()));
    }

    pub(crate) fn del(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Every entry starting with `prefix`, in key order, as the batch sees
    /// it. The result owns its data: the caller may write to the overlay
    /// while walking it (the cascade removes what it walks).
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Merged {
        let pending: Vec<(Vec<u8>, Option<IVec>)> = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Merged {
            pending: pending.into_iter().peekable(),
            tree: self.tree.scan_prefix(prefix).peekable(),
        }
    }

    pub(crate) fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}

/// A sled range merged with the overlay's pending writes over that range.
pub(crate) struct Merged {
    pending: Peekable<std::vec::IntoIter<(Vec<u8>, Option<IVec>)>>,
    tree: Peekable<sled::Iter>,
}

impl Iterator for Merged {
    type Item = Result<(IVec, IVec), ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let tree_key = match self.tree.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => return self.tree.next().map(|r| r.map_err(ProjectionError::from)),
                None => None,
            };
            let take_pending = match (self.pending.peek(), &tree_key) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((pk, _)), Some(tk)) => {
                    if pk.as_slice() == tk.as_ref() {
                        // The pending write shadows the stored value.
                        self.tree.next();
                        true
                    } else {
                        pk.as_slice() < tk.as_ref()
                    }
                }
            };
            if take_pending {
                match self.pending.next() {
                    Some((k, Some(v))) => return Some(Ok((IVec::from(k), v))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return self.tree.next().map(|r| r.map_err(ProjectionError::from));
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
            store.tree().insert(k, k.as_bytes()).unwrap();
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
        store.tree().apply_batch(ov.into_batch()).unwrap();
        let after: Vec<Vec<u8>> = store
            .tree()
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
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
