//! Garbage collection of attachment files: a file is removed once no live
//! record references it (unless `keep_old_files` says to keep it).
//!
//! The collector reads the log, not the request handlers: every way a
//! record stops referencing a file (a new upload, `DELETE …/attachment`, a
//! PUT without `attachment`, deleting the record, its collection or its
//! bucket, a flush, a batch of any of these) is an event in the log, so one
//! [`Index`] fed by the log sees them all. It maps each live record with an
//! attachment to its file and counts references per file (two records
//! uploading the same bytes share one file). It is built from the whole
//! log when the collector starts, then follows the log head.
//!
//! Safety against uploads in flight: a file is written before the event
//! that references it exists. Uploads register their file first
//! ([`super::files::Store::begin`]); the collector deletes a file only
//! when no upload of it is in flight and the index has read the log past
//! the point where the last such upload was answered, and it checks and
//! deletes under the same lock that registration takes. An upload that
//! finds its file already there therefore never loses it.
//!
//! History and snapshots: the log keeps every version of every record, and
//! so the metadata (`location`, `hash`…) of files that are gone. Files are
//! collected against the *live* records only, so history entries and a
//! point-in-time restore (`cairn restore --until`, `log replay`) may name
//! files that no longer exist; their downloads answer 404. With
//! `attachment.keep_old_files = true` no file is ever deleted and every
//! version stays downloadable. A snapshot copies the files present when it
//! reads them, after the log: a file collected in between is missing from
//! it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use eventlog::LogReader;
use projections::{Change, Commit, Event, Resource, EVENT_SCHEMA};
use serde_json::Value;

use super::files::{self, Dirs, FileHash, Shared};
use crate::settings::AttachmentSettings;

/// How often the collector looks at the log head when nobody nudges it
/// (plain record deletes do not).
const POLL: Duration = Duration::from_millis(250);

/// The hash a `location` names: its last path segment up to the first
/// dot, when that is 64 lowercase hex digits (`…/7e08….txt`).
pub fn hash_of_location(location: &str) -> Option<FileHash> {
    let name = location.rsplit('/').next()?;
    let stem = name.split('.').next()?;
    FileHash::parse(stem)
}

/// The file a record's data references, if any.
fn referenced(data: &[u8]) -> Option<FileHash> {
    const KEY: &[u8] = b"\"attachment\"";
    if !data.windows(KEY.len()).any(|w| w == KEY) {
        return None;
    }
    let v: Value = serde_json::from_slice(data).ok()?;
    hash_of_location(v.get("attachment")?.get("location")?.as_str()?)
}

/// Which files live records reference, as of a log offset.
#[derive(Debug, Default)]
pub struct Index {
    /// Last log offset read.
    pub processed: u64,
    /// Record URI → its file.
    refs: BTreeMap<String, FileHash>,
    /// References per file (absent = none).
    counts: HashMap<FileHash, u32>,
    /// Unreferenced files that `keep_old_files` keeps for good.
    kept: HashSet<FileHash>,
    /// Files whose last reference went away, to delete once safe.
    pub candidates: HashSet<FileHash>,
    /// False once a record could not be read: the index may miss
    /// references, so nothing is deleted any more.
    pub sound: bool,
}

impl Index {
    pub fn new() -> Index {
        Index {
            sound: true,
            ..Index::default()
        }
    }

    pub fn count(&self, h: &FileHash) -> u32 {
        self.counts.get(h).copied().unwrap_or(0)
    }

    pub fn is_kept(&self, h: &FileHash) -> bool {
        self.kept.contains(h)
    }

    fn add(&mut self, h: FileHash) {
        *self.counts.entry(h).or_default() += 1;
    }

