//! The read-only walk over log segments that every tool stands on: it
//! checks each segment (through `eventlog`'s own public scanner), links the
//! segments and every record into the blake3 chain, and hands each valid
//! record and segment to a [`Visitor`].
//!
//! Why not `eventlog::Log` or `eventlog::verify`: a `Log` takes the
//! directory's lock (the server holds it) and repairs what it opens, and
//! `verify` reports only a summary. The tools must read a live server's
//! directory without stopping it, see every record and its chain head, and
//! read segments that are not in a directory at all (the entries of a
//! snapshot archive). The rules are those of `docs/eventlog-format.md`
//! ("Opening and recovery"), and the tests check that this walk and
//! `eventlog::verify` name the same first bad offset.
//!
//! A segment is held in memory while it is checked (64 MiB by default).

use std::path::Path;

use eventlog::frame;
use eventlog::scan::{scan_segment, ScanEnd, ScanOptions};
use eventlog::segment::{parse_segment_name, SegmentHeader, SEGMENT_HEADER_LEN};
use eventlog::{genesis, ChainHash, Head, Offset};

use super::progress::Progress;
use super::ToolError;

/// How the walk may end. A live log may end in a torn tail (a write in
/// progress, or a crash not yet recovered) and, while it rolls, in a sealed
/// segment whose successor appeared after the listing; an archive written
/// by `cairn snapshot` ends exactly after its last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Bytes after the last whole record of the last segment are allowed
    /// (and reported).
    pub torn_tail: bool,
    /// The last segment may be sealed.
    pub sealed_end: bool,
}

impl Rules {
    /// An audit: a sealed last segment means a lost segment file.
    pub const AUDIT: Rules = Rules {
        torn_tail: true,
        sealed_end: false,
    };
    /// A consistent prefix of a live log (snapshot, replay, show).
    pub const PREFIX: Rules = Rules {
        torn_tail: true,
        sealed_end: true,
    };
    /// A snapshot archive: whole records only, nothing missing.
    pub const ARCHIVE: Rules = Rules {
        torn_tail: false,
        sealed_end: false,
    };
}

/// One valid record, with the chain head after it.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub offset: Offset,
    pub ts_ms: u64,
    pub schema: u16,
    pub payload: &'a [u8],
    /// `h[offset]`.
    pub hash: ChainHash,
}

impl RecordRef<'_> {
    pub fn head(&self) -> Head {
        Head {
            offset: self.offset,
            hash: self.hash,
            ts_ms: self.ts_ms,
        }
    }
}

/// One segment, after its records were visited.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRef<'a> {
    pub name: &'a str,
    pub base: Offset,
    /// The segment's bytes as read.
    pub bytes: &'a [u8],
    /// End of its last valid record (before the seal, if any).
    pub data_end: u64,
    pub sealed: bool,
}

/// What a tool does with the walk.
pub trait Visitor {
    fn record(&mut self, _r: &RecordRef<'_>) -> Result<(), ToolError> {
        Ok(())
    }
    /// Called after the records of each segment (not when the walk was
    /// stopped inside it).
    fn segment(&mut self, _s: &SegmentRef<'_>) -> Result<(), ToolError> {
        Ok(())
    }
    /// `false` stops the walk after the current record (replay `--until`).
    fn wants_more(&self) -> bool {
        true
    }
}

/// A visitor that only checks.
#[derive(Debug)]
pub struct NoVisit;
impl Visitor for NoVisit {}

/// What the walk found.
#[derive(Debug, Clone)]
pub struct WalkReport {
    pub segments: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Last valid record (offset 0 and the genesis hash for an empty log).
    pub head: Head,
    pub min_ts_ms: Option<u64>,
    /// Bytes after the last whole record (a torn tail or a write in
    /// progress), when the rules allow them.
    pub torn_tail_bytes: u64,
    /// The visitor stopped the walk: what follows was not checked.
    pub stopped: bool,
    /// Name of the last segment walked.
    pub last_segment: Option<String>,
}

