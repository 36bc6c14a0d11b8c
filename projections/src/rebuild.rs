//! Startup: open the store, decide whether it can be trusted, then replay
//! the log after what it has applied, or rebuild it from the whole log.
//!
//! The rules (eventlog-notes R6): a store that does not open is moved aside
//! (`<dir>.corrupt-<ms>`, kept for the operator) and rebuilt; a store from
//! another projection version, ahead of the log, or whose applied hash is
//! not the log's hash at that offset (the log was replaced) is moved to
//! `<dir>.old-<ms>` and rebuilt, and the old copy removed once the new one
//! is complete. Every store, new or rebuilt, is filled in place: each
//! replay batch moves `meta/applied` atomically with its changes, so a
//! store cut anywhere (a crash mid-rebuild) is a valid prefix of the log,
//! and the next start just carries on from it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::{Head, LogError, LogReader};

use crate::apply::apply_commits;
use crate::changes::decode_record;
use crate::error::ProjectionError;
use crate::event::Commit;
use crate::store::{nothing_applied, Store};

/// Events per store batch during replay: large enough to amortize a batch,
/// small enough to show progress and bound the overlay's memory.
pub(crate) const REPLAY_BATCH_EVENTS: usize = 10_000;

/// Why an existing store is not used.
#[derive(Debug)]
enum Verdict {
    /// Trusted: replay the log after this head.
    Replay(Head),
    Rebuild(String),
}

/// How far a replay is, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// The log offset applied so far.
    pub offset: u64,
    /// The offset the replay goes to (the log's head when it started).
    pub target: u64,
    /// Records (commits) applied so far by this replay.
    pub records: u64,
    /// Events applied so far by this replay.
    pub events: u64,
}

pub(crate) fn open(
    dir: &Path,
    log: &LogReader,
    progress: &mut dyn FnMut(Replayed),
) -> Result<Store, ProjectionError> {
    let reason = match open_store(dir) {
        Ok(mut store) => {
            // We hold the store's lock: no other process is building.
            remove_leftovers(dir);
            match verdict(&store, log)? {
                Verdict::Replay(head) => {
                    store.set_applied(head);
                    // A new store (a missing or empty directory) is built
                    // the fast way.
                    store.track_new_objects()?;
                    match replay(&store, log, progress) {
                        Ok(_) => {
                            store.forget_new_objects();
                            return Ok(store);
                        }
                        // The store, not the log, is at fault: rebuild.
                        Err(e @ (ProjectionError::Corrupt { .. } | ProjectionError::Store(_))) => {
                            drop(store);
                            move_aside(dir, "old")?;
                            format!("replay failed: {e}")
                        }
                        Err(e) => return Err(e),
                    }
                }
                Verdict::Rebuild(reason) => {
                    drop(store);
                    move_aside(dir, "old")?;
                    reason
                }
            }
        }
        Err(OpenError::Locked(e)) => return Err(e.into()),
        Err(OpenError::Damaged(reason)) => {
            let aside = move_aside(dir, "corrupt")?;
            tracing::error!(dir = %dir.display(), aside = %aside.display(), %reason,
                "projection store does not open; moved it aside");
            remove_leftovers(dir);
            reason
        }
    };
    tracing::warn!(dir = %dir.display(), %reason, "rebuilding projections from the log");
    let mut store = match open_store(dir) {
        Ok(store) => store,
        Err(OpenError::Locked(e)) => return Err(e.into()),
        Err(OpenError::Damaged(reason)) => {
            return Err(ProjectionError::Io(std::io::Error::other(format!(
                "a new projection store does not open: {reason}"
            ))))
        }
    };
    store.track_new_objects()?;
    replay(&store, log, progress)?;
    store.forget_new_objects();
    // The old store, moved aside above.
    remove_leftovers(dir);
    Ok(store)
}

