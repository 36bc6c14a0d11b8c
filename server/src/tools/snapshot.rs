//! `cairn snapshot --data DIR --out FILE`: a consistent, verifiable copy of
//! a (possibly live) data directory in one file (see `archive` for the
//! format).
//!
//! Consistency without stopping writes: the log is append-only and bytes
//! once written are never rewritten, so the records read up to the last
//! whole record form a consistent state at that offset, whatever the
//! server appends meanwhile. The snapshot never takes the writer's lock and
//! never talks to the server: writes are not paused at all (the benchmark
//! measures what the extra reads cost them). The records copied are then
//! `fdatasync`ed in the source too, so a snapshot never holds a record the
//! server could still lose to a power cut.
//!
//! The chain is verified while copying (a snapshot of a damaged log fails),
//! and the file is written as `FILE.partial-<pid>`, synced, then renamed:
//! `FILE` exists only whole.

use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventlog::Head;

use super::archive::{
    blake3_hex, list_files, FileEntry, Manifest, ManifestHead, FORMAT, MANIFEST, VERSION,
};
use super::build::sync_dir;
use super::progress::{Progress, ProgressMode, Unit};
use super::time::{format_ms, now_ms};
use super::walk::{walk_dir, Rules, SegmentRef, Visitor};
use super::{DataDir, ToolError, ATTACHMENTS_DIR};
use crate::settings::SECRETS_FILE;

/// What a snapshot holds.
#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    pub out: PathBuf,
    pub head: Head,
    pub first_ts_ms: Option<u64>,
    pub segments: usize,
    /// Size of the archive file.
    pub bytes: u64,
    pub secrets: bool,
    pub attachments: usize,
    pub elapsed: Duration,
}

impl SnapshotOutcome {
    pub fn to_text(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        format!(
            "snapshot:   {}\nlog head:   offset {} {}\nrecords:    {} in {} segment(s), last at {}\nsecrets:    {}\nattachments: {}\nsize:       {} in {:.2} s ({}/s)\n",
            self.out.display(),
            self.head.offset,
            self.head.hash,
            self.head.offset,
            self.segments,
            if self.head.offset > 0 { format_ms(self.head.ts_ms) } else { "-".into() },
            if self.secrets { "included" } else { "none (configured secrets must be given to the restored server)" },
            self.attachments,
            super::progress::human_bytes(self.bytes),
            secs,
            super::progress::human_bytes((self.bytes as f64 / secs) as u64),
        )
    }
}

/// Dirty bytes of the archive allowed before they are synced.
const SYNC_EVERY: u64 = 4 << 20;

/// The archive file, synced every [`SYNC_EVERY`] bytes. Why: on ext4 (and
/// most journaling file systems) an fsync by the server commits the
/// journal, which first writes back other files' dirty data; letting
/// hundreds of MB of archive pile up in the page cache made a server write
/// wait 300 ms in the benchmark. Small, frequent syncs bound that wait.
struct SyncEvery {
    file: File,
    dirty: u64,
}

impl std::io::Write for SyncEvery {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.dirty += n as u64;
        if self.dirty >= SYNC_EVERY {
            self.file.sync_data()?;
            self.dirty = 0;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Appends archive entries and remembers their hashes.
struct ArchiveWriter {
    tar: tar::Builder<BufWriter<SyncEvery>>,
    files: Vec<FileEntry>,
    mtime: u64,
}

impl ArchiveWriter {
    fn add(&mut self, path: &str, bytes: &[u8], mode: u32) -> Result<(), ToolError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut header, path, bytes)
            .map_err(|e| ToolError::io(format!("writing {path} to the snapshot"), e))?;
        self.files.push(FileEntry {
            path: path.to_string(),
            len: bytes.len() as u64,
            blake3: blake3_hex(bytes),
        });
        Ok(())
    }
}

/// Writes each segment once the next one is seen: only then is it known
/// whether its seal belongs in the snapshot (a sealed segment with its
/// successor) or must be cut off (the last segment ends after its last
/// record, so the extracted log is one `cairn serve` opens).
struct SegmentCopier<'a> {
    w: &'a mut ArchiveWriter,
    pending: Option<(String, Vec<u8>, u64, bool)>,
}

impl SegmentCopier<'_> {
    fn write_pending(&mut self, followed: bool) -> Result<(), ToolError> {
        if let Some((name, bytes, data_end, sealed)) = self.pending.take() {
            let len = if followed && sealed {
                bytes.len()
            } else {
                data_end as usize
            };
            let body = bytes.get(..len).unwrap_or(&bytes);
            self.w.add(&format!("log/{name}"), body, 0o644)?;
        }
        Ok(())
    }
}

