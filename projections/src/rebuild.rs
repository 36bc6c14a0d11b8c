//! Startup: open the store, decide whether it can be trusted, then replay
//! the log after what it has applied, or rebuild it from the whole log.
//!
//! The rules (eventlog-notes R6): any sled open error moves the directory
//! aside (`<dir>.corrupt-<ms>`) and rebuilds; a store from another
//! projection version, ahead of the log, or whose applied hash is not the
//! log's hash at that offset (the log was replaced) is rebuilt. A rebuild
//! is built in `<dir>.rebuild-<ms>` and switched in by renames, so a
//! half-built store is never opened as the live one: a crash mid-rebuild
//! leaves the old store in place (or none), and the next start rebuilds.
//! A missing or empty directory is simply replayed in place: every replay
//! batch moves `meta/applied` atomically, so any prefix is a valid state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::{Head, LogError, LogReader};

use crate::apply::apply_commits;
use crate::changes::decode_record;
use crate::error::ProjectionError;
use crate::event::Commit;
use crate::store::{nothing_applied, Mode, Store};

/// Events per sled batch during replay: large enough to amortize a batch,
/// small enough to show progress and bound the overlay's memory.
pub(crate) const REPLAY_BATCH_EVENTS: usize = 10_000;

/// Why an existing store is not used.
#[derive(Debug)]
enum Verdict {
    /// Trusted: replay the log after this head.
    Replay(Head),
    Rebuild(String),
}

pub(crate) fn open(dir: &Path, log: &LogReader) -> Result<Store, ProjectionError> {
    match open_store(dir, Mode::Live) {
        Ok(store) => {
            remove_leftovers(dir);
            let reason = match verdict(&store, log)? {
                Verdict::Replay(head) => {
                    store.set_applied(head);
                    match replay(&store, log) {
                        Ok(_) => return Ok(store),
                        // The store, not the log, is at fault: rebuild.
                        Err(e @ (ProjectionError::Corrupt { .. } | ProjectionError::Store(_))) => {
                            format!("replay failed: {e}")
                        }
                        Err(e) => return Err(e),
                    }
                }
                Verdict::Rebuild(reason) => reason,
            };
            tracing::warn!(dir = %dir.display(), %reason, "rebuilding projections from the log");
            // The old store stays open (and locked) while the new one builds.
            let fresh = build(dir, log)?;
            drop(store);
            swap_in(dir, &fresh)?;
        }
        Err(OpenError::Locked(e)) => return Err(e.into()),
        Err(OpenError::Damaged(reason)) => {
            let aside = sibling(dir, "corrupt")?;
            tracing::error!(dir = %dir.display(), aside = %aside.display(), %reason,
                "projection store does not open; moving it aside and rebuilding from the log");
            if dir.exists() {
                std::fs::rename(dir, &aside)?;
            }
            remove_leftovers(dir);
            let fresh = build(dir, log)?;
            swap_in(dir, &fresh)?;
        }
    }
    let store = reopen(dir)?;
    match store.read_meta()? {
        Some(meta) => store.set_applied(meta.head()),
        None => {
            return Err(ProjectionError::corrupt(
                crate::keys::META_APPLIED,
                "missing after rebuild",
            ))
        }
    }
    // Nothing to do unless the log moved during the rebuild; harmless if so.
    replay(&store, log)?;
    Ok(store)
}

