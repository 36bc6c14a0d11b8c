//! `Log`: the single writer. Appends a batch with one write and one
//! fdatasync, rolls segments, and poisons itself on the first failed write or
//! sync (never retried: after a failed fsync the page cache may no longer
//! hold what it claims, so only a restart and recovery can say what is on
//! disk).

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::chain;
use crate::frame::{self, FrameSpec, KIND_COMMIT, KIND_SEAL, MAX_RECORD};
use crate::idx_file;
use crate::index::{IndexState, SegmentIndex, Shared};
use crate::reader::LogReader;
use crate::recovery::{walk, Walk};
use crate::segment::{segment_name, Seal, SegmentHeader, SEAL_LEN, SEGMENT_HEADER_LEN, TMP_SUFFIX};
use crate::storage::{LogFile, StdStorage, Storage};
use crate::{ChainHash, Head, LogError, LogOptions, NewRecord, Offset};

/// Largest batch one `append` takes (frames included). With segments of at
/// most [`LogOptions::MAX_SEGMENT_BYTES`] this keeps every byte position of a
/// segment within `u32`.
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    base: Offset,
    name: String,
    file: Arc<dyn LogFile>,
    /// Bytes written and synced: where the next frame goes.
    len: u64,
    /// blake3 of the segment bytes so far, for the seal.
    digest: blake3::Hasher,
    count: u64,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
}

/// The writer of a log directory. One per directory (a `LOCK` file keeps a
/// second process out).
pub struct Log {
    storage: Arc<dyn Storage>,
    opts: LogOptions,
    shared: Arc<Shared>,
    /// Publishes the committed head to readers and tailers.
    head_tx: watch::Sender<Head>,
    active: Active,
    head: Head,
    /// Set by the first failed write or sync; every later append fails.
    poisoned: Option<String>,
    /// Reused encoding buffer.
    buf: Vec<u8>,
    /// Held for the life of the writer.
    _lock: Option<Box<dyn Debug + Send + Sync>>,
}

