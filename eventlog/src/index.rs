//! The in-memory offset index shared by the writer and every reader:
//! offset → (segment, byte position), rebuilt from the segments at open.
//!
//! Guarded by a std `RwLock`: the writer holds it only to push the positions
//! of a batch after its fdatasync; readers hold it only to find a position,
//! never across I/O or `.await`.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::storage::{LogFile, Storage};
use crate::{Head, Offset};

/// One segment as readers see it.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    pub base: Offset,
    pub name: String,
    pub file: Arc<dyn LogFile>,
    /// Byte position of record `base + i`. Only durable records are here.
    pub positions: Vec<u32>,
    /// End of the last durable record (before the seal, if any).
    pub end: u64,
    pub last_ts: Option<u64>,
}

/// Where a record lies.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub file: Arc<dyn LogFile>,
    pub segment: String,
    pub base: Offset,
    pub pos: u64,
    pub len: u64,
    /// End of the durable records of that segment: read-ahead stops there.
    pub segment_end: u64,
}

#[derive(Debug)]
pub(crate) struct IndexState {
    /// Segments in offset order; the last one is the active segment.
    pub segments: Vec<SegmentIndex>,
    /// The last durable record.
    pub head: Head,
}

impl IndexState {
    /// The segment holding `offset`, by binary search over base offsets.
    pub fn segment_of(&self, offset: Offset) -> Option<&SegmentIndex> {
        if offset == 0 || offset > self.head.offset {
            return None;
        }
        let i = self.segments.partition_point(|s| s.base <= offset);
        let seg = self.segments.get(i.checked_sub(1)?)?;
        if offset > seg.base + seg.positions.len() as u64 - 1 || seg.positions.is_empty() {
            return None;
        }
        Some(seg)
    }

    pub fn locate(&self, offset: Offset) -> Option<Location> {
        let seg = self.segment_of(offset)?;
        let i = (offset - seg.base) as usize;
        let pos = u64::from(*seg.positions.get(i)?);
        let next = seg
            .positions
            .get(i + 1)
            .map(|p| u64::from(*p))
            .unwrap_or(seg.end);
        Some(Location {
            file: seg.file.clone(),
            segment: seg.name.clone(),
            base: seg.base,
            pos,
            len: next - pos,
            segment_end: seg.end,
        })
    }
}

/// State shared by `Log` and every `LogReader`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    state: RwLock<IndexState>,
}

impl Shared {
    pub fn new(storage: Arc<dyn Storage>, state: IndexState) -> Shared {
        Shared {
            storage,
            state: RwLock::new(state),
        }
    }

    /// A poisoned lock only means a thread panicked while holding it; the
    /// index is updated by pushes that leave it consistent, so go on.
    pub fn read(&self) -> RwLockReadGuard<'_, IndexState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, IndexState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}
