//! `verify`: the read-only audit. Walks every segment checking each frame's
//! crc32, offsets, timestamps, every link of the blake3 chain across
//! segments and every seal, and reports the first problem with the chain
//! head of the valid prefix. It takes no lock and writes nothing, so it runs
//! on a live server's directory.

use std::path::{Path, PathBuf};

use crate::recovery::walk;
use crate::storage::{StdStorage, Storage};
use crate::{Head, LogError, Offset};

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    pub segment: PathBuf,
    /// The offset the damaged frame should hold (the first bad offset).
    pub offset: Offset,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub segments: usize,
    /// Records in the valid prefix.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Last record of the valid prefix and its chain head.
    pub head: Head,
    /// Time range of the valid prefix.
    pub min_ts_ms: Option<u64>,
    pub max_ts_ms: Option<u64>,
    /// Bytes after the last whole record of the active segment: a torn tail
    /// that the next open will cut (after a crash), or a write in progress
    /// on a live log. Not a problem.
    pub torn_tail_bytes: u64,
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// The report if the log is sound, else the problem as
    /// [`LogError::Corrupt`].
    pub fn into_result(self) -> Result<VerifyReport, LogError> {
        match self.problem {
            None => Ok(self),
            Some(p) => Err(LogError::Corrupt {
                segment: p.segment,
                offset: p.offset,
                reason: p.reason,
            }),
        }
    }
}

/// Verifies the log in `dir` (read-only). `Err` only for I/O errors; damage
/// is in [`VerifyReport::problem`].
pub fn verify(dir: &Path) -> Result<VerifyReport, LogError> {
    let storage = StdStorage::existing(dir)?;
    verify_storage(&storage)
}

/// [`verify`] on any storage.
pub fn verify_storage(storage: &dyn Storage) -> Result<VerifyReport, LogError> {
    let mut report = verify_once(storage)?;
    if report.problem.is_some() {
        // On a live log the listing can predate a rotation whose seal is
        // already written when the file is read; a second walk sees the
        // successor. Real damage is found again.
        report = verify_once(storage)?;
    }
    Ok(report)
}

fn verify_once(storage: &dyn Storage) -> Result<VerifyReport, LogError> {
    let w = walk(storage, true)?;
    let problem = w.problem.as_ref().map(|p| VerifyProblem {
        segment: storage.path(&p.segment),
        offset: p.offset,
        reason: p.reason.clone(),
    });
    Ok(VerifyReport {
        segments: w.segments.len(),
        records: w.head.offset,
        bytes: w.bytes_scanned,
        head: w.head,
        min_ts_ms: w.min_ts,
        max_ts_ms: w.min_ts.map(|_| w.head.ts_ms),
        torn_tail_bytes: w.torn.as_ref().map_or(0, |t| t.bytes),
        problem,
    })
}
