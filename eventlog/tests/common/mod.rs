//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use eventlog::mem_storage::MemStorage;
use eventlog::{Head, Log, LogOptions, NewRecord, Storage};

pub const SEG: u64 = 4096;

pub fn opts() -> LogOptions {
    LogOptions { segment_bytes: SEG }
}

/// A record whose payload says which it is.
pub fn rec(i: u64, len: usize) -> NewRecord {
    let mut payload = vec![0u8; len];
    for (k, b) in payload.iter_mut().enumerate() {
        *b = (i as usize * 31 + k) as u8;
    }
    NewRecord {
        ts_ms: 1_000 + i * 3,
        schema: (i % 7) as u16,
        payload,
    }
}

pub fn open(storage: &MemStorage) -> Result<Log, eventlog::LogError> {
    Log::open_with(Arc::new(storage.clone()), opts())
}

/// Appends records `from..from+n` in batches of 1..=3, sizes 0..400.
pub fn append_n(log: &mut Log, from: u64, n: u64) -> (Vec<NewRecord>, Vec<Head>) {
    let mut recs = Vec::new();
    let mut heads = Vec::new();
    let mut i = from;
    while i < from + n {
        let k = (i % 3 + 1).min(from + n - i);
        let batch: Vec<_> = (i..i + k)
            .map(|j| rec(j, (j * 37 % 400) as usize))
            .collect();
        heads.extend(log.append(&batch).expect("append"));
        recs.extend(batch);
        i += k;
    }
    (recs, heads)
}

/// A new log of `n` records.
pub fn build(storage: &MemStorage, n: u64) -> (Vec<NewRecord>, Vec<Head>) {
    let mut log = open(storage).expect("open");
    append_n(&mut log, 0, n)
}

pub fn segments(storage: &MemStorage) -> Vec<String> {
    storage
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect()
}

pub fn torn_files(storage: &MemStorage) -> Vec<String> {
    storage
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.contains(".torn-"))
        .collect()
}

/// A copy of every file of `storage`, durably, in a fresh storage.
pub fn copy(storage: &MemStorage) -> MemStorage {
    let new = MemStorage::new();
    for name in storage.list().unwrap() {
        new.set_file_bytes(&name, storage.file_bytes(&name).unwrap());
    }
    new
}

/// Checks the log holds exactly `heads` (and so the records behind them).
pub fn assert_holds(log: &Log, recs: &[NewRecord], heads: &[Head]) {
    assert_eq!(
        log.head().offset,
        heads.len() as u64,
        "head {:?}",
        log.head()
    );
    assert_prefix(log, recs, heads);
}

/// Checks the log starts with `heads` (and so the records behind them).
pub fn assert_prefix(log: &Log, recs: &[NewRecord], heads: &[Head]) {
    let reader = log.reader();
    let all: Vec<_> = reader
        .iter_from(1)
        .collect::<Result<_, _>>()
        .expect("iterate");
    assert!(all.len() >= heads.len());
    for ((r, h), nr) in all.iter().zip(heads).zip(recs) {
        assert_eq!(r.offset, h.offset);
        assert_eq!(r.hash, h.hash);
        assert_eq!(r.ts_ms, h.ts_ms);
        assert_eq!(r.payload, nr.payload);
        assert_eq!(r.schema, nr.schema);
    }
    if let Some(h) = heads.last() {
        assert_eq!(reader.read(h.offset).expect("read").hash, h.hash);
    }
}
