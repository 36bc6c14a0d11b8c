//! `{base:020}.idx`: the dense offset index of a sealed segment, so that
//! open reads a few hundred bytes of a sealed segment instead of all of it
//! (Kafka's recovery point, raft-wal's index frame). Derived data: written
//! after a roll without fsync, checked against the segment's seal at every
//! open, and rebuilt from the segment whenever it is missing, torn or does
//! not match. Readers still check each frame's crc and offset, so a wrong
//! index can only produce an error, never a wrong record.
//!
//! ```text
//! 0  [u8;8] magic "CAIRNIDX"     24 u64 record_count
//! 8  u16 version (1)             32 u64 seal_pos (byte position of the seal frame)
//! 10 u16 reserved (0)            40 u64 segment file length
//! 12 u32 crc32 of the seal frame 48 [u8;16] reserved (0)
//! 16 u64 base_offset             64 record_count × u32 byte positions
//!                                then u32 crc32 of every byte before it
//! ```

use std::sync::Arc;

use crate::frame::{self, le_u16, le_u32, le_u64, KIND_SEAL};
use crate::scan::{ScanEnd, ScanResult};
use crate::segment::{Seal, SegmentHeader, SEAL_LEN, SEGMENT_HEADER_LEN};
use crate::storage::{LogFile, Storage};
use crate::Offset;

const MAGIC: &[u8; 8] = b"CAIRNIDX";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 64;

/// `{base:020}.idx`.
pub fn idx_name(base: Offset) -> String {
    format!("{base:020}.idx")
}

/// Encodes the index of a sealed segment.
pub fn encode(
    base: Offset,
    seal_crc: u32,
    seal_pos: u64,
    file_len: u64,
    positions: &[u32],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + positions.len() * 4 + 4);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&seal_crc.to_le_bytes());
    b.extend_from_slice(&base.to_le_bytes());
    b.extend_from_slice(&(positions.len() as u64).to_le_bytes());
    b.extend_from_slice(&seal_pos.to_le_bytes());
    b.extend_from_slice(&file_len.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    for p in positions {
        b.extend_from_slice(&p.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Writes the index (`.tmp` then rename; no fsync: it is rebuilt if lost).
pub fn write(storage: &dyn Storage, base: Offset, bytes: &[u8]) -> std::io::Result<()> {
    let name = idx_name(base);
    let tmp = format!("{name}{}", crate::segment::TMP_SUFFIX);
    let f = storage.create(&tmp)?;
    f.write_all_at(bytes, 0)?;
    storage.rename(&tmp, &name)
}

/// The scan result of sealed segment `name` from its index, or `None` if
/// the index is missing or does not match the segment's header and seal
/// (the caller then scans the segment). Only I/O errors on the segment
/// itself are errors.
pub fn load(
    storage: &dyn Storage,
    base: Offset,
    segment: &Arc<dyn LogFile>,
    prev_ts: u64,
) -> std::io::Result<Option<ScanResult>> {
    let Ok(idx) = storage.open(&idx_name(base), false) else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    if crate::storage::read_all_into(idx.as_ref(), &mut bytes).is_err() {
        return Ok(None);
    }
    let file_len = segment.len()?;
    Ok(check(&bytes, base, file_len, prev_ts, |buf, pos| {
        segment.read_exact_at(buf, pos)
    }))
}

fn check(
    b: &[u8],
    base: Offset,
    file_len: u64,
    prev_ts: u64,
    read_at: impl Fn(&mut [u8], u64) -> std::io::Result<()>,
) -> Option<ScanResult> {
    if b.len() < HEADER_LEN + 4 || &b[0..8] != MAGIC || le_u16(b, 8) != VERSION {
        return None;
    }
    let body = b.len() - 4;
    if crc32fast::hash(&b[..body]) != le_u32(b, body) {
        return None;
    }
    let count = le_u64(b, 24);
    let seal_pos = le_u64(b, 32);
    if le_u64(b, 16) != base || le_u64(b, 40) != file_len || count == 0 {
        return None;
    }
    if (body - HEADER_LEN) as u64 != count.checked_mul(4)? {
        return None;
    }
    let seal_len = frame::frame_len(SEAL_LEN) as u64;
    if seal_pos.checked_add(seal_len)? != file_len {
        return None;
    }
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    read_at(&mut h, 0).ok()?;
    let header = SegmentHeader::decode(&h).ok()?;
    let mut s = vec![0u8; seal_len as usize];
    read_at(&mut s, seal_pos).ok()?;
    let f = frame::decode(&s).ok()?;
    if f.header.kind != KIND_SEAL || f.header.crc != le_u32(b, 12) {
        return None;
    }
    let seal = Seal::decode(f.payload).ok()?;
    if header.base != base || seal.record_count != count || seal.last_offset != base + count - 1 {
        return None;
    }
    if seal.min_ts_ms < prev_ts || seal.max_ts_ms < seal.min_ts_ms {
        return None;
    }
    let positions: Vec<u32> = (0..count as usize)
        .map(|i| le_u32(b, HEADER_LEN + 4 * i))
        .collect();
    let ordered = positions.first() == Some(&(SEGMENT_HEADER_LEN as u32))
        && positions
            .windows(2)
            .all(|w| u64::from(w[0]) + frame::frame_len(0) as u64 <= u64::from(w[1]))
        && positions
            .last()
            .is_some_and(|&p| u64::from(p) + frame::frame_len(0) as u64 <= seal_pos);
    if !ordered {
        return None;
    }
    Some(ScanResult {
        header,
        positions,
        first_ts: Some(seal.min_ts_ms),
        last_ts: Some(seal.max_ts_ms),
        data_end: seal_pos,
        head: seal.chain_head,
        end: ScanEnd::Sealed {
            seal,
            seal_pos,
            trailing: 0,
        },
    })
}
