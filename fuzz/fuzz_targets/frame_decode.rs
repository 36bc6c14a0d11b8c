//! Arbitrary bytes through the frame decoder: no panic, and a frame it
//! accepts re-encodes to the same bytes.
#![no_main]

use eventlog::frame::{self, FrameSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = frame::decode(data) {
        let h = f.header;
        let mut out = Vec::new();
        frame::encode(
            &mut out,
            &FrameSpec { kind: h.kind, offset: h.offset, ts_ms: h.ts_ms, schema: h.schema, prev: h.prev, payload: f.payload },
        );
        assert_eq!(out, data[..f.len]);
    }
});
