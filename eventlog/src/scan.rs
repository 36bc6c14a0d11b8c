//! The segment scanner: walks the bytes of one segment frame by frame and says
//! how far they are valid and how they end. It decides nothing: recovery and
//! `verify` turn its findings into repairs or refusals.
//!
//! It works on a byte slice so that the same code runs on files, in the
//! fuzzer and in property tests; it never panics and allocates only the
//! position list (4 bytes per valid record found).

use crate::frame::{self, FrameError, FRAME_HEADER_LEN, KIND_COMMIT, KIND_SEAL, MAX_RECORD};
use crate::segment::{Seal, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::{ChainHash, Offset};

/// Largest base offset accepted, so that offset arithmetic cannot overflow.
pub const MAX_OFFSET: Offset = 1 << 62;

/// What the scanner is told about the segment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// The base offset the file name announces; the header must match it.
    pub expect_base: Option<Offset>,
    /// `ts_ms` of the record before this segment: timestamps never decrease.
    pub prev_ts: u64,
    /// Compute blake3 for every record (checking each `prev` link and the
    /// seal's segment digest). Without it only crc32 and structure are
    /// checked and the chain head is taken from the seal: the quick scan of
    /// sealed segments at open.
    pub check_chain: bool,
}

/// How the bytes after the last valid record look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// The data ends exactly after the last record: an unsealed segment.
    Clean,
    /// A valid seal follows the last record; `trailing` bytes follow it
    /// (always 0 in a healthy log).
    Sealed {
        seal: Seal,
        seal_pos: u64,
        trailing: u64,
    },
    /// The frame at `pos` (which should have held `offset`) is not valid.
    /// `later` is the first crc-valid frame at or after `pos` that carries
    /// `offset` or a later one: if there is one, the damage is inside the
    /// data (corruption); if not, it is a torn tail.
    Damaged {
        pos: u64,
        offset: Offset,
        reason: String,
        later: Option<(u64, Offset)>,
    },
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub header: SegmentHeader,
    /// Byte position of each valid record, record `base + i` at index `i`.
    pub positions: Vec<u32>,
    /// Timestamp of the first and of the last valid record.
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    /// End of the last valid record: where the next frame goes.
    pub data_end: u64,
    /// Chain head after the last valid record (with `check_chain`, computed;
    /// without it, the seal's head, or the header's `prev_chain` if unsealed).
    pub head: ChainHash,
    pub end: ScanEnd,
}

impl ScanResult {
    /// Number of valid records.
    pub fn count(&self) -> u64 {
        self.positions.len() as u64
    }

    /// Offset of the last valid record (`base - 1` when there is none).
    pub fn last_offset(&self) -> Offset {
        self.header.base + self.count() - 1
    }
}

