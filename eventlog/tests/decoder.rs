//! The record decoder and the segment scanner on random bytes: never a
//! panic, whatever the input (the same code the `segment_scan` fuzz target
//! runs). The decoder works on borrowed slices and checks `len` against
//! `MAX_RECORD` before looking at the payload, so it allocates nothing; the
//! scanner allocates only its position list (4 bytes per valid record).

mod common;

use common::*;
use eventlog::frame::{self, MAX_RECORD};
use eventlog::mem_storage::MemStorage;
use eventlog::scan::{find_later_frame, scan_segment, ScanEnd, ScanOptions};
use eventlog::segment::SegmentHeader;
use proptest::prelude::*;

fn sample_segment() -> Vec<u8> {
    let storage = MemStorage::new();
    build(&storage, 12);
    storage.file_bytes(&segments(&storage)[0]).unwrap()
}

fn check_scan(bytes: &[u8], check_chain: bool) {
    for expect_base in [None, Some(1)] {
        let opts = ScanOptions {
            expect_base,
            prev_ts: 0,
            check_chain,
        };
        if let Ok(r) = scan_segment(bytes, &opts) {
            assert!(r.data_end as usize <= bytes.len());
            assert!(r.positions.iter().all(|&p| (p as usize) < bytes.len()));
            assert!(r.positions.len() <= bytes.len() / 64);
            if let ScanEnd::Damaged {
                pos,
                later: Some((at, _)),
                ..
            } = r.end
            {
                assert!(at >= pos);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = frame::decode(&bytes);
        let _ = SegmentHeader::decode(&bytes);
        let _ = find_later_frame(&bytes, 0, 1);
        check_scan(&bytes, true);
    }

    #[test]
    fn valid_header_then_random_frames(
        frames in prop::collection::vec((any::<u32>(), any::<u64>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..200)), 0..8),
        tail in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        // Frames with plausible fields and random damage, after a valid header.
        let mut bytes = SegmentHeader { base: 1, created_ms: 0, prev_chain: eventlog::genesis() }.encode().to_vec();
        for (len, offset, kind, payload) in &frames {
            let mut h = [0u8; 64];
            let len = if len % 2 == 0 { payload.len() as u32 } else { *len };
            h[4..8].copy_from_slice(&len.to_le_bytes());
            h[8..16].copy_from_slice(&(offset % 4).to_le_bytes());
            h[24] = kind % 4;
            let crc = crc32fast::hash(&[&h[4..], &payload[..]].concat());
            h[0..4].copy_from_slice(&crc.to_le_bytes());
            bytes.extend_from_slice(&h);
            bytes.extend_from_slice(payload);
        }
        bytes.extend_from_slice(&tail);
        check_scan(&bytes, true);
        check_scan(&bytes, false);
    }

    #[test]
    fn damaged_real_segment(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
                            cut in any::<prop::sample::Index>()) {
        let mut bytes = sample_segment();
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        let cut = cut.index(bytes.len() + 1);
        check_scan(&bytes[..cut], true);
        check_scan(&bytes[..cut], false);
    }
}

#[test]
fn oversized_length_is_rejected_before_reading() {
    let mut b = vec![0u8; 64];
    b[4..8].copy_from_slice(&((MAX_RECORD + 1) as u32).to_le_bytes());
    b[24] = 1;
    assert_eq!(
        frame::decode(&b).unwrap_err(),
        frame::FrameError::TooLong(MAX_RECORD as u32 + 1)
    );
    b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(frame::decode(&b).is_err());
}
