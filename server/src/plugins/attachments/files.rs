//! The attachment files on disk: content-addressed by blake3, written
//! durably, and the uploads in flight that garbage collection must spare.
//!
//! Layout (default `DATA/attachments`, `attachment.base_path` otherwise):
//!
//! ```text
//! attachments/
//!   7e/7e08…(64 hex)    one file per distinct content (blake3 of the bytes stored)
//!   .tmp/<pid>-<n>      uploads being written; renamed into place once synced
//! ```
//!
//! A file is complete under its final name or not there at all: it is
//! written to `.tmp/`, `fsync`ed, renamed, and its directory `fsync`ed,
//! all before the event that references it is submitted to the sequencer.
//! So an acknowledged record never points at bytes a power cut can take.
//!
//! All functions here do blocking I/O: call them on a blocking thread.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::settings::Settings;

/// The blake3 of a stored file: its name on disk and in `location`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileHash(pub [u8; 32]);

impl FileHash {
    pub fn of(bytes: &[u8]) -> FileHash {
        FileHash(*blake3::hash(bytes).as_bytes())
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(hex_digits: &str) -> Option<FileHash> {
        if hex_digits.len() != 64
            || !hex_digits
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut out).ok()?;
        Some(FileHash(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Display for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Where the files of this server live.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub base: PathBuf,
}

/// Temporary files, inside `base` so that the rename stays on one
/// filesystem.
const TMP_DIR: &str = ".tmp";

impl Dirs {
    pub fn from_settings(s: &Settings) -> Dirs {
        let base = s
            .attachment
            .base_path
            .clone()
            .unwrap_or_else(|| s.data_dir.join(crate::tools::ATTACHMENTS_DIR));
        Dirs { base }
    }

    fn fan_out(&self, hash: &FileHash) -> PathBuf {
        self.base.join(&hash.hex()[..2])
    }

    pub fn path_of(&self, hash: &FileHash) -> PathBuf {
        self.fan_out(hash).join(hash.hex())
    }

    fn tmp(&self) -> PathBuf {
        self.base.join(TMP_DIR)
    }
}

/// Prefix of this process's temporary files: those of another (dead)
/// process are leftovers the collector removes.
fn tmp_prefix() -> String {
    format!("{}-", std::process::id())
}

/// Creates `dir` (and parents) if missing, syncing the parent of each
/// directory created so that the new entry is durable too.
fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Stores `bytes` under `hash` (their blake3) unless a file is already
/// there: temporary file, `fsync`, rename, directory `fsync`. Returns once
/// the file is durable.
pub fn write_durable(dirs: &Dirs, hash: &FileHash, bytes: &[u8]) -> io::Result<()> {
    let dest = dirs.path_of(hash);
    if dest.is_file() {
        // Same name, same content: files are only ever renamed in whole.
        return Ok(());
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp_dir = dirs.tmp();
    create_dir_durable(&tmp_dir)?;
    let tmp = tmp_dir.join(format!(
        "{}{}",
        tmp_prefix(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        let fan_out = dirs.fan_out(hash);
        create_dir_durable(&fan_out)?;
        fs::rename(&tmp, &dest)?;
        sync_dir(&fan_out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The stored bytes, `None` when there is no such file.
pub fn read(dirs: &Dirs, hash: &FileHash) -> io::Result<Option<Vec<u8>>> {
    match fs::read(dirs.path_of(hash)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a stored file; `false` when it was not there.
pub fn remove(dirs: &Dirs, hash: &FileHash) -> io::Result<bool> {
    match fs::remove_file(dirs.path_of(hash)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every stored file (names that are not a hash in the right fan-out
/// directory are left alone).
pub fn list(dirs: &Dirs) -> io::Result<Vec<FileHash>> {
    let mut out = Vec::new();
    let top = match fs::read_dir(&dirs.base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in top {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != 2 || !entry.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            let fname = file.file_name();
            match fname.to_str().and_then(FileHash::parse) {
                Some(h) if h.hex().starts_with(name) && file.file_type()?.is_file() => out.push(h),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Removes temporary files left by earlier processes (a crash while an
/// upload was being written). Returns how many.
pub fn clean_tmp(dirs: &Dirs) -> io::Result<usize> {
    let rd = match fs::read_dir(dirs.tmp()) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mine = tmp_prefix();
    let mut n = 0;
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&mine) {
            fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

// ---- uploads in flight -------------------------------------------------

/// What garbage collection must know about one file that uploads use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pending {
    /// Uploads between "file about to be written" and "sequencer answered".
    pub in_flight: u32,
    /// Log head seen after the last of them was answered: once the
    /// collector's index has read that far, their records are in it.
    pub resolved_at: u64,
}

/// State shared by the request handlers and the collector thread.
#[derive(Debug, Default)]
pub struct Shared {
    /// Files uploads are using, by hash. A std `Mutex`: held for map
    /// operations and, by the collector, for one `unlink`; never across an
    /// `.await`.
    pub pending: Mutex<HashMap<FileHash, Pending>>,
    /// Files that may have become unreferenced (failed uploads), and a flag
    /// to wake the collector now rather than at its next poll.
    pub wake: Mutex<Wake>,
    pub wake_cv: Condvar,
    /// Set once the collector thread runs.
    pub worker: OnceLock<()>,
}

#[derive(Debug, Default)]
pub struct Wake {
    pub nudged: bool,
    pub candidates: Vec<FileHash>,
}

impl Shared {
    pub fn pending(&self) -> MutexGuard<'_, HashMap<FileHash, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the collector to look at `hash` (and at the log) soon.
    pub fn nudge(&self, hash: Option<FileHash>) {
        let mut w = self.wake.lock().unwrap_or_else(|e| e.into_inner());
        w.nudged = true;
        w.candidates.extend(hash);
        self.wake_cv.notify_one();
    }
}

/// The plugin's state, one per server (in `Plugins`).
#[derive(Debug, Default)]
pub struct Store {
    pub(super) shared: Arc<Shared>,
}

impl Store {
    /// Registers an upload of `hash` before its file is written: from now
    /// until [`PendingUpload::finish`] (or drop), the collector leaves the
    /// file alone.
    pub fn begin(&self, hash: FileHash) -> PendingUpload {
        self.shared.pending().entry(hash).or_default().in_flight += 1;
        PendingUpload {
            shared: self.shared.clone(),
            hash,
            resolved_at: 0,
        }
    }
}

/// An upload in flight (see [`Store::begin`]).
#[derive(Debug)]
pub struct PendingUpload {
    shared: Arc<Shared>,
    hash: FileHash,
    resolved_at: u64,
}

impl PendingUpload {
    /// The sequencer answered; `log_head` is the log head read after the
    /// answer (at or past the upload's record, if it made one).
    pub fn finish(mut self, log_head: u64) {
        self.resolved_at = log_head;
        // Drop does the rest.
    }
}

impl Drop for PendingUpload {
    /// Also the path of an upload abandoned before it reached the
    /// sequencer (nothing references its file: the collector may take it).
    fn drop(&mut self) {
        {
            let mut pending = self.shared.pending();
            if let Some(p) = pending.get_mut(&self.hash) {
                p.in_flight = p.in_flight.saturating_sub(1);
                p.resolved_at = p.resolved_at.max(self.resolved_at);
            }
        }
        self.shared.nudge(Some(self.hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names() {
        let h = FileHash::of(b"hello");
        assert_eq!(FileHash::parse(&h.hex()), Some(h));
        assert_eq!(FileHash::parse(&h.hex().to_uppercase()), None);
        assert_eq!(FileHash::parse("abc"), None);
        assert_eq!(FileHash::parse(&"g".repeat(64)), None);
    }

    #[test]
    fn durable_write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            base: dir.path().join("attachments"),
        };
        assert_eq!(list(&dirs).unwrap(), vec![]);
        let h = FileHash::of(b"content");
        write_durable(&dirs, &h, b"content").unwrap();
        // Idempotent: the same content is already there.
        write_durable(&dirs, &h, b"content").unwrap();
        assert_eq!(read(&dirs, &h).unwrap().as_deref(), Some(&b"content"[..]));
        assert_eq!(list(&dirs).unwrap(), vec![h]);
        assert!(dirs.path_of(&h).starts_with(dirs.base.join(&h.hex()[..2])));
        // Nothing left in the temporary directory.
        assert_eq!(fs::read_dir(dirs.tmp()).unwrap().count(), 0);
        assert!(remove(&dirs, &h).unwrap());
        assert!(!remove(&dirs, &h).unwrap());
        assert_eq!(read(&dirs, &h).unwrap(), None);
    }

    #[test]
    fn leftover_temporary_files_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            base: dir.path().to_path_buf(),
        };
        fs::create_dir_all(dirs.tmp()).unwrap();
        fs::write(dirs.tmp().join("1-0"), b"partial").unwrap();
        fs::write(dirs.tmp().join(format!("{}7", tmp_prefix())), b"mine").unwrap();
        // A stray name in the base directory is not a stored file.
        fs::write(dirs.base.join("notes.txt"), b"x").unwrap();
        assert_eq!(
            clean_tmp(&dirs).unwrap(),
            usize::from(std::process::id() != 1)
        );
        assert_eq!(list(&dirs).unwrap(), vec![]);
    }

    #[test]
    fn pending_uploads_are_counted() {
        let store = Store::default();
        let h = FileHash::of(b"x");
        let a = store.begin(h);
        let b = store.begin(h);
        assert_eq!(store.shared.pending()[&h].in_flight, 2);
        a.finish(7);
        assert_eq!(store.shared.pending()[&h].in_flight, 1);
        assert_eq!(store.shared.pending()[&h].resolved_at, 7);
        drop(b);
        assert_eq!(store.shared.pending()[&h].in_flight, 0);
        assert_eq!(store.shared.pending()[&h].resolved_at, 7);
        let w = store.shared.wake.lock().unwrap();
        assert!(w.nudged);
        assert_eq!(w.candidates, vec![h, h]);
    }
}
