//! Damage before the tail is refused, naming the segment and the offset;
//! `verify` finds what open does not look at (sealed segments' chain).

mod common;

use common::*;
use eventlog::frame::FRAME_HEADER_LEN;
use eventlog::mem_storage::MemStorage;
use eventlog::scan::{scan_segment, ScanOptions};
use eventlog::{verify_storage, LogError};

fn positions(bytes: &[u8]) -> (u64, Vec<usize>, usize) {
    let scan = scan_segment(bytes, &ScanOptions::default()).expect("scan");
    (
        scan.header.base,
        scan.positions.iter().map(|&p| p as usize).collect(),
        scan.data_end as usize,
    )
}

fn expect_corrupt(s: &MemStorage, seg: &str, offset: u64, what: &str) {
    match open(s) {
        Err(LogError::Corrupt {
            segment,
            offset: o,
            reason,
        }) => {
            assert_eq!(o, offset, "{what}: {reason}");
            assert!(segment.ends_with(seg), "{what}: {segment:?}");
        }
        Ok(log) => panic!("{what}: opened, head {:?}", log.head()),
        Err(e) => panic!("{what}: {e}"),
    }
    let report = verify_storage(s).unwrap();
    let p = report
        .problem
        .unwrap_or_else(|| panic!("{what}: verify found nothing"));
    assert_eq!(p.offset, offset, "{what}: {}", p.reason);
    assert_eq!(report.head.offset, offset - 1, "{what}");
}

/// Flip one bit in every byte of a middle record, in the active segment and
/// in a sealed one: open and verify fail naming that record's offset. A
/// sealed segment with a valid `.idx` is not read at open: there open
/// succeeds, and reading the record fails naming it (and verify finds it).
#[test]
fn bit_flip_in_a_middle_record() {
    let storage = MemStorage::new();
    build(&storage, 40);
    let segs = segments(&storage);
    for seg in [&segs[0], segs.last().unwrap()] {
        let bytes = storage.file_bytes(seg).unwrap();
        let (base, pos, _) = positions(&bytes);
        let k = pos.len() / 2;
        assert!(k + 1 < pos.len());
        let (start, end) = (pos[k], pos[k + 1]);
        for i in start..end {
            let s = copy(&storage);
            let mut b = bytes.clone();
            b[i] ^= 1 << (i % 8);
            s.set_file_bytes(seg, b);
            let what = format!("{seg} byte {i}");
            let offset = base + k as u64;
            if seg != segs.last().unwrap() {
                let log = open(&s).unwrap_or_else(|e| panic!("{what}: {e}"));
                match log.reader().read(offset) {
                    Err(LogError::Corrupt { offset: o, .. }) => assert_eq!(o, offset, "{what}"),
                    other => panic!("{what}: read gave {other:?}"),
                }
                drop(log);
                s.remove(&format!("{base:020}.idx")).unwrap();
            }
            expect_corrupt(&s, seg, offset, &what);
        }
    }
}

/// The documented limit: damage to the last record looks like a torn tail.
#[test]
fn bit_flip_in_the_last_record_is_cut_as_torn() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 20);
    let seg = segments(&storage).last().unwrap().clone();
    let mut b = storage.file_bytes(&seg).unwrap();
    let (_, pos, _) = positions(&b);
    b[pos[pos.len() - 1] + FRAME_HEADER_LEN] ^= 0x10;
    storage.set_file_bytes(&seg, b);
    let log = open(&storage).unwrap();
    assert_holds(&log, &recs[..19], &heads[..19]);
    assert_eq!(torn_files(&storage).len(), 1);
}

/// Rewrites record `k` of `bytes` with a new payload byte and a valid crc.
fn edit_payload(bytes: &mut [u8], at: usize) {
    bytes[at + FRAME_HEADER_LEN] ^= 0xFF;
    let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&bytes[at + 4..at + FRAME_HEADER_LEN + len]);
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn edited_payload_with_valid_crc_breaks_the_chain() {
    let storage = MemStorage::new();
    build(&storage, 40);
    let segs = segments(&storage);
    // Active segment: open finds it (full scan of the tail).
    let active = segs.last().unwrap();
    let mut b = storage.file_bytes(active).unwrap();
    let (base, pos, _) = positions(&b);
    assert!(pos.len() >= 3);
    edit_payload(&mut b, pos[1]);
    let s = copy(&storage);
    s.set_file_bytes(active, b);
    expect_corrupt(&s, active, base + 2, "edited active record");

    // Sealed segment: open trusts its crc; verify recomputes the chain.
    let mut b = storage.file_bytes(&segs[0]).unwrap();
    let (_, pos, _) = positions(&b);
    edit_payload(&mut b, pos[2]);
    let s = copy(&storage);
    s.set_file_bytes(&segs[0], b);
    let report = verify_storage(&s).unwrap();
    let p = report.problem.expect("verify finds the edit");
    assert_eq!(p.offset, 4, "{}", p.reason);
    assert!(p.segment.ends_with(&segs[0]));
}

#[test]
fn swapped_records_are_refused() {
    // Equal-sized records, so that swapping keeps the framing intact.
    let storage = MemStorage::new();
    let mut log = open(&storage).unwrap();
    for i in 0..6 {
        log.append(&[rec(i, 40)]).unwrap();
    }
    drop(log);
    let seg = segments(&storage)[0].clone();
    let mut b = storage.file_bytes(&seg).unwrap();
    let (_, pos, _) = positions(&b);
    let (a, c, n) = (pos[2], pos[3], pos[3] - pos[2]);
    let first = b[a..a + n].to_vec();
    b.copy_within(c..c + n, a);
    b[c..c + n].copy_from_slice(&first);
    storage.set_file_bytes(&seg, b);
    expect_corrupt(&storage, &seg, 3, "swapped 3 and 4");
}

#[test]
fn missing_segments_are_refused() {
    let storage = MemStorage::new();
    build(&storage, 60);
    let segs = segments(&storage);
    assert!(segs.len() >= 3);
    // A middle segment removed: a gap in offsets.
    let s = copy(&storage);
    s.remove(&segs[1]).unwrap();
    let gap_at = eventlog::segment::parse_segment_name(&segs[1]).unwrap();
    expect_corrupt(&s, &segs[2], gap_at, "middle segment removed");
    // The tail segment removed: the last one left is sealed.
    let s = copy(&storage);
    s.remove(segs.last().unwrap()).unwrap();
    let tail_base = eventlog::segment::parse_segment_name(segs.last().unwrap()).unwrap();
    expect_corrupt(&s, &segs[segs.len() - 2], tail_base, "tail segment removed");
    // A sealed segment truncated inside its records.
    let s = copy(&storage);
    let b = storage.file_bytes(&segs[0]).unwrap();
    let (_, pos, _) = positions(&b);
    s.set_file_bytes(&segs[0], b[..pos[3] + 10].to_vec());
    expect_corrupt(&s, &segs[0], 4, "sealed segment truncated");
}

#[test]
fn bad_segment_header_is_refused() {
    let storage = MemStorage::new();
    build(&storage, 60);
    let segs = segments(&storage);
    for seg in [&segs[1], segs.last().unwrap()] {
        let s = copy(&storage);
        let mut b = storage.file_bytes(seg).unwrap();
        b[20] ^= 1;
        s.set_file_bytes(seg, b);
        let base = eventlog::segment::parse_segment_name(seg).unwrap();
        expect_corrupt(&s, seg, base, "header bit flip");
    }
}

use eventlog::Storage;
