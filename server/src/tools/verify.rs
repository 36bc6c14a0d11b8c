//! `cairn log verify` and `cairn log checkpoint`.
//!
//! Verify checks every record's crc32 and structure, every link of the
//! blake3 chain (within and across segments) and every seal, and reports
//! the record count, time range and chain head; on damage it fails with the
//! first bad offset. With a checkpoint it also proves the log still extends
//! that head. It reads without the lock, so it runs on a live server's data.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eventlog::{genesis, Head, Offset};
use serde_json::{json, Value};

use super::checkpoint::Checkpoint;
use super::progress::{human_bytes, Progress, ProgressMode, Unit};
use super::time::format_ms;
use super::walk::{walk_dir, RecordRef, Rules, Visitor, WalkReport};
use super::{DataDir, ToolError};

/// A verified log.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub log_dir: PathBuf,
    pub report: WalkReport,
    pub elapsed: Duration,
    /// The checkpoint the log was proven to extend.
    pub checkpoint: Option<Checkpoint>,
}

/// Remembers the chain head at one offset.
struct HeadAt {
    offset: Offset,
    found: Option<Head>,
}

impl Visitor for HeadAt {
    fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
        if r.offset == self.offset {
            self.found = Some(r.head());
        }
        Ok(())
    }
}

/// Verifies the log of `data`, and that it extends `against` if given.
pub fn verify(
    data: &DataDir,
    against: Option<&Checkpoint>,
    mode: ProgressMode,
) -> Result<VerifyOutcome, ToolError> {
    let log_dir = data.log();
    let started = Instant::now();
    let target = against.map_or(0, |c| c.offset);
    let mut at = HeadAt {
        offset: target,
        found: None,
    };
    let walk = |at: &mut HeadAt| {
        let mut progress = Progress::new(mode, "verify", 0, Unit::Bytes);
        let r = walk_dir(&log_dir, Rules::AUDIT, at, &mut progress);
        match &r {
            Ok(_) => progress.finish("checked"),
            Err(_) => progress.abandon(),
        }
        r
    };
    let report = match walk(&mut at) {
        // A live log can look wrong for an instant (a write landing while
        // it is read); real damage is found again.
        Err(ToolError::Damaged { .. }) => walk(&mut at)?,
        r => r?,
    };
    if target == 0 {
        at.found = Some(Head {
            offset: 0,
            hash: genesis(),
            ts_ms: 0,
        });
    }
    if let Some(cp) = against {
        cp.check(&report.head, at.found.as_ref())?;
    }
    Ok(VerifyOutcome {
        log_dir,
        report,
        elapsed: started.elapsed(),
        checkpoint: against.copied(),
    })
}

impl VerifyOutcome {
    pub fn to_text(&self) -> String {
        let r = &self.report;
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        let mut out = format!(
            "log:        {}\nsegments:   {}\nrecords:    {} ({} read in {:.2} s, {}/s)\n",
            self.log_dir.display(),
            r.segments,
            r.records(),
            human_bytes(r.bytes),
            secs,
            human_bytes((r.bytes as f64 / secs) as u64),
        );
        match (r.min_ts_ms, r.max_ts_ms()) {
            (Some(a), Some(b)) => out.push_str(&format!(
                "time range: {} .. {} ({a} .. {b})\n",
                format_ms(a),
                format_ms(b)
            )),
            _ => out.push_str("time range: (empty log)\n"),
        }
        out.push_str(&format!(
            "chain head: offset {} {}\n",
            r.head.offset, r.head.hash
        ));
        if r.torn_tail_bytes > 0 {
            out.push_str(&format!(
                "tail:       {} bytes after the last whole record (a write in progress, or a torn tail the next start cuts)\n",
                r.torn_tail_bytes
            ));
        }
        if let Some(cp) = &self.checkpoint {
            out.push_str(&format!(
                "checkpoint: offset {} {} is extended by this log\n",
                cp.offset, cp.head
            ));
        }
        out.push_str("OK\n");
        out
    }

