//! The operator's repair: cut the log after a chosen record, moving every
//! later byte aside. Open never does this by itself (damage before the tail
//! is refused); this is the deliberate step an operator takes after reading
//! the refusal, as raft-engine's and NATS's manual recovery modes are.

use std::path::Path;

use crate::idx_file::idx_name;
use crate::recovery::walk;
use crate::scan::{scan_segment, ScanOptions};
use crate::segment::parse_segment_name;
use crate::storage::{read_all_into, StdStorage, Storage};
use crate::{Head, LogError, Offset};

/// What [`truncate_after`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The log's head after the cut.
    pub head: Head,
    /// Files written or renamed aside (`*.broken-<unix_ms>`).
    pub moved_aside: Vec<String>,
    /// Bytes that left the log.
    pub bytes_moved: u64,
}

/// Cuts the log in `dir` right after record `keep` (0 empties it). The rest
/// of that record's segment goes to `<segment>.broken-<unix_ms>`, and every
/// later segment is renamed to `<name>.broken-<unix_ms>`; nothing is
/// deleted. Refused if the records up to `keep` do not all verify (crc and
/// chain), or if a writer holds the directory's lock.
pub fn truncate_after(dir: &Path, keep: Offset) -> Result<RepairReport, LogError> {
    let storage = StdStorage::existing(dir)?;
    truncate_after_storage(&storage, keep)
}

/// [`truncate_after`] on any storage.
pub fn truncate_after_storage(
    storage: &dyn Storage,
    keep: Offset,
) -> Result<RepairReport, LogError> {
    let _lock = match storage.lock() {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(LogError::Locked(storage.path("")))
        }
        Err(e) => return Err(e.into()),
    };
    let w = walk(storage, true)?;
    if w.head.offset < keep {
        return Err(match &w.problem {
            Some(p) => LogError::Corrupt {
                segment: storage.path(&p.segment),
                offset: p.offset,
                reason: format!("cannot keep records up to {keep}: {}", p.reason),
            },
            None => LogError::NotFound(keep),
        });
    }
    let mut segs: Vec<(Offset, String)> = storage
        .list()?
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|b| (b, n)))
        .collect();
    segs.sort();
    // The segment that holds record `keep` (the first one for keep = 0).
    let t = segs
        .iter()
        .rposition(|(base, _)| *base <= keep.max(1))
        .unwrap_or(0);
    let Some((base, name)) = segs.get(t).cloned() else {
        return Err(LogError::NotFound(keep));
    };
    let file = storage.open(&name, true)?;
    let mut bytes = Vec::new();
    read_all_into(file.as_ref(), &mut bytes)?;
    let scan = scan_segment(
        &bytes,
        &ScanOptions {
            expect_base: Some(base),
            check_chain: true,
            ..ScanOptions::default()
        },
    )
    .map_err(|reason| LogError::Corrupt {
        segment: storage.path(&name),
        offset: base,
        reason,
    })?;
    let kept_here = (keep + 1).saturating_sub(base) as usize;
    let cut = match scan.positions.get(kept_here) {
        Some(&p) => u64::from(p),
        None if kept_here == scan.positions.len() => scan.data_end,
        None => return Err(LogError::NotFound(keep)),
    };
    let ms = storage.now_ms();
    let mut report = RepairReport {
        head: Head::default(),
        moved_aside: Vec::new(),
        bytes_moved: 0,
    };
    if cut < bytes.len() as u64 {
        let aside = format!("{name}.broken-{ms}");
        let f = storage.create(&aside)?;
        f.write_all_at(&bytes[cut as usize..], 0)?;
        f.sync_all()?;
        report.bytes_moved += bytes.len() as u64 - cut;
        report.moved_aside.push(aside);
    }
    for (_, later) in &segs[t + 1..] {
        let aside = format!("{later}.broken-{ms}");
        report.bytes_moved += storage.open(later, false)?.len()?;
        storage.rename(later, &aside)?;
        report.moved_aside.push(aside);
    }
    for (b, _) in &segs[t..] {
        match storage.remove(&idx_name(*b)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    storage.sync_dir()?;
    file.set_len(cut)?;
    file.sync_all()?;
    tracing::warn!(keep, bytes = report.bytes_moved, moved = ?report.moved_aside, "log cut by repair");
    let after = walk(storage, true)?;
    if let Some(e) = after.problem_error(storage) {
        return Err(e);
    }
    report.head = after.head;
    Ok(report)
}
