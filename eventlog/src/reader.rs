//! `LogReader`: reads by offset, iterates, finds a time, tails the log.
//! Cheap to clone, `Send + Sync`; reads use positioned reads on shared file
//! handles, so any number of readers run beside the writer.

use std::sync::Arc;

use tokio::sync::watch;

use crate::frame::{self, FRAME_HEADER_LEN, KIND_COMMIT};
use crate::index::{Location, Shared};
use crate::{Head, LogError, Offset, Record};

/// Read-ahead of [`RecordIter`]: one positioned read serves many records.
const READ_AHEAD: u64 = 1 << 20;

/// A handle for reading the log; see the crate docs.
#[derive(Clone)]
pub struct LogReader {
    pub(crate) shared: Arc<Shared>,
    /// The committed head, published by the writer after each fdatasync.
    pub(crate) head_rx: watch::Receiver<Head>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("head", &*self.head_rx.borrow())
            .finish()
    }
}

impl LogReader {
    /// The last durable record.
    pub fn head(&self) -> Head {
        *self.head_rx.borrow()
    }

    /// A receiver of the committed head, for callers that select on it.
    pub fn subscribe(&self) -> watch::Receiver<Head> {
        self.head_rx.clone()
    }

    /// Waits until the record at `offset` is durable and returns the head
    /// then (`offset` or later). `Err(Closed)` if the writer goes away first.
    pub async fn wait_for(&self, offset: Offset) -> Result<Head, LogError> {
        let mut rx = self.head_rx.clone();
        let head = rx
            .wait_for(|h| h.offset >= offset)
            .await
            .map_err(|_| LogError::Closed)?;
        Ok(*head)
    }

    fn locate(&self, offset: Offset) -> Result<Location, LogError> {
        self.shared
            .read()
            .locate(offset)
            .ok_or(LogError::NotFound(offset))
    }

    /// Reads the record at `offset`: one index lookup and one positioned read.
    pub fn read(&self, offset: Offset) -> Result<Record, LogError> {
        let loc = self.locate(offset)?;
        let mut buf = vec![0u8; loc.len as usize];
        loc.file.read_exact_at(&mut buf, loc.pos)?;
        self.decode(&loc, offset, &buf)
    }

    fn decode(&self, loc: &Location, offset: Offset, bytes: &[u8]) -> Result<Record, LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            segment: self.shared.storage.path(&loc.segment),
            offset,
            reason,
        };
        let f = frame::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        if f.header.kind != KIND_COMMIT || f.header.offset != offset {
            return Err(corrupt(format!(
                "index points at a frame with offset {}",
                f.header.offset
            )));
        }
        Ok(Record {
            offset,
            ts_ms: f.header.ts_ms,
            schema: f.header.schema,
            payload: f.payload.to_vec(),
            hash: f.chain_after(),
        })
    }

    /// Iterates from `from` (0 is read as 1) up to the head at the time of
    /// the call. The iterator owns what it needs (`Send + 'static`) and reads
    /// ahead by up to 1 MiB; it stops after the first error.
    pub fn iter_from(&self, from: Offset) -> RecordIter {
        RecordIter {
            reader: self.clone(),
            next: from.max(1),
            end: self.head().offset,
            buf: Vec::new(),
            buf_base: 0,
            buf_pos: 0,
            done: false,
        }
    }

    /// The first record whose `ts_ms` is at or after `ts_ms`, or `None` if
    /// every record is older. Timestamps never decrease along the log, so
    /// this is a binary search: over segments by their last timestamp, then
    /// over the segment's records (one 64-byte read per step).
    pub fn offset_for_time(&self, ts_ms: u64) -> Result<Option<Offset>, LogError> {
        let state = self.shared.read();
        let Some(seg) = state
            .segments
            .iter()
            .find(|s| s.last_ts.is_some_and(|t| t >= ts_ms))
        else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (0usize, seg.positions.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut h = [0u8; FRAME_HEADER_LEN];
            seg.file
                .read_exact_at(&mut h, u64::from(seg.positions[mid]))?;
            let ts = frame::le_u64(&h, 16);
            if ts < ts_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == seg.positions.len() {
            return Ok(None);
        }
        Ok(Some(seg.base + lo as u64))
    }
}

/// Owned iterator over records; see [`LogReader::iter_from`].
#[derive(Debug)]
pub struct RecordIter {
    reader: LogReader,
    next: Offset,
    end: Offset,
    /// Bytes read ahead from segment `buf_base`, starting at `buf_pos`.
    buf: Vec<u8>,
    buf_base: Offset,
    buf_pos: u64,
    done: bool,
}

impl RecordIter {
    fn read_next(&mut self) -> Result<Record, LogError> {
        let offset = self.next;
        let loc = self.reader.locate(offset)?;
        let covered = self.buf_base == loc.base
            && loc.pos >= self.buf_pos
            && loc.pos + loc.len <= self.buf_pos + self.buf.len() as u64;
        if !covered {
            let want = loc.len.max(READ_AHEAD.min(loc.segment_end - loc.pos));
            self.buf.resize(want as usize, 0);
            loc.file.read_exact_at(&mut self.buf, loc.pos)?;
            self.buf_base = loc.base;
            self.buf_pos = loc.pos;
        }
        let start = (loc.pos - self.buf_pos) as usize;
        let bytes = &self.buf[start..start + loc.len as usize];
        self.reader.decode(&loc, offset, bytes)
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next > self.end {
            return None;
        }
        let r = self.read_next();
        match r {
            Ok(_) => self.next += 1,
            Err(_) => self.done = true,
        }
        Some(r)
    }
}