    pub fn to_json(&self) -> Value {
        let r = &self.report;
        json!({
            "ok": true,
            "log": self.log_dir.display().to_string(),
            "segments": r.segments,
            "records": r.records(),
            "bytes": r.bytes,
            "min_ts_ms": r.min_ts_ms,
            "max_ts_ms": r.max_ts_ms(),
            "head": {"offset": r.head.offset, "ts_ms": r.head.ts_ms, "hash": r.head.hash.to_hex()},
            "torn_tail_bytes": r.torn_tail_bytes,
            "checkpoint": self.checkpoint.map(|c| c.to_json()),
            "elapsed_ms": self.elapsed.as_millis() as u64,
        })
    }
}

/// `cairn log checkpoint`: verifies the whole log (a checkpoint of a
/// tampered log would be worthless), then returns its head.
pub fn checkpoint(data: &DataDir, mode: ProgressMode) -> Result<Checkpoint, ToolError> {
    let outcome = verify(data, None, mode)?;
    Ok(Checkpoint::from(outcome.report.head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::walk::list_segments;
    use crate::tools::walk::tests::make_log;
    use eventlog::scan::{scan_segment, ScanOptions};
    use eventlog::{Log, LogOptions, NewRecord};
    use std::path::Path;

    /// A data dir whose log has `n` records over several segments.
    fn data_with_log(n: u64) -> (tempfile::TempDir, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        make_log(&data.log(), n);
        (dir, data)
    }

    /// (segment path, record byte positions, base offset) of every segment.
    fn frames(log: &Path) -> Vec<(PathBuf, Vec<usize>, u64)> {
        list_segments(log)
            .unwrap()
            .into_iter()
            .map(|(base, name, _)| {
                let path = log.join(name);
                let bytes = std::fs::read(&path).unwrap();
                let scan = scan_segment(&bytes, &ScanOptions::default()).unwrap();
                let pos = scan.positions.iter().map(|p| *p as usize).collect();
                (path, pos, base)
            })
            .collect()
    }

    /// The segment holding `offset`, and the record's frame byte range.
    fn locate(log: &Path, offset: u64) -> (PathBuf, usize, usize) {
        for (path, pos, base) in frames(log) {
            if offset >= base && offset < base + pos.len() as u64 {
                let i = (offset - base) as usize;
                let start = pos[i];
                let len = std::fs::read(&path).unwrap().len();
                let end = pos.get(i + 1).copied().unwrap_or_else(|| {
                    // Last record: up to the seal or the end of file.
                    let bytes = std::fs::read(&path).unwrap();
                    let flen = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().unwrap());
                    (start + eventlog::frame::frame_len(flen as usize)).min(len)
                });
                return (path, start, end);
            }
        }
        panic!("offset {offset} not found");
    }

    fn damaged_offset(data: &DataDir) -> u64 {
        match verify(data, None, ProgressMode::Quiet) {
            Err(ToolError::Damaged { offset, .. }) => offset,
            other => panic!("expected damage, got {other:?}"),
        }
    }

    fn eventlog_says(log: &Path) -> u64 {
        eventlog::verify(log)
            .unwrap()
            .problem
            .expect("eventlog::verify finds the damage too")
            .offset
    }

    #[test]
    fn a_sound_log_verifies_with_counts_and_range() {
        let (_d, data) = data_with_log(120);
        let out = verify(&data, None, ProgressMode::Quiet).unwrap();
        assert_eq!(out.report.records(), 120);
        assert_eq!(out.report.min_ts_ms, Some(1_000));
        assert_eq!(out.report.max_ts_ms(), Some(1_000 + 119 * 10));
        let text = out.to_text();
        assert!(text.contains("records:    120"), "{text}");
        assert!(text.ends_with("OK\n"), "{text}");
        assert_eq!(out.to_json()["head"]["offset"], json!(120));
    }

    #[test]
    fn one_changed_byte_in_a_middle_record_is_named() {
        for offset in [7u64, 60, 118] {
            let (_d, data) = data_with_log(120);
            let (path, start, _) = locate(&data.log(), offset);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[start + 64 + 3] ^= 0x20; // a payload byte
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(damaged_offset(&data), offset);
            assert_eq!(eventlog_says(&data.log()), offset);
        }
    }

    #[test]
    fn a_deleted_record_is_named() {
        let (_d, data) = data_with_log(120);
        let (path, start, end) = locate(&data.log(), 50);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.drain(start..end);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(damaged_offset(&data), 50);
        assert_eq!(eventlog_says(&data.log()), 50);
    }

    #[test]
    fn two_reordered_records_are_named() {
        let (_d, data) = data_with_log(120);
        let (path, a0, a1) = locate(&data.log(), 30);
        let (path_b, b0, b1) = locate(&data.log(), 31);
        assert_eq!(path, path_b, "pick two records of one segment");
        assert_eq!(a1, b0);
        let mut bytes = std::fs::read(&path).unwrap();
        let (a, b) = (bytes[a0..a1].to_vec(), bytes[b0..b1].to_vec());
        let mut swapped = b;
        swapped.extend_from_slice(&a);
        bytes.splice(a0..b1, swapped);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(damaged_offset(&data), 30);
        assert_eq!(eventlog_says(&data.log()), 30);
    }

    #[test]
    fn a_removed_middle_segment_is_named() {
        let (_d, data) = data_with_log(120);
        let segs = frames(&data.log());
        assert!(segs.len() >= 3);
        let (path, _, base) = &segs[1];
        std::fs::remove_file(path).unwrap();
        assert_eq!(damaged_offset(&data), *base);
    }

    /// Writes `n` records, the same as `make_log` up to `same`, different after.
    fn forged_log(dir: &Path, n: u64, same: u64) {
        let mut log = Log::open(
            dir,
            LogOptions {
                segment_bytes: 4096,
            },
        )
        .unwrap();
        for i in 0..n {
            let text = if i < same {
                format!("record number {i} {}", "x".repeat((i % 50) as usize))
            } else {
                format!("forged {i}")
            };
            log.append(&[NewRecord {
                ts_ms: 1_000 + i * 10,
                schema: 1,
                payload: text.into_bytes(),
            }])
            .unwrap();
        }
    }

    #[test]
    fn a_checkpoint_catches_a_rewritten_chain() {
        let (_d, data) = data_with_log(120);
        let cp = checkpoint(&data, ProgressMode::Quiet).unwrap();
        assert_eq!(cp.offset, 120);
        // Still extended after more writes.
        verify(&data, Some(&cp), ProgressMode::Quiet).unwrap();
        // Someone with write access rewrites history from offset 80 and
        // recomputes every hash: the log alone verifies...
        std::fs::remove_dir_all(data.log()).unwrap();
        forged_log(&data.log(), 130, 79);
        verify(&data, None, ProgressMode::Quiet).unwrap();
        // ...but not against the checkpoint.
        let e = verify(&data, Some(&cp), ProgressMode::Quiet).unwrap_err();
        assert!(e.to_string().contains("rewritten"), "{e}");
        assert_eq!(e.exit_code(), 3);
        // A checkpoint taken before, at the last record the forgery kept,
        // still holds: it proves exactly the history it covers.
        std::fs::remove_dir_all(data.log()).unwrap();
        make_log(&data.log(), 120);
        let mut at = HeadAt {
            offset: 79,
            found: None,
        };
        let mut p = crate::tools::walk::tests::quiet();
        walk_dir(&data.log(), Rules::AUDIT, &mut at, &mut p).unwrap();
        let early = Checkpoint::from(at.found.unwrap());
        std::fs::remove_dir_all(data.log()).unwrap();
        forged_log(&data.log(), 130, 79);
        verify(&data, Some(&early), ProgressMode::Quiet).unwrap();
        let next = Checkpoint {
            offset: 80,
            ..early
        };
        assert!(verify(&data, Some(&next), ProgressMode::Quiet).is_err());
    }

    #[test]
    fn a_checkpoint_catches_a_cut_tail() {
        let (_d, data) = data_with_log(120);
        let cp = checkpoint(&data, ProgressMode::Quiet).unwrap();
        std::fs::remove_dir_all(data.log()).unwrap();
        make_log(&data.log(), 100);
        verify(&data, None, ProgressMode::Quiet).unwrap();
        let e = verify(&data, Some(&cp), ProgressMode::Quiet).unwrap_err();
        assert!(e.to_string().contains("removed from the end"), "{e}");
    }
}
