//! Opening a log directory: the walk over every segment that both `Log::open`
//! and `verify` use, and the repairs `Log::open` may make.
//!
//! What is repaired: a torn tail of the last segment (cut, with the cut bytes
//! kept in `<segment>.torn-<unix_ms>`), a rotation interrupted between
//! creating the next segment and sealing the previous one (the empty new
//! segment is removed), leftover `*.tmp` files (removed). Everything else —
//! damage followed by a valid later frame, a missing segment, a broken chain,
//! an unsealed segment in the middle — is refused with the segment and offset
//! named.

use std::sync::Arc;

use crate::chain;
use crate::idx_file;
use crate::scan::{scan_segment, ScanEnd, ScanOptions, ScanResult};
use crate::segment::{
    parse_segment_name, segment_name, SegmentHeader, SEGMENT_HEADER_LEN, TMP_SUFFIX,
};
use crate::storage::{read_all_into, LogFile, Storage};
use crate::{Head, LogError, Offset};

/// One segment that passed the walk.
#[derive(Debug)]
pub(crate) struct WalkedSegment {
    pub name: String,
    /// A read-only handle, kept for readers.
    pub file: Arc<dyn LogFile>,
    pub scan: ScanResult,
}

/// Bytes to cut at the end of the last walked segment.
#[derive(Debug, Clone)]
pub(crate) struct TornTail {
    pub cut_at: u64,
    pub bytes: u64,
    /// The offset the bad frame should have held.
    pub offset: Offset,
    pub reason: String,
}

/// Why the directory cannot be used as it is.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub segment: String,
    pub offset: Offset,
    pub reason: String,
}

/// What a walk over the directory found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Valid segments in order; when there is no problem the last one is the
    /// active (unsealed) segment.
    pub segments: Vec<WalkedSegment>,
    /// Bytes of the last walked segment (to rebuild the writer's state).
    pub tail_bytes: Vec<u8>,
    pub torn: Option<TornTail>,
    /// A header-only segment left by an interrupted rotation.
    pub abandoned: Option<String>,
    pub tmp_files: Vec<String>,
    /// Sealed segments (indexes into `segments`) scanned because their
    /// `.idx` was missing or stale: open rewrites it.
    pub idx_missing: Vec<usize>,
    pub problem: Option<Problem>,
    /// Head of the valid prefix walked.
    pub head: Head,
    pub min_ts: Option<u64>,
    pub bytes_scanned: u64,
}

impl Walk {
    fn refuse(&mut self, segment: &str, offset: Offset, reason: String) {
        self.problem = Some(Problem {
            segment: segment.to_string(),
            offset,
            reason,
        });
    }

    /// The problem as an error, naming the segment's path.
    pub fn problem_error(&self, storage: &dyn Storage) -> Option<LogError> {
        self.problem.as_ref().map(|p| LogError::Corrupt {
            segment: storage.path(&p.segment),
            offset: p.offset,
            reason: p.reason.clone(),
        })
    }
}

