//! A canonical text dump of every view, one line per entry in key order.
//! Tests compare dumps to prove that a store built incrementally (across
//! restarts, in batches of any size) equals one rebuilt from the log; an
//! operator can diff two dumps to see where they part.

use std::fmt::Write;

use crate::error::ProjectionError;
use crate::keys;
use crate::store::Store;
use crate::values::{decode_perms, decode_u64, AppliedMeta, LiveVal, LogPos, ObjHead};

impl Store {
    pub(crate) fn dump(&self) -> Result<String, ProjectionError> {
        let mut out = String::new();
        for item in self.views().iter() {
            let (k, v) = item?;
            let line = render_entry(&k, &v)?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

fn render_entry(k: &[u8], v: &[u8]) -> Result<String, ProjectionError> {
    let mut s = String::new();
    // `write!` to a String cannot fail.
    let _ = if k.starts_with(keys::OBJ) {
        let key = keys::decode_obj(k)?;
        let head = ObjHead::decode(k, v)?;
        let state = if head.deleted { " deleted" } else { "" };
        write!(
            s,
            "obj {:?} {} {:?} ts={}{state}",
            key.parent,
            key.resource.name(),
            key.id,
            head.last_modified
        )
    } else if k.starts_with(keys::LST) {
        let (key, ts) = keys::decode_ordered(keys::LST, k)?;
        let live = LiveVal::decode(k, v)?;
        write!(
            s,
            "lst {:?} {} ts={} {:?} at={}#{} perms={:?} data={}",
            key.parent,
            key.resource.name(),
            ts,
            key.id,
            live.pos.offset,
            live.pos.idx,
            live.permissions,
            String::from_utf8_lossy(&live.data)
        )
    } else if k.starts_with(keys::TMB) {
        let (key, ts) = keys::decode_ordered(keys::TMB, k)?;
        let pos = LogPos::decode(k, v)?;
        write!(
            s,
            "tmb {:?} {} ts={} {:?} at={}#{}",
            key.parent,
            key.resource.name(),
            ts,
            key.id,
            pos.offset,
            pos.idx
        )
    } else if k.starts_with(keys::LTS) {
        let (parent, resource) = keys::decode_list(keys::LTS, k)?;
        write!(
            s,
            "lts {:?} {} = {}",
            parent,
            resource.name(),
            decode_u64(k, v)?
        )
    } else if k.starts_with(keys::CNT) {
        let (parent, resource) = keys::decode_list(keys::CNT, k)?;
        write!(
            s,
            "cnt {:?} {} = {}",
            parent,
            resource.name(),
            decode_u64(k, v)?
        )
    } else if k.starts_with(keys::ACL) {
        let (principal, key) = keys::decode_acl(k)?;
        write!(
            s,
            "acl {:?} {:?} {} {:?} = {:?}",
            principal,
            key.parent,
            key.resource.name(),
            key.id,
            decode_perms(k, v)?
        )
    } else if k.starts_with(keys::MEM) {
        let (member, group) = keys::decode_mem(k)?;
        write!(s, "mem {member:?} {group:?}")
    } else if k == keys::META_APPLIED {
        let m = AppliedMeta::decode(v)?;
        write!(
            s,
            "meta applied offset={} hash={} ts={} version={}",
            m.offset,
            hex(&m.hash),
            m.ts_ms,
            m.projection_version
        )
    } else {
        return Err(ProjectionError::corrupt(k, "unknown key prefix"));
    };
    Ok(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
