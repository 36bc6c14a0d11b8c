//! Golden files of format v1 (`tests/data/v1/`): the writer must produce
//! them byte for byte, and the reader must decode them to the records and
//! chain heads pinned here. Catches any accidental format change.
//!
//! Regenerate (only for a deliberate format change, with a new version):
//! `CAIRN_REGENERATE_GOLDEN=1 cargo test -p eventlog --test golden`.

use std::path::PathBuf;
use std::sync::Arc;

use eventlog::mem_storage::MemStorage;
use eventlog::{verify, Log, LogOptions, NewRecord, Storage};

const CLOCK: u64 = 1_700_000_000_000;
const FILES: [&str; 2] = ["00000000000000000001.seg", "00000000000000000006.seg"];
/// The offset index of the sealed segment.
const IDX: &str = "00000000000000000001.idx";
/// h[7], the chain head after the last golden record.
const HEAD_HEX: &str = "306bfa49ec5c33a20d4e320bb2e06b0f9b729a4f2a28bff552c61b2eb612d1a5";

fn records() -> Vec<NewRecord> {
    [0usize, 5, 1000, 1500, 1700, 3, 300]
        .iter()
        .enumerate()
        .map(|(i, &len)| NewRecord {
            ts_ms: CLOCK + 10 * i as u64,
            schema: i as u16,
            payload: (0..len).map(|k| (k * 7 + i) as u8).collect(),
        })
        .collect()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1")
}

/// The files the writer produces for `records()`, one append each.
fn written() -> MemStorage {
    let storage = MemStorage::new();
    storage.set_clock(CLOCK);
    let mut log = Log::open_with(
        Arc::new(storage.clone()),
        LogOptions {
            segment_bytes: 4096,
        },
    )
    .unwrap();
    for r in records() {
        log.append(&[r]).unwrap();
    }
    storage
}

#[test]
fn writer_produces_the_golden_bytes() {
    let storage = written();
    let names: Vec<String> = storage
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect();
    assert_eq!(names, FILES);
    if std::env::var_os("CAIRN_REGENERATE_GOLDEN").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        for f in FILES.iter().chain([&IDX]) {
            std::fs::write(dir().join(f), storage.file_bytes(f).unwrap()).unwrap();
        }
    }
    for f in FILES.iter().chain([&IDX]) {
        let golden = std::fs::read(dir().join(f)).unwrap();
        assert!(
            storage.file_bytes(f).unwrap() == golden,
            "{f} differs from the golden file"
        );
    }
}

#[test]
fn golden_files_decode() {
    let tmp = tempfile::tempdir().unwrap();
    for f in FILES.iter().chain([&IDX]) {
        std::fs::copy(dir().join(f), tmp.path().join(f)).unwrap();
    }
    let report = verify(tmp.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 7);
    assert_eq!(report.head.hash.to_hex(), HEAD_HEX);
    assert_eq!(report.min_ts_ms, Some(CLOCK));
    assert_eq!(report.max_ts_ms, Some(CLOCK + 60));
    let log = Log::open(tmp.path(), LogOptions::default()).unwrap();
    let reader = log.reader();
    for (i, (got, want)) in reader.iter_from(1).zip(records()).enumerate() {
        let got = got.unwrap();
        assert_eq!(got.offset, i as u64 + 1);
        assert_eq!(
            (got.ts_ms, got.schema, &got.payload),
            (want.ts_ms, want.schema, &want.payload)
        );
    }
    assert_eq!(reader.head().hash.to_hex(), HEAD_HEX);
    assert_eq!(reader.offset_for_time(CLOCK + 25).unwrap(), Some(4));
    // Fixed points of the format, so that a reader of the bytes can check
    // this document against docs/eventlog-format.md.
    let seg = std::fs::read(dir().join(FILES[0])).unwrap();
    assert_eq!(&seg[0..8], b"CAIRNLOG");
    assert_eq!(u16::from_le_bytes([seg[8], seg[9]]), 1);
    assert_eq!(u64::from_le_bytes(seg[24..32].try_into().unwrap()), CLOCK);
    assert_eq!(&seg[32..64], eventlog::genesis().0.as_slice());
    assert_eq!(
        u32::from_le_bytes(seg[76..80].try_into().unwrap()),
        0,
        "first record: empty payload"
    );
    assert_eq!(
        u64::from_le_bytes(seg[80..88].try_into().unwrap()),
        1,
        "first record: offset 1"
    );
    assert_eq!(seg[96], 1, "kind commit");
}
