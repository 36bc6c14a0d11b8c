//! How one event changes the views. An object has one `obj/` entry and
//! exactly one entry in `lst/` (live) or `tmb/` (deleted) at its current
//! timestamp; the ACL and member index entries derive from its `lst/`
//! entry. An event first removes the object's current entries (`unlink`),
//! then writes the new ones; a delete also removes every entry below the
//! object (Kinto's cascade) by prefix scans of `obj/`, `lst/` and `tmb/`.

use eventlog::Head;

use crate::acl_index;
use crate::error::ProjectionError;
use crate::event::{Change, Commit, Event, ObjectKey, Resource};
use crate::keys;
use crate::store::{Overlay, Store};
use crate::values::{decode_u64, encode_u64, LiveVal, LogPos, ObjHead};

/// Applies the commits above the applied offset in one atomic batch that
/// also moves `meta/applied`. Commits at or below it are skipped, so
/// replaying what is already applied is a no-op; a commit that skips an
/// offset fails the whole call (nothing written). Returns how many commits
/// were applied.
pub(crate) fn apply_commits(
    store: &Store,
    commits: &[(Head, &Commit)],
) -> Result<usize, ProjectionError> {
    let _writer = store.lock_writer();
    let mut last = store.applied();
    let mut ov = store.overlay();
    let mut applied = 0;
    for (head, commit) in commits {
        if head.offset <= last.offset {
            continue;
        }
        if head.offset != last.offset + 1 {
            return Err(ProjectionError::Gap {
                applied: last.offset,
                next: head.offset,
            });
        }
        for (idx, event) in commit.events.iter().enumerate() {
            let idx = u32::try_from(idx).map_err(|_| ProjectionError::Decode {
                offset: head.offset,
                reason: "more than 2^32 events in one commit".into(),
            })?;
            apply_event(&mut ov, head.offset, idx, event)?;
        }
        last = *head;
        applied += 1;
    }
    if applied > 0 {
        store.commit(ov, last)?;
    }
    Ok(applied)
}

fn apply_event(
    ov: &mut Overlay<'_>,
    offset: u64,
    idx: u32,
    event: &Event,
) -> Result<(), ProjectionError> {
    let key = &event.key;
    let ts = event.last_modified;
    let obj_key = keys::obj(key);
    if let Some(old) = ov.get(&obj_key)? {
        unlink(ov, key, ObjHead::decode(&obj_key, &old)?)?;
    }
    raise_list_timestamp(ov, key, ts)?;
    let pos = LogPos { offset, idx };
    let deleted = match &event.change {
        Change::Put { data, permissions } => {
            ov.put(
                keys::ordered(keys::LST, key, ts),
                LiveVal::encode(pos, permissions, data),
            );
            acl_index::link(ov, key, permissions, data);
            add_to_count(ov, key, 1)?;
            false
        }
        Change::Delete => {
            if matches!(key.resource, Resource::Bucket | Resource::Collection) {
                cascade(ov, key)?;
            }
            ov.put(keys::ordered(keys::TMB, key, ts), &pos.encode()[..]);
            true
        }
    };
    let head = ObjHead {
        last_modified: ts,
        deleted,
    };
    ov.put(obj_key, &head.encode()[..]);
    Ok(())
}

/// Removes the object's current `lst/` or `tmb/` entry and what the live
/// entry put in the indexes and the count. List timestamps stay: they
/// never go back.
fn unlink(ov: &mut Overlay<'_>, key: &ObjectKey, old: ObjHead) -> Result<(), ProjectionError> {
    if old.deleted {
        ov.del(keys::ordered(keys::TMB, key, old.last_modified));
        return Ok(());
    }
    let lst_key = keys::ordered(keys::LST, key, old.last_modified);
    let Some(live) = ov.get(&lst_key)? else {
        return Err(ProjectionError::corrupt(
            &lst_key,
            "live object without its list entry",
        ));
    };
    unlink_live(ov, key, &lst_key, &live)
}

fn unlink_live(
    ov: &mut Overlay<'_>,
    key: &ObjectKey,
    lst_key: &[u8],
    live: &[u8],
) -> Result<(), ProjectionError> {
    let live = LiveVal::decode(lst_key, live)?;
    acl_index::unlink(ov, key, &live.permissions, &live.data);
    ov.del(lst_key.to_vec());
    add_to_count(ov, key, -1)
}

/// Kinto section 15: removes every object below `key` with its ACL entries,
/// memberships and tombstones, leaving no trace but the list timestamps.
/// Three views, two prefix ranges each; no per-object lookups.
fn cascade(ov: &mut Overlay<'_>, key: &ObjectKey) -> Result<(), ProjectionError> {
    let uri = key.uri();
    for prefix in keys::descendant_prefixes(keys::OBJ, &uri) {
        for item in ov.scan_prefix(&prefix) {
            ov.del(item?.0.to_vec());
        }
    }
    for prefix in keys::descendant_prefixes(keys::LST, &uri) {
        for item in ov.scan_prefix(&prefix) {
            let (k, v) = item?;
            let (child, _) = keys::decode_ordered(keys::LST, &k)?;
            unlink_live(ov, &child, &k, &v)?;
        }
    }
    for prefix in keys::descendant_prefixes(keys::TMB, &uri) {
        for item in ov.scan_prefix(&prefix) {
            ov.del(item?.0.to_vec());
        }
    }
    Ok(())
}

fn raise_list_timestamp(
    ov: &mut Overlay<'_>,
    key: &ObjectKey,
    ts: u64,
) -> Result<(), ProjectionError> {
    let k = keys::list_prefix(keys::LTS, &key.parent, key.resource);
    let current = match ov.get(&k)? {
        Some(b) => Some(decode_u64(&k, &b)?),
        None => None,
    };
    if current.is_none_or(|c| ts > c) {
        ov.put(k, &encode_u64(ts)[..]);
    }
    Ok(())
}

/// Counts are kept only for non-empty lists, so a cascade leaves no count
/// key behind and the dump of a rebuilt store has nothing extra.
fn add_to_count(ov: &mut Overlay<'_>, key: &ObjectKey, delta: i64) -> Result<(), ProjectionError> {
    let k = keys::list_prefix(keys::CNT, &key.parent, key.resource);
    let current = match ov.get(&k)? {
        Some(b) => decode_u64(&k, &b)?,
        None => 0,
    };
    let next = current.checked_add_signed(delta).ok_or_else(|| {
        ProjectionError::corrupt(&k, format!("count {current} {delta:+} out of range"))
    })?;
    if next == 0 {
        ov.del(k);
    } else {
        ov.put(k, &encode_u64(next)[..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
