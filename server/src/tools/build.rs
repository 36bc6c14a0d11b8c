//! A new data directory built from verified records: what `log replay` and
//! `restore` produce, ready for `cairn serve --data`.
//!
//! Records are appended to a fresh log with their original time, schema and
//! payload, so every chain head comes out identical to the source's; each
//! batch's heads are compared with the source's and any difference stops
//! the build. Each payload is decoded as it is copied (a record that is not
//! Cairn events stops the build before anything is served from it); the
//! projections are then built from the new log in one go at
//! [`NewDataDir::finish`], the way `cairn serve` builds missing ones (read
//! ahead on a thread of its own, no lookups for new objects), with a
//! progress bar of their own. Segment files are new files (their header's
//! creation time and their roll points may differ), the chain they hold is
//! the same.
//!
//! Nothing is overwritten: the target must be new or empty, and when the
//! build fails, what it wrote is removed again.

use eventlog::{ChainHash, Head, Log, LogOptions, NewRecord};
use projections::Projections;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::progress::{Progress, ProgressMode, Unit};
use super::show::decode_commit;
use super::walk::RecordRef;
use super::{check_empty_target, DataDir, ToolError};

/// Commits per batch: large enough to amortize one fsync, small enough to
/// bound memory.
const BATCH_EVENTS: usize = 10_000;
/// Bytes of payload per batch.
const BATCH_BYTES: usize = 8 << 20;

/// A data directory being filled.
#[derive(Debug)]
pub struct NewDataDir {
    dir: DataDir,
    /// Whether this build created `dir.root` (then a failure removes it).
    created_root: bool,
    log: Option<Log>,
    batch: Vec<(NewRecord, ChainHash)>,
    batch_events: usize,
    batch_bytes: usize,
    head: Head,
    events: u64,
    finished: bool,
}

impl NewDataDir {
    /// Creates the directory (refusing one that is not empty) and an empty
    /// log.
    pub fn create(root: &Path) -> Result<NewDataDir, ToolError> {
        check_empty_target(root)?;
        let created_root = !root.exists();
        fs::create_dir_all(root).map_err(ToolError::at("creating", root))?;
        let mut this = NewDataDir {
            dir: DataDir::new(root),
            created_root,
            log: None,
            batch: Vec::new(),
            batch_events: 0,
            batch_bytes: 0,
            head: Head::default(),
            events: 0,
            finished: false,
        };
        let log = Log::open(&this.dir.log(), LogOptions::default())?;
        this.head = log.head();
        this.log = Some(log);
        Ok(this)
    }

    pub fn root(&self) -> &Path {
        &self.dir.root
    }

    /// The head of what was written so far (batches flushed).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Events in the records written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Adds the next record (in offset order, from offset 1, without gaps).
    pub fn push(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
        let expected = self.head.offset + self.batch.len() as u64 + 1;
        if r.offset != expected {
            return Err(ToolError::Damaged {
                segment: "(replay)".into(),
                offset: expected,
                reason: format!("record {} arrived where {expected} was due", r.offset),
            });
        }
        let events = decode_commit(r)?.events.len();
        self.events += events as u64;
        self.batch_events += events.max(1);
        self.batch_bytes += r.payload.len();
        self.batch.push((
            NewRecord {
                ts_ms: r.ts_ms,
                schema: r.schema,
                payload: r.payload.to_vec(),
            },
            r.hash,
        ));
        if self.batch_events >= BATCH_EVENTS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends the batch (one write, one fdatasync) and checks that each
    /// head equals the source's.
    pub fn flush(&mut self) -> Result<(), ToolError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some(log) = self.log.as_mut() else {
            return Err(ToolError::Refused("the data directory is closed".into()));
        };
        let (records, sources): (Vec<NewRecord>, Vec<ChainHash>) = self.batch.drain(..).unzip();
        let heads = log.append(&records)?;
        for (head, source) in heads.iter().zip(&sources) {
            if head.hash != *source {
                return Err(ToolError::Damaged {
                    segment: "(replay)".into(),
                    offset: head.offset,
                    reason: format!(
                        "re-appended record has chain head {}, the source has {source}",
                        head.hash
                    ),
                });
            }
        }
        if let Some(last) = heads.last() {
            self.head = *last;
        }
        self.batch_events = 0;
        self.batch_bytes = 0;
        Ok(())
    }

