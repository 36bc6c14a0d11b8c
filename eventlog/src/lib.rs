//! `eventlog`: Cairn's durable, verifiable, segmented append-only log.
//!
//! It knows bytes, offsets, timestamps and durability, and nothing of Kinto:
//! callers hand it opaque payloads (the server encodes its events with
//! rmp-serde) and get back the offset at which each record is durable. The
//! byte format and the recovery rules are in `docs/eventlog-format.md`.
//!
//! Modules:
//!
//! * `error`        — [`LogError`], the one error type.
//! * `chain`        — blake3 record digests `d[n]` and chain heads `h[n]`.
//! * `frame`        — the 64-byte-header record frame: encode, decode, crc.
//! * `segment`      — segment names, the 72-byte segment header, the seal.
//! * `scan`         — walks a segment's bytes and says how far they are valid.
//! * `storage`      — the file I/O traits ([`Storage`], [`LogFile`]) and the real disk.
//! * `mem_storage`  — an in-memory storage that fails and "crashes" on cue, for tests.
//! * `recovery`     — the walk over all segments shared by open and verify; repairs.
//! * `index`        — the in-memory offset → (segment, position) index.
//! * `idx_file`     — `.idx` sidecars: a sealed segment's positions, so open skips reading it.
//! * `writer`       — [`Log`], the single writer: batch append, fdatasync, roll.
//! * `reader`       — [`LogReader`]: read, iterate, find a time, tail.
//! * `group_commit` — [`GroupCommitter`], the async front sharing one write + sync.
//! * `verify`       — [`verify`], the read-only audit of every crc and the chain.
//! * `repair`       — [`truncate_after`], the operator's deliberate cut after a record.
//!
//! Entry points:
//!
//! * [`Log::open`] opens (creating if needed) a log directory, recovering a torn
//!   tail and refusing damage before the tail.
//! * [`Log::append`] writes several records with one write and one fdatasync
//!   (the caller's own group commit: the server's sequencer thread).
//! * [`GroupCommitter`] is the async front: many tasks call `append`, one writer
//!   thread batches them into one write + one sync.
//! * [`LogReader`] (cheap to clone, `Send + Sync`) reads records by offset,
//!   iterates from an offset, finds the first record at/after a timestamp, and
//!   waits for new records (tailing).
//! * [`verify`] walks every segment checking crc32 and the blake3 chain.

mod chain;
mod error;
pub mod frame;
mod group_commit;
mod idx_file;
mod index;
pub mod mem_storage;
mod reader;
mod recovery;
mod repair;
pub mod scan;
pub mod segment;
pub mod storage;
mod verify;
mod writer;

pub use chain::genesis;
pub use error::LogError;
pub use frame::MAX_RECORD;
pub use group_commit::{CommitStats, GroupCommitter};
pub use reader::{LogReader, RecordIter};
pub use repair::{truncate_after, truncate_after_storage, RepairReport};
pub use storage::{LogFile, StdStorage, Storage};
pub use verify::{verify, verify_storage, VerifyProblem, VerifyReport};
pub use writer::{Log, MAX_BATCH_BYTES};

/// A record's sequence number. The log starts at 1; 0 means "nothing".
pub type Offset = u64;

/// blake3 chain head after a record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// Lower-case hex, for reports and logs.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The last durable record. For an empty log: offset 0, the genesis hash
/// (see [`genesis`]) once opened, and ts 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub offset: Offset,
    pub hash: ChainHash,
    pub ts_ms: u64,
}

/// What a caller appends: an opaque payload with its commit time.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub ts_ms: u64,
    /// Payload schema version, for upcasters.
    pub schema: u16,
    pub payload: Vec<u8>,
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: Offset,
    pub ts_ms: u64,
    pub schema: u16,
    pub payload: Vec<u8>,
    /// Chain head after this record.
    pub hash: ChainHash,
}

/// Tunables of a log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// A segment rolls before the first append that finds it at or over this
    /// size (so a segment exceeds it by at most one batch). Clamped to
    /// [`LogOptions::MIN_SEGMENT_BYTES`]..=[`LogOptions::MAX_SEGMENT_BYTES`].
    pub segment_bytes: u64,
}

impl LogOptions {
    /// 64 MiB: the tail scan at open (crc32 + blake3) stays well under a second.
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
    /// Small segments are for tests.
    pub const MIN_SEGMENT_BYTES: u64 = 4096;
    /// With [`MAX_BATCH_BYTES`], keeps positions in a segment within `u32`.
    pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;

    pub(crate) fn normalized(mut self) -> LogOptions {
        self.segment_bytes = self
            .segment_bytes
            .clamp(Self::MIN_SEGMENT_BYTES, Self::MAX_SEGMENT_BYTES);
        self
    }
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Wall-clock ms since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
