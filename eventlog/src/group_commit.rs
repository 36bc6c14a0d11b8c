//! `GroupCommitter`: the async front of a [`Log`]. Appenders on any task send
//! their records to one writer thread, which takes everything queued (up to
//! 1024 requests or 4 MiB), writes it with one write and one fdatasync, and
//! answers each appender with its heads. No timer: requests that arrive
//! during a sync make the next batch, so one appender pays one sync and many
//! share one.
//!
//! The first failed write or sync poisons the writer: every appender of that
//! batch gets the error, and every later one gets `Poisoned`. Nothing is
//! retried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::frame::{frame_len, MAX_RECORD};
use crate::{Head, Log, LogError, LogReader, NewRecord, MAX_BATCH_BYTES};

/// Most requests in one group.
const MAX_GROUP_REQUESTS: usize = 1024;
/// A group stops growing past this many frame bytes.
const MAX_GROUP_BYTES: usize = 4 << 20;
/// Times the writer yields to let a burst of appenders join a group.
const MAX_YIELD_ROUNDS: usize = 8;
/// Queue depth before appenders wait.
const QUEUE: usize = 4096;

struct Request {
    records: Vec<NewRecord>,
    bytes: usize,
    reply: oneshot::Sender<Result<Vec<Head>, LogError>>,
}

/// Counters of the writer thread, for metrics and the benchmark.
#[derive(Debug, Default)]
struct Counters {
    /// Groups written (each one write + one fdatasync).
    groups: AtomicU64,
    /// Records written.
    records: AtomicU64,
}

/// What the writer thread has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Groups written, each with one write and one fdatasync.
    pub groups: u64,
    /// Records made durable.
    pub records: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Request>,
    reader: LogReader,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Log>>,
}

impl GroupCommitter {
    /// Moves `log` to a new writer thread named `cairn-log-writer`.
    pub fn start(log: Log) -> Result<GroupCommitter, LogError> {
        let reader = log.reader();
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-log-writer".into())
            .spawn(move || run(log, rx, &c))?;
        Ok(GroupCommitter {
            tx,
            reader,
            counters,
            thread: Some(thread),
        })
    }

    /// Appends one record; returns its head once it is durable.
    pub async fn append(&self, record: NewRecord) -> Result<Head, LogError> {
        let heads = self.append_batch(vec![record]).await?;
        heads.into_iter().next().ok_or(LogError::Closed)
    }

    /// Appends records at consecutive offsets with one write; returns the
    /// head after each once all are durable. Each record is its own commit:
    /// a crash during the write can leave a prefix of them on disk
    /// (unacknowledged). What must be atomic goes in one record.
    pub async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Head>, LogError> {
        let mut bytes = 0usize;
        for r in &records {
            if r.payload.len() > MAX_RECORD {
                return Err(LogError::TooLarge(r.payload.len()));
            }
            bytes += frame_len(r.payload.len());
        }
        if bytes > MAX_BATCH_BYTES / 2 {
            return Err(LogError::TooLarge(bytes));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                records,
                bytes,
                reply,
            })
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// A reader of the same log.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// Groups and records written so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            groups: self.counters.groups.load(Ordering::Relaxed),
            records: self.counters.records.load(Ordering::Relaxed),
        }
    }

    /// The committed head.
    pub fn head(&self) -> Head {
        self.reader.head()
    }

    /// Stops the writer after the queued requests (dropping the committer
    /// does the same without waiting) and gives the `Log` back.
    /// Blocks on the thread: call it outside the async runtime (or in
    /// `spawn_blocking`).
    pub fn shutdown(mut self) -> Option<Log> {
        let thread = self.thread.take()?;
        drop(self);
        thread.join().ok()
    }
}

fn run(mut log: Log, mut rx: mpsc::Receiver<Request>, counters: &Counters) -> Log {
    let mut batch: Vec<Request> = Vec::new();
    let mut records: Vec<NewRecord> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.bytes;
        batch.push(first);
        // Take what is queued. While requests keep arriving (a burst of
        // appenders just answered by the previous group, re-submitting),
        // yield the CPU and look again, a few rounds at most: the burst joins
        // this group instead of making a small one and waiting a whole sync
        // for the next. A lone appender finds the queue empty at once and
        // never waits. No timer.
        let mut rounds = 0;
        loop {
            let before = batch.len();
            while batch.len() < MAX_GROUP_REQUESTS && bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            let full = batch.len() >= MAX_GROUP_REQUESTS || bytes >= MAX_GROUP_BYTES;
            if full || batch.len() == before || rounds == MAX_YIELD_ROUNDS {
                break;
            }
            rounds += 1;
            std::thread::yield_now();
        }
        // An appender that went away before its write is simply not written.
        batch.retain(|r| !r.reply.is_closed());
        let mut counts = Vec::with_capacity(batch.len());
        for r in batch.iter_mut() {
            counts.push(r.records.len());
            records.append(&mut r.records);
        }
        let result = log.append(&records);
        records.clear();
        match result {
            Ok(heads) => {
                counters.groups.fetch_add(1, Ordering::Relaxed);
                counters
                    .records
                    .fetch_add(heads.len() as u64, Ordering::Relaxed);
                let mut heads = heads.into_iter();
                for (r, n) in batch.drain(..).zip(counts) {
                    let _ = r.reply.send(Ok(heads.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for r in batch.drain(..) {
                    let _ = r.reply.send(Err(e.duplicate()));
                }
            }
        }
    }
    log
}