impl Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("storage", &self.storage)
            .field("head", &self.head)
            .field("active", &self.active.name)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering a torn tail
    /// and refusing damage before it. Takes the directory's `LOCK`.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<Log, LogError> {
        let storage = StdStorage::create_dir(dir)?;
        Log::open_with(Arc::new(storage), opts)
    }

    /// [`Log::open`] on any storage (tests use a fault-injecting one).
    pub fn open_with(storage: Arc<dyn Storage>, opts: LogOptions) -> Result<Log, LogError> {
        let opts = opts.normalized();
        let lock = match storage.lock() {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(LogError::Locked(storage.path("")));
            }
            Err(e) => return Err(e.into()),
        };
        let w = walk(storage.as_ref(), false)?;
        if let Some(e) = w.problem_error(storage.as_ref()) {
            return Err(e);
        }
        let mut dir_dirty = false;
        for tmp in &w.tmp_files {
            storage.remove(tmp)?;
            dir_dirty = true;
        }
        if w.segments.is_empty() {
            let (name, file, digest) = create_segment(storage.as_ref(), 1, chain::genesis())?;
            let head = Head {
                offset: 0,
                hash: chain::genesis(),
                ts_ms: 0,
            };
            let active = Active {
                base: 1,
                name: name.clone(),
                file: file.clone(),
                len: SEGMENT_HEADER_LEN as u64,
                digest,
                count: 0,
                first_ts: None,
                last_ts: None,
            };
            let seg = SegmentIndex {
                base: 1,
                name,
                file,
                positions: Vec::new(),
                end: active.len,
                last_ts: None,
            };
            return Ok(Log::assemble(storage, opts, vec![seg], active, head, lock));
        }
        if let Some(name) = &w.abandoned {
            tracing::warn!(segment = %name, "removing the empty segment of an interrupted rotation");
            storage.remove(name)?;
            dir_dirty = true;
        }
        if dir_dirty {
            storage.sync_dir()?;
        }
        for &i in &w.idx_missing {
            if let Some(seg) = w.segments.get(i) {
                write_idx(storage.as_ref(), &seg.file, &seg.scan);
            }
        }
        Log::from_walk(storage, opts, w, lock)
    }

    fn from_walk(
        storage: Arc<dyn Storage>,
        opts: LogOptions,
        mut w: Walk,
        lock: Option<Box<dyn Debug + Send + Sync>>,
    ) -> Result<Log, LogError> {
        let Some(tail) = w.segments.pop() else {
            return Err(LogError::Io(std::io::Error::other(
                "no segment after the walk",
            )));
        };
        let file = storage.open(&tail.name, true)?;
        let data_end = tail.scan.data_end;
        if let Some(torn) = &w.torn {
            let keep = format!("{}.torn-{}", tail.name, storage.now_ms());
            let cut = w.tail_bytes.get(data_end as usize..).unwrap_or(&[]);
            let aside = storage.create(&keep)?;
            aside.write_all_at(cut, 0)?;
            aside.sync_all()?;
            storage.sync_dir()?;
            file.set_len(data_end)?;
            file.sync_all()?;
            tracing::warn!(
                segment = %tail.name,
                offset = torn.offset,
                cut_at = torn.cut_at,
                bytes = torn.bytes,
                kept_in = %keep,
                reason = %torn.reason,
                "cut a torn tail"
            );
        }
        // What was read may still be only in the page cache (a killed
        // writer, or a failed fsync that left the pages in place): make it
        // durable before serving it or appending after it. Only the tail and
        // the last sealed segment (whose seal is the last step of a roll)
        // can hold unsynced bytes.
        file.sync_data()?;
        if let Some(prev) = w.segments.last() {
            prev.file.sync_all()?;
        }
        storage.sync_dir()?;
        let mut digest = blake3::Hasher::new();
        digest.update(w.tail_bytes.get(..data_end as usize).unwrap_or(&[]));
        let active = Active {
            base: tail.scan.header.base,
            name: tail.name.clone(),
            file: file.clone(),
            len: data_end,
            digest,
            count: tail.scan.count(),
            first_ts: tail.scan.first_ts,
            last_ts: tail.scan.last_ts,
        };
        let mut segments: Vec<SegmentIndex> = w
            .segments
            .into_iter()
            .map(|s| {
                let end = match s.scan.end {
                    crate::scan::ScanEnd::Sealed { seal_pos, .. } => seal_pos,
                    _ => s.scan.data_end,
                };
                SegmentIndex {
                    base: s.scan.header.base,
                    name: s.name,
                    file: s.file,
                    positions: s.scan.positions,
                    end,
                    last_ts: s.scan.last_ts,
                }
            })
            .collect();
        segments.push(SegmentIndex {
            base: active.base,
            name: tail.name,
            file,
            positions: tail.scan.positions,
            end: data_end,
            last_ts: tail.scan.last_ts,
        });
        Ok(Log::assemble(storage, opts, segments, active, w.head, lock))
    }

    fn assemble(
        storage: Arc<dyn Storage>,
        opts: LogOptions,
        segments: Vec<SegmentIndex>,
        active: Active,
        head: Head,
        lock: Option<Box<dyn Debug + Send + Sync>>,
    ) -> Log {
        let shared = Arc::new(Shared::new(storage.clone(), IndexState { segments, head }));
        let (head_tx, _) = watch::channel(head);
        Log {
            storage,
            opts,
            shared,
            head_tx,
            active,
            head,
            poisoned: None,
            buf: Vec::new(),
            _lock: lock,
        }
    }

    /// Appends the records with one write and one fdatasync; returns the
    /// head after each record, in order. On error nothing is acknowledged
    /// and the log refuses further appends (`TooLarge` excepted: it is
    /// checked before anything is written). Each record is its own commit:
    /// a crash during the call can leave a prefix of the records on disk,
    /// never acknowledged; what must be atomic goes in one record.
    ///
    /// Timestamps are clamped: a record's `ts_ms` is raised to the previous
    /// record's if it is lower, so they never decrease along the log (the
    /// stored and returned `ts_ms` is the clamped one).
    pub fn append(&mut self, records: &[NewRecord]) -> Result<Vec<Head>, LogError> {
        if let Some(p) = &self.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut total = 0usize;
        for r in records {
            if r.payload.len() > MAX_RECORD {
                return Err(LogError::TooLarge(r.payload.len()));
            }
            total += frame::frame_len(r.payload.len());
        }
        if total > MAX_BATCH_BYTES {
            return Err(LogError::TooLarge(total));
        }
        if self.active.len >= self.opts.segment_bytes && self.active.count > 0 {
            if let Err(e) = self.roll() {
                return Err(self.poison(e));
            }
        }
        self.buf.clear();
        let mut heads = Vec::with_capacity(records.len());
        let mut positions = Vec::with_capacity(records.len());
        let mut h = self.head;
        for r in records {
            let ts_ms = r.ts_ms.max(h.ts_ms);
            let offset = h.offset + 1;
            positions.push((self.active.len + self.buf.len() as u64) as u32);
            let hash = frame::encode(
                &mut self.buf,
                &FrameSpec {
                    kind: KIND_COMMIT,
                    offset,
                    ts_ms,
                    schema: r.schema,
                    prev: h.hash,
                    payload: &r.payload,
                },
            );
            h = Head {
                offset,
                hash,
                ts_ms,
            };
            heads.push(h);
        }
        if let Err(e) = self.active.file.write_all_at(&self.buf, self.active.len) {
            return Err(self.poison(e.into()));
        }
        if let Err(e) = self.active.file.sync_data() {
            return Err(self.poison(e.into()));
        }
        self.active.digest.update(&self.buf);
        self.active.len += self.buf.len() as u64;
        self.active.count += records.len() as u64;
        if let Some(first) = heads.first() {
            self.active.first_ts.get_or_insert(first.ts_ms);
        }
        self.active.last_ts = Some(h.ts_ms);
        self.head = h;
        {
            let mut state = self.shared.write();
            if let Some(seg) = state.segments.last_mut() {
                seg.positions.extend_from_slice(&positions);
                seg.end = self.active.len;
                seg.last_ts = Some(h.ts_ms);
            }
            state.head = h;
        }
        self.head_tx.send_replace(h);
        if self.buf.capacity() > 4 * MAX_RECORD {
            self.buf = Vec::new();
        }
        Ok(heads)
    }

    fn poison(&mut self, e: LogError) -> LogError {
        tracing::error!(error = %e, "log write failed; the writer refuses further appends");
        self.poisoned = Some(e.to_string());
        e
    }

    /// Closes the active segment and starts the next one. The successor is
    /// created and made durable before the seal is written, so a sealed
    /// segment always has a successor on disk and a missing tail segment
    /// shows up as a sealed segment without one.
    fn roll(&mut self) -> Result<(), LogError> {
        let head = self.head;
        let seal = Seal {
            last_offset: head.offset,
            record_count: self.active.count,
            min_ts_ms: self.active.first_ts.unwrap_or(head.ts_ms),
            max_ts_ms: self.active.last_ts.unwrap_or(head.ts_ms),
            chain_head: head.hash,
            segment_digest: *self.active.digest.finalize().as_bytes(),
        };
        let payload = seal.encode();
        let mut sealbuf = Vec::with_capacity(frame::frame_len(payload.len()));
        frame::encode(
            &mut sealbuf,
            &FrameSpec {
                kind: KIND_SEAL,
                offset: head.offset,
                ts_ms: seal.max_ts_ms,
                schema: 0,
                prev: head.hash,
                payload: &payload,
            },
        );
        let base = head.offset + 1;
        let (name, file, digest) = create_segment(self.storage.as_ref(), base, head.hash)?;
        self.active.file.write_all_at(&sealbuf, self.active.len)?;
        self.active.file.sync_data()?;
        tracing::debug!(sealed = %self.active.name, next = %name, "rolled segment");
        {
            let state = self.shared.read();
            if let Some(seg) = state.segments.last() {
                let bytes = idx_file::encode(
                    seg.base,
                    crc32fast::hash(&sealbuf[4..frame::FRAME_HEADER_LEN + SEAL_LEN]),
                    self.active.len,
                    self.active.len + sealbuf.len() as u64,
                    &seg.positions,
                );
                drop(state);
                if let Err(e) = idx_file::write(self.storage.as_ref(), self.active.base, &bytes) {
                    tracing::warn!(error = %e, segment = %self.active.name, "could not write the segment index; open will rebuild it");
                }
            }
        }
        self.active = Active {
            base,
            name: name.clone(),
            file: file.clone(),
            len: SEGMENT_HEADER_LEN as u64,
            digest,
            count: 0,
            first_ts: None,
            last_ts: None,
        };
        let mut state = self.shared.write();
        state.segments.push(SegmentIndex {
            base,
            name,
            file,
            positions: Vec::new(),
            end: SEGMENT_HEADER_LEN as u64,
            last_ts: None,
        });
        Ok(())
    }

    /// The last durable record.
    pub fn head(&self) -> Head {
        self.head
    }

    /// A reader sharing this writer's index.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: self.shared.clone(),
            head_rx: self.head_tx.subscribe(),
        }
    }

    /// Why the writer refuses appends, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The options in force (after clamping).
    pub fn options(&self) -> &LogOptions {
        &self.opts
    }
}

