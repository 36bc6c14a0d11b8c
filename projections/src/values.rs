//! Value encodings of the projection store. Internal and versioned through
//! [`crate::PROJECTION_VERSION`]: a change here bumps it, which makes every
//! existing projection rebuild itself from the log at the next start.

use serde::{Deserialize, Serialize};

use crate::error::ProjectionError;
use crate::event::Permissions;
use eventlog::{ChainHash, Head};

/// An entry of the object view: a live object, or the tombstone a delete
/// left in its list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ObjVal {
    pub last_modified: u64,
    pub deleted: bool,
    /// The object's JSON exactly as in the event (empty for a tombstone).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub permissions: Permissions,
}

impl ObjVal {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Positional (not named) encoding: these are written once per event
        // and never read by anything but this module.
        rmp_serde::to_vec(self).expect("an ObjVal always serializes")
    }
    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ProjectionError> {
        rmp_serde::from_slice(bytes).map_err(|e| ProjectionError::corrupt(key, e))
    }
}

/// An entry of the changes index: where the object's latest event is in
/// the log. A tombstone needs nothing from the log (id and timestamp are in
/// the key), so `deleted` saves a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChgVal {
    pub offset: u64,
    /// Index of the event within the commit's `events`.
    pub idx: u32,
    pub deleted: bool,
}

impl ChgVal {
    const LEN: usize = 13;
    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.idx.to_be_bytes());
        b[12] = u8::from(self.deleted);
        b
    }
    pub(crate) fn decode(key: &[u8], b: &[u8]) -> Result<Self, ProjectionError> {
        let b: &[u8; Self::LEN] = b
            .try_into()
            .map_err(|_| ProjectionError::corrupt(key, "change entry length"))?;
        let (off, rest) = b.split_at(8);
        let (idx, del) = rest.split_at(4);
        Ok(ChgVal {
            offset: u64::from_be_bytes(
                off.try_into()
                    .map_err(|_| ProjectionError::corrupt(key, "offset"))?,
            ),
            idx: u32::from_be_bytes(
                idx.try_into()
                    .map_err(|_| ProjectionError::corrupt(key, "index"))?,
            ),
            deleted: match del {
                [0] => false,
                [1] => true,
                _ => return Err(ProjectionError::corrupt(key, "deleted flag")),
            },
        })
    }
}

pub(crate) fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub(crate) fn decode_u64(key: &[u8], b: &[u8]) -> Result<u64, ProjectionError> {
    let b: [u8; 8] = b
        .try_into()
        .map_err(|_| ProjectionError::corrupt(key, "expected 8 bytes"))?;
    Ok(u64::from_be_bytes(b))
}

/// Permission names held through one ACL entry, sorted and unique.
pub(crate) fn encode_perms(perms: &[String]) -> Vec<u8> {
    rmp_serde::to_vec(perms).expect("a list of strings always serializes")
}

pub(crate) fn decode_perms(key: &[u8], b: &[u8]) -> Result<Vec<String>, ProjectionError> {
    rmp_serde::from_slice(b).map_err(|e| ProjectionError::corrupt(key, e))
}

/// `meta/applied`: the last log record whose events are in the views, and
/// the code version that wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedMeta {
    pub offset: u64,
    pub hash: [u8; 32],
    pub ts_ms: u64,
    pub projection_version: u32,
}

impl AppliedMeta {
    pub(crate) fn new(head: Head) -> Self {
        AppliedMeta {
            offset: head.offset,
            hash: head.hash.0,
            ts_ms: head.ts_ms,
            projection_version: crate::PROJECTION_VERSION,
        }
    }
    pub(crate) fn head(&self) -> Head {
        Head {
            offset: self.offset,
            hash: ChainHash(self.hash),
            ts_ms: self.ts_ms,
        }
    }
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Named, so that a future version can still read the version field
        // of an older layout and decide to rebuild.
        rmp_serde::to_vec_named(self).expect("AppliedMeta always serializes")
    }
    pub(crate) fn decode(b: &[u8]) -> Result<Self, ProjectionError> {
        rmp_serde::from_slice(b).map_err(|e| ProjectionError::corrupt(crate::keys::META_APPLIED, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chg_val_round_trips_and_rejects_garbage() {
        let v = ChgVal {
            offset: 7,
            idx: 3,
            deleted: true,
        };
        assert_eq!(ChgVal::decode(b"k", &v.encode()).unwrap(), v);
        assert!(ChgVal::decode(b"k", b"short").is_err());
        let mut bad = v.encode();
        bad[12] = 9;
        assert!(ChgVal::decode(b"k", &bad).is_err());
    }

    #[test]
    fn obj_val_round_trips() {
        let v = ObjVal {
            last_modified: 5,
            deleted: false,
            data: br#"{"id":"a","n":1.0}"#.to_vec(),
            permissions: [("write".to_owned(), vec!["u".to_owned()])].into(),
        };
        assert_eq!(ObjVal::decode(b"k", &v.encode()).unwrap(), v);
        assert!(ObjVal::decode(b"k", b"\xc1").is_err());
    }
}