impl WalkReport {
    pub fn records(&self) -> u64 {
        self.head.offset
    }
    pub fn max_ts_ms(&self) -> Option<u64> {
        self.min_ts_ms.map(|_| self.head.ts_ms)
    }
}

/// How the last segment fed ended.
#[derive(Debug, Clone)]
enum Tail {
    Nothing,
    Sealed(String),
    /// Unsealed; `torn` bytes (with the reason) follow the last record.
    Open {
        name: String,
        torn: u64,
        why: String,
    },
    /// The header-only successor of an interrupted (or in-progress)
    /// rotation: nothing may follow it.
    Abandoned(String),
}

/// Checks segments fed in offset order; see the module docs.
#[derive(Debug)]
pub struct Walker {
    rules: Rules,
    head: Head,
    min_ts: Option<u64>,
    segments: usize,
    bytes: u64,
    tail: Tail,
    stopped: bool,
}

fn damaged(segment: &str, offset: Offset, reason: impl Into<String>) -> ToolError {
    ToolError::Damaged {
        segment: segment.to_string(),
        offset,
        reason: reason.into(),
    }
}

impl Walker {
    pub fn new(rules: Rules) -> Walker {
        Walker {
            rules,
            head: Head {
                offset: 0,
                hash: genesis(),
                ts_ms: 0,
            },
            min_ts: None,
            segments: 0,
            bytes: 0,
            tail: Tail::Nothing,
            stopped: false,
        }
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Whether the last segment fed ended in a seal (a successor should
    /// follow: the directory walk lists again).
    fn ended_sealed(&self) -> bool {
        matches!(self.tail, Tail::Sealed(_))
    }

    /// Checks the next segment, visiting its records, then the segment.
    pub fn feed(
        &mut self,
        name: &str,
        bytes: &[u8],
        visitor: &mut dyn Visitor,
    ) -> Result<(), ToolError> {
        if self.stopped {
            return Ok(());
        }
        let expected = self.head.offset + 1;
        let base = parse_segment_name(name)
            .ok_or_else(|| damaged(name, expected, "not a segment file name"))?;
        match &self.tail {
            Tail::Abandoned(prev) => {
                return Err(damaged(
                    name,
                    expected,
                    format!("segment follows {prev}, the empty segment of an interrupted rotation"),
                ))
            }
            Tail::Open { name: prev, .. } => {
                // Only the header-only successor of a rotation may follow an
                // unsealed segment (the writer creates it before the seal).
                let empty_successor = bytes.len() == SEGMENT_HEADER_LEN
                    && base == expected
                    && SegmentHeader::decode(bytes)
                        .is_ok_and(|h| h.base == base && h.prev_chain == self.head.hash);
                if !empty_successor {
                    return Err(damaged(
                        prev,
                        expected,
                        "segment is not sealed but another segment follows it",
                    ));
                }
                self.tail = Tail::Abandoned(name.to_string());
                self.segments += 1;
                self.bytes += bytes.len() as u64;
                return visitor.segment(&SegmentRef {
                    name,
                    base,
                    bytes,
                    data_end: bytes.len() as u64,
                    sealed: false,
                });
            }
            Tail::Nothing | Tail::Sealed(_) => {}
        }
        if base != expected {
            let reason = if base > expected {
                format!(
                    "segment starts at offset {base} but the log so far ends at {}: a segment is missing",
                    self.head.offset
                )
            } else {
                format!(
                    "segment starts at offset {base}, overlapping records up to {}",
                    self.head.offset
                )
            };
            return Err(damaged(name, expected, reason));
        }
        self.segments += 1;
        self.bytes += bytes.len() as u64;
        let opts = ScanOptions {
            expect_base: Some(base),
            prev_ts: self.head.ts_ms,
            // The chain is checked below, record by record, so that each
            // record's head is computed once and handed to the visitor.
            check_chain: false,
        };
        let scan = scan_segment(bytes, &opts).map_err(|reason| damaged(name, base, reason))?;
        if scan.header.prev_chain != self.head.hash {
            return Err(damaged(
                name,
                base,
                "segment header prev_chain does not match the chain head before it",
            ));
        }
        for (i, &pos) in scan.positions.iter().enumerate() {
            let offset = base + i as u64;
            let f = bytes
                .get(pos as usize..)
                .and_then(|b| frame::decode(b).ok())
                .ok_or_else(|| damaged(name, offset, "frame does not decode on a second read"))?;
            if f.header.prev != self.head.hash {
                return Err(damaged(
                    name,
                    offset,
                    format!(
                        "hash chain broken: prev is not h[{}] (record {} or this one was altered)",
                        offset - 1,
                        offset - 1
                    ),
                ));
            }
            let rec = RecordRef {
                offset,
                ts_ms: f.header.ts_ms,
                schema: f.header.schema,
                payload: f.payload,
                hash: f.chain_after(),
            };
            self.head = rec.head();
            self.min_ts.get_or_insert(rec.ts_ms);
            visitor.record(&rec)?;
            if !visitor.wants_more() {
                self.stopped = true;
                self.tail = Tail::Open {
                    name: name.to_string(),
                    torn: 0,
                    why: String::new(),
                };
                return Ok(());
            }
        }
        let last = self.head.offset;
        let sealed = match scan.end {
            ScanEnd::Sealed {
                seal,
                seal_pos,
                trailing,
            } => {
                if trailing > 0 {
                    return Err(damaged(
                        name,
                        last + 1,
                        format!("{trailing} bytes follow the seal at byte {seal_pos}"),
                    ));
                }
                if seal.chain_head != self.head.hash {
                    return Err(damaged(
                        name,
                        last + 1,
                        "seal chain head does not match the records",
                    ));
                }
                let before = bytes.get(..seal_pos as usize).unwrap_or_default();
                if *blake3::hash(before).as_bytes() != seal.segment_digest {
                    return Err(damaged(
                        name,
                        last + 1,
                        "seal segment digest does not match the segment bytes",
                    ));
                }
                self.tail = Tail::Sealed(name.to_string());
                true
            }
            ScanEnd::Clean => {
                self.tail = Tail::Open {
                    name: name.to_string(),
                    torn: 0,
                    why: String::new(),
                };
                false
            }
            ScanEnd::Damaged {
                pos,
                offset,
                reason,
                later: Some((at, later)),
            } => {
                return Err(damaged(
                    name,
                    offset,
                    format!("bad frame at byte {pos}: {reason}; a valid frame with offset {later} follows at byte {at}"),
                ))
            }
            ScanEnd::Damaged {
                pos,
                offset,
                reason,
                later: None,
            } => {
                self.tail = Tail::Open {
                    name: name.to_string(),
                    torn: bytes.len() as u64 - scan.data_end,
                    why: format!("offset {offset}: bad frame at byte {pos}: {reason}"),
                };
                false
            }
        };
        visitor.segment(&SegmentRef {
            name,
            base,
            bytes,
            data_end: scan.data_end,
            sealed,
        })
    }

    /// Ends the walk, applying the rules to how the last segment ended.
    pub fn finish(self) -> Result<WalkReport, ToolError> {
        let mut torn_tail_bytes = 0;
        let last_segment = match &self.tail {
            Tail::Nothing => None,
            Tail::Sealed(name) => {
                if !self.rules.sealed_end && !self.stopped {
                    return Err(damaged(
                        name,
                        self.head.offset + 1,
                        "the last segment is sealed but has no successor: a segment file is missing",
                    ));
                }
                Some(name.clone())
            }
            Tail::Open { name, torn, why } => {
                if *torn > 0 && !self.rules.torn_tail {
                    return Err(damaged(
                        name,
                        self.head.offset + 1,
                        format!("{torn} bytes after the last whole record ({why})"),
                    ));
                }
                torn_tail_bytes = *torn;
                Some(name.clone())
            }
            Tail::Abandoned(name) => Some(name.clone()),
        };
        Ok(WalkReport {
            segments: self.segments,
            bytes: self.bytes,
            head: self.head,
            min_ts_ms: self.min_ts,
            torn_tail_bytes,
            stopped: self.stopped,
            last_segment,
        })
    }
}

/// The segment files of a log directory, in offset order, with their sizes.
pub fn list_segments(log_dir: &Path) -> Result<Vec<(Offset, String, u64)>, ToolError> {
    let rd = std::fs::read_dir(log_dir).map_err(ToolError::at("listing", log_dir))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(ToolError::at("listing", log_dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(base) = parse_segment_name(&name) else {
            continue;
        };
        let len = entry
            .metadata()
            .map_err(ToolError::at("reading the size of", &entry.path()))?
            .len();
        out.push((base, name, len));
    }
    out.sort();
    Ok(out)
}

/// Walks a log directory (read-only, no lock: a live server may append
/// meanwhile). When the last segment read is sealed the directory is listed
/// again, so a rotation during the walk is followed rather than mistaken
/// for a lost segment. Progress counts bytes.
pub fn walk_dir(
    log_dir: &Path,
    rules: Rules,
    visitor: &mut dyn Visitor,
    progress: &mut Progress,
) -> Result<WalkReport, ToolError> {
    if !log_dir.is_dir() {
        return Err(ToolError::NoLog(log_dir.to_path_buf()));
    }
    let mut walker = Walker::new(rules);
    let mut next_base: Offset = 0;
    let mut total = 0u64;
    let mut any = false;
    loop {
        let listing: Vec<_> = list_segments(log_dir)?
            .into_iter()
            .filter(|(base, _, _)| *base >= next_base)
            .collect();
        if listing.is_empty() {
            break;
        }
        any = true;
        total += listing.iter().map(|(_, _, len)| len).sum::<u64>();
        progress.set_total(total);
        for (base, name, _) in listing {
            let path = log_dir.join(&name);
            let bytes = std::fs::read(&path).map_err(ToolError::at("reading", &path))?;
            progress.inc(bytes.len() as u64);
            walker.feed(&name, &bytes, visitor)?;
            next_base = base + 1;
            if walker.stopped() {
                break;
            }
        }
        if walker.stopped() || !walker.ended_sealed() {
            break;
        }
    }
    if !any {
        return Err(ToolError::NoLog(log_dir.to_path_buf()));
    }
    walker.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tools::progress::{ProgressMode, Unit};
    use eventlog::{Log, LogOptions, NewRecord};

    /// A log of `n` records with small segments (several seals), closed.
    pub(crate) fn make_log(dir: &Path, n: u64) -> Head {
        let mut log = Log::open(
            dir,
            LogOptions {
                segment_bytes: 4096,
            },
        )
        .expect("open");
        for i in 0..n {
            log.append(&[NewRecord {
                ts_ms: 1_000 + i * 10,
                schema: 1,
                payload: format!("record number {i} {}", "x".repeat((i % 50) as usize))
                    .into_bytes(),
            }])
            .expect("append");
        }
        log.head()
    }

    pub(crate) fn quiet() -> Progress {
        Progress::new(ProgressMode::Quiet, "test", 0, Unit::Bytes)
    }

    #[derive(Default)]
    struct Collect {
        offsets: Vec<Offset>,
        hashes: Vec<ChainHash>,
        sealed: Vec<bool>,
    }
    impl Visitor for Collect {
        fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
            self.offsets.push(r.offset);
            self.hashes.push(r.hash);
            Ok(())
        }
        fn segment(&mut self, s: &SegmentRef<'_>) -> Result<(), ToolError> {
            self.sealed.push(s.sealed);
            Ok(())
        }
    }

    #[test]
    fn walks_every_record_with_the_writers_chain() {
        let dir = tempfile::tempdir().unwrap();
        let head = make_log(dir.path(), 200);
        let mut c = Collect::default();
        let report = walk_dir(dir.path(), Rules::AUDIT, &mut c, &mut quiet()).unwrap();
        assert_eq!(report.head, head);
        assert_eq!(c.offsets, (1..=200).collect::<Vec<_>>());
        assert!(report.segments > 3, "{report:?}");
        assert_eq!(c.sealed.len(), report.segments);
        assert!(c.sealed[..c.sealed.len() - 1].iter().all(|s| *s));
        assert_eq!(report.min_ts_ms, Some(1_000));
        let ev = eventlog::verify(dir.path()).unwrap();
        assert!(ev.is_ok());
        assert_eq!(ev.head, report.head);
        // Each record's hash is the one the writer's reader sees.
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        let r = log.reader().read(77).unwrap();
        assert_eq!(c.hashes[76], r.hash);
    }

    #[test]
    fn empty_log_has_the_genesis_head() {
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path(), 0);
        let report = walk_dir(dir.path(), Rules::AUDIT, &mut NoVisit, &mut quiet()).unwrap();
        assert_eq!(report.head.offset, 0);
        assert_eq!(report.head.hash, genesis());
        assert_eq!(report.segments, 1);
    }

    #[test]
    fn missing_directory_is_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let e = walk_dir(
            &dir.path().join("nope"),
            Rules::AUDIT,
            &mut NoVisit,
            &mut quiet(),
        )
        .unwrap_err();
        assert!(matches!(e, ToolError::NoLog(_)), "{e}");
        let e = walk_dir(dir.path(), Rules::AUDIT, &mut NoVisit, &mut quiet()).unwrap_err();
        assert!(matches!(e, ToolError::NoLog(_)), "{e}");
    }

