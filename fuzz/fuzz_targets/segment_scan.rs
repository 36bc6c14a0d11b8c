//! Arbitrary bytes as a whole segment file through the scanner, with and
//! without chain checking: no panic, and what it reports stays in bounds.
#![no_main]

use eventlog::scan::{scan_segment, ScanEnd, ScanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for check_chain in [false, true] {
        let opts = ScanOptions { expect_base: None, prev_ts: 0, check_chain };
        if let Ok(r) = scan_segment(data, &opts) {
            assert!(r.data_end as usize <= data.len());
            assert!(r.positions.iter().all(|&p| (p as usize) < data.len()));
            if let ScanEnd::Sealed { seal_pos, trailing, .. } = r.end {
                assert!(seal_pos as usize + trailing as usize <= data.len());
            }
        }
    }
});
