//! Segment files: their names, their 72-byte header, and the seal payload
//! that closes them.
//!
//! A segment is named `{base_offset:020}.seg` so that names sort like offsets
//! and any offset is found from a directory listing.

use crate::frame::{hash_at, le_u16, le_u32, le_u64};
use crate::{ChainHash, Offset};

/// File type magic at the start of every segment.
pub const MAGIC: &[u8; 8] = b"CAIRNLOG";
/// Format version written and read by this code.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 72;
/// Suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".seg";
/// Suffix of a segment being built before its rename.
pub const TMP_SUFFIX: &str = ".tmp";

/// `{base:020}.seg`.
pub fn segment_name(base: Offset) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

/// The base offset of a segment file name, or `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment header (72 bytes, little-endian).
///
/// ```text
/// 0  [u8;8] magic "CAIRNLOG"     24 u64 created_ms
/// 8  u16 version (1)             32 [u8;32] prev_chain = h[base-1]
/// 10 u16 header length (72)      64 u32 reserved (0)
/// 12 u32 reserved (0)            68 u32 crc32 of bytes [0, 68)
/// 16 u64 base_offset
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub base: Offset,
    pub created_ms: u64,
    /// Chain head after record `base - 1`: each segment can be checked given
    /// its predecessor's head.
    pub prev_chain: ChainHash,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.base.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ms.to_le_bytes());
        b[32..64].copy_from_slice(&self.prev_chain.0);
        let crc = crc32fast::hash(&b[0..68]);
        b[68..72].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header; the error says what is wrong.
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(format!(
                "segment header truncated: {} of {SEGMENT_HEADER_LEN} bytes",
                b.len()
            ));
        }
        if &b[0..8] != MAGIC {
            return Err("bad segment magic".into());
        }
        let crc = le_u32(b, 68);
        let computed = crc32fast::hash(&b[0..68]);
        if crc != computed {
            return Err(format!(
                "segment header crc mismatch: stored {crc:08x}, computed {computed:08x}"
            ));
        }
        let version = le_u16(b, 8);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported segment format version {version}"));
        }
        let hlen = le_u16(b, 10);
        if hlen as usize != SEGMENT_HEADER_LEN {
            return Err(format!("unsupported segment header length {hlen}"));
        }
        if le_u32(b, 12) != 0 || le_u32(b, 64) != 0 {
            return Err("reserved segment header bytes set".into());
        }
        Ok(SegmentHeader {
            base: le_u64(b, 16),
            created_ms: le_u64(b, 24),
            prev_chain: hash_at(b, 32),
        })
    }
}

/// Payload of a seal frame (96 bytes). The seal is the last frame of every
/// segment but the active one: a sealed segment without a successor means a
/// segment file went missing. It does not take an offset (offsets stay dense:
/// offset n is the n-th commit) and is not a link of the chain; its frame's
/// `offset` is the segment's last offset and its `prev` the chain head.
///
/// ```text
/// 0  u64 last_offset    24 u64 max_ts_ms
/// 8  u64 record_count   32 [u8;32] chain head h[last_offset]
/// 16 u64 min_ts_ms      64 [u8;32] blake3 of the segment bytes before the seal
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub last_offset: Offset,
    pub record_count: u64,
    pub min_ts_ms: u64,
    pub max_ts_ms: u64,
    pub chain_head: ChainHash,
    pub segment_digest: [u8; 32],
}

/// Size of the seal payload.
pub const SEAL_LEN: usize = 96;

impl Seal {
    pub fn encode(&self) -> [u8; SEAL_LEN] {
        let mut b = [0u8; SEAL_LEN];
        b[0..8].copy_from_slice(&self.last_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.record_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.min_ts_ms.to_le_bytes());
        b[24..32].copy_from_slice(&self.max_ts_ms.to_le_bytes());
        b[32..64].copy_from_slice(&self.chain_head.0);
        b[64..96].copy_from_slice(&self.segment_digest);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Seal, String> {
        if b.len() != SEAL_LEN {
            return Err(format!(
                "seal payload is {} bytes, expected {SEAL_LEN}",
                b.len()
            ));
        }
        Ok(Seal {
            last_offset: le_u64(b, 0),
            record_count: le_u64(b, 8),
            min_ts_ms: le_u64(b, 16),
            max_ts_ms: le_u64(b, 24),
            chain_head: hash_at(b, 32),
            segment_digest: hash_at(b, 64).0,
        })
    }
}