    #[test]
    fn stops_when_the_visitor_has_enough() {
        struct Upto(Offset, Offset);
        impl Visitor for Upto {
            fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
                self.1 = r.offset;
                Ok(())
            }
            fn wants_more(&self) -> bool {
                self.1 < self.0
            }
        }
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path(), 100);
        let mut v = Upto(42, 0);
        let report = walk_dir(dir.path(), Rules::AUDIT, &mut v, &mut quiet()).unwrap();
        assert_eq!(report.head.offset, 42);
        assert!(report.stopped);
    }

    #[test]
    fn torn_tail_is_allowed_live_but_not_in_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path(), 30);
        let (_, last, _) = list_segments(dir.path()).unwrap().pop().unwrap();
        let path = dir.path().join(&last);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        std::fs::write(&path, &bytes).unwrap();
        let report = walk_dir(dir.path(), Rules::AUDIT, &mut NoVisit, &mut quiet()).unwrap();
        assert_eq!(report.torn_tail_bytes, 9);
        assert_eq!(report.head.offset, 30);
        let e = walk_dir(dir.path(), Rules::ARCHIVE, &mut NoVisit, &mut quiet()).unwrap_err();
        assert!(matches!(e, ToolError::Damaged { offset: 31, .. }), "{e}");
    }

    #[test]
    fn a_lost_tail_segment_is_found_by_an_audit_only() {
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path(), 100);
        let (_, last, _) = list_segments(dir.path()).unwrap().pop().unwrap();
        std::fs::remove_file(dir.path().join(&last)).unwrap();
        let e = walk_dir(dir.path(), Rules::AUDIT, &mut NoVisit, &mut quiet()).unwrap_err();
        assert!(e.to_string().contains("segment file is missing"), "{e}");
        assert!(walk_dir(dir.path(), Rules::PREFIX, &mut NoVisit, &mut quiet()).is_ok());
    }
}
