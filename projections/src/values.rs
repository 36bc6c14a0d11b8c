//! Value encodings of the projection store. Internal and versioned through
//! [`crate::PROJECTION_VERSION`]: a change here bumps it, which makes every
//! existing projection rebuild itself from the log at the next start.

use serde::{Deserialize, Serialize};

use crate::error::ProjectionError;
use crate::event::Permissions;
use eventlog::{ChainHash, Head};

/// An entry of the object view: where the object is in its list (its
/// timestamp), and whether it is live (in `lst/`) or a tombstone (in
/// `tmb/`). Small on purpose: it is read for every event applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjHead {
    pub last_modified: u64,
    pub deleted: bool,
}

impl ObjHead {
    const LEN: usize = 9;
    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.last_modified.to_be_bytes());
        b[8] = u8::from(self.deleted);
        b
    }
    pub(crate) fn decode(key: &[u8], b: &[u8]) -> Result<Self, ProjectionError> {
        let (ts, flag) = match b {
            [ts @ .., flag] if ts.len() == 8 => (ts, *flag),
            _ => return Err(ProjectionError::corrupt(key, "object entry length")),
        };
        Ok(ObjHead {
            last_modified: decode_u64(key, ts)?,
            deleted: match flag {
                0 => false,
                1 => true,
                _ => return Err(ProjectionError::corrupt(key, "deleted flag")),
            },
        })
    }
}

/// Where an object's latest event is in the log: the record's offset and
/// the event's index in the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPos {
    pub offset: u64,
    pub idx: u32,
}

impl LogPos {
    pub(crate) const LEN: usize = 12;
    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.offset.to_be_bytes());
        b[8..].copy_from_slice(&self.idx.to_be_bytes());
        b
    }
    pub(crate) fn decode(key: &[u8], b: &[u8]) -> Result<Self, ProjectionError> {
        let b: &[u8; Self::LEN] = b
            .try_into()
            .map_err(|_| ProjectionError::corrupt(key, "log position length"))?;
        let (off, idx) = b.split_at(8);
        let idx: [u8; 4] = idx
            .try_into()
            .map_err(|_| ProjectionError::corrupt(key, "log position index"))?;
        Ok(LogPos {
            offset: decode_u64(key, off)?,
            idx: u32::from_be_bytes(idx),
        })
    }
}

/// A live object's `lst/` entry: its log position, then its ACL and its
/// data. Listing pages are forward scans over these, with no second read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveVal {
    pub pos: LogPos,
    pub permissions: Permissions,
    /// The object's JSON exactly as in the event.
    pub data: Vec<u8>,
}

/// The part of a `LiveVal` after the fixed-size position.
#[derive(Serialize)]
struct LiveRef<'a> {
    permissions: &'a Permissions,
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
}

#[derive(Deserialize)]
struct LiveOwned {
    permissions: Permissions,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

impl LiveVal {
    pub(crate) fn encode(pos: LogPos, permissions: &Permissions, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(LogPos::LEN + data.len() + 64);
        out.extend_from_slice(&pos.encode());
        // Positional (not named): written once per event, read only here.
        rmp_serde::encode::write(&mut out, &LiveRef { permissions, data })
            .expect("a LiveVal always serializes");
        out
    }
    /// Only the position, without decoding the rest.
    pub(crate) fn pos(key: &[u8], b: &[u8]) -> Result<LogPos, ProjectionError> {
        match b.get(..LogPos::LEN) {
            Some(p) => LogPos::decode(key, p),
            None => Err(ProjectionError::corrupt(key, "live entry too short")),
        }
    }
    pub(crate) fn decode(key: &[u8], b: &[u8]) -> Result<Self, ProjectionError> {
        let pos = Self::pos(key, b)?;
        let rest: LiveOwned = rmp_serde::from_slice(&b[LogPos::LEN..])
            .map_err(|e| ProjectionError::corrupt(key, e))?;
        Ok(LiveVal {
            pos,
            permissions: rest.permissions,
            data: rest.data,
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
pub(crate) fn encode_perms(perms: &[&str]) -> Vec<u8> {
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
    fn fixed_entries_round_trip_and_reject_garbage() {
        let h = ObjHead {
            last_modified: 7,
            deleted: true,
        };
        assert_eq!(ObjHead::decode(b"k", &h.encode()).unwrap(), h);
        assert!(ObjHead::decode(b"k", b"short").is_err());
        let mut bad = h.encode();
        bad[8] = 9;
        assert!(ObjHead::decode(b"k", &bad).is_err());
        let p = LogPos {
            offset: 1 << 40,
            idx: 3,
        };
        assert_eq!(LogPos::decode(b"k", &p.encode()).unwrap(), p);
        assert!(LogPos::decode(b"k", &p.encode()[..11]).is_err());
    }

    #[test]
    fn live_entries_round_trip() {
        let pos = LogPos { offset: 5, idx: 1 };
        let perms: Permissions = [("write".to_owned(), vec!["u".to_owned()])].into();
        let data = br#"{"id":"a","n":1.0}"#;
        let b = LiveVal::encode(pos, &perms, data);
        assert_eq!(LiveVal::pos(b"k", &b).unwrap(), pos);
        assert_eq!(
            LiveVal::decode(b"k", &b).unwrap(),
            LiveVal {
                pos,
                permissions: perms,
                data: data.to_vec()
            }
        );
        assert!(LiveVal::decode(b"k", &b[..14]).is_err());
        assert!(LiveVal::decode(b"k", b"tiny").is_err());
    }
}