/// Walks every segment in offset order, checking each against its
/// predecessor. `full` checks the blake3 chain in every segment (verify);
/// without it sealed segments get the quick crc-only scan (open). Only I/O
/// errors are `Err`; damage is reported in [`Walk::problem`].
pub(crate) fn walk(storage: &dyn Storage, full: bool) -> Result<Walk, LogError> {
    let names = storage.list()?;
    let mut w = Walk {
        head: Head {
            offset: 0,
            hash: chain::genesis(),
            ts_ms: 0,
        },
        ..Walk::default()
    };
    w.tmp_files = names
        .iter()
        .filter(|n| n.ends_with(TMP_SUFFIX))
        .cloned()
        .collect();
    let mut segs: Vec<(Offset, String)> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|b| (b, n.clone())))
        .collect();
    segs.sort();
    let mut files = Vec::with_capacity(segs.len());
    for (_, name) in &segs {
        files.push(storage.open(name, false)?);
    }
    let mut buf = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let n = segs.len();
        let (base_owned, name_owned) = segs[i].clone();
        let (base, name) = (&base_owned, &name_owned);
        let file = files[i].clone();
        let is_last = i + 1 == n;
        // An interrupted rotation leaves a header-only last segment after an
        // unsealed one; only then may the second-to-last segment end
        // unsealed. Looked at before reading segment i: on a live log the
        // successor only gets records after segment i's seal is durable.
        let before_abandoned = i + 2 == n && files[n - 1].len()? == SEGMENT_HEADER_LEN as u64;
        let expected = w.head.offset + 1;
        if *base != expected {
            let reason = if *base > expected {
                format!("segment starts at offset {base} but the log so far ends at {}: a segment is missing", w.head.offset)
            } else {
                format!(
                    "segment starts at offset {base}, overlapping records up to {}",
                    w.head.offset
                )
            };
            w.refuse(name, expected, reason);
            break;
        }
        let quick = !(full || is_last || before_abandoned);
        let from_idx = if quick {
            idx_file::load(storage, *base, &file, w.head.ts_ms)?
        } else {
            None
        };
        let scan = if let Some(scan) = from_idx {
            buf.clear();
            scan
        } else {
            read_all_into(file.as_ref(), &mut buf)?;
            w.bytes_scanned += buf.len() as u64;
            let opts = ScanOptions {
                expect_base: Some(*base),
                prev_ts: w.head.ts_ms,
                check_chain: !quick,
            };
            match scan_segment(&buf, &opts) {
                Ok(s) => {
                    if quick {
                        w.idx_missing.push(w.segments.len());
                    }
                    s
                }
                Err(reason) => {
                    w.refuse(name, *base, reason);
                    break;
                }
            }
        };
        let bytes = &buf;
        if scan.header.prev_chain != w.head.hash {
            w.refuse(
                name,
                *base,
                "segment header prev_chain does not match the chain head before it".into(),
            );
            break;
        }
        let file_len = bytes.len() as u64;
        let end = scan.end.clone();
        let seg = WalkedSegment {
            name: name.clone(),
            file,
            scan,
        };
        // The valid records of this segment extend the valid prefix, even
        // if the segment turns out to be refused (verify reports the head
        // before the damage). Without `check_chain` the head hash of a
        // refused unsealed segment is not computed; open discards it.
        if let (Some(first), Some(last)) = (seg.scan.first_ts, seg.scan.last_ts) {
            w.min_ts.get_or_insert(first);
            w.head.ts_ms = last;
        }
        w.head.offset = seg.scan.last_offset();
        w.head.hash = seg.scan.head;
        let accept = |w: &mut Walk, seg: WalkedSegment| w.segments.push(seg);
        match end {
            ScanEnd::Sealed { trailing: 0, .. } if !is_last => {
                accept(&mut w, seg);
                i += 1;
                continue;
            }
            ScanEnd::Sealed {
                seal_pos, trailing, ..
            } if trailing > 0 => {
                let off = seg.scan.last_offset() + 1;
                w.refuse(
                    name,
                    off,
                    format!("{trailing} bytes follow the seal at byte {seal_pos}"),
                );
                break;
            }
            ScanEnd::Sealed { .. } => {
                let off = seg.scan.last_offset() + 1;
                // A live writer may have rolled since the listing: look again.
                let next = segment_name(off);
                if storage.list()?.contains(&next) {
                    files.push(storage.open(&next, false)?);
                    segs.push((off, next));
                    accept(&mut w, seg);
                    i += 1;
                    continue;
                }
                w.refuse(
                    name,
                    off,
                    "the last segment is sealed but has no successor: a segment file is missing"
                        .into(),
                );
                break;
            }
            ScanEnd::Damaged {
                pos,
                offset,
                reason,
                later: Some((at, later)),
            } => {
                w.refuse(
                    name,
                    offset,
                    format!("bad frame at byte {pos}: {reason}; a valid frame with offset {later} follows at byte {at}"),
                );
                break;
            }
            ScanEnd::Clean | ScanEnd::Damaged { later: None, .. }
                if is_last || before_abandoned =>
            {
                if let ScanEnd::Damaged { offset, reason, .. } = &end {
                    w.torn = Some(TornTail {
                        cut_at: seg.scan.data_end,
                        bytes: file_len - seg.scan.data_end,
                        offset: *offset,
                        reason: reason.clone(),
                    });
                }
                let next_base = seg.scan.last_offset() + 1;
                let head_after = seg.scan.head;
                w.tail_bytes = std::mem::take(&mut buf);
                accept(&mut w, seg);
                if before_abandoned {
                    let (abandoned_base, abandoned) = &segs[n - 1];
                    let header = read_header(storage, abandoned)?;
                    match header {
                        Ok(h)
                            if h.base == next_base
                                && *abandoned_base == next_base
                                && h.prev_chain == head_after =>
                        {
                            w.abandoned = Some(abandoned.clone());
                        }
                        _ => {
                            w.refuse(
                                abandoned,
                                next_base,
                                "empty segment after an unsealed one does not continue it".into(),
                            );
                        }
                    }
                }
                break;
            }
            ScanEnd::Clean => {
                let off = seg.scan.last_offset() + 1;
                w.refuse(
                    name,
                    off,
                    "segment is not sealed but another segment follows it".into(),
                );
                break;
            }
            ScanEnd::Damaged {
                pos,
                offset,
                reason,
                later: None,
            } => {
                w.refuse(
                    name,
                    offset,
                    format!("bad frame at byte {pos}: {reason}; another segment follows"),
                );
                break;
            }
        }
    }
    Ok(w)
}

fn read_header(
    storage: &dyn Storage,
    name: &str,
) -> Result<Result<SegmentHeader, String>, LogError> {
    let f = storage.open(name, false)?;
    let mut b = [0u8; SEGMENT_HEADER_LEN];
    f.read_exact_at(&mut b, 0)?;
    Ok(SegmentHeader::decode(&b))
}
