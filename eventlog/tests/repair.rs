//! The operator's cut: after open refuses a damaged log, `truncate_after`
//! keeps the records before the damage, moves the rest aside, and the log
//! opens, verifies and takes appends again.

mod common;

use common::*;
use eventlog::mem_storage::MemStorage;
use eventlog::scan::{scan_segment, ScanOptions};
use eventlog::{truncate_after_storage, verify_storage, LogError, Storage};

fn flip_record(s: &MemStorage, seg: &str, k: usize) -> u64 {
    let mut b = s.file_bytes(seg).unwrap();
    let scan = scan_segment(&b, &ScanOptions::default()).unwrap();
    b[scan.positions[k] as usize + 70] ^= 0x20;
    s.set_file_bytes(seg, b);
    scan.header.base + k as u64
}

fn broken(s: &MemStorage) -> Vec<String> {
    s.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.contains(".broken-"))
        .collect()
}

#[test]
fn cut_before_damage_in_the_active_segment() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 40);
    let seg = segments(&storage).last().unwrap().clone();
    let bad = flip_record(&storage, &seg, 1);
    assert!(matches!(open(&storage), Err(LogError::Corrupt { offset, .. }) if offset == bad));
    // Keeping the damaged record is refused.
    assert!(
        matches!(truncate_after_storage(&storage, bad), Err(LogError::Corrupt { offset, .. }) if offset == bad)
    );
    let report = truncate_after_storage(&storage, bad - 1).unwrap();
    assert_eq!(report.head, heads[bad as usize - 2]);
    assert_eq!(broken(&storage).len(), 1);
    let keep = bad as usize - 1;
    let mut log = open(&storage).unwrap();
    assert_holds(&log, &recs[..keep], &heads[..keep]);
    assert_eq!(log.append(&[rec(77, 5)]).unwrap()[0].offset, bad);
    drop(log);
    assert!(verify_storage(&storage).unwrap().is_ok());
}

#[test]
fn cut_inside_a_sealed_segment_moves_later_segments_aside() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 60);
    let segs = segments(&storage);
    assert!(segs.len() >= 3);
    let bad = flip_record(&storage, &segs[1], 2);
    assert!(verify_storage(&storage).unwrap().problem.is_some());
    let report = truncate_after_storage(&storage, bad - 1).unwrap();
    assert_eq!(report.head.offset, bad - 1);
    assert_eq!(
        broken(&storage).len(),
        segs.len() - 1,
        "{:?}",
        broken(&storage)
    );
    let keep = bad as usize - 1;
    let mut log = open(&storage).unwrap();
    assert_holds(&log, &recs[..keep], &heads[..keep]);
    let (more, _) = append_n(&mut log, 100, 30);
    assert_eq!(log.head().offset, (keep + more.len()) as u64);
    drop(log);
    let v = verify_storage(&storage).unwrap();
    assert!(v.is_ok(), "{v:?}");
}

#[test]
fn cut_at_a_segment_boundary_and_to_empty() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 60);
    let segs = segments(&storage);
    let second = eventlog::segment::parse_segment_name(&segs[1]).unwrap();
    // Keep exactly the first segment: its seal goes aside with the rest.
    let s = copy(&storage);
    truncate_after_storage(&s, second - 1).unwrap();
    let keep = second as usize - 1;
    let log = open(&s).unwrap();
    assert_holds(&log, &recs[..keep], &heads[..keep]);
    drop(log);
    // Keep nothing.
    let s = copy(&storage);
    let report = truncate_after_storage(&s, 0).unwrap();
    assert_eq!(report.head.offset, 0);
    let mut log = open(&s).unwrap();
    assert_eq!(log.head().offset, 0);
    assert_eq!(log.append(&[rec(1, 1)]).unwrap()[0].offset, 1);
}