impl Visitor for SegmentCopier<'_> {
    fn segment(&mut self, s: &SegmentRef<'_>) -> Result<(), ToolError> {
        self.write_pending(true)?;
        self.pending = Some((s.name.to_string(), s.bytes.to_vec(), s.data_end, s.sealed));
        Ok(())
    }
}

/// Takes a snapshot of `data` into `out` (which must not exist).
pub fn snapshot(
    data: &DataDir,
    out: &Path,
    mode: ProgressMode,
) -> Result<SnapshotOutcome, ToolError> {
    let started = Instant::now();
    if out.exists() {
        return Err(ToolError::Refused(format!(
            "{} exists: snapshots are never overwritten, choose another name",
            out.display()
        )));
    }
    let log_dir = data.log();
    if !log_dir.is_dir() {
        return Err(ToolError::NoLog(log_dir));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| ToolError::Usage(format!("{} is not a file name", out.display())))?;
    let partial = parent.join(format!(
        "{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    // 0600: the archive holds the secrets.
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(ToolError::at("creating", &partial))?;
    let result = write_archive(data, file, mode);
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    if let Err(e) = fs::rename(&partial, out) {
        let _ = fs::remove_file(&partial);
        return Err(ToolError::io(format!("renaming to {}", out.display()), e));
    }
    sync_dir(&parent)?;
    let bytes = fs::metadata(out)
        .map_err(ToolError::at("reading", out))?
        .len();
    Ok(SnapshotOutcome {
        out: out.to_path_buf(),
        bytes,
        elapsed: started.elapsed(),
        ..outcome
    })
}

fn write_archive(
    data: &DataDir,
    file: File,
    mode: ProgressMode,
) -> Result<SnapshotOutcome, ToolError> {
    let created_ms = now_ms();
    let mut w = ArchiveWriter {
        tar: tar::Builder::new(BufWriter::with_capacity(
            1 << 20,
            SyncEvery { file, dirty: 0 },
        )),
        files: Vec::new(),
        mtime: created_ms / 1000,
    };
    let log_dir = data.log();
    let mut progress = Progress::new(mode, "snapshot", 0, Unit::Bytes);
    let mut copier = SegmentCopier {
        w: &mut w,
        pending: None,
    };
    let report = match walk_dir(&log_dir, Rules::PREFIX, &mut copier, &mut progress) {
        Ok(r) => r,
        Err(e) => {
            progress.abandon();
            return Err(e);
        }
    };
    copier.write_pending(false)?;
    // What was copied may still be only in the page cache of a server
    // between its write and its fdatasync: make it durable at the source,
    // so the snapshot never holds a record the server could lose.
    if let Some(last) = &report.last_segment {
        let path = log_dir.join(last);
        File::open(&path)
            .and_then(|f| f.sync_data())
            .map_err(ToolError::at("syncing", &path))?;
    }
    let secrets = match fs::read(data.secrets()) {
        Ok(bytes) => {
            w.add(SECRETS_FILE, &bytes, 0o600)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(ToolError::io(
                format!("reading {}", data.secrets().display()),
                e,
            ))
        }
    };
    let attachments = list_files(&data.attachments())?;
    for (rel, abs) in &attachments {
        let bytes = fs::read(abs).map_err(ToolError::at("reading", abs))?;
        let path = format!("{ATTACHMENTS_DIR}/{}", rel.to_string_lossy());
        w.add(&path, &bytes, 0o644)?;
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_ms,
        created: format_ms(created_ms),
        source: std::path::absolute(&data.root)
            .unwrap_or_else(|_| data.root.clone())
            .display()
            .to_string(),
        cairn_version: env!("CARGO_PKG_VERSION").into(),
        head: ManifestHead::from(report.head),
        first_ts_ms: report.min_ts_ms,
        segments: w
            .files
            .iter()
            .filter(|f| f.path.starts_with("log/"))
            .count(),
        files: w.files.clone(),
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ToolError::io("encoding the manifest", std::io::Error::other(e)))?;
    // The manifest itself is not listed in `files`.
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(w.mtime);
    header.set_entry_type(tar::EntryType::Regular);
    w.tar
        .append_data(&mut header, MANIFEST, text.as_slice())
        .map_err(|e| ToolError::io("writing the manifest", e))?;
    let buf = w
        .tar
        .into_inner()
        .map_err(|e| ToolError::io("finishing the snapshot", e))?;
    let file = buf
        .into_inner()
        .map_err(|e| ToolError::io("writing the snapshot", e.into_error()))?
        .file;
    file.sync_all()
        .map_err(|e| ToolError::io("syncing the snapshot", e))?;
    progress.finish("copied");
    Ok(SnapshotOutcome {
        out: PathBuf::new(),
        head: report.head,
        first_ts_ms: report.min_ts_ms,
        segments: manifest.segments,
        bytes: 0,
        secrets,
        attachments: attachments.len(),
        elapsed: Duration::ZERO,
    })
}
