//! Crash tests: cut the active segment at every byte of its last records
//! (plain, followed by zeros, followed by garbage), crash during a rotation,
//! and check that exactly the whole records remain, appends continue and the
//! chain verifies.

mod common;

use common::*;
use eventlog::mem_storage::{CrashMode, MemStorage};
use eventlog::scan::{scan_segment, ScanOptions};
use eventlog::{verify_storage, LogError};

/// Positions of the records in a segment and the end of the last one.
fn frame_ends(bytes: &[u8]) -> (u64, Vec<u64>, Vec<u64>) {
    let scan = scan_segment(bytes, &ScanOptions::default()).expect("scan");
    let starts: Vec<u64> = scan.positions.iter().map(|&p| u64::from(p)).collect();
    let mut ends: Vec<u64> = starts.iter().skip(1).copied().collect();
    ends.push(scan.data_end);
    (scan.header.base, starts, ends)
}

#[test]
fn cut_active_segment_at_every_byte() {
    let storage = MemStorage::new();
    let (recs, heads) = build(&storage, 40);
    let segs = segments(&storage);
    assert!(segs.len() >= 2, "want a sealed segment too: {segs:?}");
    let active = segs.last().unwrap().clone();
    let bytes = storage.file_bytes(&active).unwrap();
    let (base, starts, ends) = frame_ends(&bytes);
    assert!(
        starts.len() >= 4,
        "want several records in the active segment"
    );
    let from = starts[0];
    let mut cases = 0;
    for cut in from..=bytes.len() as u64 {
        for variant in 0..3 {
            let s = copy(&storage);
            let mut b = bytes[..cut as usize].to_vec();
            match variant {
                1 => b.extend(std::iter::repeat_n(0u8, 13)),
                2 => b.extend((0..61u64).map(|k| (k.wrapping_mul(cut) ^ 0xA5) as u8)),
                _ => {}
            }
            let grown = b.len() as u64;
            // A record is whole if its bytes are all there (zeros appended
            // after a cut inside its zero padding restore it).
            let whole = ends
                .iter()
                .take_while(|&&e| b.len() as u64 >= e && b[..e as usize] == bytes[..e as usize])
                .count() as u64;
            s.set_file_bytes(&active, b);
            let expect = (base - 1 + whole) as usize;
            let mut log = open(&s).unwrap_or_else(|e| panic!("cut {cut} variant {variant}: {e}"));
            assert_holds(&log, &recs[..expect], &heads[..expect]);
            let end = if whole == 0 {
                starts[0]
            } else {
                ends[whole as usize - 1]
            };
            assert_eq!(
                s.file_bytes(&active).unwrap().len() as u64,
                end,
                "cut {cut} variant {variant}"
            );
            assert_eq!(
                torn_files(&s).len(),
                usize::from(grown > end),
                "cut {cut} variant {variant}"
            );
            let h = log.append(&[rec(1000, 10)]).unwrap();
            assert_eq!(h[0].offset, expect as u64 + 1);
            drop(log);
            let report = verify_storage(&s).unwrap();
            assert!(report.is_ok(), "cut {cut} variant {variant}: {report:?}");
            assert_eq!(report.records, expect as u64 + 1);
            cases += 1;
        }
    }
    assert!(cases > 1000);
}

/// The seal write fails after the successor is created: a sealed (or half
/// sealed) segment followed by a header-only one.
#[test]
fn crash_during_rotation() {
    let storage = MemStorage::new();
    let mut log = open(&storage).unwrap();
    let (mut recs, mut heads) = append_n(&mut log, 0, 12);
    // Fill the active segment past the roll size.
    let mut i = 12;
    while storage
        .file_bytes(segments(&storage).last().unwrap())
        .unwrap()
        .len()
        < SEG as usize
    {
        let (r, h) = append_n(&mut log, i, 1);
        recs.extend(r);
        heads.extend(h);
        i += 1;
    }
    let before = segments(&storage);
    let old = before.last().unwrap().clone();
    let old_len = storage.file_bytes(&old).unwrap().len();
    // Writes of the roll: the successor's header, then the seal; fail the
    // write of the records after the seal.
    storage.fail_write_after(2, false);
    assert!(log.append(&[rec(500, 10)]).is_err());
    assert!(matches!(
        log.append(&[rec(501, 10)]),
        Err(LogError::Poisoned(_))
    ));
    drop(log);
    let after = segments(&storage);
    assert_eq!(after.len(), before.len() + 1);
    let sealed = storage.file_bytes(&old).unwrap();
    assert!(sealed.len() > old_len, "the seal was written");
    // Cut the old segment at every byte of its seal (and not at all).
    for cut in old_len..=sealed.len() {
        let s = copy(&storage);
        s.set_file_bytes(&old, sealed[..cut].to_vec());
        let mut log = open(&s).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_holds(&log, &recs, &heads);
        let fully_sealed = cut == sealed.len();
        assert_eq!(
            segments(&s).len(),
            if fully_sealed {
                after.len()
            } else {
                before.len()
            },
            "cut {cut}"
        );
        // Appends go on, and roll again when the segment is unsealed.
        let h = log.append(&[rec(600, 10)]).unwrap();
        assert_eq!(h[0].offset, heads.len() as u64 + 1);
        assert_eq!(segments(&s).len(), after.len());
        drop(log);
        assert!(verify_storage(&s).unwrap().is_ok(), "cut {cut}");
    }
}

#[test]
fn random_power_loss_keeps_acknowledged_records() {
    for seed in 0..60u64 {
        let storage = MemStorage::new();
        let mut log = open(&storage).unwrap();
        let (recs, heads) = append_n(&mut log, 0, 10 + seed % 25);
        // An unacknowledged write in flight: the sync never happens.
        storage.fail_sync_after(0);
        assert!(log.append(&[rec(900, 100), rec(901, 50)]).is_err());
        drop(log);
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::KeepAll,
            CrashMode::Random(seed),
        ] {
            let s = storage.crash(mode);
            let log = open(&s).unwrap_or_else(|e| panic!("seed {seed} {mode:?}: {e}"));
            let got = log.head().offset as usize;
            assert!(
                got >= heads.len() && got <= heads.len() + 2,
                "seed {seed} {mode:?}: {got}"
            );
            assert_prefix(&log, &recs, &heads);
            drop(log);
            assert!(verify_storage(&s).unwrap().is_ok());
        }
    }
}
