//! `eventlog`: Cairn's durable, verifiable, segmented append-only log.
//!
//! It knows bytes, offsets, timestamps and durability, and nothing of Kinto:
//! callers hand it opaque payloads (the server encodes its events with
//! rmp-serde) and get back the offset at which each record is durable.
//!
//! API CONTRACT (stub — being implemented; signatures are what other crates use):
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

use std::path::{Path, PathBuf};

/// A record's sequence number. The log starts at 1; 0 means "nothing".
pub type Offset = u64;

/// blake3 chain head after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

/// The last durable record.
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

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub segment_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt log in {segment} at offset {offset}: {reason}")]
    Corrupt { segment: PathBuf, offset: Offset, reason: String },
    #[error("log writer is poisoned by an earlier failed write or sync: {0}")]
    Poisoned(String),
    #[error("record too large: {0} bytes")]
    TooLarge(usize),
    #[error("no record at offset {0}")]
    NotFound(Offset),
}

#[derive(Debug)]
pub struct Log {}

#[derive(Debug, Clone)]
pub struct LogReader {}

impl Log {
    pub fn open(_dir: &Path, _opts: LogOptions) -> Result<Log, LogError> {
        todo!()
    }
    /// Appends the records with one write and one fdatasync; returns the
    /// head after each record, in order. On error nothing is acknowledged
    /// and the log refuses further appends.
    pub fn append(&mut self, _records: &[NewRecord]) -> Result<Vec<Head>, LogError> {
        todo!()
    }
    pub fn head(&self) -> Head {
        todo!()
    }
    pub fn reader(&self) -> LogReader {
        todo!()
    }
}

impl LogReader {
    pub fn head(&self) -> Head {
        todo!()
    }
    pub fn read(&self, _offset: Offset) -> Result<Record, LogError> {
        todo!()
    }
    pub fn iter_from(&self, _from: Offset) -> impl Iterator<Item = Result<Record, LogError>> + '_ {
        std::iter::empty()
    }
    pub fn offset_for_time(&self, _ts_ms: u64) -> Result<Option<Offset>, LogError> {
        todo!()
    }
}