/// Whether the store can be trusted, given the log.
fn verdict(store: &Store, log: &LogReader) -> Result<Verdict, ProjectionError> {
    let meta = match store.read_meta() {
        Ok(Some(meta)) => meta,
        Ok(None) if store.tree().is_empty() => return Ok(Verdict::Replay(nothing_applied())),
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
pub(crate) fn replay(store: &Store, log: &LogReader) -> Result<u64, ProjectionError> {
    let target = log.head().offset;
    let from = store.applied().offset + 1;
    if from > target {
        return Ok(0);
    }
    let started = Instant::now();
    let mut last_report = started;
    let mut total: u64 = 0;
    let mut pending: Vec<(Head, Commit)> = Vec::new();
    let mut pending_events = 0usize;
    tracing::info!(from, to = target, "replaying the log into the projections");
    for record in log.iter_from(from) {
        let record = record?;
        if record.offset > target {
            break;
        }
        let commit = decode_record(&record)?;
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
            total += flush_pending(store, &mut pending, &mut pending_events)?;
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
    }
    total += flush_pending(store, &mut pending, &mut pending_events)?;
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

fn flush_pending(
    store: &Store,
    pending: &mut Vec<(Head, Commit)>,
    events: &mut usize,
) -> Result<u64, ProjectionError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let refs: Vec<(Head, &Commit)> = pending.iter().map(|(h, c)| (*h, c)).collect();
    apply_commits(store, &refs)?;
    let n = pending.iter().map(|(_, c)| c.events.len() as u64).sum();
    pending.clear();
    *events = 0;
    Ok(n)
}

fn rate(events: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (events as f64 / secs) as u64
    } else {
        0
    }
}

/// Builds a store from the whole log in a fresh sibling directory, flushed
/// and closed; returns its path.
fn build(dir: &Path, log: &LogReader) -> Result<PathBuf, ProjectionError> {
    let tmp = sibling(dir, "rebuild")?;
    let store = Store::open(&tmp, Mode::Rebuild)?;
    replay(&store, log)?;
    if store.applied().offset == 0 {
        // An empty log: still write meta/applied, so the result is a
        // complete store and not "entries but no meta".
        store.commit(store.overlay(), nothing_applied())?;
    }
    store.flush()?;
    drop(store);
    Ok(tmp)
}

/// Replaces `dir` by `fresh`: the old directory is renamed away first, so
/// at every instant `dir` is either the old store, nothing, or the new one.
fn swap_in(dir: &Path, fresh: &Path) -> Result<(), ProjectionError> {
    if dir.exists() {
        let old = sibling(dir, "old")?;
        std::fs::rename(dir, &old)?;
        std::fs::rename(fresh, dir)?;
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::warn!(dir = %old.display(), error = %e, "could not remove the replaced projection store");
        }
    } else {
        std::fs::rename(fresh, dir)?;
    }
    Ok(())
}

enum OpenError {
    /// Another process holds the store: never move it aside.
    Locked(sled::Error),
    Damaged(String),
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// How long an open waits for sled's lock file. sled releases it when the
/// last background reference of a dropped `Db` goes, which can trail the
/// `drop` by a moment (seen in tests that close and reopen at once); a
/// store really held by another process still fails, after this delay.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens sled, turning both its errors and its panics (spacejam/sled#1533
/// panics on some corrupt stores) into "damaged", except a held lock.
fn open_store(dir: &Path, mode: Mode) -> Result<Store, OpenError> {
    let started = Instant::now();
    loop {
        match std::panic::catch_unwind(|| Store::open(dir, mode)) {
            Ok(Ok(store)) => return Ok(store),
            Ok(Err(e)) if is_lock_error(&e) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(OpenError::Locked(e));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(Err(e)) => return Err(OpenError::Damaged(e.to_string())),
            Err(_) => return Err(OpenError::Damaged("sled panicked while opening".into())),
        }
    }
}

/// Opens a store just swapped in.
fn reopen(dir: &Path) -> Result<Store, ProjectionError> {
    match open_store(dir, Mode::Live) {
        Ok(store) => Ok(store),
        Err(OpenError::Locked(e)) => Err(e.into()),
        Err(OpenError::Damaged(reason)) => Err(ProjectionError::Io(std::io::Error::other(
            format!("rebuilt projection store does not open: {reason}"),
        ))),
    }
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

/// Removes `<dir>.rebuild-*` and `<dir>.old-*` left by a crash mid-rebuild
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
        match open_store(dir, Mode::Live) {
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
            .tree()
            .insert(keys::META_APPLIED, meta.encode())
            .unwrap();
        store
            .tree()
            .insert(
                keys::list_prefix(keys::LTS, "/planted", crate::Resource::Record),
                &encode_u64(7),
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
        store.tree().remove(keys::META_APPLIED).unwrap();
        store.flush().unwrap();
        drop(store);
        assert!(!planted_survives(&dir, &log));
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
