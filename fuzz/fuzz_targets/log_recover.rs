//! Arbitrary bytes as the active segment of a log directory (in memory):
//! open either refuses or recovers; a recovered log verifies and takes a
//! new append at the next offset.
#![no_main]

use std::sync::Arc;

use eventlog::mem_storage::MemStorage;
use eventlog::{verify_storage, Log, LogOptions, NewRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let storage = MemStorage::new();
    storage.set_file_bytes("00000000000000000001.seg", data.to_vec());
    let Ok(mut log) = Log::open_with(Arc::new(storage.clone()), LogOptions { segment_bytes: 4096 }) else {
        return;
    };
    let head = log.head();
    let h = log.append(&[NewRecord { ts_ms: 0, schema: 0, payload: b"x".to_vec() }]).expect("append after recovery");
    assert_eq!(h[0].offset, head.offset + 1);
    drop(log);
    let report = verify_storage(&storage).expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, head.offset + 1);
});