/// Scans a whole segment file. `Err` means the segment header itself is
/// unusable (the message says why).
pub fn scan_segment(bytes: &[u8], opts: &ScanOptions) -> Result<ScanResult, String> {
    let header = SegmentHeader::decode(bytes)?;
    if let Some(base) = opts.expect_base {
        if header.base != base {
            return Err(format!(
                "segment header base offset {} does not match the file name ({base})",
                header.base
            ));
        }
    }
    if header.base == 0 || header.base > MAX_OFFSET {
        return Err(format!("segment base offset {} out of range", header.base));
    }
    if bytes.len() > u32::MAX as usize {
        return Err(format!(
            "segment of {} bytes is over the 4 GiB limit",
            bytes.len()
        ));
    }
    let mut res = ScanResult {
        header,
        positions: Vec::new(),
        first_ts: None,
        last_ts: None,
        data_end: SEGMENT_HEADER_LEN as u64,
        head: header.prev_chain,
        end: ScanEnd::Clean,
    };
    let mut pos = SEGMENT_HEADER_LEN;
    let mut last_ts = opts.prev_ts;
    loop {
        if pos == bytes.len() {
            res.end = ScanEnd::Clean;
            break;
        }
        let expected = header.base + res.count();
        let damaged = |reason: String| ScanEnd::Damaged {
            pos: pos as u64,
            offset: expected,
            reason,
            later: find_later_frame(bytes, pos, expected),
        };
        let f = match frame::decode(&bytes[pos..]) {
            Ok(f) => f,
            Err(e) => {
                let reason = match e {
                    FrameError::BadKind(0) => "zeroed space (kind 0)".to_string(),
                    e => e.to_string(),
                };
                res.end = damaged(reason);
                break;
            }
        };
        let h = f.header;
        if h.kind == KIND_SEAL {
            match check_seal(bytes, pos, &f, &res, expected, opts) {
                Ok(seal) => {
                    if !opts.check_chain {
                        res.head = seal.chain_head;
                    }
                    let trailing = (bytes.len() - pos - f.len) as u64;
                    res.end = ScanEnd::Sealed {
                        seal,
                        seal_pos: pos as u64,
                        trailing,
                    };
                }
                Err(reason) => res.end = damaged(reason),
            }
            break;
        }
        debug_assert_eq!(h.kind, KIND_COMMIT);
        if h.offset != expected {
            res.end = damaged(format!(
                "frame carries offset {}, expected {expected}",
                h.offset
            ));
            break;
        }
        if h.ts_ms < last_ts {
            res.end = damaged(format!(
                "timestamp {} goes back (previous {last_ts})",
                h.ts_ms
            ));
            break;
        }
        if opts.check_chain {
            if h.prev != res.head {
                res.end = damaged(format!(
                    "hash chain broken: prev is not h[{}] (record {} or this one was altered)",
                    expected - 1,
                    expected - 1
                ));
                break;
            }
            res.head = f.chain_after();
        }
        res.positions.push(pos as u32);
        res.first_ts.get_or_insert(h.ts_ms);
        res.last_ts = Some(h.ts_ms);
        last_ts = h.ts_ms;
        pos += f.len;
        res.data_end = pos as u64;
    }
    Ok(res)
}

/// Checks a crc-valid seal frame at `pos` against what the scan saw.
fn check_seal(
    bytes: &[u8],
    pos: usize,
    f: &frame::Frame<'_>,
    res: &ScanResult,
    expected: Offset,
    opts: &ScanOptions,
) -> Result<Seal, String> {
    if res.count() == 0 {
        return Err("seal in a segment without records".into());
    }
    let seal = Seal::decode(f.payload)?;
    let last = expected - 1;
    if f.header.offset != last || seal.last_offset != last {
        return Err(format!(
            "seal names last offset {}, segment ends at {last}",
            seal.last_offset
        ));
    }
    if seal.record_count != res.count() {
        return Err(format!(
            "seal counts {} records, segment has {}",
            seal.record_count,
            res.count()
        ));
    }
    if Some(seal.min_ts_ms) != res.first_ts
        || Some(seal.max_ts_ms) != res.last_ts
        || f.header.ts_ms != seal.max_ts_ms
    {
        return Err("seal time range does not match the records".into());
    }
    if f.header.prev != seal.chain_head {
        return Err("seal frame prev does not match its chain head".into());
    }
    if opts.check_chain {
        if seal.chain_head != res.head {
            return Err("seal chain head does not match the records".into());
        }
        if *blake3::hash(&bytes[..pos]).as_bytes() != seal.segment_digest {
            return Err("seal segment digest does not match the segment bytes".into());
        }
    }
    Ok(seal)
}

/// The first crc-valid frame at an 8-byte boundary at or after `from` that
/// carries offset `expected` or later (a seal: `expected - 1` or later).
/// Finding one means the bad bytes at `from` are not a torn tail.
pub fn find_later_frame(bytes: &[u8], from: usize, expected: Offset) -> Option<(u64, Offset)> {
    let mut q = from;
    while q + FRAME_HEADER_LEN <= bytes.len() {
        let b = &bytes[q..];
        let kind = b[24];
        let len = frame::le_u32(b, 4) as usize;
        let plausible = (kind == KIND_COMMIT || kind == KIND_SEAL)
            && b[25] == 0
            && frame::le_u32(b, 28) == 0
            && len <= MAX_RECORD
            && frame::frame_len(len) <= b.len();
        if plausible {
            if let Ok(f) = frame::decode(b) {
                let o = f.header.offset;
                let later = if f.header.kind == KIND_SEAL {
                    o.saturating_add(1) >= expected
                } else {
                    o >= expected
                };
                if later {
                    return Some((q as u64, o));
                }
            }
        }
        q += 8;
    }
    None
}