/// Creates segment `base` as `<name>.tmp` (header written, `sync_all`),
/// renames it into place and fsyncs the directory: the segment either
/// exists with a whole header or not at all.
fn create_segment(
    storage: &dyn Storage,
    base: Offset,
    prev_chain: ChainHash,
) -> Result<(String, Arc<dyn LogFile>, blake3::Hasher), LogError> {
    let name = segment_name(base);
    let tmp = format!("{name}{TMP_SUFFIX}");
    let header = SegmentHeader {
        base,
        created_ms: storage.now_ms(),
        prev_chain,
    }
    .encode();
    let file = storage.create(&tmp)?;
    file.write_all_at(&header, 0)?;
    file.sync_all()?;
    storage.rename(&tmp, &name)?;
    storage.sync_dir()?;
    let mut digest = blake3::Hasher::new();
    digest.update(&header);
    Ok((name, file, digest))
}

/// Writes the `.idx` of a sealed segment found without one at open. A
/// failure only costs a slower next open.
fn write_idx(storage: &dyn Storage, file: &Arc<dyn LogFile>, scan: &crate::scan::ScanResult) {
    let crate::scan::ScanEnd::Sealed {
        seal_pos,
        trailing: 0,
        ..
    } = scan.end
    else {
        return;
    };
    let mut crc = [0u8; 4];
    let result = file.read_exact_at(&mut crc, seal_pos).and_then(|()| {
        let len = seal_pos + frame::frame_len(SEAL_LEN) as u64;
        let bytes = idx_file::encode(
            scan.header.base,
            u32::from_le_bytes(crc),
            seal_pos,
            len,
            &scan.positions,
        );
        idx_file::write(storage, scan.header.base, &bytes)
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, base = scan.header.base, "could not rebuild a segment index");
    }
}