/// Whether the store can be trusted, given the log.
fn verdict(store: &Store, log: &LogReader) -> Result<Verdict, ProjectionError> {
    let meta = match store.read_meta() {
        Ok(Some(meta)) => meta,
        Ok(None) if store.views().is_empty()? => return Ok(Verdict::Replay(nothing_applied())),
        Ok(None) => return Ok(Verdict::Rebuild("entries but no meta/applied".into())),
        Err(e) => return Ok(Verdict::Rebuild(format!("meta/applied unreadable: {e}"))),
    };
    if meta.projection_version != crate::PROJECTION_VERSION {
        return Ok(Verdict::Rebuild(format!(
            "projection version {} (this build writes {})",
            meta.projection_version,
            crate::PROJECTION_VERSION
        )));
    }
    let head = log.head();
    if meta.offset > head.offset {
        tracing::error!(applied = meta.offset, log_head = head.offset,
            "projections are ahead of the log: the log's tail was lost or an older log was restored");
        return Ok(Verdict::Rebuild(format!(
            "applied offset {} is past the log head {}",
            meta.offset, head.offset
        )));
    }
    if meta.offset == 0 {
        return Ok(Verdict::Replay(nothing_applied()));
    }
    match log.read(meta.offset) {
        Ok(record) if record.hash.0 == meta.hash => Ok(Verdict::Replay(meta.head())),
        Ok(_) => Ok(Verdict::Rebuild(format!(
            "chain hash at offset {} differs: the log was replaced",
            meta.offset
        ))),
        Err(LogError::NotFound(_)) => Ok(Verdict::Rebuild(format!(
            "log has no record at applied offset {}",
            meta.offset
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Applies the log after the store's applied offset, up to the head the
/// log had when replay started, in batches of about
/// [`REPLAY_BATCH_EVENTS`] events. Returns the number of events applied.
///
/// Reading (checksums, chain, decoding) runs on its own thread, a couple
/// of batches ahead of the applying one: on a rebuild of a million
/// one-event commits they take about 2 and 6.5 s of CPU, and they overlap.
pub(crate) fn replay(
    store: &Store,
    log: &LogReader,
    progress: &mut dyn FnMut(Replayed),
) -> Result<u64, ProjectionError> {
    let target = log.head().offset;
    let from = store.applied().offset + 1;
    if from > target {
        return Ok(0);
    }
    let started = Instant::now();
    let mut last_report = started;
    let mut total: u64 = 0;
    let mut records: u64 = 0;
    tracing::info!(from, to = target, "replaying the log into the projections");
    std::thread::scope(|scope| -> Result<(), ProjectionError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD_BATCHES);
        // Applied batches go back to the reader to be freed there: freeing
        // a million decoded events is not free, and the applier is the
        // bottleneck.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn_scoped(scope, move || {
                read_batches(log, from, target, &tx, &done_rx)
            })?;
        // Ends when the reader is done; an error here drops `rx`, which
        // stops the reader at its next send.
        for batch in rx {
            let batch: Vec<(Head, Commit)> = batch?;
            let refs: Vec<(Head, &Commit)> = batch.iter().map(|(h, c)| (*h, c)).collect();
            apply_commits(store, &refs)?;
            total += batch
                .iter()
                .map(|(_, c)| c.events.len() as u64)
                .sum::<u64>();
            drop(refs);
            records += batch.len() as u64;
            // The reader may have finished already: then free it here.
            let _ = done_tx.send(batch);
            progress(Replayed {
                offset: store.applied().offset,
                target,
                records,
                events: total,
            });
            if last_report.elapsed() >= Duration::from_secs(2) {
                last_report = Instant::now();
                tracing::info!(
                    applied = store.applied().offset,
                    to = target,
                    events = total,
                    events_per_s = rate(total, started.elapsed()),
                    "replay progress"
                );
            }
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    tracing::info!(
        applied = store.applied().offset,
        events = total,
        ms = elapsed.as_millis() as u64,
        events_per_s = rate(total, elapsed),
        "replay done"
    );
    Ok(total)
}

/// Batches the reader may have ready before the applier takes them.
const READ_AHEAD_BATCHES: usize = 2;

type Batch = Result<Vec<(Head, Commit)>, ProjectionError>;

/// Reads and decodes `[from, target]` into batches of about
/// [`REPLAY_BATCH_EVENTS`] events; stops at the first error (sent on) or
/// when the applier has gone. Frees the batches the applier sends back.
fn read_batches(
    log: &LogReader,
    from: u64,
    target: u64,
    tx: &std::sync::mpsc::SyncSender<Batch>,
    done: &std::sync::mpsc::Receiver<Vec<(Head, Commit)>>,
) {
    let mut pending: Vec<(Head, Commit)> = Vec::new();
    let mut pending_events = 0usize;
    for record in log.iter_from(from) {
        let record = match record {
            Ok(record) if record.offset > target => break,
            Ok(record) => record,
            Err(e) => {
                let _ = tx.send(Err(e.into()));
                return;
            }
        };
        let commit = match decode_record(&record) {
            Ok(commit) => commit,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        // Empty commits still count, so a long run of them is batched too.
        pending_events += commit.events.len().max(1);
        pending.push((
            Head {
                offset: record.offset,
                hash: record.hash,
                ts_ms: record.ts_ms,
            },
            commit,
        ));
        if pending_events >= REPLAY_BATCH_EVENTS {
            pending_events = 0;
            while let Ok(applied) = done.try_recv() {
                drop(applied);
            }
            if tx.send(Ok(std::mem::take(&mut pending))).is_err() {
                return;
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(Ok(pending));
    }
}

fn rate(events: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (events as f64 / secs) as u64
    } else {
        0
    }
}

enum OpenError {
    /// Another process holds the store: never move it aside.
    Locked(fjall::Error),
    Damaged(String),
}

fn is_lock_error(e: &fjall::Error) -> bool {
    matches!(e, fjall::Error::Locked)
}

/// How long an open waits for the store's lock file. The engine releases
/// it when the last background reference of a dropped database goes, which
/// can trail the `drop` by a moment (seen in tests that close and reopen at
/// once); a store really held by another process still fails, after this
/// delay.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the store, turning both its errors and its panics into "damaged",
/// except a held lock. A non-empty directory that is not a fjall database
/// (a sled store from before the move to fjall, or anything else) is
/// damaged too: opening it would write a new database among foreign files.
fn open_store(dir: &Path) -> Result<Store, OpenError> {
    if let Some(reason) = foreign_files(dir) {
        return Err(OpenError::Damaged(reason));
    }
    let started = Instant::now();
    loop {
        match std::panic::catch_unwind(|| Store::open(dir)) {
            Ok(Ok(store)) => return Ok(store),
            Ok(Err(e)) if is_lock_error(&e) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(OpenError::Locked(e));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(Err(e)) => return Err(OpenError::Damaged(e.to_string())),
            Err(_) => {
                return Err(OpenError::Damaged(
                    "the store panicked while opening".into(),
                ))
            }
        }
    }
}

/// Why `dir` holds something other than a projection store, if it does:
/// entries but no `version` file (every fjall database has one).
fn foreign_files(dir: &Path) -> Option<String> {
    let mut entries = std::fs::read_dir(dir).ok()?;
    if entries.next().is_none() || dir.join("version").exists() {
        return None;
    }
    let sled = dir.join("conf").exists() && dir.join("db").exists();
    Some(if sled {
        "a sled store (the projections moved to fjall)".into()
    } else {
        "files but no fjall version file".into()
    })
}

/// Renames `dir` (if it exists) to a new `<dir>.<kind>-<ms>`; returns that.
fn move_aside(dir: &Path, kind: &str) -> Result<PathBuf, ProjectionError> {
    let aside = sibling(dir, kind)?;
    if dir.exists() {
        std::fs::rename(dir, &aside)?;
    }
    Ok(aside)
}

/// `<dir>.<kind>-<ms>`, next to `dir`, not yet existing.
fn sibling(dir: &Path, kind: &str) -> Result<PathBuf, ProjectionError> {
    let name = dir.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} has no directory name", dir.display()),
        )
    })?;
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut n = 0u32;
    loop {
        let suffix = if n == 0 {
            format!("{kind}-{ms}")
        } else {
            format!("{kind}-{ms}-{n}")
        };
        let candidate = dir.with_file_name(format!("{}.{suffix}", name.to_string_lossy()));
        if !candidate.exists() {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// Removes `<dir>.old-*` (a store being replaced) and `<dir>.rebuild-*`
/// (from versions that built beside the store), left by a crash mid-rebuild
/// (never `.corrupt-*`: those are kept for the operator).
fn remove_leftovers(dir: &Path) {
    let (Some(name), Some(parent)) = (dir.file_name(), dir.parent()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let leftover = [".rebuild-", ".old-"].iter().any(|k| {
            file.strip_prefix(name.as_ref())
                .is_some_and(|rest| rest.starts_with(k))
        });
        if leftover {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove a leftover projection build");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use crate::values::{encode_u64, AppliedMeta};
    use crate::{Change, Event, ObjectKey, Projections, EVENT_SCHEMA};
    use eventlog::{Log, LogOptions, NewRecord};

    /// A log with a few commits, and a projection directory opened on it.
    fn setup() -> (tempfile::TempDir, Log, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = Log::open(&tmp.path().join("log"), LogOptions::default()).unwrap();
        let records: Vec<NewRecord> = (1..=3u64)
            .map(|n| {
                let key = ObjectKey::record("b", "c", &format!("r{n}"));
                let data = format!(r#"{{"id":"r{n}","last_modified":{n}}}"#).into_bytes();
                let event = Event {
                    key,
                    last_modified: n,
                    change: Change::Put {
                        data,
                        permissions: Default::default(),
                    },
                };
                let commit = Commit {
                    request_id: "r".into(),
                    user_id: None,
                    events: vec![event],
                };
                NewRecord {
                    ts_ms: n,
                    schema: EVENT_SCHEMA,
                    payload: commit.encode(),
                }
            })
            .collect();
        log.append(&records).unwrap();
        let dir = tmp.path().join("projections");
        let p = Projections::open(&dir, &log.reader()).unwrap();
        assert_eq!(
            p.count("/buckets/b/collections/c", crate::Resource::Record)
                .unwrap(),
            3
        );
        drop(p);
        (tmp, log, dir)
    }

    fn open_live(dir: &Path) -> Store {
        match open_store(dir) {
            Ok(store) => store,
            Err(_) => panic!("store does not open"),
        }
    }

    /// Plants an entry no event produces (a rebuild drops it) and lets the
    /// test rewrite `meta/applied`.
    fn tamper(dir: &Path, change: impl FnOnce(&mut AppliedMeta)) {
        let store = open_live(dir);
        let mut meta = store.read_meta().unwrap().unwrap();
        change(&mut meta);
        store
            .views()
            .insert(keys::META_APPLIED, meta.encode())
            .unwrap();
        store
            .views()
            .insert(
                keys::list_prefix(keys::LTS, "/planted", crate::Resource::Record),
                encode_u64(7),
            )
            .unwrap();
        store.flush().unwrap();
    }

    fn planted_survives(dir: &Path, log: &Log) -> bool {
        let p = Projections::open(dir, &log.reader()).unwrap();
        assert_eq!(p.applied(), log.head());
        p.list_timestamp("/planted", crate::Resource::Record)
            .unwrap()
            .is_some()
    }

    #[test]
    fn a_trusted_store_is_replayed_not_rebuilt() {
        let (_tmp, log, dir) = setup();
        tamper(&dir, |_| {});
        assert!(planted_survives(&dir, &log));
    }

    #[test]
    fn a_store_of_another_projection_version_is_rebuilt() {
        let (_tmp, log, dir) = setup();
        tamper(&dir, |m| m.projection_version += 1);
        assert!(!planted_survives(&dir, &log));
    }

    #[test]
    fn a_store_whose_chain_hash_differs_from_the_log_is_rebuilt() {
        let (_tmp, log, dir) = setup();
        tamper(&dir, |m| m.hash[0] ^= 1);
        assert!(!planted_survives(&dir, &log));
    }

    #[test]
    fn a_store_ahead_of_the_log_is_rebuilt() {
        let (_tmp, log, dir) = setup();
        tamper(&dir, |m| m.offset += 1);
        assert!(!planted_survives(&dir, &log));
    }

    #[test]
    fn a_store_with_entries_but_no_meta_is_rebuilt() {
        let (_tmp, log, dir) = setup();
        tamper(&dir, |_| {});
        let store = open_live(&dir);
        store.views().remove(keys::META_APPLIED).unwrap();
        store.flush().unwrap();
        drop(store);
        assert!(!planted_survives(&dir, &log));
    }

    #[test]
    fn a_sled_store_from_before_fjall_is_moved_aside_and_rebuilt() {
        let (tmp, log, dir) = setup();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        for name in ["conf", "db", "blobs"] {
            std::fs::write(dir.join(name), b"sled bytes").unwrap();
        }
        let p = Projections::open(&dir, &log.reader()).unwrap();
        assert_eq!(p.applied(), log.head());
        assert_eq!(
            p.count("/buckets/b/collections/c", crate::Resource::Record)
                .unwrap(),
            3
        );
        assert!(!dir.join("conf").exists(), "no sled file is left inside");
        let aside: Vec<PathBuf> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("projections.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(
            aside[0].join("conf").exists(),
            "the old store is kept aside"
        );
    }

    #[test]
    fn a_store_held_by_another_opener_is_refused_and_left_alone() {
        let (tmp, log, dir) = setup();
        let held = Projections::open(&dir, &log.reader()).unwrap();
        let before = held.dump().unwrap();
        let err = Projections::open(&dir, &log.reader()).unwrap_err();
        assert!(
            matches!(err, ProjectionError::Store(fjall::Error::Locked)),
            "{err:?}"
        );
        let siblings: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("projections."))
            .collect();
        assert!(siblings.is_empty(), "nothing moved aside: {siblings:?}");
        assert_eq!(held.dump().unwrap(), before);
    }

    #[test]
    fn a_rebuilt_store_leaves_no_old_copy_behind() {
        let (tmp, log, dir) = setup();
        tamper(&dir, |m| m.projection_version += 1);
        assert!(!planted_survives(&dir, &log));
        let siblings: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("projections."))
            .collect();
        assert!(siblings.is_empty(), "{siblings:?}");
    }

    #[test]
    fn leftovers_of_an_interrupted_rebuild_are_removed_and_corrupt_copies_kept() {
        let (tmp, log, dir) = setup();
        for name in [
            "projections.rebuild-1",
            "projections.old-2",
            "projections.corrupt-3",
            "projectionsX.old-4",
        ] {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
        }
        drop(Projections::open(&dir, &log.reader()).unwrap());
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "log",
                "projections",
                "projections.corrupt-3",
                "projectionsX.old-4"
            ]
        );
    }
}