    /// Writes a file at `rel` (relative, inside the directory), with mode
    /// 0600 for secrets.
    pub fn write_file(&self, rel: &Path, bytes: &[u8], private: bool) -> Result<(), ToolError> {
        let path = safe_join(&self.dir.root, rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(ToolError::at("creating", parent))?;
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        if private {
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(ToolError::at("creating", &path))?;
        f.write_all(bytes)
            .map_err(ToolError::at("writing", &path))?;
        f.sync_all().map_err(ToolError::at("syncing", &path))?;
        Ok(())
    }

    /// Writes the last batch, builds the projections from the new log
    /// (with a `rebuild` progress bar) and closes everything; returns the
    /// head of the new log and the number of events applied.
    pub fn finish(mut self, mode: ProgressMode) -> Result<(Head, u64), ToolError> {
        self.flush()?;
        let Some(log) = self.log.as_ref() else {
            return Err(ToolError::Refused("the data directory is closed".into()));
        };
        let mut progress = Progress::new(mode, "rebuild", self.head.offset, Unit::Records);
        let mut done = 0;
        let mut applied_events = 0;
        let built =
            Projections::open_with_progress(&self.dir.projections(), &log.reader(), &mut |r| {
                progress.inc(r.records - done);
                done = r.records;
                applied_events = r.events;
            })
            .and_then(|p| p.flush());
        if let Err(e) = built {
            progress.abandon();
            return Err(e.into());
        }
        progress.finish(&format!("{done} records"));
        if applied_events != self.events {
            return Err(ToolError::Damaged {
                segment: "(rebuild)".into(),
                offset: self.head.offset,
                reason: format!(
                    "the projections applied {applied_events} events, the copied records hold {}",
                    self.events
                ),
            });
        }
        self.log = None;
        sync_dir(&self.dir.root)?;
        self.finished = true;
        Ok((self.head, self.events))
    }
}

impl Drop for NewDataDir {
    /// A build that did not finish leaves nothing behind: it removes what it
    /// created (only that: the target was empty).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.log = None;
        let root = &self.dir.root;
        if self.created_root {
            let _ = fs::remove_dir_all(root);
        } else if let Ok(rd) = fs::read_dir(root) {
            for entry in rd.flatten() {
                let p = entry.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
}

/// `root/rel`, refusing absolute paths and `..` (archive entries are data,
/// not instructions).
pub fn safe_join(root: &Path, rel: &Path) -> Result<PathBuf, ToolError> {
    let ok = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok || rel.as_os_str().is_empty() {
        return Err(ToolError::Refused(format!(
            "refusing to write outside the data directory: {}",
            rel.display()
        )));
    }
    Ok(root.join(rel))
}

/// Makes the directory's entries durable.
pub fn sync_dir(dir: &Path) -> Result<(), ToolError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(ToolError::at("syncing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_non_empty_target_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep"), b"x").unwrap();
        let e = NewDataDir::create(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn an_unfinished_build_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new");
        let b = NewDataDir::create(&root).unwrap();
        b.write_file(Path::new("secrets.json"), b"{}", true)
            .unwrap();
        drop(b);
        assert!(!root.exists());
        // An empty directory given by the user stays, emptied.
        let b = NewDataDir::create(dir.path()).unwrap();
        drop(b);
        assert!(dir.path().exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/data");
        assert!(safe_join(root, Path::new("attachments/a/b.bin")).is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(safe_join(root, Path::new(bad)).is_err(), "{bad}");
        }
    }
}