    fn release(&mut self, h: FileHash, keep: bool) {
        let n = self.counts.entry(h).or_default();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.counts.remove(&h);
            if keep {
                self.kept.insert(h);
            } else {
                self.candidates.insert(h);
            }
        }
    }

    /// Drops every reference of the records under `prefix`.
    fn release_below(&mut self, prefix: &str, settings: &AttachmentSettings) {
        let gone: Vec<(String, FileHash)> = self
            .refs
            .range(prefix.to_owned()..)
            .take_while(|(uri, _)| uri.starts_with(prefix))
            .map(|(u, h)| (u.clone(), *h))
            .collect();
        for (uri, h) in gone {
            self.refs.remove(&uri);
            self.release(h, keep_old_files(settings, &uri));
        }
    }

    /// Applies one event of the log.
    pub fn apply(&mut self, ev: &Event, settings: &AttachmentSettings) {
        let uri = ev.key.uri();
        match (ev.key.resource, &ev.change) {
            (Resource::Record, Change::Put { data, .. }) => {
                let new = referenced(data);
                let old = self.refs.get(&uri).copied();
                if old == new {
                    return;
                }
                if let Some(h) = new {
                    self.add(h);
                    self.refs.insert(uri.clone(), h);
                } else {
                    self.refs.remove(&uri);
                }
                if let Some(h) = old {
                    self.release(h, keep_old_files(settings, &uri));
                }
            }
            (Resource::Record, Change::Delete) => {
                if let Some(h) = self.refs.remove(&uri) {
                    self.release(h, keep_old_files(settings, &uri));
                }
            }
            (Resource::Collection | Resource::Bucket, Change::Delete) => {
                self.release_below(&format!("{uri}/"), settings);
            }
            _ => {}
        }
    }

    /// Reads the log from `processed + 1` up to `head`.
    pub fn catch_up(&mut self, log: &LogReader, head: u64, settings: &AttachmentSettings) {
        if self.processed >= head {
            return;
        }
        for rec in log.iter_from(self.processed + 1) {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, offset = self.processed + 1, "attachments: cannot read the log; files are no longer collected");
                    self.sound = false;
                    return;
                }
            };
            if rec.offset > head {
                break;
            }
            self.processed = rec.offset;
            if rec.schema != EVENT_SCHEMA {
                tracing::error!(
                    offset = rec.offset,
                    schema = rec.schema,
                    "attachments: log record of an unknown schema; files are no longer collected"
                );
                self.sound = false;
                continue;
            }
            match Commit::decode(&rec.payload) {
                Ok(commit) => {
                    for ev in &commit.events {
                        self.apply(ev, settings);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, offset = rec.offset, "attachments: undecodable log record; files are no longer collected");
                    self.sound = false;
                }
            }
        }
    }

    /// Deletes the candidates that are safe to delete; the others (an
    /// upload of the same bytes in flight, or answered past what the index
    /// has read) wait for a later round. Returns how many files went.
    pub fn collect(&mut self, dirs: &Dirs, shared: &Shared) -> usize {
        let mut removed = 0;
        if !self.sound {
            self.candidates.clear();
            return 0;
        }
        let candidates: Vec<FileHash> = self.candidates.iter().copied().collect();
        for h in candidates {
            if self.count(&h) > 0 || self.is_kept(&h) {
                self.candidates.remove(&h);
                continue;
            }
            // Checked and deleted under the lock uploads register with.
            let mut pending = shared.pending();
            if let Some(p) = pending.get(&h) {
                if p.in_flight > 0 || p.resolved_at > self.processed {
                    continue;
                }
                pending.remove(&h);
            }
            match files::remove(dirs, &h) {
                Ok(true) => {
                    removed += 1;
                    tracing::debug!(file = %h, "attachments: unreferenced file removed");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = %h, error = %e, "attachments: cannot remove an unreferenced file");
                }
            }
            drop(pending);
            self.candidates.remove(&h);
        }
        // Forget uploads that are over and already in the index.
        shared
            .pending()
            .retain(|_, p| p.in_flight > 0 || p.resolved_at > self.processed);
        removed
    }
}

/// Does `keep_old_files` apply to the record at `uri`? The collection's
/// setting, else the bucket's, else the global one (kinto-attachment's
/// `attachment.resources.*` precedence).
pub fn keep_old_files(settings: &AttachmentSettings, record_uri: &str) -> bool {
    let mut parts = record_uri.split('/');
    // "", "buckets", bid, "collections", cid, "records", rid
    let (bid, cid) = (parts.nth(2), parts.nth(1));
    let lookup = |uri: String| settings.resources.get(&uri).and_then(|o| o.keep_old_files);
    if let (Some(b), Some(c)) = (bid, cid) {
        if let Some(v) = lookup(format!("/buckets/{b}/collections/{c}")) {
            return v;
        }
    }
    if let Some(b) = bid {
        if let Some(v) = lookup(format!("/buckets/{b}")) {
            return v;
        }
    }
    settings.keep_old_files
}

