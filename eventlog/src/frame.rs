//! Record frames (format v1): a 64-byte header, the payload, zero padding to
//! the next 8-byte boundary. Encoding, and a decoder that checks structure,
//! crc and padding before anything else looks at a frame.
//!
//! ```text
//! 0  u32 crc32 of bytes [4, 64+len)     24 u8  kind (1 commit, 2 seal)
//! 4  u32 len (payload bytes)            25 u8  flags (0 = a whole commit)
//! 8  u64 offset                         26 u16 schema
//! 16 u64 ts_ms                          28 u32 reserved (0)
//!                                       32 [u8;32] prev = h[offset-1]
//! ```

use crate::chain;
use crate::ChainHash;

/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = 64;

/// Largest payload of one record: 1 MiB − 1 KiB, so a whole frame plus
/// JetStream headers fits JetStream's default 1 MiB message (same frame on
/// both backends later). Checked before any allocation.
pub const MAX_RECORD: usize = 1024 * 1024 - 1024;

/// Frame kind 0: zeroed or never-written space; never valid.
pub const KIND_INVALID: u8 = 0;
/// Frame kind 1: one commit (all events of one write request).
pub const KIND_COMMIT: u8 = 1;
/// Frame kind 2: the seal that closes a segment.
pub const KIND_SEAL: u8 = 2;

/// Bytes a frame with `payload_len` payload bytes takes on disk.
pub const fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_LEN + payload_len + 7) & !7
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub crc: u32,
    pub len: u32,
    pub offset: u64,
    pub ts_ms: u64,
    pub kind: u8,
    pub flags: u8,
    pub schema: u16,
    pub reserved: u32,
    pub prev: ChainHash,
}

/// Why bytes are not a frame. Structural only: whether the offset and the
/// chain fit is the scanner's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes left than the header or the frame needs.
    Truncated {
        need: usize,
        have: usize,
    },
    /// Kind is not commit or seal (kind 0: zeroed space).
    BadKind(u8),
    /// Flags or reserved bits are set: not written by this version.
    Reserved,
    /// `len` is over [`MAX_RECORD`]; rejected before reading the payload.
    TooLong(u32),
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
    /// Padding after the payload is not zero.
    BadPadding,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated { need, have } => {
                write!(f, "truncated frame: need {need} bytes, have {have}")
            }
            FrameError::BadKind(k) => write!(f, "invalid frame kind {k}"),
            FrameError::Reserved => write!(f, "reserved header bits set"),
            FrameError::TooLong(n) => {
                write!(f, "payload length {n} exceeds the maximum {MAX_RECORD}")
            }
            FrameError::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "crc mismatch: stored {stored:08x}, computed {computed:08x}"
                )
            }
            FrameError::BadPadding => write!(f, "non-zero padding"),
        }
    }
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn hash_at(b: &[u8], at: usize) -> ChainHash {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[at..at + 32]);
    ChainHash(a)
}

impl FrameHeader {
    /// Parses a header without checking anything; `b` must hold 64 bytes.
    fn parse(b: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            crc: le_u32(b, 0),
            len: le_u32(b, 4),
            offset: le_u64(b, 8),
            ts_ms: le_u64(b, 16),
            kind: b[24],
            flags: b[25],
            schema: le_u16(b, 26),
            reserved: le_u32(b, 28),
            prev: hash_at(b, 32),
        }
    }

    /// Bytes the whole frame takes on disk.
    pub fn frame_len(&self) -> usize {
        frame_len(self.len as usize)
    }
}

/// A frame that passed [`decode`]: its header and where its payload lies.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    /// The header bytes 4..32 that the record digest covers.
    pub digest_fields: &'a [u8],
    pub payload: &'a [u8],
    /// Bytes the frame takes, padding included.
    pub len: usize,
}

impl Frame<'_> {
    /// `d[n]` of this frame.
    pub fn digest(&self) -> [u8; 32] {
        chain::record_digest(self.digest_fields, self.payload)
    }

    /// `h[n]`: the chain head after this frame, from its own `prev` field.
    pub fn chain_after(&self) -> ChainHash {
        chain::chain_next(&self.header.prev, &self.digest())
    }
}

/// Decodes the frame at the start of `b`: header, length bound, crc and
/// padding. Never allocates, never reads past `b`.
pub fn decode(b: &[u8]) -> Result<Frame<'_>, FrameError> {
    let Some(head) = b.first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            need: FRAME_HEADER_LEN,
            have: b.len(),
        });
    };
    let header = FrameHeader::parse(head);
    if header.kind != KIND_COMMIT && header.kind != KIND_SEAL {
        return Err(FrameError::BadKind(header.kind));
    }
    if header.flags != 0 || header.reserved != 0 {
        return Err(FrameError::Reserved);
    }
    if header.len as usize > MAX_RECORD {
        return Err(FrameError::TooLong(header.len));
    }
    let len = header.frame_len();
    if b.len() < len {
        return Err(FrameError::Truncated {
            need: len,
            have: b.len(),
        });
    }
    let end = FRAME_HEADER_LEN + header.len as usize;
    let computed = crc32fast::hash(&b[4..end]);
    if computed != header.crc {
        return Err(FrameError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if b[end..len].iter().any(|&x| x != 0) {
        return Err(FrameError::BadPadding);
    }
    Ok(Frame {
        header,
        digest_fields: &b[4..32],
        payload: &b[FRAME_HEADER_LEN..end],
        len,
    })
}

/// What to put in a frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameSpec<'a> {
    pub kind: u8,
    pub offset: u64,
    pub ts_ms: u64,
    pub schema: u16,
    pub prev: ChainHash,
    pub payload: &'a [u8],
}

/// Appends the frame to `out` and returns the chain head after it.
/// The caller has checked `payload.len() <= MAX_RECORD`.
pub fn encode(out: &mut Vec<u8>, spec: &FrameSpec<'_>) -> ChainHash {
    let start = out.len();
    let len = spec.payload.len();
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    h[8..16].copy_from_slice(&spec.offset.to_le_bytes());
    h[16..24].copy_from_slice(&spec.ts_ms.to_le_bytes());
    h[24] = spec.kind;
    h[25] = 0;
    h[26..28].copy_from_slice(&spec.schema.to_le_bytes());
    h[32..64].copy_from_slice(&spec.prev.0);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[4..]);
    crc.update(spec.payload);
    h[0..4].copy_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(spec.payload);
    out.resize(start + frame_len(len), 0);
    let d = chain::record_digest(&h[4..32], spec.payload);
    chain::chain_next(&spec.prev, &d)
}
