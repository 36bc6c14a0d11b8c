//! The blake3 hash chain: record digests `d[n]` and chain heads `h[n]`.
//!
//! `d[n]` covers the frame's header fields (without crc and `prev`) and the
//! blake3 of the payload, not the chain, so that a Merkle tree can later be
//! built over the `d[n]` and a payload could be redacted without breaking the
//! chain (only its digest is needed). `h[n] = blake3(h[n-1] ‖ d[n])`.

use std::sync::OnceLock;

use crate::ChainHash;

/// Context string of the record digest (blake3 `derive_key` mode).
pub const RECORD_CONTEXT: &str = "cairn eventlog v1 record";

/// Input of the genesis hash `h[0] = blake3(GENESIS_INPUT)`.
pub const GENESIS_INPUT: &[u8] = b"cairn eventlog v1 genesis";

/// The chain head before the first record.
pub fn genesis() -> ChainHash {
    static G: OnceLock<ChainHash> = OnceLock::new();
    *G.get_or_init(|| ChainHash(*blake3::hash(GENESIS_INPUT).as_bytes()))
}

/// A `derive_key` hasher with the context already absorbed: cloning it is
/// cheaper than deriving the context key again for every record.
fn record_hasher() -> blake3::Hasher {
    static H: OnceLock<blake3::Hasher> = OnceLock::new();
    H.get_or_init(|| blake3::Hasher::new_derive_key(RECORD_CONTEXT))
        .clone()
}

/// `d[n] = derive_key(RECORD_CONTEXT, header[4..32] ‖ blake3(payload))`.
pub fn record_digest(header_4_32: &[u8], payload: &[u8]) -> [u8; 32] {
    let payload_digest = blake3::hash(payload);
    let mut h = record_hasher();
    h.update(header_4_32);
    h.update(payload_digest.as_bytes());
    *h.finalize().as_bytes()
}

/// `h[n] = blake3(h[n-1] ‖ d[n])`.
pub fn chain_next(prev: &ChainHash, digest: &[u8; 32]) -> ChainHash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&prev.0);
    buf[32..].copy_from_slice(digest);
    ChainHash(*blake3::hash(&buf).as_bytes())
}