/// Starts the collector thread (once per server). It builds the index
/// from the whole log, removes files no live record references (left by
/// a crash between a commit and a removal, or by failed uploads) and
/// temporary files of dead processes, then follows the log head.
///
/// A plain thread, not a runtime task: it does blocking I/O, holds no
/// handle that keeps the sequencer alive, and needs no shutdown (the
/// process exits under it; every step it takes is idempotent).
pub fn start(shared: Arc<Shared>, log: LogReader, dirs: Dirs, settings: AttachmentSettings) {
    shared.worker.get_or_init(|| {
        let worker_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("cairn-attachments-gc".into())
            .spawn(move || run(&worker_shared, &log, &dirs, &settings));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "attachments: cannot start the file collector");
        }
    });
}

fn run(shared: &Shared, log: &LogReader, dirs: &Dirs, settings: &AttachmentSettings) {
    let mut index = Index::new();
    index.catch_up(log, log.head().offset, settings);
    match files::clean_tmp(dirs) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "attachments: removed unfinished uploads"),
        Err(e) => tracing::warn!(error = %e, "attachments: cannot clean temporary files"),
    }
    // Every file on disk is a candidate: those live records reference, or
    // that `keep_old_files` keeps (the index replayed the whole log under
    // the current settings, so it knows them), are spared; the others are
    // files of failed uploads or removals a crash interrupted.
    match files::list(dirs) {
        Ok(all) => index.candidates.extend(all),
        Err(e) => tracing::warn!(error = %e, "attachments: cannot list stored files"),
    }
    let n = index.collect(dirs, shared);
    if n > 0 {
        tracing::info!(files = n, "attachments: removed files no record references");
    }
    loop {
        {
            let mut w = shared.wake.lock().unwrap_or_else(|e| e.into_inner());
            if !w.nudged {
                w = shared
                    .wake_cv
                    .wait_timeout(w, POLL)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            w.nudged = false;
            index.candidates.extend(w.candidates.drain(..));
        }
        index.catch_up(log, log.head().offset, settings);
        index.collect(dirs, shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AttachmentOverrides;
    use projections::ObjectKey;
    use serde_json::json;

    fn h(n: u8) -> FileHash {
        FileHash([n; 32])
    }

    fn put(key: &ObjectKey, data: Value) -> Event {
        Event {
            key: key.clone(),
            last_modified: 1,
            change: Change::Put {
                data: serde_json::to_vec(&data).unwrap(),
                permissions: Default::default(),
            },
        }
    }

    fn del(key: &ObjectKey) -> Event {
        Event {
            key: key.clone(),
            last_modified: 2,
            change: Change::Delete,
        }
    }

    fn with_file(n: u8) -> Value {
        json!({"title": "x", "attachment": {"location": format!("b/c/{}.txt", h(n)), "hash": "…"}})
    }

    #[test]
    fn locations_name_hashes() {
        let x = h(0xab);
        assert_eq!(hash_of_location(&format!("{x}.txt")), Some(x));
        assert_eq!(hash_of_location(&format!("{x}")), Some(x));
        assert_eq!(hash_of_location(&format!("b/c/{x}.tar.gz")), Some(x));
        assert_eq!(
            hash_of_location(&format!("http://cdn/files/{x}.png")),
            Some(x)
        );
        assert_eq!(hash_of_location("b/c/7e08a9c0-uuid.txt"), None);
        assert_eq!(referenced(br#"{"attachment": null}"#), None);
        assert_eq!(
            referenced(serde_json::to_vec(&with_file(3)).unwrap().as_slice()),
            Some(h(3))
        );
    }

    #[test]
    fn references_are_counted_per_file() {
        let s = AttachmentSettings::default();
        let mut idx = Index::new();
        let r1 = ObjectKey::record("b", "c", "r1");
        let r2 = ObjectKey::record("b", "c", "r2");
        idx.apply(&put(&r1, with_file(1)), &s);
        idx.apply(&put(&r2, with_file(1)), &s);
        assert_eq!(idx.count(&h(1)), 2);
        // Updating other fields keeps the reference.
        idx.apply(&put(&r1, with_file(1)), &s);
        assert_eq!(idx.count(&h(1)), 2);
        // Replaced on r1: one reference left, nothing to collect.
        idx.apply(&put(&r1, with_file(2)), &s);
        assert_eq!(idx.count(&h(1)), 1);
        assert!(idx.candidates.is_empty());
        // Attachment removed (`null`) on r2: h(1) is unreferenced.
        idx.apply(&put(&r2, json!({"attachment": null})), &s);
        assert_eq!(idx.count(&h(1)), 0);
        assert!(idx.candidates.contains(&h(1)));
        // Record deleted.
        idx.apply(&del(&r1), &s);
        assert!(idx.candidates.contains(&h(2)));
    }

    #[test]
    fn cascades_release_everything_below() {
        let s = AttachmentSettings::default();
        let mut idx = Index::new();
        idx.apply(&put(&ObjectKey::record("b", "c", "r"), with_file(1)), &s);
        idx.apply(&put(&ObjectKey::record("b", "d", "r"), with_file(2)), &s);
        idx.apply(&put(&ObjectKey::record("bb", "c", "r"), with_file(3)), &s);
        idx.apply(&del(&ObjectKey::collection("b", "c")), &s);
        assert_eq!(
            idx.candidates.iter().copied().collect::<Vec<_>>(),
            vec![h(1)]
        );
        // `/buckets/b/` does not cover `/buckets/bb/`.
        idx.apply(&del(&ObjectKey::bucket("b")), &s);
        assert_eq!(idx.count(&h(2)), 0);
        assert_eq!(idx.count(&h(3)), 1);
    }

    #[test]
    fn keep_old_files_per_resource() {
        let mut s = AttachmentSettings::default();
        s.resources.insert(
            "/buckets/keep".into(),
            AttachmentOverrides {
                keep_old_files: Some(true),
                ..Default::default()
            },
        );
        s.resources.insert(
            "/buckets/keep/collections/no".into(),
            AttachmentOverrides {
                keep_old_files: Some(false),
                ..Default::default()
            },
        );
        assert!(keep_old_files(&s, "/buckets/keep/collections/c/records/r"));
        assert!(!keep_old_files(
            &s,
            "/buckets/keep/collections/no/records/r"
        ));
        assert!(!keep_old_files(
            &s,
            "/buckets/other/collections/c/records/r"
        ));
        let mut idx = Index::new();
        let r = ObjectKey::record("keep", "c", "r");
        idx.apply(&put(&r, with_file(1)), &s);
        idx.apply(&del(&r), &s);
        assert!(idx.is_kept(&h(1)));
        assert!(idx.candidates.is_empty());
    }

    #[test]
    fn collect_spares_uploads_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            base: dir.path().to_path_buf(),
        };
        let shared = Shared::default();
        let a = FileHash::of(b"a");
        let b = FileHash::of(b"b");
        files::write_durable(&dirs, &a, b"a").unwrap();
        files::write_durable(&dirs, &b, b"b").unwrap();
        let mut idx = Index::new();
        idx.processed = 10;
        idx.candidates.extend([a, b]);
        // An upload of `b` in flight, then one answered at offset 12.
        shared.pending().insert(
            b,
            super::super::files::Pending {
                in_flight: 1,
                resolved_at: 0,
            },
        );
        assert_eq!(idx.collect(&dirs, &shared), 1);
        assert_eq!(files::list(&dirs).unwrap(), vec![b]);
        shared.pending().get_mut(&b).unwrap().in_flight = 0;
        shared.pending().get_mut(&b).unwrap().resolved_at = 12;
        assert_eq!(idx.collect(&dirs, &shared), 0);
        idx.processed = 12;
        assert_eq!(idx.collect(&dirs, &shared), 1);
        assert!(files::list(&dirs).unwrap().is_empty());
        assert!(shared.pending().is_empty());
    }
}
